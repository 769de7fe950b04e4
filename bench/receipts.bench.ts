/**
 * A receipt of 10,000 jobs: how long createForUser takes (target <= 1 s), run 5 times
 * (each receipt is voided afterwards so the next run bills the same jobs again).
 *   npx tsx bench/receipts.bench.ts
 */
import { loadConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/database.js';
import { createMetrics } from '../src/modules/metrics/metrics.js';
import { createRatesService } from '../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../src/modules/receipts/receipts.service.js';
import { toLocalDate } from '../src/shared/local-date.js';
import { createLogger } from '../src/shared/logger.js';
import { ensureBenchDatabase } from './bench-database.js';

const url = await ensureBenchDatabase();
const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DEMO_SEED: '0' });
const db = openDatabase(url, { poolMax: 4, logger: createLogger('silent') });
const rates = createRatesService({ db, config });
const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics() });
const actor = { actor: 'payer', ip: '127.0.0.1', userAgent: 'bench' };
const today = toLocalDate(new Date(), config.timeZone);

// Leave no live receipt from an interrupted earlier run.
await db.pool.query(
  `UPDATE receipt_items SET is_voided = true WHERE receipt_id IN (SELECT id FROM receipts WHERE username = 'payer')`,
);
await db.pool.query(
  `UPDATE receipts SET status = 'void', void_reason = 'bench reset' WHERE username = 'payer' AND status <> 'void'`,
);

const timings: number[] = [];
for (let run = 1; run <= 5; run++) {
  const started = performance.now();
  const receipt = await receipts.createForUser({ username: 'payer' }, today, actor);
  const ms = performance.now() - started;
  timings.push(ms);
  console.log(
    `run ${run}: receipt #${receipt.id} with ${receipt.itemCount} jobs, total ${receipt.total.toFixed(2)} ${receipt.currency}: ${ms.toFixed(0)} ms`,
  );
  await receipts.voidReceipt(actor, receipt.id, { reason: 'bench run' });
}
timings.sort((a, b) => a - b);
console.log(
  `10,000-job receipt: median ${timings[2]?.toFixed(0)} ms, worst ${timings[4]?.toFixed(0)} ms (target <= 1000 ms)`,
);
await db.close();
