-- A receipt lists its jobs in the order they ended (ties by item id, which follows the job's key),
-- not in the order they were billed, whose end times looked shuffled. The end time lives on
-- slurm_jobs, and ordering a receipt's items by it joined and sorted all of them for every page
-- and every batch of the printout and the items CSV (about 200 ms a query for 100,000 items, so
-- 20 s to print such a receipt in batches of 1,000). Each item now keeps its job's end time as
-- billed, and the receipt's items are read in that order from an index.

-- AlterTable
ALTER TABLE "receipt_items" ADD COLUMN     "job_end_at" TIMESTAMPTZ(3);

-- The items billed before: their job's end time. An item whose job row is gone (nothing in the
-- app deletes one, but no foreign key forbids it) sorts at its receipt's first end time. The
-- billing queue's update trigger would re-check every item's job key, which this does not change.
ALTER TABLE "receipt_items" DISABLE TRIGGER "receipt_items_queue_on_update";
UPDATE "receipt_items" ri
   SET "job_end_at" = COALESCE((SELECT j."end_at" FROM "slurm_jobs" j WHERE j."id" = ri."slurm_job_id"),
                               r."window_start", r."created_at")
  FROM "receipts" r
 WHERE r."id" = ri."receipt_id";
ALTER TABLE "receipt_items" ENABLE TRIGGER "receipt_items_queue_on_update";

ALTER TABLE "receipt_items" ALTER COLUMN "job_end_at" SET NOT NULL;

-- CreateIndex
CREATE INDEX "receipt_items_receipt_id_job_end_at_id_idx" ON "receipt_items"("receipt_id", "job_end_at", "id");

-- DropIndex: the new index leads with receipt_id, so it finds and counts a receipt's items as this one did.
DROP INDEX "receipt_items_receipt_id_idx";
