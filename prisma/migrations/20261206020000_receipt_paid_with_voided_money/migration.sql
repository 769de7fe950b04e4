-- A receipt an admin marks paid with the money of a receipt voided after it was paid (its jobs billed
-- again on this one) records that receipt, in the mark paid's transaction. paid.csv then counts the
-- money once, on the voided receipt's line, and this receipt's line carries none and names it
-- (docs/billing.md, "The paid receipts CSV"). Unique: the same money pays one receipt. Receipts
-- marked paid before this migration quoted such money only in their free-text reference, which is
-- not guessed at: they keep NULL.

-- AlterTable
ALTER TABLE "receipts" ADD COLUMN     "paid_with_receipt_id" INTEGER;

-- CreateIndex
CREATE UNIQUE INDEX "receipts_paid_with_receipt_id_key" ON "receipts"("paid_with_receipt_id");

-- AddForeignKey
ALTER TABLE "receipts" ADD CONSTRAINT "receipts_paid_with_receipt_id_fkey" FOREIGN KEY ("paid_with_receipt_id") REFERENCES "receipts"("id") ON DELETE SET NULL ON UPDATE CASCADE;

