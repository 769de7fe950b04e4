-- Whether the refunded total recorded on the payment counts this failed refund: its report arrived
-- before its failure, or since (docs/payments.md, "A refund that failed"). The provider's totals
-- reported after that leave it out (Stripe takes a failed refund out of amount_refunded: its money
-- went back to the centre's balance), so the app adds it back to read them as it reads the rest.
-- A failure told before any refund report of the payment (refunded_at still null) is not counted
-- yet: the report that comes next still counts it.
ALTER TABLE "payment_failed_refunds" ADD COLUMN "is_in_reported_total" BOOLEAN NOT NULL DEFAULT false;
UPDATE "payment_failed_refunds" f SET "is_in_reported_total" = true
  FROM "payments" p WHERE p."id" = f."payment_id" AND p."refunded_at" IS NOT NULL;
