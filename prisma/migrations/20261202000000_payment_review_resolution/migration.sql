-- A payment held for review (needs_review) is closed by an admin: the payment moves to
-- 'resolved' and keeps its review reason, and the resolution says what finance did with
-- the money (accepted for the receipt, refunded at the provider, or handled otherwise),
-- who decided, when, and why. Only unresolved reviews are counted on /admin/payments.
--
-- The new enum value is not used as one in this script: PostgreSQL refuses a value added in
-- the same transaction (each migration runs in one).
ALTER TYPE "PaymentStatus" ADD VALUE 'resolved';

CREATE TYPE "PaymentReviewOutcome" AS ENUM ('accepted', 'refunded', 'dismissed');

ALTER TABLE "payments"
    ADD COLUMN "has_amount_mismatch" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "review_outcome" "PaymentReviewOutcome",
    ADD COLUMN "review_note" TEXT,
    ADD COLUMN "reviewed_by" VARCHAR(64),
    ADD COLUMN "reviewed_at" TIMESTAMPTZ(3),
    -- A resolution is written whole or not at all, and exactly on resolved payments. status
    -- is compared as text: the new enum value cannot be named in this transaction.
    ADD CONSTRAINT "payments_review_resolution_whole" CHECK (
        ("review_outcome" IS NULL) = ("review_note" IS NULL)
        AND ("review_outcome" IS NULL) = ("reviewed_by" IS NULL)
        AND ("review_outcome" IS NULL) = ("reviewed_at" IS NULL)
        AND ("review_outcome" IS NOT NULL) = ("status"::text = 'resolved'));

-- Accepting money that did not match the amount due needs the admin to say so; payments
-- held before this migration carry the mismatch only in their reason ("paid X but Y was due").
UPDATE "payments"
   SET "has_amount_mismatch" = true
 WHERE "status" = 'needs_review'
   AND ("review_reason" LIKE 'paid % but % was due%' OR "review_reason" LIKE '%; paid % but % was due%');
