-- One target's history on the audit log page and its CSV (`?target=receipt:42`), newest first by
-- id as the page pages it: without it the filter read the whole log.
CREATE INDEX "audit_log_target_id_idx" ON "audit_log"("target", "id");
