/**
 * The month-end run on a database filled by `npm run bench:data`: one receipt for every user
 * with unbilled jobs up to today, as the admin's "Run month-end" button does. It bills every
 * unbilled job in the database, so it refuses to run without --bill-everything; refill the
 * database with `npm run bench:data -- ... --reset` to run it again.
 *
 *   DATABASE_URL=postgresql://.../hb_perf npm run bench:month-end -- --bill-everything
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/database.js';
import { createMetrics } from '../src/modules/metrics/metrics.js';
import { createRatesService } from '../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../src/modules/receipts/receipts.service.js';
import { toLocalDate } from '../src/shared/local-date.js';
import { createLogger } from '../src/shared/logger.js';

const { values } = parseArgs({
  options: { 'bill-everything': { type: 'boolean', default: false }, 'database-url': { type: 'string' } },
});
const config = loadConfig({
  ...process.env,
  ...(values['database-url'] ? { DATABASE_URL: values['database-url'] } : {}),
  LOG_LEVEL: 'silent',
  DEMO_SEED: '0',
});
if (!config.databaseUrl) throw new Error('set DATABASE_URL (or --database-url) to a database filled by bench:data');
if (!values['bill-everything']) {
  throw new Error(
    `this bills every unbilled job in ${new URL(config.databaseUrl).pathname.slice(1)}; pass --bill-everything`,
  );
}
const db = openDatabase(config.databaseUrl, {
  poolMax: 4,
  queryTimeoutMs: config.dbQueryTimeoutMs,
  logger: createLogger('silent'),
});
const rates = createRatesService({ db, config });
const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics() });
const today = toLocalDate(new Date(), config.timeZone);

const { rows } = await db.pool.query<{ jobs: string }>('SELECT count(*) AS jobs FROM unbilled_jobs');
const queued = Number(rows[0]?.jobs ?? 0);
const started = performance.now();
const result = await receipts.runMonthEnd({ actor: 'bench', ip: '127.0.0.1', userAgent: 'bench' }, today);
const seconds = (performance.now() - started) / 1000;
const billed = await db.pool.query<{ items: string }>(
  `SELECT count(*) AS items FROM receipt_items ri JOIN receipts r ON r.id = ri.receipt_id
    WHERE r.created_by = 'bench' AND r.billed_through = $1::date AND NOT ri.is_voided`,
  [today],
);
const items = Number(billed.rows[0]?.items ?? 0);
console.log(`month-end through ${today}: ${result.receiptCount} receipts, ${items.toLocaleString('en')} items`);
console.log(`(${queued.toLocaleString('en')} jobs were queued as unbilled), ${result.skipped.length} users skipped`);
console.log(`${seconds.toFixed(1)} s = ${Math.round(items / seconds).toLocaleString('en')} jobs billed/s`);
await db.close();
