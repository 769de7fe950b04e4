import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import express from 'express';
import helmet from 'helmet';
import type { AppConfig } from './config/config.js';
import type { Database } from './db/database.js';
import { shippedMigrationNames } from './db/migrations.js';
import { refuseBodyCharsetNotUtf8 } from './http/body-charset.js';
import { createCsrfProtection, exposeCsrfTokenOnRender } from './http/csrf.js';
import { type CsvExportLimits, createCsvExports, csvExportLimitsFor, excelCsvLinkOf } from './http/csv-exports.js';
import { errorHandler, FORM_FIELD_LIMIT, notFoundHandler, prefersJson } from './http/error-handler.js';
import { serveFavicon } from './http/favicon.js';
import { captureStaticHeaders, createHotRoutes } from './http/hot-routes.js';
import { httpMetrics } from './http/http-metrics.js';
import { requireObjectBody } from './http/json-object-body.js';
import { parseQueryFields } from './http/list-shaped-fields.js';
import { jsonKeepingNumberText, refuseDuplicateJsonKeys } from './http/lossless-json.js';
import { answerOptions } from './http/method-not-allowed.js';
import { refuseFormNotUtf8, refuseQueryNotUtf8 } from './http/percent-encoded-utf8.js';
import { lowerCaseForwardedProto } from './http/plain-http.js';
import { describeRefusedForm } from './http/refused-form.js';
import { rejectUnstorableText } from './http/reject-unstorable-text.js';
import { expireRenamedCookies } from './http/renamed-cookies.js';
import { requestContext } from './http/request-context.js';
import { PERMISSIONS_POLICY, REFERRER_POLICY } from './http/security-headers.js';
import {
  createSessionMiddleware,
  enforceSessionLifetime,
  exposeFlash,
  saveSessionBeforeResponding,
} from './http/session.js';
import { refuseOtherMethodsOnStaticFiles } from './http/static-methods.js';
import { createViewEngine } from './http/view-engine.js';
import { createViewFormatters } from './http/view-format.js';
import { adminRoutes } from './modules/admin/admin.routes.js';
import { auditRoutes } from './modules/audit/audit.routes.js';
import { configureAuditChain } from './modules/audit/audit.service.js';
import {
  type AuditChainMonitor,
  createAuditChainMonitor,
  reportChainVerdictTo,
} from './modules/audit/audit-chain.monitor.js';
import { FirstRefusals } from './modules/audit/first-refusals.js';
import { createGuards } from './modules/auth/auth.guards.js';
import {
  authRoutes,
  redirectSignedInFromSignIn,
  redirectSignedOutFromSignOut,
  signInFormOnExpiredToken,
} from './modules/auth/auth.routes.js';
import { createPassport } from './modules/auth/passport.js';
import { healthRoutes } from './modules/health/health.routes.js';
import { checkReadiness, type Readiness } from './modules/health/health.service.js';
import { createReadinessLog } from './modules/health/readiness-log.js';
import { buildIngestionService } from './modules/ingestion/ingestion.factory.js';
import { ingestionRoutes } from './modules/ingestion/ingestion.routes.js';
import { findLastIngestionSuccess } from './modules/ingestion/ingestion.service.js';
import { type Metrics, SCRAPE_DATABASE_READ_LIMIT_MS } from './modules/metrics/metrics.js';
import { metricsRoutes } from './modules/metrics/metrics.routes.js';
import { createCheckoutCloser } from './modules/payments/checkout-closer.js';
import { pricedStepOf } from './modules/payments/payment-money.js';
import { paymentRoutes, paymentWebhookRoutes } from './modules/payments/payments.routes.js';
import {
  buildPaymentProvider,
  checkoutOrigins,
  createPaymentsService,
  findOldestOpenCheckouts,
} from './modules/payments/payments.service.js';
import {
  formulaRoutes,
  pricingAdminRoutes,
  RATE_WRITE_PATHS,
  ratesPageRoutes,
} from './modules/pricing/pricing.routes.js';
import { createRatesService } from './modules/pricing/rates.service.js';
import { adminBillingRoutes, MARK_PAID_PATH } from './modules/receipts/admin-billing.routes.js';
import { createOwnReceiptPage, receiptsRoutes } from './modules/receipts/receipts.routes.js';
import { createReceiptsService } from './modules/receipts/receipts.service.js';
import { adminUsageRoutes } from './modules/usage/admin-usage.routes.js';
import { createMyUsagePage, usageRoutes } from './modules/usage/usage.routes.js';
import { createUsageService } from './modules/usage/usage.service.js';
import { usersRoutes } from './modules/users/users.routes.js';
import { type BackgroundWork, createBackgroundWork } from './shared/background-work.js';
import { NotAcceptableError } from './shared/errors.js';
import { EARLIEST_LOCAL_DATE, LATEST_LOCAL_DATE } from './shared/local-date.js';
import type { Logger } from './shared/logger.js';
import { MIN_PASSWORD_LENGTH } from './shared/password-policy.js';
import { PROJECT_ROOT } from './shared/paths.js';

