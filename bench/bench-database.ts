import pg from 'pg';
import { applyMigrations } from '../src/db/migrations.js';
import { hashPassword } from '../src/modules/users/password.js';
import { createLogger } from '../src/shared/logger.js';

/**
 * The benchmark database: 500 users and 1,000,000 jobs, built inside PostgreSQL with
 * generate_series (about a minute) and reused by every bench script while it exists.
 *  - u000..u499: 1,780 jobs each over the last 90 days (890,000 jobs)
 *  - heavy: 100,000 jobs in the last 30 days (the CSV bench)
 *  - payer: 10,000 jobs in the last 30 days (the receipt bench)
 * Every account's password is `bench-password`.
 */
export const BENCH_USERS = 500;
export const BENCH_PASSWORD = 'bench-password';

export function benchDatabaseUrl(): string {
  const base = new URL(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
  base.pathname = `/${process.env.BENCH_DATABASE ?? 'hb_bench'}`;
  return base.toString();
}

const JOB_INSERT = `
  INSERT INTO slurm_jobs (cluster, job_id, job_key, name, "user", account, partition, state, is_terminal,
                          start_at, end_at, elapsed_sec, alloc_cpus, alloc_mem_mb, alloc_gpus, req_gpus,
                          cpu_time_sec, total_cpu_sec, step_mem_gb_hours, source)
  SELECT 'bench', $1::text || g, $1::text || g, 'job-' || (g % 10),
         $2::text || CASE WHEN $3::int > 1 THEN lpad((g % $3::int)::text, 3, '0') ELSE '' END,
         'acct' || (g % 5), CASE WHEN g % 5 = 0 THEN 'gpu' ELSE 'compute' END, 'COMPLETED', true,
         e - make_interval(secs => 60 + g % 7200), e, 60 + g % 7200, 1 + g % 16, (1 + g % 16) * 2048,
         CASE WHEN g % 5 = 0 THEN 1 ELSE 0 END, CASE WHEN g % 5 = 0 THEN 1 ELSE 0 END,
         (60 + g % 7200) * (1 + g % 16), ((60 + g % 7200) * (1 + g % 16) * 0.7)::numeric(18,3),
         CASE WHEN g % 3 = 0 THEN NULL ELSE ((g % 1000) / 100.0)::numeric(18,6) END, 'bench'
    FROM generate_series(1, $4::int) AS g,
         LATERAL (SELECT now() - make_interval(secs => (g::bigint * 7919) % ($5::bigint * 86400)) AS e) AS ends`;

/** Creates and fills the bench database unless it already holds the jobs. */
export async function ensureBenchDatabase(): Promise<string> {
  const url = benchDatabaseUrl();
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({
    connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
  });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  await applyMigrations(url, createLogger('warn'));

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM slurm_jobs');
    if (Number(rows[0]?.count) >= 1_000_000) return url;
    console.log('building the bench database: 500 users, 1,000,000 jobs...');
    const started = Date.now();
    await client.query(
      'TRUNCATE slurm_jobs, receipt_items, receipts, tier_overrides, pricing_rates, pricing_tiers, users CASCADE',
    );
    await client.query(`INSERT INTO pricing_tiers (name, description, is_default) VALUES
      ('mu', 'University members', true), ('gov', 'Government', false), ('private', 'Companies', false)`);
    await client.query(`INSERT INTO pricing_rates (tier_id, cpu_per_hour, gpu_per_hour, mem_per_hour, currency, effective_from, created_by)
      SELECT id, r.cpu, r.gpu, r.mem, 'THB', '2020-01-01', 'bench' FROM pricing_tiers
      JOIN (VALUES ('mu', 0.5, 12.0, 0.05), ('gov', 0.8, 18.0, 0.08), ('private', 1.5, 35.0, 0.15)) AS r(name, cpu, gpu, mem)
      USING (name)`);
    const hash = await hashPassword(BENCH_PASSWORD);
    await client.query(
      `INSERT INTO users (username, password_hash, role)
       SELECT 'u' || lpad(g::text, 3, '0'), $1, 'user'::"Role" FROM generate_series(0, $2 - 1) AS g
       UNION ALL SELECT 'heavy', $1, 'user' UNION ALL SELECT 'payer', $1, 'user'
       UNION ALL SELECT 'benchadmin', $1, 'admin'`,
      [hash, BENCH_USERS],
    );
    await client.query(JOB_INSERT, ['u', 'u', BENCH_USERS, 890_000, 90]);
    await client.query(JOB_INSERT, ['h', 'heavy', 1, 100_000, 30]);
    await client.query(JOB_INSERT, ['p', 'payer', 1, 10_000, 30]);
    await client.query('ANALYZE');
    console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.end();
  }
  return url;
}
