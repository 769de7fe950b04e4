import type pg from 'pg';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { GENESIS_HASH, hashAuditRecord } from '../../src/modules/audit/audit-hash.js';
import { sessionsWaitingForLocks } from './lock-waits.js';

/**
 * Runs `work` (a tool without AUDIT_CHAIN_KEY, say) while this holds the audit chain's append lock,
 * and once a session waits for that lock (its append, past any check made before it), commits a
 * first sealed entry, as another instance given the key writes one meanwhile: the append, let
 * through, finds the log sealed. What `work` returns, and the sealed entry's id.
 */
export async function sealedWhileAppendWaits<T>(
  pool: pg.Pool,
  key: string,
  work: () => Promise<T>,
): Promise<{ result: T; sealedId: bigint }> {
  const client = await pool.connect();
  let sealedId: bigint;
  let running: Promise<T>;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
    const { rows } = await client.query<{ hash: string }>('SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1');
    const prevHash = rows[0]?.hash ?? GENESIS_HASH;
    running = work();
    // Awaited below; a failure before then is not left unhandled meanwhile.
    running.catch(() => undefined);
    if ((await sessionsWaitingForLocks(pool, 60_000)) === 0) throw new Error('nothing waited for the audit lock');
    const record = {
      ts: new Date(),
      actor: 'ops',
      ip: null,
      userAgent: null,
      action: 'test.sealed_meanwhile',
      target: null,
      status: 'ok',
      details: null,
    };
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO audit_log (ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash)
       VALUES ($1, $2, NULL, NULL, $3, NULL, $4, NULL, $5, $6) RETURNING id::text AS id`,
      [record.ts, record.actor, record.action, record.status, prevHash, hashAuditRecord(prevHash, record, key)],
    );
    sealedId = BigInt(inserted.rows[0]?.id ?? '0');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return { result: await running, sealedId };
}
