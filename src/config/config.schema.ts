import { statSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { reservedActorProblemOf } from '../modules/audit/audit-actors.js';
import { parseTierRules } from '../modules/pricing/pricing.js';
import { MAX_TIER_NAME_LENGTH, ZNewTierName } from '../modules/pricing/pricing.schema.js';
import { ZNewPassword } from '../shared/password-policy.js';

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

/** Reads 1/true/yes/on or 0/false/no/off (any case); anything else is an issue. */
function readFlag(value: string, ctx: z.RefinementCtx): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  // In the words of the other settings' refusals ("must be ... (got ...)"), the value quoted as they quote it.
  ctx.addIssue({ code: 'custom', message: `must be 1/0, true/false, yes/no or on/off (got ${JSON.stringify(value)})` });
  return z.NEVER;
}

/**
 * An environment flag: 1/true/yes/on or 0/false/no/off, nothing else; unset or empty takes the
 * default, as an empty number does. Read as off, `INGEST_ENABLED=` or `METRICS_ENABLED=` left
 * blank in an env file stopped ingestion or the metrics the alerts need, without a word.
 */
export const zFlag = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => (value === undefined || value.trim() === '' ? fallback : readFlag(value, ctx)));

/**
 * A flag whose default depends on other settings: unset or empty is undefined, so an empty line
 * in an env file cannot switch off a secure default.
 */
const zFlagOrDefault = z.preprocess(
  (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
  z
    .string()
    .optional()
    .transform((value, ctx) => (value === undefined ? undefined : readFlag(value, ctx))),
);

/**
 * A whole number from min to max in plain digits (spaces around it are ignored); unset or
 * empty takes the default. Number() would read "1e3", "0x10" and "1.0"; they are refused.
 * Every refusal names the whole range and quotes what was given: "-5" is a whole number, so
 * "must be a whole number" alone would send an operator looking for the wrong mistake.
 */
const zInt = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx): number => {
      const text = value?.trim() ?? '';
      if (text === '') return fallback;
      const problem = numberSettingProblem(text, min, max);
      if (problem === undefined) return Number(text);
      ctx.addIssue({ code: 'custom', message: `${problem} (got ${JSON.stringify(value)})` });
      return z.NEVER;
    });

function numberSettingProblem(text: string, min: number, max: number): string | undefined {
  if (!/^\d+$/.test(text)) return `must be a whole number from ${min} to ${max}, in plain digits`;
  const value = Number(text);
  // The whole range either way: an operator told only "at least 1" guesses at the ceiling next.
  if (value < min || value > max) return `must be from ${min} to ${max}`;
  return undefined;
}

/**
 * One of a fixed list of words, said in the same plain words as the other settings ("must be one of
 * development or production (got \"prod\")") rather than the validator's own. Empty or only spaces
 * is unset, as for the number settings, so an `.env` line left blank takes the default.
 */
const choiceOf = <const T extends readonly [string, ...string[]]>(choices: T) =>
  z.enum(choices, {
    error: (issue) =>
      `must be one of ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)} (got ${JSON.stringify(issue.input)})`,
  });

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);

const isBlank = (value: unknown) => value === undefined || (typeof value === 'string' && value.trim() === '');

const zChoice = <const T extends readonly [string, ...string[]]>(choices: T, fallback: T[number]) =>
  z.preprocess((value) => (isBlank(value) ? fallback : value), choiceOf(choices));

/** As zChoice, where unset means "decided elsewhere" (PAYMENT_PROVIDER's default follows APP_ENV). */
const zOptionalChoice = <const T extends readonly [string, ...string[]]>(choices: T) =>
  z.preprocess((value) => (isBlank(value) ? undefined : value), choiceOf(choices).optional());

const isEmptyText = (value: unknown) => typeof value === 'string' && value.trim() === '';

const emptyMessage = (need: string, whenLeftOut: string) =>
  `is empty; set it to ${need}, or leave it out ${whenLeftOut}`;

/**
 * A text setting: given as an empty string (or only spaces), as an `.env` line `SLURM_CLUSTER=` or
 * `export SESSION_SECRET=` with nothing after it, it is refused with one readable line, saying it is
 * empty, what it needs and what leaving it out does, instead of the validator's own wording ("Too
 * small: expected string to have >=1 characters") or a rule meant for a wrong value.
 */
const text = <T extends z.ZodType>(need: string, whenLeftOut: string, schema: T) =>
  z.preprocess((value, ctx) => {
    if (isEmptyText(value)) {
      ctx.addIssue({ code: 'custom', message: emptyMessage(need, whenLeftOut) });
      return z.NEVER;
    }
    return value;
  }, schema);

/**
 * The settings whose empty refusal depends on APP_ENV: text()'s "or leave it out for a
 * development-only secret / to start the embedded PostgreSQL" is development's advice, and
 * production refuses either left out, so following it led to the next refusal. A setting alone
 * cannot see APP_ENV, so crossSettingProblems refuses them empty; in DATABASE_URL's then
 * SESSION_SECRET's order, as ZEnv's shape lists them.
 */
