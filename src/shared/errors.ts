/**
 * Errors the application throws on purpose. Their message is safe to show to the
 * person who made the request; the error middleware turns them into a page or JSON.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(400, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Sign in to continue.') {
    super(401, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You do not have access to this.') {
    super(403, message);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Not found.') {
    super(404, message);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(409, message, details);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(message: string) {
    super(429, message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message = 'The request body is too large.') {
    super(413, message);
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(message: string) {
    super(503, message);
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
 * Text PostgreSQL refuses to store: a NUL character (22021) or one the database's encoding
 * lacks (22P05). The input was wrong, not the server; the statement failed, so nothing of it
 * was written.
 */
export function isUnstorableText(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state === '22021' || state === '22P05';
}
