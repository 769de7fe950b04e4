import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_DB_QUERY_TIMEOUT_MS } from '../../src/config/config.schema.js';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { type CpuBasis, minorUnitDigits, priceJob, sumCosts } from '../../src/modules/pricing/pricing.js';
import { createRatesService } from '../../src/modules/pricing/rates.service.js';
import { describeMonthEndRun, MonthEndInProgressError } from '../../src/modules/receipts/month-end.service.js';
import { NothingToBillError } from '../../src/modules/receipts/receipt-creation.errors.js';
import { createReceiptsService } from '../../src/modules/receipts/receipts.service.js';
import { createBackgroundWork } from '../../src/shared/background-work.js';
import { ConflictError, NotFoundError, ServiceUnavailableError } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/logger.js';
import { awkwardJobSpecs, buildJobs, buildTiers } from '../support/billing-factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const d = (value: string) => new Prisma.Decimal(value);

const as = (username: string) => ({ actor: username, ip: '127.0.0.1', userAgent: 'test' });
const ADMIN = as('admin');

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const NOW = new Date('2025-09-20T05:00:00Z');

/** `now` is the services' clock: NOW unless a test needs one that moves. */
function buildServices(database: Database = db, now: () => Date = () => NOW) {
  const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok' });
  const metrics = createMetrics();
  const rates = createRatesService({ db: database, config, now });
  const backgroundWork = createBackgroundWork();
  const receipts = createReceiptsService({ db: database, config, rates, metrics, now, backgroundWork });
  return { receipts, rates, metrics, backgroundWork };
}

async function itemsOfJob(jobId: string) {
  return db.prisma.receiptItem.findMany({
    where: { displayJobId: jobId },
    select: { receiptId: true, isVoided: true },
  });
}

async function lastAudit() {
  return db.prisma.auditLog.findFirst({
    orderBy: { id: 'desc' },
    select: { action: true, actor: true, status: true, target: true, details: true },
  });
}

async function clearBilling() {
  await db.prisma.monthEndRun.deleteMany();
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
}

