-- /admin/receipts lists receipts newest first (created_at, then id) 25 a page, and a creation window
-- reads a range of created_at. With no filter, or only dates, no index had created_at first, so every
-- page read and sorted the whole table (9 ms at 20,000 receipts, growing with each one); this index
-- gives the page in the list's order, and the window's range, whatever the table's size.

-- CreateIndex
CREATE INDEX "receipts_created_at_id_idx" ON "receipts"("created_at" DESC, "id" DESC);
