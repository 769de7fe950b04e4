import type { Prisma } from '@prisma/client';

/** Who did something, as the audit log records it. */
export interface Actor {
  username: string;
  ip?: string | undefined;
  userAgent?: string | undefined;
}

/** One audit entry; written inside the transaction of the change it describes. */
export interface AuditEntry {
  actor: string;
  ip?: string | undefined;
  userAgent?: string | undefined;
  action: string;
  target?: string | undefined;
  status: 'ok' | 'denied' | 'failed';
  details?: Record<string, unknown> | undefined;
}

/** Appends an audit entry with the transaction client of the change. */
export type AppendAudit = (tx: Prisma.TransactionClient, entry: AuditEntry) => Promise<unknown>;

/** The audit entry for an actor's action. */
export function auditEntry(actor: Actor, entry: Omit<AuditEntry, 'actor' | 'ip' | 'userAgent'>): AuditEntry {
  return { actor: actor.username, ip: actor.ip, userAgent: actor.userAgent, ...entry };
}
