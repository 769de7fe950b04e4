-- /admin/payments lists every payment newest first (created_at, then id), a page at a time from a
-- payment (keyset: older or newer than its (created_at, id)). No index had created_at first but
-- (status, created_at), so the newest page read, joined and sorted every payment (15 ms at 20,000,
-- growing with each one); this index gives each page in the list's order whatever the table's size.

-- CreateIndex
CREATE INDEX "payments_created_at_id_idx" ON "payments"("created_at" DESC, "id" DESC);
