-- The billing queue: one row for every finished job whose key no live (not voided) receipt
-- item holds. "What is left to bill" reads it instead of probing receipt_items for every
-- job a user ever ran (15,000 probes, about 100 ms, for a busy user with nothing left to
-- bill; every job there is for the month-end run).
--
-- A narrow table of its own rather than a flag on slurm_jobs: billing 10,000 jobs deletes
-- 10,000 small rows here, where updating a flag rewrote 10,000 wide job rows and their four
-- indexes (the 10,000-job receipt went from 0.6 s to 1.0-1.1 s that way).
--
-- Kept by statement triggers on slurm_jobs and receipt_items, in the transaction that
-- writes them, so the queue changes exactly when what it mirrors becomes visible. The
-- partial unique index on live items stays the guarantee that a job is never billed twice;
-- the queries still check it, and the queue only narrows what they look at.
CREATE TABLE "unbilled_jobs" (
    "job_id" BIGINT NOT NULL,
    "user" VARCHAR(64) NOT NULL,
    "end_at" TIMESTAMPTZ(3),

    CONSTRAINT "unbilled_jobs_pkey" PRIMARY KEY ("job_id")
);

INSERT INTO "unbilled_jobs" ("job_id", "user", "end_at")
SELECT j."id", j."user", j."end_at"
  FROM "slurm_jobs" j
 WHERE j."is_terminal"
   AND NOT EXISTS (
         SELECT 1 FROM "receipt_items" ri
          WHERE ri."cluster" = j."cluster" AND ri."job_key" = j."job_key" AND NOT ri."is_voided");

CREATE INDEX "unbilled_jobs_user_end_at_idx" ON "unbilled_jobs" ("user", "end_at");

-- Jobs that arrive finished and unbilled join the queue.
CREATE FUNCTION "unbilled_jobs_add_new_jobs"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "unbilled_jobs" ("job_id", "user", "end_at")
  SELECT n."id", n."user", n."end_at"
    FROM "new_jobs" n
   WHERE n."is_terminal"
     AND NOT EXISTS (
           SELECT 1 FROM "receipt_items" ri
            WHERE ri."cluster" = n."cluster" AND ri."job_key" = n."job_key" AND NOT ri."is_voided")
  ON CONFLICT ("job_id") DO NOTHING;
  RETURN NULL;
END;
$$;

-- A job that finishes, or whose owner, end or key is corrected, takes its place again.
CREATE FUNCTION "unbilled_jobs_requeue_changed_jobs"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "unbilled_jobs" u
   USING "new_jobs" n JOIN "old_jobs" o ON o."id" = n."id"
   WHERE u."job_id" = n."id"
     AND (n."is_terminal", n."user", n."end_at", n."cluster", n."job_key")
         IS DISTINCT FROM (o."is_terminal", o."user", o."end_at", o."cluster", o."job_key");
  INSERT INTO "unbilled_jobs" ("job_id", "user", "end_at")
  SELECT n."id", n."user", n."end_at"
    FROM "new_jobs" n JOIN "old_jobs" o ON o."id" = n."id"
   WHERE (n."is_terminal", n."user", n."end_at", n."cluster", n."job_key")
         IS DISTINCT FROM (o."is_terminal", o."user", o."end_at", o."cluster", o."job_key")
     AND n."is_terminal"
     AND NOT EXISTS (
           SELECT 1 FROM "receipt_items" ri
            WHERE ri."cluster" = n."cluster" AND ri."job_key" = n."job_key" AND NOT ri."is_voided")
  ON CONFLICT ("job_id") DO NOTHING;
  RETURN NULL;
END;
$$;

CREATE FUNCTION "unbilled_jobs_remove_deleted_jobs"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "unbilled_jobs" u USING "old_jobs" o WHERE u."job_id" = o."id";
  RETURN NULL;
END;
$$;

CREATE FUNCTION "unbilled_jobs_clear"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "unbilled_jobs";
  RETURN NULL;
END;
$$;

-- Billed jobs leave the queue.
CREATE FUNCTION "unbilled_jobs_remove_billed_jobs"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "unbilled_jobs" u
   USING "inserted_items" i JOIN "slurm_jobs" j ON j."cluster" = i."cluster" AND j."job_key" = i."job_key"
   WHERE NOT i."is_voided" AND u."job_id" = j."id";
  RETURN NULL;
