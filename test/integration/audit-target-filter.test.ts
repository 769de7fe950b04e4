import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { changeRole } from '../../src/modules/users/users.service.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { refusedFormStateOf, visibleTextOf } from '../support/html.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * One receipt's history (created, paid, voided, its payments) could not be read from the audit log:
 * the page filtered by actor, action and dates only, so an admin scrolled every entry of the month
 * looking for `receipt:42`. The page and its CSV now filter by target, as the log writes it.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
const context = { actor: 'clerk', ip: '192.0.2.9', userAgent: 'vitest' };

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
  app = buildTestApp(db);
  admin = await signInAs(app, 'auditor', 'auditor-password');
  await recordAudit(db, { ...context, action: 'receipt.create', status: 'ok', target: 'receipt:42' });
  await recordAudit(db, { ...context, action: 'receipt.create', status: 'ok', target: 'receipt:421' });
  await recordAudit(db, { ...context, action: 'receipt.void', status: 'ok', target: 'receipt:42' });
  await recordAudit(db, { ...context, action: 'pricing.rates.set', status: 'ok', target: 'tier:standard' });
});
afterAll(() => db?.drop());

const html = (path: string) => admin.get(path).set('Accept', 'text/html');

describe('the audit log filtered by target', () => {
  it("lists one receipt's entries only, newest first, and keeps the filter in the form", async () => {
    const page = await html('/admin/audit?target=receipt:42').expect(200);
    const targets = [...page.text.matchAll(/<td data-label="Target" class="wrap">([^<]*)<\/td>/g)].map((m) => m[1]);
    expect(targets).toEqual(['receipt:42', 'receipt:42']);
    expect(page.text.indexOf('<td data-label="Action">receipt.void</td>')).toBeLessThan(
      page.text.indexOf('<td data-label="Action">receipt.create</td>'),
    );
    expect(page.text).toContain('name="target" value="receipt:42"');
    // The filtered CSV link carries it.
    expect(page.text).toContain('href="/admin/audit.csv?target=receipt%3A42"');
  });

  it('answers a JSON client with the filter it applied', async () => {
    const answer = await admin.get('/admin/audit?target=receipt:42').set('Accept', 'application/json').expect(200);
    expect(answer.body.filters).toEqual({ target: 'receipt:42' });
    expect(answer.body.entries.map((entry: { target: string }) => entry.target)).toEqual(['receipt:42', 'receipt:42']);
    expect(answer.body.csvUrl).toBe('/admin/audit.csv?target=receipt%3A42');
  });

  it('exports the same entries as CSV, oldest first', async () => {
    const csv = await admin.get('/admin/audit.csv?target=receipt:42').expect(200);
    const rows = csv.text.trimEnd().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(',receipt.create,receipt:42,ok,');
    expect(rows[1]).toContain(',receipt.void,receipt:42,ok,');
  });

  it('refuses a receipt target that names no receipt number, with the form kept as typed', async () => {
    const before = await db.prisma.auditLog.count();
    const page = await html('/admin/audit?actor=clerk&target=receipt:%2342').expect(400);
    expect(visibleTextOf(page.text)).toContain('Target: a receipt is written receipt: and its number (receipt:42)');
    expect(page.text).toContain('name="target" value="receipt:#42"');
    expect(page.text).toContain('name="actor" value="clerk"');
    expect(page.text).not.toContain('<table');
    expect(refusedFormStateOf(page.text).invalid).toEqual(['target']);
    const json = await admin.get('/admin/audit.csv?target=receipt:abc').set('Accept', 'application/json').expect(400);
    expect(json.body.error).toContain('target: a receipt is written receipt: and its number (receipt:42)');
    const tooLong = await admin
      .get(`/admin/audit?target=${'x'.repeat(257)}`)
      .set('Accept', 'application/json')
      .expect(400);
    expect(tooLong.body.error).toContain('target: must be at most 256 characters');
    expect(await db.prisma.auditLog.count()).toBe(before);
  });

  it('uses an index rather than reading the whole log', async () => {
    // A large log of other targets (rows written straight in: this test reads plans, not the chain).
    await db.pool.query(`INSERT INTO audit_log (actor, action, target, status, prev_hash, hash)
      SELECT 'bulk', 'receipt.create', 'receipt:' || (1000 + i), 'ok', repeat('0', 64), md5(i::text) || md5(i::text)
        FROM generate_series(1, 50000) AS i`);
    await db.pool.query('ANALYZE audit_log');
    const plan = await db.pool.query(
      `EXPLAIN SELECT * FROM audit_log WHERE target = 'receipt:42' ORDER BY id DESC LIMIT 51`,
    );
    const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(text).toContain('audit_log_target_id_idx');
    expect(text).not.toContain('Seq Scan');
    // A user's filter reads both forms of the target (user:<name> and the older bare name).
    const userPlan = await db.pool.query(
      `EXPLAIN SELECT * FROM audit_log WHERE target IN ('user:alice', 'alice') ORDER BY id DESC LIMIT 51`,
    );
    const userText = userPlan.rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(userText).toContain('audit_log_target_id_idx');
    expect(userText).not.toContain('Seq Scan');
    // Gone again, behind the trigger's back: the newest of them matches no hash, and an app without a key
    // is refused every entry after it (it might be sealed with a key that app has not).
    const client = await db.pool.connect();
    try {
      await client.query("SET session_replication_role = 'replica'");
      await client.query(`DELETE FROM audit_log WHERE actor = 'bulk'`);
    } finally {
      await client.query("SET session_replication_role = 'origin'");
      client.release();
    }
  });
});

