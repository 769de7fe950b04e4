import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { elementById, refusedFormStateOf } from '../support/html.js';
import { postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const context = { actor: 'tester', ip: '127.0.0.1', userAgent: 'vitest' };

describe('the audit chain', () => {
  it('keeps one chain under 50 concurrent appends', async () => {
    await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        recordAudit(db, {
          ...context,
          action: 'test.concurrent',
          status: 'ok',
          details: { index, nested: { b: 2, a: 1 } },
        }),
      ),
    );
    const entries = await db.prisma.auditLog.findMany({ orderBy: { id: 'asc' } });
    expect(entries).toHaveLength(50);
    expect(new Set(entries.map((entry) => entry.prevHash)).size).toBe(50);
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]?.prevHash).toBe(entries[index - 1]?.hash);
    }
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 50 });
  });

  it('writes entries recorded at the same moment in the order they were recorded', async () => {
    const before = await db.prisma.auditLog.count();
    await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        recordAudit(db, { ...context, action: 'test.ordered', status: 'ok', target: `item:${index}` }),
      ),
    );
    const entries = await db.prisma.auditLog.findMany({ where: { action: 'test.ordered' }, orderBy: { id: 'asc' } });
    expect(entries.map((entry) => entry.target)).toEqual(Array.from({ length: 30 }, (_, index) => `item:${index}`));
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: before + 30 });
  });

  it('fails only the entry that cannot be written when it was grouped with others', async () => {
    const before = await db.prisma.auditLog.count();
    const outcomes = await Promise.allSettled(
      ['first', 'x'.repeat(65), 'third', 'fourth'].map((actor) =>
        recordAudit(db, { ...context, actor, action: 'test.partial', status: 'ok' }),
      ),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const entries = await db.prisma.auditLog.findMany({ where: { action: 'test.partial' }, orderBy: { id: 'asc' } });
    expect(entries.map((entry) => entry.actor)).toEqual(['first', 'third', 'fourth']);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: before + 3 });
  });

  it('keeps one chain when two processes (two pools) append at once, and stores the entries as given', async () => {
    const otherWorker = openDatabase(db.url, {
      poolMax: 4,
      queryTimeoutMs: db.queryTimeoutMs,
      logger: createLogger('silent'),
    });
    try {
      const before = await db.prisma.auditLog.count();
      const details = { reason: 'bad "quote"', nested: { z: [1, 2], a: null }, text: 'é\\n' };
      await Promise.all(
        Array.from({ length: 40 }, (_, index) =>
          recordAudit(index % 2 === 0 ? db : otherWorker, {
            ...context,
            userAgent: index === 0 ? null : 'vitest',
            action: 'test.two-pools',
            status: 'ok',
            target: index === 1 ? null : `item:${index}`,
            details: index % 3 === 0 ? null : { ...details, index },
          }),
        ),
      );
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: before + 40 });
      const stored = await db.prisma.auditLog.findMany({ where: { action: 'test.two-pools' }, orderBy: { id: 'asc' } });
      expect(stored).toHaveLength(40);
      const second = stored.find((entry) => entry.details !== null && (entry.details as { index: number }).index === 1);
      expect(second).toMatchObject({ target: null, userAgent: 'vitest', details: { ...details, index: 1 } });
      expect(stored.filter((entry) => entry.details === null)).toHaveLength(14);
      expect(stored.filter((entry) => entry.userAgent === null)).toHaveLength(1);
    } finally {
      await otherWorker.close();
    }
  });

  it('leaves no transaction open and the pool usable after an entry is refused', async () => {
    const before = await db.prisma.auditLog.count();
    await expect(
      recordAudit(db, { ...context, actor: 'y'.repeat(65), action: 'test.refused', status: 'ok' }),
    ).rejects.toThrow(/too long/);
    const { rows } = await db.pool.query<{ open: number }>(
      `SELECT count(*)::int AS open FROM pg_stat_activity
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
    );
    expect(rows[0]?.open).toBe(0);
    await recordAudit(db, { ...context, action: 'test.after-refusal', status: 'ok' });
    expect(await db.prisma.auditLog.count()).toBe(before + 1);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: before + 1 });
  });

  it("finds a row edited behind the trigger's back, and reports it on /admin/audit/verify", async () => {
    await buildUser(db.prisma, { username: 'auditor', role: 'admin', password: 'auditor-password' });
    const metrics = createMetrics();
    const app = buildTestApp(db, { metrics });
    const agent = await signInAs(app, 'auditor', 'auditor-password');
    const ok = await postAuditVerify(agent, 'application/json');
    expect(ok.body.status).toBe('ok');

    const victim = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'test.concurrent' },
      orderBy: { id: 'asc' },
      skip: 10,
    });
    const client = await db.pool.connect();
    try {
      // A superuser can switch triggers off for a session: exactly the tampering the chain must reveal.
      await client.query("SET session_replication_role = 'replica'");
      await client.query(`UPDATE audit_log SET actor = 'mallory' WHERE id = $1`, [victim.id]);
      await client.query("SET session_replication_role = 'origin'");
    } finally {
      client.release();
    }
    const verdict = await verifyAuditChain(db.prisma);
    expect(verdict).toMatchObject({ isIntact: false, brokenAt: victim.id });

    const broken = await postAuditVerify(agent, 'application/json', 409);
    expect(broken.body).toMatchObject({ status: 'broken', brokenAt: String(victim.id) });
    const page = await postAuditVerify(agent, 'text/html', 409);
    expect(page.text).toContain(`Broken at entry #${victim.id}`);
    expect(await metricValue(metrics, 'audit_chain_ok')).toBe(0);
  });
});

