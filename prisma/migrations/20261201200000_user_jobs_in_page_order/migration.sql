-- /me lists a user's jobs newest first, 50 to a page, ordered by (end_at, id). With the
-- index on (user, end_at) alone PostgreSQL read every job of the window (746 heap rows
-- for a typical user's 30 days) and sorted them to keep 50; with id in the index a
-- backward scan yields the page's rows in order and stops after 50: the page's query went
-- from 0.72 to 0.22 ms in EXPLAIN ANALYZE on 1,000,000 jobs (docs/performance.md). The
-- CSV export (end_at, id ascending) reads the same index forwards and skips its sort.
-- The new index does everything the old one did, so the old one goes.
CREATE INDEX "slurm_jobs_user_end_at_id_idx" ON "slurm_jobs" ("user", "end_at", "id");
DROP INDEX "slurm_jobs_user_end_at_idx";
