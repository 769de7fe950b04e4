-- A receipt made by a month-end run records that run, so the run's page can link to the receipts
-- it made (docs/billing.md, "Month-end run"). Receipts made by runs before this migration keep
-- NULL: nothing recorded which run made them (a run's period and time window would also catch a
-- researcher's own receipt or another run's), so they are not guessed at; their run's page says so.

-- AlterTable
ALTER TABLE "receipts" ADD COLUMN     "month_end_run_id" INTEGER;

-- CreateIndex
CREATE INDEX "receipts_month_end_run_id_created_at_idx" ON "receipts"("month_end_run_id", "created_at" DESC);

-- AddForeignKey
ALTER TABLE "receipts" ADD CONSTRAINT "receipts_month_end_run_id_fkey" FOREIGN KEY ("month_end_run_id") REFERENCES "month_end_runs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

