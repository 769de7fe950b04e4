import path from 'node:path';
import { demoSacctFilePath } from '../modules/demo/demo-jobs.js';
import { normalizeClusterName } from '../modules/ingestion/slurm-time.parser.js';
import type { CpuBasis, TierRule } from '../modules/pricing/pricing.js';
import { crossSettingProblems, type TEnv, ZEnv } from './config.schema.js';
import { zoneFileSpelling } from './time-zone-spelling.js';

/**
 * The dummy provider's webhook secret when PAYMENT_WEBHOOK_SECRET is unset (development only: production
 * refuses the dummy provider). It is published (docs/payments.md), so anyone can sign with it.
 */
export const DEV_DUMMY_WEBHOOK_SECRET = 'development-only-dummy-webhook-secret';

/** Settings the rest of the code reads; built once from the environment at start-up. */
export interface AppConfig {
  env: TEnv['APP_ENV'];
  isProduction: boolean;
  port: number;
  host: string;
  /** Unset means: start the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined;
  dbPoolMax: number;
  /** A query with no answer for this long fails (503) and its connection is destroyed. */
  dbQueryTimeoutMs: number;
  /** Opening a connection (or waiting for a free one) longer than this fails (503). */
  dbConnectTimeoutMs: number;
  /** How long a start keeps trying a configured database it cannot reach yet; 0: it fails at once. */
  dbStartWaitSec: number;
  dataDir: string;
  sessionSecret: string;
  audit: {
    /** The key that seals new audit entries first, then keys that sealed older ones; none: unsealed. */
    chainKeys: string[];
    /** Entries up to this id were written before the chain was sealed (AUDIT_CHAIN_UNSEALED_UNTIL). */
    unsealedUntil: bigint;
    /** How often one process per instance verifies the whole chain. */
    verifyIntervalSec: number;
  };
  timeZone: string;
  currency: string;
  metrics: { isEnabled: boolean; hasProcessMetrics: boolean; token: string | undefined };
  logLevel: TEnv['LOG_LEVEL'];
  trustProxy: boolean | number | string[];
  /**
   * Secure cookies, HSTS and the CSP's upgrade-insecure-requests, and sign-in refused over plain
   * HTTP (as Express sees the request through trustProxy). REQUIRE_HTTPS; on in production.
   */
  isHttpsRequired: boolean;
  webConcurrency: number;
  shutdownTimeoutMs: number;
  /**
   * After SIGTERM, how long /readyz answers 503 while requests are still served, before the
   * graceful close (and its shutdownTimeoutMs) begins: a load balancer or a Kubernetes Service
   * takes seconds to stop sending new requests.
   */
  shutdownDrainDelayMs: number;
  readyTimeoutMs: number;
  /** A CSV export whose client takes nothing for this long is cut off and gives up its slot. */
  csvExportStallMs: number;
  /** How long receiving a request's headers, and the whole request, may take (408 after). */
  http: HttpTimeouts;
  /** PUBLIC_BASE_URL as configured (payments.publicBaseUrl falls back to localhost without it). */
  publicBaseUrl: string | undefined;
  /** Seed demo users and jobs into an empty database; never in production. */
  shouldSeedDemo: boolean;
  /**
   * SUDO_USER as sudo sets it: who typed `sudo` (undefined when unset or blank). Not a setting, and
   * not proof (whoever is root can set it): the command-line tools record it in their audit entries
   * beside the OS user, which under sudo is root (src/cli/cli-audit-context.ts).
   */
  sudoUser: string | undefined;
  auth: {
    perAddress: { maxFailures: number; windowSec: number; lockSec: number };
    perUser: { maxFailures: number; windowSec: number; lockSec: number };
    /** Failed sign-ins per client network (AUTH_ADDRESS_*) across every username. */
    perNetwork: { maxFailures: number; windowSec: number; lockSec: number };
    /** How often the throttle rows whose window and lock have ended are deleted (once per instance). */
    pruneIntervalSec: number;
    sessionIdleSec: number;
    sessionAbsoluteSec: number;
    /** How often the expired sessions are deleted (once per instance). */
    sessionPruneIntervalSec: number;
    /** The nice value of the threads that hash and verify passwords (docs/operations.md). */
    passwordHashNiceness: number;
    /** Created at start-up when no user of that name exists. */
    bootstrapAdmin: { username: string; password: string } | undefined;
  };
  pricing: {
    cpuBasis: CpuBasis;
    /** Ordered username rules; the first match gives the natural tier. */
    tierRules: TierRule[];
    /** How often a worker asks the database whether rates changed (0: on every read). */
    cacheCheckMs: number;
  };
  ingestion: IngestionConfig;
  payments: PaymentsConfig;
}

