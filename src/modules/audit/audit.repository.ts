import { Prisma } from '@prisma/client';
import type pg from 'pg';
import { ADVISORY_LOCK_KEYS } from '../../db/advisory-locks.js';
import type { Db } from '../../db/database.js';
import { sharedReadWithin } from '../../db/query-timeout.js';
import { namesContainingSql } from '../../db/username-search.js';
import type { AuditRecord } from './audit-hash.js';

export type Tx = Prisma.TransactionClient;

// Any constant works; every process serializes its appends on it.
const AUDIT_APPEND_LOCK = ADVISORY_LOCK_KEYS.auditAppend;

export interface StoredAuditEntry extends AuditRecord {
  id: bigint;
  prevHash: string;
  hash: string;
}

/** The newest entry when an append takes the chain's lock: its hash, and the whole entry when asked for. */
export interface ChainHead {
  hash: string;
  /** Read only for a process that appends unsealed entries, which must not follow a sealed one. */
  entry?: StoredAuditEntry;
}

/**
 * Takes the append lock for the rest of the transaction and returns the newest entry's hash, and the
 * whole entry with `isEntryRead`. Only under READ COMMITTED does the head read after the lock see the
 * entry the last holder committed: a REPEATABLE READ or SERIALIZABLE transaction reads the snapshot of
 * its first statement, so an append there is refused (the database's connections default to READ
 * COMMITTED: src/db/database.ts).
 */
export async function lockChainHead(tx: Tx, isEntryRead: boolean): Promise<ChainHead | undefined> {
  const [lock] = await tx.$queryRaw<{ isolation: string }[]>`
    SELECT current_setting('transaction_isolation') AS isolation FROM (SELECT pg_advisory_xact_lock(${AUDIT_APPEND_LOCK})) AS locked`;
  if (lock?.isolation !== 'read committed') {
    throw new Error(
      `an audit entry is appended in a READ COMMITTED transaction only, not ${lock?.isolation ?? 'an unknown isolation'}: the chain's head is read after its lock, and an older snapshot would fork the chain`,
    );
  }
  if (isEntryRead) {
    const entry = await tx.auditLog.findFirst({ orderBy: { id: 'desc' }, select: SELECT_ENTRY });
    return entry ? { hash: entry.hash, entry } : undefined;
  }
  const head = await tx.auditLog.findFirst({ orderBy: { id: 'desc' }, select: { hash: true } });
  return head ?? undefined;
}

export interface ChainedEntry {
  record: AuditRecord;
  prevHash: string;
  hash: string;
}

/** Inserts chained entries in one statement; ids follow the array order, as the chain does. */
export async function insertEntries(tx: Tx, entries: ChainedEntry[]) {
  await tx.auditLog.createMany({
    data: entries.map(({ record, prevHash, hash }) => ({
      ts: record.ts,
      actor: record.actor,
      ip: record.ip,
      userAgent: record.userAgent,
      action: record.action,
      target: record.target,
      status: record.status,
      details:
        record.details === null || record.details === undefined ? undefined : (record.details as Prisma.InputJsonValue),
      prevHash,
      hash,
    })),
  });
}

// One round trip in the simple protocol. Under READ COMMITTED each statement of it takes its
// own snapshot, so the head is read after the lock is granted: the newest committed entry.
const BEGIN_AND_LOCK = `BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_advisory_xact_lock(${AUDIT_APPEND_LOCK})`;
const BEGIN_AND_READ_LOCKED_HEAD = `${BEGIN_AND_LOCK};
SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1`;
// The whole entry, as SELECT_ENTRY reads it through Prisma: the id as text (int8), details as jsonb's text.
// Ordered by the column, not by the output's `id`, which is text ('9' after '10').
const SELECT_HEAD_ENTRY_ROW = `SELECT a.id::text AS id, a.ts, a.actor, a.ip, a.user_agent, a.action, a.target, a.status, a.details::text AS details,
       a.prev_hash, a.hash
  FROM audit_log a ORDER BY a.id DESC LIMIT 1`;
