import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The admin's lists write their times in APP_TZ, as My receipts, the price list and the audit log do,
 * which say so. The billing list (Created, Paid), Month-end runs (Started), Payments and Edit rates
 * (In force from) named no zone: in Honolulu a finance office reading "Created 2026-01-31 21:27" took
 * it for UTC, the day after.
 */
let db: TestDatabase;
let admin: Agent;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db, { env: { APP_TZ: 'Pacific/Honolulu' } });
  const user = await buildUser(db.prisma, { username: 'keala' });
  await buildJobs(db, [
    { user: 'keala', end: new Date('2026-01-10T10:00:00Z') },
    { user: 'keala', end: new Date('2026-01-20T10:00:00Z') },
  ]);
  await billJobs(await signInAs(app, 'keala', user.password), '2026-01-15');
  admin = await signInNewAdmin(app, db, 'kekoa');
  const started = await admin
    .post('/admin/month-end')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(admin) });
  await waitForMonthEndRun(admin, monthEndRunPathOf(started));
});
afterAll(() => db?.drop());

describe('the admin pages that list times', () => {
  it.each(['/admin/receipts', '/admin/month-end', '/admin/payments', '/admin/rates'])(
    '%s says in which time zone its times are written',
    async (path) => {
      const page = await admin.get(path).set('Accept', 'text/html').expect(200);
      expect(page.text).toContain('Times are in Pacific/Honolulu.');
    },
  );
});
