import { Prisma } from '@prisma/client';
import { z } from 'zod';
import { labelFields, refusedAuditWindow, refusedField } from '../../http/field-labels.js';
import { JsonNumberText } from '../../http/lossless-json.js';
import { strictBody } from '../../http/strict-body.js';
import { refuseTwoPlaces, zListPlace } from '../../shared/list-place.js';
import { ZLocalDate, ZOptionalLocalDate } from '../../shared/local-date.js';
import { countVisibleCharacters, ONE_LINE_RULE, ONE_LINE_TEXT } from '../../shared/visible-text.js';
import { MAX_INT4, ZPageNumber, zWholeNumber } from '../../shared/whole-number.js';
import { ZBasedOnRate } from '../pricing/pricing.schema.js';

export { ZLocalDate };

/** The labels the receipt forms show their fields under, which a refusal on a page names them by. */
export const RECEIPT_FIELD_LABELS = {
  before: 'Jobs ended up to and including',
  method: 'Payment method',
  tx_ref: 'Reference',
  paid_on: 'Paid on',
  amount_received: 'Amount received',
  paid_with_receipt: 'Paid with the money of',
  new_money: 'New money received now',
  reason: 'Reason to void',
  based_on_status: 'Status the page showed',
  based_on_status_changes: 'Status changes the page showed',
  based_on: 'Rates the page showed',
  status: 'Status',
  user: 'User',
  start: 'Created from',
  end: 'Created to',
  run: 'Month-end run',
  older: 'Older',
  newer: 'Newer',
  page: 'Page',
  skipped_page: 'Page of users skipped',
} as const;

/** The month-end run. */
export const ZCreateReceipt = strictBody({ before: ZLocalDate }, RECEIPT_FIELD_LABELS);
export type TCreateReceipt = z.infer<typeof ZCreateReceipt>;

/**
 * POST /me/receipt. `based_on` is the id of the rates /me estimated the jobs at (its hidden field,
 * `tier.rates.rateId` in its JSON): a receipt is priced at the rates in force when it is made, so
 * one made after an admin moved the user to another tier or changed the tier's rates would bill
 * at rates the researcher never saw; with it, such a receipt is refused (409). Left out or empty
 * (a script), nothing is compared.
 */
export const ZCreateOwnReceipt = strictBody({ before: ZLocalDate, based_on: ZBasedOnRate }, RECEIPT_FIELD_LABELS);

export const PAYMENT_METHODS = ['bank_transfer', 'cash', 'cheque', 'card', 'internal_transfer', 'other'] as const;

/**
 * What every malformed amount received is told (a sign, letters, thousands separators, an exponent, a
 * currency): the whole rule at once, as a rate's refusal says its rule. Too many decimals for the
 * receipt's currency, however many, is judged by the service, which knows the currency.
 */
export const AMOUNT_RECEIVED_RULE =
  'must be a plain decimal amount of money, 0 or more, such as 1234.50 (no sign, thousands separators or currency)';

/**
 * Digits, then optionally a point and more digits: the grammar of a rate. The grammar caps neither
 * part, so that an amount is refused for what is wrong with it, not as no plain decimal (which it
 * is): more decimals than its currency has are refused as such by the service, however many (capped
 * at 20, 21 were told the amount was no plain decimal), and more than 20 digits before the point,
 * far beyond any total (receipts store 16 there), are told the amount is too large (as 21 were told
 * it was no plain decimal). Digits alone, within the body limit, cost Decimal little.
 */
const PLAIN_AMOUNT = /^(\d+)(\.\d+)?$/;
const MAX_AMOUNT_RECEIVED_DIGITS = 20;
const AMOUNT_TOO_LARGE = `is too large: it must have at most ${MAX_AMOUNT_RECEIVED_DIGITS} digits before the decimal point`;

/**
 * The money that arrived for a receipt, as the bank statement, the cash or the cheque shows it:
 * a form field, a JSON string, or a JSON number as written (JsonNumberText: the mark-paid route
 * parses JSON keeping each number's text, so 1e3 is refused rather than read as 1000). A decimal,
 * never a float. Required: without it, money short of the total was marked paid in full unnoticed.
 */
