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
import { minorUnitDigits } from '../../src/modules/pricing/pricing.js';
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
  /**
   * Researchers with a set number of jobs of their own, ending over their own last `days`,
   * besides `jobs` and on no receipt (password = username, default tier): the billing benches'
   * CSV user and the user whose unbilled jobs they bill.
   */
  soloUsers?: SoloUser[];
  onProgress?: (message: string) => void;
}

export interface SoloUser {
  username: string;
  jobs: number;
  days: number;
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
    stepMemGbHours,
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
    pricing_rates, pricing_tiers, session, auth_throttle,
    auth_network_throttle, users RESTART IDENTITY CASCADE`);
}

async function insertUsersAndTiers(
  client: pg.Client,
  options: Required<Pick<BenchDataOptions, 'users' | 'seed' | 'currency' | 'soloUsers'>>,
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
      ...options.soloUsers.map((user) => [user.username, 'user']),
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

interface JobSettings {
  users: number;
  jobs: number;
  days: number;
  now: Date;
  seed: number;
  soloUsers: SoloUser[];
}

/** The jobs in COPY order: `jobs` spread over the users, then each solo user's own. */
function* benchJobs(options: JobSettings): Generator<DemoJob> {
  const random = createRandom(options.seed);
  let jobId = FIRST_JOB_ID;
  const makeJob = (user: string, spanMs: number) => {
    const userNumber = Number(user.replace(/\D/g, '')) || 0;
    return generateJob(random, {
      jobId: jobId++,
      user,
      // A researcher charges one project account most of the time.
      accountOf: (_name, pick) =>
        random() < 0.9 ? (JOB_ACCOUNTS[userNumber % JOB_ACCOUNTS.length] as string) : pick(JOB_ACCOUNTS),
      now: options.now,
      spanMs,
    });
  };
  for (let index = 0; index < options.jobs; index++) {
    yield makeJob(pickJobUser(random, options.users), options.days * 86_400_000);
  }
  for (const solo of options.soloUsers) {
    for (let index = 0; index < solo.jobs; index++) yield makeJob(solo.username, solo.days * 86_400_000);
  }
}

async function copyJobs(client: pg.Client, options: JobSettings, onProgress: (message: string) => void) {
  const total = options.jobs + options.soloUsers.reduce((sum, user) => sum + user.jobs, 0);
  const stream = client.query(
    copyFrom(`COPY slurm_jobs (${JOB_COLUMNS.map((column) => `"${column}"`).join(', ')}) FROM STDIN`),
  );
  const finished = once(stream, 'finish');
  const started = Date.now();
  let lastReport = started;
  let done = 0;
  let chunk = '';
  for (const job of benchJobs(options)) {
    chunk += toJobCopyLine(job);
    done += 1;
    if (done % CHUNK_JOBS !== 0 && done !== total) continue;
    if (!stream.write(chunk)) await once(stream, 'drain');
    chunk = '';
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      onProgress(
        `  ${done.toLocaleString('en')} jobs, ${Math.round(done / ((lastReport - started) / 1000)).toLocaleString('en')} rows/s`,
      );
    }
  }
  stream.end();
  await finished;
  return total;
}

/**
 * Receipts as a centre would have them after a few months: a third of the users paid
 * for their jobs of the first quarter of the year (of the span), a sixth have the
 * following month pending. Windows do not overlap, so each job is on at most one live
 * receipt (the partial unique index on receipt_items). Solo users get none.
 */
async function insertReceipts(
  client: pg.Client,
  options: { users: number; days: number; now: Date; currency: string },
): Promise<{ receipts: number; items: number }> {
  // 91 and 30 days of a 365-day span; the same shares of a shorter or longer one.
  const yearStart = new Date(options.now.getTime() - options.days * 86_400_000);
  const quarterEnd = new Date(yearStart.getTime() + Math.round((options.days * 91) / 365) * 86_400_000);
  const monthEnd = new Date(quarterEnd.getTime() + Math.max(1, Math.round((options.days * 30) / 365)) * 86_400_000);
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
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
         SELECT rc.id, j.id, j.cluster, j.job_key, j.job_id, p.cpu_hours, p.gpu_hours, p.mem_gb_hours,
           -- Rounded half-up to the minor unit as the app rounds each item, so the costs add up to the total.
           round(p.cpu_hours * r.cpu_per_hour + p.gpu_hours * r.gpu_per_hour + p.mem_gb_hours * r.mem_per_hour, $2::int),
           j.end_at
         FROM receipts rc
         JOIN pricing_rates r ON r.id = rc.rate_id
         JOIN slurm_jobs j ON j."user" = rc.username AND j.end_at >= rc.window_start AND j.end_at < rc.window_end
         CROSS JOIN LATERAL (SELECT round(j.cpu_time_sec / 3600.0, 6) AS cpu_hours,
           round(j.alloc_gpus * j.elapsed_sec / 3600.0, 6) AS gpu_hours,
           round(coalesce(j.step_mem_gb_hours, 0), 6) AS mem_gb_hours) p
         WHERE rc.id = ANY($1)`,
        [inserted.rows.map((row) => row.id), minorUnitDigits(options.currency)],
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

// The comment ensureBenchDatabase gives a database it finished building.
const MARKER_PREFIX = 'hpc-billing bench data ';

/** Drops ensureBenchDatabase's record of a finished build before the data changes. */
async function forgetFinishedBuild(client: pg.Client) {
  const { rows } = await client.query<{ name: string; comment: string | null }>(
    `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = current_database()`,
  );
  const row = rows[0];
  if (row?.comment?.startsWith(MARKER_PREFIX))
    await client.query(`COMMENT ON DATABASE ${client.escapeIdentifier(row.name)} IS NULL`);
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
    soloUsers: options.soloUsers ?? [],
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
    if (options.isReset) {
      await forgetFinishedBuild(client);
      await resetTables(client);
    }

    const usernames = [
      ...NAMED_USERS.map((user) => user.username),
      ...Array.from({ length: settings.users }, (_, index) => benchUsername(index + 1)),
      ...settings.soloUsers.map((user) => user.username),
    ];
    const duplicate = usernames.find((username, index) => usernames.indexOf(username) !== index);
    if (duplicate) throw new Error(`the solo user ${duplicate} has the name of another user`);
    onProgress(`hashing ${usernames.length} passwords (argon2id, password = username)`);
    const hashStarted = Date.now();
    const hashes = await hashAll(usernames);
    const hashSeconds = (Date.now() - hashStarted) / 1000;
    await insertUsersAndTiers(client, settings, hashes);

    const solo = settings.soloUsers.map(
      (user) => `, ${user.jobs.toLocaleString('en')} of ${user.username} over ${user.days} days`,
    );
    onProgress(
      `writing ${settings.jobs.toLocaleString('en')} jobs over ${settings.days} days${solo.join('')} with COPY`,
    );
    const jobStarted = Date.now();
    const jobs = await copyJobs(client, settings, onProgress);
    const jobSeconds = (Date.now() - jobStarted) / 1000;

    onProgress('writing receipts');
    const { receipts, items } = await insertReceipts(client, settings);
    onProgress('ANALYZE');
    await client.query('ANALYZE');
    return {
      users: usernames.length,
      jobs,
      receipts,
      receiptItems: items,
      hashSeconds,
      jobSeconds,
      jobsPerSecond: Math.round(jobs / Math.max(jobSeconds, 0.001)),
      totalSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    await client.end();
  }
}

export interface EnsureBenchDatabaseOptions extends Omit<BenchDataOptions, 'databaseUrl' | 'isReset' | 'now'> {
  /** A database URL on the server to use; the database in its path is only used to connect. */
  serverUrl: string;
  /** The database to create, fill and then reuse. */
  name: string;
}

/**
 * A database of the given shape that later runs reuse: `name` on the server of `serverUrl`,
 * created when missing, migrated, and filled with generateBenchData unless it already holds
 * exactly this shape. A finished build is recorded as the database's comment (its options as
 * JSON), written only after the data and ANALYZE, so a database without it (interrupted,
 * built by hand, or of another shape) is emptied and built again; generateBenchData with
 * isReset drops it. Returns the database's URL.
 */
export async function ensureBenchDatabase(options: EnsureBenchDatabaseOptions): Promise<string> {
  const { serverUrl, name, onProgress = () => undefined, ...rest } = options;
  const shape = {
    users: rest.users,
    jobs: rest.jobs,
    days: rest.days ?? 365,
    seed: rest.seed ?? 8,
    currency: rest.currency ?? 'THB',
    soloUsers: rest.soloUsers ?? [],
  };
  const marker = `${MARKER_PREFIX}${JSON.stringify(shape)}`;
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ comment: string | null }>(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [name],
    );
    // undefined: no such database; null: one without a finished build.
    const found = rows.length === 0 ? undefined : rows[0]?.comment;
    if (found === marker) {
      await applyMigrations(url.toString(), createLogger('warn'));
      onProgress(`reusing the database ${name}: it holds ${JSON.stringify(shape)}`);
      return url.toString();
    }
    if (found === undefined) {
      onProgress(`creating the database ${name} for ${JSON.stringify(shape)}`);
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
    } else {
      const had = found?.startsWith(MARKER_PREFIX)
        ? `it holds ${found.slice(MARKER_PREFIX.length)}`
        : 'it has no finished bench data';
      onProgress(`emptying and filling the database ${name} (${had}) for ${JSON.stringify(shape)}`);
    }
    const report = await generateBenchData({ ...rest, databaseUrl: url.toString(), isReset: true, onProgress });
    await admin.query(`COMMENT ON DATABASE ${admin.escapeIdentifier(name)} IS ${admin.escapeLiteral(marker)}`);
    onProgress(
      `built ${name}: ${report.users} users, ${report.jobs.toLocaleString('en')} jobs (${report.jobsPerSecond.toLocaleString('en')} rows/s), ${report.totalSeconds.toFixed(1)} s in all`,
    );
    return url.toString();
  } finally {
    await admin.end();
  }
}
