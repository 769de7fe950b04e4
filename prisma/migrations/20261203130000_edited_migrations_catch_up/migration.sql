-- Three migrations were changed after some databases had applied them (2026-12-01): such a
-- database kept the first version, and every start and db:migrate warned "applied migration was
-- edited afterwards" with nothing the operator could do about it. This brings those databases to
-- what the edited versions create, and records the edited versions as applied. On a database that
-- applied the edited versions it changes nothing (the function is replaced by the same one).
--
-- 20261201000000_unbilled_jobs: a void re-queues its jobs reading them FOR SHARE, so a job whose
-- owner or end ingestion is correcting at that moment is queued with the corrected values, not the
-- old ones (the job could otherwise be offered to its old owner's next receipt).
CREATE OR REPLACE FUNCTION "unbilled_jobs_resync_keys"("clusters" TEXT[], "job_keys" TEXT[]) RETURNS void LANGUAGE sql AS $$
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

-- 20261201200000_user_jobs_in_page_order: the index INCLUDEs every column /me and /me.csv read, so
-- both are index-only scans. Rebuilt only where it has no INCLUDE columns (the first version).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_index
                  WHERE indexrelid = to_regclass('"slurm_jobs_user_end_at_id_idx"') AND indnatts > indnkeyatts) THEN
    DROP INDEX IF EXISTS "slurm_jobs_user_end_at_id_idx";
    CREATE INDEX "slurm_jobs_user_end_at_id_idx" ON "slurm_jobs" ("user", "end_at", "id")
      INCLUDE ("cluster", "job_id", "job_key", "name", "state", "account", "partition", "start_at", "elapsed_sec",
               "total_cpu_sec", "cpu_time_sec", "alloc_cpus", "alloc_gpus", "req_gpus", "alloc_mem_mb",
               "step_mem_gb_hours");
  END IF;
END;
$$;

-- The edited versions are now what these databases hold (20261201190000 changed only its comment).
UPDATE "_prisma_migrations" m
   SET "checksum" = v."edited"
  FROM (VALUES
         ('20261201000000_unbilled_jobs',
          '5187514407bbb97c32352624a3f377b4e6300cd825490d7b531956012c50b6bc',
          '7d902897262a6975986a88ae9948c6b6d8eb9dd3e7e7a44a1691e95823b11645'),
         ('20261201190000_job_keys_byte_collation',
          '2d10aaf4780a8ddd579a7b0d35754217a357162fd8bc867e01dd78c5f177aac0',
          'e3a0f03ba2343201729f9db3afef90ef7dcc0b784d6f8a3a37df0160bdf4781d'),
         ('20261201200000_user_jobs_in_page_order',
          'e0b4ff20ea39642b13655438785dc0704af640ffab47de28d388ea550e3b66d0',
          '8206416063ea0836f2e9ed873d12b7c367a4727253ffe44f5aafe927bb132476')
       ) AS v("name", "first", "edited")
 WHERE m."migration_name" = v."name" AND m."checksum" = v."first";
