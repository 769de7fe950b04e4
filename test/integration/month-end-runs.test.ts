import { Writable } from 'node:stream';
import { Prisma } from '@prisma/client';
import type { PoolClient } from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { openDatabase } from '../../src/db/database.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { interruptAbandonedMonthEndRuns } from '../../src/modules/receipts/abandoned-month-end-runs.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs, signInOverHttp } from '../support/sign-in.js';
import { spawnServer } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, moving with the real clock.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
let admin: Agent;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now, metrics: createMetrics() });
  admin = await signInAs(app, 'boss', 'boss-password');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.monthEndRun.deleteMany();
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
});

const USERS = ['me1', 'me2', 'me3', 'me4'];

async function buildUnbilledUsage() {
  await buildJobs(
    db,
    USERS.flatMap((user) => [
      { user, end: '2025-08-20T03:00:00Z' },
      { user, end: '2025-08-21T03:00:00Z' },
    ]),
  );
}

const html = (path: string) => admin.get(path).set('Accept', 'text/html');
const json = (path: string) => admin.get(path).set('Accept', 'application/json');

async function startInBrowser(before: string) {
  return admin
    .post('/admin/month-end')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
}

async function startAsJson(before: string) {
  return admin
    .post('/admin/month-end')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/receipts'))
    .send({ before });
}

/** A month-end start (JSON), made while another session holds the start lock. */
function startBehindTheStartLock(token: string) {
  return admin
    .post('/admin/month-end')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token)
    .type('form')
    .send({ before: '2025-08-31' })
    .then((answer) => answer);
}

/** Once the start has made its first try for the lock (the pool's connection keeps its last query's text). */
async function hasTriedForTheStartLock(other: PoolClient) {
  await expect
    .poll(
      async () =>
        (
          await other.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_try_advisory_xact_lock%' AND pid <> pg_backend_pid()",
          )
        ).rows[0].n,
      { timeout: 10_000, interval: 20 },
    )
    .toBeGreaterThanOrEqual(1);
}

/** The run of a start at the same moment: a few users, so its row is in and it has ended in milliseconds. */
function recordRunFinishedMeanwhile() {
  return db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'boss',
      startedAt: now(),
      finishedAt: now(),
      outcome: 'succeeded',
      usersTotal: 4,
      usersDone: 4,
    },
  });
}

/** A running run's row left by a process that died: nothing holds the month-end lock. */
async function buildAbandonedRun() {
  const row = await db.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'carol',
      startedAt: new Date('2025-09-20T04:30:00Z'),
      usersTotal: 10,
      usersDone: 3,
      receiptCount: 3,
      totals: [{ currency: 'THB', total: '3.6' }],
    },
  });
  return row.id;
}

