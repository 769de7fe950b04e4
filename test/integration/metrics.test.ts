import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_CONTENT_TYPE, METRICS_THROUGH_PROXY } from '../../src/modules/metrics/metrics.routes.js';
import { buildReceiptRow } from '../support/billing-factories.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** The value of one exposed sample, e.g. `http_requests_total{method="GET",...}`; undefined when absent. */
function sampleOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('answers in the Prometheus text format with the pre-warmed series the dashboards query', async () => {
    const response = await request(buildTestApp(db)).get('/metrics').expect(200);
    expect(response.headers['content-type']).toBe(METRICS_CONTENT_TYPE);
    for (const series of [
      'auth_login_failure_total{reason="bad_credentials"}',
      'auth_login_failure_total{reason="disabled"}',
      'auth_login_failure_total{reason="locked"}',
      'csv_export_refused_total{kind="my_usage",reason="user_limit"}',
      'csv_export_refused_total{kind="my_usage",reason="busy"}',
      'csv_export_refused_total{kind="admin_paid",reason="busy"}',
      'csv_export_refused_total{kind="audit",reason="user_limit"}',
      'billing_receipt_created_total{scope="user"}',
      'billing_receipt_created_total{scope="admin"}',
      'billing_receipt_marked_paid_total{actor_type="admin"}',
      'csv_download_total{kind="admin_paid"}',
      'csv_download_total{kind="admin_receipts"}',
      'csv_download_total{kind="my_usage"}',
      'csv_download_total{kind="user_usage"}',
      'csv_download_total{kind="audit"}',
      'csv_download_total{kind="receipt_items"}',
      'payments_webhook_events_total{provider="dummy",event="payment.succeeded",outcome="ok"}',
    ]) {
      expect(sampleOf(response.text, series), series).toBe(0);
    }
    // No verdict before a verification has finished: not "intact" (AuditChainBroken keeps the last one).
    expect(sampleOf(response.text, 'audit_chain_ok')).toBeUndefined();
  });

  it('has the ingestion series the dashboard queries at 0 before the first run: each result, and each outcome of each configured source', async () => {
    const unconfigured = (await request(buildTestApp(db)).get('/metrics').expect(200)).text;
    for (const result of ['inserted', 'updated', 'unchanged', 'skipped']) {
      expect(sampleOf(unconfigured, `slurm_ingest_jobs_total{result="${result}"}`), result).toBe(0);
    }
    // Without a source every run fails, and a failed run has no source.
    expect(sampleOf(unconfigured, 'slurm_ingest_runs_total{source="none",outcome="failed"}')).toBe(0);
    expect(unconfigured).not.toMatch(/slurm_ingest_runs_total\{source="(slurmrestd|sacct|file)"/);

    const env = { SACCT_PATH: '/usr/bin/sacct', FALLBACK_CSV: 'test/fixtures/slurm/22.05/final/sacct-steps-extra.psv' };
    const configured = (await request(buildTestApp(db, { env })).get('/metrics').expect(200)).text;
    for (const series of [
      'slurm_ingest_runs_total{source="sacct",outcome="success"}',
      'slurm_ingest_runs_total{source="sacct",outcome="partial"}',
      'slurm_ingest_runs_total{source="file",outcome="success"}',
      'slurm_ingest_runs_total{source="file",outcome="partial"}',
      'slurm_ingest_runs_total{source="none",outcome="failed"}',
    ]) {
      expect(sampleOf(configured, series), series).toBe(0);
    }
    expect(configured).not.toContain('slurm_ingest_runs_total{source="slurmrestd"');
  });

  it('names the payment provider and pre-warms its webhook counter, so NoWebhooks watches it', async () => {
    const text = (
      await request(buildTestApp(db, { env: { PAYMENT_PROVIDER: 'dummy' } }))
        .get('/metrics')
        .expect(200)
    ).text;
    expect(sampleOf(text, 'payments_provider_info{provider="dummy"}')).toBe(1);
    expect(
      sampleOf(text, 'payments_webhook_events_total{provider="dummy",event="payment.succeeded",outcome="ok"}'),
    ).toBe(0);
  });

  it('has every webhook outcome of the configured provider at 0, so the first of each shows in rate()', async () => {
    // A rotated webhook secret shows as bad_signature; counted from nothing, its first deliveries
    // were invisible to rate() and increase() until the second one.
    const text = (
      await request(buildTestApp(db, { env: { PAYMENT_PROVIDER: 'dummy' } }))
        .get('/metrics')
        .expect(200)
    ).text;
    for (const [event, outcome] of [
      ['other', 'bad_signature'],
      ['other', 'error'],
      ['other', 'ignored'],
      ['payment.succeeded', 'mismatch'],
      ['payment.succeeded', 'review'],
      ['payment.succeeded', 'unknown_payment'],
      ['payment.succeeded', 'duplicate'],
      ['payment.succeeded', 'error'],
      ['payment.failed', 'ok'],
      ['payment.canceled', 'ok'],
    ]) {
      const series = `payments_webhook_events_total{provider="dummy",event="${event}",outcome="${outcome}"}`;
      expect(sampleOf(text, series), series).toBe(0);
    }
    expect(sampleOf(text, 'billing_receipt_marked_paid_total{actor_type="provider"}')).toBe(0);
    // Only outcomes that can happen: a body that is no event is never "ok".
    expect(text).not.toContain('event="other",outcome="ok"');
  });

  it('has no payment provider and no webhook series without online payment (PAYMENT_PROVIDER=none)', async () => {
    const app = buildTestApp(db, { env: { PAYMENT_PROVIDER: 'none' } });
    await request(app).post('/payments/webhook').type('json').send('{}').expect(404);
    const text = (await request(app).get('/metrics').expect(200)).text;
    // NoWebhooks fires only for a provider named in payments_provider_info: none here.
    expect(text.split('\n').filter((line) => /^payments_(provider_info|webhook_events_total)\{/.test(line))).toEqual(
      [],
    );
  });

  it('reads when the oldest checkout still open was opened, per provider, at each scrape (for NoWebhooks)', async () => {
    // A checkout open for hours with no webhook at all is what a provider that cannot reach the
    // webhook endpoint looks like; a fresh start with nothing open is not.
    await db.pool.query('TRUNCATE payments RESTART IDENTITY CASCADE');
    const app = buildTestApp(db, { env: { PAYMENT_PROVIDER: 'dummy' } });
    const scrape = async () => (await request(app).get('/metrics').expect(200)).text;
    const oldest = 'payments_oldest_open_checkout_timestamp_seconds{provider="dummy"}';
    expect(await scrape()).not.toContain('payments_oldest_open_checkout_timestamp_seconds{');

    const receipt = await buildReceiptRow(db, 'checkoutgauge', {
      billedThrough: new Date('2026-11-30'),
      total: '10.00',
    });
    const payment = (
      tag: string,
      status: 'pending' | 'succeeded',
      createdAt: string,
      externalPaymentId: string | null,
    ) =>
      db.prisma.payment.create({
        data: {
          receiptId: receipt.id,
          provider: 'dummy',
          status,
          amountMinor: 1000n,
          currency: 'THB',
          externalPaymentId,
          idempotencyKey: `gauge-${tag}`,
          createdAt: new Date(createdAt),
        },
      });
    await payment('paid', 'succeeded', '2026-12-01T08:00:00Z', 'ext-paid');
    // A start that never got its checkout is no checkout the provider could report on.
    await payment('no-checkout', 'pending', '2026-12-01T09:00:00Z', null);
    await payment('open-old', 'pending', '2026-12-02T10:00:00Z', 'ext-old');
    await payment('open-new', 'pending', '2026-12-03T10:00:00Z', 'ext-new');
    expect(sampleOf(await scrape(), oldest)).toBe(Date.parse('2026-12-02T10:00:00Z') / 1000);

    await db.pool.query(`UPDATE payments SET status = 'canceled' WHERE status = 'pending'`);
    expect(await scrape()).not.toContain('payments_oldest_open_checkout_timestamp_seconds{');
  });

  it('refreshes hpc_ready and the pool gauges at scrape time, without anyone calling /readyz', async () => {
    const text = (await request(buildTestApp(db)).get('/metrics').expect(200)).text;
    expect(sampleOf(text, 'hpc_ready')).toBe(1);
    expect(sampleOf(text, 'db_pool_connections')).toBeGreaterThanOrEqual(1);
    expect(sampleOf(text, 'db_pool_idle_connections')).toBeGreaterThanOrEqual(0);
    expect(sampleOf(text, 'db_pool_waiting_requests')).toBe(0);
  });

  it('reads when ingestion last succeeded from the database at each scrape, whichever process ran it', async () => {
    // INGEST_ENABLED=false and `npm run ingest` from cron (docs/ingestion.md), or another replica
    // leading: this process runs nothing itself, and its gauge at 0 kept IngestionStale firing.
    await db.pool.query('TRUNCATE ingestion_runs RESTART IDENTITY');
    const app = buildTestApp(db, { env: { INGEST_ENABLED: 'false' } });
    const scrape = async () =>
      sampleOf((await request(app).get('/metrics').expect(200)).text, 'slurm_ingest_last_success_timestamp_seconds');
    expect(await scrape()).toBe(0);
    const run = (outcome: 'success' | 'partial' | 'failed', finishedAt: string) =>
      db.prisma.ingestionRun.create({
        data: {
          // As `npm run ingest` from cron records its runs (a backfill of past days reads no new job,
          // and does not count: ingestion.service.test.ts).
          trigger: 'schedule',
          outcome,
          windowStart: new Date('2026-12-02T00:00:00Z'),
          windowEnd: new Date(finishedAt),
          startedAt: new Date(finishedAt),
          finishedAt: new Date(finishedAt),
        },
      });
    await run('success', '2026-12-03T01:00:00Z');
    expect(await scrape()).toBe(Date.parse('2026-12-03T01:00:00Z') / 1000);
    await run('partial', '2026-12-03T01:15:00Z');
    await run('failed', '2026-12-03T01:30:00Z');
    // A partial run stored what it could; a failed one stored nothing and does not count.
    expect(await scrape()).toBe(Date.parse('2026-12-03T01:15:00Z') / 1000);
  });

  it('exports when the file that answered the newest run was last written, and no series once another source answers', async () => {
    // A FALLBACK_CSV that nothing refreshes "succeeds" every run (nothing new in it), so the last
    // success stays fresh and IngestionStale never fires: the file's age is what says jobs stopped coming.
    await db.pool.query('TRUNCATE ingestion_runs RESTART IDENTITY');
    const app = buildTestApp(db, { env: { INGEST_ENABLED: 'false' } });
    const series = 'slurm_ingest_file_modified_timestamp_seconds{source="file"}';
    const scrape = async () => sampleOf((await request(app).get('/metrics').expect(200)).text, series);
    expect(await scrape()).toBeUndefined();
    const run = (source: string, finishedAt: string, notes: Record<string, string>) =>
      db.prisma.ingestionRun.create({
        data: {
          trigger: 'schedule',
          outcome: 'success',
          source,
          sourceNotes: notes,
          windowStart: new Date('2026-12-02T00:00:00Z'),
          windowEnd: new Date(finishedAt),
          startedAt: new Date(finishedAt),
          finishedAt: new Date(finishedAt),
        },
      });
    const writtenAt = Date.parse('2026-12-02T06:00:00Z');
    await run('file', '2026-12-03T01:00:00Z', {
      file: 'answered: file unchanged since run #1, nothing new',
      fileFingerprint: `4096:${writtenAt}`,
    });
    expect(await scrape()).toBe(writtenAt / 1000);
    // slurmrestd answers again: the file (a fallback now idle) says nothing of how fresh the jobs are.
    await run('slurmrestd', '2026-12-03T01:01:00Z', {
      slurmrestd: 'answered',
      file: 'not tried (slurmrestd answered)',
    });
    const text = (await request(app).get('/metrics').expect(200)).text;
    expect(text).not.toMatch(/^slurm_ingest_file_modified_timestamp_seconds/m);
  });

  it('exports whether the fallbacks the newest run did not need would work, as its notes say; no series where unchecked', async () => {
    // While slurmrestd answered, an sacct fallback that would fail (an SACCT_PATH that cannot be run) showed
    // only in the runs' notes, and was found in the outage it was there for.
    await db.pool.query('TRUNCATE ingestion_runs RESTART IDENTITY');
    const app = buildTestApp(db, { env: { INGEST_ENABLED: 'false' } });
    const scrape = async () => (await request(app).get('/metrics').expect(200)).text;
    expect(await scrape()).not.toMatch(/^slurm_ingest_fallback_setup_ok/m);
    const run = (notes: Record<string, string>, finishedAt: string) =>
      db.prisma.ingestionRun.create({
        data: {
          trigger: 'schedule',
          outcome: 'success',
          source: 'slurmrestd',
          sourceNotes: { slurmrestd: 'answered', ...notes },
          windowStart: new Date('2026-12-02T00:00:00Z'),
          windowEnd: new Date(finishedAt),
          startedAt: new Date(finishedAt),
          finishedAt: new Date(finishedAt),
        },
      });
    await run(
      {
        sacct: 'not tried (slurmrestd answered), but would fail: SACCT_PATH /usr/bin/sacctt cannot be run (ENOENT)',
        file: 'not tried (slurmrestd answered), set-up checked: no problem found',
      },
      '2026-12-03T01:00:00Z',
    );
    const broken = await scrape();
    expect(sampleOf(broken, 'slurm_ingest_fallback_setup_ok{source="sacct"}')).toBe(0);
    expect(sampleOf(broken, 'slurm_ingest_fallback_setup_ok{source="file"}')).toBe(1);
    // Fixed, and a file no longer configured: sacct 1, no file series.
    await run(
      {
        sacct: 'not tried (slurmrestd answered), set-up checked: no problem found',
        file: 'not configured (FALLBACK_CSV unset)',
      },
      '2026-12-03T01:15:00Z',
    );
    const fixed = await scrape();
    expect(sampleOf(fixed, 'slurm_ingest_fallback_setup_ok{source="sacct"}')).toBe(1);
    expect(fixed).not.toMatch(/^slurm_ingest_fallback_setup_ok\{source="file"\}/m);
    // A check that could not be made says nothing either way.
    await run({ sacct: 'not tried (slurmrestd answered), set-up not checked: EMFILE' }, '2026-12-03T01:30:00Z');
    expect(await scrape()).not.toMatch(/^slurm_ingest_fallback_setup_ok/m);
  });

  it("exports when slurmrestd's JWT expires, read from SLURMRESTD_TOKEN or the token file at start; no series for a token that is no JWT or has no exp", async () => {
    // Nothing warned before the token expired: ingestion then failed (error 1007) and IngestionStale paged.
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const jwt = (claims: Record<string, unknown>) => `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.sig`;
    const exp = Date.parse('2027-03-01T10:00:00Z') / 1000;
    const series = 'slurm_ingest_token_expiry_timestamp_seconds{source="slurmrestd"}';
    const scrape = async (env: Record<string, string>) => {
      const app = buildTestApp(db, {
        env: { SLURMRESTD_URL: 'http://127.0.0.1:9', SLURMRESTD_USER: 'billing', ...env },
      });
      // The file is read once at start, asynchronously: the first scrapes may come before it.
      for (let attempt = 0; attempt < 50; attempt++) {
        const text = (await request(app).get('/metrics').expect(200)).text;
        if (sampleOf(text, series) !== undefined || attempt === 49) return text;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return '';
    };
    expect(sampleOf(await scrape({ SLURMRESTD_TOKEN: jwt({ exp, sun: 'billing' }) }), series)).toBe(exp);
    expect(sampleOf(await scrape({ SLURMRESTD_TOKEN: `SLURM_JWT=${jwt({ exp: exp + 60 })}` }), series)).toBe(exp + 60);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'token-expiry-'));
    const tokenFile = path.join(dir, 'slurm-jwt');
    writeFileSync(tokenFile, `SLURM_JWT=${jwt({ exp: exp + 120, sun: 'billing' })}\n`);
    expect(sampleOf(await scrape({ SLURMRESTD_TOKEN_FILE: tokenFile }), series)).toBe(exp + 120);
    rmSync(dir, { recursive: true });
    const noSeries: Record<string, string>[] = [
      { SLURMRESTD_TOKEN: 'not-a-jwt' },
      { SLURMRESTD_TOKEN: jwt({ sun: 'billing' }) },
      { SLURMRESTD_TOKEN_FILE: '/nonexistent/slurm-jwt' },
      // A process that does not run ingestion never re-reads the file: its reading would go stale.
      { SLURMRESTD_TOKEN: jwt({ exp }), INGEST_ENABLED: 'false' },
    ];
    for (const env of noSeries) {
      expect(await scrape(env), JSON.stringify(env)).not.toMatch(/^slurm_ingest_token_expiry_timestamp_seconds/m);
    }
  });

  it('labels requests by route template, puts every unknown path under one value, and does not count itself', async () => {
    const app = buildTestApp(db);
    await request(app).get('/healthz').expect(200);
    await request(app).get('/healthz').expect(200);
    await request(app).get('/wp-admin/setup-config.php').expect(404);
    await request(app).get('/random-8f3a2c').expect(404);
    await request(app).get('/metrics').expect(200);
    const text = (await request(app).get('/metrics').expect(200)).text;

    expect(sampleOf(text, 'http_requests_total{method="GET",endpoint="/healthz",status="200"}')).toBe(2);
    expect(sampleOf(text, 'http_requests_total{method="GET",endpoint="unmatched",status="404"}')).toBe(2);
    expect(sampleOf(text, 'http_request_duration_seconds_count{endpoint="/healthz",method="GET"}')).toBe(2);
    expect(sampleOf(text, 'http_request_duration_seconds_bucket{le="+Inf",endpoint="/healthz",method="GET"}')).toBe(2);
    expect(text).not.toContain('wp-admin');
    expect(text).not.toContain('random-8f3a2c');
    expect(text).not.toContain('endpoint="/metrics"');
  });

  it('counts a rates form refused before its route ran under before_route, as any other form', async () => {
    // The rates' JSON parser is registered for three paths at once; it must not lend the refusal
    // a label listing all three ("/formula,/admin/rates,/admin/rates/tiers").
    const app = buildTestApp(db);
    for (const path of ['/formula', '/admin/rates', '/admin/rates/tiers', '/admin/users']) {
      await request(app).post(path).set('Accept', 'application/json').send({ type: 'mu', cpu: '1' }).expect(403);
    }
    const text = (await request(app).get('/metrics').expect(200)).text;

    expect(sampleOf(text, 'http_requests_total{method="POST",endpoint="before_route",status="403"}')).toBe(4);
    expect(text).not.toMatch(/endpoint="[^"]*,[^"]*"/);
  });

  it('leaves out Node process metrics unless METRICS_PROCESS is on', async () => {
    const plain = (await request(buildTestApp(db)).get('/metrics').expect(200)).text;
    expect(plain).not.toContain('process_cpu_user_seconds_total');
    const withProcess = buildTestApp(db, { env: { METRICS_PROCESS: '1' } });
    expect((await request(withProcess).get('/metrics').expect(200)).text).toContain('process_cpu_user_seconds_total');
  });

  it('does not exist when METRICS_ENABLED is off', async () => {
    const app = buildTestApp(db, { env: { METRICS_ENABLED: '0' } });
    const response = await request(app).get('/metrics').expect(404);
    expect(response.text).not.toContain('http_requests_total');
  });

  describe('without METRICS_TOKEN, through a proxy', () => {
    // The production set-up of docs/operations.md (HOST=127.0.0.1, nginx's `location /` in front,
    // no token) kept the port off the network and served every visitor of the site its metrics
    // through the proxy: request volumes, sign-in failures, receipts and payments.
    it.each([
      ['X-Forwarded-For', '203.0.113.7'],
      ['Forwarded', 'for=203.0.113.7;proto=https'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Real-IP', '203.0.113.7'],
    ])('refuses a request relayed with %s, saying why and what to do', async (header, value) => {
      const response = await request(buildTestApp(db)).get('/metrics').set(header, value).expect(403);
      expect(response.text).not.toContain('http_requests_total');
      expect(response.body).toEqual({ error: METRICS_THROUGH_PROXY, code: 403 });
      expect(METRICS_THROUGH_PROXY).toContain('set METRICS_TOKEN');
    });

    it('still answers Prometheus scraping the app directly', async () => {
      expect((await request(buildTestApp(db)).get('/metrics').expect(200)).text).toContain('http_requests_total');
    });

    it('serves a relayed scrape that brings the token, once METRICS_TOKEN is set', async () => {
      const token = 'scrape-token-0123456789abcdef';
      const app = buildTestApp(db, { env: { METRICS_TOKEN: token } });
      const response = await request(app)
        .get('/metrics')
        .set('X-Forwarded-For', '10.0.0.5')
        .set('Authorization', `Bearer ${token}`)
        .expect(200);
      expect(response.text).toContain('http_requests_total');
    });
  });

  describe('with METRICS_TOKEN', () => {
    const token = 'scrape-token-0123456789abcdef';
    const app = () => buildTestApp(db, { env: { METRICS_TOKEN: token } });

    it('refuses a scrape without the bearer token', async () => {
      const response = await request(app()).get('/metrics').expect(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(response.body).toEqual({ error: 'A valid metrics token is required.', code: 401 });
    });

    it.each([
      ['a wrong token', `Bearer ${token.slice(0, -1)}x`],
      ['a longer token', `Bearer ${token}0`],
      ['another scheme', `Basic ${token}`],
      ['an empty bearer', 'Bearer '],
    ])('refuses %s', async (_case, header) => {
      const response = await request(app()).get('/metrics').set('Authorization', header).expect(401);
      expect(response.text).not.toContain('http_requests_total');
    });

    it('serves the scrape with the right token', async () => {
      const response = await request(app()).get('/metrics').set('Authorization', `Bearer ${token}`).expect(200);
      expect(response.text).toContain('http_requests_total');
    });
  });
});
