import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt's items CSV refused (an export option edited by hand, `bom=x`) left the browser on an
 * error page whose way back was the whole list (Billing, My receipts), not the receipt the CSV link
 * was on. A receipt that is not there (or another user's) still leads to the list: its own page
 * would only be a 404 again.
 */
let db: TestDatabase;
let alice: Agent;
let bob: Agent;
let boss: Agent;
let receiptId: number;
let bobsReceiptId: number;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' },
    { user: 'bob', jobId: '201', end: '2025-09-18T03:00:00Z' },
  ]);
  const app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  boss = await signInAs(app, 'boss', 'boss-password');
  receiptId = await billJobs(alice, '2025-09-19');
  bobsReceiptId = await billJobs(bob, '2025-09-19');
});
afterAll(() => db?.drop());

// What Chromium sends when a link is followed.
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

const open = (agent: Agent, path: string) => agent.get(path).set('Accept', BROWSER_ACCEPT);

describe("a receipt's items CSV refused in a browser", () => {
  it.each([
    ['alice', 'me', '/me/receipts'],
    ['boss', 'admin', '/admin/receipts'],
  ])('%s refused an export option is led back to the receipt', async (who, _, list) => {
    const page = await open(who === 'boss' ? boss : alice, `${list}/${receiptId}/items.csv?bom=x`);
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('must be 1 (a byte-order mark for Excel), or left out');
    expect(page.text).toContain(`<a href="${list}/${receiptId}">Back to receipt #${receiptId}</a>`);
    expect(page.text).not.toContain(`<a href="${list}">`);
  });

  it.each([
    ['alice', `/me/receipts/999999/items.csv?bom=x`, '/me/receipts', 'Open My receipts'],
    ['boss', `/admin/receipts/999999/items.csv?bom=x`, '/admin/receipts', 'Open Billing'],
    ['alice', `/me/receipts/999999/items.csv`, '/me/receipts', 'Open My receipts'],
    ['boss', `/admin/receipts/999999/items.csv`, '/admin/receipts', 'Open Billing'],
  ])('%s asking %s of a receipt that is not there gets a 404 and the list', async (who, path, href, text) => {
    const page = await open(who === 'boss' ? boss : alice, path);
    expect(page.status).toBe(404);
    expect(page.text).toContain('Receipt #999999 was not found.');
    expect(page.text).toContain(`<a href="${href}">${text}</a>`);
  });

  it("says nothing of another user's receipt, whatever the option", async () => {
    for (const query of ['', '?bom=1', '?bom=x']) {
      const page = await open(alice, `/me/receipts/${bobsReceiptId}/items.csv${query}`);
      expect(page.status, query).toBe(404);
      expect(page.text, query).toContain(`Receipt #${bobsReceiptId} was not found.`);
      expect(page.text, query).toContain('<a href="/me/receipts">Open My receipts</a>');
    }
  });

  it('answers a script with {error, code} alone, and still sends the CSV when nothing is refused', async () => {
    const refused = await alice.get(`/me/receipts/${receiptId}/items.csv?bom=x`).set('Accept', 'application/json');
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({ error: 'bom: must be 1 (a byte-order mark for Excel), or left out', code: 400 });
    const csv = await alice.get(`/me/receipts/${receiptId}/items.csv`).expect(200);
    expect(csv.text.split('\n')[1]).toMatch(new RegExp(`^${receiptId},101,`));
  });
});

describe("a window asked of a receipt's items CSV", () => {
  // The export is the whole receipt, whatever window a script sends: items.csv?start=2026-01-01
  // answered 200 with every item, and the script believed it had filtered. Refused by name, as the
  // usage exports refuse the audit log's from and to.
  const NOT_READ_HERE =
    'is not read here: this export is the whole receipt; start and end are read by the usage pages, from and to by the audit log';
  it.each([
    ['alice', '/me/receipts'],
    ['boss', '/admin/receipts'],
  ])('%s is refused start, end, from and to by name', async (who, list) => {
    const agent = who === 'boss' ? boss : alice;
    for (const field of ['start', 'end', 'from', 'to']) {
      const refused = await agent
        .get(`${list}/${receiptId}/items.csv?${field}=2026-01-01`)
        .set('Accept', 'application/json');
      expect(refused.status, field).toBe(400);
      expect(refused.headers['content-disposition'], field).toBeUndefined();
      expect(refused.body, field).toEqual({ error: `${field}: ${NOT_READ_HERE}`, code: 400 });
    }
    const both = await agent
      .get(`${list}/${receiptId}/items.csv?start=2026-01-01&end=2026-01-31`)
      .set('Accept', 'application/json');
    expect(both.body).toEqual({ error: `start: ${NOT_READ_HERE}; end: ${NOT_READ_HERE}`, code: 400 });

    const page = await open(agent, `${list}/${receiptId}/items.csv?start=2026-01-01`);
    expect(page.status).toBe(400);
    expect(page.text).toContain(`<p class="lead">start: ${NOT_READ_HERE}</p>`);
    expect(page.text).toContain(`<a href="${list}/${receiptId}">Back to receipt #${receiptId}</a>`);

    const csv = await agent.get(`${list}/${receiptId}/items.csv?bom=1`).expect(200);
    expect(csv.text).toContain(`${receiptId},101,`);
  });

  it("still says nothing of another user's receipt", async () => {
    const page = await alice
      .get(`/me/receipts/${bobsReceiptId}/items.csv?start=2026-01-01`)
      .set('Accept', 'application/json');
    expect(page.status).toBe(404);
  });
});
