-- A refused refund or dispute that finance has checked with the provider and settled there (or by
-- hand) is marked so, with who, when and what was done (docs/payments.md, "Refused refunds and
-- disputes"): it leaves the banner and the list on /admin/payments, and the row stays as the
-- record. All three or none. Existing rows are unsettled (NULL), as they were listed before.
ALTER TABLE "payment_refused_claims"
    ADD COLUMN "settled_by" VARCHAR(64),
    ADD COLUMN "settled_at" TIMESTAMPTZ(3),
    ADD COLUMN "settle_note" TEXT,
    ADD CONSTRAINT "payment_refused_claims_settled_whole" CHECK (
        ("settled_by" IS NULL) = ("settled_at" IS NULL) AND ("settled_at" IS NULL) = ("settle_note" IS NULL));
CREATE INDEX "payment_refused_claims_unsettled_idx" ON "payment_refused_claims" ("first_received_at" DESC)
    WHERE "settled_at" IS NULL;
