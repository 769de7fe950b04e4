import { TOOL_COMMANDS } from './tool-commands.js';

/**
 * Errors the application throws on purpose. Their message is safe to show to the
 * person who made the request; the error middleware turns them into a page or JSON.
 */
export class AppError extends Error {
  /**
   * Fields a JSON answer carries beside `error` and `code`, for a client to act on (the running
   * month-end run's id and status URL). Opt-in: `details` is for the code that throws and catches
   * the error and is never sent, since it may name what the asker should not see.
   */
  readonly publicFields: Readonly<Record<string, unknown>>;

  /**
   * What a page shows instead of `message`, where the two differ: a refusal a page words for its form
   * ("the form keeps the rates you changed"), which a script, having no form, is told in its own terms.
   */
  readonly pageMessage: string | undefined;

  constructor(
    readonly status: number,
    message: string,
    readonly details?: Record<string, unknown>,
    options: AppErrorOptions = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.publicFields = options.publicFields ?? {};
    this.pageMessage = options.pageMessage;
  }
}

export interface AppErrorOptions {
  /** See AppError.publicFields; `error` and `code` among them are ignored. */
  publicFields?: Record<string, unknown>;
  /** See AppError.pageMessage. */
  pageMessage?: string;
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(400, message, details);
  }
}

/**
 * A request refused for what its fields hold, one reason a field. `message` names each field by its
 * key ("cpu: must be a plain decimal ..."), as an API client sends it and reads it back; `readableMessage`
 * names it by the label a form shows it under ("CPU core-hour: must be a plain decimal ..."), for the pages.
 */
export class InvalidFieldsError extends BadRequestError {
  readonly readableMessage: string;

  /**
   * `pageReasons`: a field's reason as a page words it, where it speaks of the page ("its notice above
   * names it"), in place of the one of `fields`, which a script gets (AppError.pageMessage, for a field).
   */
  constructor(
    readonly fields: Readonly<Record<string, string>>,
    private readonly labels: Readonly<Record<string, string>> = {},
    details: Record<string, unknown> = {},
    private readonly pageReasons: Readonly<Record<string, string>> = {},
  ) {
    super(joinFieldReasons(fields), { ...details, fields });
    this.readableMessage = joinFieldReasons(this.pageFields(), labels);
  }

  /** The readable message without the reasons of `fields`, for a page that words their refusal itself. */
  readableMessageWithout(...fields: string[]): string {
    const others = Object.fromEntries(Object.entries(this.pageFields()).filter(([field]) => !fields.includes(field)));
    return joinFieldReasons(others, this.labels);
  }

  /** The reasons of `fields` as a page gives them: the same fields, in their order. */
  pageFields(): Record<string, string> {
    return Object.fromEntries(
      Object.entries(this.fields).map(([field, reason]) => [field, this.pageReasons[field] ?? reason]),
    );
  }
}

function joinFieldReasons(fields: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> = {}) {
  const reasons = Object.entries(fields).map(([field, reason]) => `${labels[field] ?? field}: ${reason}`);
  // A reason worded as a sentence ends with a full stop, which before the next reason's "; " read ".;"
  // ("...from there.; newer: ..."); only the last keeps it. An ellipsis stays whole.
  return reasons
    .map((reason, index) => (index < reasons.length - 1 ? reason.replace(/(?<!\.)\.$/, '') : reason))
    .join('; ');
}

/** What a page shows for `error`: the fields by their labels where it names fields. */
export function readableMessageOf(error: AppError): string {
  return error instanceof InvalidFieldsError || error instanceof ReversedWindowError
    ? error.readableMessage
    : (error.pageMessage ?? error.message);
}

/**
 * The form fields `error` is about, for a page to mark them (aria-invalid) and move the focus to the
 * first: an InvalidFieldsError's, or the one a refusal names in its details (`field`).
 */
export function invalidFieldsOf(error: AppError): string[] {
  if (error instanceof InvalidFieldsError) return Object.keys(error.fields);
  // Both dates: either may be the one to correct, and a screen reader on To heard nothing wrong with it.
  if (error instanceof ReversedWindowError) return [...error.windowFields];
  const field = error.details?.field;
  return typeof field === 'string' ? [field] : [];
}

