-- Whether a run was stopped by its server's shutdown: a scheduled run's check for this interval's run
-- (findLastLiveRunFinish) leaves such a run out. It used to tell one by its error's ending ("stopped:
-- the process is shutting down"), so a source's error ending with those words was taken for a
-- shutdown, and rewording them would have lost every run before. The error keeps its words for people.

-- AlterTable
ALTER TABLE "ingestion_runs" ADD COLUMN     "stopped_by_shutdown" BOOLEAN NOT NULL DEFAULT false;

-- Existing rows: the runs a server's scheduler stopped as it shut down (the only runs stopped for
-- that reason), by the words their error has ended with since that stop was made.
UPDATE "ingestion_runs" SET "stopped_by_shutdown" = true
 WHERE "trigger" = 'schedule' AND "outcome" = 'failed' AND "error" LIKE '%stopped: the process is shutting down';
