import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt whose last day is the day it is made bills the jobs that had ended when it was made,
 * not those that end later that day (they go on the next receipt): every place that shows its window
 * says so, where it said "(end of day)".
 */
let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, then 15:42.
let clock = new Date('2025-09-20T05:00:00Z');
const now = () => clock;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
});
afterAll(() => db?.drop());

beforeEach(async () => {
  clock = new Date('2025-09-20T05:00:00Z');
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
  await signInBoth();
});

/** Fresh sessions at the clock's time: a clock moved hours on ends an idle session. */
async function signInBoth() {
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
}

async function billAliceUpTo(before: string): Promise<number> {
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(alice, '/me') });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  return Number(/\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location as string)?.[1]);
}

const textOf = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

describe('a receipt made on its own last day', () => {
  it('says it bills the jobs ended up to when it was made, on its page, its printout and the lists', async () => {
    // Ended 11:00 Bangkok, before the receipt; the other ends at 14:00, after it was made.
    await buildJobs(db, [{ user: 'alice', end: '2025-09-20T04:00:00Z', jobId: '7001' }]);
    const first = await billAliceUpTo('2025-09-20');
    clock = new Date('2025-09-20T08:42:00Z');
    await signInBoth();
    await buildJobs(db, [{ user: 'alice', end: '2025-09-20T07:00:00Z', jobId: '7002' }]);
    const second = await billAliceUpTo('2025-09-20');
    expect((await db.prisma.receiptItem.findMany({ where: { receiptId: second } })).map((i) => i.jobKey)).toEqual([
      '7002',
    ]);

    const cut = '2025-09-20 12:00 (when this receipt was made, Asia/Bangkok)';
    for (const path of [`/me/receipts/${first}`, `/me/receipts/${first}/print`]) {
      const page = textOf((await alice.get(path).expect(200)).text);
      expect(page, path).toContain(`Jobs ended up to ${cut}`);
      expect(page, path).not.toContain('end of day');
    }
    expect(textOf((await admin.get(`/admin/receipts/${first}`).expect(200)).text)).toContain(`Jobs ended up to ${cut}`);
    expect(textOf((await alice.get(`/me/receipts/${second}`).expect(200)).text)).toContain(
      'Jobs ended up to 2025-09-20 15:42 (when this receipt was made, Asia/Bangkok)',
    );

    const list = (await alice.get('/me/receipts').expect(200)).text;
    expect(list).toMatch(new RegExp(`>#${first}</a>[\\s\\S]*?data-label="Jobs up to">2025-09-20 12:00<`));
    const billing = (await admin.get('/admin/receipts').expect(200)).text;
    expect(billing).toMatch(new RegExp(`>#${first}</a>[\\s\\S]*?data-label="Jobs up to">2025-09-20 12:00<`));
  });

  it('says, when there is nothing to bill since, that it bills the jobs ended by when it was made', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-20T04:00:00Z', jobId: '7011' }]);
    const first = await billAliceUpTo('2025-09-20');
    clock = new Date('2025-09-20T08:42:00Z');
    await signInBoth();
    const sendAgain = async (before: string) =>
      alice
        .post('/me/receipt')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before, csrf_token: await csrfTokenOf(alice, '/me') });
    // It said the receipt bills "your jobs up to that day", which it does not: a job that ends later
    // today goes on the next receipt, as the receipt's own page says.
    const refused = await sendAgain('2025-09-20');
    expect(refused.status).toBe(422);
    const again = textOf(refused.text);
    expect(again).toContain(
      `Receipt #${first}, made at 12:00 (Asia/Bangkok) today, already bills your jobs that had ended by then, and none has ended since.`,
    );
    expect(again).not.toContain('up to that day');
    // The next day, for that day: the jobs that ended after the receipt was made would be billed now.
    clock = new Date('2025-09-21T03:00:00Z');
    await signInBoth();
    const nextDay = await sendAgain('2025-09-20');
    expect(nextDay.status).toBe(422);
    expect(textOf(nextDay.text)).toContain(
      `Receipt #${first} already bills your jobs that had ended when it was made (2025-09-20 12:00, Asia/Bangkok), and none ended later that day.`,
    );
    expect(await db.prisma.receipt.count()).toBe(1);
  });

  it('keeps "end of day" for a receipt made after its last day ended', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-18T04:00:00Z', jobId: '7003' }]);
    const id = await billAliceUpTo('2025-09-19');
    expect(textOf((await alice.get(`/me/receipts/${id}`).expect(200)).text)).toContain(
      'Jobs ended up to 2025-09-19 (end of day, Asia/Bangkok)',
    );
    expect((await alice.get('/me/receipts').expect(200)).text).toContain('data-label="Jobs up to">2025-09-19<');
  });

  it("says on the create form that today's receipt bills the jobs ended by the time it is made", async () => {
    expect(textOf((await alice.get('/me').expect(200)).text)).toContain(
      'Bills every finished job of yours that ended on or before the end of the chosen day and is not on a receipt yet. ' +
        'For today, that is the jobs that have ended by the moment you create it; a job that ends later today goes on your next receipt.',
    );
  });
});

describe('a month-end run started on its own last day', () => {
  async function buildFinishedRun(billedThrough: string, startedAt: string) {
    const row = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date(`${billedThrough}T00:00:00Z`),
        startedBy: 'boss',
        startedAt: new Date(startedAt),
        finishedAt: new Date(startedAt),
        outcome: 'succeeded',
        usersTotal: 0,
        usersDone: 0,
        receiptCount: 0,
        totals: [],
      },
    });
    return row.id;
  }

  it('says each receipt bills the jobs ended up to when it was made, not to the end of that day', async () => {
    // Started 15:42 Bangkok on the day it bills up to.
    const id = await buildFinishedRun('2025-09-20', '2025-09-20T08:42:00Z');
    // Tags end before the commas: their text reads without the space textOf leaves there.
    const page = textOf((await admin.get(`/admin/month-end/${id}`).expect(200)).text).replace(/ ,/g, ',');
    expect(page).toContain(
      "Jobs ended up to 2025-09-20, each user's up to when their receipt was made (the run started 2025-09-20 15:42, Asia/Bangkok)",
    );
    expect(page).not.toContain('end of day');
  });

  it('keeps "end of day" for a run started after its last day ended', async () => {
    const id = await buildFinishedRun('2025-09-19', '2025-09-20T01:00:00Z');
    expect(textOf((await admin.get(`/admin/month-end/${id}`).expect(200)).text)).toContain(
      'Jobs ended up to 2025-09-19 (end of day, Asia/Bangkok)',
    );
  });
});
