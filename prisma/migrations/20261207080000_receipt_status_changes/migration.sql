-- How many times a receipt's status has changed, counted by every transition (pending -> paid,
-- paid -> pending when its payment is refunded in full, -> void). The admin's Void form sends the
-- count its page showed beside the status: a receipt refunded in full and paid again since reads
-- "paid" then and now, and was voided from a page that showed other money (docs/billing.md).
-- Receipts from before this migration start at 0.

-- AlterTable
ALTER TABLE "receipts" ADD COLUMN     "status_changes" INTEGER NOT NULL DEFAULT 0;