describe('creating a receipt', () => {
  beforeEach(clearBilling);

  it('bills finished, unbilled jobs that ended by the end of the local day, with a rate snapshot', async () => {
    const { receipts, metrics } = buildServices();
    // Bangkok is UTC+7: 2025-09-10 ends at 2025-09-10T17:00:00Z.
    const [lastSecond, nextDay, running, otherUser] = await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T16:59:59Z', totalCpuSec: '5400', allocMemMb: 8192, elapsedSec: 3600 },
      { user: 'alice', end: '2025-09-10T17:00:00Z' },
      { user: 'alice', end: '2025-09-09T10:00:00Z', state: 'RUNNING', isTerminal: false },
      { user: 'bob', end: '2025-09-09T10:00:00Z' },
    ]);
    const gpuJob = (
      await buildJobs(db, [{ user: 'alice', end: '2025-09-01T00:00:00Z', allocGpus: 1, allocCpus: 4 }])
    )[0];

    const created = await receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));

    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: created.id }, include: { items: true } });
    expect(receipt.items.map((item) => item.displayJobId).sort()).toEqual([gpuJob, lastSecond].sort());
    // 1.5 cpu-h x 0.50 + 8 GB-h x 0.05 = 1.15; gpu job: 4 cpu-h x 0.5 + 1 gpu-h x 12 + 4 GB-h x 0.05 = 14.20
    const costs = Object.fromEntries(receipt.items.map((item) => [item.displayJobId, item.cost.toFixed(2)]));
    expect(costs).toEqual({ [lastSecond as string]: '1.15', [gpuJob as string]: '14.20' });
    expect(receipt.total.toFixed(2)).toBe('15.35');
    expect(receipt).toMatchObject({ status: 'pending', tierName: 'mu', currency: 'THB', scope: 'user' });
    expect(receipt.ratesSnapshot).toMatchObject({ cpu: '0.5', gpu: '12', mem: '0.05', tier: 'mu' });
    expect(receipt.billedThrough.toISOString().slice(0, 10)).toBe('2025-09-10');
    for (const untouched of [nextDay, running, otherUser]) expect(await itemsOfJob(untouched as string)).toEqual([]);
    expect(await lastAudit()).toMatchObject({
      action: 'receipt.create',
      actor: 'alice',
      status: 'ok',
      target: `receipt:${created.id}`,
    });
    expect((await metrics.receiptCreated.get()).values.find((v) => v.labels.scope === 'user')?.value).toBe(1);
  });

  it('with nothing to bill says so and writes nothing', async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [{ user: 'alice', end: '2025-09-15T00:00:00Z' }]);
    await expect(receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'))).rejects.toThrow(
      NothingToBillError,
    );
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('never bills a job twice: the second request finds nothing', async () => {
    const { receipts } = buildServices();
    const [jobId] = await buildJobs(db, [{ user: 'alice', end: '2025-09-05T00:00:00Z' }]);
    await receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
    await expect(receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'))).rejects.toThrow(
      NothingToBillError,
    );
    expect(await itemsOfJob(jobId as string)).toHaveLength(1);
  });

  it('refuses a day in the future', async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [{ user: 'alice', end: '2025-09-05T00:00:00Z' }]);
    await expect(receipts.createForUser({ username: 'alice' }, '2025-09-21', as('alice'))).rejects.toThrow(
      /in the future/,
    );
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('with 20 concurrent requests puts each job on exactly one receipt', async () => {
    const { receipts } = buildServices();
    const jobIds = await buildJobs(
      db,
      Array.from({ length: 300 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 8, 1, 0, index)) })),
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'))),
    );
    const created = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(created.length).toBeGreaterThanOrEqual(1);
    for (const outcome of refused) {
      const reason = (outcome as PromiseRejectedResult).reason;
      expect(reason instanceof ConflictError || reason instanceof NothingToBillError).toBe(true);
    }
    const perJob = await db.prisma.receiptItem.groupBy({ by: ['displayJobId'], _count: { _all: true } });
    expect(perJob).toHaveLength(jobIds.length);
    expect(perJob.every((row) => row._count._all === 1)).toBe(true);
    // No empty receipt was left behind by a request that lost the race.
    const receiptsMade = await db.prisma.receipt.findMany({ include: { _count: { select: { items: true } } } });
    expect(receiptsMade).toHaveLength(created.length);
    expect(receiptsMade.every((receipt) => receipt._count.items > 0)).toBe(true);
  });

  it('keeps its rate snapshot when rates change later; the next receipt uses the new rates', async () => {
    const { receipts, rates } = buildServices();
    await buildJobs(db, [{ user: 'carol', end: '2025-09-01T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const first = await receipts.createForUser({ username: 'carol' }, '2025-09-10', as('carol'));
    // setRates stamps rows with the real clock, so the new rate is in force for NOW too only if NOW is later.
    const later = createRatesService({
      db,
      config: buildTestConfig(db.url),
    });
    await later.setRates(ADMIN, { type: 'mu', cpu: d('2'), gpu: d('12'), mem: d('0.05') });
    rates.invalidate();
    await buildJobs(db, [{ user: 'carol', end: '2025-09-02T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const servicesNow = createReceiptsService({
      db,
      config: buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok' }),
      rates: later,
      metrics: createMetrics(),
    });
    const second = await servicesNow.createForUser({ username: 'carol' }, '2025-09-10', as('carol'));
    const [a, b] = await Promise.all(
      [first.id, second.id].map((id) => db.prisma.receipt.findUniqueOrThrow({ where: { id } })),
    );
    expect(a?.total.toFixed(2)).toBe('0.50');
    expect(a?.ratesSnapshot).toMatchObject({ cpu: '0.5' });
    expect(b?.total.toFixed(2)).toBe('2.00');
    expect(b?.ratesSnapshot).toMatchObject({ cpu: '2' });
    expect(b?.rateId).not.toBe(a?.rateId);
    // Put mu back for the other tests.
    await later.setRates(ADMIN, { type: 'mu', cpu: d('0.5'), gpu: d('12'), mem: d('0.05') });
  });
});

describe('receipt prices', () => {
  beforeEach(clearBilling);

  it.each([
    ['used', 'THB'],
    ['allocated', 'JPY'],
    ['used', 'KWD'],
  ] as [CpuBasis, string][])(
    "are the pricing core's, digit for digit, item by item and in total (%s basis, %s)",
    async (basis, currency) => {
      // PostgreSQL prices receipts (pricing.sql.ts); the pure core is the statement of the rules.
      const rates = { cpu: '0.333333', gpu: '12.5', mem: '0.045' };
      const tierName = `awkward-${basis}-${currency}`.toLowerCase();
      const username = `pricer-${basis}-${currency}`.toLowerCase();
      await buildTiers(db, [{ name: tierName, ...rates }], currency);
      const tier = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: tierName } });
      await db.prisma.tierOverride.create({ data: { username, tierId: tier.id } });
      await buildJobs(db, awkwardJobSpecs(username, new Date('2025-09-01T00:00:00Z')));
      const config = buildTestConfig(db.url, { APP_TZ: 'Asia/Bangkok', PRICING_CPU_BASIS: basis });
      const ratesService = createRatesService({ db, config, now: () => NOW });
      const receipts = createReceiptsService({
        db,
        config,
        rates: ratesService,
        metrics: createMetrics(),
        now: () => NOW,
      });

      const created = await receipts.createForUser({ username }, '2025-09-10', as(username));

      const receipt = await db.prisma.receipt.findUniqueOrThrow({
        where: { id: created.id },
        include: { items: true },
      });
      const jobs = await db.prisma.slurmJob.findMany({ where: { user: username } });
      expect(receipt.items).toHaveLength(jobs.length);
      const itemOf = new Map(receipt.items.map((item) => [item.slurmJobId, item]));
      const digits = minorUnitDigits(currency);
      const costs: Prisma.Decimal[] = [];
      for (const job of jobs) {
        const expected = priceJob(job, { cpu: d(rates.cpu), gpu: d(rates.gpu), mem: d(rates.mem), currency }, basis);
        costs.push(expected.cost);
        const item = itemOf.get(job.id);
        expect({
          job: job.jobId,
          cpu: item?.cpuHours.toFixed(6),
          gpu: item?.gpuHours.toFixed(6),
          mem: item?.memGbHours.toFixed(6),
          cost: item?.cost.toFixed(digits),
        }).toEqual({
          job: job.jobId,
          cpu: expected.cpuHours.toFixed(6),
          gpu: expected.gpuHours.toFixed(6),
          mem: expected.memGbHours.toFixed(6),
          cost: expected.cost.toFixed(digits),
        });
      }
      expect(receipt.total.toFixed(digits)).toBe(sumCosts(costs).toFixed(digits));
      expect(created.total.toFixed(digits)).toBe(sumCosts(costs).toFixed(digits));
      expect(created.itemCount).toBe(jobs.length);
      expect(receipt).toMatchObject({ currency, tierName, rateId: expect.any(Number) });
      expect(receipt.ratesSnapshot).toMatchObject({ ...rates, currency, cpuBasis: basis, tierSource: 'override' });
      const earliestEnd = Math.min(...jobs.map((job) => job.endAt?.getTime() ?? Number.POSITIVE_INFINITY));
      expect(receipt.windowStart?.getTime()).toBe(earliestEnd);
      expect(receipt.windowEnd?.toISOString()).toBe('2025-09-10T17:00:00.000Z');
    },
  );
});

