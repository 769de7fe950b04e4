import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The finance pages' errors (a refused usage or audit export, a month-end run that is not there, a
 * page past the last run, a payments page cursor edited by hand) left the admin on an error page
 * whose only link was "Back to the start page", where the receipts' and users' pages already led
 * back to their list, and My usage's refused export to My usage at the window typed.
 */
let db: TestDatabase;
let boss: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  boss = await signInAs(buildTestApp(db), 'boss', 'boss-password');
});
afterAll(() => db?.drop());

// What Chromium sends when the address is typed or a link followed.
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

describe('an admin finance page that cannot be shown', () => {
  it.each([
    [
      '/admin/usage.csv?start=2026-02-30&user=alice',
      400,
      'Ended from: is not a real calendar date',
      '/admin/usage?start=2026-02-30&amp;user=alice',
      'Back to Usage across users',
    ],
    [
      '/admin/audit.csv?from=2026-12-05&to=2026-12-01&action=receipt.void',
      400,
      'Logged from (2026-12-05) is after Logged to (2026-12-01).',
      '/admin/audit?action=receipt.void&amp;from=2026-12-05&amp;to=2026-12-01',
      'Back to the audit log',
    ],
    ['/admin/month-end/999999', 404, 'Month-end run #999999 was not found.', '/admin/month-end', 'Open Month-end runs'],
    [
      '/admin/month-end/abc',
      400,
      'Month-end run number in the address: must be a whole number',
      '/admin/month-end',
      'Open Month-end runs',
    ],
    ['/admin/month-end?page=3', 404, 'there is no page 3', '/admin/month-end', 'Open Month-end runs'],
    // A page of Billing past the last (an old bookmark, a filter that now matches fewer receipts) had only
    // the start page: Billing itself, or its page 1 at the filters typed.
    ['/admin/receipts?page=2', 404, 'there is no page 2', '/admin/receipts', 'Open Billing'],
    [
      '/admin/receipts?user=alice&status=pending&start=2026-01-01&page=3',
      404,
      'The filters match 0 receipts on 1 page; there is no page 3.',
      '/admin/receipts?status=pending&amp;user=alice&amp;start=2026-01-01',
      'Go to page 1',
    ],
    ['/admin/payments?older=1&newer=2', 400, 'Give older or newer, not both.', '/admin/payments', 'Open Payments'],
  ])('%s gets %i, the reason and a link back', async (path, status, reason, href, text) => {
    const page = await boss.get(path).set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(status);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(reason);
    expect(page.text).toContain(`<a href="${href}">${text}</a>`);
  });

  it('still answers a script with {error, code} alone', async () => {
    const answer = await boss.get('/admin/month-end/999999').set('Accept', 'application/json');
    expect(answer.status).toBe(404);
    expect(answer.body).toEqual({ error: 'Month-end run #999999 was not found.', code: 404 });
  });
});
