import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An entry whose time was changed by SQL to one JavaScript cannot hold ('infinity', a year past
 * 275760): the verification names it as changed, but the audit log itself, its JSON and its CSV
 * answered 500 ("Invalid time value") as long as the entry was on the page or in the export, so the
 * admin could read none of the log exactly when it had been tampered with.
 */

let db: TestDatabase;
let admin: Agent;
let victimId: bigint;

/** As a superuser with the table's triggers off for the session, as whoever changed the row. */
async function asSuperuser(sql: string, values: unknown[] = []) {
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query(sql, values);
  } finally {
    await client.query("SET session_replication_role = 'origin'");
    client.release();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } });
  admin = await signInAs(app, 'auditor', 'auditor-password');
  for (const target of ['receipt:1', 'receipt:2', 'receipt:3']) {
    await recordAudit(db, { actor: 'ops', action: 'test.timed', status: 'ok', target });
  }
  const victim = await db.prisma.auditLog.findFirstOrThrow({ where: { target: 'receipt:2' } });
  victimId = victim.id;
});
afterAll(() => db?.drop());

describe.each([
  ['infinity', 'infinity'],
  ['a year past JavaScript dates', '290000-01-01 00:00:00+00'],
])('an entry whose time was changed to %s', (_name, ts) => {
  beforeAll(async () => {
    await asSuperuser('UPDATE audit_log SET ts = $2 WHERE id = $1', [victimId, ts]);
  });

  it('is a break the verification names', async () => {
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: false, brokenAt: victimId });
  });

  it('leaves the audit log readable, that entry saying its time is not one', async () => {
    const page = await admin.get('/admin/audit?action=test.timed').expect(200);
    expect(page.text).toContain('receipt:1');
    expect(page.text).toContain('receipt:3');
    expect(page.text).toContain('not a valid time');
  });

  it("leaves the log's JSON readable, that entry's ts null", async () => {
    const answer = await admin.get('/admin/audit?action=test.timed').set('Accept', 'application/json').expect(200);
    const entries = answer.body.entries as { id: string; ts: string | null }[];
    expect(entries.map((entry) => entry.id)).toHaveLength(3);
    expect(entries.find((entry) => entry.id === String(victimId))?.ts).toBeNull();
    expect(entries.filter((entry) => entry.ts !== null)).toHaveLength(2);
  });

  it('exports every entry in the CSV, that entry with its time said not to be one', async () => {
    const csv = await admin.get('/admin/audit.csv?action=test.timed').expect(200);
    const lines = csv.text.trim().split(/\r?\n/);
    expect(lines).toHaveLength(4);
    expect(lines.find((line) => line.startsWith(`${victimId},`))).toMatch(/^\d+,not a valid time,ops,/);
  });
});
