import { once } from 'node:events';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { applyMigrations } from '../../src/db/migrations.js';
import { DEMO_TIERS } from '../../src/modules/demo/demo.service.js';
import {
  createRandom,
  type DemoJob,
  generateJob,
  JOB_ACCOUNTS,
  summarizeJob,
} from '../../src/modules/demo/demo-jobs.js';
import { hashPassword } from '../../src/modules/users/password.js';
import { createLogger } from '../../src/shared/logger.js';
import { benchUsername, NAMED_USERS } from './bench-users.js';
import { toCopyLine } from './copy-text.js';

export const BENCH_CLUSTER = 'bench';

export interface BenchDataOptions {
  databaseUrl: string;
  users: number;
  jobs: number;
  /** Jobs end over this many days before `now`. */
  days?: number;
  now?: Date;
  seed?: number;
  currency?: string;
  /** Empty the tables first instead of refusing a database that has users. */
  isReset?: boolean;
  onProgress?: (message: string) => void;
}

export interface BenchDataReport {
  users: number;
  jobs: number;
  receipts: number;
  receiptItems: number;
  hashSeconds: number;
  jobSeconds: number;
  jobsPerSecond: number;
  totalSeconds: number;
}

const JOB_COLUMNS = [
  'cluster',
  'job_id',
  'job_key',
  'name',
  'user',
  'account',
  'partition',
  'qos',
  'state',
  'is_terminal',
  'exit_code',
  'submit_at',
  'start_at',
  'end_at',
  'elapsed_sec',
  'timelimit_sec',
  'alloc_cpus',
  'alloc_mem_mb',
  'alloc_gpus',
  'alloc_nodes',
  'alloc_billing',
  'req_cpus',
  'req_mem_mb',
  'req_gpus',
  'alloc_tres',
  'req_tres',
  'cpu_time_sec',
  'total_cpu_sec',
  'step_mem_gb_hours',
  'max_rss_bytes',
  'step_count',
  'steps',
  'node_list',
  'source',
] as const;

// Jobs are written in chunks of this many: the stream never holds more than one chunk.
const CHUNK_JOBS = 2000;
// argon2 runs on libuv's thread pool (4 threads by default).
const HASH_CONCURRENCY = 4;
const FIRST_JOB_ID = 1_000_000;

/** The COPY line of one job, with the sums the ingestion stores beside the steps. */
export function toJobCopyLine(job: DemoJob): string {
  const { totalCpuSec, stepMemGbHours, maxRssBytes, tres } = summarizeJob(job);
  return toCopyLine([
    BENCH_CLUSTER,
    String(job.jobId),
    String(job.jobId),
    job.name,
    job.user,
    job.account,
    job.partition,
    job.qos,
    job.state,
    true,
    job.exitCode,
    job.submit,
    job.start,
    job.end,
    job.elapsedSec,
    job.timelimitMin * 60,
    job.allocCpus,
    job.allocMemMb,
    job.allocGpus,
    job.allocNodes,
    job.allocCpus,
    job.allocCpus,
    job.allocMemMb,
    job.allocGpus,
    tres,
    tres,
    job.elapsedSec * job.allocCpus,
    totalCpuSec.toFixed(3),
    stepMemGbHours.toFixed(6),
    maxRssBytes,
    job.steps.length,
    JSON.stringify(job.steps),
    job.nodeList,
    'bench',
  ]);
}

/**
 * Who ran a job: alice 2%, bob 1%, the rest spread over the generated users with a
 * skew (a few heavy users, a long tail), as on a real cluster.
 */
function pickJobUser(random: () => number, users: number): string {
  const roll = random();
  if (roll < 0.02) return 'alice';
  if (roll < 0.03) return 'bob';
  return benchUsername(Math.min(users, 1 + Math.floor(users * random() ** 1.5)));
}

async function hashAll(usernames: string[]): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (let index = 0; index < usernames.length; index += HASH_CONCURRENCY) {
    const batch = usernames.slice(index, index + HASH_CONCURRENCY);
    const results = await Promise.all(batch.map((username) => hashPassword(username)));
    for (const [position, username] of batch.entries()) hashes.set(username, results[position] as string);
  }
  return hashes;
}

async function resetTables(client: pg.Client) {
  // audit_log is append-only by design and is left alone.
  await client.query(`TRUNCATE receipt_items, payment_events, payments, receipts, slurm_jobs, tier_overrides,
    pricing_rates, pricing_tiers, session, auth_throttle, users RESTART IDENTITY CASCADE`);
}

