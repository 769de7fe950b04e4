import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { appendAudit } from '../../src/modules/audit/audit.service.js';
import { tryAcquireIngestLock } from '../../src/modules/ingestion/ingestion.repository.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('advisory locks', () => {
  it('gives every feature its own key', () => {
    const keys = Object.values(ADVISORY_LOCK_KEYS);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('lets an audited change through while an ingestion run holds its lock', async () => {
    const release = await tryAcquireIngestLock(db.pool);
    expect(release).toBeDefined();
    try {
      // A sign-in or a rate change writes an audit entry; it must not wait for a Slurm read.
      const append = db.prisma.$transaction((tx) =>
        appendAudit(tx, { actor: 'ops', ip: null, userAgent: null, action: 'test.append', status: 'ok' }),
      );
      const first = await Promise.race([
        append.then(() => 'appended'),
        sessionsWaitingForLocks(db.pool, 5_000).then((waiting) => (waiting > 0 ? 'waiting for a lock' : 'neither')),
      ]);
      expect(first).toBe('appended');
    } finally {
      await release?.();
    }
    expect(await db.prisma.auditLog.count({ where: { action: 'test.append' } })).toBe(1);
  });
});