const BEGIN_AND_READ_LOCKED_HEAD_ENTRY = `${BEGIN_AND_LOCK};
${SELECT_HEAD_ENTRY_ROW}`;

interface HeadEntryRow {
  id: string;
  ts: Date;
  actor: string;
  ip: string | null;
  user_agent: string | null;
  action: string;
  target: string | null;
  status: string;
  details: string | null;
  prev_hash: string;
  hash: string;
}

function headOfRow(row: HeadEntryRow): ChainHead {
  return {
    hash: row.hash,
    entry: {
      id: BigInt(row.id),
      ts: row.ts,
      actor: row.actor,
      ip: row.ip,
      userAgent: row.user_agent,
      action: row.action,
      target: row.target,
      status: row.status,
      details: row.details === null ? null : JSON.parse(row.details),
      prevHash: row.prev_hash,
      hash: row.hash,
    },
  };
}

const readNewestEntry = sharedReadWithin<HeadEntryRow>();

/**
 * The newest entry (the highest id: one read of the primary key's index), if there is one, given up
 * after `timeoutMs`, for a readiness check. Checks while one is in flight wait for its answer instead
 * of asking again, as the readiness query's do (sharedReadWithin): on a frozen database, probes and
 * scrapes hold at most one connection for it.
 */
export async function findNewestEntryWithin(pool: pg.Pool, timeoutMs: number): Promise<StoredAuditEntry | undefined> {
  const { rows } = await readNewestEntry(pool, timeoutMs, () => ({ text: SELECT_HEAD_ENTRY_ROW }));
  const row = rows[0];
  return row === undefined ? undefined : headOfRow(row).entry;
}

// nextval() is volatile, so PostgreSQL assigns the ids after the sort: in array order.
const INSERT_CHAINED_ENTRIES = {
  name: 'hb_audit_insert_chained_entries',
  text: `INSERT INTO audit_log (ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash)
SELECT e.ts, e.actor, e.ip, e.user_agent, e.action, e.target, e.status, e.details::jsonb, e.prev_hash, e.hash
  FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::text[])
       WITH ORDINALITY AS e(ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash, position)
 ORDER BY e.position`,
};

/**
 * Appends entries in a transaction of their own, straight over pg: three round trips
 * (begin, lock and head; insert; commit) while the chain lock is held, where Prisma's
 * interactive transaction took five, each through its runtime. Every sign-in waits for
 * this. `chain` turns the head into the rows to insert (or throws, and nothing is); the whole head
 * entry is read for it with `isEntryRead`, as lockChainHead reads it.
 */
export async function appendEntriesAlone(
  pool: pg.Pool,
  chain: (head: ChainHead | undefined) => ChainedEntry[],
  isEntryRead: boolean,
): Promise<void> {
  const client = await pool.connect();
  let isBroken = false;
  try {
    const results = (await client.query(
      isEntryRead ? BEGIN_AND_READ_LOCKED_HEAD_ENTRY : BEGIN_AND_READ_LOCKED_HEAD,
    )) as unknown as pg.QueryResult<HeadEntryRow>[];
    const row = results[2]?.rows[0];
    const entries = chain(row === undefined ? undefined : isEntryRead ? headOfRow(row) : { hash: row.hash });
    const columns = {
      ts: [] as string[],
      actor: [] as string[],
      ip: [] as (string | null)[],
      userAgent: [] as (string | null)[],
      action: [] as string[],
      target: [] as (string | null)[],
      status: [] as string[],
      details: [] as (string | null)[],
      prevHash: [] as string[],
      hash: [] as string[],
    };
    for (const { record, prevHash, hash } of entries) {
      columns.ts.push(record.ts.toISOString());
      columns.actor.push(record.actor);
      columns.ip.push(record.ip);
      columns.userAgent.push(record.userAgent);
      columns.action.push(record.action);
      columns.target.push(record.target);
      columns.status.push(record.status);
      columns.details.push(
        record.details === null || record.details === undefined ? null : JSON.stringify(record.details),
      );
      columns.prevHash.push(prevHash);
      columns.hash.push(hash);
    }
    await client.query({ ...INSERT_CHAINED_ENTRIES, values: Object.values(columns) });
    await client.query('COMMIT');
  } catch (error) {
    // A connection whose transaction cannot be rolled back must not go back to the pool.
    await client.query('ROLLBACK').catch(() => {
      isBroken = true;
    });
    throw error;
  } finally {
    client.release(isBroken);
  }
}

