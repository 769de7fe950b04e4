import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { expectPageForBrowsersAndNoJsonForResearchers } from '../support/admin-json.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /admin/audit for a script (an auditor's export of a month's actions): the page answered a JSON
 * client with its HTML, while a bad filter already got {error, code}. Now the entries, their
 * amounts in money and the "older entries" cursor come as JSON.
 */

let db: TestDatabase;
let admin: Agent;
let researcher: Agent;
const context = { actor: 'scripted', ip: '192.0.2.7', userAgent: 'vitest' };

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } });
  admin = await signInAs(app, 'auditor', 'auditor-password');
  researcher = await signInAs(app, 'alice', 'alice-password');
  // One after another, so the ids are in this order.
  for (let index = 1; index <= 55; index += 1) {
    await recordAudit(db, { ...context, action: 'test.paged', status: 'ok', target: `item:${index}` });
  }
  await recordAudit(db, {
    ...context,
    action: 'test.money',
    status: 'ok',
    target: 'receipt:7',
    details: { amountMinor: '1050', receivedMinor: '930000', receivedCurrency: 'JPY', currency: 'THB', note: 'x' },
  });
});
afterAll(() => db?.drop());

type EntryJson = { id: string; target: string | null };

function getJson(path: string) {
  return admin.get(path).set('Accept', 'application/json');
}

describe('GET /admin/audit for a JSON client', () => {
  it('answers the entries of the page as JSON, newest first, with their amounts as money', async () => {
    const answer = await getJson('/admin/audit?action=test.money').expect(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const stored = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'test.money' } });
    expect(answer.body).toEqual({
      filters: { action: 'test.money' },
      // No Actor filter: none matched (audit-actor-filter.test.ts has them).
      matchedActors: null,
      alsoContaining: [],
      timeZone: 'Asia/Bangkok',
      actions: expect.arrayContaining(['test.money', 'test.paged']),
      entries: [
        {
          id: String(stored.id),
          ts: stored.ts.toISOString(),
          actor: 'scripted',
          action: 'test.money',
          target: 'receipt:7',
          status: 'ok',
          ip: '192.0.2.7',
          // As recorded: the hash chain covers them.
          details: stored.details,
          amounts: [
            { field: 'amountMinor', minor: '1050', amount: '10.50', currency: 'THB' },
            { field: 'receivedMinor', minor: '930000', amount: '930000', currency: 'JPY' },
          ],
        },
      ],
      earlierTargets: [],
      nextPageUrl: null,
      newestPageUrl: null,
      csvUrl: '/admin/audit.csv?action=test.money',
    });
  });

  it('pages 50 entries at a time with the page’s "older entries" link', async () => {
    const expected = (
      await db.prisma.auditLog.findMany({ where: { action: 'test.paged' }, orderBy: { id: 'desc' } })
    ).map((entry) => String(entry.id));
    const first = (await getJson('/admin/audit?action=test.paged').expect(200)).body;
    expect(first.entries.map((entry: EntryJson) => entry.id)).toEqual(expected.slice(0, 50));
    expect(first.nextPageUrl).toBe(`/admin/audit?action=test.paged&before=${expected[49]}`);
    const second = (await getJson(first.nextPageUrl).expect(200)).body;
    expect(second.entries.map((entry: EntryJson) => entry.id)).toEqual(expected.slice(50));
    expect(second.entries.map((entry: EntryJson) => entry.target)).toEqual([
      'item:5',
      'item:4',
      'item:3',
      'item:2',
      'item:1',
    ]);
    expect(second.nextPageUrl).toBeNull();
  });

  it('leads an older page, its last included, back to the newest entries under the same filters', async () => {
    const first = (await getJson('/admin/audit?action=test.paged').expect(200)).body;
    expect(first.newestPageUrl).toBeNull();
    const last = (await getJson(first.nextPageUrl).expect(200)).body;
    expect(last.nextPageUrl).toBeNull();
    expect(last.newestPageUrl).toBe('/admin/audit?action=test.paged');
    // The page says so too: its only way on was the browser's back button, or Filter again.
    const lastPage = await admin.get(first.nextPageUrl).set('Accept', 'text/html').expect(200);
    expect(lastPage.text).toContain('<a href="/admin/audit?action=test.paged">← Newest entries</a>');
    const firstPage = await admin.get('/admin/audit?action=test.paged').set('Accept', 'text/html').expect(200);
    expect(firstPage.text).not.toContain('Newest entries');
    // Past the oldest (an edited or stale address): not "No entries match", which reads as "never logged".
    const oldest = last.entries.at(-1).id;
    const past = await admin
      .get(`/admin/audit?action=test.paged&before=${oldest}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(past.text).toContain(`No entries older than #${oldest} match.`);
    expect(past.text).toContain('<a href="/admin/audit?action=test.paged">← Newest entries</a>');
    // Nor a hint that the actor filter found nobody: it found every entry it could.
    const pastOfActor = await admin
      .get(`/admin/audit?actor=scripted&before=${oldest}`)
      .set('Accept', 'text/html')
      .expect(200);
    expect(pastOfActor.text).toContain(`No entries older than #${oldest} match.`);
    expect(pastOfActor.text).not.toContain('No entry is by an actor containing');
  });

  it('refuses a bad filter or cursor with {error, code}, changing nothing', async () => {
    const before = await db.prisma.auditLog.count();
    for (const path of [
      '/admin/audit?from=2026-02-30',
      '/admin/audit?from=2026-03-05&to=2026-03-01',
      '/admin/audit?before=abc',
    ]) {
      const refused = await getJson(path).expect(400);
      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.body).toEqual({ error: expect.any(String), code: 400 });
    }
    expect(await db.prisma.auditLog.count()).toBe(before);
  });

  it('still gives a browser the page, and a researcher asking for JSON no entries', async () => {
    await expectPageForBrowsersAndNoJsonForResearchers(admin, researcher, '/admin/audit');
  });
});
