import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { createRandom } from '../../src/modules/demo/demo-jobs.js';
import type { TransparentHugePagesMode } from '../../src/shared/transparent-huge-pages.js';
import { benchUsername } from './bench-users.js';
import type { DatabaseSettings } from './database-settings.js';
import { readCsrfToken } from './html-token.js';
import { HttpSession } from './http-session.js';
import { ServerSampler, type ServerUsage } from './proc-sampler.js';
import { type RouteReport, RouteStats } from './route-stats.js';
import { type RouteProbe, type Scenario, type ScenarioContext, signIn } from './scenarios.js';

export interface RunOptions {
  baseUrl: URL;
  scenario: Scenario;
  vus: number;
  durationSec: number;
  /** Random think time in [min, max] ms after /me and after the CSV. */
  thinkMs: [number, number];
  /**
   * Virtual user i starts its loop i * rampMs / vus ms after the clock starts. All at once
   * (0), every VU signs in at the same instant: a burst of argon2 verifies that real
   * visitors, who arrive spread out, never make.
   */
  rampMs?: number;
  users: number;
  receiptShare: number;
  /** Hard cap per virtual user, so a loop ends even if the clock misbehaves. */
  maxIterationsPerVu: number;
  webhookSecret: string;
  currency: string;
  /** The server's process (its workers are found below it); no sampling without it. */
  serverPid?: number;
  sampleIntervalMs: number;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  startedAt: string;
  options: {
    baseUrl: string;
    vus: number;
    durationSec: number;
    thinkMs: [number, number];
    rampMs: number;
    users: number;
    receiptShare: number;
  };
  elapsedSec: number;
  iterations: number;
  completeIterations: number;
  iterationsPerSec: number;
  failures: number;
  routes: RouteReport[];
  /** Sign-ins and first requests made before the clock started. */
  setupRoutes: RouteReport[];
  setupError?: string;
  server?: ServerUsage;
  /** The database server's settings, when the bench knows its DATABASE_URL. */
  database?: DatabaseSettings;
  /** The host's transparent huge pages mode (app and bench share the machine); sign-ins cost five times as much with it off. */
  hostTransparentHugePages?: TransparentHugePagesMode;
}

// Past the deadline, requests in flight get this long before their connections are cut.
const GRACE_MS = 35_000;
const REQUEST_TIMEOUT_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function createPool(baseUrl: URL, connections: number): Pool {
  return new Pool(baseUrl.origin, {
    connections,
    pipelining: 1,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
    connect: { timeout: 10_000 },
  });
}

