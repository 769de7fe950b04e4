-- Every job a page or CSV lists looks up its live receipt item by billing key, and so do a
-- receipt's and the billing queue's checks. Through the unique btree (cluster, job_key)
-- that lookup descended four levels comparing text at each: 2.1 of the 5.5 us per row of a
-- year's CSV export (8,968 rows: 49 ms, 30 ms without the lookup). A hash index on job_key
-- finds the row in one bucket page: 31-36 ms (docs/performance.md). cluster is checked on
-- the row; a job number repeats across clusters only a few times.
--
-- The unique btree stays: only a btree can enforce that a job is never billed twice.
CREATE INDEX "receipt_items_live_job_key_hash" ON "receipt_items" USING hash ("job_key") WHERE NOT "is_voided";
