import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { createUsageService } from '../../src/modules/usage/usage.service.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A billed job's row on the usage pages shows its receipt item's cost and tier; its hours must be the
 * item's too. Found by an audit: after PRICING_CPU_BASIS went from `used` to `allocated`, /me showed a
 * billed job at 2.000000 CPU-h beside the 0.25 THB its receipt billed for 0.500000 CPU-h, and the
 * window's total CPU-h disagreed with the receipt of exactly those jobs.
 */

const as = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });
const NOW = new Date('2025-09-20T05:00:00Z');
const WINDOW = { start: '2025-09-14', end: '2025-09-20' };

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

function buildServices(basis: 'used' | 'allocated') {
  const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok', PRICING_CPU_BASIS: basis });
  const now = () => NOW;
  const rates = createRatesService({ db, config, now });
  const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics(), now });
  const usage = createUsageService({ db, config, rates, receipts, now });
  return { receipts, usage };
}

async function csvLines(chunks: AsyncIterable<Buffer>): Promise<string[]> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8').trimEnd().split('\n');
}

describe('a billed job after a change of CPU basis', () => {
  let billedId: string;
  let openId: string;

  beforeAll(async () => {
    // 2 CPUs for an hour (allocated: 2 CPU-h) that used half an hour of CPU (used: 0.5 CPU-h).
    [billedId, openId] = (await buildJobs(db, [
      {
        user: 'alice',
        end: '2025-09-15T03:00:00Z',
        elapsedSec: 3600,
        allocCpus: 2,
        totalCpuSec: '1800',
        allocMemMb: 0,
      },
      {
        user: 'alice',
        end: '2025-09-18T03:00:00Z',
        elapsedSec: 3600,
        allocCpus: 2,
        totalCpuSec: '1800',
        allocMemMb: 0,
      },
    ])) as [string, string];
    const { receipts } = buildServices('used');
    await receipts.createForUser({ username: 'alice' }, '2025-09-16', as('alice'));
    const item = await db.prisma.receiptItem.findFirstOrThrow({ where: { jobKey: billedId } });
    expect([item.cpuHours.toFixed(6), item.cost.toFixed(2)]).toEqual(['0.500000', '0.25']);
  });

  it("shows the receipt item's hours beside its cost on My usage, and totals them so", async () => {
    const { usage } = buildServices('allocated');
    const page = await usage.getUserUsage('alice', { view: 'detail', ...WINDOW, sort: 'end', dir: 'asc', page: 1 });
    if (page.view !== 'detail') throw new Error('expected the detail view');
    expect(page.rows.map((row) => [row.jobId, row.cpuHours.toFixed(6), row.cost?.toFixed(2)])).toEqual([
      [billedId, '0.500000', '0.25'],
      // Unbilled: estimated on the basis in force now.
      [openId, '2.000000', '1.00'],
    ]);
    const days = await usage.getUserUsage('alice', { view: 'aggregate', ...WINDOW, sort: 'end', dir: 'desc', page: 1 });
    if (days.view !== 'aggregate') throw new Error('expected the aggregate view');
    expect([days.totals.cpuHours.toFixed(6), days.totals.cost.toFixed(2)]).toEqual(['2.500000', '1.25']);
  });

  it('shows them so on Usage across users and in both CSVs', async () => {
    const { usage } = buildServices('allocated');
    const all = await usage.getAdminUsage({
      ...WINDOW,
      user: undefined,
      account: undefined,
      partition: undefined,
      tier: undefined,
    });
    expect([all.totals.cpuHours.toFixed(6), all.totals.cost.toFixed(2)]).toEqual(['2.500000', '1.25']);

    const mine = await csvLines((await usage.streamUserCsv('alice', WINDOW)).chunks);
    const everyone = await csvLines(
      (
        await usage.streamAdminCsv({
          ...WINDOW,
          user: undefined,
          account: undefined,
          partition: undefined,
          tier: undefined,
        })
      ).chunks,
    );
    for (const lines of [mine, everyone]) {
      // job_id ... elapsed_sec,cpu_hours,gpu_hours,mem_gb_hours,tier,cost,...
      expect(lines.map((line) => line.split(',').slice(10, 15))).toEqual([
        ['0.500000', '0.000000', '0.000000', 'mu', '0.25'],
        ['2.000000', '0.000000', '0.000000', 'mu', '1.00'],
      ]);
    }
  });
});
