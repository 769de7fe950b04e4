import { createHash, createHmac } from 'node:crypto';

/** prev_hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditRecord {
  ts: Date;
  actor: string;
  ip: string | null;
  userAgent: string | null;
  action: string;
  target: string | null;
  status: string;
  details: unknown;
}

/** JSON with object keys sorted at every depth, so Postgres jsonb's key order cannot change a hash. */
export function toCanonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(toCanonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${toCanonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * hash = HMAC-SHA-256(key, prev_hash || canonical JSON of the record) when sealed with `key`,
 * SHA-256(prev_hash || canonical JSON) without one; hex. The plain hash shows a change to one
 * row, but whoever can write the table can recompute every hash after it; the keyed one cannot
 * be recomputed without the key, which the database never holds.
 */
export function hashAuditRecord(prevHash: string, record: AuditRecord, key?: string): string {
  const canonical = toCanonicalJson({ ...record, details: record.details ?? null });
  const hash = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  return hash.update(prevHash).update(canonical).digest('hex');
}