/** Limits on receiving a request, never on sending the answer (DEFAULT_HTTP_*_TIMEOUT_MS). */
export interface HttpTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** Online payment; see docs/payments.md. */
export interface PaymentsConfig {
  provider: 'none' | 'dummy' | 'stripe';
  /** Signs the dummy provider's webhooks. */
  webhookSecret: string;
  stripe: { secretKey: string; webhookSecret: string; toleranceSec: number; apiUrl: string | undefined } | undefined;
  /** Where providers send payers back to. */
  publicBaseUrl: string;
}

/** Where Slurm accounting comes from and how often; see docs/ingestion.md. */
export interface IngestionConfig {
  isEnabled: boolean;
  intervalSec: number;
  overlapSec: number;
  lookbackSec: number;
  /** The cluster name for records without one; also `sacct --clusters` when set explicitly. */
  cluster: string | undefined;
  slurmrestd:
    | {
        url: string;
        user: string;
        token: string | undefined;
        tokenFile: string | undefined;
        /** Undefined: ask the server's OpenAPI document. */
        apiVersion: string | undefined;
        caFile: string | undefined;
        timeoutMs: number;
      }
    | undefined;
  /** sacctmgr (SACCTMGR_PATH, default beside sacct) lists the clusters when sacct reads none for SLURM_CLUSTER. */
  sacct:
    | {
        path: string;
        timeoutMs: number;
        sacctmgrPath: string | undefined;
        /**
         * The environment sacct and sacctmgr inherit: the app's own as read at start-up (PATH,
         * HOME, a site's Slurm variables such as SLURM_CONF), before the source takes out the ones
         * that change what sacct reads or prints.
         */
        inheritedEnvironment: Readonly<Record<string, string | undefined>>;
      }
    | undefined;
  /** An sacct --parsable2 file with a header row; in development with the demo and no Slurm source, the demo's file. */
  fallbackCsv: string | undefined;
}

/** EX_CONFIG (sysexits.h): what the server and every tool exit with on a ConfigError. */
export const CONFIG_ERROR_EXIT_CODE = 78;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

// Only for development: sessions signed with it survive restarts of the demo.
const DEVELOPMENT_SESSION_SECRET = 'development-only-session-secret-not-for-production';

/**
 * NODE_ENV=production (a service unit's, an image's, a shell profile's) with APP_ENV left out ran the
 * development mode on the production database: demo logins (admin/admin) seeded into an empty one,
 * sessions signed with the known development secret, the dummy provider taking fake payments. The
 * app never reads NODE_ENV otherwise; here it only asks for APP_ENV to be said.
 */
function unsetModeProblems(source: NodeJS.ProcessEnv): string[] {
  if (source.APP_ENV?.trim() || source.NODE_ENV?.trim() !== 'production') return [];
  return [
    'APP_ENV: is unset while NODE_ENV=production: set APP_ENV=production for a production instance, or ' +
      'APP_ENV=development for the demo (unset, it would run the development mode: demo logins seeded into an ' +
      'empty database, a known session secret, the dummy payment provider)',
  ];
}

/**
 * A production start migrates the database it reaches, and a DATABASE_URL that names none reaches the
 * one named as its user (pg's default, unless PGDATABASE names one): for `postgres`, the server's own
 * maintenance database, which the start filled with the app's tables while its log line said only
 * `"database":"configured"`. Development names the database reached in its banner instead. A URL that
 * cannot be read is left to its own problem.
 */
