/**
 * A receipt of the receipt user's unbilled jobs (10,000 by default): how long createForUser
 * takes (target <= 1 s for 10,000), run 5 times (each receipt is voided afterwards so the next
 * run bills the same jobs again).
 *   npx tsx bench/receipts.bench.ts [--receipt-jobs 10000 --users 500 --jobs 890000 --database hb_bench ...]
 * Options: bench/lib/billing-data.ts.
 */
import { loadConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/database.js';
import { createMetrics } from '../src/modules/metrics/metrics.js';
import { createRatesService } from '../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../src/modules/receipts/receipts.service.js';
import { toLocalDate } from '../src/shared/local-date.js';
import { createLogger } from '../src/shared/logger.js';
import { ensureBillingDatabase, parseBillingArgs, RECEIPT_USER } from './lib/billing-data.js';

const options = parseBillingArgs(process.argv.slice(2));
const url = await ensureBillingDatabase(options);
const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DEMO_SEED: '0' });
const db = openDatabase(url, {
  poolMax: 4,
  queryTimeoutMs: config.dbQueryTimeoutMs,
  logger: createLogger('silent'),
});
const rates = createRatesService({ db, config });
const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics() });
const actor = { actor: RECEIPT_USER, ip: '127.0.0.1', userAgent: 'bench' };
const today = toLocalDate(new Date(), config.timeZone);

// Leave no live receipt from an interrupted earlier run.
await db.pool.query(
  `UPDATE receipt_items SET is_voided = true WHERE receipt_id IN (SELECT id FROM receipts WHERE username = $1)`,
  [RECEIPT_USER],
);
await db.pool.query(
  `UPDATE receipts SET status = 'void', void_reason = 'bench reset' WHERE username = $1 AND status <> 'void'`,
  [RECEIPT_USER],
);

const timings: number[] = [];
for (let run = 1; run <= 5; run++) {
  const started = performance.now();
  const receipt = await receipts.createForUser({ username: RECEIPT_USER }, today, actor);
  const ms = performance.now() - started;
  timings.push(ms);
  console.log(
    `run ${run}: receipt #${receipt.id} with ${receipt.itemCount} jobs, total ${receipt.total.toFixed(2)} ${receipt.currency}: ${ms.toFixed(0)} ms`,
  );
  await receipts.voidReceipt(actor, receipt.id, { reason: 'bench run' });
}
timings.sort((a, b) => a - b);
console.log(
  `${options.receiptJobs.toLocaleString('en')}-job receipt: median ${timings[2]?.toFixed(0)} ms, worst ${timings[4]?.toFixed(0)} ms (target <= 1000 ms for 10,000)`,
);
await db.close();
