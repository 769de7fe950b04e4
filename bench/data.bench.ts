import { parseArgs } from 'node:util';
import { generateBenchData } from './lib/bench-data.js';

/**
 * npm run bench:data -- --users 500 --jobs 1000000 [--days 365] [--database-url URL] [--reset]
 * Fills DATABASE_URL (or --database-url) with users, tiers, a year of jobs and receipts.
 */
async function main() {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '500' },
      jobs: { type: 'string', default: '1000000' },
      days: { type: 'string', default: '365' },
      seed: { type: 'string', default: '8' },
      'database-url': { type: 'string' },
      reset: { type: 'boolean', default: false },
    },
  });
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error('set DATABASE_URL or pass --database-url postgresql://...');
  const users = Number(values.users);
  const jobs = Number(values.jobs);
  const days = Number(values.days);
  for (const [name, value] of Object.entries({ users, jobs, days })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive whole number`);
  }
  const report = await generateBenchData({
    databaseUrl,
    users,
    jobs,
    days,
    seed: Number(values.seed),
    isReset: values.reset,
    onProgress: (message) => console.log(message),
  });
  console.log(
    [
      `users:    ${report.users} (passwords hashed in ${report.hashSeconds.toFixed(1)} s)`,
      `jobs:     ${report.jobs.toLocaleString('en')} in ${report.jobSeconds.toFixed(1)} s = ${report.jobsPerSecond.toLocaleString('en')} rows/s`,
      `receipts: ${report.receipts} with ${report.receiptItems.toLocaleString('en')} items`,
      `total:    ${report.totalSeconds.toFixed(1)} s`,
    ].join('\n'),
  );
}

main().catch((error) => {
  console.error(`bench:data failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
