import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The month-end run bills the jobs ingestion has read. With ingestion stopped since the afternoon of
 * the month's last day (slurmdbd down, the scheduler off), a run at 00:05 on the 1st billed November
 * without the jobs of its last hours, and nothing on the billing page said so: they turned up on
 * December's receipts. The Month-end card says how far Slurm accounting has been read, and warns
 * when a run for a day that has ended would leave jobs out.
 */
let db: TestDatabase;
let boss: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const app = buildTestApp(db, { now: () => new Date('2026-12-01T00:05:00Z') });
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

async function monthEndCard(): Promise<string> {
  const page = (await boss.get('/admin/receipts').set('Accept', 'text/html').expect(200)).text;
  const card = /<h2>Month-end run<\/h2>.*?<\/section>/s.exec(page)?.[0] ?? '';
  return visibleTextOf(card);
}

function ingestionRun(windowEnd: string, cluster?: string) {
  const end = new Date(windowEnd);
  return db.prisma.ingestionRun.create({
    data: {
      trigger: 'schedule',
      ...(cluster === undefined ? {} : { cluster }),
      source: 'sacct',
      windowStart: new Date(end.getTime() - 15 * 60_000),
      windowEnd: end,
      outcome: 'success',
      startedAt: end,
      finishedAt: end,
    },
  });
}

describe('the billing page before a month-end run', () => {
  it('says nothing of ingestion before any run has read Slurm accounting', async () => {
    expect(await monthEndCard()).not.toContain('Slurm accounting');
  });

  it('warns when accounting has not been read up to the end of yesterday', async () => {
    await ingestionRun('2026-11-30T14:00:00Z');
    expect(await monthEndCard()).toContain(
      'Slurm accounting has been read only up to 2026-11-30 14:00 (UTC): a run for 2026-11-30 or a later day ' +
        'leaves out the jobs that ended after that until ingestion catches up (Ingestion); a later run bills them.',
    );
  });

  it('says how far it is read, without a warning, once it has caught up', async () => {
    await ingestionRun('2026-12-01T00:04:00Z');
    const card = await monthEndCard();
    expect(card).toContain('Slurm accounting is read up to 2026-12-01 00:04 (UTC).');
    expect(card).not.toContain('read only up to');
  });

  // Two instances on the database, one per cluster (SLURM_CLUSTER=alpha, beta): a run bills both's jobs,
  // and this page, served by either, took the mark of every run together, so beta's reads said alpha's
  // data was complete while alpha's source had been down since the afternoon.
  it("with two clusters' instances, warns of the one behind, by name, and says when every cluster is read", async () => {
    await db.prisma.ingestionRun.deleteMany();
    await ingestionRun('2026-11-30T14:00:00Z', 'alpha');
    await ingestionRun('2026-12-01T00:04:00Z', 'beta');
    expect(await monthEndCard()).toContain(
      'Slurm accounting of cluster alpha has been read only up to 2026-11-30 14:00 (UTC): a run for 2026-11-30',
    );
    await ingestionRun('2026-12-01T00:03:00Z', 'alpha');
    const card = await monthEndCard();
    expect(card).toContain('Slurm accounting of every cluster is read up to 2026-12-01 00:03 (UTC).');
    expect(card).not.toContain('read only up to');
  });
});
