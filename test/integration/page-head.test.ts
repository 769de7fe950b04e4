import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VIEWS_DIR } from '../../src/app.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * HEAD of /me, a receipt's page (and its printable page), the month-end runs and a run's page,
 * /admin/payments, /admin, /admin/users, /admin/rates, /admin/ingestion, /admin/audit, /admin/tiers,
 * /account and /rates (a link checker, `curl -I`) did all of its GET's work: the jobs summed, the items,
 * payments and refunds, the users, rates, audit entries or ingestion runs read, the page rendered and sent to nothing. HEAD now answers its GET's status
 * and headers, refusing what the GET refuses (400, 401, 403, 404 for another user's receipt or a page
 * past the last), from an existence check at most. Shown on the database itself, as the CSV exports'
 * HEAD is (csv-head): with a table the page reads renamed away (or the views, for a page that reads none),
 * its GET fails while its HEAD still answers.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let alice: Agent;
let aliceReceipt: number;
let bobReceipt: number;
let runId: number;
const now = () => new Date('2026-02-15T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  // The rates are read from the database on every page, not from a cache kept fresh by the fixed clock.
  app = buildTestApp(db, { now, env: { PRICING_CACHE_CHECK_MS: '0' } });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  admin = await signInAs(app, 'boss', 'boss-password');
  const a = await researcherWithReceiptOf(app, db, 'alice', 2);
  alice = a.agent;
  aliceReceipt = a.receiptId;
  // One more job of alice's in the window of /me below, not billed.
  await buildJobs(db, [{ user: 'alice', jobId: '7001', end: '2026-01-20T10:00:00Z' }]);
  bobReceipt = (await researcherWithReceiptOf(app, db, 'bob', 3)).receiptId;
  const run = await db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2026-01-31T00:00:00Z'),
      startedBy: 'boss',
      startedAt: now(),
      finishedAt: now(),
      outcome: 'succeeded',
      usersTotal: 0,
      usersDone: 0,
    },
  });
  runId = run.id;
});
afterAll(() => db?.drop());

async function withTableAway<T>(table: string, body: () => Promise<T>): Promise<T> {
  await db.pool.query(`ALTER TABLE ${table} RENAME TO ${table}_away`);
  try {
    return await body();
  } finally {
    await db.pool.query(`ALTER TABLE ${table}_away RENAME TO ${table}`);
  }
}

const ACCEPTS = ['text/html', 'application/json'];
/** And `curl -I`'s, which asks for anything: the pages answer it with HTML, their refusals too. */
const ACCEPTS_WITH_ANY = [...ACCEPTS, '*/*'];

/** HEAD answers `path` with the status, Content-Type and Cache-Control of its GET, and no body; the GET's status. */
async function expectHeadAsGet(agent: Agent | request.Agent, path: string, accept: string): Promise<number> {
  const got = await agent.get(path).set('Accept', accept);
  const head = await agent.head(path).set('Accept', accept);
  const label = `HEAD ${path} (${accept}) as GET: ${got.status} ${got.text?.slice(0, 200)}`;
  expect(head.status, label).toBe(got.status);
  expect(head.headers['content-type'], label).toBe(got.headers['content-type']);
  expect(head.headers['cache-control'], label).toBe(got.headers['cache-control']);
  expect(head.headers.location, label).toBe(got.headers.location);
  // A HEAD that did none of its GET's work sends no Content-Length; one it sends is its GET's (RFC 9110
  // 8.6): a refusal's was the length of the error page while its GET showed the page with the reason.
  if (head.headers['content-length'] !== undefined) {
    expect(head.headers['content-length'], label).toBe(got.headers['content-length']);
  }
  expect(head.text ?? '').toBe('');
  return got.status;
}

