import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import {
  computeResourceHours,
  priceJob,
  type Rates,
  type ResourceHours,
  sumCosts,
} from '../../src/modules/pricing/pricing.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { createUsageService } from '../../src/modules/usage/usage.service.js';
import { createBackgroundWork } from '../../src/shared/background-work.js';
import { awkwardJobSpecs, buildJobs, buildTiers, type JobSpec } from '../support/billing-factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The admin's usage page sums every job of the window in SQL (usage.repository.ts, sumByUser).
 * Whatever shape that query takes, each user's figures must be what pricing the jobs one by
 * one with the pure core gives: a billed job at the rates its receipt locked in, an unbilled
 * one at its owner's current rates, each cost rounded on its own.
 */

const d = (value: string) => new Prisma.Decimal(value);
const ADMIN = { actor: 'admin', ip: '127.0.0.1', userAgent: 'test' };
const as = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });
const WINDOW = { start: '2025-09-01', end: '2025-09-30' };

type TierRates = Record<string, Rates>;
const rates = (cpu: string, gpu: string, mem: string): Rates => ({
  cpu: d(cpu),
  gpu: d(gpu),
  mem: d(mem),
  currency: 'THB',
});
// Rates with more decimals than the currency, so that rounding each job's cost matters.
const FIRST: TierRates = {
  mu: rates('0.333333', '12.5', '0.045'),
  gov: rates('0.8125', '18.125', '0.0777'),
  private: rates('1.5', '35', '0.15'),
};
const SECOND: TierRates = { ...FIRST, mu: rates('0.41', '11.75', '0.0625'), gov: rates('0.777777', '19.5', '0.081') };

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

function buildServices() {
  // The real clock: setRates makes a rate effective now, and receipts price at now's rates.
  const config = buildTestConfig(db.url);
  const ratesService = createRatesService({ db, config });
  const receipts = createReceiptsService({
    db,
    config,
    rates: ratesService,
    metrics: createMetrics(),
    backgroundWork: createBackgroundWork(),
  });
  const usage = createUsageService({ db, config, rates: ratesService, receipts });
  return { rates: ratesService, receipts, usage };
}

async function setTierRates(service: ReturnType<typeof buildServices>['rates'], tiers: TierRates) {
  for (const [type, tier] of Object.entries(tiers)) {
    await service.setRates(ADMIN, { type, cpu: tier.cpu, gpu: tier.gpu, mem: tier.mem, based_on: undefined });
  }
}

/** Jobs of `user` ending on each of `days` (UTC), with the awkward values of the formula tests. */
function jobsOf(user: string, days: string[], extra: Partial<JobSpec> = {}): JobSpec[] {
  return days.flatMap((day, index) =>
    awkwardJobSpecs(user, new Date(`${day}T00:00:00Z`), 50 + 13 * index).map((spec) => ({ ...spec, ...extra })),
  );
}

/** A tier a user's jobs of the window are under: a receipt's (billed) or the user's current one (unbilled). */
interface TierShare {
  tier: string | null;
  billed: boolean;
  jobs: number;
}

interface Expected {
  username: string;
  tier: string;
  tiers: TierShare[];
  jobs: number;
  cpuHours: string;
  gpuHours: string;
  memGbHours: string;
  cost: string;
  billedCost: string;
}

/**
 * Every user's figures for the window, from the stored jobs priced one by one by the pure core:
 * at `rateOfReceipt` for a job on a live receipt, at `currentTier`'s current rates otherwise.
 */
