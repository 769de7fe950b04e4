-- When a payment paid its receipt: the receipt's paid_at as the payment set it (the success
-- webhook, or an admin accepting a held payment), kept on the payment whatever becomes of the
-- receipt. A refund in full puts the receipt back to pending with its paid_at cleared, and it
-- may be paid again later; the paid receipts CSV lists the refunded payment from this column in
-- the period it was paid in (docs/billing.md, "The paid receipts CSV"), so that the export of
-- a period already reconciled does not lose its line. NULL: the payment never paid its receipt.
ALTER TABLE "payments" ADD COLUMN "paid_at" TIMESTAMPTZ(3);

-- Existing rows. A paid or void receipt names the payment that paid it by its method (the
-- provider) and reference (the provider's payment id), as the receipt page finds it.
UPDATE "payments" p
   SET "paid_at" = r."paid_at"
  FROM "receipts" r
 WHERE r."id" = p."receipt_id"
   AND r."status" IN ('paid', 'void')
   AND r."paid_at" IS NOT NULL
   AND r."payment_method" = p."provider"
   AND r."tx_ref" = p."external_payment_id";

-- A payment refunded in full before this migration no longer has a receipt naming it. When it
-- paid is in the audit log: the entry that marked its receipt paid from it (receipt.mark_paid,
-- whose time is the receipt's paid_at, for a held payment accepted; receipt.paid_online, written
-- in the success's transaction a moment after the receipt's paid_at, for a success), the latest
-- before the refund that unpaid the receipt.
UPDATE "payments" p
   SET "paid_at" = (
         SELECT max(paid."ts")
           FROM "audit_log" paid
          WHERE paid."action" IN ('receipt.paid_online', 'receipt.mark_paid')
            AND paid."target" = 'receipt:' || p."receipt_id"
            AND paid."details" ->> 'paymentId' = p."id"::text
            AND paid."ts" <= unpaid."ts")
  FROM "audit_log" unpaid
 WHERE p."paid_at" IS NULL
   AND unpaid."action" = 'payment.refund'
   AND unpaid."target" = 'receipt:' || p."receipt_id"
   AND unpaid."details" ->> 'paymentId' = p."id"::text
   AND unpaid."details" ->> 'receipt' = 'unpaid';

-- paid.csv selects payments by when they paid, in windows of local days.
CREATE INDEX "payments_paid_at_idx" ON "payments"("paid_at");