/** Each page's HEAD, without the work of its GET: the table that work reads is renamed away. */
const PAGES: [string, () => Agent, () => string, string][] = [
  ['/me', () => alice, () => '/me', 'slurm_jobs'],
  ['/me, a window with jobs', () => alice, () => '/me?start=2026-01-01&end=2026-01-31', 'slurm_jobs'],
  ["a researcher's receipt", () => alice, () => `/me/receipts/${aliceReceipt}`, 'payments'],
  ["a researcher's printable receipt", () => alice, () => `/me/receipts/${aliceReceipt}/print`, 'payments'],
  ["the admin's receipt", () => admin, () => `/admin/receipts/${bobReceipt}`, 'payments'],
  ["the admin's printable receipt", () => admin, () => `/admin/receipts/${bobReceipt}/print`, 'payments'],
  ['My receipts', () => alice, () => '/me/receipts', 'receipts'],
  ["a receipt's Pay page", () => alice, () => `/payments/receipt/${aliceReceipt}/start`, 'payments'],
  ["the admin's receipts", () => admin, () => '/admin/receipts', 'receipts'],
  ['the month-end runs', () => admin, () => '/admin/month-end', 'month_end_runs'],
  ["a month-end run's page", () => admin, () => `/admin/month-end/${runId}`, 'receipts'],
  ['/admin/payments', () => admin, () => '/admin/payments', 'payments'],
  ['/admin/users', () => admin, () => '/admin/users', 'auth_throttle'],
  ['/admin/users, searched', () => admin, () => '/admin/users?q=ali', 'auth_throttle'],
  ['/admin/rates', () => admin, () => '/admin/rates', 'pricing_versions'],
  ['/admin/ingestion', () => admin, () => '/admin/ingestion', 'ingestion_runs'],
  ['/admin/audit', () => admin, () => '/admin/audit', 'audit_log'],
  ['/admin/audit, filtered', () => admin, () => '/admin/audit?actor=boss&from=2026-01-01&to=2026-02-15', 'audit_log'],
  // Its list is of the users and the jobs' owners; the tiers are the rates' snapshot, which a JSON client's HEAD checks.
  ['/admin/tiers', () => admin, () => '/admin/tiers', 'slurm_jobs'],
  ['/admin/tiers, searched', () => admin, () => '/admin/tiers?q=ali', 'slurm_jobs'],
  ['/rates', () => alice, () => '/rates', 'pricing_versions'],
];

/** HTML only: /rates answers a JSON client 406 (/formula is its JSON), as the printable and Pay pages do. */
const isHtmlOnly = (path: string) => /\/(print|start)$/.test(path) || path === '/rates';

