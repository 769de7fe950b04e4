-- The keys that jobs and receipt items are matched by (cluster, job id, job key) compare
-- byte by byte. Under the database's C.UTF-8 collation PostgreSQL 15 compares text through
-- glibc's strcoll, and every btree step of a key lookup paid for it: finding which of a
-- user's 3,866 queued jobs a live receipt item already holds took 37-40 ms that way and
-- 33 ms with "C", in one warm session (docs/performance.md). The order is the same: C.UTF-8
-- sorts by code point, which for UTF-8 is byte order, so no sort or uniqueness result changes.
--
-- Only the collation changes, so the rows are not rewritten; PostgreSQL rebuilds the indexes
-- on these columns (the job-id and job-key indexes, the live-item unique index).
ALTER TABLE "slurm_jobs"
  ALTER COLUMN "cluster" TYPE VARCHAR(64) COLLATE "C",
  ALTER COLUMN "job_id" TYPE VARCHAR(32) COLLATE "C",
  ALTER COLUMN "job_key" TYPE VARCHAR(48) COLLATE "C";
ALTER TABLE "receipt_items"
  ALTER COLUMN "cluster" TYPE VARCHAR(64) COLLATE "C",
  ALTER COLUMN "job_key" TYPE VARCHAR(48) COLLATE "C";
