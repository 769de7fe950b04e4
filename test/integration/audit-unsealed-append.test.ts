import path from 'node:path';
import type express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_CLASSES } from '../../src/db/advisory-locks.js';
import {
  appendAudit,
  configureAuditChain,
  recordAudit,
  verifyAuditChain,
} from '../../src/modules/audit/audit.service.js';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { waitForMonthEndRun } from '../support/month-end.js';
import { sealedWhileAppendWaits } from '../support/sealed-meanwhile.js';
import { csrfTokenIn, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const KEY = 'rolling-restart-key-rolling-restart-key-01';
const REFUSAL =
  /Nothing was changed: this instance has no AUDIT_CHAIN_KEY, .* set AUDIT_CHAIN_KEY .* on every instance/;

// What became of a sign-in is said instead of "Nothing was changed", which a counted failure made untrue.
const SIGN_IN_REFUSAL = /^You were not signed in: this instance has no AUDIT_CHAIN_KEY, .* on every instance/;

let db: TestDatabase;
let app: express.Express;
let metrics: Metrics;
const logged: { level: number; msg: string }[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
  // The instance without the key (development settings: none is required).
  metrics = createMetrics();
  app = buildTestApp(db, { logger, metrics });
});
afterAll(() => db?.drop());
afterEach(async () => {
  withoutKey();
  await asSuperuser('TRUNCATE audit_log RESTART IDENTITY');
});

/** Runs `sql` as a superuser who has switched the table's triggers off for the session. */
async function asSuperuser(sql: string) {
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query(sql);
  } finally {
    await client.query("SET session_replication_role = 'origin'");
    client.release();
  }
}

// The process-wide settings stand for which instance writes: one given AUDIT_CHAIN_KEY (and the
// unsealed entries before it, AUDIT_CHAIN_UNSEALED_UNTIL) by a rolling restart, one not restarted yet.
let unsealedUntil = 0n;
function withKey() {
  configureAuditChain({ chainKeys: [KEY], unsealedUntil });
}
function withoutKey() {
  configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
}

/**
 * A log written without a key, as before the rolling restart (which the start-up check lets an
 * instance without the key write to), then the first sealed entry, from the instance given the key.
 */
async function sealedByTheOtherInstance(): Promise<number> {
  withoutKey();
  await recordAudit(db, { actor: 'ops', action: 'test.before_key', status: 'ok' });
  unsealedUntil = (await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
  withKey();
  await recordAudit(db, { actor: 'ops', action: 'test.first_sealed', status: 'ok' });
  withoutKey();
  return db.prisma.auditLog.count();
}

async function expectChainIntactAndSealed(count: number) {
  withKey();
  expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, isSealed: true, count });
  withoutKey();
}

describe('an instance without AUDIT_CHAIN_KEY on a log no instance has sealed', () => {
  // Each append now reads the newest entry whole: ids past 9 are where one ordered as text goes wrong.
  it('appends as before, alone and in transactions, and the chain stays intact', async () => {
    withoutKey();
    for (let index = 0; index < 12; index++) {
      await recordAudit(db, { actor: 'ops', action: 'test.alone', status: 'ok', details: { index, total: '7.50' } });
      await db.prisma.$transaction((tx) =>
        appendAudit(tx, { actor: 'ops', action: 'test.in_transaction', status: 'ok', details: { index } }),
      );
    }
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, isSealed: false, count: 24 });
  });
});

