-- The cluster a run read (SLURM_CLUSTER, '' for an instance where it is unset): its window, lock, dead
-- runs and "last run" are its cluster's, so that two instances on one database, one per cluster, each
-- keep their own. They shared them, and one cluster's runs moved the window past the jobs of the other's
-- outage, which were never read nor billed.

-- AlterTable
ALTER TABLE "ingestion_runs" ADD COLUMN     "cluster" VARCHAR(64);

-- Existing rows keep NULL: a migration cannot know SLURM_CLUSTER. NULL reads as "the instance's
-- cluster, whatever it is", and the first run of a release with this column gives them its cluster
-- (ingestion.repository.ts, adoptRunsWithoutCluster), so a site's window goes on where it was.

-- A cluster's newest runs by id (the freshness gauges at each scrape, "this interval's run", the file's
-- last run), found among its own rows: with two clusters' runs interleaved, `ORDER BY id DESC` on the
-- primary key scanned back over every run of the other cluster (600,000 runs, a cluster that never
-- completed one: 200 ms at each scrape; 0.2 ms with it).
-- CreateIndex
CREATE INDEX "ingestion_runs_cluster_id_idx" ON "ingestion_runs"("cluster", "id" DESC);