describe('paying and voiding', () => {
  beforeEach(clearBilling);

  async function pendingReceipt() {
    const services = buildServices();
    const jobIds = await buildJobs(db, [
      { user: 'alice', end: '2025-09-01T00:00:00Z' },
      { user: 'alice', end: '2025-09-02T00:00:00Z' },
    ]);
    const receipt = await services.receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
    return { ...services, receipt, jobIds };
  }

  it('marks a pending receipt paid once; a second time is a conflict', async () => {
    const { receipts, receipt, metrics } = await pendingReceipt();
    await receipts.markPaid(ADMIN, receipt.id, {
      method: 'bank_transfer',
      amount_received: receipt.total,
      tx_ref: 'TX-1',
    });
    const paid = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } });
    expect(paid).toMatchObject({ status: 'paid', paymentMethod: 'bank_transfer', txRef: 'TX-1', paidAt: NOW });
    expect(await lastAudit()).toMatchObject({
      action: 'receipt.mark_paid',
      actor: 'admin',
      target: `receipt:${receipt.id}`,
    });
    await expect(
      receipts.markPaid(ADMIN, receipt.id, { method: 'cash', amount_received: receipt.total }),
    ).rejects.toThrow(/is paid; only a pending receipt/);
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } })).paymentMethod).toBe(
      'bank_transfer',
    );
    const paidMetric = (await metrics.receiptMarkedPaid.get()).values.find((v) => v.labels.actor_type === 'admin');
    expect(paidMetric?.value).toBe(1);
  });

  it('voids a paid receipt with its reason, keeps it visible, and frees its jobs for a new receipt', async () => {
    const { receipts, receipt, jobIds, metrics } = await pendingReceipt();
    await receipts.markPaid(ADMIN, receipt.id, { method: 'cash', amount_received: receipt.total });
    await receipts.voidReceipt(ADMIN, receipt.id, { reason: 'billed the wrong project' });
    const voided = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } });
    expect(voided).toMatchObject({ status: 'void', voidReason: 'billed the wrong project', voidedBy: 'admin' });
    expect(voided.paidAt).toEqual(NOW);
    expect((await metrics.receiptVoided.get()).values[0]?.value).toBe(1);

    const again = await receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
    for (const jobId of jobIds) {
      const items = await itemsOfJob(jobId);
      expect(items).toHaveLength(2);
      expect(items.filter((item) => !item.isVoided).map((item) => item.receiptId)).toEqual([again.id]);
    }
  });

  it('refuses illegal transitions with a conflict and leaves the receipt as it was', async () => {
    const { receipts, receipt } = await pendingReceipt();
    await receipts.voidReceipt(ADMIN, receipt.id, { reason: 'duplicate' });
    await expect(receipts.voidReceipt(ADMIN, receipt.id, { reason: 'again' })).rejects.toThrow(ConflictError);
    await expect(
      receipts.markPaid(ADMIN, receipt.id, { method: 'cash', amount_received: receipt.total }),
    ).rejects.toThrow(ConflictError);
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receipt.id } })).toMatchObject({
      status: 'void',
      voidReason: 'duplicate',
      paidAt: null,
    });
    await expect(receipts.markPaid(ADMIN, 999_999, { method: 'cash', amount_received: receipt.total })).rejects.toThrow(
      NotFoundError,
    );
  });

  it('shows a receipt only to its owner', async () => {
    const { receipts, receipt } = await pendingReceipt();
    await expect(receipts.getForUser('alice', receipt.id)).resolves.toMatchObject({ receipt: { id: receipt.id } });
    await expect(receipts.getForUser('bob', receipt.id)).rejects.toThrow(NotFoundError);
  });
});

describe('listing receipts', () => {
  beforeEach(clearBilling);

  it('counts the items of each receipt on the page, a voided receipt keeping its count', async () => {
    const { receipts } = buildServices();
    const jobsOf = (user: string, count: number) =>
      Array.from({ length: count }, (_, index) => ({ user, end: new Date(Date.UTC(2025, 8, 1, index)) }));
    await buildJobs(db, [...jobsOf('alice', 2), ...jobsOf('bob', 3), ...jobsOf('carol', 1)]);
    const made = new Map<string, number>();
    for (const user of ['alice', 'bob', 'carol']) {
      made.set(user, (await receipts.createForUser({ username: user }, '2025-09-10', as(user))).id);
    }
    await receipts.voidReceipt(ADMIN, made.get('carol') as number, { reason: 'wrong project' });

    const all = await receipts.listForAdmin({ page: 1 } as Parameters<typeof receipts.listForAdmin>[0]);
    expect(Object.fromEntries(all.receipts.map((receipt) => [receipt.username, receipt._count.items]))).toEqual({
      alice: 2,
      bob: 3,
      carol: 1,
    });
    const bobs = await receipts.listForUser('bob', { page: 1 });
    expect(bobs.receipts.map((receipt) => receipt._count.items)).toEqual([3]);
    expect((await receipts.getById(made.get('alice') as number)).receipt._count.items).toBe(2);
    expect((await receipts.getForUser('carol', made.get('carol') as number)).receipt._count.items).toBe(1);
    expect((await receipts.listForUser('nobody', { page: 1 })).receipts).toEqual([]);
  });
});

