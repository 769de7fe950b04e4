-- A month-end run records the disabled users it billed, each with the receipt it made them, so its
-- page can name them: nobody can sign in to see or pay those receipts (docs/billing.md, "Month-end
-- run"; docs/security.md, "Offboarding a user"). Runs before this migration recorded nothing of the
-- kind and keep the empty list; whether an account was disabled then is not known now.

-- AlterTable
ALTER TABLE "month_end_runs" ADD COLUMN     "disabled_users_billed" JSONB NOT NULL DEFAULT '[]';
