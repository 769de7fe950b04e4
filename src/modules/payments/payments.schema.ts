import { z } from 'zod';
import { labelFields, refusedPageNumber } from '../../http/field-labels.js';
import { strictBody } from '../../http/strict-body.js';
import { countVisibleCharacters } from '../../shared/visible-text.js';
import { MAX_INT4, zWholeNumber } from '../../shared/whole-number.js';
import { RECEIPT_IN_ADDRESS_LABEL } from '../receipts/receipts.schema.js';

// `rid` is the query key the provider sends the payer back with; a page names it as the receipt in the address.
export const ZThanksQuery = labelFields(z.object({ rid: zWholeNumber(1, MAX_INT4) }), {
  rid: RECEIPT_IN_ADDRESS_LABEL,
});
export const ZExternalIdParam = z.object({
  externalId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'is not a checkout id'),
});
// The choice pays, fails or cancels a payment, so a field it does not have is refused by name, as every
// body that changes money: an ignored `amount` read to a script as a partial payment taken.
export const ZDummyChoice = strictBody({ choice: z.enum(['pay', 'fail', 'cancel']) });
/** POST /payments/receipt/:id/start reads no field (the receipt is in the address); one sent is refused by name. */
export const ZStartPayment = strictBody({});

/** A payment id in a path. */
// Named on a page as people know payments ("payment #12"), not by the route's name for the parameter.
export const ZPaymentId = labelFields(zWholeNumber(1, MAX_INT4), { 'payment id': 'Payment number in the address' });

/** An optional payment id in a query: empty reads as left out, as every optional field does. */
const zOptionalPaymentId = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  zWholeNumber(1, MAX_INT4).optional(),
);

/** /admin/payments?older=<id> or ?newer=<id>: the page of payments just older or newer than that one. */
// Named on a page as the audit log names its own cursor ("Older than entry"); a script sees the key.
export const ZPaymentsPageQuery = labelFields(
  z.object({
    older: zOptionalPaymentId,
    newer: zOptionalPaymentId,
    page: refusedPageNumber(
      'the payments list is paged by its older and newer links (older=<id> and newer=<id>, paging.olderUrl and paging.newerUrl in its JSON); start at the newest payments and follow them',
    ),
  }),
  { older: 'Older than payment', newer: 'Newer than payment' },
);
export type TPaymentsPageQuery = z.infer<typeof ZPaymentsPageQuery>;

/** What finance did with a held payment's money (PaymentReviewOutcome). */
export const PAYMENT_REVIEW_OUTCOMES = ['accepted', 'refunded', 'dismissed'] as const;

/** What finance did, in 10 to 1,000 visible characters. */
const zWhatWasDone = () =>
  z
    .string({ error: 'is required' })
    .trim()
    .max(1000, 'must be at most 1000 characters')
    .refine((note) => countVisibleCharacters(note) >= 10, {
      error: 'must say what was done, in at least 10 characters',
    });

/**
 * POST /admin/payments/:id/resolve. Strict, as every body that changes money: accepting marks the
 * receipt paid, and a misspelt `acceptMismatch` was ignored unseen.
 */
export const ZResolveReview = strictBody(
  {
    outcome: z.enum(PAYMENT_REVIEW_OUTCOMES, { error: `must be one of ${PAYMENT_REVIEW_OUTCOMES.join(', ')}` }),
    note: zWhatWasDone(),
    // A checkbox: present ("yes") only when ticked; JSON clients may send true.
    accept_mismatch: z
      .union([z.literal('yes'), z.literal(true)], { error: 'must be "yes" when given' })
      .optional()
      .transform((value) => value !== undefined),
    // When the payment was last changed as the payments page showed it (ms since 1970), its hidden field: a
    // payment changed since (a refund, a dispute, its receipt voided or paid) is refused (409) rather than
    // resolved on a reason the admin did not read. Left out (a script), nothing is compared.
    based_on_updated_at: z
      .string()
      .regex(/^\d{1,15}$/, 'must be the whole number of milliseconds the payments page gave')
      .optional(),
  },
  {
    outcome: 'Outcome',
    note: 'Note',
    accept_mismatch: 'Accept the different amount',
    based_on_updated_at: 'Payment as the page showed it',
  },
);
export type TResolveReview = z.infer<typeof ZResolveReview>;

/** A refused refund or dispute's id in a path. */
export const ZRefusedClaimId = labelFields(zWholeNumber(1, MAX_INT4), {
  'refused claim id': 'Refused claim number in the address',
});

/** POST /admin/payments/refused-claims/:id/settle: what finance did about it at the provider. */
export const ZSettleRefusedClaim = strictBody({ note: zWhatWasDone() }, { note: 'Note' });
export type TSettleRefusedClaim = z.infer<typeof ZSettleRefusedClaim>;
