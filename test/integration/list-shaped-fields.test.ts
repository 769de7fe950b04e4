import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenIn, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A query or form field written as a list or an object (`?start[]=2026-09-01`, `?page[a]=1`,
 * `?sort[]=end`: PHP's and Rails's way, and qs's) is a key the simple query parser reads as
 * `start[]`, a field no schema names: it was ignored, so /me showed the default window as if asked
 * for it, and a JSON client read data of another window than it sent. It is now refused as the
 * same field given twice is (`?start=a&start=b`): 400 naming the field by its label on a page, by
 * its key to a JSON client, and nothing of it acted on.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let researcher: Agent;
let receiptId: number;
const researchers = createPayingResearchers(() => ({ db, app }), 'lister');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('lists'));
  ({ agent: researcher, receiptId } = await researchers.researcherWithReceipt());
});
afterAll(() => db?.drop());

type Who = 'researcher' | 'admin' | 'anyone';
const agentOf = (who: Who) => (who === 'admin' ? admin : who === 'researcher' ? researcher : request(app));

// [who, address, the field's key (JSON), its label (page)]
const LIST_SHAPED_QUERIES: [Who, string, string, string][] = [
  ['researcher', '/me?start[]=2025-09-01', 'start', 'Ended from'],
  ['researcher', '/me?start=2025-09-01&start=2025-09-02', 'start', 'Ended from'],
  ['researcher', '/me?end[0]=2025-09-10&start=2025-09-01', 'end', 'Ended to'],
  ['researcher', '/me?page[a]=1', 'page', 'Page'],
  ['researcher', '/me?sort[]=end', 'sort', 'Sort'],
  ['researcher', '/me?view=billed&view[]=detail', 'view', 'View'],
  ['researcher', '/me.csv?start[]=2025-09-01', 'start', 'Ended from'],
  ['researcher', '/me/receipts?page[]=1', 'page', 'Page'],
  ['researcher', '/me/receipts/RECEIPT?page[]=1', 'page', 'Page'],
  ['admin', '/admin/usage?user[]=lister1', 'user', 'User'],
  ['admin', '/admin/usage.csv?start[]=2025-09-01', 'start', 'Ended from'],
  ['admin', '/admin/my.csv?end[]=2025-09-01', 'end', 'Ended to'],
  ['admin', '/admin/receipts?status[]=paid', 'status', 'Status'],
  ['admin', '/admin/receipts?page[x]=2', 'page', 'Page'],
  ['admin', '/admin/paid.csv?start[]=2025-09-01', 'start', 'Paid from'],
  ['admin', '/admin/audit?from[]=2025-09-01', 'from', 'Logged from'],
  ['admin', '/admin/audit.csv?actor[]=lists', 'actor', 'Actor'],
  ['admin', '/admin/users?q[]=lister', 'q', 'Search'],
  ['admin', '/admin/tiers?page[]=1', 'page', 'Page'],
  ['admin', '/admin/month-end?page[]=1', 'page', 'Page'],
  ['admin', '/admin/payments?older[]=5', 'older', 'Older than payment'],
  ['admin', '/admin/receipts/RECEIPT?page[]=1', 'page', 'Page'],
  ['researcher', '/payments/thanks?rid[]=RECEIPT', 'rid', 'Receipt number in the address'],
];

describe('a query field given as a list or an object', () => {
  it.each(LIST_SHAPED_QUERIES)('%s: %s is refused to a JSON client, naming %s', async (who, address, key) => {
    const path = address.replace('RECEIPT', String(receiptId));
    const json = await agentOf(who).get(path).set('Accept', 'application/json');
    expect(json.status, json.text.slice(0, 300)).toBe(400);
    expect(json.body).toEqual({ error: `${key}: must be given once`, code: 400 });
  });

  it.each(LIST_SHAPED_QUERIES)(
    '%s: %s is refused on a page, naming %s by its label %s',
    async (who, address, _, label) => {
      const path = address.replace('RECEIPT', String(receiptId));
      const page = await agentOf(who).get(path).set('Accept', 'text/html');
      expect(page.status, page.text.slice(0, 300)).toBe(400);
      expect(visibleTextOf(page.text)).toContain(`${label}: must be given once`);
    },
  );

  it.each(['/me?start[]=2025-09-01', '/me?start=2025-09-01&start=2025-09-02'])(
    '%s offers no CSV of another window than the one refused',
    async (path) => {
      // The page read the window it re-shows from the query: without `start` (the key was `start[]`)
      // it offered the default window's CSV beside "Ended from: must be given once".
      const page = await researcher.get(path).set('Accept', 'text/html').expect(400);
      expect(visibleTextOf(page.text)).toContain('Download CSV (needs a valid window)');
      expect(page.text).not.toContain('href="/me.csv');
    },
  );

  it('is refused by the public formula too', async () => {
    const json = await request(app).get('/formula?type[]=standard').set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: 'type: must be given once', code: 400 });
  });

  it('leaves an unknown field ignored, in whatever shape (a decision for finance lists)', async () => {
    await researcher.get('/me?utm[source]=mail').set('Accept', 'application/json').expect(200);
    await admin.get('/admin/receipts?foo[]=1').set('Accept', 'application/json').expect(200);
  });
});

describe('a form field given as a list', () => {
  it('refuses a receipt whose date is sent as before[], and bills nothing', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    const receipts = await db.prisma.receipt.count();
    const page = await agent.get('/me').set('Accept', 'text/html');
    const refused = await agent
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send(`before[]=2025-09-20&csrf_token=${encodeURIComponent(csrfTokenIn(page.text))}`);
    expect(refused.status).toBe(400);
    expect(visibleTextOf(refused.text)).toContain('Jobs ended up to and including: must be given once');
    expect(await db.prisma.receipt.count()).toBe(receipts);
  });

  it('refuses a mark paid whose day is sent as paid_on[], and leaves the receipt pending', async () => {
    const { receiptId: pending } = await researchers.researcherWithReceipt();
    const audits = await db.prisma.auditLog.count();
    const refused = await admin
      .post(`/admin/receipts/${pending}/paid`)
      .set('Accept', 'application/json')
      .type('form')
      .send(
        `method=cash&amount_received=10.00&paid_on[]=2025-09-01&csrf_token=${encodeURIComponent(await csrfTokenOf(admin))}`,
      );
    expect(refused.body).toEqual({ error: 'paid_on: must be given once', code: 400 });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: pending } })).status).toBe('pending');
    expect(await db.prisma.auditLog.count()).toBe(audits);
  });

  it('refuses a new user whose role is sent as role[], and creates nobody', async () => {
    const users = await db.prisma.user.count();
    const refused = await admin
      .post('/admin/users')
      .set('Accept', 'application/json')
      .type('form')
      .send(`username=listed&role[]=admin&csrf_token=${encodeURIComponent(await csrfTokenOf(admin))}`);
    expect(refused.body).toEqual({ error: 'role: must be given once', code: 400 });
    expect(await db.prisma.user.count()).toBe(users);
  });
});
