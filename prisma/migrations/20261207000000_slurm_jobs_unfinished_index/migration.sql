-- A month-end run counts, by user, the jobs ended by its day that it leaves out because they have not
-- finished (is_terminal false, not a superseded REQUEUED run; receipts.repository.ts,
-- isUnfinishedUnbilledBefore), and Create receipt counts a user's. Such jobs are a handful among
-- every job, but no index had is_terminal: the run's grouped query read the whole table (about 14,300
-- pages, 65-75 ms at 200,000 jobs of which 15 unfinished, growing with every job) and a receipt read each of
-- the user's jobs of the window (1,000 heap pages, 4-7 ms). This partial index holds only those
-- jobs: 1 page for the receipt's count, 3 heap pages for the run's. Its WHERE is the query's, word for
-- word, so the planner can use it; one without the REQUEUED clause also holds every superseded run
-- and its scan read each of them from the table (2,000 pages at 1% requeued).

-- CreateIndex
CREATE INDEX "slurm_jobs_unfinished_user_end_at_idx" ON "slurm_jobs" ("user", "end_at")
  WHERE NOT "is_terminal" AND "state" <> 'REQUEUED';
