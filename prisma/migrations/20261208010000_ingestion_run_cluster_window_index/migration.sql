-- A cluster's high-water mark (the newest completed run's window end, at each scheduled run and page
-- view) read from its own rows newest first: on (outcome, window_end) the runs without a cluster, none
-- once adopted, were looked for behind every completed run ever recorded, and a cluster that had never
-- completed a run behind every run of the other.
-- CreateIndex
CREATE INDEX "ingestion_runs_cluster_outcome_window_end_idx" ON "ingestion_runs"("cluster", "outcome", "window_end" DESC);
