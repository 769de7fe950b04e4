import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../../src/db/migrations.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two migrations were changed in place on 2026-12-01 after commits that applied their first
// versions (8c48074, 8d34533); the collation one only in its comment (ac46e5f). A database
// migrated by those commits kept the first versions: these are their checksums and objects.
const FIRST_VERSIONS = {
  '20261201000000_unbilled_jobs': '5187514407bbb97c32352624a3f377b4e6300cd825490d7b531956012c50b6bc',
  '20261201190000_job_keys_byte_collation': '2d10aaf4780a8ddd579a7b0d35754217a357162fd8bc867e01dd78c5f177aac0',
  '20261201200000_user_jobs_in_page_order': 'e0b4ff20ea39642b13655438785dc0704af640ffab47de28d388ea550e3b66d0',
};

const FIRST_RESYNC_KEYS = `CREATE OR REPLACE FUNCTION "unbilled_jobs_resync_keys"("clusters" TEXT[], "job_keys" TEXT[]) RETURNS void LANGUAGE sql AS $$
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
  ON CONFLICT ("job_id") DO NOTHING;
$$`;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** A logger that keeps the messages of its warnings. */
function recordingLogger() {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
  return { logger, warnings };
}

/** The database as the commits of 2026-12-01 that applied the first versions left it. */
async function migrateAsOnTheFirstVersions() {
  await db.pool.query(FIRST_RESYNC_KEYS);
  await db.pool.query('DROP INDEX "slurm_jobs_user_end_at_id_idx"');
  await db.pool.query('CREATE INDEX "slurm_jobs_user_end_at_id_idx" ON "slurm_jobs" ("user", "end_at", "id")');
  for (const [name, checksum] of Object.entries(FIRST_VERSIONS)) {
    await db.pool.query('UPDATE "_prisma_migrations" SET checksum = $2 WHERE migration_name = $1', [name, checksum]);
  }
  // The migration that brings such a database up to the edited versions came later.
  await db.pool.query(
    `DELETE FROM "_prisma_migrations" WHERE migration_name = '20261203130000_edited_migrations_catch_up'`,
  );
}

describe('a database migrated with the first versions of migrations edited afterwards', () => {
  it('gets what the edited versions create, and stops warning that they were edited', async () => {
    await migrateAsOnTheFirstVersions();

    const upgrade = recordingLogger();
    await applyMigrations(db.url, upgrade.logger);

    // A void re-queues its jobs reading them FOR SHARE: without it, a job whose owner ingestion
    // was correcting at that moment went back to the queue under the old owner.
    const resync = await db.pool.query<{ body: string }>(
      `SELECT pg_get_functiondef('unbilled_jobs_resync_keys(text[], text[])'::regprocedure) AS body`,
    );
    expect(resync.rows[0]?.body).toContain('FOR SHARE OF j');
    // /me and /me.csv read a user's jobs from the index alone only with its INCLUDE columns.
    const index = await db.pool.query<{ definition: string }>(
      `SELECT pg_get_indexdef('slurm_jobs_user_end_at_id_idx'::regclass) AS definition`,
    );
    expect(index.rows[0]?.definition).toMatch(/INCLUDE \(cluster, job_id, job_key, name, state, .*step_mem_gb_hours\)/);

    const nextStart = recordingLogger();
    await applyMigrations(db.url, nextStart.logger);
    expect(nextStart.warnings).toEqual([]);
  });

  it('leaves a database that applied the edited versions as it was', async () => {
    const before = await db.pool.query<{ oid: number }>(`SELECT 'slurm_jobs_user_end_at_id_idx'::regclass::oid AS oid`);
    const again = recordingLogger();
    await applyMigrations(db.url, again.logger);
    const after = await db.pool.query<{ oid: number }>(`SELECT 'slurm_jobs_user_end_at_id_idx'::regclass::oid AS oid`);
    expect(after.rows[0]?.oid).toBe(before.rows[0]?.oid);
    expect(again.warnings).toEqual([]);
  });
});

describe('a database migrated by a newer release', () => {
  it('is said so at start, naming the migrations this release does not have', async () => {
    await db.pool.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
       VALUES ('00000000-0000-4000-8000-000000000001', 'x', now(), '29991231000000_from_the_future', 1)`,
    );
    const start = recordingLogger();
    await applyMigrations(db.url, start.logger);
    expect(start.warnings).toEqual([
      expect.stringMatching(
        /^the database was migrated by a newer release: 1 applied migration\(s\) are not in this one \(newest 29991231000000_from_the_future\)/,
      ),
    ]);
    await db.pool.query(`DELETE FROM "_prisma_migrations" WHERE migration_name = '29991231000000_from_the_future'`);
  });
});

describe('a database whose role or database sets statement_timeout', () => {
  // docs/operations.md names statement_timeout as the tool for slow queries; a migration that
  // rebuilds an index or rewrites a column of a large table takes longer than a request may.
  it('is migrated all the same, also by two hosts at once', async () => {
    const big = await createTestDatabase();
    try {
      await big.pool.query(
        `INSERT INTO slurm_jobs (cluster, job_id, job_key, "user", state, is_terminal, source, end_at)
         SELECT 'lab', g::text, g::text, 'u' || (g % 50), 'COMPLETED', true, 'file', now() - g * interval '1 minute'
           FROM generate_series(1, 200000) g`,
      );
      await big.pool.query(FIRST_RESYNC_KEYS);
      await big.pool.query('DROP INDEX "slurm_jobs_user_end_at_id_idx"');
      await big.pool.query('CREATE INDEX "slurm_jobs_user_end_at_id_idx" ON "slurm_jobs" ("user", "end_at", "id")');
      await big.pool.query(
        `DELETE FROM "_prisma_migrations" WHERE migration_name = '20261203130000_edited_migrations_catch_up'`,
      );
      // Far below what rebuilding the covering index of 200,000 jobs takes.
      await big.pool.query(`ALTER DATABASE ${big.name} SET statement_timeout = '20ms'`);

      // The second waits for the first's lock longer than statement_timeout too.
      const [first, second] = await Promise.all([
        applyMigrations(big.url, recordingLogger().logger),
        applyMigrations(big.url, recordingLogger().logger),
      ]);
      expect([...first, ...second]).toEqual(['20261203130000_edited_migrations_catch_up']);

      const index = await big.pool.query<{ definition: string }>(
        `SELECT pg_get_indexdef('slurm_jobs_user_end_at_id_idx'::regclass) AS definition`,
      );
      expect(index.rows[0]?.definition).toContain('INCLUDE');
    } finally {
      await big.drop();
    }
  });
});