const EMPTY_BY_MODE = {
  DATABASE_URL: {
    need: 'a postgres:// or postgresql:// URL',
    whenLeftOut: 'to start the embedded PostgreSQL (development only)',
    inProduction:
      'is empty; set it to a postgres:// or postgresql:// URL: it is required when APP_ENV=production (the embedded database is for demos)',
  },
  SESSION_SECRET: {
    need: 'at least 32 characters (openssl rand -hex 32)',
    whenLeftOut: 'for a development-only secret (production requires one)',
    inProduction:
      'is empty; set it to at least 32 characters (openssl rand -hex 32): it is required when APP_ENV=production',
  },
} as const;

/**
 * As text() for a setting of EMPTY_BY_MODE: empty (or only spaces) passes here as '', for
 * crossSettingProblems to refuse with the advice of the APP_ENV it sees.
 */
const textEmptyByMode = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (isEmptyText(value) ? '' : value), z.union([z.literal(''), schema]));

/**
 * Why DATA_DIR can never be the directory the embedded PostgreSQL and the demo write to: it, or a
 * folder on its way, is a file. The start otherwise got as far as creating it and failed with
 * Node's "EEXIST: file already exists, mkdir …", which names no setting. A path that does not
 * exist yet is fine (it is created), and one this check cannot look at is left to the start.
 */
export function describeUnusableDataDir(dataDir: string): string | undefined {
  const wanted = path.resolve(dataDir);
  for (let current = wanted; ; current = path.dirname(current)) {
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(current, { throwIfNoEntry: false });
    } catch (error) {
      // ENOTDIR: a folder further up is a file, found on the way up; EACCES and others, the start's.
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      return undefined;
    }
    if (stats?.isDirectory()) return undefined;
    if (stats) {
      return current === wanted
        ? `${wanted} is a file, not a directory; set DATA_DIR to a directory (it is created if missing)`
        : `${wanted} cannot be created: ${current} is a file, not a directory`;
    }
    if (path.dirname(current) === current) return undefined;
  }
}

