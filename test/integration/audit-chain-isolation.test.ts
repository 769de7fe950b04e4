import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.js';
import { appendAudit, recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { createLogger } from '../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const context = { actor: 'ops', ip: null, userAgent: null };

/** Two processes' pools on a database whose default isolation is `level` (ALTER DATABASE … SET). */
async function poolsUnder(level: string): Promise<[Database, Database]> {
  await db.pool.query(`ALTER DATABASE ${db.name} SET default_transaction_isolation = '${level}'`);
  const open = () =>
    openDatabase(db.url, { poolMax: 6, queryTimeoutMs: db.queryTimeoutMs, logger: createLogger('silent') });
  return [open(), open()];
}

describe('an entry appended in a transaction that reads one snapshot', () => {
  it('is refused, saying why, and nothing is written', async () => {
    const before = await db.prisma.auditLog.count();
    for (const isolationLevel of [
      Prisma.TransactionIsolationLevel.RepeatableRead,
      Prisma.TransactionIsolationLevel.Serializable,
    ]) {
      await expect(
        db.prisma.$transaction((tx) => appendAudit(tx, { ...context, action: 'test.snapshot', status: 'ok' }), {
          isolationLevel,
        }),
      ).rejects.toThrow(
        /appended in a READ COMMITTED transaction only, not (repeatable read|serializable): .* would fork the chain/,
      );
    }
    expect(await db.prisma.auditLog.count()).toBe(before);
  });
});

describe('the audit chain on a database whose default isolation is not READ COMMITTED', { timeout: 60_000 }, () => {
  it('does not fork when changes that record an entry in their transaction run beside sign-ins', async () => {
    const [one, two] = await poolsUnder('repeatable read');
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, index) => {
          const worker = index % 2 === 0 ? one : two;
          if (index % 3 === 0) return recordAudit(worker, { ...context, action: 'test.alone', status: 'ok' });
          // A change that reads first (its snapshot taken), then records its entry, as services do.
          return worker.prisma.$transaction(async (tx) => {
            await tx.user.count();
            await new Promise((resolve) => setTimeout(resolve, 5));
            await appendAudit(tx, { ...context, action: 'test.in-transaction', status: 'ok', details: { index } });
          });
        }),
      );
      const written = results.filter((result) => result.status === 'fulfilled').length;
      expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: written });
      expect(written).toBe(30);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await db.pool.query(`ALTER DATABASE ${db.name} RESET default_transaction_isolation`);
    }
  });
});