describe('a month-end run in the background', () => {
  it('answers at once, shows its progress while it runs, refuses a second run with a link, then shows its summary', async () => {
    await buildUnbilledUsage();
    // Holds the run at its first user's tier, after it has listed the users to bill.
    const stall = await db.pool.connect();
    let runPath: string;
    try {
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      runPath = monthEndRunPathOf(await startInBrowser('2025-08-31'));
      const runId = Number(runPath.split('/').pop());
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);

      const running = await json(runPath).expect(200);
      expect(running.body).toEqual({
        timeZone: 'Asia/Bangkok',
        id: runId,
        url: runPath,
        outcome: 'running',
        before: '2025-08-31',
        startedBy: 'boss',
        startedAt: expect.stringMatching(/^2025-09-20T05:00:\d\d\.\d{3}Z$/),
        finishedAt: null,
        usersTotal: 4,
        usersDone: 0,
        receiptCount: 0,
        noChargeCount: 0,
        receiptsUrl: `/admin/receipts?run=${runId}`,
        totals: [],
        skipped: [],
        disabledUsersBilled: [],
        // Counted as it listed its users: none of theirs is left out for not having finished.
        unfinishedJobCount: 0,
        unfinishedJobsByUser: [],
        error: null,
        message: null,
      });
      const page = await html(runPath).expect(200);
      // A script follows the run in place; the page reloads itself only without JavaScript.
      expect(page.text).toContain('<noscript><meta http-equiv="refresh" content="2"></noscript>');
      expect(page.text).toContain('<script src="/static/js/month-end-wait.js" defer></script>');
      expect(page.text).not.toContain('month-end-ended.js');
      expect(page.text).toContain('Running… <span data-run="progress">0 of 4 users done.</span>');
      const billing = await html('/admin/receipts').expect(200);
      expect(billing.text).toMatch(
        new RegExp(
          `id="month-end-running">Run #${runId} up to 2025-08-31 is running, started by boss at 2025-09-20 12:00: 0 of 4 users done\\. <a href="${runPath}">See its progress</a>`,
        ),
      );

      // A second run meanwhile is refused, pointing at the first; it starts nothing.
      const refused = await startInBrowser('2025-08-31');
      expect(refused.status).toBe(409);
      expect(refused.text).toContain(
        'Month-end run not started. A month-end run is already in progress (started by boss at 2025-09-20 12:00); ' +
          `wait for it to finish. <a href="${runPath}">See its progress</a>`,
      );
      const refusedJson = await startAsJson('2025-08-31');
      expect(refusedJson.status).toBe(409);
      expect(refusedJson.body).toEqual({
        error: 'A month-end run is already in progress (started by boss at 2025-09-20 12:00); wait for it to finish.',
        code: 409,
        runId,
        statusUrl: runPath,
      });
      expect(await db.prisma.monthEndRun.count()).toBe(1);
      await stall.query('COMMIT');
    } finally {
      stall.release();
    }

    const ran = await waitForMonthEndRun(admin, runPath);
    const made = await db.prisma.receipt.findMany({ where: { scope: 'admin' }, select: { total: true } });
    expect(made).toHaveLength(USERS.length);
    const total = made.reduce((sum, receipt) => sum.plus(receipt.total), new Prisma.Decimal(0));
    expect(ran).toMatchObject({
      outcome: 'succeeded',
      usersTotal: 4,
      usersDone: 4,
      receiptCount: 4,
      noChargeCount: 0,
      totals: [{ currency: 'THB', total: total.toFixed(2) }],
      skipped: [],
      error: null,
      finishedAt: expect.stringMatching(/^2025-09-20T05:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(ran.message).toBe(`Month-end run up to 2025-08-31: 4 receipts created, total ${total.toFixed(2)} THB.`);
    const done = await html(runPath).expect(200);
    expect(done.text).not.toContain('http-equiv="refresh"');
    expect(done.text).not.toContain('month-end-wait.js');
    expect(done.text).toContain(`<div class="alert success" role="status">${ran.message}</div>`);
    // Right after the summary, the script that gives it the focus when the page watched the run end.
    const afterSummary = done.text.split(`role="status">${ran.message}</div>`)[1] ?? '';
    expect(afterSummary.trimStart()).toMatch(/^<script src="\/static\/js\/month-end-ended\.js" defer><\/script>/);
    const billing = await html('/admin/receipts').expect(200);
    expect(billing.text).not.toContain('id="month-end-running"');
    expect(billing.text).toContain(
      `Last run: <a href="${runPath}" aria-label="Month-end run #${ran.id}">#${ran.id}</a> up to 2025-08-31 by boss,`,
    );
    expect(billing.text).toContain('4 receipts created.');
    // Each receipt is audited as before, as made by the admin who started the run.
    expect(
      await db.prisma.auditLog.count({ where: { action: 'receipt.create', actor: 'boss' } }),
    ).toBeGreaterThanOrEqual(4);
  });

  it('names the run already going to a second run started at the same moment, in JSON and on the page', async () => {
    await buildUnbilledUsage();
    const token = await csrfTokenOf(admin, '/admin/receipts');
    // Holds the first run between taking the month-end lock and committing its row.
    const stall = await db.pool.connect();
    try {
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE month_end_runs IN EXCLUSIVE MODE');
      const post = (accept: string, body: Record<string, string>) =>
        admin.post('/admin/month-end').set('Accept', accept).set('X-CSRFToken', token).type('form').send(body);
      const first = post('application/json', { before: '2025-08-31' }).then((answer) => answer);
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 1)).toBeGreaterThanOrEqual(1);
      const secondJson = post('application/json', { before: '2025-08-31' }).then((answer) => answer);
      const secondPage = post('text/html', { before: '2025-08-31', csrf_token: token }).then((answer) => answer);
      // The second ones try again until the first's row has committed (or, before, were refused at once without it).
      // They hold no lock while they do (fe5da525), so nothing shows they have come: a moment for them
      // to, by the clock. Waiting for 3 sessions to wait for locks, which 1 ever does since, ran out its
      // 100 polls every time, 6 s on a loaded machine, and the first start's transaction, held by the
      // stall, passed Prisma's 5 s for a transaction and answered 500.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await stall.query('COMMIT');
      const [started, refusedJson, refusedPage] = await Promise.all([first, secondJson, secondPage]);
      expect(started.status, started.text.slice(0, 300)).toBe(202);
      const { runId, statusUrl } = started.body;
      expect(refusedJson.status).toBe(409);
      expect(refusedJson.body).toMatchObject({ code: 409, runId, statusUrl });
      expect(refusedPage.status).toBe(409);
      expect(refusedPage.text).toContain(`<a href="${statusUrl}">See its progress</a>`);
      expect(await db.prisma.monthEndRun.count()).toBe(1);
      await waitForMonthEndRun(admin, statusUrl);
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
    }
  });

  it('starts one run and answers every other start at the same moment 409 with its id, on a pool of two', async () => {
    await buildUnbilledUsage();
    // A worker with DB_POOL_MAX=2: each start waiting its turn used to keep a connection while the
    // one that could go on needed a second, and every start failed on the pool instead.
    const small = openDatabase(db.url, { poolMax: 2, queryTimeoutMs: 30_000, logger: pino({ level: 'silent' }) });
    try {
      const app = buildTestApp(
        { ...small, url: db.url },
        { env: { APP_TZ: 'Asia/Bangkok', DB_POOL_MAX: '2' }, now, metrics: createMetrics() },
      );
      const boss = await signInAs(app, 'boss', 'boss-password');
      const token = await csrfTokenOf(boss, '/admin/receipts');
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          boss
            .post('/admin/month-end')
            .set('Accept', 'application/json')
            .set('X-CSRFToken', token)
            .send({ before: '2025-08-31' }),
        ),
      );
      const started = answers.filter((answer) => answer.status === 202);
      expect(
        answers.map((answer) => answer.status).sort(),
        answers.map((answer) => answer.text.slice(0, 200)).join('\n'),
      ).toEqual([202, 409, 409, 409, 409, 409]);
      const { runId, statusUrl } = started[0]?.body ?? {};
      for (const refused of answers.filter((answer) => answer.status === 409)) {
        expect(refused.body).toMatchObject({ code: 409, runId, statusUrl });
      }
      expect(await db.prisma.monthEndRun.count()).toBe(1);
      expect(await waitForMonthEndRun(boss, statusUrl)).toMatchObject({
        id: runId,
        outcome: 'succeeded',
        receiptCount: 4,
      });
    } finally {
      await small.close();
    }
  });

  // Another start at the same moment holds the start lock (as one does until its row commits), and a run
  // started beside it has its row in and has ended. Either the lock is freed before this start's turn
  // (the other run, of a few users, ends in milliseconds), or it stays taken longer than this start tries
  // for it (50 ms at a time for 10 s): one stuck before its commit. Both answers name the run.
  for (const { name, isLockFreedInTime } of [
    {
      isLockFreedInTime: true,
      name: 'names a run started at the same moment that ended before this start had its turn, rather than running again',
    },
    {
      isLockFreedInTime: false,
      name: 'names the run made meanwhile when its start is still refused after its 10 s of tries, as the other 409s do',
    },
  ]) {
    it(name, async () => {
      await buildUnbilledUsage();
      const token = await csrfTokenOf(admin, '/admin/receipts');
      const other = await db.pool.connect();
      try {
        await other.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEndStart]);
        const second = startBehindTheStartLock(token);
        await hasTriedForTheStartLock(other);
        const ran = await recordRunFinishedMeanwhile();
        if (isLockFreedInTime) await other.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEYS.monthEndStart]);
        const answer = await second;
        expect(answer.status, answer.text.slice(0, 300)).toBe(409);
        expect(answer.body).toMatchObject({ code: 409, runId: ran.id, statusUrl: `/admin/month-end/${ran.id}` });
        expect(answer.body.error).toMatch(
          /^A month-end run started at the same moment \(by boss at .+\) has already finished; see its page\.$/,
        );
        expect(await db.prisma.monthEndRun.count()).toBe(1);
        expect(await db.prisma.receipt.count()).toBe(0);
      } finally {
        await other.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
        other.release();
      }
    });
  }

  it('answers a JSON client with 202, the run id and its status URL', async () => {
    await buildUnbilledUsage();
    const started = await startAsJson('2025-08-31');
    expect(started.status, started.text.slice(0, 300)).toBe(202);
    const { runId, statusUrl } = started.body;
    expect(statusUrl).toBe(`/admin/month-end/${runId}`);
    expect(started.headers.location).toBe(statusUrl);
    expect(await waitForMonthEndRun(admin, statusUrl)).toMatchObject({
      id: runId,
      outcome: 'succeeded',
      receiptCount: 4,
    });
  });

  it('links a running run to the receipts made so far, with no count the page cannot keep up to date', async () => {
    const row = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2025-08-31T00:00:00Z'),
        startedBy: 'boss',
        startedAt: new Date('2025-09-20T04:30:00Z'),
        usersTotal: 10,
        usersDone: 0,
      },
    });
    const holder = await db.pool.connect();
    try {
      // Its process holds the lock: the run goes on, and its first receipts are still to come.
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
      const page = await html(`/admin/month-end/${row.id}`).expect(200);
      expect(page.text).toContain('<script src="/static/js/month-end-wait.js" defer></script>');
      expect(page.text).toContain(
        `<span data-run="receipts">0</span><span data-run="no-charge"></span>\n      · <a href="/admin/receipts?run=${row.id}">See the receipts it has made so far</a>`,
      );
      expect(page.text).not.toMatch(/See the (\d[\d,]* )?receipts? it made/);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
  });

  it('refuses new rates and another default tier while a run bills (409 naming it), which would bill one month at two prices; sets them once it has ended', async () => {
    const row = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date('2025-08-31T00:00:00Z'),
        startedBy: 'boss',
        startedAt: new Date('2025-09-20T04:30:00Z'),
        usersTotal: 10,
        usersDone: 4,
      },
    });
    const rateRows = () => db.prisma.pricingRate.count();
    const rateAudits = () => db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });
    const [ratesBefore, auditsBefore] = [await rateRows(), await rateAudits()];
    const setMuRates = async (accept: string) =>
      admin
        .post('/admin/rates')
        .set('Accept', accept)
        .type('form')
        .send({
          type: 'mu',
          cpu: '0.70',
          gpu: '12.00',
          mem: '0.05',
          csrf_token: await csrfTokenOf(admin, '/admin/rates'),
        });
    const message =
      `Rates of mu not changed: Month-end run #${row.id} (up to 2025-08-31, started by boss at 2025-09-20 11:30) is ` +
      'billing now, and rates changed during it would bill the users it has already billed at the old rates and the ' +
      `others at the new ones. Set them once it has finished (its page, /admin/month-end/${row.id}, says when).`;
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
      const refused = await setMuRates('application/json');
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual({
        error: message,
        code: 409,
        runId: row.id,
        statusUrl: `/admin/month-end/${row.id}`,
      });
      const page = await setMuRates('text/html');
      expect(page.status).toBe(409);
      expect(page.text).toContain(
        `<div class="alert error" role="alert" id="rates-error-mu" tabindex="-1" autofocus>${message}</div>`,
      );
      // The form keeps the rates typed, to send again once the run has ended.
      expect(page.text).toMatch(/<input id="cpu-mu" name="cpu"[^>]* value="0.70"/);
      expect([await rateRows(), await rateAudits()]).toEqual([ratesBefore, auditsBefore]);

      // Another default tier would split the default tier's users between two prices the same way.
      const makeGovDefault = async (accept: string) =>
        admin
          .post('/admin/rates/default')
          .set('Accept', accept)
          .type('form')
          .send({ type: 'gov', csrf_token: await csrfTokenOf(admin, '/admin/rates') });
      const defaultRefusal =
        `gov not made the default tier: Month-end run #${row.id} (up to 2025-08-31, started by boss at 2025-09-20 11:30) ` +
        "is billing now, and the users of the default tier it has already billed would be at mu's rates and the others " +
        `at gov's. Make gov the default once it has finished (its page, /admin/month-end/${row.id}, says when).`;
      const notDefault = await makeGovDefault('application/json');
      expect(notDefault.status, notDefault.text).toBe(409);
      expect(notDefault.body).toEqual({
        error: defaultRefusal,
        code: 409,
        runId: row.id,
        statusUrl: `/admin/month-end/${row.id}`,
      });
      const defaultPage = await makeGovDefault('text/html');
      expect(defaultPage.status).toBe(409);
      expect(defaultPage.text).toContain(`${defaultRefusal.replaceAll("'", '&#39;')}</div>`);
      expect(defaultPage.text).not.toContain('Default tier not changed.');
      expect((await db.prisma.pricingTier.findFirstOrThrow({ where: { isDefault: true } })).name).toBe('mu');
      expect(await db.prisma.auditLog.count({ where: { action: 'pricing.tier.default' } })).toBe(0);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    await db.prisma.monthEndRun.update({ where: { id: row.id }, data: { outcome: 'succeeded', finishedAt: now() } });
    const set = await setMuRates('application/json');
    expect(set.status, set.text).toBe(200);
    expect([await rateRows(), await rateAudits()]).toEqual([ratesBefore + 1, auditsBefore + 1]);
  });

  it('shows a running run whose lock is free as interrupted, saying that running it again is safe', async () => {
    const id = await buildAbandonedRun();
    const holder = await db.pool.connect();
    try {
      // Another process's run holding the lock is still running, whatever its row says.
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
      expect((await json(`/admin/month-end/${id}`).expect(200)).body.outcome).toBe('running');
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    const shown = await json(`/admin/month-end/${id}`).expect(200);
    expect(shown.body).toMatchObject({
      outcome: 'interrupted',
      startedBy: 'carol',
      usersTotal: 10,
      usersDone: 3,
      receiptCount: 3,
      finishedAt: expect.any(String),
      error:
        'Interrupted: the process running it stopped before it finished. What it billed stays billed; running it ' +
        'again for the same day is safe and bills the rest (it bills only unbilled jobs).',
    });
    expect(shown.body.message).toMatch(/^Interrupted: .* So far: Month-end run up to 2025-08-31: 3 receipts created/);
    const page = await html(`/admin/month-end/${id}`).expect(200);
    expect(page.text).not.toContain('http-equiv="refresh"');
    expect(page.text).toContain('<div class="alert warning" role="status">Interrupted: the process running it stopped');
    const billing = await html('/admin/receipts').expect(200);
    expect(billing.text).not.toContain('id="month-end-running"');
    expect(billing.text).toContain(
      `Last run: <a href="/admin/month-end/${id}" aria-label="Month-end run #${id}">#${id}</a>`,
    );
  });

  it('marks a run left running by a dead process as interrupted when the next run starts, and bills', async () => {
    const abandoned = await buildAbandonedRun();
    await buildUnbilledUsage();
    const started = await startAsJson('2025-08-31');
    expect(started.status).toBe(202);
    expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: abandoned } })).toMatchObject({
      outcome: 'interrupted',
      error: expect.stringContaining('running it again for the same day is safe'),
    });
    expect(await waitForMonthEndRun(admin, started.body.statusUrl)).toMatchObject({
      outcome: 'succeeded',
      receiptCount: 4,
    });
  });

  it('answers an unknown run with 404 and a malformed id with 400, and only to admins', async () => {
    expect((await json('/admin/month-end/999999')).body).toEqual({
      error: 'Month-end run #999999 was not found.',
      code: 404,
    });
    expect((await json('/admin/month-end/abc')).status).toBe(400);
    const id = await buildAbandonedRun();
    expect((await alice.get(`/admin/month-end/${id}`).set('Accept', 'application/json')).status).toBe(403);
  });
});