/** Runs one scenario: VUs set up (not timed), then loop until the duration or the iteration cap. */
export async function runScenario(options: RunOptions): Promise<ScenarioResult> {
  const pool = createPool(options.baseUrl, options.vus);
  const stats = new RouteStats();
  const setupStats = new RouteStats();
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const sampler = options.serverPid ? new ServerSampler(options.serverPid, options.sampleIntervalMs) : undefined;
  // Started before the sign-ins so its first sample is the idle server.
  sampler?.start();
  const startedAt = new Date();
  let isMeasuring = false;
  const contexts = Array.from({ length: options.vus }, (_, vuIndex): ScenarioContext => {
    const random = createRandom(0x5eed + vuIndex);
    const [minThink, maxThink] = options.thinkMs;
    return {
      vuIndex,
      vus: options.vus,
      users: options.users,
      openSession: () => new HttpSession(pool, () => (isMeasuring ? stats : setupStats)),
      get stats() {
        return isMeasuring ? stats : setupStats;
      },
      random,
      think: () => (maxThink > 0 ? sleep(minThink + random() * (maxThink - minThink)) : Promise.resolve()),
      receiptShare: options.receiptShare,
      webhookSecret: options.webhookSecret,
      runId,
      currency: options.currency,
      now: () => new Date(),
    };
  });

  let iterations = 0;
  let completeIterations = 0;
  let setupError: string | undefined;
  let measuredMs = 0;
  try {
    let iterationsByVu: (() => Promise<boolean>)[] = [];
    try {
      iterationsByVu = await Promise.all(contexts.map((context) => options.scenario.createVirtualUser(context)));
    } catch (error) {
      setupError = (error as Error).message;
    }
    if (!setupError) {
      isMeasuring = true;
      sampler?.markLoadStart();
      const started = performance.now();
      const deadline = started + options.durationSec * 1000;
      const rampMs = options.rampMs ?? 0;
      const loops = iterationsByVu.map(async (iterate, vuIndex) => {
        if (rampMs > 0) await sleep((vuIndex * rampMs) / iterationsByVu.length);
        for (let count = 0; count < options.maxIterationsPerVu && performance.now() < deadline; count++) {
          iterations += 1;
          if (await iterate()) completeIterations += 1;
        }
      });
      const finished = Promise.all(loops);
      let watchdog: NodeJS.Timeout | undefined;
      const isFinished = await Promise.race([
        finished.then(() => true),
        new Promise<false>((resolve) => {
          watchdog = setTimeout(() => resolve(false), options.durationSec * 1000 + GRACE_MS);
        }),
      ]);
      clearTimeout(watchdog);
      measuredMs = performance.now() - started;
      if (!isFinished) {
        setupError = `requests were still running ${GRACE_MS / 1000} s after the end; their connections were cut`;
        await pool.destroy();
      }
    }
  } finally {
    await pool.close().catch(() => undefined);
  }
  const server = sampler?.stop();
  const elapsedSec = measuredMs / 1000;
  const routes = stats.report(elapsedSec);
  return {
    scenario: options.scenario.name,
    description: options.scenario.description,
    startedAt: startedAt.toISOString(),
    options: {
      baseUrl: options.baseUrl.origin,
      vus: options.vus,
      durationSec: options.durationSec,
      thinkMs: options.thinkMs,
      rampMs: options.rampMs ?? 0,
      users: options.users,
      receiptShare: options.receiptShare,
    },
    elapsedSec,
    iterations,
    completeIterations,
    iterationsPerSec: elapsedSec > 0 ? completeIterations / elapsedSec : 0,
    failures: stats.totalFailures + setupStats.totalFailures + (setupError ? 1 : 0),
    routes,
    setupRoutes: setupStats.report(0),
    setupError,
    server,
  };
}

export interface ProbeOutcome {
  missing: string[];
  /** Something other than a missing route went wrong (the sign-in failed, the server is down). */
  error?: string;
}

/**
 * One request per route of a scenario: a 404 means the build lacks the route. Signed-in
 * pages are probed signed in as bench001; POSTs anonymously with a valid CSRF token, so
 * the CSRF check cannot hide a missing route behind a 403.
 */
export async function probeRoutes(baseUrl: URL, probes: RouteProbe[]): Promise<ProbeOutcome> {
  const pool = createPool(baseUrl, 2);
  const stats = new RouteStats();
  try {
    const signedIn = new HttpSession(pool, () => stats);
    const anonymous = new HttpSession(pool, () => stats);
    const fakeContext = { stats } as ScenarioContext;
    if (probes.some((probe) => probe.isSignedIn) && !(await signIn(signedIn, fakeContext, benchUsername(1)))) {
      return {
        missing: [],
        error: `could not sign in as ${benchUsername(1)} to probe: ${JSON.stringify(stats.report(0))}`,
      };
    }
    let token: string | undefined;
    if (probes.some((probe) => probe.method === 'POST')) {
      const page = await anonymous.send({ route: 'probe GET /login', path: '/login', isBodyNeeded: true });
      token = page ? readCsrfToken(page.body) : undefined;
      if (!token) return { missing: [], error: 'GET /login gave no csrf_token to probe POST routes with' };
    }
    const missing: string[] = [];
    for (const probe of probes) {
      const session = probe.isSignedIn ? signedIn : anonymous;
      const response = await session.send({
        route: `probe ${probe.route}`,
        method: probe.method,
        path: probe.path,
        headers: token ? { 'x-csrf-token': token } : {},
        json: probe.method === 'POST' ? '{}' : undefined,
        isAccepted: () => true,
      });
      if (!response) return { missing, error: `${probe.route}: no answer from the server` };
      if (response.status === 404) missing.push(probe.route);
    }
    return { missing };
  } finally {
    await pool.close().catch(() => undefined);
  }
}