const isTimeZone = (zone: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

const POSTGRES_URL_SCHEME = /^postgres(ql)?:\/\//;

const PERCENT_ENCODE_HINT =
  'a user name or password holding / ? # @ : or % must have them percent-encoded (%2F %3F %23 %40 %3A %25)';

/**
 * Why the database driver (pg) would not read DATABASE_URL as the operator meant, or undefined.
 * A password with an unencoded #, / or ? ends the host part early: pg then fails with a bare
 * "Invalid URL" that names no setting, or connects to the user name as a host (ENOTFOUND). The
 * message never repeats the URL, which holds the password.
 */
function describeUnreadableDatabaseUrl(url: string): string | undefined {
  const rest = url.slice(url.indexOf('://') + 3);
  const authorityEnd = rest.search(/[/?#]/);
  if (authorityEnd >= 0) {
    const authority = rest.slice(0, authorityEnd);
    const afterAuthority = rest.slice(authorityEnd);
    const queryStart = afterAuthority.indexOf('?');
    const path = queryStart >= 0 ? afterAuthority.slice(0, queryStart) : afterAuthority;
    const firstQueryKey = queryStart >= 0 ? (afterAuthority.slice(queryStart + 1).split(/[=&]/)[0] ?? '') : '';
    // A connection URL has no #part, and no @ in its database name or its first option's name:
    // those are the rest of a password cut at a #, / or ?.
    const isPasswordCut =
      afterAuthority.includes('#') || (!authority.includes('@') && (path.includes('@') || firstQueryKey.includes('@')));
    if (isPasswordCut)
      return `would reach another host or database than meant (it has a # or an @ after the host); ${PERCENT_ENCODE_HINT}`;
  }
  try {
    // As pg reads it: an empty host (user:pass@/db) means the default one.
    new URL(url.replace('@/', '@localhost/'));
  } catch {
    return `cannot be read as postgresql://user:password@host:port/database (a port is 1 to 65535); ${PERCENT_ENCODE_HINT}`;
  }
  return undefined;
}

/** An IP address, or a host name: dot-separated labels of letters, digits, `-` and `_` (Docker's names). */
const isListenHost = (host: string) =>
  isIP(host) !== 0 ||
  (host.length <= 253 &&
    host.split('.').every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label)));

const isCurrency = (code: string) => Intl.supportedValuesOf('currency').includes(code);

/**
 * An address or CIDR as Express's proxy-addr reads it, checked here: "1.5", "1e3" or
 * "10.0.0.0/33" looked like addresses to a pattern and then crashed the start with a TypeError
 * instead of the list of problems.
 */
function isTrustedProxyEntry(entry: string): boolean {
  if (/^(loopback|linklocal|uniquelocal)$/.test(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

/**
 * Whether a CIDR entry (already read by isTrustedProxyEntry) trusts more addresses than the widest
 * private network holds: IPv4 10.0.0.0/8, IPv6 fc00::/7. Clients are inside such a range, so it is
 * `true` under another name (each could name its own address in X-Forwarded-For). An IPv6 range is
 * also judged by the IPv4 clients it holds, as IPv4-mapped addresses (::ffff:0:0/96 is every one):
 * more than one /8 of them is too wide. 0.0.0.0/0 and ::/0 also crashed Express's proxy-addr.
 */
function isTooWideProxyRange(entry: string): boolean {
  const [address = '', prefix] = entry.split('/');
  if (prefix === undefined || isIP(address) === 0) return false;
  const bits = Number(prefix);
  if (isIP(address) === 4) return bits < 8;
  if (bits < 7) return true;
  const range = new BlockList();
  range.addSubnet(address, bits, 'ipv6');
  let ipv4Blocks = 0;
  for (let first = 0; first < 256 && ipv4Blocks < 2; first++) {
    if (range.check(`::ffff:${first}.0.0.1`, 'ipv6')) ipv4Blocks++;
  }
  return ipv4Blocks > 1;
}

/**
 * The most proxies in front a hop count may name. Express believes that many X-Forwarded-For entries
 * from the right; beyond the proxies really there it takes entries the client wrote, as `true` does,
 * and a count no site has (999 for "every proxy") can only be that. A CDN, a load balancer and an
 * ingress are three.
 */
const MAX_TRUST_PROXY_HOPS = 10;

/**
 * Express's `trust proxy`: off by default so X-Forwarded-For cannot be forged;
 * a hop count, or a comma list of addresses, CIDRs and names (loopback, uniquelocal).
 * Not `true`: Express then takes the left-most X-Forwarded-For entry, which the client
 * writes itself (a proxy appends to it), so every sign-in could claim a new address, past
 * the per-address and per-pair locks, and the audit log would record the address it chose.
 */
const zTrustProxy = z
  .string()
  .optional()
  .transform((value, ctx): false | number | string[] => {
    const text = (value ?? 'false').trim();
    if (text === '' || text === 'false' || text === '0') return false;
    if (text === 'true') {
      ctx.addIssue({
        code: 'custom',
        message:
          'true would believe any X-Forwarded-For a client sends; name the proxy (loopback, its address or CIDR) or give its hop count (1 for one proxy)',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(text)) {
      const hops = Number(text);
      if (hops <= MAX_TRUST_PROXY_HOPS) return hops;
      ctx.addIssue({
        code: 'custom',
        message:
          `a hop count of ${text} believes that many X-Forwarded-For entries, more proxies than any site has in front, so a client ` +
          `could choose its own address, as with true: give the number of proxies in front of the app, from 1 to ${MAX_TRUST_PROXY_HOPS} ` +
          '(1 for one proxy), or name them (loopback, an address or CIDR)',
      });
      return z.NEVER;
    }
    const entries = text.split(',').map((entry) => entry.trim());
    const invalid = entries.filter((entry) => !isTrustedProxyEntry(entry));
    if (invalid.length > 0) {
      ctx.addIssue({
        code: 'custom',
        // An empty entry ("loopback,") named as itself: listed as '' it left the line ending in ": ".
        message: `not a hop count (plain digits), an address, a CIDR or loopback/linklocal/uniquelocal: ${invalid
          .map((entry) => (entry === '' ? 'an empty entry (a comma too many, or one with nothing after it)' : entry))
          .join(', ')}`,
      });
      return z.NEVER;
    }
    const tooWide = entries.filter(isTooWideProxyRange);
    if (tooWide.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `wider than any private network (an IPv4 /8, an IPv6 /7), so a client inside it could choose its own address, as with true: ${tooWide.join(', ')}`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** A key that seals the audit log's hash chain: long enough that it cannot be guessed. */
const MIN_AUDIT_KEY_LENGTH = 32;

/** AUDIT_CHAIN_OLD_KEYS: keys that sealed entries before a rotation, comma-separated; blank is none. */
const zAuditOldKeys = z
  .string()
  .optional()
  .transform((value, ctx): string[] => {
    const keys = (value ?? '')
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== '');
    const short = keys.filter((key) => key.length < MIN_AUDIT_KEY_LENGTH).length;
    if (short > 0) {
      // The keys themselves are secrets: say which by position, never echo one.
      ctx.addIssue({ code: 'custom', message: `each key must be at least ${MIN_AUDIT_KEY_LENGTH} characters` });
      return z.NEVER;
    }
    return keys;
  });

/**
 * Usernames with a `gov` prefix are government staff, `ext`/`ind` prefixes are
 * companies; everyone else gets the default tier (docs/pricing.md).
 */
export const DEFAULT_TIER_RULES = JSON.stringify([
  { pattern: '^gov[-_.]', tier: 'gov' },
  { pattern: '^(ext|ind)[-_.]', tier: 'private' },
]);

/**
 * How long a query may go without an answer (DB_QUERY_TIMEOUT_MS). Well above the slowest
 * statement a request runs (a month of a busy user's jobs on one receipt takes seconds) and
 * below a reverse proxy's usual read timeout (nginx: 60 s), so a silent database is answered
 * with this app's 503 and Retry-After rather than the proxy's 504.
 */
export const DEFAULT_DB_QUERY_TIMEOUT_MS = 30_000;

/**
 * How long opening a connection, or waiting for a free one in a full pool, may take
 * (DB_CONNECT_TIMEOUT_MS). A handshake on a working network takes milliseconds; a database
 * host that drops packets never completes one, and without a limit a request would wait for
 * the kernel's TCP timeout (minutes) before its 503.
 */
export const DEFAULT_DB_CONNECT_TIMEOUT_MS = 5_000;

/**
 * How long a start waits for a configured database that cannot be reached yet (DB_START_WAIT_SEC):
 * a host that reboots, or a compose file or systemd unit without a health check, brings the app up
 * before PostgreSQL accepts connections, which takes seconds, a minute after a crash's recovery.
 */
export const DEFAULT_DB_START_WAIT_SEC = 60;

/**
 * How long a client may take to send a request's headers (HTTP_HEADERS_TIMEOUT_MS), and the
 * whole request with its body (HTTP_REQUEST_TIMEOUT_MS), before the server answers 408 and
 * closes the connection. They bound receiving a request only, never the answer: a CSV export
 * streams for as long as its client reads. A browser sends its headers at once and a body here
 * is at most 100 kB; without them a client trickling bytes held a connection for minutes.
 */
export const DEFAULT_HTTP_HEADERS_TIMEOUT_MS = 20_000;

/**
 * How long a CSV export waits for its client to read (CSV_EXPORT_STALL_MS) before it cuts the
 * client off and gives its export slot, and a usage export's database connection, to the next.
 * Every slot held by a client that stopped reading is one the other users' exports wait for.
 */
export const DEFAULT_CSV_EXPORT_STALL_MS = 30_000;
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 60_000;

/** A session ends after this long without requests (SESSION_IDLE_SEC), never longer than SESSION_ABSOLUTE_SEC. */
export const DEFAULT_SESSION_IDLE_SEC = 3_600;
/** A session ends this long after sign-in (SESSION_ABSOLUTE_SEC), however busy. */
export const DEFAULT_SESSION_ABSOLUTE_SEC = 43_200;

export const ZEnv = z
  .object({
    APP_ENV: zChoice(['development', 'production'], 'development'),
    PORT: zInt(8000, 0, 65535),
    HOST: text(
      'the address to listen on (e.g. 0.0.0.0)',
      'to listen on 127.0.0.1 (development) or 0.0.0.0 (production)',
      // A space or quote kept from an env file made the start fail with "getaddrinfo ENOTFOUND 127.0.0.1 ".
      z
        .string()
        .superRefine((host, ctx) => {
          if (/[\s"']/.test(host))
            ctx.addIssue({
              code: 'custom',
              message: `must be an address or a host name without spaces or quotes, e.g. 0.0.0.0 (got ${JSON.stringify(host)})`,
            });
          // "[::1]", as a URL writes it, was refused as no address alone, which did not say that
          // only the brackets were wrong.
          else if (/^\[.*\]$/.test(host) && isIP(host.slice(1, -1)) === 6)
            ctx.addIssue({
              code: 'custom',
              message: `is an IPv6 address in brackets, as a URL writes it; give it without them: HOST=${host.slice(1, -1)} (got ${JSON.stringify(host)})`,
            });
          // "0.0.0.0:8000" or "http://0.0.0.0" passed, and the start failed only after the database
          // was started and migrated, with "getaddrinfo ENOTFOUND" and exit 1 instead of this list.
          else if (!isListenHost(host))
            ctx.addIssue({
              code: 'custom',
              message: `must be an address or a host name alone, without a scheme, port or path (the port is PORT), e.g. 0.0.0.0 (got ${JSON.stringify(host)})`,
            });
        })
        .optional(),
    ),
    DATABASE_URL: textEmptyByMode(
      z
        .string()
        // A space or a line end after the URL (an env file's `DATABASE_URL=… `) went into the database's
        // name, and the tools then said "Database `billing` does not exist" of one that does.
        .trim()
        .superRefine((url, ctx) => {
          if (!POSTGRES_URL_SCHEME.test(url)) {
            // Quotes that reach the app are part of the value (docker run --env-file passes them on);
            // "must be a postgres:// URL" of a value that looks like one, quoted, said nothing of them.
            ctx.addIssue({
              code: 'custom',
              message: /^["']/.test(url)
                ? `must be a postgres:// or postgresql:// URL; it starts with a quote (${url[0]}), which is part of the value as given: remove the quotes around it (docker run --env-file, for one, passes them on)`
                : 'must be a postgres:// or postgresql:// URL',
            });
            // What is wrong with one that is no postgresql:// URL at all is said; advice on encoding the
            // password of "nonsense" under it only misled.
            return;
          }
          const problem = describeUnreadableDatabaseUrl(url);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
    ),
    DB_POOL_MAX: zInt(10, 1, 200),
    DB_QUERY_TIMEOUT_MS: zInt(DEFAULT_DB_QUERY_TIMEOUT_MS, 100, 3_600_000),
    DB_CONNECT_TIMEOUT_MS: zInt(DEFAULT_DB_CONNECT_TIMEOUT_MS, 100, 600_000),
    DB_START_WAIT_SEC: zInt(DEFAULT_DB_START_WAIT_SEC, 0, 3_600),
    DATA_DIR: text(
      'a directory',
      'for .data',
      z
        .string()
        .default('.data')
        .superRefine((dataDir, ctx) => {
          const problem = describeUnusableDataDir(dataDir);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
    ),
    // README's `export SESSION_SECRET=...` copied as it is was told only its length: the way to make one too.
    SESSION_SECRET: textEmptyByMode(
      z.string().min(32, 'must be at least 32 characters (make one with openssl rand -hex 32)').optional(),
    ),
    AUDIT_CHAIN_KEY: z
      .string()
      .trim()
      .transform((value) => value || undefined)
      .pipe(
        z
          .string()
          .min(
            MIN_AUDIT_KEY_LENGTH,
            `must be at least ${MIN_AUDIT_KEY_LENGTH} characters (make one with openssl rand -hex 32)`,
          )
          .optional(),
      )
      .optional(),
    AUDIT_CHAIN_OLD_KEYS: zAuditOldKeys,
    AUDIT_CHAIN_UNSEALED_UNTIL: zInt(0, 0, Number.MAX_SAFE_INTEGER),
    AUDIT_VERIFY_INTERVAL_SEC: zInt(3600, 60, 7 * 86_400),
    APP_TZ: text(
      'an IANA time zone such as Asia/Bangkok',
      'for UTC',
      z
        .string()
        .default('UTC')
        .refine(isTimeZone, {
          error: (issue) => `not an IANA time zone such as Asia/Bangkok (got ${JSON.stringify(issue.input)})`,
        }),
    ),
    CURRENCY: text(
      'an ISO 4217 currency code such as THB or EUR',
      'for THB',
      // Quoted: a lower-case `thb`, refused, read like a code the list did not know.
      z
        .string()
        .default('THB')
        .refine(isCurrency, {
          error: (issue) =>
            `not an ISO 4217 currency code, three capital letters such as THB or EUR (got ${JSON.stringify(issue.input)})`,
        }),
    ),
    METRICS_ENABLED: zFlag(true),
    METRICS_PROCESS: zFlag(false),
    METRICS_TOKEN: text(
      'at least 16 characters',
      'to serve /metrics without a token',
      z
        .string()
        .min(16, 'must be at least 16 characters')
        // Scrapes send it as the one word after `Bearer` in a header (Prometheus trims its
        // credentials file): a space, a tab or a non-ASCII character in it never matched, and
        // every scrape was refused (AppDown) while the start said nothing.
        .regex(
          /^[\x21-\x7e]+$/,
          'must be printable ASCII without spaces (openssl rand -hex 32), as scrapes send it in an Authorization header',
        )
        .optional(),
    ),
    LOG_LEVEL: zChoice(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    TRUST_PROXY: zTrustProxy,
    REQUIRE_HTTPS: zFlagOrDefault,
    WEB_CONCURRENCY: zInt(1, 1, 64),
    SHUTDOWN_TIMEOUT_MS: zInt(10_000, 100, 600_000),
    // Off by default: Docker's stop grace period (10 s) already only just covers SHUTDOWN_TIMEOUT_MS.
    SHUTDOWN_DRAIN_DELAY_MS: zInt(0, 0, 600_000),
    HTTP_HEADERS_TIMEOUT_MS: zInt(DEFAULT_HTTP_HEADERS_TIMEOUT_MS, 100, 600_000),
    HTTP_REQUEST_TIMEOUT_MS: zInt(DEFAULT_HTTP_REQUEST_TIMEOUT_MS, 100, 3_600_000),
    READY_TIMEOUT_MS: zInt(1_000, 50, 60_000),
    CSV_EXPORT_STALL_MS: zInt(DEFAULT_CSV_EXPORT_STALL_MS, 100, 600_000),
    DEMO_SEED: zFlag(true),
    AUTH_MAX_FAILS: zInt(5, 1, 1000),
    AUTH_WINDOW_SEC: zInt(60, 1, 86_400),
    AUTH_LOCK_SEC: zInt(300, 1, 86_400),
    AUTH_USER_MAX_FAILS: zInt(20, 1, 10_000),
    AUTH_USER_WINDOW_SEC: zInt(900, 1, 86_400),
    AUTH_USER_LOCK_SEC: zInt(900, 1, 86_400),
    AUTH_ADDRESS_MAX_FAILS: zInt(100, 1, 100_000),
    AUTH_ADDRESS_WINDOW_SEC: zInt(900, 1, 86_400),
    AUTH_ADDRESS_LOCK_SEC: zInt(900, 1, 86_400),
    AUTH_PRUNE_INTERVAL_SEC: zInt(600, 1, 86_400),
    PASSWORD_HASH_NICENESS: zInt(10, 0, 19),
    SESSION_IDLE_SEC: zInt(DEFAULT_SESSION_IDLE_SEC, 60, 30 * 86_400),
    SESSION_PRUNE_INTERVAL_SEC: zInt(900, 1, 86_400),
    SESSION_ABSOLUTE_SEC: zInt(DEFAULT_SESSION_ABSOLUTE_SEC, 300, 90 * 86_400),
    // Empty is unset, as in an .env template with the two lines left blank; a username of only
    // spaces too, as AUDIT_CHAIN_KEY's and every flag's (it was refused as no login name).
    ADMIN_USERNAME: z.preprocess(
      (value) => (isBlank(value) ? undefined : value),
      z
        .string()
        .regex(/^[a-z_][a-z0-9._-]{0,63}$/, {
          error: (issue) =>
            `must be a lowercase login name: a lowercase letter or _, then up to 63 lowercase letters, digits, . _ or - (got ${JSON.stringify(issue.input)})`,
        })
        // Not `system`, the actor of the entry that creates it, nor `cli`: the audit log gives them its own entries.
        .superRefine((name, context) => {
          const problem = reservedActorProblemOf(name);
          if (problem) context.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
    ),
    ADMIN_PASSWORD: z.preprocess(emptyToUndefined, ZNewPassword.optional()),
    PAYMENT_PROVIDER: zOptionalChoice(['none', 'dummy', 'stripe']),
    PAYMENT_WEBHOOK_SECRET: text(
      'at least 16 characters',
      "for a development-only secret (the dummy provider's)",
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
    STRIPE_SECRET_KEY: text(
      'a Stripe secret key (sk_test_..., sk_live_...)',
      'when PAYMENT_PROVIDER is not stripe',
      z
        .string()
        .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/, 'must be a Stripe secret key (sk_test_..., sk_live_...)')
        .optional(),
    ),
    STRIPE_WEBHOOK_SECRET: text(
      'a webhook signing secret (whsec_...)',
      'when PAYMENT_PROVIDER is not stripe',
      z
        .string()
        .regex(/^whsec_[A-Za-z0-9_]+$/, 'must be a webhook signing secret (whsec_...)')
        .optional(),
    ),
    // Only its scheme, host and port are used (stripe.provider.ts): a path, such as an egress proxy's
    // prefix, would be dropped unsaid, and another scheme taken for https.
    STRIPE_API_URL: text(
      "an http:// or https:// address of Stripe's API without a path",
      "for Stripe's own",
      z
        .string()
        .regex(
          /^https?:\/\/[^\s/?#]+\/?$/,
          'must be an http:// or https:// address without a path, e.g. https://stripe-egress.example.edu:8443',
        )
        .optional(),
    ),
    STRIPE_WEBHOOK_TOLERANCE_SEC: zInt(300, 10, 3600),
    // Payers' return addresses are built on it (`${PUBLIC_BASE_URL}/payments/thanks?rid=…`): a query or a
    // fragment passed and made them nonsense, and the trailing slash people type was refused as a path.
    PUBLIC_BASE_URL: text(
      'the site address without a path, e.g. https://billing.example.edu',
      'for http://localhost:PORT (production with Stripe requires it)',
      z
        .string()
        .superRefine((url, ctx) => {
          if (!/^https?:\/\/[^\s/?#]+\/?$/.test(url))
            ctx.addIssue({
              code: 'custom',
              message: `must be the site's http:// or https:// address alone, without a path, query or fragment, e.g. https://billing.example.edu (got ${JSON.stringify(url)})`,
            });
        })
        .transform((url) => url.replace(/\/$/, ''))
        .optional(),
    ),
    SLURMRESTD_URL: text(
      "slurmrestd's http:// or https:// URL (e.g. http://slurm-head:6820)",
      'to not use slurmrestd',
      z
        .string()
        .regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL')
        .optional(),
    ),
    SLURMRESTD_USER: text(
      'the user name the JWT belongs to (X-SLURM-USER-NAME)',
      'when SLURMRESTD_URL is unset',
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, {
          error: (issue) =>
            `not a user name: a letter or _, then up to 63 letters, digits, _ . or - (got ${JSON.stringify(issue.input)})`,
        })
        .optional(),
    ),
    SLURMRESTD_TOKEN: text('the JWT', 'to read it from SLURMRESTD_TOKEN_FILE', z.string().optional()),
    SLURMRESTD_TOKEN_FILE: text('the path of a file holding the JWT', 'to use SLURMRESTD_TOKEN', z.string().optional()),
    SLURMRESTD_API_VERSION: text(
      'auto or one of v0.0.36 ... v0.0.45',
      'for auto',
      z
        .string()
        .regex(/^(auto|v0\.0\.(3[6-9]|4[0-5]))$/, {
          error: (issue) => `must be auto or one of v0.0.36 ... v0.0.45 (got ${JSON.stringify(issue.input)})`,
        })
        .optional(),
    ),
    SLURMRESTD_CA_FILE: text(
      'the path of a PEM bundle to trust for https',
      "to trust the system's CAs",
      z.string().optional(),
    ),
    SLURMRESTD_TIMEOUT_MS: zInt(30_000, 100, 600_000),
    SLURM_CLUSTER: text(
      "the cluster's name as Slurm's accounting knows it (sacctmgr show cluster)",
      'to take it from the records',
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,64}$/, {
          error: (issue) =>
            `not a cluster name: 1 to 64 letters, digits, _ . or - (got ${JSON.stringify(issue.input)})`,
        })
        .optional(),
    ),
    SACCT_PATH: text('the path of sacct (e.g. /usr/bin/sacct)', 'to not use sacct', z.string().optional()),
    SACCTMGR_PATH: text(
      'the path of sacctmgr (e.g. /usr/bin/sacctmgr)',
      'for sacctmgr beside SACCT_PATH',
      z.string().optional(),
    ),
    SACCT_TIMEOUT_MS: zInt(120_000, 100, 3_600_000),
    FALLBACK_CSV: text(
      'the path of an sacct --parsable2 file with its header row',
      'to read no file (in development with the demo and neither SLURMRESTD_URL nor SACCT_PATH: the demo file)',
      z.string().optional(),
    ),
    INGEST_ENABLED: zFlag(true),
    INGEST_INTERVAL_SEC: zInt(60, 5, 86_400),
    INGEST_OVERLAP_SEC: zInt(900, 0, 30 * 86_400),
    INGEST_LOOKBACK_DAYS: zInt(7, 1, 3650),
    PRICING_CPU_BASIS: zChoice(['used', 'allocated'], 'used'),
    PRICING_TIER_RULES: text(
      'a JSON list of {"pattern","tier"} rules ([] for none)',
      'for the default rules',
      z
        .string()
        .default(DEFAULT_TIER_RULES)
        .transform((rules, ctx) => {
          try {
            return parseTierRules(rules);
          } catch (error) {
            ctx.addIssue({ code: 'custom', message: (error as Error).message });
            return z.NEVER;
          }
        })
        .superRefine((rules, ctx) => {
          // A tier can only be added under a name of this format (the Rates page holds every new or
          // renamed tier to it): a rule naming "Gov" or a 40-character name could never match a
          // tier, and the users it was written for silently stayed on the default.
          rules.forEach((rule, index) => {
            if (ZNewTierName.safeParse(rule.tier).success) return;
            ctx.addIssue({
              code: 'custom',
              message:
                `rule ${index + 1}'s tier "${rule.tier}" is no tier's name: a tier's name is lowercase letters, digits, ` +
                `- or _, starting with a letter or digit, at most ${MAX_TIER_NAME_LENGTH} characters (docs/pricing.md, "Tiers")`,
            });
          });
        }),
    ),
    PRICING_CACHE_CHECK_MS: zInt(1_000, 0, 60_000),
  })
  .superRefine((env, ctx) => {
    for (const problem of crossSettingProblems(env as unknown as Record<string, string | undefined>)) {
      ctx.addIssue({ code: 'custom', path: [problem.path], message: problem.message });
    }
  });

/**
 * The rules that tie settings together. They read the raw text (presence and exact values), so
 * they run even when single settings are malformed: one start-up lists every problem at once.
 */
export function crossSettingProblems(
  env: Record<string, string | undefined>,
): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  for (const [name, empty] of Object.entries(EMPTY_BY_MODE)) {
    if (!isEmptyText(env[name])) continue;
    problems.push({
      path: name,
      message: env.APP_ENV === 'production' ? empty.inProduction : emptyMessage(empty.need, empty.whenLeftOut),
    });
  }
  if (Boolean(env.ADMIN_USERNAME?.trim()) !== Boolean(env.ADMIN_PASSWORD)) {
    problems.push({ path: 'ADMIN_PASSWORD', message: 'ADMIN_USERNAME and ADMIN_PASSWORD go together' });
  }
  // Only spaces is empty, refused as such by SLURMRESTD_URL itself: no slurmrestd to need a user for.
  if (env.SLURMRESTD_URL?.trim()) {
    if (!env.SLURMRESTD_USER) {
      problems.push({ path: 'SLURMRESTD_USER', message: 'is required with SLURMRESTD_URL' });
    }
    if (!env.SLURMRESTD_TOKEN && !env.SLURMRESTD_TOKEN_FILE) {
      problems.push({
        path: 'SLURMRESTD_TOKEN',
        message: 'SLURMRESTD_TOKEN or SLURMRESTD_TOKEN_FILE is required with SLURMRESTD_URL',
      });
    }
  }
  const headersTimeoutMs = msSetting(env.HTTP_HEADERS_TIMEOUT_MS, DEFAULT_HTTP_HEADERS_TIMEOUT_MS);
  const requestTimeoutMs = msSetting(env.HTTP_REQUEST_TIMEOUT_MS, DEFAULT_HTTP_REQUEST_TIMEOUT_MS);
  if (headersTimeoutMs > requestTimeoutMs) {
    // The headers are part of the request: Node refuses a headers limit above the request's.
    problems.push({
      path: 'HTTP_HEADERS_TIMEOUT_MS',
      message: `must not be longer than HTTP_REQUEST_TIMEOUT_MS (${headersTimeoutMs} > ${requestTimeoutMs})`,
    });
  }
  const sessionIdleSec = msSetting(env.SESSION_IDLE_SEC, DEFAULT_SESSION_IDLE_SEC);
  const sessionAbsoluteSec = msSetting(env.SESSION_ABSOLUTE_SEC, DEFAULT_SESSION_ABSOLUTE_SEC);
  if (sessionIdleSec > sessionAbsoluteSec) {
    // A session ends SESSION_ABSOLUTE_SEC after sign-in however busy it is: a longer idle limit was
    // taken without a word, and an operator relying on it had sessions that never ended idle.
    problems.push({
      path: 'SESSION_IDLE_SEC',
      message: `must not be longer than SESSION_ABSOLUTE_SEC (${sessionIdleSec} > ${sessionAbsoluteSec}): a session ends SESSION_ABSOLUTE_SEC after sign-in, so a longer idle limit would never apply`,
    });
  }
  // PORT parsed (a number) as the other whole-number settings above are read here.
  if (msSetting(env.PORT, 8000) === 0 && !env.PUBLIC_BASE_URL) {
    // The system picks the port when the app listens, after this is read once: the default address,
    // http://localhost:PORT, was http://localhost:0, where Stripe sent payers back.
    problems.push({
      path: 'PUBLIC_BASE_URL',
      message:
        'is required when PORT=0 (the port is picked when the app listens, so http://localhost:PORT, where payers come back to, is not known yet); set it to the address the app is reached at, or set PORT',
    });
  }
  if (env.PAYMENT_PROVIDER === 'stripe') {
    for (const key of ['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'] as const) {
      if (!env[key]) problems.push({ path: key, message: 'is required when PAYMENT_PROVIDER=stripe' });
    }
  }
  if (env.APP_ENV !== 'production') return problems;
  if (env.PAYMENT_PROVIDER === 'dummy') {
    problems.push({
      path: 'PAYMENT_PROVIDER',
      message: 'dummy is for development and demos; refused when APP_ENV=production',
    });
  }
  if (env.PAYMENT_PROVIDER === 'stripe' && !env.PUBLIC_BASE_URL) {
    // Without it the checkout sends payers back to http://localhost:PORT, their own machine.
    problems.push({
      path: 'PUBLIC_BASE_URL',
      message: 'is required when APP_ENV=production and PAYMENT_PROVIDER=stripe (where payers come back to)',
    });
  }
  // Empty is refused above, with production's advice.
  if (env.SESSION_SECRET === undefined) {
    problems.push({ path: 'SESSION_SECRET', message: 'is required when APP_ENV=production' });
  }
  if (!env.AUDIT_CHAIN_KEY?.trim()) {
    // Without a key anyone who can write the table can rewrite the chain so that it still verifies.
    problems.push({
      path: 'AUDIT_CHAIN_KEY',
      message: 'is required when APP_ENV=production (it seals the audit log; docs/security.md)',
    });
  }
  if (env.DATABASE_URL === undefined) {
    problems.push({
      path: 'DATABASE_URL',
      message: 'is required when APP_ENV=production (the embedded database is for demos)',
    });
  }
  return problems;
}

/**
 * A number setting as the rules across settings see it: raw text before parsing, a number after;
 * unset or blank is its default. Malformed is NaN, which compares false: its own issue names it.
 */
function msSetting(value: string | number | undefined, fallback: number): number {
  if (typeof value === 'number') return value;
  const text = value?.trim() ?? '';
  return text === '' ? fallback : /^\d+$/.test(text) ? Number(text) : Number.NaN;
}

export type TEnv = z.infer<typeof ZEnv>;
