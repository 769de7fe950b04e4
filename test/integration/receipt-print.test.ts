import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** What a finance officer or a researcher gets of a receipt: its items CSV, its printout. */
let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
});

/** Bills alice's jobs that ended up to `before`; the new receipt's id. */
async function billAliceUpTo(before: string): Promise<number> {
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(alice, '/me') });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  return Number(/\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location as string)?.[1]);
}

const csvLinesOf = async (agent: Agent, path: string) => (await agent.get(path).expect(200)).text.trimEnd().split('\n');

describe("a receipt's items CSV", () => {
  it('names each job and its end time after the first eight columns, a name from Slurm made inert', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:04:05Z', jobId: '9101', name: '=HYPERLINK("http://x")' },
      { user: 'alice', end: '2025-09-11T23:59:59Z', jobId: '9102', name: 'md, run' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    const mine = await csvLinesOf(alice, `/me/receipts/${id}/items.csv`);
    expect(mine[0]).toBe('receipt_id,job_id,cluster,cpu_hours,gpu_hours,mem_gb_hours,cost,currency,name,end');
    expect(mine.slice(1)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${id},9101,test,[\\d.]+,[\\d.]+,[\\d.]+,\\d+\\.\\d{2},THB,"'=HYPERLINK\\(""http://x""\\)",2025-09-10T03:04:05Z$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^${id},9102,test,[\\d.]+,[\\d.]+,[\\d.]+,\\d+\\.\\d{2},THB,"md, run",2025-09-11T23:59:59Z$`),
      ),
    ]);
    expect(await csvLinesOf(admin, `/admin/receipts/${id}/items.csv`)).toEqual(mine);

    // The same name and end as the usage CSV writes them for the same jobs.
    const usage = await csvLinesOf(alice, '/me.csv?start=2025-09-08&end=2025-09-20');
    const usageColumns = usage[0]?.split(',') ?? [];
    expect(usage[1]).toContain(`,"'=HYPERLINK(""http://x"")",`);
    expect(usageColumns.indexOf('end')).toBeGreaterThan(-1);
    expect(usage[2]).toContain(',2025-09-11T23:59:59Z,');
  });
});