export const ZAmountReceived = z.unknown().transform((input, ctx) => {
  const text = input instanceof JsonNumberText ? input.text : typeof input === 'string' ? input.trim() : undefined;
  if (input === undefined || input === null || text === '') {
    ctx.addIssue({ code: 'custom', message: 'is required: the amount that arrived, such as 1234.50' });
    return z.NEVER;
  }
  const plain = text === undefined ? null : PLAIN_AMOUNT.exec(text);
  if (text === undefined || plain === null) {
    ctx.addIssue({ code: 'custom', message: AMOUNT_RECEIVED_RULE });
    return z.NEVER;
  }
  // Leading zeros add nothing: 0001234.50 is 1234.50, however many there are.
  if ((plain[1] ?? '').replace(/^0+/, '').length > MAX_AMOUNT_RECEIVED_DIGITS) {
    ctx.addIssue({ code: 'custom', message: AMOUNT_TOO_LARGE });
    return z.NEVER;
  }
  return new Prisma.Decimal(text);
});

/**
 * An amount of money as ZAmountReceived reads it, or undefined when left out or empty. JSON's null is
 * refused as every field refuses it (validate.ts words it): it was read as left out.
 */
const ZOptionalAmount = z.unknown().transform((input, ctx) => {
  if (input === undefined || (typeof input === 'string' && input.trim() === '')) return undefined;
  if (input === null) {
    ctx.addIssue({ code: 'custom', message: 'cannot be null (leave it out, or give a value)' });
    return z.NEVER;
  }
  const parsed = ZAmountReceived.safeParse(input);
  if (parsed.success) return parsed.data;
  ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? AMOUNT_RECEIVED_RULE });
  return z.NEVER;
});

/** POST /admin/receipts/:id/paid. */
export const ZMarkPaid = strictBody(
  {
    method: z.enum(PAYMENT_METHODS, { error: `must be one of ${PAYMENT_METHODS.join(', ')}` }),
    amount_received: ZAmountReceived,
    tx_ref: z
      .string()
      .trim()
      .max(128, 'must be at most 128 characters')
      // As the bank statement writes it, on one line: a line break or tab split the paid CSV's row.
      .regex(ONE_LINE_TEXT, ONE_LINE_RULE)
      .optional()
      .transform((value) => (value ? value : undefined)),
    /** The local day (APP_TZ) the money was paid; today when left out or empty. */
    paid_on: ZOptionalLocalDate,
    /**
     * The receipt, voided after it was paid, whose money pays this one (its jobs billed again here);
     * left out or empty for new money. Recorded, so paid.csv counts that money once.
     */
    paid_with_receipt: z.preprocess(
      // A JSON number arrives as its text (this route keeps numbers' text, as amount_received needs).
      (value) =>
        value instanceof JsonNumberText
          ? value.text
          : typeof value === 'string' && value.trim() === ''
            ? undefined
            : value,
      zWholeNumber(1, MAX_INT4).optional(),
    ),
    /**
     * With `paid_with_receipt` only: the new money received now for the rest of the total, when the
     * voided receipt's money is short of it (its jobs billed again at another tier); left out or
     * empty when that money is the whole total. paid.csv's line carries only this as received.
     */
    new_money: ZOptionalAmount.optional(),
    /**
     * How many times the receipt's status had changed when the form was opened (the page's hidden
     * field, the admin receipt JSON's `statusChanges`). A receipt paid online and refunded in full
     * since reads pending then and now, but its page now says that money went back: a different count
     * is refused as a stale form (409). Left out, not checked. A JSON number is read as the void's
     * route reads it (this route keeps numbers' text), so both answer the same words.
     */
    based_on_status_changes: z.preprocess(
      (value) => (value instanceof JsonNumberText ? Number(value.text) : value),
      zWholeNumber(0, MAX_INT4).optional(),
    ),
  },
  RECEIPT_FIELD_LABELS,
);
export type TMarkPaid = z.infer<typeof ZMarkPaid>;

/** POST /admin/receipts/:id/void. */
export const ZVoidReceipt = strictBody(
  {
    reason: z
      .string()
      .trim()
      .max(500, 'must be at most 500 characters')
      .regex(ONE_LINE_TEXT, { error: ONE_LINE_RULE, abort: true })
      .refine((reason) => countVisibleCharacters(reason) >= 3, {
        error: 'must say why the receipt is void, in at least 3 characters',
      }),
    /**
     * The status the void form was opened on (its page sends it; JSON clients may leave it out).
     * A receipt marked paid, or refunded back to pending, since then is refused rather than voided
     * with consequences the page did not show.
     */
    based_on_status: z.enum(['pending', 'paid'], { error: 'must be one of pending, paid' }).optional(),
    /**
     * How many times the receipt's status had changed when the form was opened (its page sends it
     * beside `based_on_status`). A receipt refunded in full and paid again since reads paid then and
     * now, but its money is other than the page showed: a different count is refused as stale too.
     */
    based_on_status_changes: zWholeNumber(0, MAX_INT4).optional(),
  },
  RECEIPT_FIELD_LABELS,
);
export type TVoidReceipt = z.infer<typeof ZVoidReceipt>;