describe('month-end run', () => {
  beforeEach(clearBilling);

  it('is refused at once while another session holds the month-end lock, and bills nothing', async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [{ user: 'alice', end: '2025-08-30T00:00:00Z' }]);
    // A lock taken by hand, without the label a run sets: the refusal cannot name who holds it.
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
      const refused = receipts.runMonthEnd(ADMIN, '2025-08-31');
      await expect(refused).rejects.toThrow(MonthEndInProgressError);
      await expect(refused).rejects.toThrow('A month-end run is already in progress; wait for it to finish.');
      expect(await db.prisma.receipt.count()).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    expect((await receipts.runMonthEnd(ADMIN, '2025-08-31')).receiptCount).toBe(1);
  });

  it('reports users billed meanwhile by count, naming at most ten', async () => {
    const { receipts } = buildServices();
    const users = Array.from({ length: 30 }, (_, index) => `mx${String(index).padStart(2, '0')}`);
    await buildJobs(
      db,
      users.map((user) => ({ user, end: '2025-08-20T00:00:00Z' })),
    );
    // Each user's own receipt, made after the run listed them: the run finds nothing left.
    const listed = await db.pool.connect();
    try {
      await listed.query('BEGIN');
      await listed.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const run = receipts.runMonthEnd(ADMIN, '2025-08-31');
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await db.pool.query(
        `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
         SELECT "user", '2025-08-31', 0, 'THB', 'mu', '{}', now(), "user" FROM slurm_jobs WHERE "user" LIKE 'mx%'`,
      );
      await db.pool.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
         SELECT r.id, j.id, j.cluster, j.job_key, j.job_id, 0, 0, 0, 0, j.end_at FROM slurm_jobs j JOIN receipts r ON r.username = j."user"`,
      );
      await listed.query('COMMIT');
      const result = await run;
      expect(result.receiptCount).toBe(0);
      expect(result.skipped).toHaveLength(30);
      const message = describeMonthEndRun(result, (total) => total.toFixed(2));
      expect(message.length).toBeLessThan(600);
      expect(message).toMatch(/ and \d+ more\./);
      expect(message).not.toContain('mx29');
    } finally {
      listed.release();
    }
  });

  it('creates one receipt per user with unbilled usage, and nothing on a second run', async () => {
    const { receipts, metrics } = buildServices();
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-30T00:00:00Z' },
      { user: 'alice', end: '2025-08-31T10:00:00Z' },
      { user: 'bob', end: '2025-08-15T00:00:00Z' },
      { user: 'gov_anan', end: '2025-08-15T00:00:00Z' },
      // 2025-09-01 01:00 in Bangkok: after the cut-off.
      { user: 'carol', end: '2025-08-31T18:00:00Z' },
    ]);
    await receipts.createForUser({ username: 'bob' }, '2025-08-31', as('bob'));

    const first = await receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(first.receiptCount).toBe(2);
    // Users are billed two at a time; the report lists them in name order all the same.
    expect(first.receipts.map((receipt) => receipt.username)).toEqual(['alice', 'gov_anan']);
    const rows = await db.prisma.receipt.findMany({ where: { scope: 'admin' } });
    expect(rows.map((row) => [row.username, row.tierName, row.createdBy]).sort()).toEqual([
      ['alice', 'mu', 'admin'],
      ['gov_anan', 'gov', 'admin'],
    ]);
    const sum = rows.reduce((total, row) => total.plus(row.total), d('0'));
    expect(first.totals).toEqual([{ currency: 'THB', total: sum }]);
    expect((await metrics.receiptCreated.get()).values.find((v) => v.labels.scope === 'admin')?.value).toBe(2);

    const second = await receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(second.receiptCount).toBe(0);
    expect(await db.prisma.receipt.count()).toBe(3);
  });

  it('settles a receipt whose jobs all cost 0 as it makes it, and leaves the others pending', async () => {
    const { receipts } = buildServices();
    // Cancelled before it ran: no CPU, memory or GPU time, so it costs 0 at any rate.
    const noCost = { totalCpuSec: '0', stepMemGbHours: '0', elapsedSec: 0, state: 'CANCELLED' };
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-30T00:00:00Z' },
      { user: 'alice', end: '2025-08-30T01:00:00Z', ...noCost },
      { user: 'trent', end: '2025-08-30T00:00:00Z', ...noCost },
      { user: 'trent', end: '2025-08-30T01:00:00Z', ...noCost },
    ]);

    const run = await receipts.runMonthEnd(ADMIN, '2025-08-31');

    expect(run.receipts.map((receipt) => [receipt.username, receipt.total.toFixed(2), receipt.status])).toEqual([
      ['alice', '1.20', 'pending'],
      ['trent', '0.00', 'paid'],
    ]);
    const trent = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'trent' }, include: { items: true } });
    expect(trent).toMatchObject({ status: 'paid', paymentMethod: 'no_charge', txRef: null, paidAt: NOW });
    expect(trent.items).toHaveLength(2);
    const alice = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice' } });
    expect(alice).toMatchObject({ status: 'pending', paymentMethod: null, paidAt: null });
    // The jobs are billed: nothing is left for the next run or for trent's own receipt.
    await expect(receipts.createForUser({ username: 'trent' }, '2025-08-31', as('trent'))).rejects.toThrow(
      NothingToBillError,
    );
    expect((await receipts.runMonthEnd(ADMIN, '2025-08-31')).receiptCount).toBe(0);
    // Voided like any paid receipt: its jobs go back to billing, and no payment is held.
    const voided = await receipts.voidReceipt(ADMIN, trent.id, { reason: 'wrong project' });
    expect(voided).toMatchObject({ previousStatus: 'paid', releasedJobs: 2, heldPaymentId: null });
  });

  it('records a receipt of 0.00 as paid at the instant it was created, made by its user or by the month-end', async () => {
    const { receipts } = buildServices();
    const noCost = { totalCpuSec: '0', stepMemGbHours: '0', elapsedSec: 0, state: 'CANCELLED' };
    await buildJobs(db, [
      { user: 'trent', end: '2025-08-30T00:00:00Z', ...noCost },
      { user: 'peggy', end: '2025-08-30T00:00:00Z', ...noCost },
    ]);

    const own = await receipts.createForUser({ username: 'trent' }, '2025-08-31', as('trent'));
    const run = await receipts.runMonthEnd(ADMIN, '2025-08-31');

    expect(run.noChargeCount).toBe(1);
    const made = await db.prisma.receipt.findMany({
      where: { username: { in: ['trent', 'peggy'] } },
      select: { id: true, scope: true, status: true, createdAt: true, paidAt: true },
      orderBy: { id: 'asc' },
    });
    expect(made.map((receipt) => [receipt.id, receipt.scope, receipt.status])).toEqual([
      [own.id, 'user', 'paid'],
      [run.receipts[0]?.id, 'admin', 'paid'],
    ]);
    // Paid on the day it was made: a paid_at a moment before created_at can fall on the day before.
    for (const receipt of made) expect(receipt.paidAt).toEqual(receipt.createdAt);
  });

  it('stops at an unexpected error once the receipts in flight are done; a second run bills the rest', async () => {
    const { receipts } = buildServices();
    const users = ['m1', 'm2', 'm3', 'm4-doomed', 'm5', 'm6', 'm7'];
    await buildJobs(
      db,
      users.flatMap((user) => [
        { user, end: '2025-08-20T00:00:00Z' },
        { user, end: '2025-08-21T00:00:00Z' },
      ]),
    );
    // A failure that is neither "nothing to bill" nor a conflict (a full disk, say), for one user.
    await db.pool.query(`
      CREATE FUNCTION refuse_doomed_receipt() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'disk full (test)'; END $$;
      CREATE TRIGGER refuse_doomed_receipt BEFORE INSERT ON receipts
        FOR EACH ROW WHEN (NEW.username = 'm4-doomed') EXECUTE FUNCTION refuse_doomed_receipt();`);
    // The users after it take half a second each: that the run stops is seen by the users it did not
    // bill, and without this the other worker could bill all three while the failing one waited for the
    // CPU (seen once in .ci/run, beside the Slurm lab).
    await db.pool.query(`
      CREATE FUNCTION slow_after_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;
      CREATE TRIGGER slow_after_doomed BEFORE INSERT ON receipts
        FOR EACH ROW WHEN (NEW.username > 'm4-doomed') EXECUTE FUNCTION slow_after_doomed();`);
    const allowDoomed = () =>
      db.pool.query(
        'DROP TRIGGER IF EXISTS refuse_doomed_receipt ON receipts; DROP FUNCTION IF EXISTS refuse_doomed_receipt(); ' +
          'DROP TRIGGER IF EXISTS slow_after_doomed ON receipts; DROP FUNCTION IF EXISTS slow_after_doomed();',
      );
    try {
      await expect(receipts.runMonthEnd(ADMIN, '2025-08-31')).rejects.toThrow(/disk full/);
      const billed = await db.prisma.receipt.findMany({ include: { _count: { select: { items: true } } } });
      // Its row says so, with what it billed before it stopped and that running it again is safe.
      const failed = await db.prisma.monthEndRun.findFirstOrThrow();
      expect(failed).toMatchObject({ outcome: 'failed', usersTotal: users.length, receiptCount: billed.length });
      expect(failed.usersDone).toBe(billed.length);
      expect(failed.finishedAt).toEqual(NOW);
      expect(failed.error).toMatch(
        new RegExp(
          `^Stopped by an unexpected error after ${billed.length} of 7 users: .*disk full \\(test\\).*\\. What it billed stays billed; running it again`,
        ),
      );
      expect(billed.map((receipt) => receipt.username)).not.toContain('m4-doomed');
      // Whatever was billed before the stop is whole: two items a receipt, no job twice.
      expect(billed.every((receipt) => receipt._count.items === 2)).toBe(true);
      expect(billed.length).toBeLessThan(users.length - 1);

      await allowDoomed();
      const second = await receipts.runMonthEnd(ADMIN, '2025-08-31');
      expect(second.receiptCount).toBe(users.length - billed.length);
      const perJob = await db.prisma.receiptItem.groupBy({ by: ['slurmJobId'], _count: { _all: true } });
      expect(perJob).toHaveLength(users.length * 2);
      expect(perJob.every((row) => row._count._all === 1)).toBe(true);
    } finally {
      await allowDoomed();
    }
  });
});

describe('month-end run and the process stopping', () => {
  beforeEach(clearBilling);

  it('ends after the users in flight, records itself interrupted, and a second run bills the rest', async () => {
    const { receipts, backgroundWork } = buildServices();
    const users = ['s1', 's2', 's3', 's4', 's5', 's6'];
    await buildJobs(
      db,
      users.map((user) => ({ user, end: '2025-08-20T00:00:00Z' })),
    );
    // Holds both users in flight at their tier, as a receipt of many jobs would keep them busy.
    const stall = await db.pool.connect();
    let stopped: Promise<unknown> | undefined;
    try {
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const { runId, finished } = await receipts.startMonthEnd(ADMIN, '2025-08-31');
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      stopped = backgroundWork.stop();
      // Stopping, the process starts no new run (the lock is still held, but this comes first).
      await expect(receipts.startMonthEnd(ADMIN, '2025-08-31')).rejects.toThrow(ServiceUnavailableError);
      await stall.query('COMMIT');
      await stopped;
      const { result } = await finished;
      expect(result).toMatchObject({ runId, outcome: 'interrupted', receiptCount: 2 });
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      await stopped;
    }
    const row = await db.prisma.monthEndRun.findFirstOrThrow();
    expect(row).toMatchObject({
      outcome: 'interrupted',
      usersTotal: 6,
      usersDone: 2,
      receiptCount: 2,
      finishedAt: NOW,
    });
    expect(row.error).toBe(
      'Interrupted: the app was stopped during the run, after 2 of 6 users. What it billed stays billed; running it ' +
        'again for the same day is safe and bills the rest (it bills only unbilled jobs).',
    );
    expect(await db.prisma.receipt.count()).toBe(2);
    // The lock was released: the next process's run bills the other four.
    const second = await buildServices().receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(second).toMatchObject({ outcome: 'succeeded', receiptCount: 4 });
    expect(await db.prisma.receipt.count()).toBe(6);
  });
});

describe('month-end run and a shutdown that stops waiting for it', () => {
  beforeEach(clearBilling);

  it('records the run interrupted with the users committed so far, and its users in flight roll back whole', async () => {
    // The service's own pool: the shutdown closes the connections it still uses, not the test's.
    const serviceDb = openDatabase(db.url, {
      poolMax: 10,
      queryTimeoutMs: DEFAULT_DB_QUERY_TIMEOUT_MS,
      logger: createLogger('silent'),
    });
    const { receipts, backgroundWork } = buildServices(serviceDb);
    const users = ['a1', 'a2', 'a3', 'a4', 'z1', 'z2'];
    await buildJobs(
      db,
      users.map((user) => ({ user, end: '2025-08-20T00:00:00Z' })),
    );
    // The last two users' receipts wait, inside their transactions, for an advisory lock the test
    // holds: billed last, in name order, they are the users in flight when the timeout runs out.
    await db.pool.query(`
      CREATE FUNCTION hold_z_receipts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$;
      CREATE TRIGGER hold_z_receipts BEFORE INSERT ON receipts
        FOR EACH ROW WHEN (NEW.username LIKE 'z%') EXECUTE FUNCTION hold_z_receipts();`);
    const lastAuditBefore = (await db.prisma.auditLog.aggregate({ _max: { id: true } }))._max.id ?? 0n;
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4242)');
      const { runId, finished } = await receipts.startMonthEnd(ADMIN, '2025-08-31');
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);

      expect(await backgroundWork.stop(100)).toEqual([`month-end run #${runId}`]);
      const recorded = await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: runId } });
      expect(recorded).toMatchObject({
        outcome: 'interrupted',
        usersTotal: 6,
        usersDone: 4,
        receiptCount: 4,
        finishedAt: NOW,
      });
      expect(recorded.error).toBe(
        'Interrupted: the app was stopped during the run, after 4 of 6 users; the users still in flight when its ' +
          'shutdown timeout ran out were left unbilled. What it billed stays billed; running it again for the ' +
          'same day is safe and bills the rest (it bills only unbilled jobs).',
      );
      // The two users' transactions and the run's lock.
      expect(serviceDb.closeConnectionsInUse()).toBeGreaterThanOrEqual(3);
      const { result } = await finished;
      expect(result).toMatchObject({ runId, outcome: 'interrupted', receiptCount: 4 });
      // The run wrote nothing more: its users in flight failing as their connections closed is no failure.
      expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: runId } })).toEqual(recorded);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await db.pool.query(
        'DROP TRIGGER IF EXISTS hold_z_receipts ON receipts; DROP FUNCTION IF EXISTS hold_z_receipts();',
      );
      await serviceDb.close();
    }
    const made = await db.prisma.receipt.findMany({
      select: { id: true, username: true },
      orderBy: { username: 'asc' },
    });
    expect(made.map((receipt) => receipt.username)).toEqual(['a1', 'a2', 'a3', 'a4']);
    // Each receipt made has its audit entry, and the users rolled back left none.
    const audited = await db.prisma.auditLog.findMany({
      where: { id: { gt: lastAuditBefore }, action: 'receipt.create' },
      select: { target: true },
    });
    expect(audited.map((entry) => entry.target).sort()).toEqual(made.map((receipt) => `receipt:${receipt.id}`).sort());
    // The lock went with its connection: the next run bills the two users rolled back.
    const second = await buildServices().receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(second).toMatchObject({ outcome: 'succeeded', receiptCount: 2 });
    expect(await db.prisma.receipt.count()).toBe(6);
  });
});

