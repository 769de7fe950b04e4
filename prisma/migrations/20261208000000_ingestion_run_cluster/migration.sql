-- The cluster a run read (SLURM_CLUSTER, '' for an instance where it is unset): its window, lock, dead
-- runs and "last run" are its cluster's, so that two instances on one database, one per cluster, each
-- keep their own. They shared them, and one cluster's runs moved the window past the jobs of the other's
-- outage, which were never read nor billed.

-- AlterTable
ALTER TABLE "ingestion_runs" ADD COLUMN     "cluster" VARCHAR(64);

-- Existing rows keep NULL: a migration cannot know SLURM_CLUSTER. NULL reads as "the instance's
-- cluster, whatever it is", and the first run of a release with this column gives them its cluster
-- (ingestion.repository.ts, adoptRunsWithoutCluster), so a site's window goes on where it was.