const SELECT_ENTRY = {
  id: true,
  ts: true,
  actor: true,
  ip: true,
  userAgent: true,
  action: true,
  target: true,
  status: true,
  details: true,
  prevHash: true,
  hash: true,
} as const;

/** Entries written under `target` with ids from `fromId` up to `upToId` (either open). */
export interface TargetSpan {
  target: string;
  fromId?: bigint;
  upToId?: bigint;
}

export interface AuditFilter {
  /** Any of these actors (what the Actor filter matched, findActorsContaining's); none matches an empty list. */
  actors?: string[];
  action?: string;
  /** Any of these targets (`targetsMatching`): a user's entries are written in two forms. */
  targets?: string[];
  /** Or any of these spans: a renamed tier's entries under its earlier names (`tierNameSpans`). */
  targetSpans?: TargetSpan[];
  from?: Date;
  to?: Date;
}

function targetWhereOf(filter: AuditFilter): Prisma.AuditLogWhereInput {
  if (!filter.targets) return {};
  if (!filter.targetSpans?.length) return { target: { in: filter.targets } };
  return {
    OR: [
      { target: { in: filter.targets } },
      ...filter.targetSpans.map((span) => ({
        target: span.target,
        id: {
          ...(span.fromId !== undefined ? { gte: span.fromId } : {}),
          ...(span.upToId !== undefined ? { lte: span.upToId } : {}),
        },
      })),
    ],
  };
}

function whereOf(filter: AuditFilter, beforeId?: bigint): Prisma.AuditLogWhereInput {
  return {
    ...(filter.actors ? { actor: { in: filter.actors } } : {}),
    ...(filter.action ? { action: filter.action } : {}),
    ...targetWhereOf(filter),
    ...(filter.from || filter.to
      ? { ts: { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) } }
      : {}),
    ...(beforeId !== undefined ? { id: { lt: beforeId } } : {}),
  };
}

/** Newest first, keyset-paginated by id. */
export async function findPage(
  db: Db,
  filter: AuditFilter,
  limit: number,
  beforeId?: bigint,
): Promise<StoredAuditEntry[]> {
  return db.auditLog.findMany({
    where: whereOf(filter, beforeId),
    orderBy: { id: 'desc' },
    take: limit,
    select: SELECT_ENTRY,
  });
}

/** Every entry in batches, in `order` of id, for streaming exports and chain walks. */
export async function* iterateEntries(
  db: Db,
  order: 'asc' | 'desc',
  batchSize = 1000,
  filter: AuditFilter = {},
): AsyncGenerator<StoredAuditEntry[]> {
  let cursor: bigint | undefined;
  for (;;) {
    const idBound = cursor === undefined ? {} : { id: order === 'asc' ? { gt: cursor } : { lt: cursor } };
    const batch = await db.auditLog.findMany({
      where: { ...whereOf(filter), ...idBound },
      orderBy: { id: order },
      take: batchSize,
      select: SELECT_ENTRY,
    });
    if (batch.length === 0) return;
    yield batch;
    cursor = batch[batch.length - 1]?.id;
  }
}

