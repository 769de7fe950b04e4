import { benchUserFor, benchUsername } from './bench-users.js';
import { readCsrfToken } from './html-token.js';
import type { HttpSession } from './http-session.js';
import type { RouteStats } from './route-stats.js';
import { buildSignedDummyEvent, DUMMY_SIGNATURE_HEADER } from './webhook-signature.js';

export interface ScenarioContext {
  vuIndex: number;
  vus: number;
  /** How many generated users (bench001...) the database has. */
  users: number;
  /** A new browser: empty cookie jar. */
  openSession(): HttpSession;
  /** Where failures that are not a bad status go (e.g. a page without its csrf_token). */
  stats: RouteStats;
  random(): number;
  /** Waits a random time in the think-time range (none when the range is 0). */
  think(): Promise<void>;
  /** Share of login-browse iterations that create a receipt. */
  receiptShare: number;
  webhookSecret: string;
  runId: string;
  currency: string;
  now(): Date;
}

/** One request whose answer tells whether the route exists on the build under test. */
export interface RouteProbe {
  route: string;
  method: 'GET' | 'POST';
  path: string;
  /** GETs of signed-in pages are probed signed in, POSTs anonymously with a CSRF token. */
  isSignedIn: boolean;
}

export interface Scenario {
  name: string;
  description: string;
  probes: RouteProbe[];
  /** Settings the app needs for this scenario, on top of the production defaults. */
  serverEnv?: Record<string, string>;
  /**
   * Sets up one virtual user before the clock starts (e.g. signs in) and returns its
   * iteration; the iteration resolves true when every step succeeded.
   */
  createVirtualUser(context: ScenarioContext): Promise<() => Promise<boolean>>;
}

/** YYYY-MM-DD of a UTC date. */
function toIsoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** A random two-week window (14 days, both ends included) inside the last year. */
export function pickTwoWeekWindow(now: Date, random: () => number): { start: string; end: string } {
  const daysBack = 14 + Math.floor(random() * (365 - 14));
  const start = new Date(now.getTime() - daysBack * 86_400_000);
  const end = new Date(start.getTime() + 13 * 86_400_000);
  return { start: toIsoDate(start), end: toIsoDate(end) };
}

/**
 * What a browser accepts from POST /me/receipt: the redirect to the new receipt, 422 when
 * the user has nothing left to bill (already billed by an earlier iteration), 409 when a
 * concurrent request billed the same jobs first.
 */
export function isReceiptAnswerAccepted(status: number): boolean {
  return (status >= 200 && status < 400) || status === 409 || status === 422;
}

const isRedirectAwayFromLogin = (status: number, headers: Record<string, unknown>) =>
  status === 302 && typeof headers.location === 'string' && !headers.location.startsWith('/login');

/** GET /login, read csrf_token, POST /login as a browser does; true when signed in. */
export async function signIn(session: HttpSession, context: ScenarioContext, username: string): Promise<boolean> {
  const page = await session.send({ route: 'GET /login', path: '/login', isBodyNeeded: true });
  if (!page?.isAccepted) return false;
  const token = readCsrfToken(page.body);
  if (!token) {
    context.stats.recordFailure('GET /login', 'GET /login: no csrf_token field on the sign-in page');
    return false;
  }
  const result = await session.send({
    route: 'POST /login',
    method: 'POST',
    path: '/login',
    form: { csrf_token: token, username, password: username },
    // A refused sign-in re-renders the form (401, or 429 while locked); only a redirect away from /login is success.
    isAccepted: isRedirectAwayFromLogin,
  });
  return Boolean(result?.isAccepted);
}

function signedInProbe(route: string, path: string): RouteProbe {
  return { route, method: 'GET', path, isSignedIn: true };
}

const ME_PROBE = signedInProbe('GET /me', '/me');
const CSV_PROBE = signedInProbe('GET /me.csv', '/me.csv?start=2026-01-01&end=2026-01-14');

async function fetchMe(session: HttpSession, isBodyNeeded: boolean) {
  return session.send({ route: 'GET /me', path: '/me', isBodyNeeded });
}

async function fetchCsv(session: HttpSession, context: ScenarioContext) {
  const { start, end } = pickTwoWeekWindow(context.now(), context.random);
  return session.send({
    route: 'GET /me.csv',
    path: `/me.csv?start=${start}&end=${end}`,
    headers: { accept: 'text/csv,*/*' },
  });
}

async function signInOnce(context: ScenarioContext): Promise<HttpSession> {
  const session = context.openSession();
  const username = benchUsername((context.vuIndex % context.users) + 1);
  if (!(await signIn(session, context, username)))
    throw new Error(`virtual user ${context.vuIndex} could not sign in as ${username}`);
  return session;
}

const loginBrowse: Scenario = {
  name: 'login-browse',
  description: 'GET /login, POST /login, GET /me, think, GET /me.csv (two weeks), think, now and then POST /me/receipt',
  probes: [
    { route: 'GET /login', method: 'GET', path: '/login', isSignedIn: false },
    ME_PROBE,
    CSV_PROBE,
    { route: 'POST /me/receipt', method: 'POST', path: '/me/receipt', isSignedIn: false },
  ],
  async createVirtualUser(context) {
    let signIns = 0;
    return async () => {
      // Each iteration is a new visitor: a fresh jar, the next user in turn.
      const session = context.openSession();
      const username = benchUserFor(context.vuIndex, signIns++, context.vus, context.users);
      if (!(await signIn(session, context, username))) return false;
      const me = await fetchMe(session, true);
      if (!me?.isAccepted) return false;
      await context.think();
      const csv = await fetchCsv(session, context);
      if (!csv?.isAccepted) return false;
      await context.think();
      if (context.random() >= context.receiptShare) return true;
      const token = readCsrfToken(me.body);
      if (!token) {
        context.stats.recordFailure('GET /me', 'GET /me: no csrf_token field to create a receipt with');
        return false;
      }
      const before = toIsoDate(new Date(context.now().getTime() - 86_400_000));
      const receipt = await session.send({
        route: 'POST /me/receipt',
        method: 'POST',
        path: '/me/receipt',
        form: { csrf_token: token, before },
        isAccepted: isReceiptAnswerAccepted,
      });
      return Boolean(receipt?.isAccepted);
    };
  },
};

