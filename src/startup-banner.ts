import type { PreparedDatabase } from './bootstrap.js';
import type { AppConfig } from './config/config.js';
import { DEMO_LOGINS } from './modules/demo/demo.service.js';
import { DEMO_EXPORT_LINE_FOR } from './shared/tool-commands.js';

/** The banner's first line: where the app listens. */
function listeningLine(config: Pick<AppConfig, 'host' | 'port'>): string {
  const isEveryInterface = config.host === '0.0.0.0' || config.host === '::';
  // A bare "http://localhost:8000" from a server misled operators into thinking it was
  // reachable only from itself; say what the bind means and where users should go.
  return isEveryInterface
    ? `HPC Billing is listening on port ${config.port} of every interface (${config.host}; http://localhost:${config.port} from this machine)`
    : `HPC Billing is listening on http://${config.host}:${config.port}`;
}

/** A word as a POSIX shell reads it back: bare when it is plain, else in single quotes. */
function quoteForShell(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * Which database a configured URL reaches, as pg reads it, without its user or password: `billing on
 * db:5432`. A URL that names no database (`postgresql://postgres@127.0.0.1:5432`) reaches the one named
 * as its user, for `postgres` the server's own maintenance database, and a development start seeded the
 * demo there saying only `demo data: seeded now`; the banner named no database at all.
 */
export function describeConfiguredDatabase(databaseUrl: string): string | undefined {
  let url: URL;
  try {
    // As pg reads it: an empty host (user:pass@/db) means the default one.
    url = new URL(databaseUrl.replace('@/', '@localhost/'));
  } catch {
    return undefined;
  }
  const host = url.searchParams.get('host') ?? (url.hostname || 'localhost');
  const where = host.startsWith('/') ? `the socket in ${host}` : `${host}:${url.port || '5432'}`;
  const named = decodeURIComponent(url.pathname.slice(1)) || url.searchParams.get('database');
  if (named) return `${named} on ${where}`;
  const user = decodeURIComponent(url.username);
  return user
    ? `${user} on ${where} (the URL names no database, so PostgreSQL took its user's name; name one: postgresql://…/DATABASE)`
    : undefined;
}

/**
 * The start-up announcement as one log line, for production, where stdout carries only JSON
 * lines: the banner's first line as the message, its facts as fields. The banner's other lines
 * are for a person at the demo (database URL, demo logins) or already logged as warnings at
 * start (sign-in needs HTTPS).
 */
export function startupLogLine(
  config: Pick<AppConfig, 'host' | 'port' | 'publicBaseUrl' | 'webConcurrency'>,
  database: Pick<PreparedDatabase, 'isEmbedded' | 'databaseUrl'>,
): { fields: Record<string, string | number>; message: string } {
  // Which database the start migrated and serves, without the URL's user or password: "configured"
  // alone left an operator unable to tell from the log a staging URL from production's.
  const databaseAt = database.isEmbedded ? undefined : describeConfiguredDatabase(database.databaseUrl);
  return {
    message: listeningLine(config),
    fields: {
      host: config.host,
      port: config.port,
      ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl } : {}),
      workers: config.webConcurrency,
      database: database.isEmbedded ? 'embedded' : 'configured',
      ...(databaseAt ? { databaseAt } : {}),
    },
  };
}

/** What `npm start` prints once it serves: where, with how many workers, which database, and how to sign in to the demo. */
export function formatStartupBanner(
  config: Pick<
    AppConfig,
    | 'host'
    | 'port'
    | 'publicBaseUrl'
    | 'dataDir'
    | 'shouldSeedDemo'
    | 'isProduction'
    | 'isHttpsRequired'
    | 'trustProxy'
    | 'webConcurrency'
  >,
  database: Pick<PreparedDatabase, 'databaseUrl' | 'isEmbedded' | 'demo'>,
): string {
  const lines = [listeningLine(config)];
  if (config.publicBaseUrl) lines.push(`  public address: ${config.publicBaseUrl}`);
  // As the production log line's `workers`: someone trying WEB_CONCURRENCY could not tell it was taken.
  const workers = config.webConcurrency;
  lines.push(`  workers: ${workers} ${workers === 1 ? 'process' : 'processes'} (WEB_CONCURRENCY)`);
  if (config.isHttpsRequired && config.trustProxy === false) {
    // The address above is plain HTTP, where a Secure session cookie is never set.
    lines.push(
      '  sign-in needs HTTPS: serve it through a TLS proxy named in TRUST_PROXY (REQUIRE_HTTPS=0 for a trial over plain HTTP)',
    );
  }
  const configuredDatabase =
    database.isEmbedded || !database.databaseUrl ? undefined : describeConfiguredDatabase(database.databaseUrl);
  if (configuredDatabase) lines.push(`  database: ${configuredDatabase}`);
  if (database.isEmbedded) {
    lines.push(`  database: embedded PostgreSQL under ${config.dataDir}`);
    // The port can change from one start to the next and the password lives in the code, so the CLIs that
    // need DATABASE_URL (npm run ingest, user:*, audit:verify, db:*) could not reach the demo otherwise.
    // The cluster listens on loopback only; a configured DATABASE_URL is never printed.
    // DATA_DIR too, absolute: pasted for another checkout, or after `DATA_DIR=... npm start`, the
    // backfill looked for the demo's sacct file under that shell's ./.data and failed (ENOENT).
    if (!config.isProduction) {
      lines.push(
        `  ${DEMO_EXPORT_LINE_FOR} (same port at each start while free): export DATABASE_URL=${database.databaseUrl} DATA_DIR=${quoteForShell(config.dataDir)}`,
      );
    }
  }
  // A database with users of its own (a real system's DATABASE_URL, started without DEMO_SEED=0)
  // was told "kept from an earlier start" and offered admin/admin, which it never had.
  const isSomeoneElsesData = database.demo?.isSeeded === false && database.demo.hasDemoLogins === false;
  if (database.demo) {
    const { unfinishedSeed } = database.demo;
    lines.push(
      database.demo.isSeeded
        ? `  demo data: seeded now (${database.demo.jobCount} Slurm jobs from ${database.demo.sacctFile})`
        : isSomeoneElsesData
          ? "  demo data: not seeded: the database already has users, none of them the demo's (DEMO_SEED seeds only an empty database; DEMO_SEED=0 turns it off)"
          : unfinishedSeed?.isFileMissing
            ? `  demo data: kept from an earlier start whose seed was stopped before all its Slurm jobs were in; their file ${unfinishedSeed.sacctFile} is gone`
            : unfinishedSeed
              ? `  demo data: kept from an earlier start whose seed was stopped; its Slurm jobs finished now (${unfinishedSeed.jobCount} from ${unfinishedSeed.sacctFile})`
              : '  demo data: kept from an earlier start',
    );
  }
  if (config.shouldSeedDemo && !isSomeoneElsesData) {
    const logins = DEMO_LOGINS.map((login) => `${login.username}/${login.password}`).join(', ');
    // Kept data may have new passwords by now; the banner cannot know them.
    const isFresh = database.demo?.isSeeded !== false;
    lines.push(
      isFresh ? `  demo logins: ${logins}` : `  demo logins as first seeded (unless changed since): ${logins}`,
    );
  }
  return lines.join('\n');
}
