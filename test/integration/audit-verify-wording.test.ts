import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Changes one entry's actor behind the trigger's back, as a superuser could (to `actor`: back, too). */
async function tamperWith(id: bigint, actor = 'mallory') {
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query(`UPDATE audit_log SET actor = $2 WHERE id = $1`, [id, actor]);
    await client.query("SET session_replication_role = 'origin'");
  } finally {
    client.release();
  }
}

describe('/admin/audit/verify on a broken chain', () => {
  it('says which entries before the break are intact, and claims none when the first entry is broken', async () => {
    await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
    const agent = await signInAs(buildTestApp(db), 'auditor', 'auditor-password');
    await signInAs(buildTestApp(db), 'auditor', 'auditor-password');
    const entries = await db.prisma.auditLog.findMany({ orderBy: { id: 'asc' }, select: { id: true } });
    expect(entries.length).toBeGreaterThan(1);
    const [first, second] = entries as [{ id: bigint }, { id: bigint }];

    await tamperWith(second.id);
    const later = await postAuditVerify(agent, 'text/html', 409);
    expect(later.text).toContain(`Broken at entry #${second.id}: `);
    expect(later.text).toContain(`Entries before #${second.id} are intact.`);
    // The verdict just reached takes the focus (flash-focus.js right after it), for a screen reader to read it.
    expect(later.text).toMatch(
      /Broken at entry #\d+: [^<]*<\/div>\s*<script src="\/static\/js\/flash-focus\.js" defer>/,
    );

    await tamperWith(first.id);
    const page = await postAuditVerify(agent, 'text/html', 409);
    expect(page.text).toContain(`Broken at entry #${first.id}, the first entry: `);
    expect(page.text).toMatch(/the first entry: [^<]*<\/div>\s*<script src="\/static\/js\/flash-focus\.js" defer>/);
    expect(page.text).not.toContain('are intact');
    expect(page.text).toContain('Keep a copy of the database as it is');
    const json = await postAuditVerify(agent, 'application/json', 409);
    expect(json.body).toMatchObject({ status: 'broken', brokenAt: String(first.id), entries: 1 });
    // Put back: a changed newest entry refuses every entry an app without a key would append after it.
    await tamperWith(first.id, 'auditor');
    await tamperWith(second.id, 'auditor');
  });
});

describe("a break found by an admin's verification", () => {
  it('is logged as the periodic check logs it, naming the entry, as the AuditChainBroken runbook says', async () => {
    // The gauge an admin's /admin/audit/verify sets fires AuditChainBroken at once; the periodic
    // check that logged the break may be up to AUDIT_VERIFY_INTERVAL_SEC (an hour) away.
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const app = createApp({ config: buildTestConfig(db.url), db, logger, metrics: createMetrics() });
    await buildUser(db.prisma, { username: 'auditor2', role: 'admin', password: 'auditor2-password' });
    const agent = await signInAs(app, 'auditor2', 'auditor2-password');
    const newest = await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' }, select: { id: true } });
    await tamperWith(newest.id);

    const json = await postAuditVerify(agent, 'application/json', 409);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: 'the audit log hash chain is broken',
        brokenAt: json.body.brokenAt,
        reason: expect.any(String),
      }),
    );
  });
});

describe('/admin/audit/verify on a log of one entry', () => {
  it('says the one entry is intact, not "all 1 entries are intact and chained"', async () => {
    const own = await createTestDatabase();
    try {
      await buildUser(own.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
      // The sign-in is the log's first and only entry, as on a new demo after one sign-in.
      const agent = await signInAs(buildTestApp(own), 'auditor', 'auditor-password');
      expect(await own.prisma.auditLog.count()).toBe(1);
      const page = await postAuditVerify(agent, 'text/html');
      expect(page.text).toContain('OK: the one entry is intact.');
      expect(page.text).not.toContain('all 1 entries');
    } finally {
      await own.drop();
    }
  });
});

// The page said "OK: all N entries are intact" and nothing of what it cannot see: the newest entries
// deleted once no process remembers them (a restart). It names the newest entry to keep outside the
// database, as `npm run audit:verify` prints it, and its JSON gives it to an auditor's script.
describe('/admin/audit/verify on an intact chain', () => {
  it('names the newest entry as the anchor to keep outside the database', async () => {
    const own = await createTestDatabase();
    try {
      await buildUser(own.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
      const agent = await signInAs(buildTestApp(own), 'auditor', 'auditor-password');
      const json = await postAuditVerify(agent, 'application/json');
      const newest = await own.prisma.auditLog.findFirst({ orderBy: { id: 'desc' } });
      if (!newest) throw new Error('no entry');
      const anchor = `${newest.id}:${newest.hash}`;
      expect(json.body).toMatchObject({ status: 'ok', anchor });
      const page = await postAuditVerify(agent, 'text/html');
      const latest = await own.prisma.auditLog.findFirst({ orderBy: { id: 'desc' } });
      expect(page.text).toContain(
        `The newest entry is #${latest?.id}, hash <code class="audit-anchor">${latest?.hash}</code>. ` +
          'Deleting the newest entries leaves a chain that still verifies: this process reports them gone ' +
          'until it restarts, and no later. Keep this line outside the database, and check a later log ' +
          `against it with <code class="audit-anchor">npm run audit:verify -- --anchor ${latest?.id}:${latest?.hash}</code>`,
      );
    } finally {
      await own.drop();
    }
  });
});

// The log's page said "Append-only and hash-chained" over the very entry the last verification had
// found changed: an admin reading the log there saw nothing of the break.
describe('/admin/audit after a verification found the chain broken', () => {
  it('says so above the entries, naming the entry, until a verification finds it intact', async () => {
    const own = await createTestDatabase();
    try {
      await buildUser(own.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
      const agent = await signInAs(buildTestApp(own), 'auditor', 'auditor-password');
      await postAuditVerify(agent, 'application/json');
      expect((await agent.get('/admin/audit').set('Accept', 'text/html')).text).not.toContain('audit-chain-break');
      const first = await own.prisma.auditLog.findFirst({ orderBy: { id: 'asc' } });
      if (!first) throw new Error('no entry');
      const client = await own.pool.connect();
      try {
        await client.query("SET session_replication_role = 'replica'");
        await client.query(`UPDATE audit_log SET actor = 'mallory' WHERE id = $1`, [first.id]);
        await client.query("SET session_replication_role = 'origin'");
      } finally {
        client.release();
      }
      await postAuditVerify(agent, 'application/json', 409);
      const page = await agent.get('/admin/audit').set('Accept', 'text/html');
      expect(page.status).toBe(200);
      expect(page.text).toMatch(
        new RegExp(
          `<div class="alert error" id="audit-chain-break">The last verification \\([^)]+\\) found the chain broken at entry #${first.id}: the entry was changed after it was written`,
        ),
      );
      expect(page.text).toContain('The entries listed here are not all as they were written');

      const restore = await own.pool.connect();
      try {
        await restore.query("SET session_replication_role = 'replica'");
        await restore.query('UPDATE audit_log SET actor = $2 WHERE id = $1', [first.id, first.actor]);
        await restore.query("SET session_replication_role = 'origin'");
      } finally {
        restore.release();
      }
      await postAuditVerify(agent, 'application/json');
      expect((await agent.get('/admin/audit').set('Accept', 'text/html')).text).not.toContain('audit-chain-break');
    } finally {
      await own.drop();
    }
  });
});
