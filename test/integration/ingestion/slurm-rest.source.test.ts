import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSources } from '../../../src/modules/ingestion/ingestion.factory.js';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import {
  type JobSource,
  RunStoppedError,
  ShutdownStop,
  SourceConfigError,
  SourceUnavailableError,
} from '../../../src/modules/ingestion/job-source.js';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import {
  createSlurmRestSource,
  type SlurmRestSourceOptions,
} from '../../../src/modules/ingestion/slurm-rest.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const WINDOW = { start: new Date('2026-11-23T15:40:43Z'), end: new Date('2026-11-23T15:47:01Z') };

interface Exchange {
  status: number;
  body: string;
  delayMs?: number;
}

/** A local slurmrestd stand-in replaying recorded answers; `plan` decides the answer per request. */
function createReplayServer() {
  const requests: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  let plan: (url: string, count: number) => Exchange = () => ({ status: 404, body: '{}' });
  const handler: http.RequestListener = (req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    const answer = plan(req.url ?? '', requests.length);
    const send = () => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    };
    if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
    else send();
  };
  return {
    requests,
    handler,
    setPlan(next: typeof plan) {
      plan = next;
      requests.length = 0;
    },
  };
}

function replay(url: string): Exchange {
  if (url.startsWith('/openapi/v3')) return { status: 200, body: fixture('22.05/openapi-v3-paths.json') };
  const match = /^\/slurmdb\/(v0\.0\.\d+)\/jobs\?/.exec(url);
  if (!match) return { status: 404, body: '{"errors":[{"description":"Unable to find path"}]}' };
  const version = match[1] as string;
  const file =
    Number(version.slice(5)) >= 40 ? `schema/${version}-jobs.json` : `22.05/final/rest-db${version}-jobs.json`;
  return { status: 200, body: fixture(file) };
}

// What a real slurmrestd 22.05 answers for a path it does not serve (a newer API version).
const NOT_SERVED: Exchange = {
  status: 404,
  body: 'Unable find requested URL. Please view /openapi/v3 for API reference.',
};

/** A Slurm 22.05 slurmrestd: v0.0.36 to v0.0.38 only, as its OpenAPI document says. */
function slurm2205(url: string): Exchange {
  return /^\/slurmdb\/v0\.0\.(39|4\d)\//.test(url) ? NOT_SERVED : replay(url);
}

async function collect(iterable: AsyncIterable<SourceItem>): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const replayServer = createReplayServer();
let server: http.Server;
let baseUrl: string;

const sourceOptions = (overrides: Partial<SlurmRestSourceOptions> = {}): SlurmRestSourceOptions => ({
  url: baseUrl,
  user: 'billing',
  token: 'token-from-config',
  tokenFile: undefined,
  apiVersion: 'v0.0.38',
  caFile: undefined,
  timeZone: 'UTC',
  defaultCluster: 'lab',
  timeoutMs: 2000,
  maxAttempts: 3,
  retryBaseMs: 10,
  now: () => TEST_NOW,
  ...overrides,
});

