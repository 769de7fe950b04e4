-- Refunds and disputes the app refused (another currency than the payment received, more than it
-- received, a closed dispute that is not the one opened; docs/payments.md, "Refused refunds and
-- disputes"). The webhook still answers 409 and changes no money, but the refusal is kept here,
-- one row per provider event id, so that finance sees it on /admin/payments instead of only the
-- provider's delivery log: what was claimed (NULL when the event said no amount and currency),
-- why it was refused, the body as received, how many times the provider delivered it and when.
-- A new table: existing rows are not touched.
CREATE TABLE "payment_refused_claims" (
    "id" SERIAL PRIMARY KEY,
    "provider" VARCHAR(32) NOT NULL,
    "external_event_id" VARCHAR(128) NOT NULL,
    "event_type" VARCHAR(64) NOT NULL,
    "payment_id" INTEGER NOT NULL REFERENCES "payments" ("id"),
    "claimed_minor" BIGINT,
    "claimed_currency" CHAR(3),
    "reason" TEXT NOT NULL,
    "raw_payload" TEXT NOT NULL,
    "deliveries" INTEGER NOT NULL DEFAULT 1,
    "first_received_at" TIMESTAMPTZ(3) NOT NULL,
    "last_received_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "payment_refused_claims_claimed_whole" CHECK (("claimed_minor" IS NULL) = ("claimed_currency" IS NULL)),
    CONSTRAINT "payment_refused_claims_deliveries_positive" CHECK ("deliveries" >= 1)
);
CREATE UNIQUE INDEX "payment_refused_claims_provider_external_event_id_key"
    ON "payment_refused_claims" ("provider", "external_event_id");
CREATE INDEX "payment_refused_claims_first_received_at_idx" ON "payment_refused_claims" ("first_received_at" DESC);
CREATE INDEX "payment_refused_claims_payment_id_idx" ON "payment_refused_claims" ("payment_id");
