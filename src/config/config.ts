import path from 'node:path';
import type { CpuBasis, TierRule } from '../modules/pricing/pricing.js';
import { type TEnv, ZEnv } from './config.schema.js';

/** Settings the rest of the code reads; built once from the environment at start-up. */
export interface AppConfig {
  env: TEnv['APP_ENV'];
  isProduction: boolean;
  port: number;
  host: string;
  /** Unset means: start the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined;
  dbPoolMax: number;
  dataDir: string;
  sessionSecret: string;
  timeZone: string;
  currency: string;
  metrics: { isEnabled: boolean; hasProcessMetrics: boolean; token: string | undefined };
  logLevel: TEnv['LOG_LEVEL'];
  trustProxy: boolean | number | string[];
  webConcurrency: number;
  shutdownTimeoutMs: number;
  readyTimeoutMs: number;
  /** Seed demo users and jobs into an empty database; never in production. */
  shouldSeedDemo: boolean;
  auth: {
    perAddress: { maxFailures: number; windowSec: number; lockSec: number };
    perUser: { maxFailures: number; windowSec: number; lockSec: number };
    sessionIdleSec: number;
    sessionAbsoluteSec: number;
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
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

// Only for development: sessions signed with it survive restarts of the demo.
const DEVELOPMENT_SESSION_SECRET = 'development-only-session-secret-not-for-production';

/** Parses the environment once; throws ConfigError listing every problem. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = ZEnv.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
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
    dataDir: path.resolve(env.DATA_DIR),
    sessionSecret: env.SESSION_SECRET ?? DEVELOPMENT_SESSION_SECRET,
    timeZone: env.APP_TZ,
    currency: env.CURRENCY,
    metrics: { isEnabled: env.METRICS_ENABLED, hasProcessMetrics: env.METRICS_PROCESS, token: env.METRICS_TOKEN },
    logLevel: env.LOG_LEVEL,
    trustProxy: env.TRUST_PROXY,
    webConcurrency: env.WEB_CONCURRENCY,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    readyTimeoutMs: env.READY_TIMEOUT_MS,
    shouldSeedDemo: env.DEMO_SEED && !isProduction,
    auth: {
      perAddress: { maxFailures: env.AUTH_MAX_FAILS, windowSec: env.AUTH_WINDOW_SEC, lockSec: env.AUTH_LOCK_SEC },
      perUser: {
        maxFailures: env.AUTH_USER_MAX_FAILS,
        windowSec: env.AUTH_USER_WINDOW_SEC,
        lockSec: env.AUTH_USER_LOCK_SEC,
      },
      sessionIdleSec: env.SESSION_IDLE_SEC,
      sessionAbsoluteSec: env.SESSION_ABSOLUTE_SEC,
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
  };
}
