import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLogPage, recordAudit } from '../../src/modules/audit/audit.service.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/audit's HTML and JSON, whole, for the cases its route tells apart: the newest page with
 * an "older entries" link, an older page, a renamed tier's earlier targets, amounts, an IPv6
 * address and a bidirectional control, no match with the filters' hints, and refused filters.
 * Pinned when the route's work moved into one service call (auditLogPage): the answers stay
 * byte for byte what they were. Only what changes from run to run is masked: the session's CSRF
 * token and the times of the sign-ins, which are now.
 */

let db: TestDatabase;
let admin: Agent;
const context = { actor: 'scripted', ip: '192.0.2.7', userAgent: 'vitest' };
// Fixed times in 2024: every entry this file writes is then the same on every run.
const at = (minute: number) => new Date(Date.UTC(2024, 2, 5, 10, minute, 0));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  admin = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } }), 'auditor', 'auditor-password');
  // One after another, so the ids are in this order.
  await recordAudit(db, { ...context, action: 'pricing.tier.create', status: 'ok', target: 'tier:lab' }, at(0));
  await recordAudit(
    db,
    {
      ...context,
      action: 'pricing.tier.update',
      status: 'ok',
      target: 'tier:lab',
      details: { previous: { name: 'lab' }, next: { name: 'lab2' } },
    },
    at(1),
  );
  await recordAudit(db, { ...context, action: 'pricing.rates.set', status: 'ok', target: 'tier:lab2' }, at(2));
  for (let index = 1; index <= 52; index += 1) {
    await recordAudit(db, { ...context, action: 'test.paged', status: 'ok', target: `item:${index}` }, at(3));
  }
  await recordAudit(
    db,
    {
      actor: 'provider:stripe',
      ip: '2001:db8:85a3:0000:0000:8a2e:0370:7334',
      userAgent: 'vitest',
      action: 'test.money',
      status: 'failed',
      target: 'receipt:7',
      details: {
        amountMinor: '1050',
        receivedMinor: '930000',
        receivedCurrency: 'JPY',
        currency: 'THB',
        paidOn: '2024-03-05',
      },
    },
    at(4),
  );
  await recordAudit(
    db,
    { actor: 'mallory\u202Etxt.exe', ip: null, userAgent: null, action: 'auth.sign_in', status: 'denied' },
    at(5),
  );
});
afterAll(() => db?.drop());

/** The answer with what differs from run to run masked: CSRF tokens and the times of today's sign-ins. */
function pinned(text: string): string {
  return text
    .replace(/(name="csrf_token" value=")[^"]*"/g, '$1<csrf>"')
    .replace(/(content=")[^"]*(" name="csrf-token")/g, '$1<csrf>$2')
    .replace(/(name="csrf-token" content=")[^"]*"/g, '$1<csrf>"')
    .replace(/\b(?!2024)\d{4}-\d\d-\d\d(?:[ T][0-9:.]+Z?)?/g, '<now>');
}

async function htmlOf(path: string, status: number) {
  const answer = await admin.get(path).set('Accept', 'text/html').expect(status);
  expect(answer.headers['content-type']).toMatch(/^text\/html/);
  return pinned(answer.text);
}

async function jsonOf(path: string, status: number) {
  const answer = await admin.get(path).set('Accept', 'application/json').expect(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  return pinned(answer.text);
}

const PAGES = [
  ['newest', '/admin/audit', 200],
  ['older', '/admin/audit?action=test.paged&before=10', 200],
  ['past-the-oldest', '/admin/audit?action=test.paged&before=2', 200],
  ['renamed-tier', '/admin/audit?target=tier:lab2&from=2024-03-01&to=2024-03-31', 200],
  ['no-match', '/admin/audit?actor=adm&target=receipt:99', 200],
  ['reversed-window', '/admin/audit?actor=scripted&from=2024-03-31&to=2024-03-01', 400],
  ['bad-date', '/admin/audit?from=2024-02-30&target=%3Cb%3E', 400],
] as const;

describe('/admin/audit, pinned whole', () => {
  for (const [name, path, status] of PAGES) {
    it(`answers ${path} with the same HTML`, async () => {
      await expect(await htmlOf(path, status)).toMatchFileSnapshot(`./__snapshots__/audit-page.${name}.html`);
    });
    it(`answers ${path} with the same JSON`, async () => {
      await expect(await jsonOf(path, status)).toMatchFileSnapshot(`./__snapshots__/audit-page.${name}.json`);
    });
  }
});

describe('auditLogPage, the one service call behind /admin/audit', () => {
  it("returns a query's rows, a renamed tier's earlier targets and the page's links", async () => {
    const page = await auditLogPage(
      db.prisma,
      { query: { actor: undefined, action: undefined, target: 'tier:lab2', before: undefined } },
      'Asia/Bangkok',
    );
    expect(page.entries.map((entry) => [String(entry.id), entry.action, entry.when])).toEqual([
      ['4', 'pricing.rates.set', '2024-03-05 17:02'],
      ['3', 'pricing.tier.update', '2024-03-05 17:01'],
      ['2', 'pricing.tier.create', '2024-03-05 17:00'],
    ]);
    expect(page.earlierTargets).toEqual([{ target: 'tier:lab', fromId: '2', upToId: '3' }]);
    expect(page.filters).toEqual({ target: 'tier:lab2' });
    expect(page.actions).toEqual(expect.arrayContaining(['pricing.tier.update', 'test.money', 'test.paged']));
    expect([page.nextPageUrl, page.newestPageUrl, page.olderThan]).toEqual([undefined, undefined, undefined]);
    expect(page.csvLink).toBe('/admin/audit.csv?target=tier%3Alab2');
  });

  it('searches nothing for refused filters: the form gets them as typed, with the actions', async () => {
    const typed = { actor: 'x', action: undefined, target: undefined, from: '2024-02-30', to: undefined };
    const page = await auditLogPage(db.prisma, { typed }, 'Asia/Bangkok');
    expect(page).toEqual({
      query: typed,
      filters: {},
      actions: expect.arrayContaining(['test.paged']),
      entries: [],
      earlierTargets: [],
      nextPageUrl: undefined,
      newestPageUrl: undefined,
      olderThan: undefined,
      csvLink: undefined,
    });
  });
});