/**
 * How far the billing queue is from exact: queue rows of jobs that are not finished jobs on no live
 * receipt (`billed` when a live receipt holds the job), and finished, unbilled jobs it lacks.
 */
async function queueMismatches() {
  const { rows } = await db.pool.query<{ billed: number; stray: number; missing: number }>(`
    SELECT (SELECT count(*) FROM unbilled_jobs u JOIN slurm_jobs j ON j.id = u.job_id
             WHERE EXISTS (SELECT 1 FROM receipt_items ri
                            WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided))::int AS billed,
           (SELECT count(*) FROM unbilled_jobs u
             WHERE NOT EXISTS (SELECT 1 FROM slurm_jobs j WHERE j.id = u.job_id AND j.is_terminal))::int AS stray,
           (SELECT count(*) FROM slurm_jobs j
             WHERE j.is_terminal
               AND NOT EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id)
               AND NOT EXISTS (SELECT 1 FROM receipt_items ri
                                WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided))::int AS missing`);
  return rows[0];
}

describe('month-end run and the billing queue', () => {
  beforeEach(clearBilling);

  it('never puts back the jobs of a receipt that commits while it repairs the queue', async () => {
    const { receipts } = buildServices();
    await buildJobs(
      db,
      Array.from({ length: 40 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 7, 1, index)) })),
    );
    // Alice's own receipt, held open after its items are written (its trigger has taken her jobs
    // out of the queue, uncommitted): its audit entry waits for the audit lock held here.
    const holder = await db.pool.connect();
    let ownReceipt: Promise<unknown> | undefined;
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      ownReceipt = receipts.createForUser({ username: 'alice' }, '2025-08-31', as('alice'));
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const { rows } = await db.pool.query<{ writers: number }>(
        // pg_locks is the whole server's, and every test database is a copy of one template, so
        // another database's receipt_items has the same oid: only this database's locks count.
        `SELECT count(*)::int AS writers FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
          WHERE c.relname = 'receipt_items' AND l.mode = 'RowExclusiveLock' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(rows[0]?.writers, 'the receipt has written its items').toBe(1);

      const run = receipts.runMonthEnd(ADMIN, '2025-08-31');
      // The month-end's repair has reached the receipt's uncommitted work and waits for it.
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      await holder.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      await expect(ownReceipt).resolves.toMatchObject({ itemCount: 40 });
      expect((await run).receiptCount).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await ownReceipt?.catch(() => undefined);
    }
    expect(await queueMismatches()).toEqual({ billed: 0, stray: 0, missing: 0 });
  });

  it('takes out of the queue the jobs that are already on a live receipt', async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-10T00:00:00Z' },
      { user: 'alice', end: '2025-08-11T00:00:00Z' },
      { user: 'bob', end: '2025-08-11T00:00:00Z' },
    ]);
    await receipts.createForUser({ username: 'alice' }, '2025-08-31', as('alice'));
    // What an older release's repair left: billed jobs back in the queue.
    await db.pool.query(`
      INSERT INTO unbilled_jobs (job_id, "user", end_at)
      SELECT id, "user", end_at FROM slurm_jobs WHERE "user" = 'alice'`);
    expect(await queueMismatches()).toEqual({ billed: 2, stray: 0, missing: 0 });

    const run = await receipts.runMonthEnd(ADMIN, '2025-08-31');

    expect(run.receipts.map((receipt) => receipt.username)).toEqual(['bob']);
    expect(await queueMismatches()).toEqual({ billed: 0, stray: 0, missing: 0 });
  });

  it('leaves the queue exact after month-end runs and receipts at the same moment', async () => {
    const { receipts } = buildServices();
    await buildJobs(db, [
      ...Array.from({ length: 120 }, (_, index) => ({ user: 'alice', end: new Date(Date.UTC(2025, 7, 1, index)) })),
      ...['bob', 'carol', 'dave'].flatMap((user) => [
        { user, end: '2025-08-10T00:00:00Z' },
        { user, end: '2025-08-11T00:00:00Z' },
      ]),
    ]);
    const outcomes = await Promise.allSettled([
      receipts.runMonthEnd(ADMIN, '2025-08-31'),
      receipts.runMonthEnd(ADMIN, '2025-08-31'),
      ...Array.from({ length: 3 }, () => receipts.createForUser({ username: 'alice' }, '2025-08-31', as('alice'))),
    ]);
    // A receipt that lost its race is refused (nothing to bill, or a conflict). One run takes the
    // lock, whichever of the two asks first; the other is refused if it starts while that one runs.
    const runs = outcomes.slice(0, 2);
    expect(runs.filter((run) => run.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
    for (const run of runs) {
      if (run.status === 'rejected') expect(run.reason).toBeInstanceOf(MonthEndInProgressError);
    }
    const perJob = await db.prisma.receiptItem.groupBy({ by: ['slurmJobId'], _count: { _all: true } });
    expect(perJob).toHaveLength(126);
    expect(perJob.every((row) => row._count._all === 1)).toBe(true);
    expect(await queueMismatches()).toEqual({ billed: 0, stray: 0, missing: 0 });
  });

  it("never bills a job by a queue row's stale owner or end: the job's own decide", async () => {
    const { receipts } = buildServices();
    const [bobs, late] = await buildJobs(db, [
      { user: 'bob', end: '2025-08-10T00:00:00Z' },
      { user: 'alice', end: '2025-09-10T00:00:00Z' },
    ]);
    // What a repair racing ingestion's correction of a job could leave: the values it read before.
    const rowOf = 'SELECT id FROM slurm_jobs WHERE job_id = $1';
    await db.pool.query(`UPDATE unbilled_jobs SET "user" = 'alice' WHERE job_id = (${rowOf})`, [bobs]);
    await db.pool.query(`UPDATE unbilled_jobs SET end_at = '2025-08-01T00:00:00Z' WHERE job_id = (${rowOf})`, [late]);

    await expect(receipts.createForUser({ username: 'alice' }, '2025-08-31', as('alice'))).rejects.toThrow(
      NothingToBillError,
    );
    expect(await itemsOfJob(bobs as string)).toHaveLength(0);
    expect(await itemsOfJob(late as string)).toHaveLength(0);
    // The month-end's repair puts the rows right, and bob's job goes on bob's receipt.
    const run = await receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(run.receipts.map((receipt) => receipt.username)).toEqual(['bob']);
    expect(await itemsOfJob(late as string)).toHaveLength(0);
  });

  it('bills a finished job the queue lost, with the owner and end the job has', async () => {
    const { receipts } = buildServices();
    const [lost, moved] = await buildJobs(db, [
      { user: 'alice', end: '2025-08-10T00:00:00Z' },
      { user: 'alice', end: '2025-08-11T00:00:00Z' },
    ]);
    // What a race between writers could leave: one job missing, one queued under an old owner.
    const rowOf = 'SELECT id FROM slurm_jobs WHERE job_id = $1';
    await db.pool.query(`DELETE FROM unbilled_jobs WHERE job_id = (${rowOf})`, [lost]);
    await db.pool.query(`UPDATE unbilled_jobs SET "user" = 'someone-else' WHERE job_id = (${rowOf})`, [moved]);
    await expect(receipts.createForUser({ username: 'alice' }, '2025-08-31', as('alice'))).rejects.toThrow(
      NothingToBillError,
    );

    const run = await receipts.runMonthEnd(ADMIN, '2025-08-31');
    expect(run.receipts.map((receipt) => receipt.username)).toEqual(['alice']);
    expect(await itemsOfJob(lost as string)).toHaveLength(1);
    expect(await itemsOfJob(moved as string)).toHaveLength(1);
    const queued = await db.pool.query('SELECT count(*)::int AS n FROM unbilled_jobs');
    expect(queued.rows[0]).toEqual({ n: 0 });
  });
});

describe('a request racing another that bills the same jobs', () => {
  beforeEach(clearBilling);

  it('fails whole with a conflict when the other commits first, and writes nothing', async () => {
    const { receipts } = buildServices();
    const [jobId, other] = await buildJobs(db, [
      { user: 'alice', end: '2025-09-01T00:00:00Z' },
      { user: 'alice', end: '2025-09-02T00:00:00Z' },
    ]);
    // The "other request": holds an uncommitted item for the first job.
    const racer = await db.pool.connect();
    try {
      await racer.query('BEGIN');
      const { rows } = await racer.query(
        `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
         VALUES ('alice', '2025-09-10', 0, 'THB', 'mu', '{}', now(), 'racer') RETURNING id`,
      );
      await racer.query(
        `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
         SELECT $1, id, cluster, job_key, job_id, 0, 0, 0, 0, end_at FROM slurm_jobs WHERE job_id = $2`,
        [rows[0].id, jobId],
      );
      const attempt = receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
      const settled = attempt.then(
        () => 'created',
        (error: unknown) => error,
      );
      // Our request is now waiting on the unique index for the racer's row.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await racer.query('COMMIT');
      const outcome = await settled;
      expect(outcome).toBeInstanceOf(ConflictError);
      expect((outcome as Error).message).toMatch(/nothing was written/);
    } finally {
      racer.release();
    }
    expect(await db.prisma.receipt.findMany({ select: { createdBy: true } })).toEqual([{ createdBy: 'racer' }]);
    expect(await itemsOfJob(other as string)).toEqual([]);
  });
});

describe('a rate change committed while a receipt is being made', () => {
  beforeEach(clearBilling);

  it("is never dated before the receipt's rates-locked time when the receipt billed at the rates it replaced", async () => {
    // A clock that moves a second on every reading, so the order of the readings shows in the times.
    let tick = 0;
    const now = () => new Date(NOW.getTime() + ++tick * 1000);
    const { rates, receipts } = buildServices(db, now);
    await buildJobs(db, [{ user: 'alice', end: '2025-09-05T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const holder = await db.pool.connect();
    let change: Promise<unknown> | undefined;
    try {
      // Something else holds tier mu (another admin's rate change of it, say): this change waits for it.
      await holder.query(`BEGIN; SELECT id FROM pricing_tiers WHERE name = 'mu' FOR UPDATE`);
      change = rates.setRates(ADMIN, { type: 'mu', cpu: d('0.9'), gpu: d('12'), mem: d('0.05') });
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const receipt = receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
      // The receipt is made while the change waits, or waits behind it: either way the two must agree.
      await Promise.race([receipt.catch(() => undefined), sessionsWaitingForLocks(db.pool, 5_000, 2)]);
      await holder.query('COMMIT');
      const created = await receipt;
      const updated = (await change) as { effectiveFrom: string };

      const made = await db.prisma.receipt.findUniqueOrThrow({ where: { id: created.id } });
      // The history's answer to "which mu rates were in force when this receipt locked its rates?"
      const inForce = await db.prisma.pricingRate.findFirstOrThrow({
        where: { tier: { name: 'mu' }, effectiveFrom: { lte: made.ratesLockedAt } },
        orderBy: [{ effectiveFrom: 'desc' }, { id: 'desc' }],
      });
      expect(
        made.rateId,
        `rates changed at ${updated.effectiveFrom}, receipt locked ${made.ratesLockedAt.toISOString()}`,
      ).toBe(inForce.id);
      expect(made.ratesSnapshot).toMatchObject({ cpu: inForce.cpuPerHour.toFixed() });
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await change?.catch(() => undefined);
      // Put mu back for the other tests: the change is dated by the test's clock, within seconds of NOW.
      await db.prisma.pricingRate.deleteMany({
        where: { effectiveFrom: { gt: NOW, lt: new Date(NOW.getTime() + 86_400_000) } },
      });
    }
  });
});

describe('a rate change waiting for a long receipt', () => {
  it("is saved once the receipt commits, however long it took (not cut off by the change's own transaction timeout)", async () => {
    const { rates } = buildServices();
    const receipt = await db.pool.connect();
    let change: Promise<unknown> | undefined;
    try {
      // A receipt of a very busy user holds the rates for longer than Prisma's default 5 s.
      await receipt.query('BEGIN');
      await receipt.query('SELECT pg_advisory_xact_lock_shared($1)', [ADVISORY_LOCK_KEYS.pricingChange]);
      change = rates.setRates(ADMIN, { type: 'gov', cpu: d('0.85'), gpu: d('18'), mem: d('0.08') });
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      await receipt.query('COMMIT');
      await expect(change).resolves.toMatchObject({ type: 'gov', cpu: '0.85', isChanged: true });
    } finally {
      await receipt.query('ROLLBACK').catch(() => undefined);
      receipt.release();
      await change?.catch(() => undefined);
      // Put gov back for the other tests.
      await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'gov' }, cpuPerHour: d('0.85') } });
    }
  }, 20_000);
});

describe("a tier override committed while the user's receipt is being made", () => {
  beforeEach(clearBilling);

  it('is either read by the receipt or logged after its rates-locked time, never logged before it and missed', async () => {
    // The real clock: the audit log stamps entries with it.
    const now = () => new Date();
    const { rates, receipts } = buildServices(db, now);
    await buildJobs(db, [{ user: 'alice', end: '2025-09-05T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const holder = await db.pool.connect();
    let move: Promise<unknown> | undefined;
    try {
      // The audit log is busy (another request appending): the move to gov waits to log itself.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      move = rates.setOverride(ADMIN, { username: 'alice', tier: 'gov' });
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const receipt = receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      await holder.query('COMMIT');
      await move;
      const created = await receipt;

      const made = await db.prisma.receipt.findUniqueOrThrow({ where: { id: created.id } });
      // What the audit log says alice's tier was when the receipt locked its rates.
      const moves = await db.prisma.auditLog.findMany({
        where: { action: { in: ['pricing.override.set', 'pricing.override.remove'] }, target: 'user:alice' },
        orderBy: { id: 'asc' },
        select: { ts: true, details: true },
      });
      const logged = moves.filter((entry) => entry.ts <= made.ratesLockedAt).at(-1);
      const tierThen = (logged?.details as { next?: string | null } | undefined)?.next ?? 'mu';
      expect(made.tierName, JSON.stringify({ moves, lockedAt: made.ratesLockedAt })).toBe(tierThen);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await move?.catch(() => undefined);
      await db.prisma.tierOverride.deleteMany({ where: { username: 'alice' } });
    }
  });
});

describe('a change of the default tier committed while a receipt of one of its users is being made', () => {
  beforeEach(clearBilling);

  it('is either read by the receipt or logged after its rates-locked time, never logged before it and missed', async () => {
    // The real clock: the audit log stamps entries with it.
    const now = () => new Date();
    const { rates, receipts } = buildServices(db, now);
    // alice matches no rule and has no override: she is billed on the default tier, mu.
    await buildJobs(db, [{ user: 'alice', end: '2025-09-05T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const holder = await db.pool.connect();
    let change: Promise<unknown> | undefined;
    try {
      // The audit log is busy (another request appending): the change waits to log itself.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      change = rates.setDefaultTier(ADMIN, { type: 'gov' });
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const receipt = receipts.createForUser({ username: 'alice' }, '2025-09-10', as('alice'));
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      await holder.query('COMMIT');
      await change;
      const created = await receipt;

      const made = await db.prisma.receipt.findUniqueOrThrow({ where: { id: created.id } });
      // What the audit log says the default tier was when the receipt locked its rates.
      const changes = await db.prisma.auditLog.findMany({
        where: { action: 'pricing.tier.default' },
        orderBy: { id: 'asc' },
        select: { ts: true, details: true },
      });
      const logged = changes.filter((entry) => entry.ts <= made.ratesLockedAt).at(-1);
      const defaultThen = (logged?.details as { next?: string } | undefined)?.next ?? 'mu';
      expect(made.tierName, JSON.stringify({ changes, lockedAt: made.ratesLockedAt })).toBe(defaultThen);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await change?.catch(() => undefined);
      // Put the default back on mu for the other tests.
      await rates.setDefaultTier(ADMIN, { type: 'mu' });
    }
  });
});

describe('a tier that PRICING_TIER_RULES names, added while a receipt of a user it matches is being made', () => {
  beforeEach(clearBilling);

  it("is in force from after the receipt's rates-locked time unless the receipt billed with it", async () => {
    let tick = 0;
    const now = () => new Date(NOW.getTime() + ++tick * 1000);
    const config = buildTestConfig(db.url, {
      APP_TZ: 'Asia/Bangkok',
      PRICING_TIER_RULES: '[{"pattern":"^lab[-_.]","tier":"lab"}]',
    });
    const rates = createRatesService({ db, config, now });
    const receipts = createReceiptsService({
      db,
      config,
      rates,
      metrics: createMetrics(),
      now,
      backgroundWork: createBackgroundWork(),
    });
    // lab-x is on the default tier, mu, until a tier named lab exists.
    await buildJobs(db, [{ user: 'lab-x', end: '2025-09-05T00:00:00Z', totalCpuSec: '3600', allocMemMb: 0 }]);
    const holder = await db.pool.connect();
    let adding: Promise<unknown> | undefined;
    try {
      // The audit log is busy (another request appending): the new tier waits to log itself.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      adding = rates.createTier(ADMIN, { name: 'lab', description: '', cpu: d('2'), gpu: d('20'), mem: d('0.2') });
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      const receipt = receipts.createForUser({ username: 'lab-x' }, '2025-09-10', as('lab-x'));
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      await holder.query('COMMIT');
      await adding;
      const created = await receipt;

      const made = await db.prisma.receipt.findUniqueOrThrow({ where: { id: created.id } });
      const lab = await db.prisma.pricingRate.findFirstOrThrow({ where: { tier: { name: 'lab' } } });
      // By the history, lab-x was on lab from the moment lab's rates took effect.
      const tierThen = lab.effectiveFrom <= made.ratesLockedAt ? 'lab' : 'mu';
      expect(made.tierName, JSON.stringify({ labFrom: lab.effectiveFrom, lockedAt: made.ratesLockedAt })).toBe(
        tierThen,
      );
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
      await adding?.catch(() => undefined);
      await db.prisma.pricingRate.deleteMany({ where: { tier: { name: 'lab' } } });
      await db.prisma.pricingTier.deleteMany({ where: { name: 'lab' } });
    }
  });
});
