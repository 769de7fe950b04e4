import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A Logged from alone after today listed no entry, "No entries match." (and an empty CSV), which read
 * as "nothing was logged" when nothing can have been yet. The other pages with a window refuse a
 * From alone after today with a 400 naming it and today (StartAfterTodayError): /admin/receipts'
 * Created from, /admin/paid.csv's Paid from, /admin/usage's Ended from. The audit log now does too.
 */
let db: TestDatabase;
let admin: Agent;
// 2025-09-20 23:30 in Bangkok, 16:30 UTC: the log's today is the zone's, not UTC's.
const NOW = new Date('2025-09-20T16:30:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  admin = await signInAs(
    buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => NOW }),
    'auditor',
    'auditor-password',
  );
});
afterAll(() => db?.drop());

describe('the audit log with a Logged from after today', () => {
  const message =
    'Logged from (2025-09-21) is after today (2025-09-20), so nothing has happened since then yet. Pick a Logged from on or before today.';

  it('refuses it on the page, marking the field, and shows no entries table', async () => {
    const before = await db.prisma.auditLog.count();
    const page = await admin.get('/admin/audit?actor=auditor&from=2025-09-21').set('Accept', 'text/html').expect(400);
    const text = visibleTextOf(page.text);
    expect(text).toContain(message);
    expect(text).not.toContain('No entries match');
    expect(page.text).not.toContain('<table');
    // The form keeps what was typed, the field marked to be corrected.
    expect(page.text).toMatch(
      /name="from"[^>]*value="2025-09-21"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*name="from"/,
    );
    await admin.head('/admin/audit?from=2025-09-21').set('Accept', 'text/html').expect(400);
    // Refusing it logs nothing.
    expect(await db.prisma.auditLog.count()).toBe(before);
  });

  it('refuses it in the JSON and the CSV, as paid.csv refuses a Paid from after today', async () => {
    const json = await admin.get('/admin/audit?from=2025-09-21').set('Accept', 'application/json').expect(400);
    expect(json.body).toEqual({ error: message, code: 400 });
    const csv = await admin.get('/admin/audit.csv?from=2025-09-21').set('Accept', 'application/json');
    expect(csv.status).toBe(400);
    expect(csv.headers['content-disposition']).toBeUndefined();
    expect(csv.body).toEqual({ error: message, code: 400 });
    await admin.head('/admin/audit.csv?from=2025-09-21').expect(400);
  });

  it('still lists today alone, and a window with both ends', async () => {
    await admin.get('/admin/audit?from=2025-09-20').set('Accept', 'application/json').expect(200);
    await admin.get('/admin/audit.csv?from=2025-09-20').expect(200);
    await admin.get('/admin/audit?from=2025-09-21&to=2025-09-30').set('Accept', 'application/json').expect(200);
  });
});