export const VIEWS_DIR = path.join(PROJECT_ROOT, 'views');
export const PUBLIC_DIR = path.join(PROJECT_ROOT, 'public');
/** The largest form or JSON body a session-backed route reads. */
const BODY_LIMIT = '100kb';

/** What a visitor asking the home page for JSON is told (406). */
const HOME_PAGE_NOT_JSON =
  "The home page is for people, HTML only. A script signs in with POST /login (the csrf_token of the form at GET /login in the X-CSRFToken header), then reads its usage as JSON at /me; a change (a receipt, POST /me/receipt) sends the session's token, csrfToken in GET /account's JSON, in the X-CSRFToken header; the rates are JSON at /formula.";

type ExpressHandle = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

export interface AppDeps {
  config: AppConfig;
  db: Database;
  logger: Logger;
  metrics: Metrics;
  /** The time source; tests pass a controllable one. */
  now?: () => Date;
  /** Verifies the audit chain; server.ts shares one with the periodic check. Default: one of the app's own. */
  auditChainMonitor?: AuditChainMonitor;
  /** Overrides of the CSV export limits derived from DB_POOL_MAX; tests shorten the stall limit. */
  csvExportLimits?: Partial<CsvExportLimits>;
  /**
   * What GET /metrics answers: by default this process's registry; a cluster worker
   * passes one that asks the primary for the sum over workers.
   */
  scrapeMetrics?: () => Promise<string>;
  /**
   * Where month-end runs, and Run now's ingestion runs that outlast their answer, go on after the
   * request that started them; server.ts stops it on SIGTERM (a month-end run ends after its users in
   * flight, an ingestion run at once). Default: one of the app's own.
   */
  backgroundWork?: BackgroundWork;
  /** How long Run now waits for its run before answering that it goes on (RUN_NOW_ANSWER_WITHIN_MS); tests shorten it. */
  runNowAnswerWithinMs?: number;
  /**
   * True once server.ts has begun a shutdown's drain: /readyz answers 503, hpc_ready reads 0, and month-end
   * and Run now are refused (503). Default: never.
   */
  isDraining?: () => boolean;
}

