import { parseArgs } from 'node:util';
import { ensureBenchDatabase } from './bench-data.js';
import { benchUsername } from './bench-users.js';

/** The researcher whose jobs the CSV figure exports (all of them, in one window). */
export const CSV_USER = 'heavy';
/** The researcher whose unbilled jobs the receipt figure bills. */
export const RECEIPT_USER = 'payer';
/** Both solo users' jobs end within this many days, so a 40-day CSV window holds all of them. */
const SOLO_DAYS = 30;

export interface BillingBenchOptions {
  /** Any database on the server; the bench database is created beside it. */
  serverUrl: string;
  database: string;
  users: number;
  jobs: number;
  days: number;
  csvJobs: number;
  receiptJobs: number;
  seed: number;
}

/**
 * The options of bench:billing (bench/receipts.bench.ts and bench/http.bench.ts take the same):
 *   --database NAME     the bench database (default $BENCH_DATABASE or hb_bench), on DATABASE_URL's server
 *   --users 500         researchers bench001...
 *   --jobs 890000       jobs spread over them (and alice, bob) as bench:data spreads them
 *   --days 90           ...ending over the last this many days
 *   --csv-jobs 100000   jobs of `heavy` (the CSV figure), over the last 30 days
 *   --receipt-jobs 10000  unbilled jobs of `payer` (the receipt figure), over the last 30 days
 *   --seed 8
 * The defaults make 1,000,000 jobs.
 */
export function parseBillingArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): BillingBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      database: { type: 'string', default: env.BENCH_DATABASE ?? 'hb_bench' },
      users: { type: 'string', default: '500' },
      jobs: { type: 'string', default: '890000' },
      days: { type: 'string', default: '90' },
      'csv-jobs': { type: 'string', default: '100000' },
      'receipt-jobs': { type: 'string', default: '10000' },
      seed: { type: 'string', default: '8' },
    },
  });
  const whole = (name: keyof typeof values, minimum: number): number => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < minimum)
      throw new Error(`--${name} must be a whole number of at least ${minimum}, got "${values[name]}"`);
    return value;
  };
  return {
    serverUrl: env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    database: values.database,
    users: whole('users', 1),
    jobs: whole('jobs', 1),
    days: whole('days', 1),
    csvJobs: whole('csv-jobs', 1),
    receiptJobs: whole('receipt-jobs', 1),
    seed: whole('seed', 0),
  };
}

/**
 * The billing benches' database, built by the same COPY generator as bench:data: the demo
 * logins, `users` researchers and `jobs` jobs over `days`, plus `heavy` and `payer` with jobs
 * of their own on no receipt. Every password is the username. Reused while it holds this shape.
 */
export function ensureBillingDatabase(options: BillingBenchOptions): Promise<string> {
  return ensureBenchDatabase({
    serverUrl: options.serverUrl,
    name: options.database,
    users: options.users,
    jobs: options.jobs,
    days: options.days,
    seed: options.seed,
    soloUsers: [
      { username: CSV_USER, jobs: options.csvJobs, days: SOLO_DAYS },
      { username: RECEIPT_USER, jobs: options.receiptJobs, days: SOLO_DAYS },
    ],
    onProgress: (message) => console.log(message),
  });
}

/** `count` researchers spread evenly over bench001..bench<users> (all of them when fewer). */
export function spreadBenchUsers(count: number, users: number): string[] {
  const picked = Math.min(count, users);
  return Array.from({ length: picked }, (_, index) => benchUsername(1 + Math.floor((index * users) / picked)));
}