/**
 * A date window given the wrong way round, refused wherever one is taken (usage, receipts, paid.csv,
 * the audit log): a page that answered with an empty list would read as "nothing happened". Like an
 * InvalidFieldsError it names the dates by the labels their form shows on a page ("From (…) is after
 * To (…)."), where "the start date" matched no field the reader could see, and by the keys it sent
 * to an API client ("start (…) is after end (…).").
 */
export class ReversedWindowError extends BadRequestError {
  readonly readableMessage: string;
  /** The From and To fields, by their keys: a page marks both. */
  readonly windowFields: readonly [string, string];

  constructor(
    start: string,
    end: string,
    options: { fields?: readonly [string, string]; labels?: Readonly<Record<string, string>> } = {},
  ) {
    const [startField, endField] = options.fields ?? ['start', 'end'];
    const labels = options.labels ?? {};
    super(`${startField} (${start}) is after ${endField} (${end}).`, { field: startField });
    this.readableMessage = `${labels[startField] ?? startField} (${start}) is after ${labels[endField] ?? endField} (${end}).`;
    this.windowFields = [startField, endField];
  }
}

/** A field's label after "a" or "an", as it is said: "a Created from", "an Ended from". */
export function withArticle(label: string): string {
  return `${/^[aeiou]/i.test(label) ? 'an' : 'a'} ${label}`;
}

/**
 * A From alone after today: From up to today would be a reversed window, and the From to the
 * future an empty one that reads as "no usage" (or "no receipts") when none can have happened yet.
 * `label` is the From as the form names it ("Created from" on the billing page's receipt filters),
 * `field` its key (the audit log's is `from`).
 */
export class StartAfterTodayError extends BadRequestError {
  constructor(start: string, today: string, label = 'From', field = 'start') {
    super(
      `${label} (${start}) is after today (${today}), so nothing has happened since then yet. Pick ${withArticle(label)} on or before today.`,
      { field },
    );
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Sign in to continue.') {
    super(401, message);
  }
}

/** What a user whose account an admin disabled is told on their next request (only them: it lives in their session). */
export const ACCOUNT_DISABLED_MESSAGE = 'Your account has been disabled. Ask an administrator.';

/**
 * Why another session's action signed a session out (SessionData.signedOutBy): a password change or
 * reset, Sign out of all other sessions (the user's own, or an admin's for the user), or the user's
 * promotion to admin (a change of privilege renews the session, as a sign-in does), as whoever
 * holds that session is told: on the sign-in page it is sent to (`notice`), as a JSON client's 401
 * until it signs in again, and when a form it sends is refused (`formRefused`). It was told only "Sign
 * in to continue." or that it was not signed in, as if it had signed out or timed out.
 */
export const PASSWORD_SIGN_OUTS = {
  password_change: {
    notice: 'Your password was changed in another session, so this one was signed out. Sign in with the new password.',
    formRefused:
      'Your password was changed in another session, so this one was signed out and this form was not sent. ' +
      'Sign in with the new password, then send it again.',
  },
  password_reset: {
    notice: 'An administrator reset your password, so you were signed out. Sign in with the new password.',
    formRefused:
      'An administrator reset your password, so you were signed out and this form was not sent. ' +
      'Sign in with the new password, then send it again.',
  },
  sessions_end: {
    notice:
      'Every other session of your account was signed out from another session, so this one was signed out. Sign in again.',
    formRefused:
      'Every other session of your account was signed out from another session, so this one was signed out and this ' +
      'form was not sent. Sign in again, then send it again.',
  },
  role_promotion: {
    notice:
      'An administrator made your account an admin, so you were signed out. Sign in again to use the admin pages.',
    formRefused:
      'An administrator made your account an admin, so you were signed out and this form was not sent. ' +
      'Sign in again, then send it again.',
  },
  sessions_end_by_admin: {
    notice: 'An administrator signed out every session of your account, so this one was signed out. Sign in again.',
    formRefused:
      'An administrator signed out every session of your account, so this one was signed out and this form was not ' +
      'sent. Sign in again, then send it again.',
  },
} as const;
export type PasswordSignOut = keyof typeof PASSWORD_SIGN_OUTS;