END;
$$;

-- Voided, edited or deleted items: the finished jobs of every key they touched are queued
-- again unless another live item still holds the key, and leave if one now does. The jobs
-- are read FOR SHARE: a job whose owner or end another transaction is correcting at that
-- moment is queued with the corrected values once that one commits, not the old ones.
CREATE FUNCTION "unbilled_jobs_resync_keys"("clusters" TEXT[], "job_keys" TEXT[]) RETURNS void LANGUAGE sql AS $$
  DELETE FROM "unbilled_jobs" u
   USING unnest("clusters", "job_keys") AS k("cluster", "job_key")
         JOIN "slurm_jobs" j ON j."cluster" = k."cluster" AND j."job_key" = k."job_key"
   WHERE u."job_id" = j."id"
     AND EXISTS (
           SELECT 1 FROM "receipt_items" ri
            WHERE ri."cluster" = j."cluster" AND ri."job_key" = j."job_key" AND NOT ri."is_voided");
  INSERT INTO "unbilled_jobs" ("job_id", "user", "end_at")
  SELECT j."id", j."user", j."end_at"
    FROM unnest("clusters", "job_keys") AS k("cluster", "job_key")
         JOIN "slurm_jobs" j ON j."cluster" = k."cluster" AND j."job_key" = k."job_key"
   WHERE j."is_terminal"
     AND NOT EXISTS (
           SELECT 1 FROM "receipt_items" ri
            WHERE ri."cluster" = j."cluster" AND ri."job_key" = j."job_key" AND NOT ri."is_voided")
     FOR SHARE OF j
  ON CONFLICT ("job_id") DO NOTHING;
$$;

CREATE FUNCTION "unbilled_jobs_resync_updated_items"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM "unbilled_jobs_resync_keys"(array_agg(k."cluster"), array_agg(k."job_key"))
     FROM (SELECT "cluster", "job_key" FROM "old_items" UNION SELECT "cluster", "job_key" FROM "new_items") k;
  RETURN NULL;
END;
$$;

CREATE FUNCTION "unbilled_jobs_resync_deleted_items"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM "unbilled_jobs_resync_keys"(array_agg(k."cluster"), array_agg(k."job_key"))
     FROM (SELECT DISTINCT "cluster", "job_key" FROM "old_items") k;
  RETURN NULL;
END;
$$;

-- With every item gone, every finished job is unbilled.
CREATE FUNCTION "unbilled_jobs_refill"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "unbilled_jobs" ("job_id", "user", "end_at")
  SELECT j."id", j."user", j."end_at" FROM "slurm_jobs" j WHERE j."is_terminal"
  ON CONFLICT ("job_id") DO NOTHING;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "slurm_jobs_queue_on_insert"
  AFTER INSERT ON "slurm_jobs" REFERENCING NEW TABLE AS "new_jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_add_new_jobs"();
CREATE TRIGGER "slurm_jobs_queue_on_update"
  AFTER UPDATE ON "slurm_jobs" REFERENCING OLD TABLE AS "old_jobs" NEW TABLE AS "new_jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_requeue_changed_jobs"();
CREATE TRIGGER "slurm_jobs_queue_on_delete"
  AFTER DELETE ON "slurm_jobs" REFERENCING OLD TABLE AS "old_jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_remove_deleted_jobs"();
CREATE TRIGGER "slurm_jobs_queue_on_truncate"
  AFTER TRUNCATE ON "slurm_jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_clear"();

CREATE TRIGGER "receipt_items_queue_on_insert"
  AFTER INSERT ON "receipt_items" REFERENCING NEW TABLE AS "inserted_items"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_remove_billed_jobs"();
CREATE TRIGGER "receipt_items_queue_on_update"
  AFTER UPDATE ON "receipt_items" REFERENCING OLD TABLE AS "old_items" NEW TABLE AS "new_items"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_resync_updated_items"();
CREATE TRIGGER "receipt_items_queue_on_delete"
  AFTER DELETE ON "receipt_items" REFERENCING OLD TABLE AS "old_items"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_resync_deleted_items"();
CREATE TRIGGER "receipt_items_queue_on_truncate"
  AFTER TRUNCATE ON "receipt_items"
  FOR EACH STATEMENT EXECUTE FUNCTION "unbilled_jobs_refill"();