const browse: Scenario = {
  name: 'browse',
  description: 'signed in once per connection, then GET /me and GET /me.csv (two weeks) in a loop',
  probes: [ME_PROBE, CSV_PROBE],
  async createVirtualUser(context) {
    const session = await signInOnce(context);
    return async () => {
      const me = await fetchMe(session, false);
      const csv = await fetchCsv(session, context);
      return Boolean(me?.isAccepted && csv?.isAccepted);
    };
  },
};

const me: Scenario = {
  name: 'me',
  description: 'signed in once per connection, then GET /me in a loop',
  probes: [ME_PROBE],
  async createVirtualUser(context) {
    const session = await signInOnce(context);
    return async () => Boolean((await fetchMe(session, false))?.isAccepted);
  },
};

const healthz: Scenario = {
  name: 'healthz',
  description: 'GET /healthz in a loop',
  probes: [{ route: 'GET /healthz', method: 'GET', path: '/healthz', isSignedIn: false }],
  async createVirtualUser(context) {
    const session = context.openSession();
    return async () =>
      Boolean(
        (await session.send({ route: 'GET /healthz', path: '/healthz', headers: { accept: 'application/json' } }))
          ?.isAccepted,
      );
  },
};

const FORMULA_PROBE: RouteProbe = { route: 'GET /formula', method: 'GET', path: '/formula', isSignedIn: false };

/** A session for /formula: anonymous when the page is public, signed in when it redirects to /login. */
async function openFormulaSession(context: ScenarioContext): Promise<HttpSession> {
  const session = context.openSession();
  const first = await session.send({ route: 'setup GET /formula', path: '/formula', isAccepted: () => true });
  const location = first?.headers.location;
  if (
    first &&
    first.status >= 300 &&
    first.status < 400 &&
    typeof location === 'string' &&
    location.startsWith('/login')
  ) {
    return signInOnce(context);
  }
  return session;
}

const formula: Scenario = {
  name: 'formula',
  description: 'GET /formula (200) in a loop',
  probes: [FORMULA_PROBE],
  async createVirtualUser(context) {
    const session = await openFormulaSession(context);
    return async () =>
      Boolean(
        (await session.send({ route: 'GET /formula', path: '/formula', isAccepted: (status) => status === 200 }))
          ?.isAccepted,
      );
  },
};

const formula304: Scenario = {
  name: 'formula-304',
  description: 'GET /formula with If-None-Match (the ETag of a first request): 304 in a loop',
  probes: [FORMULA_PROBE],
  async createVirtualUser(context) {
    const session = await openFormulaSession(context);
    const first = await session.send({ route: 'setup GET /formula', path: '/formula' });
    const etag = first?.headers.etag;
    if (typeof etag !== 'string')
      throw new Error('GET /formula answered without an ETag header, so there is nothing to revalidate');
    return async () =>
      Boolean(
        (
          await session.send({
            route: 'GET /formula (If-None-Match)',
            path: '/formula',
            headers: { 'if-none-match': etag },
            isAccepted: (status) => status === 304,
          })
        )?.isAccepted,
      );
  },
};

const webhook: Scenario = {
  name: 'webhook',
  description: 'POST /payments/webhook/dummy: signed payment.succeeded events with unique ids',
  // Production refuses the dummy provider; a development-mode server runs the same verify,
  // record-once and apply path that a real provider's deliveries take.
  serverEnv: { APP_ENV: 'development', PAYMENT_PROVIDER: 'dummy', DEMO_SEED: '0', INGEST_ENABLED: '0' },
  probes: [
    { route: 'POST /payments/webhook/dummy', method: 'POST', path: '/payments/webhook/dummy', isSignedIn: false },
  ],
  async createVirtualUser(context) {
    const session = context.openSession();
    let sequence = 0;
    return async () => {
      sequence += 1;
      const id = `bench-${context.runId}-${context.vuIndex}-${sequence}`;
      const { body, signature } = buildSignedDummyEvent(
        {
          event_id: `evt_${id}`,
          event_type: 'payment.succeeded',
          external_payment_id: `pay_${id}`,
          amount_cents: 1000 + Math.floor(context.random() * 100_000),
          currency: context.currency,
        },
        context.webhookSecret,
      );
      const response = await session.send({
        route: 'POST /payments/webhook/dummy',
        method: 'POST',
        path: '/payments/webhook/dummy',
        headers: { accept: 'application/json', [DUMMY_SIGNATURE_HEADER]: signature },
        json: body,
        // The payments do not exist; the provider only needs a 2xx to stop retrying.
        isAccepted: (status) => status >= 200 && status < 300,
      });
      return Boolean(response?.isAccepted);
    };
  },
};

/** Every scenario by name, in the order the smoke run goes through them. */
export const SCENARIOS: readonly Scenario[] = [healthz, loginBrowse, browse, me, formula, formula304, webhook];

export function findScenario(name: string): Scenario {
  const scenario = SCENARIOS.find((entry) => entry.name === name);
  if (!scenario)
    throw new Error(`unknown scenario "${name}"; choose one of: ${SCENARIOS.map((entry) => entry.name).join(', ')}`);
  return scenario;
}