describe('the list of month-end runs', () => {
  /** A finished run's row, as a run writes it when it ends. */
  async function buildFinishedRun(billedThrough: string, receiptCount: number, total: string) {
    const row = await db.prisma.monthEndRun.create({
      data: {
        billedThrough: new Date(`${billedThrough}T00:00:00Z`),
        startedBy: 'boss',
        startedAt: new Date(`${billedThrough}T20:00:00Z`),
        finishedAt: new Date(`${billedThrough}T20:01:00Z`),
        outcome: 'succeeded',
        usersTotal: receiptCount,
        usersDone: receiptCount,
        receiptCount,
        totals: [{ currency: 'THB', total }],
      },
    });
    return row.id;
  }

  it('lists every run newest first, each linked to its page, and the run pages and billing link to it', async () => {
    expect((await html('/admin/month-end').expect(200)).text).toContain('No month-end run yet');
    const july = await buildFinishedRun('2025-07-31', 12, '1234.5');
    const august = await buildFinishedRun('2025-08-31', 3, '3.6');

    const page = await html('/admin/month-end').expect(200);
    expect(page.text).toContain('<h1>Month-end runs</h1>');
    const augustAt = page.text.indexOf(
      `<a href="/admin/month-end/${august}" aria-label="Month-end run #${august}">#${august}</a>`,
    );
    const julyAt = page.text.indexOf(
      `<a href="/admin/month-end/${july}" aria-label="Month-end run #${july}">#${july}</a>`,
    );
    expect(augustAt).toBeGreaterThan(0);
    expect(julyAt).toBeGreaterThan(augustAt);
    expect(page.text).toContain('1,234.50 THB');
    expect(page.text).toContain('<span class="badge succeeded">succeeded</span>');

    const listed = await json('/admin/month-end').expect(200);
    expect(listed.body).toMatchObject({ page: 1, pageCount: 1, count: 2 });
    expect(listed.body.runs.map((run: { id: number }) => run.id)).toEqual([august, july]);
    expect(listed.body.runs[1]).toMatchObject({
      before: '2025-07-31',
      outcome: 'succeeded',
      receiptCount: 12,
      totals: [{ currency: 'THB', total: '1234.50' }],
      url: `/admin/month-end/${july}`,
    });

    expect((await html(`/admin/month-end/${july}`).expect(200)).text).toContain(
      '<a href="/admin/month-end">All month-end runs</a>',
    );
    expect((await html('/admin/receipts').expect(200)).text).toContain(
      '<a href="/admin/month-end">All month-end runs</a>',
    );
  });

  it('shows a run left running by a dead process as interrupted', async () => {
    const id = await buildAbandonedRun();
    const listed = await json('/admin/month-end').expect(200);
    expect(listed.body.runs).toEqual([expect.objectContaining({ id, outcome: 'interrupted' })]);
  });

  it('pages by 50, refuses a page past the last or a bad page clearly, and answers only admins', async () => {
    for (let month = 0; month < 51; month += 1) {
      await buildFinishedRun(new Date(Date.UTC(2020, month + 1, 0)).toISOString().slice(0, 10), 1, '1');
    }
    const first = await json('/admin/month-end').expect(200);
    expect(first.body).toMatchObject({ page: 1, pageCount: 2, count: 51 });
    expect(first.body.runs).toHaveLength(50);
    const second = await json('/admin/month-end?page=2').expect(200);
    expect(second.body.runs.map((run: { before: string }) => run.before)).toEqual(['2020-01-31']);
    // The page links the runs older than its last by that run's place (a run started meanwhile moves no row).
    expect((await html('/admin/month-end').expect(200)).text).toMatch(
      /<a href="\/admin\/month-end\?older=[A-Za-z0-9_-]+" rel="next">Older<span class="visually-hidden"> runs<\/span>/,
    );
    expect(first.body.olderUrl).toMatch(/^\/admin\/month-end\?older=[A-Za-z0-9_-]+$/);

    expect((await json('/admin/month-end?page=3')).body).toEqual({
      error: 'There are 51 month-end runs on 2 pages; there is no page 3.',
      code: 404,
    });
    const bad = await json('/admin/month-end?page=x');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^page: /);
    expect((await alice.get('/admin/month-end').set('Accept', 'application/json')).status).toBe(403);
  });
});