async function expectedUsage(
  window: { from: Date; before: Date },
  currentTier: Record<string, string>,
  rateOfReceipt: Map<number, Rates>,
  filter: { user?: string; account?: string } = {},
): Promise<Expected[]> {
  const jobs = await db.prisma.slurmJob.findMany({
    where: { endAt: { gte: window.from, lt: window.before }, user: filter.user, account: filter.account },
  });
  const items = await db.prisma.receiptItem.findMany({
    where: { isVoided: false },
    select: { cluster: true, jobKey: true, cost: true, receiptId: true, receipt: { select: { tierName: true } } },
  });
  const itemOf = new Map(items.map((item) => [`${item.cluster}/${item.jobKey}`, item]));
  const byUser = new Map<
    string,
    { tiers: TierShare[]; hours: ResourceHours[]; costs: Prisma.Decimal[]; billed: Prisma.Decimal[] }
  >();
  for (const job of jobs) {
    const usage = {
      elapsedSec: job.elapsedSec,
      allocCpus: job.allocCpus,
      allocMemMb: job.allocMemMb,
      allocGpus: job.allocGpus,
      reqGpus: job.reqGpus,
      cpuTimeSec: job.cpuTimeSec,
      totalCpuSec: job.totalCpuSec,
      stepMemGbHours: job.stepMemGbHours,
    };
    const item = itemOf.get(`${job.cluster}/${job.jobKey}`);
    const tier = item ? item.receipt.tierName : (currentTier[job.user] ?? 'mu');
    const jobRates = item ? rateOfReceipt.get(item.receiptId) : SECOND[tier];
    if (!jobRates) throw new Error(`no rates for ${job.user}'s job ${job.jobId}`);
    const price = priceJob(usage, jobRates, 'used').cost;
    // The receipt priced its items in SQL; the core is the statement of the rule.
    if (item) expect(item.cost.toFixed(2)).toBe(price.toFixed(2));
    const entry = byUser.get(job.user) ?? { tiers: [], hours: [], costs: [], billed: [] };
    const share = entry.tiers.find((known) => known.tier === tier && known.billed === Boolean(item));
    if (share) share.jobs += 1;
    else entry.tiers.push({ tier, billed: Boolean(item), jobs: 1 });
    entry.hours.push(computeResourceHours(usage, 'used'));
    entry.costs.push(price);
    if (item) entry.billed.push(price);
    byUser.set(job.user, entry);
  }
  return [...byUser.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([username, entry]) => ({
      username,
      // The tier the user's own page names: the one in force for them now, whatever their receipts billed at.
      tier: currentTier[username] ?? 'mu',
      // What each job was priced under: a billed job its receipt's tier, an unbilled one the
      // current tier; the unbilled share first, then the receipts' tiers by name.
      tiers: entry.tiers.toSorted(
        (a, b) => Number(a.billed) - Number(b.billed) || String(a.tier).localeCompare(String(b.tier), 'en'),
      ),
      jobs: entry.hours.length,
      cpuHours: sumCosts(entry.hours.map((hours) => hours.cpuHours)).toString(),
      gpuHours: sumCosts(entry.hours.map((hours) => hours.gpuHours)).toString(),
      memGbHours: sumCosts(entry.hours.map((hours) => hours.memGbHours)).toString(),
      cost: sumCosts(entry.costs).toString(),
      billedCost: sumCosts(entry.billed).toString(),
    }));
}

type AdminUsage = Awaited<ReturnType<ReturnType<typeof buildServices>['usage']['getAdminUsage']>>;

function shown(result: AdminUsage): Expected[] {
  return result.users.map((row) => ({
    username: row.username,
    tier: row.tier ?? '',
    tiers: row.tiers,
    jobs: row.jobs,
    cpuHours: d(row.cpuHours.toString()).toString(),
    gpuHours: d(row.gpuHours.toString()).toString(),
    memGbHours: d(row.memGbHours.toString()).toString(),
    cost: d(row.cost.toString()).toString(),
    billedCost: d(row.billedCost.toString()).toString(),
  }));
}

