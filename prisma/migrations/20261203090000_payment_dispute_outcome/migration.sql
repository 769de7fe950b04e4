-- The outcome of a dispute (chargeback) the provider reported closed (docs/payments.md,
-- "Disputes"): won (the money stays with the centre) or lost (the bank took the disputed amount
-- back, recorded on the payment as a refund of it), and when the outcome arrived. NULL: the
-- dispute is still open, or there was none.
ALTER TABLE "payments"
    ADD COLUMN "dispute_status" VARCHAR(8),
    ADD COLUMN "dispute_closed_at" TIMESTAMPTZ(3),
    ADD CONSTRAINT "payments_dispute_status_known" CHECK ("dispute_status" IN ('won', 'lost')),
    ADD CONSTRAINT "payments_dispute_closed_whole" CHECK (
        ("dispute_status" IS NULL) = ("dispute_closed_at" IS NULL)
        AND ("dispute_status" IS NULL OR "external_dispute_id" IS NOT NULL));
