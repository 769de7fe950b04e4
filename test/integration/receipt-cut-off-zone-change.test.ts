import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { billJobs } from '../support/receipt-steps.js';
import { csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt's cut-off is the end of its last day in the APP_TZ it was made under. After APP_TZ
 * changed (a centre that ran in New York's zone moves its app to Berlin's), every page wrote it as
 * "2026-03-08 (end of day, Europe/Berlin)": six hours before the jobs it billed ended, which a
 * finance office read as the period the receipt covered.
 */
let db: TestDatabase;
let receiptId: number;
let runPath: string;
let password: string;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const nora = await buildUser(db.prisma, { username: 'nora' });
  password = nora.password;
  // 23:30 on 8 March in New York: after Berlin's 8 March ended, before New York's did.
  await buildJobs(db, [{ user: 'nora', end: new Date('2026-03-09T03:30:00Z') }]);
  const newYork = buildTestApp(db, { env: { APP_TZ: 'America/New_York' } });
  receiptId = await billJobs(await signInAs(newYork, 'nora', password), '2026-03-08');
  await buildUser(db.prisma, { username: 'mara' });
  await buildJobs(db, [{ user: 'mara', end: new Date('2026-03-09T03:45:00Z') }]);
  const admin = await signInNewAdmin(newYork, db, 'olga');
  const started = await admin
    .post('/admin/month-end')
    .type('form')
    .send({ before: '2026-03-08', csrf_token: await csrfTokenOf(admin) });
  runPath = monthEndRunPathOf(started);
  await waitForMonthEndRun(admin, runPath);
});
afterAll(() => db?.drop());

const cellText = (html: string) => html.replace(/<[^>]+>/g, '').trim();

describe('a receipt made before APP_TZ changed', () => {
  it('its page and print give its cut-off as the instant it was, in the zone now, and why', async () => {
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' } }), 'nora', password);
    for (const path of [`/me/receipts/${receiptId}`, `/me/receipts/${receiptId}/print`]) {
      const page = await agent.get(path).set('Accept', 'text/html').expect(200);
      const upTo = /<dt>Jobs ended up to<\/dt><dd>(.*?)<\/dd>/s.exec(page.text)?.[1] ?? '';
      expect(cellText(upTo), path).toBe(
        '2026-03-09 05:00 (Europe/Berlin; the end of 2026-03-08 in the time zone the app was set to when this receipt was made)',
      );
    }
  });

  it('My receipts lists its cut-off as that instant', async () => {
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' } }), 'nora', password);
    const page = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    const cell = /<td data-label="Jobs up to">(.*?)<\/td>/s.exec(page.text)?.[1] ?? '';
    expect(cellText(cell)).toBe('2026-03-09 05:00');
  });

  it("the billing page's Jobs up to column gives that instant too", async () => {
    const admin = await buildUser(db.prisma, { username: 'ines', role: 'admin' });
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' } }), 'ines', admin.password);
    const page = await agent.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    const cell = /<td data-label="Jobs up to">(.*?)<\/td>/s.exec(page.text)?.[1] ?? '';
    expect(cellText(cell)).toBe('2026-03-09 05:00');
  });

  it("a month-end run's page gives its cut-off as that instant too", async () => {
    const admin = await buildUser(db.prisma, { username: 'pia', role: 'admin' });
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' } }), 'pia', admin.password);
    const page = await agent.get(runPath).set('Accept', 'text/html').expect(200);
    const upTo = /<dt>Jobs ended up to<\/dt><dd>(.*?)<\/dd>/s.exec(page.text)?.[1] ?? '';
    expect(cellText(upTo)).toBe(
      '2026-03-09 05:00 (Europe/Berlin; the end of 2026-03-08 in the time zone the app was set to when this run was made)',
    );
  });

  it('its JSON gives the cut-off instant beside the day', async () => {
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' } }), 'nora', password);
    const answer = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200);
    expect(answer.body.receipt.before).toBe('2026-03-08');
    expect(answer.body.receipt.jobsEndedBefore).toBe('2026-03-09T04:00:00.000Z');
  });

  it('in the zone it was made in, its page says end of day as before', async () => {
    const agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'America/New_York' } }), 'nora', password);
    const page = await agent.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200);
    const upTo = /<dt>Jobs ended up to<\/dt><dd>(.*?)<\/dd>/s.exec(page.text)?.[1] ?? '';
    expect(cellText(upTo)).toBe('2026-03-08 (end of day, America/New_York)');
  });
});