/**
 * How a page names the receipt in its address when refusing it: people know receipts by number
 * ("Receipt #7"), not by "receipt id", the name routes give the path parameter (and JSON keeps).
 */
export const RECEIPT_IN_ADDRESS_LABEL = 'Receipt number in the address';

/** A receipt id in a path, parsed under the name `receipt id`. */
export const ZReceiptId = labelFields(zWholeNumber(1, MAX_INT4), { 'receipt id': RECEIPT_IN_ADDRESS_LABEL });

/**
 * A window asked of a receipt's items CSV, which is always the whole receipt: refused by name.
 * Ignored as unknown fields, items.csv?start=2026-01-01 exported every item, and a script believed
 * it had filtered. Its `bom` is read by csvExports.
 */
const ZNoWindowKey = refusedField(
  'is not read here: this export is the whole receipt; start and end are read by the usage pages, from and to by the audit log',
);

/** GET /me/receipts/:id/items.csv and /admin/receipts/:id/items.csv. */
export const ZReceiptItemsCsvQuery = z.object({
  start: ZNoWindowKey,
  end: ZNoWindowKey,
  from: ZNoWindowKey,
  to: ZNoWindowKey,
});

/** A month-end run's id in its page's path. */
export const ZMonthEndRunId = labelFields(zWholeNumber(1, MAX_INT4), {
  'month-end run id': 'Month-end run number in the address',
});

/**
 * The audit log's names for a window, which the billing list does not read: refused by name. Ignored
 * as unknown fields, /admin/receipts?from=2026-11-01&to=2026-11-30 listed every receipt, with all-time
 * totals, as the exports did before they refused them (usage.schema.ts).
 */
const AUDIT_WINDOW_KEYS = refusedAuditWindow('the billing page reads its creation window');

/** Admin billing list filters. */
export const ZReceiptFilter = labelFields(
  z
    .object({
      ...AUDIT_WINDOW_KEYS,
      status: z
        .enum(['pending', 'paid', 'void'])
        .optional()
        .or(z.literal('').transform(() => undefined)),
      user: z.string().trim().max(64).optional(),
      start: ZOptionalLocalDate,
      end: ZOptionalLocalDate,
      // The month-end run that made the receipts (a run's page links here); empty reads as left out.
      run: z.preprocess(
        (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
        zWholeNumber(1, MAX_INT4).optional(),
      ),
      page: ZPageNumber,
      // The Older and Newer links' place in the list (a receipt's creation time and id), as they wrote it.
      older: zListPlace(true),
      newer: zListPlace(true),
    })
    .superRefine(refuseTwoPlaces),
  RECEIPT_FIELD_LABELS,
);
export type TReceiptFilter = z.infer<typeof ZReceiptFilter>;

/** ?page= of a listing; a page shows a refusal as "Page: ...", as every other list does. */
export const ZPageQuery = labelFields(z.object({ page: ZPageNumber }), RECEIPT_FIELD_LABELS);

/**
 * A month-end run's page: `?page=` pages its disabled users billed (as it did alone, so links kept work),
 * `?skipped_page=` its users skipped, each table keeping the other's page.
 */
export const ZMonthEndRunPagesQuery = labelFields(
  z.object({ page: ZPageNumber, skipped_page: ZPageNumber }),
  RECEIPT_FIELD_LABELS,
);

/** My receipts' ?page=, or the place its Older and Newer links carry (a receipt's creation time and id). */
export const ZReceiptListQuery = labelFields(
  z.object({ page: ZPageNumber, older: zListPlace(true), newer: zListPlace(true) }).superRefine(refuseTwoPlaces),
  RECEIPT_FIELD_LABELS,
);

/** The month-end runs' ?page=, or the place its Older and Newer links carry (a run's id). */
export const ZMonthEndRunsQuery = labelFields(
  z.object({ page: ZPageNumber, older: zListPlace(false), newer: zListPlace(false) }).superRefine(refuseTwoPlaces),
  RECEIPT_FIELD_LABELS,
);