/** A logger whose lines a test reads back. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

describe('month-end runs left running, at start-up', () => {
  const STARTUP = new Date('2025-09-21T01:00:00Z');

  it('marks a running run interrupted when no session holds the month-end lock, and logs it', async () => {
    const id = await buildAbandonedRun();
    const { logger, lines } = capturingLogger();

    expect(await interruptAbandonedMonthEndRuns({ db, logger, now: () => STARTUP })).toEqual([id]);
    expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id } })).toMatchObject({
      outcome: 'interrupted',
      finishedAt: STARTUP,
      usersDone: 3,
      receiptCount: 3,
      error:
        'Interrupted: the process running it stopped before it finished. What it billed stays billed; running it ' +
        'again for the same day is safe and bills the rest (it bills only unbilled jobs).',
    });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        runIds: [id],
        msg: `marked month-end run #${id} interrupted: its process stopped before it finished`,
      }),
    );
    // Run again (another instance starting), it finds nothing left to mark.
    expect(await interruptAbandonedMonthEndRuns({ db, logger, now: () => STARTUP })).toEqual([]);
  });

  it('leaves a running run alone while another session holds the month-end lock', async () => {
    const id = await buildAbandonedRun();
    const { logger, lines } = capturingLogger();
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
      expect(await interruptAbandonedMonthEndRuns({ db, logger, now: () => STARTUP })).toEqual([]);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
    expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id } })).toMatchObject({
      outcome: 'running',
      finishedAt: null,
      error: null,
    });
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  });

  it('are marked interrupted by the server as it starts, without anyone opening their page', async () => {
    const id = await buildAbandonedRun();
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: db.url,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'warn',
    });
    try {
      const marked = `marked month-end run #${id} interrupted`;
      for (let poll = 0; poll < 200 && !server.output().includes(marked); poll++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(server.output()).toContain(marked);
      expect(await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id } })).toMatchObject({
        outcome: 'interrupted',
        error: expect.stringContaining('running it again for the same day is safe'),
      });
    } finally {
      await server.stop();
    }
  }, 90_000);
});

describe('a month-end run when the server process gets SIGTERM', () => {
  /**
   * A server of its own (with `env`) running a month-end run started over HTTP, whose two users
   * in flight wait at their tier on a lock that `stall` holds, as receipts of many jobs keep them
   * busy. The caller ends `stall` and the server.
   */
  async function startRunHeldInFlight(env: Record<string, string> = {}) {
    const port = await findFreePort();
    const server = await spawnServer({
      DATABASE_URL: db.url,
      PORT: String(port),
      WEB_CONCURRENCY: '1',
      DEMO_SEED: '0',
      INGEST_ENABLED: '0',
      LOG_LEVEL: 'warn',
      ...env,
    });
    const base = `http://127.0.0.1:${port}`;
    const stall = await db.pool.connect();
    try {
      const cookie = await signInOverHttp(base, 'boss');
      const page = await fetch(`${base}/admin/receipts`, { headers: { accept: 'text/html', cookie } });
      const token = /name="csrf_token" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
      await stall.query('BEGIN');
      await stall.query('LOCK TABLE tier_overrides IN ACCESS EXCLUSIVE MODE');
      const started = await fetch(`${base}/admin/month-end`, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrftoken': token, cookie },
        body: JSON.stringify({ before: '2025-08-31' }),
      });
      expect(started.status, server.output()).toBe(202);
      const { runId } = (await started.json()) as { runId: number };
      expect(await sessionsWaitingForLocks(db.pool, 5_000, 2)).toBe(2);
      return { server, stall, runId };
    } catch (error) {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      await server.stop();
      throw error;
    }
  }

  it('bills the users in flight, records the run interrupted, and exits 0', async () => {
    await buildUnbilledUsage();
    const { server, stall } = await startRunHeldInFlight();
    try {
      server.process.kill('SIGTERM');
      const hasExitedEarly = await Promise.race([
        server.exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      ]);
      expect(hasExitedEarly, `the process left the run mid-way:\n${server.output()}`).toBe(false);
      await stall.query('COMMIT');
      expect(await server.exited, server.output()).toBe(0);
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      if (server.process.exitCode === null) await server.stop();
    }
    const run = await db.prisma.monthEndRun.findFirstOrThrow();
    expect(run).toMatchObject({ outcome: 'interrupted', usersTotal: 4, usersDone: 2, receiptCount: 2 });
    expect(run.error).toMatch(
      /^Interrupted: the app was stopped during the run, after 2 of 4 users\. .*running it again/,
    );
    expect(await db.prisma.receipt.count()).toBe(2);
    // Nothing holds the lock any more: the next run bills the rest.
    const next = await startAsJson('2025-08-31');
    expect(next.status).toBe(202);
    expect(await waitForMonthEndRun(admin, next.body.statusUrl)).toMatchObject({ receiptCount: 2 });
    expect(await db.prisma.receipt.count()).toBe(4);
  }, 90_000);

  it('stops waiting for the users in flight after SHUTDOWN_TIMEOUT_MS, records the run interrupted, and exits 0', async () => {
    await buildUnbilledUsage();
    const lastAuditBefore = (await db.prisma.auditLog.aggregate({ _max: { id: true } }))._max.id ?? 0n;
    // The test holds the users in flight for longer than the shutdown waits.
    const { server, stall, runId } = await startRunHeldInFlight({ SHUTDOWN_TIMEOUT_MS: '300' });
    try {
      server.process.kill('SIGTERM');
      // It exits while its users in flight still wait: the test holds the lock until after.
      expect(await server.exited, server.output()).toBe(0);
      expect(server.output()).toContain(`shutdown timed out waiting for month-end run #${runId}`);
    } finally {
      await stall.query('ROLLBACK').catch(() => undefined);
      stall.release();
      if (server.process.exitCode === null) server.process.kill('SIGKILL');
    }
    const run = await db.prisma.monthEndRun.findUniqueOrThrow({ where: { id: runId } });
    expect(run).toMatchObject({ outcome: 'interrupted', usersTotal: 4, usersDone: 0, receiptCount: 0 });
    expect(run.error).toMatch(
      /^Interrupted: the app was stopped during the run, after 0 of 4 users; .*running it again/,
    );
    // The users in flight rolled back with their connections, receipt and audit entry alike.
    expect(await db.prisma.receipt.count()).toBe(0);
    expect(await db.prisma.auditLog.count({ where: { id: { gt: lastAuditBefore }, action: 'receipt.create' } })).toBe(
      0,
    );
    // Nothing holds the lock any more: the next run bills everyone.
    const next = await startAsJson('2025-08-31');
    expect(next.status).toBe(202);
    expect(await waitForMonthEndRun(admin, next.body.statusUrl)).toMatchObject({ receiptCount: 4 });
  }, 90_000);
});
