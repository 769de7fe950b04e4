import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { ReceiptTotalTooLargeError } from '../../src/modules/receipts/receipt-creation.errors.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { createBackgroundWork } from '../../src/shared/background-work.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Ingestion bounds each job to 1,000,000,000 hours of each resource, so that one job priced at the
 * highest rate (1,000,000 an hour) fits a receipt item's numeric(20, 4). A receipt's total is
 * numeric(20, 4) too, and four such jobs add up past it: an audit saw the user's Create receipt
 * answer 500 ("numeric field overflow") and a month-end run stop as `failed` at that user, every
 * run again, leaving the users after them in name order unbilled.
 */

const as = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });
const NOW = new Date('2025-09-20T05:00:00Z');

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '1000000', gpu: '1000000', mem: '1000000' }]);
  // Each at the bound: a million CPUs, GPUs and GB for 1,000 hours, 3 x 10^15 THB a job.
  const atTheBound = {
    elapsedSec: 3_600_000,
    allocCpus: 1_000_000,
    allocGpus: 1_000_000,
    allocMemMb: 1_024_000_000,
    totalCpuSec: null,
    cpuTimeSec: null,
  };
  await buildJobs(db, [
    ...[1, 2, 3, 4].map((day) => ({ user: 'walter', end: `2025-09-0${day}T00:00:00Z`, ...atTheBound })),
    { user: 'alice', end: '2025-09-01T00:00:00Z' },
    { user: 'zoe', end: '2025-09-01T00:00:00Z' },
  ]);
});
afterAll(() => db?.drop());

function buildServices() {
  const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok', PRICING_CPU_BASIS: 'allocated' });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  return createReceiptsService({
    db,
    config,
    rates,
    metrics: createMetrics(),
    now,
    backgroundWork: createBackgroundWork(),
  });
}

describe('a receipt whose total would not fit its column', () => {
  it('is refused with a reason, writing nothing', async () => {
    const receipts = buildServices();
    const refused = receipts.createForUser({ username: 'walter' }, '2025-09-10', as('walter'));
    await expect(refused).rejects.toThrow(ReceiptTotalTooLargeError);
    await expect(refused).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/^The receipt's total, 12,000,000,000,000,000\.00 THB, is more than .* can hold/),
    });
    expect(await db.prisma.receipt.count({ where: { username: 'walter' } })).toBe(0);
  });

  it("is a month-end run's skipped user, not the end of the run", async () => {
    const receipts = buildServices();
    const run = await receipts.runMonthEnd(as('admin'), '2025-09-10');
    expect(run.receipts.map((receipt) => receipt.username)).toEqual(['alice', 'zoe']);
    expect(run.skipped).toEqual([
      expect.objectContaining({ username: 'walter', reason: expect.stringMatching(/^The receipt's total/) }),
    ]);
  });
});