/** The PasswordSignOut a session holds, if any (a session's data is JSON read back from its row). */
export function passwordSignOutOf(session: { signedOutBy?: unknown } | undefined): PasswordSignOut | undefined {
  const reason = session?.signedOutBy;
  return typeof reason === 'string' && Object.hasOwn(PASSWORD_SIGN_OUTS, reason)
    ? (reason as PasswordSignOut)
    : undefined;
}

/** A request on a session whose user was disabled since it signed in. */
export class AccountDisabledError extends UnauthorizedError {
  constructor() {
    super(ACCOUNT_DISABLED_MESSAGE);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You do not have access to this.') {
    super(403, message);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found.', options: AppErrorOptions = {}) {
    super(404, message, undefined, options);
  }
}

/**
 * A record asked for by its id that is not there, or not the asker's to see: one wording for
 * every page, form and API ("Receipt #4 was not found."), so the same miss never reads two ways.
 */
export function notFoundById(
  kind: 'Receipt' | 'Payment' | 'User' | 'Month-end run' | 'Refused claim',
  id: number,
): NotFoundError {
  return new NotFoundError(`${kind} #${id} was not found.`);
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>, options?: AppErrorOptions) {
    super(409, message, details, options);
  }
}

/** A method an address does not answer; `allowedMethods` goes out as Allow. */
export class MethodNotAllowedError extends AppError {
  constructor(
    path: string,
    method: string,
    readonly allowedMethods: readonly string[],
    /** What the address takes instead of being opened, worded for whoever opened it. */
    takes = 'a form sent from a page',
  ) {
    const answered =
      allowedMethods.length > 1
        ? `${allowedMethods.slice(0, -1).join(', ')} and ${allowedMethods[allowedMethods.length - 1]}`
        : allowedMethods.join('');
    // A page cannot be opened at an address that only takes a form: say so in words a browser user reads.
    const isOpened = (method === 'GET' || method === 'HEAD') && !allowedMethods.includes('GET');
    const opened = isOpened ? ` It takes ${takes}, so it cannot be opened as a page.` : '';
    super(405, `${path} answers ${answered} only, not ${method}.${opened}`);
  }
}

/**
 * A page that has no JSON, asked for by a client that wants JSON (406): the message says what to ask
 * for instead. Such pages answered it with their HTML, which a script then failed to parse.
 */
export class NotAcceptableError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super(406, message, undefined, options);
  }
}

