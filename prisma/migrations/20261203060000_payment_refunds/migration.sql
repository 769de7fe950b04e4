-- Refunds reported by the payment provider (docs/payments.md, "Refunds"). A refund webhook
-- records on the payment what the provider says it refunded so far (minor units of its own
-- currency) and when, in the event's transaction. NULL: no refund was reported.
--
-- Stripe's refund events (charge.refunded) name the PaymentIntent, not the Checkout Session the
-- payment was started with: its id is kept from the success webhook, so a refund finds its payment.
--
-- holds_paid_receipt: the payment is held for review because part of its money was refunded,
-- while its receipt stays paid from it until an admin decides. Only on held payments.
ALTER TABLE "payments"
    ADD COLUMN "external_intent_id" VARCHAR(128),
    ADD COLUMN "refunded_minor" BIGINT,
    ADD COLUMN "refunded_currency" CHAR(3),
    ADD COLUMN "refunded_at" TIMESTAMPTZ(3),
    ADD COLUMN "holds_paid_receipt" BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT "payments_refunded_whole" CHECK (
        ("refunded_minor" IS NULL) = ("refunded_currency" IS NULL)
        AND ("refunded_minor" IS NULL) = ("refunded_at" IS NULL)),
    ADD CONSTRAINT "payments_refunded_positive" CHECK ("refunded_minor" > 0),
    ADD CONSTRAINT "payments_holds_paid_receipt_held" CHECK (NOT "holds_paid_receipt" OR "status" = 'needs_review');

CREATE UNIQUE INDEX "payments_provider_external_intent_id_key" ON "payments"("provider", "external_intent_id");
