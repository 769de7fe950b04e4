/**
 * A user who left the centre and was disabled can still have jobs in Slurm (a queue that drained
 * after they left, an account not yet closed there). Ingestion reads Slurm, not the accounts, so it
 * stores them; pricing reads the tier override the disable kept; the month-end run bills them as
 * anyone's, into a pending receipt the disabled user cannot sign in to see or pay; voiding that
 * receipt puts the jobs back, and the next run bills them again (docs/security.md, "Offboarding a user").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createRatesService } from '../../../src/modules/pricing/rates.service.js';
import { createReceiptsService } from '../../../src/modules/receipts/receipts.service.js';
import { setDisabled } from '../../../src/modules/users/users.service.js';
import { buildTiers } from '../../support/billing-factories.js';
import { buildUser } from '../../support/factories.js';
import { ingestWindow, labFileSource } from '../../support/ingest-window.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// alice's and bob's jobs, ended 2026-11-23 15:40-16:00 UTC.
const CAPTURE = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const NOW = new Date('2026-11-25T00:00:00Z');
const CONTEXT = { actor: 'ops', ip: null, userAgent: null };

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'disabled-user-jobs-'));
  // The fixture's jobs last seconds: at gov's rate an hour of a core costs 36,000, so alice's are
  // worth a receipt that is not 0.00 (which would be settled as no charge when made).
  await buildTiers(db, [
    { name: 'mu', isDefault: true, cpu: '0.50', gpu: '12.00', mem: '0.05' },
    { name: 'gov', cpu: '36000.00', gpu: '18.00', mem: '0.08' },
  ]);
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a disabled user's jobs ingested after they left", () => {
  it('are stored, priced at the tier override they kept, and billed by the month-end run, again after a void', async () => {
    const alice = await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
    await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
    const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    await db.prisma.tierOverride.create({ data: { username: 'alice', tierId: gov.id, createdBy: 'ops' } });
    await setDisabled(db.prisma, alice.id, true, CONTEXT);
    // The disable kept the override.
    expect(await db.prisma.tierOverride.count({ where: { username: 'alice' } })).toBe(1);

    const run = await ingestWindow(db, labFileSource(CAPTURE), WINDOW, { now: () => NOW, force: true });
    expect(run.status).toBe('finished');
    expect(await db.prisma.slurmJob.count({ where: { user: 'alice' } })).toBeGreaterThan(0);

    const config = buildTestConfig(db.url, { APP_TZ: 'UTC' });
    const rates = createRatesService({ db, config, now: () => NOW });
    const receipts = createReceiptsService({ db, config, rates, metrics: createMetrics(), now: () => NOW });
    const monthEnd = await receipts.runMonthEnd(CONTEXT, '2026-11-24');
    expect(monthEnd.skipped).toEqual([]);

    const made = await db.prisma.receipt.findMany({
      where: { monthEndRunId: monthEnd.runId },
      orderBy: { username: 'asc' },
      select: { username: true, status: true, tierName: true, total: true },
    });
    // bob, enabled and on the default tier, alongside: alice's were billed as anyone's.
    expect(made.map(({ username, tierName }) => ({ username, tierName }))).toEqual([
      { username: 'alice', tierName: 'gov' },
      { username: 'bob', tierName: 'mu' },
    ]);
    expect(made[0]?.status).toBe('pending');
    expect(made[0]?.total.greaterThan(0)).toBe(true);

    // Voiding it writes nothing off: its jobs go back to be billed, and the next run bills them again.
    const first = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice', status: 'pending' } });
    await receipts.voidReceipt(CONTEXT, first.id, { reason: 'alice left the centre' });
    const next = await receipts.runMonthEnd(CONTEXT, '2026-11-24');
    const again = await db.prisma.receipt.findMany({
      where: { monthEndRunId: next.runId },
      select: { username: true, status: true, total: true },
    });
    expect(again).toEqual([{ username: 'alice', status: 'pending', total: first.total }]);
  });
});