/** The id of the entry whose hash is `hash` (unique), if there is one. */
export async function findEntryIdByHash(db: Db, hash: string): Promise<bigint | undefined> {
  const entry = await db.auditLog.findUnique({ where: { hash }, select: { id: true } });
  return entry?.id;
}

/** The newest entry (the highest id), if there is one. */
export async function findNewestEntry(db: Db): Promise<StoredAuditEntry | undefined> {
  const entry = await db.auditLog.findFirst({ orderBy: { id: 'desc' }, select: SELECT_ENTRY });
  return entry ?? undefined;
}

/** The entry after `id` (the next id), with the hash it follows, if there is one. */
export async function findEntryAfter(db: Db, id: bigint): Promise<{ id: bigint; prevHash: string } | undefined> {
  const entry = await db.auditLog.findFirst({
    where: { id: { gt: id } },
    orderBy: { id: 'asc' },
    select: { id: true, prevHash: true },
  });
  return entry ?? undefined;
}

/**
 * The id of another entry than `id` whose hash is also `hash`: a copy of it inserted again (replayed)
 * once the unique index on hash was dropped. Undefined when none is.
 */
export async function findOtherEntryIdWithHash(db: Db, hash: string, id: bigint): Promise<bigint | undefined> {
  const entry = await db.auditLog.findFirst({
    where: { hash, id: { not: id } },
    orderBy: { id: 'asc' },
    select: { id: true },
  });
  return entry?.id;
}

/**
 * The actors of the log that contain `search` in any case (the page's Actor filter), in order: one
 * probe of the (actor, ts) index per actor, as listDistinctActions reads the actions. The entries of
 * those actors are then read with actor IN (...).
 */
export async function findActorsContaining(db: Db, search: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ name: string }[]>(namesContainingSql('audit_log', 'actor', search));
  return rows.map((row) => row.name);
}

/**
 * Every action in the log, once, in order (the page's filter). Prisma's `distinct` reads
 * every row and de-duplicates in Node (370 ms for 41,000 entries, and every sign-in adds
 * one); this walks the (action, ts) index from one action to the next, one probe each.
 */
export async function listDistinctActions(db: Db): Promise<string[]> {
  const rows = await db.$queryRaw<{ action: string }[]>`
    WITH RECURSIVE actions AS (
      (SELECT action FROM audit_log ORDER BY action LIMIT 1)
      UNION ALL
      SELECT (SELECT a.action FROM audit_log a WHERE a.action > actions.action ORDER BY a.action LIMIT 1)
        FROM actions
       WHERE actions.action IS NOT NULL
    )
    SELECT action FROM actions WHERE action IS NOT NULL`;
  return rows.map((row) => row.action);
}

/**
 * Where tier `name` got that name, newest before `beforeId` (or of all): its creation, or a rename
 * to it, whose `previous` is the name it had. The actions and details are rates.service's
 * (`pricing.tier.create`, `pricing.tier.update` with `previous` and `next`); a tier made outside
 * the app (SQL, an install older than the log) has none.
 */
export async function findTierNaming(
  db: Db,
  name: string,
  beforeId?: bigint,
): Promise<{ id: bigint; previousName: string | null } | undefined> {
  const before = beforeId === undefined ? Prisma.empty : Prisma.sql`AND id < ${beforeId}`;
  const rows = await db.$queryRaw<{ id: bigint; previousName: string | null }[]>`
    SELECT id, CASE WHEN action = 'pricing.tier.update' THEN details->'previous'->>'name' END AS "previousName"
      FROM audit_log
     WHERE status = 'ok'
       AND ((action = 'pricing.tier.create' AND target = ${`tier:${name}`})
         OR (action = 'pricing.tier.update' AND details->'next'->>'name' = ${name}
             AND details->'previous'->>'name' IS DISTINCT FROM ${name}))
       ${before}
     ORDER BY id DESC
     LIMIT 1`;
  return rows[0];
}