export class TooManyRequestsError extends AppError {
  /** `retryAfterSec` goes out as Retry-After. */
  constructor(
    message: string,
    readonly retryAfterSec?: number,
  ) {
    super(429, message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message = 'The request body is too large.') {
    super(413, message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super(415, message);
  }
}

export class ServiceUnavailableError extends AppError {
  /** `retryAfterSec` goes out as Retry-After (5 s when unset, as for any 503). */
  constructor(
    message: string,
    readonly retryAfterSec?: number,
  ) {
    super(503, message);
  }
}

/**
 * An audit entry refused because this process has no AUDIT_CHAIN_KEY and the log's newest entry is
 * sealed with one (or was changed): written unsealed after it, the entry would break the hash chain
 * for good. Another instance given the key wrote that entry after this one started (a rolling restart
 * that brings in the key), which the start-up's check (refuseUnsealedAppend) cannot see; so the append
 * itself refuses it, under the chain's lock, and the change it records rolls back with it. Not the
 * request's fault, and no retry on this instance mends it: the message is for whoever runs it.
 * It begins with what became of the request: "Nothing was changed" where the change rolled back with
 * its entry, or, where an entry follows work it cannot undo, what a caller says instead (withOutcome).
 */
export class UnsealedAuditAppendError extends ServiceUnavailableError {
  constructor(
    /** The sealed entry it would have followed. */
    readonly newestEntryId: bigint,
    /** What became of the request, as the message's first words. */
    readonly outcome = 'Nothing was changed',
  ) {
    super(
      `${outcome}: this instance has no AUDIT_CHAIN_KEY, but the audit log's newest entry is sealed with one ` +
        '(another instance has it) or was changed, and an entry written without the key would break the log for good. An administrator must ' +
        'set AUDIT_CHAIN_KEY (and AUDIT_CHAIN_OLD_KEYS, AUDIT_CHAIN_UNSEALED_UNTIL) on every instance, as the others have them, and restart this one.',
    );
  }

  /**
   * The same refusal, saying what became of the request: a wrong password's entry is written after the
   * attempt was counted against the lockout, where "Nothing was changed" would be untrue.
   */
  withOutcome(outcome: string): UnsealedAuditAppendError {
    return new UnsealedAuditAppendError(this.newestEntryId, outcome);
  }

  /** Why it was refused, for the log line after "audit entry refused: " (the error handler's, the sign-out's). */
  get logReason(): string {
    return `this instance has no AUDIT_CHAIN_KEY, but the audit log's newest entry (#${this.newestEntryId}) is sealed with one (or was changed); set AUDIT_CHAIN_KEY on every instance`;
  }
}

/**
 * PostgreSQL sent nothing back for a query within the time it was given (DB_QUERY_TIMEOUT_MS):
 * a frozen host, a stopped server or a network that drops packets without resetting the
 * connection. The connection is destroyed, so it is never reused mid-query.
 */
export class DatabaseTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the database sent no answer within ${timeoutMs} ms; its connection was closed`);
    this.name = 'DatabaseTimeoutError';
  }
}

/**
 * The first answer `search` gives for an error `error` wraps: the pg adapter's under Prisma's
 * `meta.driverAdapterError`, then `cause`.
 */
function searchWrappedErrors<T>(
  error: object,
  depth: number,
  search: (inner: unknown, depth: number) => T | undefined,
): T | undefined {
  const { meta, cause } = error as { meta?: { driverAdapterError?: unknown }; cause?: unknown };
  for (const inner of [meta?.driverAdapterError, cause]) {
    if (inner === undefined || inner === error) continue;
    const found = search(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Prisma's "unique constraint failed", whichever engine or adapter raised it. A raw
 * query ($queryRaw/$executeRaw) through the pg adapter fails with P2010 and carries
 * the driver's error under meta.driverAdapterError.cause (originalCode 23505).
 */
export function isUniqueViolation(error: unknown): boolean {
  return uniqueViolationOf(error) !== undefined;
}

/** The violated index name when `error` is a unique violation ('' when unknown), else undefined. */
export function uniqueViolationOf(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const candidate = error as {
    code?: unknown;
    originalCode?: unknown;
    kind?: unknown;
    constraint?: { index?: unknown; fields?: unknown };
    meta?: { target?: unknown; driverAdapterError?: unknown };
    cause?: unknown;
  };
  const isUnique =
    candidate.code === 'P2002' ||
    candidate.code === '23505' ||
    candidate.originalCode === '23505' ||
    candidate.kind === 'UniqueConstraintViolation';
  if (isUnique) {
    const index = candidate.constraint?.index ?? candidate.meta?.target;
    const nested = uniqueViolationOf(candidate.meta?.driverAdapterError ?? candidate.cause, depth + 1);
    return typeof index === 'string' ? index : (nested ?? '');
  }
  return searchWrappedErrors(error, depth, uniqueViolationOf);
}

/**
 * The SQLSTATE of a PostgreSQL error, however it arrived: pg's DatabaseError carries it as
 * `code`, the Prisma pg adapter as `originalCode` under `cause`, and Prisma's own errors
 * under `meta.driverAdapterError` (their `code` is Prisma's, not PostgreSQL's).
 */
export function sqlStateOf(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const candidate = error as {
    code?: unknown;
    originalCode?: unknown;
    clientVersion?: unknown;
    meta?: { driverAdapterError?: unknown };
    cause?: unknown;
  };
  if (typeof candidate.originalCode === 'string') return candidate.originalCode;
  const wrapped = searchWrappedErrors(error, depth, sqlStateOf);
  if (wrapped !== undefined) return wrapped;
  const isPrismaError = candidate.clientVersion !== undefined || candidate.meta !== undefined;
  if (!isPrismaError && typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code)) {
    return candidate.code;
  }
  return undefined;
}

/**
 * A server that answered and refused this login or database (class 28, invalid authorization: a
 * role it does not know, a wrong password; 3D000, a database name misspelt or dropped). Reached, so
 * "cannot be reached" sent operators to the network and pg_isready, which says the server is up.
 */
export function isRefusedByServer(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state !== undefined && (state.startsWith('28') || state === '3D000');
}

/**
 * PostgreSQL's own words for an error that came through Prisma's pg adapter (its driver error's
 * `originalMessage`), or undefined. Prisma words some in its own terms, naming none of the cause: a
 * role the server refused is "User was denied access on the database `(not available)`".
 */
export function postgresMessageOf(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const { originalMessage } = error as { originalMessage?: unknown };
  if (typeof originalMessage === 'string' && originalMessage.trim() !== '') return originalMessage;
  return searchWrappedErrors(error, depth, postgresMessageOf);
}

/** What /readyz says, and the log of a request that met it, of a database with none of the app's tables. */
export const DATABASE_HAS_NO_SCHEMA = `the database has no schema: run ${TOOL_COMMANDS.migrate}`;

/**
 * Prisma's "table does not exist" (P2021), or PostgreSQL's undefined_table (42P01) from a query of
 * our own: the database answers but has not been migrated (a restore that failed, a new database).
 */
export function isMissingTable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === 'P2021' || sqlStateOf(error) === '42P01') return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isMissingTable(inner, innerDepth) || undefined) ?? false
  );
}

/** What /readyz says, and the log of a request that met it, of a database that only reads. */
export const DATABASE_READ_ONLY =
  'the database only reads (a standby, or set read-only): point DATABASE_URL at the primary';

/**
 * PostgreSQL's read_only_sql_transaction (25006): a write, or a SELECT … FOR UPDATE, on a standby
 * (a failover that left DATABASE_URL on the old primary) or a database set read-only.
 */
export function isReadOnlyDatabase(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if (sqlStateOf(error) === '25006') return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isReadOnlyDatabase(inner, innerDepth) || undefined) ??
    false
  );
}

/** What /readyz says, and the log of a request that met it, of a database whose migrations are behind the code. */
export const DATABASE_BEHIND = `the database is behind this release (migrations not applied): run ${TOOL_COMMANDS.migrate}`;

/**
 * Prisma's "column does not exist" (P2022), or PostgreSQL's undefined_column (42703): a database
 * behind the code (an older dump restored, an upgrade nobody migrated), as a rule.
 */
export function isMissingColumn(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === 'P2022' || sqlStateOf(error) === '42703') return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isMissingColumn(inner, innerDepth) || undefined) ?? false
  );
}

/**
 * Text PostgreSQL refuses to store: a NUL character (22021) or one the database's encoding
 * lacks (22P05). The input was wrong, not the server; the statement failed, so nothing of it
 * was written.
 */
export function isUnstorableText(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state === '22021' || state === '22P05';
}

/** pg-pool's refusal once the pool has ended, which only a shutdown does. */
const POOL_ENDED_MESSAGE = 'Cannot use a pool after calling end on the pool';

/**
 * A query sent after the shutdown closed the database pool: a request it cut when
 * SHUTDOWN_TIMEOUT_MS ran out (one waiting on a frozen database, say) whose handler went on.
 * Neither the request's fault nor a bug: the process is stopping.
 */
export function isPoolClosedByShutdown(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { message?: unknown }).message === POOL_ENDED_MESSAGE) return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isPoolClosedByShutdown(inner, innerDepth) || undefined) ??
    false
  );
}

// Errors that mean "the database cannot be reached right now", not "this request is wrong":
// the socket (pg), PostgreSQL refusing connections (SQLSTATE class 08, 57P01-57P03, 53300),
// no answer in time (DatabaseTimeoutError, and pg.Client's "timeout expired" for a connection its
// connectionTimeoutMillis gave up on: a host that took it and never answered, as the start's wait
// for the database meets it), and Prisma's and its pg adapter's names for the same.
// So is a connection PostgreSQL refuses for DATABASE_URL itself: its database does not exist
// (3D000: dropped, restored under another name, misspelt) or its role or password is refused
// (class 28), or it takes no connections (55000 "database … is not currently accepting
// connections": ALLOW_CONNECTIONS false, a DBA's maintenance; 55000 alone is also a query's own
// mistake, such as currval before nextval, so the message decides). Only opening a connection raises
// them; they were each request's "unhandled error" and 500, and each scheduled ingestion's
// "crashed", while /readyz said "database unavailable".
const UNREACHABLE_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const UNREACHABLE_SQL_STATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000']);
const UNREACHABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);
const UNREACHABLE_ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
const NOT_ACCEPTING_CONNECTIONS = /is not currently accepting connections/;
const UNREACHABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|timeout expired$|Client has encountered a connection error)/;

/**
 * Prisma's P2028: an interactive transaction that ran out of its time (`timeout`, 5 s unless the
 * call says otherwise) or could not start within `maxWait`. PostgreSQL rolled it back whole, so
 * nothing of it is stored and the request may work when tried again.
 */
export function isTransactionTimedOut(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === 'P2028') return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isTransactionTimedOut(inner, innerDepth) || undefined) ??
    false
  );
}

/**
 * PostgreSQL ended a statement of a working database, and with it its transaction, rolled back whole:
 * canceled (57014: statement_timeout, which docs/operations.md advises for the app's role, or an
 * operator's pg_cancel_backend), a lock not granted within lock_timeout (55P03), or chosen to end a
 * deadlock or a serialization conflict (40P01, 40001; Prisma's P2034). The request may work when tried
 * again; it was a 500 logged as an 'unhandled error'.
 */
const REFUSED_STATEMENT_STATES = new Set(['57014', '55P03', '40P01', '40001']);

/** A statement PostgreSQL canceled or ended (REFUSED_STATEMENT_STATES): nothing of its transaction is stored. */
export function isStatementRefused(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === 'P2034') return true;
  const state = sqlStateOf(error);
  if (state !== undefined && REFUSED_STATEMENT_STATES.has(state)) return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isStatementRefused(inner, innerDepth) || undefined) ??
    false
  );
}

/** What the log says of a request whose database ran out of resources (isOutOfResources). */
export const DATABASE_OUT_OF_RESOURCES =
  'it is out of resources (disk space, memory, or a limit such as temp_file_limit)';

/**
 * PostgreSQL's class 53, insufficient resources, but too many connections (53300, which
 * isDatabaseUnavailable counts): a full disk (53100), no memory (53200), a configured limit such as
 * temp_file_limit (53400). The transaction is rolled back whole; someone must free space or raise the
 * limit. It was a 500 logged as an 'unhandled error'.
 */
export function isOutOfResources(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state !== undefined && state.startsWith('53') && state !== '53300';
}

/** pg-pool's refusal of a checkout no connection came free for within its `connectionTimeoutMillis`. */
const POOL_WAIT_TIMED_OUT_MESSAGE = 'timeout exceeded when trying to connect';

/**
 * No free connection in the pool within DB_CONNECT_TIMEOUT_MS: every DB_POOL_MAX connection was
 * busy (a burst of requests, a slow query holding them), so this one never reached the database.
 * pg-pool's "timeout exceeded when trying to connect", raw under Prisma's pg adapter, or Prisma's
 * own P2024. Not a database that cannot be reached: opening a connection that took too long is
 * "Connection terminated due to connection timeout" (isDatabaseUnavailable alone).
 */
export function isPoolWaitTimedOut(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === 'P2024' || message === POOL_WAIT_TIMED_OUT_MESSAGE) return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isPoolWaitTimedOut(inner, innerDepth) || undefined) ??
    false
  );
}

/** The database is down, restarting or out of connections; the request may work in a moment. */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if (error instanceof DatabaseTimeoutError) return true;
  const { code, kind, message } = error as { code?: unknown; kind?: unknown; message?: unknown };
  const state = sqlStateOf(error);
  if (state !== undefined && (/^(08|28)/.test(state) || UNREACHABLE_SQL_STATES.has(state))) return true;
  if (state === '55000' && typeof message === 'string' && NOT_ACCEPTING_CONNECTIONS.test(message)) return true;
  if (typeof code === 'string' && (UNREACHABLE_SOCKET_CODES.has(code) || UNREACHABLE_PRISMA_CODES.has(code))) {
    return true;
  }
  if (typeof kind === 'string' && UNREACHABLE_ADAPTER_KINDS.has(kind)) return true;
  if (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message)) return true;
  return (
    searchWrappedErrors(error, depth, (inner, innerDepth) => isDatabaseUnavailable(inner, innerDepth) || undefined) ??
    false
  );
}
