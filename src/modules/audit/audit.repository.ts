import type { Prisma } from '@prisma/client';
import type { Db } from '../../db/database.js';
import type { AuditRecord } from './audit-hash.js';

export type Tx = Prisma.TransactionClient;

// Any constant works; every process serializes its appends on it.
const AUDIT_APPEND_LOCK = 727_450_115;

export interface StoredAuditEntry extends AuditRecord {
  id: bigint;
  prevHash: string;
  hash: string;
}

/** Takes the append lock for the rest of the transaction and returns the newest hash. */
export async function lockChainHead(tx: Tx): Promise<string | undefined> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${AUDIT_APPEND_LOCK})`;
  const head = await tx.auditLog.findFirst({ orderBy: { id: 'desc' }, select: { hash: true } });
  return head?.hash;
}

/** Inserts chained entries in one statement; ids follow the array order, as the chain does. */
export async function insertEntries(tx: Tx, entries: { record: AuditRecord; prevHash: string; hash: string }[]) {
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

export interface AuditFilter {
  actor?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

function whereOf(filter: AuditFilter, beforeId?: bigint): Prisma.AuditLogWhereInput {
  return {
    ...(filter.actor ? { actor: filter.actor } : {}),
    ...(filter.action ? { action: filter.action } : {}),
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

export async function listDistinctActions(db: Db): Promise<string[]> {
  const rows = await db.auditLog.findMany({
    distinct: ['action'],
    select: { action: true },
    orderBy: { action: 'asc' },
  });
  return rows.map((row) => row.action);
}