describe('admin usage across users', () => {
  it('shows, to the cent, what pricing each job with the pure core gives, across rate changes, tiers and receipts', async () => {
    const services = buildServices();
    await setTierRates(services.rates, FIRST);
    const days = ['2025-09-03', '2025-09-08', '2025-09-14', '2025-09-23', '2025-09-29'];
    await buildJobs(db, [
      ...jobsOf('alice', days),
      ...jobsOf('bob', days, { account: 'chemistry' }),
      ...jobsOf('carol', days.slice(1)),
      ...jobsOf('dave', days.slice(2)),
      // A running job is on the page at an estimate too; jobs outside the window are not.
      { user: 'dave', end: '2025-09-30T12:00:00Z', state: 'RUNNING', isTerminal: false, allocGpus: 1 },
      ...jobsOf('alice', ['2025-08-31', '2025-10-01']),
    ]);
    await services.rates.setOverride(ADMIN, { username: 'bob', tier: 'gov' });
    await services.rates.setOverride(ADMIN, { username: 'carol', tier: 'private' });

    // Receipts at the first rates.
    const rateOfReceipt = new Map<number, Rates>();
    for (const [username, tier] of [
      ['alice', 'mu'],
      ['bob', 'gov'],
      ['carol', 'private'],
    ] as const) {
      const receipt = await services.receipts.createForUser({ username }, '2025-09-10', as(username));
      rateOfReceipt.set(receipt.id, FIRST[tier] as Rates);
    }
    const bobsFirst = [...rateOfReceipt.keys()][1] as number;

    // New rates: billed jobs keep their receipts' prices, the others follow the new rates.
    await setTierRates(services.rates, SECOND);
    // Voiding bob's receipt puts his jobs back among the unbilled, at his tier's new rates.
    await services.receipts.voidReceipt(ADMIN, bobsFirst, { reason: 'billed the wrong project' });
    rateOfReceipt.delete(bobsFirst);
    const alicesSecond = await services.receipts.createForUser({ username: 'alice' }, '2025-09-20', as('alice'));
    rateOfReceipt.set(alicesSecond.id, SECOND.mu as Rates);
    // A tier change moves only the unbilled jobs; receipts keep theirs (alice's mu, carol's private),
    // and the page names each beside the current tier of the unbilled ones.
    await services.rates.setOverride(ADMIN, { username: 'alice', tier: 'private' });
    await services.rates.setOverride(ADMIN, { username: 'carol', tier: 'gov' });
    const currentTier = { alice: 'private', bob: 'gov', carol: 'gov', dave: 'mu' };

    const noFilters = { user: undefined, account: undefined, partition: undefined, tier: undefined };
    // A month is read owner by owner, a longer window in one pass: both must give the same figures.
    for (const window of [WINDOW, { start: '2025-08-01', end: '2025-10-31' }]) {
      const result = await services.usage.getAdminUsage({ ...window, ...noFilters });
      const expected = await expectedUsage(result.window, currentTier, rateOfReceipt);
      expect(expected.map((row) => row.username)).toEqual(['alice', 'bob', 'carol', 'dave']);
      expect(shown(result)).toEqual(expected);
      expect(result.totals.cost.toString()).toBe(sumCosts(expected.map((row) => d(row.cost))).toString());
      expect(result.totals.billedCost.toString()).toBe(sumCosts(expected.map((row) => d(row.billedCost))).toString());
      expect(result.totals.jobs).toBe(expected.reduce((sum, row) => sum + row.jobs, 0));
    }
    // The billed part is real on both sides of the rate change, and so is the estimate.
    const month = await services.usage.getAdminUsage({ ...WINDOW, ...noFilters });
    const alice = month.users.find((row) => row.username === 'alice');
    expect(alice?.billedCost.gt(0)).toBe(true);
    expect(alice?.billedCost.lt(alice.cost)).toBe(true);
    expect(month.users.find((row) => row.username === 'bob')?.billedCost.toString()).toBe('0');

    // The filters narrow the same sums.
    const bob = await services.usage.getAdminUsage({ ...WINDOW, ...noFilters, user: 'bob' });
    expect(shown(bob)).toEqual(await expectedUsage(bob.window, currentTier, rateOfReceipt, { user: 'bob' }));
    const chemistry = await services.usage.getAdminUsage({ ...WINDOW, ...noFilters, account: 'chemistry' });
    expect(shown(chemistry)).toEqual(
      await expectedUsage(chemistry.window, currentTier, rateOfReceipt, { account: 'chemistry' }),
    );
  });
});

describe('the usage CSV across users', () => {
  async function csvLinesOf(
    usage: ReturnType<typeof buildServices>['usage'],
    window: { start: string; end: string },
  ): Promise<string[]> {
    const { chunks } = await usage.streamAdminCsv({
      ...window,
      user: undefined,
      account: undefined,
      partition: undefined,
      tier: undefined,
    });
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    return Buffer.concat(parts).toString('utf8').split('\n').filter(Boolean);
  }

  it('holds every job of a short window, in end order, as the same days of a longer window do', async () => {
    const services = buildServices();
    // Owners whose names sort apart in every collation, one with jobs only outside the week.
    await buildJobs(db, [
      ...jobsOf('alice', ['2025-11-02', '2025-11-05', '2025-11-20']),
      ...jobsOf('BOB', ['2025-11-03', '2025-11-06']),
      ...jobsOf('Zoë', ['2025-11-04']),
      ...jobsOf('_svc', ['2025-11-07', '2025-11-08']),
      ...jobsOf('zed', ['2025-11-18']),
      { user: 'zed', end: '2025-11-05T12:00:00Z', state: 'RUNNING', isTerminal: false },
    ]);
    // A week is read owner by owner, a month in one pass over the index.
    const week = { start: '2025-11-03', end: '2025-11-09' };
    const weekLines = await csvLinesOf(services.usage, week);
    const monthLines = await csvLinesOf(services.usage, { start: '2025-11-01', end: '2025-11-30' });

    const jobsOfWeek = await db.prisma.slurmJob.count({
      where: { endAt: { gte: new Date('2025-11-03T00:00:00Z'), lt: new Date('2025-11-10T00:00:00Z') } },
    });
    expect(jobsOfWeek).toBeGreaterThan(300);
    expect(weekLines).toHaveLength(jobsOfWeek);
    // The last timestamp of a line is its end (start comes before it).
    const ends = weekLines.map((line) => line.match(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g)?.at(-1) ?? '');
    expect(ends.every((end, index) => end !== '' && (index === 0 || (ends[index - 1] as string) <= end))).toBe(true);
    const ofWeek = new Set(weekLines);
    expect(monthLines.filter((line) => ofWeek.has(line))).toEqual(weekLines);
    for (const owner of ['alice', 'BOB', 'Zoë', '_svc', 'zed']) {
      expect(weekLines.some((line) => line.includes(`,${owner},`))).toBe(true);
    }
  });
});
