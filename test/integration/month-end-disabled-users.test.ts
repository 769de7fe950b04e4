/**
 * The month-end run bills a disabled user's jobs as anyone's (docs/security.md, "Offboarding a
 * user"), into a receipt they cannot sign in to see or pay. The run's page and JSON name those
 * users, with their receipts and totals, so that the admin reading the run knows whom to chase by
 * other means; a run that billed none says nothing of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-10-20T05:00:00Z') + (Date.now() - STARTED));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice' });
  await buildUser(db.prisma, { username: 'bob', isDisabled: true });
  await buildUser(db.prisma, { username: 'carol', isDisabled: true });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** Starts a month-end run from the billing page's form and waits for it to end; its path and JSON. */
async function runMonthEnd(before: string) {
  const started = await admin
    .post('/admin/month-end')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
  const path = monthEndRunPathOf(started);
  return { path, run: await waitForMonthEndRun(admin, path) };
}

const receiptOf = (username: string, before: string) =>
  db.prisma.receipt.findFirstOrThrow({
    where: { username, billedThrough: new Date(`${before}T00:00:00Z`) },
    select: { id: true, total: true, currency: true, status: true },
  });

describe('a month-end run that bills disabled users', () => {
  it('bills them as before, and its page and JSON name them with their receipts and totals', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-20T03:00:00Z', elapsedSec: 7200, allocCpus: 4 },
      { user: 'bob', end: '2025-08-21T03:00:00Z', elapsedSec: 3600, allocCpus: 2 },
      { user: 'bob', end: '2025-08-22T03:00:00Z', elapsedSec: 3600, allocCpus: 2 },
      { user: 'carol', end: '2025-08-23T03:00:00Z', elapsedSec: 36000, allocCpus: 8 },
    ]);
    const { path, run } = await runMonthEnd('2025-08-31');

    // Who is billed is unchanged: every user with unbilled jobs, disabled or not.
    expect(run).toMatchObject({ outcome: 'succeeded', receiptCount: 3, skipped: [] });
    const [bob, carol] = [await receiptOf('bob', '2025-08-31'), await receiptOf('carol', '2025-08-31')];
    expect(bob.status).toBe('pending');
    expect(carol.status).toBe('pending');
    const both = bob.total.plus(carol.total).toFixed(2);

    expect(run.disabledUsersBilled).toEqual([
      {
        username: 'bob',
        receiptId: bob.id,
        receiptUrl: `/admin/receipts/${bob.id}`,
        total: bob.total.toFixed(2),
        currency: 'THB',
        status: 'pending',
      },
      {
        username: 'carol',
        receiptId: carol.id,
        receiptUrl: `/admin/receipts/${carol.id}`,
        total: carol.total.toFixed(2),
        currency: 'THB',
        status: 'pending',
      },
    ]);
    const sentence =
      `2 of them went to disabled users (total ${both} THB): bob, carol. Nobody can sign in to see or pay them: ` +
      'chase them by other means and mark each paid when finance settles it.';
    expect(run.message).toContain(sentence);

    const page = await admin.get(path).set('Accept', 'text/html').expect(200);
    const text = visibleTextOf(page.text);
    expect(text).toContain(sentence);
    expect(text).toContain('Disabled users billed 2');
    // Each named with a link to their receipts on the billing list, and their receipt with its total.
    expect(page.text).toContain('<a href="/admin/receipts?user=bob">');
    expect(page.text).toContain('<a href="/admin/receipts?user=carol">');
    expect(page.text).toContain(`<a href="/admin/receipts/${bob.id}" aria-label="Receipt #${bob.id}">#${bob.id}</a>`);
    expect(page.text).toContain(
      `<a href="/admin/receipts/${carol.id}" aria-label="Receipt #${carol.id}">#${carol.id}</a>`,
    );
    expect(text).toContain(
      `bob #${bob.id} ${bob.total.toFixed(2)} THB carol #${carol.id} ${carol.total.toFixed(2)} THB`,
    );

    // The list of runs as JSON carries the same field for each run.
    const list = await admin.get('/admin/month-end').set('Accept', 'application/json').expect(200);
    expect(list.body.runs[0].disabledUsersBilled).toEqual(run.disabledUsersBilled);
  });

  it('that billed only enabled users says nothing more than before', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-20T03:00:00Z', elapsedSec: 7200, allocCpus: 4 }]);
    const { path, run } = await runMonthEnd('2025-09-30');
    expect(run).toMatchObject({ outcome: 'succeeded', receiptCount: 1, disabledUsersBilled: [] });
    const alice = await receiptOf('alice', '2025-09-30');
    expect(run.message).toBe(`Month-end run up to 2025-09-30: 1 receipt created, total ${alice.total.toFixed(2)} THB.`);

    const page = await admin.get(path).set('Accept', 'text/html').expect(200);
    expect(page.text).not.toMatch(/disabled/i);
  });
});
