import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A mistyped date in the audit log's filter came back with the reason and, under it, the entries
 * table saying "No entries match." although nothing had been searched: an admin checking whether
 * something was ever logged read that it never was. Usage and Billing show no table for a refused
 * filter; the audit log now does the same.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  admin = await signInAs(buildTestApp(db), 'auditor', 'auditor-password');
});
afterAll(() => db?.drop());

describe('the audit log with a refused filter', () => {
  it.each([
    [
      'a date that is not one',
      '/admin/audit?actor=auditor&from=2026-02-30',
      'Logged from: is not a real calendar date',
    ],
    [
      'a start after the end',
      '/admin/audit?actor=auditor&from=2026-03-05&to=2026-03-01',
      'Logged from (2026-03-05) is after Logged to (2026-03-01).',
    ],
  ])('shows the reason and no entries table, not "No entries match." (%s)', async (_case, url, reason) => {
    // auditor's sign-in is in the log: the filter would have found it.
    expect(await db.prisma.auditLog.count({ where: { actor: 'auditor' } })).toBeGreaterThan(0);
    const page = await admin.get(url).set('Accept', 'text/html').expect(400);
    // Its HEAD (a link checker) is refused as the GET is.
    await admin.head(url).set('Accept', 'text/html').expect(400);
    const text = visibleTextOf(page.text);
    expect(text).toContain(reason);
    expect(text).not.toContain('No entries match');
    expect(page.text).not.toContain('<table');
    // The filter form keeps what was typed, to be corrected.
    expect(page.text).toContain('name="actor" value="auditor"');
  });

  it("refuses start and end, the other pages' names for a window, by name rather than show or export the whole log", async () => {
    // Ignored as unknown fields, audit.csv?start=2026-03-01&end=2026-03-31 exported every entry ever written.
    const reason =
      'is not read here: the audit log reads its window as from and to; start and end are read by the other pages';
    const json = await admin.get('/admin/audit.csv?start=2026-03-01&end=2026-03-31').set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.headers['content-disposition']).toBeUndefined();
    expect(json.body).toEqual({ error: `start: ${reason}; end: ${reason}`, code: 400 });
    const page = await admin.get('/admin/audit?actor=auditor&start=2026-03-01').set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(page.text)).toContain(`start: ${reason}`);
    expect(page.text).not.toContain('<table');
    await admin.get('/admin/audit.csv?from=2026-03-01&to=2026-03-31').expect(200);
  });

  it('ignores the page\'s "older entries" cursor in the CSV, whatever it says, and the page still refuses a bad one', async () => {
    // The CSV exports the entries the filters match, not a page of them: before=5 was ignored, but
    // before=abc (an address edited by hand, a page's link pasted) refused the whole export with 400.
    const whole = await admin.get('/admin/audit.csv?actor=auditor').expect(200);
    for (const before of ['abc', '5', '']) {
      const csv = await admin.get(`/admin/audit.csv?actor=auditor&before=${before}`).set('Accept', 'application/json');
      expect(csv.status).toBe(200);
      expect(csv.text).toBe(whole.text);
      await admin.head(`/admin/audit.csv?actor=auditor&before=${before}`).expect(200);
    }
    const json = await admin.get('/admin/audit?before=abc').set('Accept', 'application/json').expect(400);
    expect(json.body).toEqual({ error: 'before: must be an entry id', code: 400 });
  });

  it('reads the "older entries" cursor by the rule of its siblings: empty is left out, a padded or zero-led id refused', async () => {
    const newest = await admin.get('/admin/audit').set('Accept', 'application/json').expect(200);
    // Empty or blank, as a script's unset variable sends it: left out, as every other optional field
    // of the page (a date, the actor) and the payments page's cursors read it. It was "must be an entry id".
    for (const before of ['', '%20', '%20%20']) {
      const page = await admin.get(`/admin/audit?before=${before}`).set('Accept', 'application/json');
      expect(page.status, `before=${before}: ${page.text}`).toBe(200);
      expect(page.body.entries).toEqual(newest.body.entries);
      expect(page.body.newestPageUrl).toBeNull();
    }
    const first = newest.body.entries[0].id as string;
    await admin
      .get(`/admin/audit?before=${Number(first) + 1}`)
      .set('Accept', 'application/json')
      .expect(200);
    // A whole number as the payments page's cursors and every id take one: digits alone, no leading
    // zeros (before=007 was the page of before=7 under a second address), no padding.
    for (const [before, reason] of [
      [`00${first}`, 'before: must be written without leading zeros'],
      [`%20${first}`, 'before: must be an entry id'],
      [`${first}%20`, 'before: must be an entry id'],
      [`+${first}`, 'before: must be an entry id'],
      // No entry is #0: it listed nothing, said "No entries older than #0 match." and, 0 being
      // falsy, offered no way back to the newest entries. The payments page's cursors refuse it so.
      ['0', 'before: must be at least 1'],
    ]) {
      const refused = await admin.get(`/admin/audit?before=${before}`).set('Accept', 'application/json');
      expect(refused.status, `before=${before}`).toBe(400);
      expect(refused.body).toEqual({ error: reason, code: 400 });
    }
    const page = await admin.get(`/admin/audit?before=00${first}`).set('Accept', 'text/html').expect(400);
    expect(visibleTextOf(page.text)).toContain('Older than entry: must be written without leading zeros');
  });

  it('still says "No entries match." when a valid filter finds nothing', async () => {
    const page = await admin.get('/admin/audit?action=receipt.void').set('Accept', 'text/html').expect(200);
    expect(visibleTextOf(page.text)).toContain('No entries match.');
  });
});
