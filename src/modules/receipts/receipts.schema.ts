import { z } from 'zod';
import { labelFields } from '../../http/field-labels.js';
import { strictBody } from '../../http/strict-body.js';
import { ZLocalDate, ZOptionalLocalDate } from '../../shared/local-date.js';
import { countVisibleCharacters, ONE_LINE_RULE, ONE_LINE_TEXT } from '../../shared/visible-text.js';
import { MAX_INT4, zWholeNumber } from '../../shared/whole-number.js';

export { ZLocalDate };

/** POST /me/receipt and the month-end run. */
/** The labels the receipt forms show their fields under, which a refusal on a page names them by. */
export const RECEIPT_FIELD_LABELS = {
  before: 'Jobs ended up to and including',
  method: 'Payment method',
  tx_ref: 'Reference',
  paid_on: 'Paid on',
  reason: 'Reason to void',
  based_on_status: 'Status the page showed',
  status: 'Status',
  user: 'User',
  start: 'Created from',
  end: 'Created to',
  run: 'Month-end run',
  page: 'Page',
} as const;

export const ZCreateReceipt = strictBody({ before: ZLocalDate }, RECEIPT_FIELD_LABELS);
export type TCreateReceipt = z.infer<typeof ZCreateReceipt>;

export const PAYMENT_METHODS = ['bank_transfer', 'cash', 'cheque', 'card', 'internal_transfer', 'other'] as const;

/** POST /admin/receipts/:id/paid. */
export const ZMarkPaid = strictBody(
  {
    method: z.enum(PAYMENT_METHODS, { error: `must be one of ${PAYMENT_METHODS.join(', ')}` }),
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
  },
  RECEIPT_FIELD_LABELS,
);
export type TMarkPaid = z.infer<typeof ZMarkPaid>;

/** POST /admin/receipts/:id/void. */
export const ZVoidReceipt = strictBody(
  {
    reason: z
      .string({ error: 'is required' })
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
  },
  RECEIPT_FIELD_LABELS,
);
export type TVoidReceipt = z.infer<typeof ZVoidReceipt>;

/** A receipt id in a path. */
export const ZReceiptId = zWholeNumber(1, MAX_INT4);

/** A month-end run's id in its page's path. */
export const ZMonthEndRunId = zWholeNumber(1, MAX_INT4);

/** Admin billing list filters. */
export const ZReceiptFilter = labelFields(
  z.object({
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
    page: zWholeNumber(1, 100_000).default(1),
  }),
  RECEIPT_FIELD_LABELS,
);
export type TReceiptFilter = z.infer<typeof ZReceiptFilter>;

/** ?page= of a listing; a page shows a refusal as "Page: ...", as every other list does. */
export const ZPageQuery = labelFields(z.object({ page: zWholeNumber(1, 100_000).default(1) }), RECEIPT_FIELD_LABELS);
