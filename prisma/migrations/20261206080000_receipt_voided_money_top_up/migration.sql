-- A receipt marked paid with the money of a voided receipt that is short of its total, plus new money
-- received for the remainder (a "top-up": the jobs billed again at another tier cost more), records
-- that new money here, in the mark paid's transaction. paid.csv's line of the receipt then carries
-- only the new money as received (the voided receipt's line carries the rest), so the period's sum
-- counts each payment once (docs/billing.md, "Paid with the money of a voided receipt"). NULL for a
-- receipt paid with the voided receipt's money alone, and for one paid with new money alone.

-- AlterTable
ALTER TABLE "receipts" ADD COLUMN     "new_money_received" DECIMAL(20,4);

-- Only with the money of a voided receipt, and more than nothing: new money alone is the receipt's total.
ALTER TABLE "receipts" ADD CONSTRAINT "receipts_new_money_received_check"
  CHECK ("new_money_received" IS NULL OR ("paid_with_receipt_id" IS NOT NULL AND "new_money_received" > 0));
