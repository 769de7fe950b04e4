-- Refunds that failed (or were canceled) at the provider after it reported them (docs/payments.md,
-- "A refund that failed"): the money was not returned to the payer. One row per refund the
-- provider names (Stripe's re_… id), so the same failure told again by another event changes
-- nothing; the payment is held for review in the event's transaction. The refunded amount
-- recorded on the payment stays what the provider reported; this is the record of what of it
-- failed. A new table: existing rows are not touched.
CREATE TABLE "payment_failed_refunds" (
    "id" SERIAL PRIMARY KEY,
    "provider" VARCHAR(32) NOT NULL,
    "external_refund_id" VARCHAR(128) NOT NULL,
    "payment_id" INTEGER NOT NULL REFERENCES "payments" ("id"),
    "amount_minor" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "failure_reason" VARCHAR(64),
    "external_event_id" VARCHAR(128) NOT NULL,
    "failed_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "payment_failed_refunds_amount_not_negative" CHECK ("amount_minor" >= 0),
    CONSTRAINT "payment_failed_refunds_status_known" CHECK ("status" IN ('failed', 'canceled'))
);
CREATE UNIQUE INDEX "payment_failed_refunds_provider_external_refund_id_key"
    ON "payment_failed_refunds" ("provider", "external_refund_id");
CREATE INDEX "payment_failed_refunds_payment_id_idx" ON "payment_failed_refunds" ("payment_id");
