import type { Db } from '../../db/database.js';
import * as auditRepository from './audit.repository.js';
import { type AuditRecord, GENESIS_HASH, hashAuditRecord } from './audit-hash.js';

export interface AuditEntry {
  actor: string;
  action: string;
  status: 'ok' | 'failed' | 'denied';
  target?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown> | null;
}

/** Who did something and from where, as routes know it. */
export interface AuditContext {
  actor: string;
  ip: string | null;
  userAgent: string | null;
}

/**
 * Appends one entry to the hash chain inside the caller's transaction, so the entry
 * exists exactly when the change it records does. Appends are serialized by an
 * advisory lock held until the transaction ends: the chain never forks.
 */
export async function appendAudit(tx: auditRepository.Tx, entry: AuditEntry, now = new Date()): Promise<void> {
  const prevHash = (await auditRepository.lockChainHead(tx)) ?? GENESIS_HASH;
  const record: AuditRecord = {
    ts: now,
    actor: entry.actor,
    ip: entry.ip ?? null,
    userAgent: entry.userAgent?.slice(0, 512) ?? null,
    action: entry.action,
    target: entry.target ?? null,
    status: entry.status,
    details: entry.details ?? null,
  };
  await auditRepository.insertEntry(tx, record, prevHash, hashAuditRecord(prevHash, record));
}

/** Appends one entry in a transaction of its own (for events that change nothing else). */
export async function recordAudit(db: Db, entry: AuditEntry, now = new Date()): Promise<void> {
  await db.$transaction((tx) => appendAudit(tx, entry, now));
}

export type ChainVerdict =
  | { isIntact: true; count: number }
  | { isIntact: false; count: number; brokenAt: bigint; reason: string };

function toRecord(entry: auditRepository.StoredAuditEntry): AuditRecord {
  const { ts, actor, ip, userAgent, action, target, status, details } = entry;
  return { ts, actor, ip, userAgent, action, target, status, details };
}

/** Walks the whole chain in id order and reports the first entry that does not fit. */
export async function verifyAuditChain(db: Db): Promise<ChainVerdict> {
  let expectedPrev = GENESIS_HASH;
  let count = 0;
  for await (const batch of auditRepository.iterateEntries(db, 'asc')) {
    for (const entry of batch) {
      count += 1;
      if (entry.prevHash !== expectedPrev) {
        return { isIntact: false, count, brokenAt: entry.id, reason: 'prev_hash does not match the previous entry' };
      }
      if (hashAuditRecord(entry.prevHash, toRecord(entry)) !== entry.hash) {
        return { isIntact: false, count, brokenAt: entry.id, reason: 'the entry was changed after it was written' };
      }
      expectedPrev = entry.hash;
    }
  }
  return { isIntact: true, count };
}

export {
  findPage as findAuditPage,
  iterateEntries as iterateAuditEntries,
  listDistinctActions,
} from './audit.repository.js';