async function insertUsersAndTiers(
  client: pg.Client,
  options: Required<Pick<BenchDataOptions, 'users' | 'seed' | 'currency'>>,
  hashes: Map<string, string>,
) {
  await client.query('BEGIN');
  try {
    for (const tier of DEMO_TIERS) {
      const { rows } = await client.query<{ id: number }>(
        'INSERT INTO pricing_tiers (name, description, is_default) VALUES ($1, $2, $3) RETURNING id',
        [tier.name, tier.description, tier.isDefault],
      );
      await client.query(
        `INSERT INTO pricing_rates (tier_id, cpu_per_hour, gpu_per_hour, mem_per_hour, currency, effective_from, created_by)
         VALUES ($1, $2, $3, $4, $5, '2020-01-01T00:00:00Z', 'bench-data')`,
        [rows[0]?.id, tier.rates.cpu, tier.rates.gpu, tier.rates.mem, options.currency],
      );
    }
    const rows = [
      ...NAMED_USERS.map((user) => [user.username, user.role]),
      ...Array.from({ length: options.users }, (_, index) => [benchUsername(index + 1), 'user']),
    ];
    for (let index = 0; index < rows.length; index += 1000) {
      const batch = rows.slice(index, index + 1000);
      const values = batch.map(
        (_, position) => `($${position * 3 + 1}, $${position * 3 + 2}, $${position * 3 + 3}::"Role")`,
      );
      await client.query(
        `INSERT INTO users (username, password_hash, role) VALUES ${values.join(', ')}`,
        batch.flatMap(([username, role]) => [username, hashes.get(username as string), role]),
      );
    }
    // About a fifth of the users pay the government rate and a tenth the private one.
    const random = createRandom(options.seed + 1);
    const overrides: [string, string][] = [['bob', 'gov']];
    for (let n = 1; n <= options.users; n++) {
      const roll = random();
      if (roll < 0.2) overrides.push([benchUsername(n), 'gov']);
      else if (roll < 0.3) overrides.push([benchUsername(n), 'private']);
    }
    for (const [username, tier] of overrides) {
      await client.query(
        `INSERT INTO tier_overrides (username, tier_id, created_by)
         SELECT $1, id, 'bench-data' FROM pricing_tiers WHERE name = $2`,
        [username, tier],
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

async function copyJobs(
  client: pg.Client,
  options: { users: number; jobs: number; days: number; now: Date; seed: number },
  onProgress: (message: string) => void,
) {
  const random = createRandom(options.seed);
  const spanMs = options.days * 86_400_000;
  const stream = client.query(
    copyFrom(`COPY slurm_jobs (${JOB_COLUMNS.map((column) => `"${column}"`).join(', ')}) FROM STDIN`),
  );
  const finished = once(stream, 'finish');
  const started = Date.now();
  let lastReport = started;
  for (let first = 0; first < options.jobs; first += CHUNK_JOBS) {
    let chunk = '';
    for (let index = first; index < Math.min(options.jobs, first + CHUNK_JOBS); index++) {
      const user = pickJobUser(random, options.users);
      const userNumber = Number(user.replace(/\D/g, '')) || 0;
      const job = generateJob(random, {
        jobId: FIRST_JOB_ID + index,
        user,
        // A researcher charges one project account most of the time.
        accountOf: (_name, pick) =>
          random() < 0.9 ? (JOB_ACCOUNTS[userNumber % JOB_ACCOUNTS.length] as string) : pick(JOB_ACCOUNTS),
        now: options.now,
        spanMs,
      });
      chunk += toJobCopyLine(job);
    }
    if (!stream.write(chunk)) await once(stream, 'drain');
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      const done = Math.min(options.jobs, first + CHUNK_JOBS);
      onProgress(
        `  ${done.toLocaleString('en')} jobs, ${Math.round(done / ((lastReport - started) / 1000)).toLocaleString('en')} rows/s`,
      );
    }
  }
  stream.end();
  await finished;
}

/**
 * Receipts as a centre would have them after a few months: a third of the users paid
 * for their jobs of the first quarter of the year, a sixth have the following month
 * pending. Windows do not overlap, so each job is on at most one live receipt (the
 * partial unique index on receipt_items).
 */
async function insertReceipts(
  client: pg.Client,
  options: { users: number; days: number; now: Date },
): Promise<{ receipts: number; items: number }> {
  const yearStart = new Date(options.now.getTime() - options.days * 86_400_000);
  const quarterEnd = new Date(yearStart.getTime() + 91 * 86_400_000);
  const monthEnd = new Date(quarterEnd.getTime() + 30 * 86_400_000);
  const waves = [
    { status: 'paid', start: yearStart, end: quarterEnd, every: 3 },
    { status: 'pending', start: quarterEnd, end: monthEnd, every: 6 },
  ];
  await client.query('BEGIN');
  try {
    let receipts = 0;
    let items = 0;
    for (const wave of waves) {
      const usernames = ['alice'];
      for (let n = wave.every; n <= options.users; n += wave.every) usernames.push(benchUsername(n));
      const inserted = await client.query<{ id: number }>(
        `INSERT INTO receipts (username, billed_through, window_start, window_end, status, total, currency, tier_name,
           rate_id, rates_snapshot, rates_locked_at, created_by, paid_at, payment_method, tx_ref, created_at)
         SELECT u.username, ($3::timestamptz - interval '1 day')::date, $2, $3, $4::"ReceiptStatus", 0, r.currency, t.name,
           r.id, jsonb_build_object('tier', t.name, 'cpuPerHour', r.cpu_per_hour::text, 'gpuPerHour', r.gpu_per_hour::text,
             'memPerHour', r.mem_per_hour::text, 'currency', r.currency),
           $3, 'bench-data', CASE WHEN $4 = 'paid' THEN $3::timestamptz + interval '5 days' END,
           CASE WHEN $4 = 'paid' THEN 'bank_transfer' END, CASE WHEN $4 = 'paid' THEN 'BENCH-' || u.id END, $3
         FROM users u
         JOIN pricing_tiers t ON t.id = COALESCE(
           (SELECT o.tier_id FROM tier_overrides o WHERE o.username = u.username),
           (SELECT d.id FROM pricing_tiers d WHERE d.is_default))
         JOIN pricing_rates r ON r.tier_id = t.id
         WHERE u.username = ANY($1)
         RETURNING id`,
        [usernames, wave.start, wave.end, wave.status],
      );
      receipts += inserted.rowCount ?? 0;
      const itemResult = await client.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost)
         SELECT rc.id, j.id, j.cluster, j.job_key, j.job_id, p.cpu_hours, p.gpu_hours, p.mem_gb_hours,
           round(p.cpu_hours * r.cpu_per_hour + p.gpu_hours * r.gpu_per_hour + p.mem_gb_hours * r.mem_per_hour, 4)
         FROM receipts rc
         JOIN pricing_rates r ON r.id = rc.rate_id
         JOIN slurm_jobs j ON j."user" = rc.username AND j.end_at >= rc.window_start AND j.end_at < rc.window_end
         CROSS JOIN LATERAL (SELECT round(j.cpu_time_sec / 3600.0, 6) AS cpu_hours,
           round(j.alloc_gpus * j.elapsed_sec / 3600.0, 6) AS gpu_hours,
           round(coalesce(j.step_mem_gb_hours, 0), 6) AS mem_gb_hours) p
         WHERE rc.id = ANY($1)`,
        [inserted.rows.map((row) => row.id)],
      );
      items += itemResult.rowCount ?? 0;
    }
    await client.query(
      `UPDATE receipts rc SET total = s.total
       FROM (SELECT receipt_id, sum(cost) AS total FROM receipt_items GROUP BY receipt_id) s
       WHERE s.receipt_id = rc.id AND rc.created_by = 'bench-data'`,
    );
    await client.query('COMMIT');
    return { receipts, items };
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/**
 * Fills a database for load tests: the demo logins, `users` researchers (password =
 * username), the three tiers with rates, `jobs` jobs with steps over `days` streamed
 * through COPY in bounded memory, and some receipts. Refuses a database that has users
 * unless isReset.
 */
export async function generateBenchData(options: BenchDataOptions): Promise<BenchDataReport> {
  const onProgress = options.onProgress ?? (() => undefined);
  const settings = {
    users: options.users,
    jobs: options.jobs,
    days: options.days ?? 365,
    now: options.now ?? new Date(),
    seed: options.seed ?? 8,
    currency: options.currency ?? 'THB',
  };
  const started = Date.now();
  await applyMigrations(options.databaseUrl, createLogger('warn'));
  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM users');
    const existing = Number(rows[0]?.count ?? 0);
    if (existing > 0 && !options.isReset) {
      throw new Error(
        `the database already has ${existing} users; use an empty database or pass --reset to empty it first`,
      );
    }
    if (options.isReset) await resetTables(client);

    const usernames = [
      ...NAMED_USERS.map((user) => user.username),
      ...Array.from({ length: settings.users }, (_, index) => benchUsername(index + 1)),
    ];
    onProgress(`hashing ${usernames.length} passwords (argon2id, password = username)`);
    const hashStarted = Date.now();
    const hashes = await hashAll(usernames);
    const hashSeconds = (Date.now() - hashStarted) / 1000;
    await insertUsersAndTiers(client, settings, hashes);

    onProgress(`writing ${settings.jobs.toLocaleString('en')} jobs over ${settings.days} days with COPY`);
    const jobStarted = Date.now();
    await copyJobs(client, settings, onProgress);
    const jobSeconds = (Date.now() - jobStarted) / 1000;

    onProgress('writing receipts');
    const { receipts, items } = await insertReceipts(client, settings);
    onProgress('ANALYZE');
    await client.query('ANALYZE');
    return {
      users: usernames.length,
      jobs: settings.jobs,
      receipts,
      receiptItems: items,
      hashSeconds,
      jobSeconds,
      jobsPerSecond: Math.round(settings.jobs / Math.max(jobSeconds, 0.001)),
      totalSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    await client.end();
  }
}
