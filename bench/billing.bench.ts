/**
 * npm run bench:billing [-- --users 500 --jobs 890000 --csv-jobs 100000 --receipt-jobs 10000 --database hb_bench ...]
 * Builds (or reuses) the billing bench database once, then runs bench/receipts.bench.ts and
 * bench/http.bench.ts with the same options, one after the other. Options: bench/lib/billing-data.ts.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureBillingDatabase, parseBillingArgs } from './lib/billing-data.js';

const argv = process.argv.slice(2);
await ensureBillingDatabase(parseBillingArgs(argv));
for (const script of ['receipts.bench.ts', 'http.bench.ts']) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, script), ...argv], {
    stdio: 'inherit',
  });
  if (run.status !== 0) {
    console.error(`bench:billing: ${script} failed (${run.status ?? run.signal})`);
    process.exit(run.status || 1);
  }
}
