-- A month-end run records, by user, the jobs ended by its day that it left out because they have not
-- finished (REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not know), so its page can say so, as
-- Create receipt does (docs/billing.md, "Month-end run"). Runs before this migration keep null: what
-- had not finished when they ran is not known now, and their pages say nothing of it.
-- AlterTable
ALTER TABLE "month_end_runs" ADD COLUMN     "unfinished_jobs" JSONB;
