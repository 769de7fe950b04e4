import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt that is not there (a mistyped or old link, another user's receipt, a page past the last)
 * left the browser on an error page whose only link was "Back to the start page": the researcher's
 * receipts, or the admin's billing list, where the receipt would be found, were not offered.
 */
let db: TestDatabase;
let alice: Agent;
let boss: Agent;
let bob: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const app = buildTestApp(db);
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

// What Chromium sends when the address is typed or a link followed.
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

describe('a receipt page that cannot be shown', () => {
  it.each([
    ['alice', '/me/receipts/999999', 404, 'Receipt #999999 was not found.', '/me/receipts', 'Open My receipts'],
    ['alice', '/me/receipts/999999/print', 404, 'Receipt #999999 was not found.', '/me/receipts', 'Open My receipts'],
    [
      'alice',
      '/me/receipts/abc',
      400,
      'Receipt number in the address: must be a whole number',
      '/me/receipts',
      'Open My receipts',
    ],
    ['alice', '/me/receipts?page=9', 404, 'there is no page 9', '/me/receipts', 'Open My receipts'],
    // The pages of paying a receipt (a bookmarked status page, an old Pay link) are the receipt's too.
    [
      'alice',
      '/payments/receipt/999999/start',
      404,
      'Receipt #999999 was not found.',
      '/me/receipts',
      'Open My receipts',
    ],
    [
      'alice',
      '/payments/receipt/abc/start',
      400,
      'Receipt number in the address: must be a whole number',
      '/me/receipts',
      'Open My receipts',
    ],
    ['alice', '/payments/thanks?rid=999999', 404, 'Receipt #999999 was not found.', '/me/receipts', 'Open My receipts'],
    ['alice', '/payments/thanks?rid=abc', 400, 'Receipt number in the address:', '/me/receipts', 'Open My receipts'],
    ['boss', '/admin/receipts/999999', 404, 'Receipt #999999 was not found.', '/admin/receipts', 'Open Billing'],
    ['boss', '/admin/receipts/999999/print', 404, 'Receipt #999999 was not found.', '/admin/receipts', 'Open Billing'],
  ])('%s opening %s gets %i, the reason and a link to the list', async (who, path, status, reason, href, text) => {
    const page = await (who === 'boss' ? boss : alice).get(path).set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(status);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(reason);
    expect(page.text).toContain(`<a href="${href}">${text}</a>`);
  });

  it('still answers a script with {error, code} alone', async () => {
    const answer = await alice.get('/me/receipts/999999').set('Accept', 'application/json');
    expect(answer.status).toBe(404);
    expect(answer.body).toEqual({ error: 'Receipt #999999 was not found.', code: 404 });
  });

  it("leads a page of a receipt past its last to the receipt's page 1, not the whole list", async () => {
    await buildJobs(db, [{ user: 'alice', jobId: '4242', end: '2026-01-10T10:00:00Z' }]);
    const id = await billJobs(alice, '2026-01-31');
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}`],
      [boss, `/admin/receipts/${id}`],
    ] as const) {
      const page = await agent.get(`${path}?page=2`).set('Accept', BROWSER_ACCEPT);
      expect(page.status, path).toBe(404);
      expect(page.text, path).toContain(`Receipt #${id} lists 1 job on 1 page; there is no page 2.`);
      expect(page.text, path).toContain(`<a href="${path}">Go to page 1</a>`);
    }
    // Another user's receipt is not there for bob, whatever the page: no link to it.
    const bobs = await bob.get(`/me/receipts/${id}?page=2`).set('Accept', BROWSER_ACCEPT);
    expect(bobs.status).toBe(404);
    expect(bobs.text).toContain(`Receipt #${id} was not found.`);
    expect(bobs.text).toContain('<a href="/me/receipts">Open My receipts</a>');
    expect(bobs.text).not.toContain(`/me/receipts/${id}"`);
  });

  it("leads a refused page of a receipt (a hand-edited address) to the receipt's page 1, as a page past the last", async () => {
    // It led to My receipts (Billing), away from the receipt the address named.
    await buildJobs(db, [{ user: 'alice', jobId: '4343', end: '2026-02-10T10:00:00Z' }]);
    const id = await billJobs(alice, '2026-02-28');
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}`],
      [boss, `/admin/receipts/${id}`],
    ] as const) {
      for (const query of ['page=abc', 'page=0', 'page=1&page=2']) {
        const page = await agent.get(`${path}?${query}`).set('Accept', BROWSER_ACCEPT);
        expect(page.status, `${path}?${query}`).toBe(400);
        expect(page.text, `${path}?${query}`).toContain('Page: ');
        expect(page.text, `${path}?${query}`).toContain(`<a href="${path}">Go to page 1</a>`);
      }
    }
    // Another user's receipt is not there for bob: the page is refused as it is, with no link to it.
    const bobs = await bob.get(`/me/receipts/${id}?page=abc`).set('Accept', BROWSER_ACCEPT);
    expect(bobs.status).toBe(400);
    expect(bobs.text).toContain('<a href="/me/receipts">Open My receipts</a>');
    expect(bobs.text).not.toContain(`/me/receipts/${id}"`);
  });
});