/** A JWT that says neither whom it is for nor when it expires: a refusal of it gets the general advice. */
const JWT_WITHOUT_CLAIMS = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from('{}').toString('base64url')}.c2ln`;

/** The clock sourceOptions' sources write 22.05's relative query times against. */
const TEST_NOW = new Date('2026-12-05T12:00:00Z');

/**
 * A query time as slurmrestd reads it: relative to now (`now-900seconds`, what 22.05 is sent), a Unix
 * timestamp (v0.0.40 and later), or written in the zone of slurmrestd's process (UTC here).
 */
function timeOf(text: string | null, now = TEST_NOW): number {
  const relative = /^now(?:([+-])(\d+)seconds)?$/.exec(text ?? '');
  if (relative) return now.getTime() + (relative[1] === '-' ? -1 : 1) * Number(relative[2] ?? 0) * 1000;
  if (/^\d+$/.test(text ?? '')) return Number(text) * 1000;
  return Date.parse(`${text}Z`);
}

/** The window a jobs request asked for. */
function askedWindow(url: string, now = TEST_NOW): { start: number; end: number } {
  const query = new URL(url, 'http://slurmrestd').searchParams;
  return { start: timeOf(query.get('start_time'), now), end: timeOf(query.get('end_time'), now) };
}

beforeAll(async () => {
  server = http.createServer(replayServer.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('slurmrestd source against a replay of real answers', () => {
  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38', 'v0.0.40', 'v0.0.41', 'v0.0.42', 'v0.0.43', 'v0.0.44', 'v0.0.45'])(
    '%s: asks the accounting endpoint with times of no zone (22.05: relative to now; 23.11+: Unix timestamps) and the auth headers',
    async (version) => {
      replayServer.setPlan(replay);
      const items = await collect(createSlurmRestSource(sourceOptions({ apiVersion: version })).read(WINDOW));
      expect(items.length).toBeGreaterThanOrEqual(5);
      expect(items.every((item) => item.kind === 'job')).toBe(true);
      const [request] = replayServer.requests;
      // 22.05 parses a written time in its own process's zone, whatever APP_TZ is: it is asked
      // relative to now (seen accepted on the lab), 5 s more before the start. v0.0.40 and later take
      // Unix timestamps (they were sent the window written in APP_TZ).
      expect(request?.url).toBe(
        Number(version.slice(5)) <= 38
          ? `/slurmdb/${version}/jobs?start_time=now-1023562seconds&end_time=now-1023179seconds`
          : `/slurmdb/${version}/jobs?start_time=1795448443&end_time=1795448821`,
      );
      expect(request?.headers['x-slurm-user-name']).toBe('billing');
      expect(request?.headers['x-slurm-user-token']).toBe('token-from-config');
    },
  );

  it('finds the newest supported version in the OpenAPI document when none is configured', async () => {
    replayServer.setPlan(replay);
    const source = createSlurmRestSource(sourceOptions({ apiVersion: undefined }));
    await collect(source.read(WINDOW));
    expect(replayServer.requests.map((request) => request.url.split('?')[0])).toEqual([
      '/openapi/v3',
      '/slurmdb/v0.0.38/jobs',
    ]);
  });

  // The data_parser versions each release's slurmrestd serves (its RELEASE_NOTES: each release adds one
  // and removes the one deprecated a release earlier), as paths of its OpenAPI document.
  const slurmdbJobsPaths = (...minors: number[]) =>
    JSON.stringify({
      paths: Object.fromEntries(
        minors.flatMap((minor) => [
          [`/slurmdb/v0.0.${minor}/jobs/`, {}],
          [`/slurmdb/v0.0.${minor}/job/{job_id}`, {}],
          [`/slurm/v0.0.${minor}/jobs/`, {}],
        ]),
      ),
    });

  it.each([
    ['24.11', [40, 41, 42], 'v0.0.42'],
    ['25.05', [40, 41, 42, 43], 'v0.0.43'],
    ['25.11', [41, 42, 43, 44], 'v0.0.44'],
    ['26.05', [42, 43, 44, 45], 'v0.0.45'],
    // Slurm's master branch builds v0.0.43 to v0.0.46 (src/plugins/data_parser/Makefile.am): v0.0.46 is
    // not read yet, so the newest one this parser knows.
    ['26.11', [43, 44, 45, 46], 'v0.0.45'],
  ])('Slurm %s offers %j: auto reads the newest supported version, %s', async (_release, minors, expected) => {
    replayServer.setPlan((url) =>
      url.startsWith('/openapi/v3') ? { status: 200, body: slurmdbJobsPaths(...minors) } : replay(url),
    );
    const items = await collect(createSlurmRestSource(sourceOptions({ apiVersion: undefined })).read(WINDOW));
    expect(items.map((item) => item.kind === 'job' && item.job.jobKey).sort()).toEqual(['2', '3', '5', '6_1', '6_3']);
    expect(replayServer.requests.map((request) => request.url.split('?')[0])).toEqual([
      '/openapi/v3',
      `/slurmdb/${expected}/jobs`,
    ]);
  });

  it('filters one user locally (22.05 has no user filter on this endpoint)', async () => {
    replayServer.setPlan(replay);
    const items = await collect(createSlurmRestSource(sourceOptions()).read(WINDOW, { user: 'alice' }));
    expect(items.map((item) => item.kind === 'job' && item.job.user)).toEqual(expect.arrayContaining(['alice']));
    expect(items.every((item) => item.kind === 'job' && item.job.user === 'alice')).toBe(true);
  });

  it('reads the token from a token.env-style file on every request', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slurm-token-'));
    const tokenFile = path.join(dir, 'token.env');
    writeFileSync(tokenFile, 'SLURM_REST_URL=http://x\nSLURM_USER_NAME=billing\nSLURM_JWT=abc.def.ghi\n');
    replayServer.setPlan(replay);
    const source = createSlurmRestSource(sourceOptions({ token: undefined, tokenFile }));
    await collect(source.read(WINDOW));
    writeFileSync(tokenFile, 'rotated.token\n');
    await collect(source.read(WINDOW));
    expect(replayServer.requests.map((request) => request.headers['x-slurm-user-token'])).toEqual([
      'abc.def.ghi',
      'rotated.token',
    ]);
    rmSync(dir, { recursive: true });
  });

  it('tells onTokenRead each token it reads from the file (for its expiry gauge), and nothing per request of SLURMRESTD_TOKEN', async () => {
    // slurm_ingest_token_expiry_timestamp_seconds follows a rotated file from the next request that reads it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slurm-token-'));
    const tokenFile = path.join(dir, 'token.env');
    writeFileSync(tokenFile, 'SLURM_JWT=abc.def.ghi\n');
    replayServer.setPlan(replay);
    const seen: string[] = [];
    const source = createSlurmRestSource(
      sourceOptions({ token: undefined, tokenFile, onTokenRead: (token) => seen.push(token) }),
    );
    await collect(source.read(WINDOW));
    writeFileSync(tokenFile, 'rotated.token\n');
    await collect(source.read(WINDOW));
    expect(new Set(seen)).toEqual(new Set(['abc.def.ghi', 'rotated.token']));
    expect(seen.at(-1)).toBe('rotated.token');
    rmSync(dir, { recursive: true });
    // The setting cannot change while the app runs: read once at start (buildIngestionService), not per request.
    const fromSetting: string[] = [];
    await collect(
      createSlurmRestSource(sourceOptions({ onTokenRead: (token) => fromSetting.push(token) })).read(WINDOW),
    );
    expect(fromSetting).toEqual([]);
  });

  it("sends the JWT alone when SLURMRESTD_TOKEN is scontrol token's output (SLURM_JWT=...), as from a file", async () => {
    // Pasted whole into the setting, it used to be sent as it was: slurmrestd refused it (error 1007,
    // seen on the lab) and the run said to check SLURMRESTD_USER and the token.
    replayServer.setPlan(replay);
    await collect(createSlurmRestSource(sourceOptions({ token: 'SLURM_JWT=abc.def.ghi' })).read(WINDOW));
    await collect(createSlurmRestSource(sourceOptions({ token: 'export SLURM_JWT="abc.def.ghi"' })).read(WINDOW));
    expect(new Set(replayServer.requests.map((request) => request.headers['x-slurm-user-token']))).toEqual(
      new Set(['abc.def.ghi']),
    );
  });

  it('says SLURMRESTD_TOKEN_FILE holds no token when it is some other file, without asking slurmrestd', async () => {
    // The lab's token.env without its SLURM_JWT line (the file of another tool, a cut copy).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'slurm-token-'));
    const tokenFile = path.join(dir, 'token.env');
    writeFileSync(tokenFile, 'SLURM_REST_URL=http://127.0.0.1:6820\nSLURM_USER_NAME=billing\n');
    replayServer.setPlan(replay);
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: undefined, tokenFile })).read(WINDOW)),
    ).rejects.toThrow(
      new SourceConfigError(
        `SLURMRESTD_TOKEN_FILE ${tokenFile} holds no token: write the JWT alone in it, or scontrol token's SLURM_JWT=... line`,
      ),
    );
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: 'eyJh bGci\nOiJI' })).read(WINDOW)),
    ).rejects.toThrow(SourceConfigError);
    expect(replayServer.requests).toHaveLength(0);
    rmSync(dir, { recursive: true });
  });

  it("says SLURMRESTD_TOKEN is a file's path when it is one, without asking slurmrestd", async () => {
    // The token file's path put in SLURMRESTD_TOKEN was sent as the token: slurmrestd refused it (error
    // 1007, tried on the lab) and the run said only to check SLURMRESTD_USER and the token.
    replayServer.setPlan(replay);
    for (const token of ['/etc/hpc-billing/slurm-jwt', './slurm-jwt', '~/slurm-jwt']) {
      await expect(collect(createSlurmRestSource(sourceOptions({ token })).read(WINDOW))).rejects.toThrow(
        new SourceConfigError(
          `SLURMRESTD_TOKEN is ${token}, a file's path, not a token: set SLURMRESTD_TOKEN_FILE=${token} instead (and unset SLURMRESTD_TOKEN)`,
        ),
      );
    }
    expect(replayServer.requests).toHaveLength(0);
  });

  it('turns HTTP 401 into a configuration error without retrying', async () => {
    replayServer.setPlan(() => ({ status: 401, body: 'Authentication failure' }));
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: JWT_WITHOUT_CLAIMS })).read(WINDOW)),
    ).rejects.toThrow(
      new SourceConfigError('slurmrestd refused the credentials (HTTP 401); check SLURMRESTD_USER and the token'),
    );
    expect(replayServer.requests).toHaveLength(1);
  });

  it('turns the HTTP-200 "Protocol authentication error" answer into a configuration error', async () => {
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(
      /rejected the token \(error 1007: Protocol authentication error\)/,
    );
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])(
    '%s: the real 22.05 answer for a window with no job (error 9003 "Nothing found", `jobs: []`) is no jobs, not a failure',
    async (version) => {
      replayServer.setPlan(() => ({ status: 200, body: fixture(`22.05/rest-db${version}-nothing-found.json`) }));
      expect(await collect(createSlurmRestSource(sourceOptions({ apiVersion: version })).read(WINDOW))).toEqual([]);
    },
  );

  it('still fails on another error reported beside "Nothing found"', async () => {
    const answer = JSON.parse(fixture('22.05/rest-dbv0.0.38-nothing-found.json'));
    answer.errors.push({ description: 'Unable to query', error_number: 9000, error: 'failure', source: 'x' });
    replayServer.setPlan(() => ({ status: 200, body: JSON.stringify(answer) }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError('slurmrestd reported 1 error(s): 9000 Unable to query'),
    );
  });

  it('says when a rejected token had expired, read from its exp claim, in APP_TZ as pages give times', async () => {
    // scontrol token's default lifespan is 30 minutes: an expired token is the likely cause. Its expiry
    // was given in UTC (2025-11-24T16:00:00.000Z), every page's times in APP_TZ.
    const jwt = (claims: object) =>
      `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
    const inBangkok = { timeZone: 'Asia/Bangkok' };
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    const expired = jwt({ exp: 1_764_000_000, iat: 1_763_998_200, sun: 'billing' });
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: expired, ...inBangkok })).read(WINDOW)),
    ).rejects.toThrow(
      new SourceConfigError(
        'slurmrestd rejected the token (error 1007: Protocol authentication error); the token expired at ' +
          '2025-11-24 23:00 (Asia/Bangkok): issue a new one (docs/ingestion.md, "A JWT for slurmrestd")',
      ),
    );
    replayServer.setPlan(() => ({ status: 401, body: 'Authentication failure' }));
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: expired, ...inBangkok })).read(WINDOW)),
    ).rejects.toThrow(
      /^slurmrestd refused the credentials \(HTTP 401\); the token expired at 2025-11-24 23:00 \(Asia\/Bangkok\):/,
    );
    // In UTC, named as such.
    await expect(collect(createSlurmRestSource(sourceOptions({ token: expired })).read(WINDOW))).rejects.toThrow(
      /; the token expired at 2025-11-24 16:00 \(UTC\): issue a new one/,
    );
    // SLURMRESTD_USER's token that has not expired was refused for its signature (another cluster's
    // jwt_key, seen on the lab); it used to get the general advice, which a token not a JWT at all keeps.
    const current = jwt({ exp: 4_102_444_800, sun: 'billing' });
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    await expect(
      collect(createSlurmRestSource(sourceOptions({ token: current, ...inBangkok })).read(WINDOW)),
    ).rejects.toThrow(
      new SourceConfigError(
        "slurmrestd rejected the token (error 1007: Protocol authentication error); the token is billing's, as " +
          'SLURMRESTD_USER says, and has not expired (it expires at 2100-01-01 07:00 (Asia/Bangkok)), so slurmrestd refused ' +
          "its signature: was it issued on another cluster, or before this one's jwt_key changed? Issue a new one on " +
          'this cluster (scontrol token username=billing lifespan=7776000, 90 days; without lifespan= it lasts 30 minutes)',
      ),
    );
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    // A token that is no JWT at all (a password, a truncated paste, the file's other line) is told so: the
    // general advice sent its operator to SLURMRESTD_USER, which is not at fault (seen on the lab).
    for (const notJwt of ['not-a-jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE', 'a.b.c']) {
      replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
      await expect(collect(createSlurmRestSource(sourceOptions({ token: notJwt })).read(WINDOW))).rejects.toThrow(
        new SourceConfigError(
          'slurmrestd rejected the token (error 1007: Protocol authentication error); the token is not a JWT ' +
            '(scontrol token prints one as SLURM_JWT=<header>.<claims>.<signature>): check what SLURMRESTD_TOKEN ' +
            'or SLURMRESTD_TOKEN_FILE holds',
        ),
      );
    }
  });

  it('names both users when the token was issued for another user than SLURMRESTD_USER', async () => {
    // The lab answers a token of alice's sent as X-SLURM-USER-NAME billing with this same error 1007.
    const jwt = (claims: object) =>
      `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
    const alices = jwt({ exp: 4_102_444_800, iat: 1_796_281_963, sun: 'alice' });
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    await expect(collect(createSlurmRestSource(sourceOptions({ token: alices })).read(WINDOW))).rejects.toThrow(
      new SourceConfigError(
        'slurmrestd rejected the token (error 1007: Protocol authentication error); the token was issued for ' +
          'user "alice", but SLURMRESTD_USER is "billing": issue a token for billing (scontrol token ' +
          'username=billing lifespan=7776000, 90 days; without lifespan= it lasts 30 minutes), or, only if alice ' +
          'is the account meant for the app (one of its own, an operator: docs/ingestion.md, "A JWT for ' +
          'slurmrestd"), set SLURMRESTD_USER=alice',
      ),
    );
    replayServer.setPlan(() => ({ status: 403, body: 'Forbidden' }));
    await expect(collect(createSlurmRestSource(sourceOptions({ token: alices })).read(WINDOW))).rejects.toThrow(
      /^slurmrestd refused the credentials \(HTTP 403\); the token was issued for user "alice", but SLURMRESTD_USER/,
    );
    // A claim that is not a user name is not quoted back.
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
    const odd = jwt({ exp: 4_102_444_800, sun: 'a"\nb' });
    await expect(collect(createSlurmRestSource(sourceOptions({ token: odd })).read(WINDOW))).rejects.toThrow(
      /; check SLURMRESTD_USER and the token$/,
    );
  });

  it('retries a 500 with backoff and succeeds when the server recovers', async () => {
    replayServer.setPlan((url, count) =>
      count < 3 ? { status: 500, body: '{"errors":[{"description":"Unable to parse time format"}]}' } : replay(url),
    );
    const items = await collect(createSlurmRestSource(sourceOptions()).read(WINDOW));
    expect(items.length).toBe(12);
    expect(replayServer.requests).toHaveLength(3);
  });

  it('asks a retried request for the window meant, as slurmrestd reads "now" when it is asked again', async () => {
    // 22.05 is sent times relative to now, which slurmrestd reads against its own clock when a request
    // reaches it. A request retried after a timeout (30 s each by default) reached it that much later,
    // yet asked `now-905seconds` as before: the window read began that much after the one meant, and
    // between two slices of a long window (a catch-up, a backfill day) the jobs of that gap were read by
    // neither. Here each failed attempt costs 40 s of both clocks.
    let clock = TEST_NOW.getTime();
    const asked: { start: number; end: number }[] = [];
    replayServer.setPlan((url, count) => {
      asked.push(askedWindow(url, new Date(clock)));
      if (count >= 3) return replay(url);
      clock += 40_000;
      return { status: 500, body: '{"errors":[{"description":"slurmdbd not responding"}]}' };
    });
    const source = createSlurmRestSource(sourceOptions({ now: () => new Date(clock) }));
    expect(await collect(source.read(WINDOW))).toHaveLength(12);
    const meant = { start: WINDOW.start.getTime() - 5000, end: WINDOW.end.getTime() };
    expect(asked).toEqual([meant, meant, meant]);
  });

  it('gives up after the bounded attempts with the server error in the message', async () => {
    replayServer.setPlan(() => ({ status: 500, body: '{"errors":[{"description":"Unable to parse time format"}]}' }));
    const error = await collect(createSlurmRestSource(sourceOptions()).read(WINDOW)).catch((caught) => caught);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect(error.message).toBe('slurmrestd answered HTTP 500: Unable to parse time format (after 3 attempts)');
    expect(replayServer.requests).toHaveLength(3);
  });

  // A proxy's error page was quoted as its first 200 characters of markup, and an empty body as "HTTP 429: ".
  it.each([
    [
      'a proxy in front of slurmrestd answers with its HTML error page',
      502,
      '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n',
      'slurmrestd answered HTTP 502: an HTML page titled "502 Bad Gateway" (from a proxy in front of slurmrestd?) (after 3 attempts)',
    ],
    [
      'an HTML page without a title',
      503,
      '<!DOCTYPE html><html><body><p>Service   Unavailable</p></body></html>',
      'slurmrestd answered HTTP 503: an HTML page, "Service Unavailable" (from a proxy in front of slurmrestd?) (after 3 attempts)',
    ],
    ['an empty body', 429, '', 'slurmrestd answered HTTP 429 with an empty body (after 3 attempts)'],
  ])('when %s, says so in words', async (_label, status, body, message) => {
    replayServer.setPlan(() => ({ status, body }));
    const error = await collect(createSlurmRestSource(sourceOptions()).read(WINDOW)).catch((caught) => caught);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect(error.message).toBe(message);
  });

  it('when nothing listens at SLURMRESTD_URL (slurmrestd stopped, wrong port), says where it looked and what to check', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await collect(
      createSlurmRestSource(sourceOptions({ url: `http://127.0.0.1:${port}` })).read(WINDOW),
    ).catch((caught: Error) => caught);
    // Retried (slurmrestd may be restarting), then a failure of this source: the next one is tried.
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect((error as Error).message).toBe(
      `slurmrestd cannot be reached at http://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}): ` +
        'check that slurmrestd runs there and that SLURMRESTD_URL is its address (after 3 attempts)',
    );
  });

  it.each([
    // What the lab's MariaDB (127.0.0.1:3307) sends first; the same was seen there.
    [
      'another service, which greets in its own protocol',
      (socket: net.Socket) => socket.write('J\u0000\u0000\u0000\n5.5.5-10.11.19-MariaDB\u0000'),
    ],
  ])('when SLURMRESTD_URL names %s, says it does not answer HTTP, as a configuration error', async (_label, greet) => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      greet(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const error = await collect(
        createSlurmRestSource(sourceOptions({ url: `http://127.0.0.1:${port}` })).read(WINDOW),
      ).catch((caught: Error) => caught);
      // Not retried: the same service answers the same way. It used to be retried three times as
      // "slurmrestd connection failed: Parse Error: Expected HTTP/, RTSP/ or ICE/".
      expect(error).toBeInstanceOf(SourceConfigError);
      expect((error as Error).message).toBe(
        `http://127.0.0.1:${port} does not answer HTTP: SLURMRESTD_URL names another service than slurmrestd ` +
          '(slurmctld listens on 6817, slurmd on 6818 and slurmdbd on 6819 by default; slurmrestd on the address it is started with, often 6820); ' +
          "set it to slurmrestd's http(s)://host:port",
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('when the server at SLURMRESTD_URL closes the connection without an answer (slurmctld does), says where and what to check', async () => {
    // slurmctld's port (6817) given for slurmrestd's, seen on the lab: "read ECONNRESET", retried, alone.
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const error = await collect(
        createSlurmRestSource(sourceOptions({ url: `http://127.0.0.1:${port}` })).read(WINDOW),
      ).catch((caught: Error) => caught);
      // Still retried (a slurmrestd restarting may drop a connection), then the next source is tried.
      expect(error).toBeInstanceOf(SourceUnavailableError);
      expect((error as Error).message).toBe(
        `slurmrestd connection failed: read ECONNRESET: http://127.0.0.1:${port} closed the connection without an HTTP answer; ` +
          "check that slurmrestd runs there and that SLURMRESTD_URL is its address, not another Slurm daemon's " +
          '(slurmctld listens on 6817, slurmd on 6818, slurmdbd on 6819) (after 3 attempts)',
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('with https:// for a slurmrestd that speaks plain HTTP (as the lab does), says to write http://', async () => {
    replayServer.setPlan(replay);
    const url = baseUrl.replace('http://', 'https://');
    const error = await collect(createSlurmRestSource(sourceOptions({ url })).read(WINDOW)).catch(
      (caught: Error) => caught,
    );
    // A configuration error, not retried: the same answer would come three times.
    expect(error).toBeInstanceOf(SourceConfigError);
    expect((error as Error).message).toBe(
      `${url} does not answer TLS (the server sent plain HTTP): slurmrestd listens for http:// there; ` +
        'write SLURMRESTD_URL with http://, or put slurmrestd behind a TLS proxy',
    );
  });

  it('times out a slow answer', async () => {
    replayServer.setPlan((url) => ({ ...replay(url), delayMs: 1000 }));
    const source = createSlurmRestSource(sourceOptions({ timeoutMs: 100, maxAttempts: 2 }));
    await expect(collect(source.read(WINDOW))).rejects.toThrow(/did not answer within 100 ms \(after 2 attempts\)/);
  });

  it("stops at once when the run is stopped (its server's shutdown), not after slurmrestd's timeout", async () => {
    // Only sacct watched the run's signal: a slurmrestd that hung held a stopping server's run until
    // SLURMRESTD_TIMEOUT_MS (30 s) and its retries ran out, past the shutdown's wait, and the run's row
    // stayed running (seen on the lab).
    replayServer.setPlan((url) => (url.startsWith('/slurmdb/') ? { ...replay(url), delayMs: 60_000 } : replay(url)));
    const source = createSlurmRestSource(sourceOptions({ timeoutMs: 60_000, maxAttempts: 3 }));
    const stopping = new AbortController();
    const read = collect(source.read(WINDOW, { signal: stopping.signal }));
    await expect.poll(() => replayServer.requests.some((request) => request.url.startsWith('/slurmdb/'))).toBe(true);
    stopping.abort(new ShutdownStop());
    const error = await read.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RunStoppedError);
    expect((error as RunStoppedError).isShutdown).toBe(true);
    expect(replayServer.requests.filter((request) => request.url.startsWith('/slurmdb/'))).toHaveLength(1);
    // Stopped before it asks: nothing is sent.
    replayServer.setPlan(replay);
    const stopped = new AbortController();
    stopped.abort(new ShutdownStop());
    await expect(collect(source.read(WINDOW, { signal: stopped.signal }))).rejects.toBeInstanceOf(RunStoppedError);
    expect(replayServer.requests.filter((request) => request.url.startsWith('/slurmdb/'))).toHaveLength(0);
  });

  it('refuses malformed JSON', async () => {
    const body = fixture('22.05/final/rest-dbv0.0.38-jobs.json').replace('"jobs": [', '"jobs": [}');
    replayServer.setPlan(() => ({ status: 200, body }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError(`slurmrestd answered malformed JSON (${body.length} bytes)`),
    );
  });

  // Both used to be said in words that named neither what happened nor where to look: "malformed JSON
  // (5000 bytes)", not retried, and "slurmrestd connection failed: aborted".
  const cutShortAdvice =
    "see slurmrestd's log (did it stop or restart while answering?) and, with a proxy in front of it, the proxy's (a timeout or buffer limit)";

  it('says a JSON answer that stops before it ends was cut short, and where to look, after retrying it', async () => {
    replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/final/rest-dbv0.0.38-jobs.json').slice(0, 5000) }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError(
        `slurmrestd's answer was cut short: its JSON stops at byte 5000, before it ends; ${cutShortAdvice} (after 3 attempts)`,
      ),
    );
    expect(replayServer.requests).toHaveLength(3);
  });

  it('says an answer whose connection closed before its Content-Length came was cut short, and how much came', async () => {
    const body = fixture('22.05/final/rest-dbv0.0.38-jobs.json');
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.write(body.slice(0, 5000));
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const source = createSlurmRestSource(sourceOptions({ url: `http://127.0.0.1:${port}`, maxAttempts: 2 }));
      await expect(collect(source.read(WINDOW))).rejects.toThrow(
        new SourceUnavailableError(
          `slurmrestd's answer was cut short: the connection closed after 5000 of ${Buffer.byteLength(body)} bytes ` +
            `(its Content-Length); ${cutShortAdvice} (after 2 attempts)`,
        ),
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  // A proxy's login page comes with HTTP 200: it was reported as "malformed JSON (N bytes)".
  it.each([
    ['the jobs', {}],
    ['the OpenAPI document', { apiVersion: undefined }],
  ])('names an HTML page answered with HTTP 200 for %s as an error page is named', async (_label, options) => {
    const login =
      '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Sign in - Campus SSO</title>' +
      '<style>body { font: 14px sans-serif }</style></head><body><form method="post"><input name="user"></form></body></html>\n';
    replayServer.setPlan(() => ({ status: 200, body: login }));
    const error = await collect(createSlurmRestSource(sourceOptions(options)).read(WINDOW)).catch((caught) => caught);
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect(error.message).toBe(
      'slurmrestd answered HTTP 200: an HTML page titled "Sign in - Campus SSO" (from a proxy in front of slurmrestd?), not JSON',
    );
  });

  it('says which versions the server offers when none is supported', async () => {
    replayServer.setPlan(() => ({ status: 200, body: JSON.stringify({ paths: { '/slurmdb/v0.0.35/jobs': {} } }) }));
    await expect(collect(createSlurmRestSource(sourceOptions({ apiVersion: undefined })).read(WINDOW))).rejects.toThrow(
      /offers no supported slurmdb jobs API \(offered: v0.0.35\)/,
    );
  });

  it('says so when the server offers only versions newer than the app reads (a Slurm newer than it)', async () => {
    // It used to ask "is openapi/dbv0.0.3x or slurmdbd loaded?", which sent the admin looking at slurmrestd.
    replayServer.setPlan(() => ({
      status: 200,
      body: JSON.stringify({ paths: { '/slurmdb/v0.0.46/jobs': {}, '/slurmdb/v0.0.47/jobs/': {} } }),
    }));
    const error = await collect(createSlurmRestSource(sourceOptions({ apiVersion: undefined })).read(WINDOW)).catch(
      (caught: Error) => caught,
    );
    expect(error).toBeInstanceOf(SourceConfigError);
    expect((error as Error).message).toBe(
      'slurmrestd offers only slurmdb jobs API versions newer than this app reads (offered: v0.0.46, v0.0.47; it reads ' +
        'v0.0.36 to v0.0.45): upgrade the app, or have slurmrestd load a version it reads as well (its -d option, e.g. ' +
        '-d v0.0.45; slurmrestd -d list lists them)',
    );
  });

  it('says SLURMRESTD_API_VERSION names a version the server does not serve, and which it does', async () => {
    replayServer.setPlan(slurm2205);
    const error = await collect(createSlurmRestSource(sourceOptions({ apiVersion: 'v0.0.40' })).read(WINDOW)).catch(
      (caught: Error) => caught,
    );
    expect(error).toBeInstanceOf(SourceConfigError);
    expect((error as Error).message).toBe(
      'slurmrestd does not serve /slurmdb/v0.0.40/jobs (HTTP 404), the version SLURMRESTD_API_VERSION names: ' +
        'set it to one this slurmrestd offers (v0.0.36, v0.0.37, v0.0.38), or to auto',
    );
    // A wrong setting is not retried: one jobs request, then the OpenAPI document for the list.
    expect(replayServer.requests.map((request) => request.url.split('?')[0])).toEqual([
      '/slurmdb/v0.0.40/jobs',
      '/openapi/v3',
    ]);
  });

  it.each([undefined, 'v0.0.38'])(
    'with SLURMRESTD_URL on a path slurmrestd does not serve (API version %s), says to fix SLURMRESTD_URL',
    async (apiVersion) => {
      // The lab's slurmrestd answers NOT_SERVED for http://127.0.0.1:6820/slurm/openapi/v3.
      replayServer.setPlan((url) => (url.startsWith('/slurm/') ? NOT_SERVED : slurm2205(url)));
      const error = await collect(
        createSlurmRestSource(sourceOptions({ url: `${baseUrl}/slurm`, apiVersion })).read(WINDOW),
      ).catch((caught: Error) => caught);
      expect(error).toBeInstanceOf(SourceConfigError);
      expect((error as Error).message).toBe(
        `${baseUrl}/slurm/openapi/v3 answered HTTP 404: SLURMRESTD_URL (${baseUrl}/slurm) does not lead to slurmrestd, ` +
          "which serves its OpenAPI document there; set it to slurmrestd's http(s)://host:port (e.g. http://slurm-head:6820), " +
          'with a path only when a proxy serves slurmrestd under one',
      );
    },
  );

  it('asks the OpenAPI document again when the version it chose is gone (slurmrestd upgraded meanwhile)', async () => {
    replayServer.setPlan(slurm2205);
    const source = createSlurmRestSource(sourceOptions({ apiVersion: undefined }));
    await collect(source.read(WINDOW));
    // Slurm 23.11 replaces 22.05 under the running app: v0.0.38 is gone, v0.0.40 is offered.
    replayServer.setPlan((url) => {
      if (url.startsWith('/openapi/v3')) {
        return {
          status: 200,
          body: JSON.stringify({ paths: { '/slurmdb/v0.0.40/jobs': {}, '/slurmdb/v0.0.39/jobs': {} } }),
        };
      }
      return url.startsWith('/slurmdb/v0.0.40/') ? replay(url) : NOT_SERVED;
    });
    const items = await collect(source.read(WINDOW));
    expect(items.length).toBeGreaterThanOrEqual(5);
    expect(replayServer.requests.map((request) => request.url.split('?')[0])).toEqual([
      '/slurmdb/v0.0.38/jobs',
      '/openapi/v3',
      '/slurmdb/v0.0.40/jobs',
    ]);
  });

  it('moves on to v0.0.45 when an upgrade past 26.05 removes the v0.0.42 it chose on 24.11', async () => {
    replayServer.setPlan((url) =>
      url.startsWith('/openapi/v3') ? { status: 200, body: slurmdbJobsPaths(40, 41, 42) } : replay(url),
    );
    const source = createSlurmRestSource(sourceOptions({ apiVersion: undefined }));
    await collect(source.read(WINDOW));
    // Slurm's master branch builds data_parser v0.0.43 to v0.0.46 (src/plugins/data_parser/Makefile.am).
    replayServer.setPlan((url) => {
      if (url.startsWith('/openapi/v3')) return { status: 200, body: slurmdbJobsPaths(43, 44, 45, 46) };
      return /^\/slurmdb\/v0\.0\.4[345]\//.test(url) ? replay(url) : NOT_SERVED;
    });
    const items = await collect(source.read(WINDOW));
    expect(items).toHaveLength(5);
    expect(replayServer.requests.map((request) => request.url.split('?')[0])).toEqual([
      '/slurmdb/v0.0.42/jobs',
      '/openapi/v3',
      '/slurmdb/v0.0.45/jobs',
    ]);
  });

  it('cuts short what an answer puts into its error message', async () => {
    const versions = [1, 2].map((digit) => `/slurmdb/v0.0.${String(digit).repeat(100_000)}/jobs`);
    const offered = JSON.stringify({ paths: Object.fromEntries(versions.map((version) => [version, {}])) });
    const failed = JSON.stringify({ errors: [{ error_number: 9, description: 'x'.repeat(1_000_000) }], jobs: [] });
    const errorOf = (source: ReturnType<typeof createSlurmRestSource>) =>
      collect(source.read(WINDOW)).catch((caught: Error) => caught);

    replayServer.setPlan(() => ({ status: 200, body: offered }));
    const unsupported = await errorOf(createSlurmRestSource(sourceOptions({ apiVersion: undefined })));
    expect(unsupported).toBeInstanceOf(SourceConfigError);
    // Versions this long are newer than any the app reads: said so, the offer cut short.
    expect((unsupported as Error).message).toMatch(
      /^slurmrestd offers only slurmdb jobs API versions newer than this app reads \(offered: v0\.0\.1{100,}\.\.\.; it reads/,
    );
    expect((unsupported as Error).message.length).toBeLessThan(600);

    replayServer.setPlan(() => ({ status: 200, body: failed }));
    const reported = await errorOf(createSlurmRestSource(sourceOptions()));
    expect(reported).toBeInstanceOf(SourceUnavailableError);
    expect((reported as Error).message).toMatch(/^slurmrestd reported 1 error\(s\): 9 x{100,}\.\.\.$/);
    expect((reported as Error).message.length).toBeLessThan(400);
  });
});

describe('an HTTP-200 answer without `jobs`', () => {
  const VERSIONS = ['v0.0.36', 'v0.0.37', 'v0.0.38', 'v0.0.40', 'v0.0.41', 'v0.0.42', 'v0.0.43', 'v0.0.44', 'v0.0.45'];
  /** The recorded answer of `version` (the real 22.05 ones, the schema-built 23.02+ ones), changed by `edit`. */
  const recorded = (edit: (answer: Record<string, unknown>) => object) => (url: string) => {
    const answer = replay(url);
    if (!url.startsWith('/slurmdb/')) return answer;
    return { ...answer, body: JSON.stringify(edit(JSON.parse(answer.body))) };
  };
  const withoutJobs = ({ jobs: _jobs, ...rest }: Record<string, unknown>) => rest;

  it.each(VERSIONS)('%s: the recorded answer without `jobs` fails the source', async (version) => {
    replayServer.setPlan(recorded(withoutJobs));
    const error = await collect(createSlurmRestSource(sourceOptions({ apiVersion: version })).read(WINDOW)).catch(
      (caught: Error) => caught,
    );
    expect(error).toEqual(
      new SourceUnavailableError('slurmrestd answered malformed output: the response has no `jobs` array'),
    );
  });

  it.each(VERSIONS)(
    '%s: the recorded answer with `jobs: []` and a warning is an answer with no jobs',
    async (version) => {
      replayServer.setPlan(recorded((answer) => ({ ...answer, jobs: [], warnings: [{ description: 'slow' }] })));
      expect(await collect(createSlurmRestSource(sourceOptions({ apiVersion: version })).read(WINDOW))).toEqual([]);
    },
  );

  it('an empty object fails the source; an authentication error without `jobs` still says to check the token', async () => {
    replayServer.setPlan(() => ({ status: 200, body: '{}' }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError('slurmrestd answered malformed output: the response has no `jobs` array'),
    );
    const { jobs: _jobs, ...authError } = JSON.parse(fixture('22.05/rest-dbv0.0.38-auth-error.json'));
    replayServer.setPlan(() => ({ status: 200, body: JSON.stringify(authError) }));
    await expect(collect(createSlurmRestSource(sourceOptions()).read(WINDOW))).rejects.toThrow(SourceConfigError);
  });

  describe('in an ingestion run', () => {
    let db: TestDatabase;
    let dir: string;
    const NOW = new Date('2026-11-23T16:00:00Z');
    beforeAll(async () => {
      db = await createTestDatabase();
      dir = mkdtempSync(path.join(os.tmpdir(), 'rest-no-jobs-'));
    });
    afterAll(async () => {
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    const ingest = (sources: JobSource[]) =>
      createIngestionService({
        db,
        sources,
        unconfigured: {},
        logger: createLogger('silent'),
        metrics: createMetrics(),
        overlapSec: 600,
        initialLookbackSec: 86_400,
        now: () => NOW,
      });
    const run = async (sources: JobSource[], window?: typeof WINDOW) => {
      const result = await ingest(sources).runOnce({ trigger: 'manual', ...(window ? { window } : {}) });
      if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
      return result.run;
    };

    it('fails over to the next source, and without one fails the run, so the window does not move on', async () => {
      const rest = createSlurmRestSource(sourceOptions());
      const file = path.join(dir, 'sacct.psv');
      copyFileSync(path.join(FIXTURES, '22.05/final/sacct-steps-extra.psv'), file);
      const fallback = createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: 'lab' });

      replayServer.setPlan(replay);
      expect(await run([rest], WINDOW)).toMatchObject({ outcome: 'success', source: 'slurmrestd', inserted: 12 });

      replayServer.setPlan(recorded(withoutJobs));
      const failedOver = await run([rest, fallback], WINDOW);
      expect(failedOver).toMatchObject({ outcome: 'success', source: 'file', seen: 12 });
      expect(failedOver.sourceNotes.slurmrestd).toBe(
        'failed: slurmrestd answered malformed output: the response has no `jobs` array',
      );

      const failed = await run([rest]);
      expect(failed).toMatchObject({ outcome: 'failed', source: null });
      // The next run reads again from where the last completed one ended (less the overlap).
      replayServer.setPlan(replay);
      const next = await run([rest]);
      expect(next.window).toEqual({ start: new Date(WINDOW.end.getTime() - 600_000), end: NOW });
    });

    it('says on a run slurmrestd answered that the sacct fallback behind it cannot be run', async () => {
      replayServer.setPlan(replay);
      const rest = createSlurmRestSource(sourceOptions());
      const sacctAt = (sacctPath: string) =>
        createSacctSource({
          sacctPath,
          timeoutMs: 5000,
          timeZone: 'UTC',
          cluster: undefined,
          defaultCluster: 'lab',
          inheritedEnvironment: process.env,
        });
      const missing = path.join(dir, 'sacctt');
      const answered = await run([rest, sacctAt(missing)], WINDOW);
      expect(answered).toMatchObject({ outcome: 'success', source: 'slurmrestd', error: null });
      expect(answered.sourceNotes).toMatchObject({
        slurmrestd: 'answered',
        sacct: `not tried (slurmrestd answered), but would fail: SACCT_PATH ${missing} cannot be run (ENOENT)`,
      });
      // One that can be run is said to be so: it used to go unmentioned, beside "file: not configured",
      // and the notes did not tell a checked, working fallback from one that was not there.
      const fine = await run([rest, sacctAt(process.execPath)], WINDOW);
      expect(fine.sourceNotes).toMatchObject({
        slurmrestd: 'answered',
        sacct: 'not tried (slurmrestd answered), set-up checked: no problem found',
      });
    });

    it("when every source fails, the run's error gives each source's reason, slurmrestd's first", async () => {
      // slurmrestd refusing the token, and an sacct fallback that is not installed on this host.
      replayServer.setPlan(() => ({ status: 200, body: fixture('22.05/rest-dbv0.0.38-auth-error.json') }));
      const rest = createSlurmRestSource(sourceOptions({ token: JWT_WITHOUT_CLAIMS }));
      const sacct = createSacctSource({
        inheritedEnvironment: process.env,
        sacctPath: path.join(dir, 'no-such-sacct'),
        timeoutMs: 5000,
        timeZone: 'UTC',
        cluster: undefined,
        defaultCluster: 'lab',
      });
      const failed = await run([rest, sacct], WINDOW);
      expect(failed).toMatchObject({ outcome: 'failed', source: null });
      expect(failed.error).toBe(
        'slurmrestd: slurmrestd rejected the token (error 1007: Protocol authentication error); check SLURMRESTD_USER ' +
          `and the token; sacct: SACCT_PATH ${path.join(dir, 'no-such-sacct')} cannot be run (ENOENT)`,
      );
    });
  });
});

describe('slurmrestd over HTTPS with a site CA', () => {
  let dir: string;
  let tlsServer: https.Server;
  let tlsUrl: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'slurm-tls-'));
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    run([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Test Site CA',
    ]);
    run([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ]);
    writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    run([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ]);
    tlsServer = https.createServer(
      { key: readFileSync(path.join(dir, 'server.key')), cert: readFileSync(path.join(dir, 'server.pem')) },
      replayServer.handler,
    );
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    tlsUrl = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => tlsServer?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('trusts the server with SLURMRESTD_CA_FILE and refuses it (as a configuration error) without', async () => {
    replayServer.setPlan(replay);
    const trusted = createSlurmRestSource(sourceOptions({ url: tlsUrl, caFile: path.join(dir, 'ca.pem') }));
    expect(await collect(trusted.read(WINDOW))).toHaveLength(12);
    const untrusted = createSlurmRestSource(sourceOptions({ url: tlsUrl }));
    await expect(collect(untrusted.read(WINDOW))).rejects.toThrow(SourceConfigError);
    await expect(collect(untrusted.read(WINDOW))).rejects.toThrow(/SLURMRESTD_CA_FILE/);
  });
});

describe('SLURM_CLUSTER with two clusters in one accounting database', () => {
  // Recorded on the lab with a second cluster, lab2, in its slurmdbd (test/fixtures/slurm/README.md):
  // slurmrestd asked without `cluster` answered the jobs of its own cluster (lab) alone, with
  // cluster=lab2 those of lab2; sacct --clusters=lab2 printed lab2's.
  const CAPTURE = '22.05/two-clusters';
  // The clock the replay reads 22.05's relative times against: the sources' own (TEST_NOW), or the
  // real one for a source built from the configuration.
  let replayClock = () => TEST_NOW;
  const window = { start: new Date('2026-12-04T03:13:00Z'), end: new Date('2026-12-04T03:15:00Z') };
  const twoClusters = (url: string): Exchange => {
    if (url.startsWith('/openapi/v3')) return { status: 200, body: fixture('22.05/openapi-v3-paths.json') };
    if (url.startsWith('/slurmdb/v0.0.38/clusters')) {
      return { status: 200, body: fixture(`${CAPTURE}/rest-dbv0.0.38-clusters.json`) };
    }
    const cluster = new URL(url, 'http://slurmrestd').searchParams.get('cluster');
    // What it answered for a cluster it does not know, or a window without jobs.
    if (cluster === 'lba' || new Date(askedWindow(url, replayClock()).start).toISOString().startsWith('2026-12-05')) {
      return { status: 200, body: fixture('22.05/rest-dbv0.0.38-nothing-found.json') };
    }
    const file = cluster === 'lab2' ? 'rest-dbv0.0.38-jobs-cluster-lab2.json' : 'rest-dbv0.0.38-jobs.json';
    return { status: 200, body: fixture(`${CAPTURE}/${file}`) };
  };
  const keysOf = (items: SourceItem[]) =>
    items.flatMap((item) => (item.kind === 'job' ? [`${item.job.cluster} ${item.job.jobKey} ${item.job.user}`] : []));

  it("slurmrestd reads the cluster SLURM_CLUSTER names, the one sacct --clusters reads, not its own host's", async () => {
    replayServer.setPlan(twoClusters);
    const config = buildTestConfig('postgresql://postgres@127.0.0.1:5432/unused', {
      SLURMRESTD_URL: baseUrl,
      SLURMRESTD_USER: 'billing',
      SLURMRESTD_TOKEN: 'token-from-config',
      SLURMRESTD_API_VERSION: 'v0.0.38',
      SLURM_CLUSTER: 'lab2',
    });
    const [source] = buildSources(config).sources;
    if (!source) throw new Error('slurmrestd is not configured');
    replayClock = () => new Date();
    const items = await collect(source.read(window)).finally(() => {
      replayClock = () => TEST_NOW;
    });
    const urls = replayServer.requests.map((request) => request.url);
    expect(urls).toEqual([
      expect.stringMatching(
        /^\/slurmdb\/v0\.0\.38\/jobs\?start_time=now-\d+seconds&end_time=now-\d+seconds&cluster=lab2$/,
      ),
    ]);
    // Relative to the real clock here (buildSources): the window asked for, to the second.
    const asked = askedWindow(urls[0] as string, new Date());
    expect(Math.abs(asked.start - (window.start.getTime() - 5000))).toBeLessThan(3000);
    expect(Math.abs(asked.end - window.end.getTime())).toBeLessThan(3000);
    // It used to read lab's four jobs: another cluster's, which a switch to sacct never read again.
    const sacct = parseSacctText(fixture(`${CAPTURE}/sacct-clusters-lab2.psv`), {
      timeZone: 'UTC',
      defaultCluster: 'lab2',
    });
    expect(keysOf(items)).toEqual(['lab2 900 alice']);
    expect(keysOf(sacct)).toEqual(keysOf(items));
  });

  it('a SLURM_CLUSTER slurmdbd does not know fails the slurmrestd read, naming the clusters it knows', async () => {
    replayServer.setPlan(twoClusters);
    const source = createSlurmRestSource(sourceOptions({ cluster: 'lba' }));
    // slurmrestd answers it as a quiet window: believed, runs would pass over jobs never read.
    await expect(collect(source.read(window))).rejects.toThrow(
      new SourceConfigError(
        'SLURM_CLUSTER is "lba", a cluster the Slurm accounting database does not know (it knows: lab, lab2): ' +
          'slurmrestd reads no jobs for cluster=lba. Set SLURM_CLUSTER to one of those, or unset it',
      ),
    );
  });

  it('a quiet window of a known cluster is no jobs; the cluster is looked up once', async () => {
    replayServer.setPlan(twoClusters);
    const source = createSlurmRestSource(sourceOptions({ cluster: 'LAB2' }));
    const quiet = { start: new Date('2026-12-05T03:00:00Z'), end: new Date('2026-12-05T03:15:00Z') };
    expect(await collect(source.read(quiet))).toEqual([]);
    expect(await collect(source.read(quiet))).toEqual([]);
    expect(replayServer.requests.filter((request) => request.url.includes('/clusters'))).toHaveLength(1);
  });
});

describe('a window whose answer is more than one answer may be (a first run, a catch-up after an outage)', () => {
  // slurmrestd pretty-prints some 13 kB a job: a week of a cluster running 6,000 jobs a day is past
  // the body limit, and slow to build. Here the recorded jobs plus filler in proportion to the
  // window's length (the other jobs of a busy cluster) stand for it, with a small body limit.
  const NOW = new Date('2026-11-23T16:00:00Z');
  const MAX_BODY = 400_000;
  const recordedJobs = () =>
    (JSON.parse(fixture('22.05/final/rest-dbv0.0.38-jobs.json')) as { jobs: Record<string, unknown>[] }).jobs;
  const windowOf = (url: string) => askedWindow(url, NOW);
  /** As slurmdbd selects them: eligible before the window ends, and not ended before it starts. */
  const busyCluster =
    (options: { slowAboveMs?: number } = {}) =>
    (url: string): Exchange => {
      if (!url.startsWith('/slurmdb/v0.0.38/jobs?')) return replay(url);
      const { start, end } = windowOf(url);
      const jobs = recordedJobs().filter((job) => {
        const time = job.time as { submission: number; end: number };
        return time.submission * 1000 <= end && (time.end === 0 || time.end * 1000 >= start);
      });
      const hours = (end - start) / 3_600_000;
      const body = JSON.stringify({ errors: [], jobs, filler: 'x'.repeat(Math.round(hours * 20_000)) });
      const isSlow = options.slowAboveMs !== undefined && end - start > options.slowAboveMs;
      return { status: 200, body, ...(isSlow ? { delayMs: 1000 } : {}) };
    };

  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const firstRun = async (source: JobSource) => {
    const service = createIngestionService({
      db,
      sources: [source],
      unconfigured: {},
      logger: createLogger('silent'),
      metrics: createMetrics(),
      overlapSec: 600,
      initialLookbackSec: 7 * 86_400,
      now: () => NOW,
    });
    const result = await service.runOnce({ trigger: 'schedule' });
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    return result.run;
  };
  /** The windows asked for, in order: they must follow each other without a gap from start to end. */
  const askedWindows = () =>
    replayServer.requests.filter((request) => request.url.includes('/jobs?')).map((request) => windowOf(request.url));

  it('is read in slices small enough to answer, so the run completes and the window moves on', async () => {
    await db.prisma.$executeRawUnsafe('TRUNCATE slurm_jobs, ingestion_runs');
    replayServer.setPlan(busyCluster());
    const run = await firstRun(createSlurmRestSource(sourceOptions({ maxBodyBytes: MAX_BODY, now: () => NOW })));
    // It used to fail on every run, each reading a longer window than the last.
    expect(run).toMatchObject({ outcome: 'success', source: 'slurmrestd', inserted: 12, error: null });
    const slices: { start: number; end: number }[] = [];
    for (const window of askedWindows()) {
      const last = slices.at(-1);
      if (last && window.start === last.start)
        slices[slices.length - 1] = window; // halved and asked again
      else slices.push(window);
    }
    // 22.05 is asked relative to now, from 5 s before each slice's start: the slices overlap by that.
    expect(slices[0]?.start).toBe(NOW.getTime() - 7 * 86_400_000 - 5000);
    expect(slices.at(-1)?.end).toBe(NOW.getTime());
    for (const [index, slice] of slices.entries()) {
      if (index > 0) expect(slice.start).toBe((slices[index - 1]?.end as number) - 5000);
    }
    expect(await db.prisma.slurmJob.count()).toBe(12);
  });

  it.each([
    ['Slurm 22.05: HTTP 200, the error beside `jobs: []`', 200, { jobs: [] }],
    ['a later slurmrestd: HTTP 500, without `jobs`', 500, {}],
  ])(
    "a window longer than slurmdbd's MaxQueryTimeRange is read in slices it accepts (%s)",
    async (_label, status, rest) => {
      // slurmdbd refuses a query over more than MaxQueryTimeRange (slurmdbd.conf) with error 7007: each
      // first run or catch-up over a longer window failed, and the next, over a longer one, failed too.
      await db.prisma.$executeRawUnsafe('TRUNCATE slurm_jobs, ingestion_runs');
      const maxRangeMs = 2 * 86_400_000;
      const refusal = {
        errors: [
          {
            error_number: 7007,
            error: 'Too wide of a date range in query',
            description: '',
            source: 'slurmdb_jobs_get',
          },
        ],
        ...rest,
      };
      replayServer.setPlan((url) => {
        if (!url.startsWith('/slurmdb/v0.0.38/jobs?')) return replay(url);
        const { start, end } = windowOf(url);
        return end - start > maxRangeMs ? { status, body: JSON.stringify(refusal) } : busyCluster()(url);
      });
      const run = await firstRun(createSlurmRestSource(sourceOptions({ now: () => NOW })));
      expect(run).toMatchObject({ outcome: 'success', source: 'slurmrestd', inserted: 12, error: null });
      const windows = askedWindows();
      // A refusal is not retried: the slice is halved at once.
      // (22.05 is asked from 5 s before each slice's start.)
      expect(windows.slice(0, 3).map((window) => window.end - window.start)).toEqual([
        7 * 86_400_000 + 5000,
        3.5 * 86_400_000 + 5000,
        1.75 * 86_400_000 + 5000,
      ]);
      expect(windows.slice(2).every((window) => window.end - window.start <= maxRangeMs)).toBe(true);
      expect(windows.at(-1)?.end).toBe(NOW.getTime());
    },
  );

  it('names the start of the shortest slice, still refused as too wide, in APP_TZ as pages give times', async () => {
    const refusal = {
      errors: [
        { error_number: 7007, error: 'Too wide of a date range in query', description: '', source: 'slurmdb_jobs_get' },
      ],
      jobs: [],
    };
    replayServer.setPlan((url) =>
      url.startsWith('/slurmdb/v0.0.38/jobs?') ? { status: 200, body: JSON.stringify(refusal) } : replay(url),
    );
    const source = createSlurmRestSource(sourceOptions({ timeZone: 'Asia/Bangkok', now: () => NOW }));
    const window = { start: new Date('2026-11-22T00:00:30Z'), end: new Date('2026-11-22T00:02:30Z') };
    await expect(collect(source.read(window))).rejects.toThrow(
      /for the 60 s from 2026-11-22 07:00:30 \(Asia\/Bangkok\), the shortest slice a window is read in$/,
    );
  });

  it('a long window too slow to answer in SLURMRESTD_TIMEOUT_MS is read in shorter slices too', async () => {
    await db.prisma.$executeRawUnsafe('TRUNCATE slurm_jobs, ingestion_runs');
    replayServer.setPlan(busyCluster({ slowAboveMs: 2 * 3_600_000 }));
    const run = await firstRun(
      createSlurmRestSource(sourceOptions({ timeoutMs: 300, maxAttempts: 2, now: () => NOW })),
    );
    expect(run).toMatchObject({ outcome: 'success', source: 'slurmrestd', inserted: 12 });
    expect(askedWindows().at(-1)?.end).toBe(NOW.getTime());
  });

  it('a slurmrestd 22.05 in another zone than APP_TZ (a container in UTC) reads the window meant', async () => {
    // It parses a written time in its own process's zone: asked 2026-11-24T00:40:43 (Asia/Tokyo), it
    // read 9 hours in the future, and every finished job of the window was missing from the answer.
    replayServer.setPlan(busyCluster());
    const source = createSlurmRestSource(sourceOptions({ timeZone: 'Asia/Tokyo', now: () => NOW }));
    const items = await collect(source.read(WINDOW));
    expect(items.filter((item) => item.kind === 'job')).toHaveLength(12);
  });

  it.each(['v0.0.40', 'v0.0.42', 'v0.0.44', 'v0.0.45'])(
    'a slurmrestd at %s in another zone than APP_TZ (a container in UTC) is asked the window meant',
    async (version) => {
      // From v0.0.40 slurmrestd takes Unix timestamps; it was sent 2026-11-24T00:40:43, the window's
      // start written in APP_TZ=Asia/Tokyo, 9 hours off the window meant wherever it runs.
      replayServer.setPlan(replay);
      const source = createSlurmRestSource(sourceOptions({ apiVersion: version, timeZone: 'Asia/Tokyo' }));
      const items = await collect(source.read(WINDOW));
      expect(items.some((item) => item.kind === 'job')).toBe(true);
      const asked = askedWindow(replayServer.requests.find((request) => request.url.includes('/jobs?'))?.url ?? '');
      expect(asked).toEqual({ start: WINDOW.start.getTime(), end: WINDOW.end.getTime() });
    },
  );

  it('a short window that does not answer in time still fails after its attempts, as before', async () => {
    replayServer.setPlan((url) => ({ ...busyCluster()(url), delayMs: 1000 }));
    const source = createSlurmRestSource(sourceOptions({ timeoutMs: 100, maxAttempts: 2 }));
    await expect(collect(source.read(WINDOW))).rejects.toThrow(/did not answer within 100 ms \(after 2 attempts\)/);
    expect(askedWindows()).toHaveLength(2);
  });
});