describe('an instance without AUDIT_CHAIN_KEY, after another instance sealed the log', () => {
  it('is refused an entry of its own (503, naming the key), and the chain stays intact', async () => {
    const count = await sealedByTheOtherInstance();
    const appending = recordAudit(db, { actor: 'ops', action: 'test.unsealed_after', status: 'ok' });
    await expect(appending).rejects.toThrow(REFUSAL);
    await expect(appending).rejects.toMatchObject({ name: 'UnsealedAuditAppendError', status: 503 });
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  it('refuses every entry of a group commit, and writes none', async () => {
    const count = await sealedByTheOtherInstance();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, index) =>
        recordAudit(db, { actor: 'ops', action: 'test.grouped', status: 'ok', details: { index } }),
      ),
    );
    expect(results.map((result) => result.status)).toEqual(Array(5).fill('rejected'));
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  it('rolls back the change whose entry it is refused in the same transaction', async () => {
    const count = await sealedByTheOtherInstance();
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.user.create({ data: { username: 'halfmade', passwordHash: 'x', role: 'user' } });
        await appendAudit(tx, { actor: 'ops', action: 'user.create', target: 'user:halfmade', status: 'ok' });
      }),
    ).rejects.toThrow(REFUSAL);
    expect(await db.prisma.user.count({ where: { username: 'halfmade' } })).toBe(0);
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  it("answers an admin's change 503 in JSON and as a page, changes nothing, logs why, and serves on", async () => {
    const admin = await buildUser(db.prisma, { username: 'keyless-chief', role: 'admin' });
    const target = await buildUser(db.prisma, { username: 'keyless-target' });
    // Signed in before the other instance's first sealed entry.
    const agent = await signInAs(app, admin.username, admin.password);
    const token = await csrfTokenOf(agent);
    const count = await sealedByTheOtherInstance();
    logged.length = 0;

    const json = await agent
      .post(`/admin/users/${target.id}/disable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token);
    expect(json.status).toBe(503);
    expect(json.body).toMatchObject({ code: 503, error: expect.stringMatching(REFUSAL) });
    const page = await agent
      .post(`/admin/users/${target.id}/disable`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token });
    expect(page.status).toBe(503);
    expect(page.text).toContain('Service Unavailable');
    expect(page.text).toMatch(REFUSAL);
    expect(await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).toMatchObject({ isDisabled: false });
    expect(await db.prisma.auditLog.count()).toBe(count);
    // An operator has to act: logged as an error, saying what to set.
    expect(logged.filter((line) => line.level >= 50).map((line) => line.msg)).toEqual([
      expect.stringMatching(/audit entry refused: .*AUDIT_CHAIN_KEY/),
      expect.stringMatching(/audit entry refused: .*AUDIT_CHAIN_KEY/),
    ]);
    // A sign-in appends an entry too: refused the same way, and not signed in.
    const visitor = request.agent(app);
    const signInToken = csrfTokenIn((await visitor.get('/login').set('Accept', 'text/html')).text);
    const signIn = await visitor
      .post('/login')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', signInToken)
      .send({ username: target.username, password: target.password });
    expect(signIn.status).toBe(503);
    expect(signIn.body.error).toMatch(SIGN_IN_REFUSAL);
    // Pages that write no entry are served as before.
    await agent.get('/admin/users').set('Accept', 'application/json').expect(200);
    await expectChainIntactAndSealed(count);
  });

  // A wrong password is counted against the lockout before its entry is written, and the count stays:
  // "Nothing was changed" was untrue. The message says what became of each kind of attempt.
  it('refuses a wrong password (503) saying it still counts against the lockout, as it does', async () => {
    const user = await buildUser(db.prisma, { username: 'keyless-guesser' });
    await sealedByTheOtherInstance();
    const { response } = await postLogin(app, user.username, 'not-the-password');
    expect(response.status).toBe(503);
    expect(response.text).toMatch(
      /You were not signed in, and this attempt still counts against the sign-in lockout: this instance has no AUDIT_CHAIN_KEY/,
    );
    expect(response.text).not.toContain('Nothing was changed');
    const counted = await db.prisma.authThrottle.findMany({ where: { username: user.username } });
    // Its rows (the name's, from this address and from anywhere) each hold the one failure.
    expect(counted.length).toBeGreaterThan(0);
    expect(counted.every((row) => row.failureCount === 1)).toBe(true);
  });

  it('refuses a wrong current password on the change-password form saying so, the password unchanged', async () => {
    const user = await buildUser(db.prisma, { username: 'keyless-changer' });
    const agent = await signInAs(app, user.username, user.password);
    const token = await csrfTokenOf(agent);
    await sealedByTheOtherInstance();
    const refused = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ current: 'not-the-password', password: 'a-new-password-1', confirm: 'a-new-password-1' });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(
      /^Your password was not changed, and this attempt still counts against the sign-in lockout: this instance has no AUDIT_CHAIN_KEY/,
    );
  });

  // The sign-out's entry is written first: refused, the session went on, the worse failure on a shared
  // computer. Signed out all the same, told so as ever; the missing entry is the operator's to read.
  it('signs a user out all the same when the sign-out entry is refused, logging it at error level', async () => {
    const user = await buildUser(db.prisma, { username: 'keyless-leaver' });
    const agent = await signInAs(app, user.username, user.password);
    const token = await csrfTokenOf(agent);
    const count = await sealedByTheOtherInstance();
    const sessions = await db.prisma.session.count();
    logged.length = 0;

    const out = await agent.post('/logout').set('Accept', 'text/html').type('form').send({ csrf_token: token });
    expect(out.status, out.text.slice(0, 300)).toBe(302);
    expect(out.headers.location).toBe('/login');
    const login = await agent.get('/login').set('Accept', 'text/html').expect(200);
    expect(login.text).toContain('You are signed out.');
    await agent.get('/account').set('Accept', 'application/json').expect(401);
    // The signed-in session's row is gone (the signed-out one that carries the notice replaces it).
    expect(await db.prisma.session.count()).toBe(sessions);
    expect(logged.filter((line) => line.level >= 50)).toEqual([
      expect.objectContaining({
        msg: expect.stringMatching(
          /^audit entry refused: the sign-out of keyless-leaver was not recorded; signing them out all the same: .*AUDIT_CHAIN_KEY/,
        ),
        username: 'keyless-leaver',
      }),
    ]);
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  // It refuses every request that writes an entry (a sign-in among them): a load balancer must send
  // them to the instances that have the key. It is alive, though: a restart with the key mends it.
  it('is not ready (/readyz 503 saying why, hpc_ready 0, a not ready warning), while /healthz stays ok', async () => {
    await request(app).get('/readyz').expect(200);
    await sealedByTheOtherInstance();
    const sealedId = (await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
    logged.length = 0;

    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({
      status: 'error',
      error: 'the audit log is sealed and this instance has no AUDIT_CHAIN_KEY: set the same key on every instance',
    });
    expect(await metricValue(metrics, 'hpc_ready')).toBe(0);
    expect(logged.find((line) => line.msg === 'not ready')).toMatchObject({
      level: 40,
      err: expect.stringMatching(
        new RegExp(
          `newest entry \\(#${sealedId}\\) is sealed .*this instance has no AUDIT_CHAIN_KEY: .*refused \\(503\\)`,
        ),
      ),
    });
    await request(app).get('/healthz').expect(200, { status: 'ok' });
    // The instance given the key is ready on the same log.
    withKey();
    try {
      await request(app).get('/readyz').expect(200, { status: 'ok' });
    } finally {
      withoutKey();
    }
  });

  // Each receipt of a month-end run appends its entry in its transaction, and the run's end appends
  // one: started, every receipt rolled back with its refused entry and the run's end went unrecorded.
  it('refuses a month-end run (503) before it starts, as JSON and from the form, leaving no run, receipt or entry', async () => {
    await buildTiers(db);
    const researcher = await buildUser(db.prisma, { username: 'keyless-billed' });
    await buildJobs(db, [{ user: researcher.username, end: '2025-09-10T10:00:00Z' }]);
    const admin = await buildUser(db.prisma, { username: 'keyless-month-end', role: 'admin' });
    const agent = await signInAs(app, admin.username, admin.password);
    const token = await csrfTokenOf(agent, '/admin/receipts');
    const count = await sealedByTheOtherInstance();

    const json = await agent
      .post('/admin/month-end')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ before: '2025-09-12' });
    expect(json.status, json.text.slice(0, 300)).toBe(503);
    expect(json.body.error).toMatch(REFUSAL);
    const page = await agent
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: token, before: '2025-09-12' });
    expect(page.status, page.text.slice(0, 300)).toBe(503);
    expect(page.text).toMatch(REFUSAL);
    expect(await db.prisma.monthEndRun.count()).toBe(0);
    expect(await db.prisma.receipt.count()).toBe(0);
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  // Sealed while a run bills: each receipt after that is refused with its entry, and so was the run's end
  // (its row and its entry in one transaction), so the row read running until the runs list or the next
  // start marked it interrupted (and on this instance that mark's own entry was refused too).
  it('ends a month-end run whose log was sealed during it as failed at once, saying why and what to do', async () => {
    if ((await db.prisma.pricingTier.count()) === 0) await buildTiers(db);
    const users = ['sealed-run-a', 'sealed-run-b', 'sealed-run-c'];
    for (const username of users) {
      await buildUser(db.prisma, { username });
      await buildJobs(db, [{ user: username, end: '2025-06-10T10:00:00Z' }]);
    }
    const admin = await buildUser(db.prisma, { username: 'keyless-sealed-run', role: 'admin' });
    const agent = await signInAs(app, admin.username, admin.password);
    const token = await csrfTokenOf(agent, '/admin/receipts');
    // b's and c's receipts wait for their jobs, as behind a receipt made for them by hand: a's is made first.
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      for (const username of users.slice(1)) {
        await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [ADVISORY_LOCK_CLASSES.userJobs, username]);
      }
      const started = await agent
        .post('/admin/month-end')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ before: '2025-06-30' });
      expect(started.status, started.text.slice(0, 300)).toBe(202);
      await expect.poll(() => db.prisma.receipt.count({ where: { username: { in: users } } })).toBe(1);
      expect(await sessionsWaitingForLocks(db.pool, 30_000, 2)).toBe(2);
      unsealedUntil = (await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
      // The other instance seals the log as b's and c's receipts reach their entries.
      await sealedWhileAppendWaits(db.pool, KEY, () => holder.query('SELECT pg_advisory_unlock_all()'));
      const count = await db.prisma.auditLog.count();

      const run = await waitForMonthEndRun(agent, started.body.statusUrl);
      expect(run).toMatchObject({ outcome: 'failed', usersTotal: 3, usersDone: 1, receiptCount: 1 });
      expect(run.finishedAt).not.toBeNull();
      expect(run.error).toMatch(
        /^Stopped after 1 of 3 users, each receipt after that refused with its audit entry, and this run's own entry was not written: this instance has no AUDIT_CHAIN_KEY, .* set AUDIT_CHAIN_KEY .* on every instance, .* and restart this one\. What it billed stays billed; running it again for the same day from an instance with the key is safe and bills the rest/,
      );
      expect(run.message).toContain(run.error);
      const page = await agent.get(started.body.statusUrl).set('Accept', 'text/html');
      expect(page.status).toBe(200);
      expect(page.text).toContain('role="alert">Stopped after 1 of 3 users');
      // What was billed before the seal stays; the receipts refused wrote nothing, nor did the run's end.
      expect(
        await db.prisma.receipt.findMany({ select: { username: true }, where: { username: { in: users } } }),
      ).toEqual([{ username: 'sealed-run-a' }]);
      expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: started.body.runId } })).toMatchObject({
        outcome: 'failed',
      });
      const list = await agent.get('/admin/month-end').set('Accept', 'application/json');
      expect(list.status).toBe(200);
      expect(await db.prisma.auditLog.count()).toBe(count);
      await expectChainIntactAndSealed(count);
    } finally {
      await holder.end();
      unsealedUntil = 0n;
    }
  });

  // Sealed after the run's last receipt and before its own entry, written with its end: the end rolled
  // back with the refused entry, and the row read running, then interrupted, of a run that had finished.
  it('records a month-end run whose own entry is refused at its end as it ended, saying the entry was not written', async () => {
    const admin = await buildUser(db.prisma, { username: 'keyless-run-end', role: 'admin' });
    const agent = await signInAs(app, admin.username, admin.password);
    const token = await csrfTokenOf(agent, '/admin/receipts');
    unsealedUntil = (await db.prisma.auditLog.findFirstOrThrow({ orderBy: { id: 'desc' } })).id;
    try {
      // A day no job ended by: the run bills nobody, so its end's entry is its first append.
      const { result: started } = await sealedWhileAppendWaits(db.pool, KEY, () =>
        agent
          .post('/admin/month-end')
          .set('Accept', 'application/json')
          .set('X-CSRFToken', token)
          .send({ before: '2025-05-31' }),
      );
      expect(started.status, started.text.slice(0, 300)).toBe(202);
      const count = await db.prisma.auditLog.count();

      const run = await waitForMonthEndRun(agent, started.body.statusUrl);
      expect(run).toMatchObject({ outcome: 'succeeded', usersTotal: 0, usersDone: 0, receiptCount: 0 });
      expect(run.error).toMatch(
        /^This run's own audit entry was not written: this instance has no AUDIT_CHAIN_KEY, .* and restart this one\.$/,
      );
      expect(await db.prisma.auditLog.count()).toBe(count);
      await expectChainIntactAndSealed(count);
    } finally {
      unsealedUntil = 0n;
    }
  });

  // A run writes its jobs over many transactions, and its entry after them: refused then, the run was
  // done without its entry. It is refused before it starts (the append checks again at its end).
  it('refuses a Run now (503) before it runs, leaving no run and no entry', async () => {
    const ingesting = buildTestApp(db, {
      env: {
        SACCT_PATH: '/nonexistent/sacct',
        FALLBACK_CSV: path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv'),
        INGEST_LOOKBACK_DAYS: '1',
        APP_TZ: 'UTC',
      },
    });
    const admin = await buildUser(db.prisma, { username: 'keyless-runner', role: 'admin' });
    const agent = await signInAs(ingesting, admin.username, admin.password);
    const token = await csrfTokenOf(agent);
    const count = await sealedByTheOtherInstance();
    const runs = await db.prisma.ingestionRun.count();

    const response = await agent
      .post('/admin/ingestion/run')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({});
    expect(response.status, response.text.slice(0, 300)).toBe(503);
    expect(response.body.error).toMatch(REFUSAL);
    expect(await db.prisma.ingestionRun.count()).toBe(runs);
    expect(await db.prisma.auditLog.count()).toBe(count);
    await expectChainIntactAndSealed(count);
  });

  // Sealed after Run now's check and before its entry (written after the run): the run is kept, and the
  // answer said "Nothing was changed" of a run that had imported its jobs.
  it('says a Run now refused at its entry ran and is kept, when the log was sealed during the run', async () => {
    const ingesting = buildTestApp(db, {
      env: {
        SACCT_PATH: '/nonexistent/sacct',
        FALLBACK_CSV: path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv'),
        INGEST_LOOKBACK_DAYS: '1',
        APP_TZ: 'UTC',
      },
      runNowAnswerWithinMs: 60_000,
    });
    const admin = await buildUser(db.prisma, { username: 'keyless-late-runner', role: 'admin' });
    const agent = await signInAs(ingesting, admin.username, admin.password);
    const token = await csrfTokenOf(agent);
    await recordAudit(db, { actor: 'ops', action: 'test.before_key', status: 'ok' });
    const runs = await db.prisma.ingestionRun.count();

    const { result: response } = await sealedWhileAppendWaits(db.pool, KEY, async () =>
      agent.post('/admin/ingestion/run').set('Accept', 'application/json').set('X-CSRFToken', token).send({}),
    );
    expect(response.status, response.text.slice(0, 300)).toBe(503);
    const run = await db.prisma.ingestionRun.findFirstOrThrow({ orderBy: { id: 'desc' } });
    expect(await db.prisma.ingestionRun.count()).toBe(runs + 1);
    expect(response.body.error).toMatch(
      new RegExp(
        `^Ingestion run #${run.id} ran and is kept, but its audit entry was not written: this instance has no AUDIT_CHAIN_KEY`,
      ),
    );
  });
});
