-- No query reads receipt items by slurm_job_id: items are found by receipt (receipt_id) or
-- by billing key (the live-item unique index), and idx_scan of this index stayed 0 through
-- every bench on 1,000,000 jobs. Every billed job still paid to maintain it (in EXPLAIN
-- ANALYZE, inserting a 3,866-item receipt's items took 79 ms with it and 31-37 ms without),
-- and it held 15 MB per 1,000,000 items. The column stays: it records which job row a
-- receipt priced.
DROP INDEX "receipt_items_slurm_job_id_idx";
