import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Create receipt on /me opened the new receipt's page with nothing on it saying it had just been made:
// a screen reader announced "Receipt #12", the title any receipt's page has, and left the researcher to
// work out from its Created line whether the button had worked. Every other success told after a
// redirect (password changed, receipt marked paid or voided, rates saved, a receipt that left unfinished
// jobs out) shows a flash, which takes the focus and is read. A new receipt now says so the same way.

let db: TestDatabase;
let alice: Agent;
let bob: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'UTC' }, now: () => new Date('2025-10-02T03:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

const html = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

/** The flash the layout shows first thing in <main>, if any: its type and text. */
const flashOf = (page: string) => {
  const found = /<main class="content"[^>]*>\s*<div class="alert (\w+)" role="status">([^<]*)<\/div>/.exec(page);
  return found ? { type: found[1], message: found[2] } : undefined;
};

describe('a receipt created on /me', () => {
  it('says on its page that it was created, with its number, jobs and total, once', async () => {
    await buildJobs(db, [
      { user: 'alice', jobId: '500', end: '2025-09-10T10:00:00Z' },
      { user: 'alice', jobId: '501', end: '2025-09-11T10:00:00Z' },
    ]);
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: await csrfTokenOf(alice, '/me') });
    expect(created.status, created.text.slice(0, 300)).toBe(303);
    const receipt = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'alice' } });
    expect(created.headers.location).toBe(`/me/receipts/${receipt.id}#receipt`);

    const page = (await html(alice, `/me/receipts/${receipt.id}`).expect(200)).text;
    expect(flashOf(page)).toEqual({
      type: 'success',
      message: `Receipt #${receipt.id} created: 2 jobs, total ${receipt.total.toFixed(2)} THB.`,
    });
    // The receipt's own heading is still there below it.
    expect(page).toContain(`<h1>Receipt #${receipt.id}</h1>`);

    // Shown once: a reload of the receipt, or the next page, says nothing more of it.
    expect(flashOf((await html(alice, `/me/receipts/${receipt.id}`).expect(200)).text)).toBeUndefined();
    expect(flashOf((await html(alice, '/me').expect(200)).text)).toBeUndefined();
  });

  it('answers a JSON client as before, with nothing left waiting in the session', async () => {
    await buildJobs(db, [{ user: 'alice', jobId: '502', end: '2025-09-12T10:00:00Z' }]);
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
      .send({ before: '2025-09-30' });
    expect(created.status, created.text).toBe(201);
    const id = created.body.receipt.id as number;
    expect(created.body.message).toBe(`Receipt #${id} created: 1 job, total ${created.body.receipt.total} THB.`);
    expect(flashOf((await html(alice, `/me/receipts/${id}`).expect(200)).text)).toBeUndefined();
  });

  it("leaves a month-end run's receipts as they were: no message on the researcher's receipt", async () => {
    await buildJobs(db, [{ user: 'bob', jobId: '600', end: '2025-09-10T10:00:00Z' }]);
    const started = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    const run = await waitForMonthEndRun(admin, monthEndRunPathOf(started));
    expect(run.outcome).toBe('succeeded');
    const receipt = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'bob' } });
    const page = (await html(bob, `/me/receipts/${receipt.id}`).expect(200)).text;
    expect(page).toContain(`<h1>Receipt #${receipt.id}</h1>`);
    expect(flashOf(page)).toBeUndefined();
    // The run's own page tells the admin what it made, as it did; no flash is added there either.
    expect(flashOf((await html(admin, monthEndRunPathOf(started)).expect(200)).text)).toBeUndefined();
  });
});