function unnamedDatabaseProblems(source: NodeJS.ProcessEnv): string[] {
  if (source.APP_ENV?.trim().toLowerCase() !== 'production' || source.PGDATABASE?.trim()) return [];
  const url = source.DATABASE_URL?.trim() ?? '';
  if (!/^postgres(ql)?:\/\//.test(url)) return [];
  let parsed: URL;
  try {
    // As pg reads it: an empty host (user:pass@/db) means the default one.
    parsed = new URL(url.replace('@/', '@localhost/'));
  } catch {
    return [];
  }
  if (parsed.pathname.length > 1 || parsed.searchParams.get('database')) return [];
  return [
    "DATABASE_URL: names no database, so PostgreSQL would take the user's name (postgres: the server's own " +
      "maintenance database) and the app's tables would be created there; name the app's database: " +
      'postgresql://user:password@host:5432/DATABASE',
  ];
}

/** Parses the environment once; throws ConfigError listing every problem. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = ZEnv.safeParse(source);
  const modeProblems = [...unsetModeProblems(source), ...unnamedDatabaseProblems(source)];
  if (parsed.success && modeProblems.length > 0) throw new ConfigError(modeProblems);
  if (!parsed.success) {
    // zod runs the rules across settings only when every setting parsed; run them on the raw
    // text too, so a production start does not reveal a missing DATABASE_URL one fix later.
    const malformed = new Set(parsed.error.issues.map((issue) => issue.path.join('.')));
    const problems = [
      ...parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
      // A setting already named as malformed is not named again by the rules across settings.
      ...crossSettingProblems(source)
        .filter((problem) => !malformed.has(problem.path))
        .map((problem) => `${problem.path}: ${problem.message}`),
    ];
    throw new ConfigError([...new Set([...modeProblems, ...problems])]);
  }
  const env = parsed.data;
  const isProduction = env.APP_ENV === 'production';
  return {
    env: env.APP_ENV,
    isProduction,
    port: env.PORT,
    // A demo with admin/admin should not listen on every interface by default.
    host: env.HOST ?? (isProduction ? '0.0.0.0' : '127.0.0.1'),
    databaseUrl: env.DATABASE_URL,
    dbPoolMax: env.DB_POOL_MAX,
    dbQueryTimeoutMs: env.DB_QUERY_TIMEOUT_MS,
    dbConnectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
    dbStartWaitSec: env.DB_START_WAIT_SEC,
    dataDir: path.resolve(env.DATA_DIR),
    sessionSecret: env.SESSION_SECRET ?? DEVELOPMENT_SESSION_SECRET,
    audit: {
      // Old keys only verify: a chain sealed by none of them would otherwise be left unsealed.
      chainKeys: env.AUDIT_CHAIN_KEY ? [env.AUDIT_CHAIN_KEY, ...env.AUDIT_CHAIN_OLD_KEYS] : [],
      unsealedUntil: BigInt(env.AUDIT_CHAIN_UNSEALED_UNTIL),
      verifyIntervalSec: env.AUDIT_VERIFY_INTERVAL_SEC,
    },
    // Spelt as its zone file is, under TZDIR as the C library reads it: sacct runs with TZ=APP_TZ.
    timeZone: zoneFileSpelling(env.APP_TZ, source.TZDIR || undefined),
    currency: env.CURRENCY,
    metrics: { isEnabled: env.METRICS_ENABLED, hasProcessMetrics: env.METRICS_PROCESS, token: env.METRICS_TOKEN },
    logLevel: env.LOG_LEVEL,
    trustProxy: env.TRUST_PROXY,
    isHttpsRequired: env.REQUIRE_HTTPS ?? isProduction,
    webConcurrency: env.WEB_CONCURRENCY,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainDelayMs: env.SHUTDOWN_DRAIN_DELAY_MS,
    readyTimeoutMs: env.READY_TIMEOUT_MS,
    csvExportStallMs: env.CSV_EXPORT_STALL_MS,
    http: { headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS },
    publicBaseUrl: env.PUBLIC_BASE_URL,
    shouldSeedDemo: env.DEMO_SEED && !isProduction,
    sudoUser: source.SUDO_USER?.trim() || undefined,
    auth: {
      perAddress: { maxFailures: env.AUTH_MAX_FAILS, windowSec: env.AUTH_WINDOW_SEC, lockSec: env.AUTH_LOCK_SEC },
      perUser: {
        maxFailures: env.AUTH_USER_MAX_FAILS,
        windowSec: env.AUTH_USER_WINDOW_SEC,
        lockSec: env.AUTH_USER_LOCK_SEC,
      },
      perNetwork: {
        maxFailures: env.AUTH_ADDRESS_MAX_FAILS,
        windowSec: env.AUTH_ADDRESS_WINDOW_SEC,
        lockSec: env.AUTH_ADDRESS_LOCK_SEC,
      },
      pruneIntervalSec: env.AUTH_PRUNE_INTERVAL_SEC,
      passwordHashNiceness: env.PASSWORD_HASH_NICENESS,
      sessionIdleSec: env.SESSION_IDLE_SEC,
      sessionAbsoluteSec: env.SESSION_ABSOLUTE_SEC,
      sessionPruneIntervalSec: env.SESSION_PRUNE_INTERVAL_SEC,
      bootstrapAdmin:
        env.ADMIN_USERNAME && env.ADMIN_PASSWORD
          ? { username: env.ADMIN_USERNAME, password: env.ADMIN_PASSWORD }
          : undefined,
    },
    pricing: {
      cpuBasis: env.PRICING_CPU_BASIS,
      tierRules: env.PRICING_TIER_RULES,
      cacheCheckMs: env.PRICING_CACHE_CHECK_MS,
    },
    ingestion: readIngestionConfig(env, source, isProduction),
    payments: {
      provider: env.PAYMENT_PROVIDER ?? (isProduction ? 'none' : 'dummy'),
      // Development only (production refuses the dummy provider): the signature is still checked.
      webhookSecret: env.PAYMENT_WEBHOOK_SECRET ?? DEV_DUMMY_WEBHOOK_SECRET,
      stripe:
        env.STRIPE_SECRET_KEY && env.STRIPE_WEBHOOK_SECRET
          ? {
              secretKey: env.STRIPE_SECRET_KEY,
              webhookSecret: env.STRIPE_WEBHOOK_SECRET,
              toleranceSec: env.STRIPE_WEBHOOK_TOLERANCE_SEC,
              apiUrl: env.STRIPE_API_URL,
            }
          : undefined,
      publicBaseUrl: env.PUBLIC_BASE_URL ?? `http://localhost:${env.PORT}`,
    },
  };
}

function readIngestionConfig(env: TEnv, source: NodeJS.ProcessEnv, isProduction: boolean): IngestionConfig {
  const dataDir = path.resolve(env.DATA_DIR);
  const isDemo = env.DEMO_SEED && !isProduction;
  return {
    isEnabled: env.INGEST_ENABLED,
    intervalSec: env.INGEST_INTERVAL_SEC,
    overlapSec: env.INGEST_OVERLAP_SEC,
    lookbackSec: env.INGEST_LOOKBACK_DAYS * 86_400,
    // As Slurm stores it (lower case), so the sources ask for and store the name sacct and slurmrestd give.
    cluster: env.SLURM_CLUSTER === undefined ? undefined : normalizeClusterName(env.SLURM_CLUSTER),
    slurmrestd: env.SLURMRESTD_URL
      ? {
          url: env.SLURMRESTD_URL,
          user: env.SLURMRESTD_USER as string,
          token: env.SLURMRESTD_TOKEN,
          tokenFile: env.SLURMRESTD_TOKEN_FILE ? path.resolve(env.SLURMRESTD_TOKEN_FILE) : undefined,
          apiVersion: env.SLURMRESTD_API_VERSION === 'auto' ? undefined : env.SLURMRESTD_API_VERSION,
          caFile: env.SLURMRESTD_CA_FILE ? path.resolve(env.SLURMRESTD_CA_FILE) : undefined,
          timeoutMs: env.SLURMRESTD_TIMEOUT_MS,
        }
      : undefined,
    sacct: env.SACCT_PATH
      ? {
          path: env.SACCT_PATH,
          timeoutMs: env.SACCT_TIMEOUT_MS,
          sacctmgrPath: env.SACCTMGR_PATH,
          inheritedEnvironment: { ...source },
        }
      : undefined,
    // The demo's file stands in for Slurm only while no Slurm is configured: behind slurmrestd or
    // sacct it "answered" every run they failed (a wrong token, slurmrestd down) with the demo's
    // jobs, so the run succeeded and its window moved past the real jobs it never read.
    fallbackCsv: env.FALLBACK_CSV
      ? path.resolve(env.FALLBACK_CSV)
      : isDemo && !env.SLURMRESTD_URL && !env.SACCT_PATH
        ? demoSacctFilePath(dataDir)
        : undefined,
  };
}