describe('the audit pages', () => {
  it('lists entries newest first, filtered by actor, action and date', async () => {
    const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } });
    await buildUser(db.prisma, { username: 'pager', role: 'admin', password: 'pager-password' });
    const agent = await signInAs(app, 'pager', 'pager-password');
    await recordAudit(
      db,
      { ...context, actor: 'filterme', action: 'user.create', status: 'ok' },
      new Date('2026-03-01T18:00:00Z'),
    );
    await recordAudit(
      db,
      { ...context, actor: 'filterme', action: 'user.disable', status: 'ok' },
      new Date('2026-03-05T03:00:00Z'),
    );

    const byActor = await agent.get('/admin/audit?actor=filterme').set('Accept', 'text/html').expect(200);
    expect(byActor.text.indexOf('<td data-label="Action">user.disable</td>')).toBeGreaterThan(0);
    expect(byActor.text.indexOf('<td data-label="Action">user.disable</td>')).toBeLessThan(
      byActor.text.indexOf('<td data-label="Action">user.create</td>'),
    );
    const byAction = await agent
      .get('/admin/audit?actor=filterme&action=user.create')
      .set('Accept', 'text/html')
      .expect(200);
    expect(byAction.text).not.toContain('<td data-label="Action">user.disable</td>');
    // 18:00 UTC on 1 March is 2 March in Bangkok.
    const byDate = await agent
      .get('/admin/audit?actor=filterme&from=2026-03-02&to=2026-03-02')
      .set('Accept', 'text/html')
      .expect(200);
    expect(byDate.text).toContain('<td data-label="Action">user.create</td>');
    expect(byDate.text).not.toContain('<td data-label="Action">user.disable</td>');
    const bad = await agent.get('/admin/audit?from=2026-02-30').set('Accept', 'application/json').expect(400);
    expect(bad.body.error).toContain('from: ');
    // A browser gets the page back with the message and what was typed, so it can be corrected.
    const backwards = await agent
      .get('/admin/audit?actor=filterme&from=2026-03-05&to=2026-03-01')
      .set('Accept', 'text/html')
      .expect(400);
    // Worded as usage, receipts and paid.csv word it: by the labels on the page, by the keys to a script.
    expect(backwards.text).toContain('Logged from (2026-03-05) is after Logged to (2026-03-01).');
    const csvBackwards = await agent
      .get('/admin/audit.csv?from=2026-03-05&to=2026-03-01')
      .set('Accept', 'application/json')
      .expect(400);
    expect(csvBackwards.body.error).toBe('from (2026-03-05) is after to (2026-03-01).');
    expect(backwards.text).toContain('name="actor" value="filterme"');
    expect(backwards.text).toContain('name="from" type="date" value="2026-03-05"');
    // Nothing was searched: no table saying that nothing matched.
    expect(backwards.text).not.toContain('No entries match.');
    // The date to fix is marked, described by the reason and focused, for a screen reader and the keyboard.
    const expectTied = (page: string, fields: string[], message: string) => {
      const state = refusedFormStateOf(page);
      expect(state.invalid).toEqual(fields);
      for (const field of fields) {
        expect(elementById(page, state.describedBy[field] ?? '')).toMatch(
          new RegExp(`^<div class="alert error" role="alert"[^>]*>[^<]*${message.replace(/[()]/g, '\\$&')}`),
        );
      }
      expect(state.autofocus).toEqual([fields[0]]);
    };
    expectTied(backwards.text, ['from', 'to'], 'Logged from (2026-03-05) is after Logged to (2026-03-01).');
    const badTo = await agent.get('/admin/audit?from=2026-03-01&to=2026-02-30').set('Accept', 'text/html').expect(400);
    expectTied(badTo.text, ['to'], 'Logged to: ');
    expect(badTo.text).toContain('name="to" type="date" value="2026-02-30"');
  });

  it('downloads the entries the page is filtered to, and still offers the whole log', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'csvfilter', role: 'admin', password: 'csvfilter-password' });
    const agent = await signInAs(app, 'csvfilter', 'csvfilter-password');
    await recordAudit(db, { ...context, actor: 'csvpick', action: 'receipt.void', status: 'ok', target: 'receipt:7' });
    await recordAudit(db, { ...context, actor: 'csvpick', action: 'receipt.mark_paid', status: 'ok' });

    const page = await agent
      .get('/admin/audit?actor=csvpick&action=receipt.void&from=2000-01-01')
      .set('Accept', 'text/html')
      .expect(200);
    const links = [...page.text.matchAll(/<a href="(\/admin\/audit\.csv[^"]*)"[^>]*>([^<]+)<\/a>/g)].map((match) => ({
      href: match[1]?.replaceAll('&amp;', '&'),
      text: match[2],
    }));
    expect(links).toEqual([
      {
        href: '/admin/audit.csv?actor=csvpick&action=receipt.void&from=2000-01-01',
        text: 'Download these entries (CSV)',
      },
      { href: '/admin/audit.csv?actor=csvpick&action=receipt.void&from=2000-01-01&bom=1', text: 'CSV for Excel' },
      { href: '/admin/audit.csv', text: 'the whole log (CSV)' },
      { href: '/admin/audit.csv?bom=1', text: 'CSV for Excel' },
    ]);
    // What the link downloads is what the page lists: the one void, not the whole log.
    const csv = await agent.get(links[0]?.href ?? '').expect(200);
    const rows = csv.text.trimEnd().split('\n').slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(',csvpick,127.0.0.1,vitest,receipt.void,receipt:7,ok,');

    // Unfiltered, one link for the whole log; refused filters offer no download of other entries.
    const all = await agent.get('/admin/audit').set('Accept', 'text/html').expect(200);
    expect(all.text).toContain('<a href="/admin/audit.csv">Download CSV</a>');
    expect(all.text).not.toContain('Download these entries');
    const refused = await agent
      .get('/admin/audit?actor=csvpick&from=2026-02-30')
      .set('Accept', 'text/html')
      .expect(400);
    // Only the whole log's links (its CSV for Excel has bom=1 alone), no filtered one.
    expect(refused.text).not.toMatch(/href="\/admin\/audit\.csv\?(?!bom=1")/);
    expect(refused.text).toContain(
      '<a href="/admin/audit.csv?bom=1" aria-label="CSV for Excel of the whole log">CSV for Excel</a>',
    );
    expect(refused.text).toContain('Download these entries (CSV): needs valid filters');
    expect(refused.text).toContain('<a href="/admin/audit.csv">the whole log (CSV)</a>');
    // Read as a sentence, not "needs valid filters or the whole log": the whole log is downloadable now.
    const line = refused.text
      .replace(/<[^>]+>/g, '')
      .replace(/\s+/g, ' ')
      .match(/Download these entries[^|]*?CSV for Excel\)/)?.[0];
    expect(line).toBe(
      'Download these entries (CSV): needs valid filters. Download the whole log (CSV) (CSV for Excel)',
    );
  });

  it('offers every recorded action once, in order, in the action filter', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'actions', role: 'admin', password: 'actions-password' });
    const agent = await signInAs(app, 'actions', 'actions-password');
    for (const action of ['zz.last', 'aa.first', 'mm.middle', 'aa.first', 'zz.last', 'mm.middle.sub']) {
      await recordAudit(db, { ...context, action, status: 'ok' });
    }
    const page = await agent.get('/admin/audit').set('Accept', 'text/html').expect(200);
    const offered = [...page.text.matchAll(/<option value="([^"]+)"/g)].map((match) => match[1]);
    const distinct = await db.pool.query<{ action: string }>('SELECT DISTINCT action FROM audit_log ORDER BY action');
    expect(offered).toEqual(distinct.rows.map((row) => row.action));
    expect(offered).toEqual(expect.arrayContaining(['aa.first', 'mm.middle', 'mm.middle.sub', 'zz.last']));
  });

  it('streams the whole log as CSV and counts the download', async () => {
    const metrics = createMetrics();
    const app = buildTestApp(db, { metrics });
    await buildUser(db.prisma, { username: 'exporter', role: 'admin', password: 'exporter-password' });
    const agent = await signInAs(app, 'exporter', 'exporter-password');
    const total = await db.prisma.auditLog.count();
    const csv = await agent.get('/admin/audit.csv').expect(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toBe('attachment; filename="audit-log.csv"');
    const lines = csv.text.trimEnd().split('\n');
    expect(lines[0]).toBe('id,ts,actor,ip,user_agent,action,target,status,details,prev_hash,hash');
    expect(lines.length - 1).toBeGreaterThanOrEqual(total);
    expect(await metricValue(metrics, 'csv_download_total', { kind: 'audit' })).toBe(1);
    await request(app).get('/admin/audit.csv').expect(302);
  });

  it('writes the header and an entry as exact bytes: quoted, escaped, empty where null', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'csvbytes', role: 'admin', password: 'csvbytes-password' });
    const agent = await signInAs(app, 'csvbytes', 'csvbytes-password');
    await recordAudit(db, {
      actor: '-csv "pin"',
      ip: null,
      userAgent: '=ua, with a comma',
      action: 'test.csv_bytes',
      target: 'user:\u202ecsv',
      status: 'denied',
      details: { note: 'a "quote", a comma', n: 1 },
    });
    const stored = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'test.csv_bytes' } });
    const csv = await agent.get('/admin/audit.csv?action=test.csv_bytes').expect(200);
    expect(csv.text).toBe(
      'id,ts,actor,ip,user_agent,action,target,status,details,prev_hash,hash\n' +
        `${stored.id},${stored.ts.toISOString()},"'-csv ""pin""",,"'=ua, with a comma",test.csv_bytes,` +
        `user:\\u202ecsv,denied,"{""n"":1,""note"":""a \\""quote\\"", a comma""}",${stored.prevHash},${stored.hash}\n`,
    );
  });

  it('neutralises what a client sent that a spreadsheet would run as a formula', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'csvadmin', role: 'admin', password: 'csvadmin-password' });
    const agent = await signInAs(app, 'csvadmin', 'csvadmin-password');
    // A failed sign-in records the username as typed (lower-cased), and the user agent as sent.
    const attempt = request.agent(app).set('User-Agent', '@SUM(1)');
    const { response } = await postLogin(app, '=HYPERLINK("http://x")', 'wrong-password', { agent: attempt });
    expect(response.text).toContain('Wrong username or password.');
    const csv = await agent.get('/admin/audit.csv').expect(200);
    const line = csv.text.split('\n').find((text) => text.includes('hyperlink'));
    expect(line).toMatch(/^\d+,[^,]+,"'=hyperlink\(""http:\/\/x""\)",[^,]*,'@SUM\(1\),login\.failure,/);
    const stored = await db.prisma.auditLog.findFirstOrThrow({ where: { actor: '=hyperlink("http://x")' } });
    expect(stored.userAgent).toBe('@SUM(1)');
  });
});