describe("the admin's receipt page", () => {
  it("links to this receipt's history in the audit log", async () => {
    const { receiptId } = await researcherWithReceiptOf(app, db, 'historian', 2);
    const page = await html(`/admin/receipts/${receiptId}`).expect(200);
    expect(page.text).toContain(`<a href="/admin/audit?target=receipt%3A${receiptId}">This receipt’s history</a>`);
    const history = await html(`/admin/audit?target=receipt%3A${receiptId}`).expect(200);
    expect(history.text).toContain('<td data-label="Action">receipt.create</td>');
  });
});

describe("a user's entries", () => {
  // User changes logged a bare username (`renamed`) while tier overrides logged `user:renamed`, so one
  // filter found half of a user's history. New entries are all `user:<name>`; old ones stay as written
  // (the log is a hash chain) and are found by either form.
  it('are written user:<name> and found with the older bare-name entries by either form', async () => {
    const target = await buildUser(db.prisma, { username: 'renamed' });
    await buildUser(db.prisma, { username: 'renamedx' });
    // As an admin's disable wrote it before: the bare name.
    await recordAudit(db, { ...context, action: 'user.disable', status: 'ok', target: 'renamed' });
    await recordAudit(db, { ...context, action: 'user.disable', status: 'ok', target: 'renamedx' });
    await changeRole(db.prisma, target.id, 'admin', context);
    const written = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'user.role_change' },
      orderBy: { id: 'desc' },
    });
    expect(written.target).toBe('user:renamed');

    for (const typed of ['user:renamed', 'renamed']) {
      const answer = await admin
        .get(`/admin/audit?target=${encodeURIComponent(typed)}`)
        .set('Accept', 'application/json')
        .expect(200);
      expect(answer.body.filters).toEqual({ target: typed });
      expect(answer.body.entries.map((entry: { target: string }) => entry.target)).toEqual(['user:renamed', 'renamed']);
      const csv = await admin.get(`/admin/audit.csv?target=${encodeURIComponent(typed)}`).expect(200);
      const rows = csv.text.trimEnd().split('\n').slice(1);
      expect(rows.map((row) => row.split(',')[6])).toEqual(['renamed', 'user:renamed']);
    }
    const users = await html('/admin/users?q=renamed').expect(200);
    expect(users.text).toContain(
      '<a href="/admin/audit?target=user%3Arenamed">History<span class="visually-hidden"> of renamed</span></a>',
    );
    // A path is never a username: a forbidden attempt's target is not a user's.
    const paths = await admin.get('/admin/audit?target=user:%2Fadmin').set('Accept', 'application/json').expect(200);
    expect(paths.body.entries).toEqual([]);
  });

  // Accounts are named in lower case, and the Actor filter, the billing and usage pages' User filters,
  // Tier overrides and sign-in all read Zoe as zoe: the Target filter user:Zoe found none of zoe's entries.
  it('are found by a name typed in another case, as the other filters find them', async () => {
    const zoe = await buildUser(db.prisma, { username: 'zoe' });
    await recordAudit(db, { ...context, action: 'user.disable', status: 'ok', target: 'zoe' });
    await changeRole(db.prisma, zoe.id, 'admin', context);
    // A job owner Slurm spells with a capital (no account): its tier override is written under that name.
    await recordAudit(db, { ...context, action: 'pricing.override.set', status: 'ok', target: 'user:Kai' });

    for (const typed of ['user:Zoe', 'USER:ZOE', 'Zoe', ' user:zOE ']) {
      const answer = await admin
        .get(`/admin/audit?target=${encodeURIComponent(typed)}`)
        .set('Accept', 'application/json')
        .expect(200);
      expect(answer.body.entries.map((entry: { target: string }) => entry.target)).toEqual(['user:zoe', 'zoe']);
      const csv = await admin.get(`/admin/audit.csv?target=${encodeURIComponent(typed)}`).expect(200);
      expect(
        csv.text
          .trimEnd()
          .split('\n')
          .slice(1)
          .map((row) => row.split(',')[6]),
      ).toEqual(['zoe', 'user:zoe']);
    }
    // A name some entry has as typed is still found as typed.
    const kai = await admin.get('/admin/audit?target=user:Kai').set('Accept', 'application/json').expect(200);
    expect(kai.body.entries.map((entry: { target: string }) => entry.target)).toEqual(['user:Kai']);
    const none = await html('/admin/audit?target=user:Nobody').expect(200);
    expect(visibleTextOf(none.text)).toContain(
      'The Target filter matches a whole target as the log writes it (receipt:42, tier:standard, user:alice, its username in any case): “user:Nobody” finds only entries about exactly that.',
    );
  });
});