/** Builds the Express app from its dependencies; it does not listen (server.ts does, tests use supertest). */
export function createApp(deps: AppDeps): express.Express {
  const { config, db, logger, metrics } = deps;
  const now = deps.now ?? (() => new Date());
  // One for month-end and Run now, so that server.ts's shutdown stops both.
  const backgroundWork = deps.backgroundWork ?? createBackgroundWork();
  configureAuditChain(config.audit);
  const chainMonitor =
    deps.auditChainMonitor ??
    createAuditChainMonitor({ db: db.prisma, onVerdict: reportChainVerdictTo(metrics), logger });
  const app = express();
  app.disable('x-powered-by');
  // Express hashes every res.send body (SHA-1) for a weak ETag. Nothing here can use one: the
  // pages are no-store, and /formula, the one answer meant to be revalidated, sets its own strong
  // tag. Hashing each 40 kB /me was 1.3% of a worker's CPU (docs/performance-history.md, 2026-12-03 evening).
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  // `?start[]=a` is `start` given as a list, refused as `?start=a&start=b` is, not a key of its own
  // that every route dropped unread (list-shaped-fields.ts).
  app.set('query parser', parseQueryFields);
  app.engine('ejs', createViewEngine({ isProduction: config.isProduction }));
  app.set('view engine', 'ejs');
  app.set('views', VIEWS_DIR);
  // Express enables this only when NODE_ENV=production, which we do not use (APP_ENV);
  // without it EJS compiles every template and include again on every render.
  app.set('view cache', config.isProduction);
  app.locals.appName = 'HPC Billing';
  app.locals.currency = config.currency;
  app.locals.fmt = createViewFormatters(config);
  app.locals.minPasswordLength = MIN_PASSWORD_LENGTH;
  // The dates the app reads, as the From/To fields' min and max: the browser says an out-of-range
  // date at the field instead of sending it to be refused.
  app.locals.dateRange = { min: EARLIEST_LOCAL_DATE, max: LATEST_LOCAL_DATE };
  // Every page that links a CSV for people links its "CSV for Excel" (bom=1) beside it.
  app.locals.excelCsvLink = excelCsvLinkOf;

  const rates = createRatesService({ db, config, now });
  // One provider for starting checkouts and for closing those a void canceled.
  const paymentProvider = buildPaymentProvider(config.payments);
  const closeCanceledCheckouts = createCheckoutCloser({ db, provider: paymentProvider, metrics, logger });
  const receipts = createReceiptsService({
    db,
    config,
    rates,
    metrics,
    closeCanceledCheckouts,
    now,
    backgroundWork,
    isDraining: deps.isDraining,
    logger,
  });
  const usage = createUsageService({ db, config, rates, receipts, now });
  const payments = createPaymentsService({
    db,
    config: config.payments,
    metrics,
    logger,
    now,
    timeZone: config.timeZone,
    provider: paymentProvider,
    closeCanceledCheckouts,
  });
  const csvExports = createCsvExports({
    limits: { ...csvExportLimitsFor(config.dbPoolMax, config.csvExportStallMs), ...deps.csvExportLimits },
    logger,
    metrics,
  });
  app.locals.onlinePayment = payments.providerName ?? '';
  app.locals.findUnmetMinimumCharge = payments.findUnmetMinimumCharge;
  app.locals.findUnpayableStep = payments.findUnpayableStep;
  app.locals.costStep = pricedStepOf(config.currency, config.payments) ?? '';
  app.locals.refusedForm = describeRefusedForm;

  app.use(requestContext(logger));
  app.use(httpMetrics(deps.metrics));
  deps.metrics.observeDbPool(db.pool);
  deps.metrics.observePaymentProvider(payments.providerName);
  // A scrape asks the database within Prometheus's scrape_timeout (10 s by default), whatever
  // READY_TIMEOUT_MS allows /readyz: with a longer one, a scrape of a silent database timed out, up
  // read 0 and AppDown ("cannot scrape") paged instead of AppNotReady, which never fired.
  const scrapeReadTimeoutMs = Math.min(config.readyTimeoutMs, SCRAPE_DATABASE_READ_LIMIT_MS);
  // /readyz's probes and the scrapes' checks both tell it: with no load balancer probing (compose),
  // the scrapes still log the `not ready` warning AppNotReady's description points to.
  const readinessLog = createReadinessLog({ logger, now: () => now().getTime() });
  // Read once, at start: every check compares the database's applied migrations with them.
  const expectedMigrations = shippedMigrationNames();
  // A check that failed says nothing of the migrations (a database away or behind): the last value stays.
  const observeSchemaAhead = (readiness: Readiness) => {
    if (readiness.isReady) deps.metrics.schemaUnknownMigrations.set(readiness.warning?.unknownMigrations.length ?? 0);
  };
  deps.metrics.observeReadiness(async () => {
    const readiness = await checkReadiness(db.pool, scrapeReadTimeoutMs, expectedMigrations);
    readinessLog.report(readiness);
    observeSchemaAhead(readiness);
    return readiness.isReady;
  });
  if (deps.isDraining) deps.metrics.observeDrain(deps.isDraining);
  deps.metrics.observeIngestionFreshness(() =>
    findLastIngestionSuccess(db, scrapeReadTimeoutMs, config.ingestion.cluster),
  );
  if (payments.providerName) {
    deps.metrics.observeOpenCheckouts(() => findOldestOpenCheckouts(db, scrapeReadTimeoutMs));
  }
  const helmetHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        // Helmet's default is `'self' https: data:`: fonts from any https origin, where no page uses a web font.
        'font-src': ["'self'"],
        'frame-ancestors': ["'none'"],
        // Paying online submits a form that redirects to the provider's hosted checkout.
        'form-action': ["'self'", ...checkoutOrigins(config.payments)],
        'upgrade-insecure-requests': config.isHttpsRequired ? [] : null,
      },
    },
    referrerPolicy: { policy: REFERRER_POLICY },
    // For browsers that read only X-Frame-Options: the same as frame-ancestors 'none' above.
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: config.isHttpsRequired,
  });
  // Helmet sets no Permissions-Policy; set with its headers, so the hot routes capture it too.
  const securityHeaders = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
    res.setHeader('Permissions-Policy', PERMISSIONS_POLICY);
    helmetHeaders(req, res, next);
  };
  app.use(securityHeaders);
  // redirect: false: a folder (/static, /static/css) is the 404 of any address nothing is at, not a
  // 301 to the same folder with a slash that then answered 404.
  app.use(
    '/static',
    express.static(PUBLIC_DIR, { maxAge: config.isProduction ? '1d' : 0, index: false, redirect: false }),
    refuseOtherMethodsOnStaticFiles(PUBLIC_DIR),
  );
  app.get('/favicon.ico', serveFavicon(PUBLIC_DIR));
  app.use(answerOptions);

  app.use(
    healthRoutes({
      pool: db.pool,
      readyTimeoutMs: config.readyTimeoutMs,
      expectedMigrations,
      onReadiness: (readiness) => {
        deps.metrics.ready.set(readiness.isReady ? 1 : 0);
        observeSchemaAhead(readiness);
        readinessLog.report(readiness);
      },
      isDraining: deps.isDraining,
    }),
  );
  if (config.metrics.isEnabled) {
    const scrape = deps.scrapeMetrics ?? (() => deps.metrics.registry.metrics());
    app.use(metricsRoutes({ scrape, token: config.metrics.token }));
  }

  // Signed by the provider instead of a session: raw body, no session, no CSRF.
  app.use(paymentWebhookRoutes({ payments }));

  // Public and polled thousands of times a second: before sessions, so it never reads the session store.
  app.use(formulaRoutes({ rates }));

  // /healthz and plain /formula skip Express altogether (see hot-routes.ts); the routes
  // above still answer their variants (HEAD, ?type=) and any error of the fast path.
  const serveHotRoute = createHotRoutes({
    securityHeaders: captureStaticHeaders(securityHeaders),
    rates,
    metrics,
    logger,
  });
  // Express calls app.handle for every request (app(req, res) is app.handle(req, res, next)).
  const routable = app as unknown as { handle: ExpressHandle };
  const handleWithExpress = routable.handle.bind(app);
  routable.handle = (req, res, next) => {
    lowerCaseForwardedProto(req);
    if (!serveHotRoute(req, res, (again) => handleWithExpress(again, res, next))) handleWithExpress(req, res, next);
  };

  // Everything below is session-backed: signed in via passport, CSRF-checked.
  const sessionSettings = {
    secret: config.sessionSecret,
    isSecureCookie: config.isHttpsRequired,
    idleSec: config.auth.sessionIdleSec,
    absoluteSec: config.auth.sessionAbsoluteSec,
    now,
  };
  const authDeps = { db, metrics, lockout: config.auth, now, auditedLocks: new FirstRefusals() };
  const passport = createPassport(authDeps);
  app.use(expireRenamedCookies({ isSecureCookie: config.isHttpsRequired }));
  app.use(createSessionMiddleware(db.pool, sessionSettings));
  app.use(saveSessionBeforeResponding);
  app.use(enforceSessionLifetime(sessionSettings));
  app.use(passport.session());
  // Bodies are read in UTF-8 alone, as the webhooks (mounted before) read theirs: the parsers take other charsets.
  app.use(refuseBodyCharsetNotUtf8);
  // Text in UTF-8 alone, %-escapes decoded: a query or form in Latin-1 (`caf%E9`) was read as
  // U+FFFD or as the escape's own text, and stored so (percent-encoded-utf8.ts).
  app.use(refuseQueryNotUtf8);
  app.use(
    express.urlencoded({
      extended: false,
      limit: BODY_LIMIT,
      parameterLimit: FORM_FIELD_LIMIT,
      verify: refuseFormNotUtf8,
    }),
  );
  // Rates (and a mark paid's amount received) sent as JSON numbers are judged by the digits the client
  // typed (1e3 is refused, not read as 1000; 0.10000000000000001 is not 0.1): these routes' JSON keeps
  // each number's text.
  // Mounted as middleware, not as a route (app.post): a route would lend a request that the CSRF check
  // below refuses the label "/formula,/admin/rates,/admin/rates/tiers" in the logs and metrics, where
  // every other refusal in front of the routes is before_route. Each path alone, for that path only.
  const numberTextJson = jsonKeepingNumberText({ limit: BODY_LIMIT });
  for (const path of [...RATE_WRITE_PATHS, MARK_PAID_PATH]) {
    app.use(path, (req, res, next) =>
      req.method === 'POST' && req.path === '/' ? numberTextJson(req, res, next) : next(),
    );
  }
  // Not strict: a list or a bare value is valid JSON, refused next with a message saying so.
  // A key given twice is refused, as a form field given twice is: JSON.parse would keep the last unseen.
  app.use(express.json({ limit: BODY_LIMIT, strict: false, verify: refuseDuplicateJsonKeys }));
  app.use(requireObjectBody);
  app.use(rejectUnstorableText);
  app.post('/login', redirectSignedInFromSignIn);
  app.post('/logout', redirectSignedOutFromSignOut);
  app.use(createCsrfProtection({ secret: config.sessionSecret, isSecureCookie: config.isHttpsRequired }));
  app.use('/login', signInFormOnExpiredToken({ isHttpsRequired: config.isHttpsRequired }));
  app.use(exposeFlash);
  app.use((req, res, next) => {
    // Pages behind a session hold someone's data and a CSRF token: after signing out, Back
    // must ask the server again, not show them from the browser's cache.
    res.set('Cache-Control', 'no-store');
    res.locals.currentUser = req.user;
    // The header marks the nav link of the page being read (aria-current).
    res.locals.currentPath = req.path;
    exposeCsrfTokenOnRender(req, res);
    next();
  });

  const guards = createGuards({ db, metrics, timeZone: config.timeZone, now, forbiddenRefusals: new FirstRefusals() });
  app.get('/', (req, res) => {
    if (req.user) return res.redirect(302, req.user.role === 'admin' ? '/admin' : '/me');
    // A script that is not signed in (never, or its session ended) got the page at 200, which read as
    // an answer: the home page has no JSON, so it says how a script signs in and where the JSON is.
    if (prefersJson(req)) throw new NotAcceptableError(HOME_PAGE_NOT_JSON, { publicFields: { jsonUrl: '/formula' } });
    res.render('home', { title: 'HPC Billing' });
  });
  app.use(authRoutes({ db, passport, now, isHttpsRequired: config.isHttpsRequired, logger }));
  app.use(usersRoutes({ db: db.prisma, guards, auth: authDeps, passport }));
  app.use(
    auditRoutes({
      db: db.prisma,
      guards,
      csvExports,
      timeZone: config.timeZone,
      now,
      chainMonitor,
    }),
  );
  app.use(ratesPageRoutes({ rates }));
  app.use(pricingAdminRoutes({ rates, guards, timeZone: config.timeZone }));
  // /me and a receipt's page are also where their refused forms come back to.
  const showMyUsage = createMyUsagePage({ usage });
  const showOwnReceipt = createOwnReceiptPage(receipts);
  app.use(usageRoutes({ usage, csvExports, guards, showMyUsage }));
  app.use(receiptsRoutes({ receipts, csvExports, guards, showMyUsage, showOwnReceipt }));
  app.use(paymentRoutes({ payments, guards, showOwnReceipt }));
  app.use(adminUsageRoutes({ usage, csvExports, guards }));
  app.use(adminBillingRoutes({ receipts, usage, csvExports, guards }));
  app.use(
    ingestionRoutes({
      db,
      guards,
      service: buildIngestionService({
        config,
        db,
        logger,
        metrics,
        now,
        backgroundWork,
        runNowAnswerWithinMs: deps.runNowAnswerWithinMs,
        isDraining: deps.isDraining,
      }),
      timeZone: config.timeZone,
      cluster: config.ingestion.cluster,
      now,
    }),
  );
  app.use(
    adminRoutes({
      guards,
      sections: [
        {
          href: '/admin/usage',
          title: 'Usage',
          description: "Everyone's usage by user, account, partition and window; CSV exports.",
        },
        {
          href: '/admin/receipts',
          title: 'Billing',
          description: 'Receipts by status, user and date; mark paid, void, month-end run, paid CSV.',
        },
        {
          href: '/admin/rates',
          title: 'Edit rates',
          description:
            'Pricing tiers and their rate history; add, rename or delete a tier, set new rates, choose the default tier.',
        },
        {
          href: '/admin/tiers',
          title: 'Tier overrides',
          description: "Each user's natural and effective tier; move a user to another tier.",
        },
        {
          href: '/admin/payments',
          title: 'Payments',
          description: 'Online payments and webhook deliveries; the ones needing review first.',
        },
        {
          href: '/admin/users',
          title: 'Users',
          description: 'Create users, reset passwords, change roles, disable accounts.',
        },
        {
          href: '/admin/audit',
          title: 'Audit log',
          description: 'Every sign-in and change, hash-chained; verify and export.',
        },
        {
          href: '/admin/ingestion',
          title: 'Ingestion',
          description: 'Slurm accounting runs, data freshness, and a run now button.',
        },
      ],
    }),
  );

  app.use(notFoundHandler);
  app.use(
    errorHandler(logger, {
      isHttpsRequired: config.isHttpsRequired,
      onPoolWaitTimedOut: () => deps.metrics.dbPoolWaitTimeouts.inc(),
    }),
  );
  return app;
}