describe('HEAD of a page', () => {
  it.each(PAGES)('%s: the status and headers of its GET, without its work', async (_, agentOf, pathOf, table) => {
    const path = pathOf();
    for (const accept of ACCEPTS) {
      // The printable and Pay pages are HTML only (406 to a JSON client, from the receipt's row alone, as before).
      if (isHtmlOnly(path) && accept === 'application/json') continue;
      expect(await expectHeadAsGet(agentOf(), path, accept)).toBe(200);
      await withTableAway(table, async () => {
        const head = await agentOf().head(path).set('Accept', accept);
        expect(head.status, `HEAD ${path} (${accept}) with ${table} away`).toBe(200);
        // The control: its GET does read the table.
        const failed = await agentOf().get(path).set('Accept', accept);
        expect(failed.status, `GET ${path} (${accept}) with ${table} away`).not.toBe(200);
      });
    }
  });

  it.each([
    ['/admin', () => admin, '/admin'],
    ['/account', () => alice, '/account'],
  ])('%s: the status and headers of its GET, without rendering the page', async (_, agentOf, path) => {
    for (const accept of ACCEPTS) expect(await expectHeadAsGet(agentOf(), path, accept)).toBe(200);
    // These pages read no table: their work is the page, shown by taking the views away.
    app.set('views', '/nonexistent-views');
    try {
      const head = await agentOf().head(path).set('Accept', 'text/html');
      expect(head.status, `HEAD ${path} with the views away`).toBe(200);
      expect(head.headers['content-type']).toBe('text/html; charset=utf-8');
      // The control: its GET does render the page.
      const failed = await agentOf().get(path).set('Accept', 'text/html');
      expect(failed.status, `GET ${path} with the views away`).not.toBe(200);
    } finally {
      app.set('views', VIEWS_DIR);
    }
  });

  it('/rates: a JSON client is refused as its GET is (406), signed in or out', async () => {
    expect(await expectHeadAsGet(alice, '/rates', 'application/json')).toBe(406);
    expect(await expectHeadAsGet(request.agent(app), '/rates', 'application/json')).toBe(406);
    expect(await expectHeadAsGet(request.agent(app), '/rates', 'text/html')).toBe(200);
    // It reads no query: one is ignored by its HEAD as by its GET.
    expect(await expectHeadAsGet(alice, '/rates?type=nope&page=x', 'text/html')).toBe(200);
    expect(await expectHeadAsGet(alice, '/rates?type=nope&page=x', 'application/json')).toBe(406);
  });

  it.each([
    ['a window too long for the page', () => '/me?start=2024-01-01&end=2026-01-31', 400],
    ['a date that is not one', () => '/me?start=2026-02-30', 400],
    ['a view that is not one', () => '/me?view=weekly', 400],
    ['a page past the last job', () => '/me?start=2026-01-01&end=2026-01-31&page=2', 404],
    ['a page past the last job of the default window', () => '/me?page=9', 404],
    ['a page past the last billed job', () => '/me?start=2026-01-01&end=2026-01-31&view=billed&page=2', 404],
    ['a later page of days', () => '/me?start=2025-11-01&end=2026-01-31&view=aggregate&page=2', 200],
    ['a page past the last day', () => '/me?start=2025-11-01&end=2026-01-31&view=aggregate&page=3', 404],
    // The window's days after today (2026-02-15) without a job are not listed: 46 days, one page.
    ['a page of days to come', () => '/me?start=2026-01-01&end=2026-04-30&view=aggregate&page=2', 404],
    ['a page past the last', () => `/me/receipts/${aliceReceipt}?page=2`, 404],
    ["another researcher's receipt", () => `/me/receipts/${bobReceipt}`, 404],
    ["another researcher's printable receipt", () => `/me/receipts/${bobReceipt}/print`, 404],
    ['a receipt that is not there', () => '/me/receipts/999999', 404],
    ['a printable receipt that is not there', () => '/me/receipts/999999/print', 404],
    ['a receipt number that is not one', () => '/me/receipts/abc', 400],
    ['a page past the last receipt', () => '/me/receipts?page=2', 404],
    ["another researcher's Pay page", () => `/payments/receipt/${bobReceipt}/start`, 404],
    ['the Pay page of a receipt that is not there', () => '/payments/receipt/999999/start', 404],
    ['a page number that is not one', () => `/me/receipts/${aliceReceipt}?page=x`, 400],
    // Pages that read no query answer it as their GET does, ignored.
    ['/account with a query', () => '/account?page=0', 200],
  ])("a researcher's HEAD is refused as its GET is: %s", async (_, pathOf, status) => {
    for (const accept of ACCEPTS_WITH_ANY) {
      expect(await expectHeadAsGet(alice, pathOf(), accept)).toBe(status);
    }
  });

  it.each([
    ['a receipt that is not there', () => '/admin/receipts/999999', 404],
    ['a printable receipt that is not there', () => '/admin/receipts/999999/print', 404],
    ['a page past the last', () => `/admin/receipts/${bobReceipt}?page=2`, 404],
    ['a page past the last receipt', () => '/admin/receipts?page=2', 404],
    ['a page past the last of a receipt', () => `/admin/receipts/${bobReceipt}/print?page=2`, 404],
    ['a month-end run to filter by that is not there', () => '/admin/receipts?run=999999', 404],
    ['a window the wrong way round', () => '/admin/receipts?start=2026-02-10&end=2026-02-01', 400],
    ['a status that is not one', () => '/admin/receipts?status=lost', 400],
    ['a month-end run that is not there', () => '/admin/month-end/999999', 404],
    ['a month-end run number that is not one', () => '/admin/month-end/abc', 400],
    ['a page past the last run', () => '/admin/month-end?page=2', 404],
    ['a page number that is not one', () => '/admin/month-end?page=0', 400],
    ['a payment to page from that is not there', () => '/admin/payments?older=999999', 404],
    ['both cursors', () => '/admin/payments?older=1&newer=1', 400],
    ['a cursor that is not a number', () => '/admin/payments?older=abc', 400],
    ['a page past the last user', () => '/admin/users?page=2', 404],
    ['a page past the last user found', () => '/admin/users?q=ali&page=2', 404],
    ['a search that finds no one', () => '/admin/users?q=nobody-here', 200],
    ['a page number that is not one', () => '/admin/users?page=0', 400],
    ['a page that is not a number', () => '/admin/users?page=x', 400],
    ['a search longer than a username', () => `/admin/users?q=${'a'.repeat(200)}`, 400],
    ['/admin with a query', () => '/admin?page=x', 200],
    ['/admin/rates with a query', () => '/admin/rates?page=x', 200],
    ['/admin/ingestion with a query', () => '/admin/ingestion?page=x&limit=-1', 200],
    ['an audit window the wrong way round', () => '/admin/audit?from=2026-02-10&to=2026-02-01', 400],
    ['an audit date that is not one', () => '/admin/audit?from=2026-02-30', 400],
    ['an audit cursor that is not an entry id', () => '/admin/audit?before=abc', 400],
    ["the other pages' window names on the audit log", () => '/admin/audit?start=2026-01-01', 400],
    ['older audit entries than the first', () => '/admin/audit?before=1', 200],
    ['a page past the last user of the tiers', () => '/admin/tiers?page=2', 404],
    ['a page past the last user found of the tiers', () => '/admin/tiers?q=ali&page=2', 404],
    ['a tiers search that finds no one', () => '/admin/tiers?q=nobody-here', 200],
    ['a tiers page number that is not one', () => '/admin/tiers?page=0', 400],
  ])("an admin's HEAD is refused as its GET is: %s", async (_, pathOf, status) => {
    for (const accept of ACCEPTS_WITH_ANY) {
      expect(await expectHeadAsGet(admin, pathOf(), accept)).toBe(status);
    }
  });

  it.each([
    ['/admin/payments', () => '/admin/payments'],
    ['/admin/receipts/:id', () => `/admin/receipts/${aliceReceipt}`],
    ['/admin/month-end/:id', () => `/admin/month-end/${runId}`],
    ['/admin', () => '/admin'],
    ['/admin/users', () => '/admin/users'],
    ['/admin/rates', () => '/admin/rates'],
    ['/admin/ingestion', () => '/admin/ingestion'],
    ['/admin/audit', () => '/admin/audit'],
    ['/admin/tiers', () => '/admin/tiers'],
  ])("a researcher's HEAD of an admin page, %s, is answered as its GET is, leaving no flash", async (_, pathOf) => {
    // A browser is sent to My usage (302), a JSON client refused (403): a HEAD was 403 to both.
    expect(await expectHeadAsGet(alice, pathOf(), 'text/html')).toBe(302);
    expect(await expectHeadAsGet(alice, pathOf(), 'application/json')).toBe(403);
    // The GET's flash is read by the page it goes to; a HEAD's would wait for a page it is not about.
    const sentOn = await alice.get('/me').set('Accept', 'text/html').expect(200);
    expect(sentOn.text).toContain('is for administrators only');
    await alice.head(pathOf()).set('Accept', 'text/html').expect(302);
    const me = await alice.get('/me').set('Accept', 'text/html').expect(200);
    expect(me.text).not.toContain('is for administrators only');
  });

  it.each([
    ['a page past the last', '/me?page=9'],
    ['a receipt that is not there', '/me/receipts/999999'],
  ])("a researcher's HEAD of a refused page, %s, leaves the flash for the next page opened", async (_, path) => {
    // A researcher sent on from an admin page has the flash waiting for My usage.
    await alice.get('/admin').set('Accept', 'text/html').expect(302);
    // A HEAD is refused with the page its GET shows, which no one sees: it took the flash with it.
    await alice.head(path).set('Accept', 'text/html').expect(404);
    const me = await alice.get('/me').set('Accept', 'text/html').expect(200);
    expect(me.text).toContain('is for administrators only');
  });

  it.each([
    '/me',
    '/me?start=2026-02-30',
    `/me/receipts/${1}`,
    `/me/receipts/${1}/print`,
    `/admin/receipts/${1}`,
    '/admin/month-end',
    '/admin/month-end/1',
    '/admin/payments',
    '/admin',
    '/admin/users',
    '/admin/users?page=0',
    '/admin/rates',
    '/admin/ingestion',
    '/admin/audit',
    '/admin/tiers',
    '/account',
  ])('signed out, HEAD %s is answered as its GET is', async (path) => {
    const signedOut = request.agent(app);
    // A browser is sent to sign in (302 to /login?next=…), a JSON client refused (401): a HEAD was 401 to both.
    expect(await expectHeadAsGet(signedOut, path, 'text/html')).toBe(302);
    expect(await expectHeadAsGet(signedOut, path, 'application/json')).toBe(401);
  });
});
