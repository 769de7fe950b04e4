-- Disputes (chargebacks) reported by the payment provider (docs/payments.md, "Disputes"). A
-- dispute webhook records on the payment the provider's id of the dispute, the amount disputed
-- (minor units of its own currency), the payer's reason as the provider words it, and when it
-- arrived, in the event's transaction. NULL: no dispute was reported. A payment that paid its
-- receipt is then held for review (holds_paid_receipt), the receipt staying paid until an admin
-- decides.
ALTER TABLE "payments"
    ADD COLUMN "external_dispute_id" VARCHAR(128),
    ADD COLUMN "disputed_minor" BIGINT,
    ADD COLUMN "disputed_currency" CHAR(3),
    ADD COLUMN "dispute_reason" VARCHAR(64),
    ADD COLUMN "disputed_at" TIMESTAMPTZ(3),
    ADD CONSTRAINT "payments_disputed_whole" CHECK (
        ("external_dispute_id" IS NULL) = ("disputed_minor" IS NULL)
        AND ("disputed_minor" IS NULL) = ("disputed_currency" IS NULL)
        AND ("disputed_minor" IS NULL) = ("disputed_at" IS NULL)
        AND ("dispute_reason" IS NULL OR "disputed_minor" IS NOT NULL)),
    ADD CONSTRAINT "payments_disputed_not_negative" CHECK ("disputed_minor" >= 0);
