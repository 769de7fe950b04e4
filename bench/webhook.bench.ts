/**
 * Webhook delivery to receipt paid: N pending payments, each paid by one signed dummy
 * webhook over HTTP to the real app; the time from sending to the 200 (by which the
 * payment, receipt and audit entry are committed). Target: median <= 50 ms.
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npm run bench:webhook -- --payments 200
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrations.js';
import { closeGracefully, listen } from '../src/http/lifecycle.js';
import { insertTiers } from '../src/modules/demo/demo.repository.js';
import { DEMO_TIERS } from '../src/modules/demo/demo.service.js';
import { createMetrics } from '../src/modules/metrics/metrics.js';
import { signDummyWebhook } from '../src/modules/payments/dummy.provider.js';
import { createPaymentsService } from '../src/modules/payments/payments.service.js';
import { createRatesService } from '../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../src/modules/receipts/receipts.service.js';
import { toLocalDate } from '../src/shared/local-date.js';
import { createLogger } from '../src/shared/logger.js';
import { createScratchDatabase } from './lib/scratch-database.js';

const { values } = parseArgs({ options: { payments: { type: 'string', default: '200' } } });
const count = Number(values.payments);
const scratch = await createScratchDatabase(process.env.DATABASE_URL);
const logger = createLogger('silent');
const secret = 'bench-webhook-secret-0123456789';
const config = loadConfig({
  DATABASE_URL: scratch.url,
  LOG_LEVEL: 'silent',
  DEMO_SEED: '0',
  INGEST_ENABLED: '0',
  PAYMENT_PROVIDER: 'dummy',
  PAYMENT_WEBHOOK_SECRET: secret,
});
await applyMigrations(scratch.url, logger);
const db = openDatabase(scratch.url, { poolMax: 10, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
try {
  await db.prisma.$transaction((tx) => insertTiers(tx, DEMO_TIERS, config.currency, new Date('2020-01-01T00:00:00Z')));
  // One researcher per payment, each with one finished job yesterday.
  await db.pool.query(
    `INSERT INTO users (username, password_hash) SELECT 'payer' || g, 'x' FROM generate_series(1, $1) g`,
    [count],
  );
  await db.pool.query(
    `INSERT INTO slurm_jobs (cluster, job_id, job_key, "user", state, is_terminal, start_at, end_at, elapsed_sec,
                             alloc_cpus, alloc_mem_mb, cpu_time_sec, total_cpu_sec, source)
     SELECT 'bench', g::text, g::text, 'payer' || g, 'COMPLETED', true, now() - interval '1 day 1 hour',
            now() - interval '1 day', 3600, 4, 8192, 14400, 12000, 'bench'
     FROM generate_series(1, $1) g`,
    [count],
  );
  const metrics = createMetrics();
  const rates = createRatesService({ db, config });
  const receipts = createReceiptsService({ db, config, rates, metrics });
  const payments = createPaymentsService({
    db,
    config: config.payments,
    metrics,
    logger,
    now: () => new Date(),
    timeZone: config.timeZone,
  });
  const actor = { actor: 'bench', ip: null, userAgent: 'bench' };
  const today = toLocalDate(new Date(), config.timeZone);
  const due: Array<{ externalId: string; amountMinor: bigint }> = [];
  for (let index = 1; index <= count; index++) {
    const receipt = await receipts.createForUser({ username: `payer${index}` }, today, actor);
    const { redirectUrl } = await payments.startPayment(`payer${index}`, receipt.id, actor);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: receipt.id } });
    due.push({ externalId: redirectUrl.split('/').pop() as string, amountMinor: payment.amountMinor });
  }

  const server = await listen(createApp({ config, db, logger, metrics }), 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/payments/webhook/dummy`;
  const timings: number[] = [];
  for (const [index, payment] of due.entries()) {
    const body = JSON.stringify({
      event_id: `bench-evt-${index}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalId,
      amount_cents: Number(payment.amountMinor),
      currency: config.currency,
    });
    const started = performance.now();
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Dummy-Signature': signDummyWebhook(body, secret) },
      body,
    });
    const result = (await response.json()) as { outcome?: string };
    timings.push(performance.now() - started);
    if (response.status !== 200 || result.outcome !== 'ok')
      throw new Error(`delivery ${index}: ${response.status} ${JSON.stringify(result)}`);
  }
  await closeGracefully(server, 5_000);
  const paid = await db.prisma.receipt.count({ where: { status: 'paid', paymentMethod: 'dummy' } });
  timings.sort((a, b) => a - b);
  const at = (quantile: number) =>
    timings[Math.min(timings.length - 1, Math.floor(quantile * timings.length))]?.toFixed(1);
  const [load1] = (await import('node:os')).loadavg();
  console.log(
    `webhook -> receipt paid, ${count} deliveries one after another: median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${timings.at(-1)?.toFixed(1)} ms; ${paid}/${count} receipts paid (target: median <= 50 ms; load average ${load1?.toFixed(2)})`,
  );
  if (paid !== count) process.exitCode = 1;
} finally {
  await db.close();
  await scratch.drop();
}
