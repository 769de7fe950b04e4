import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

async function insertReceiptWithItem(jobKey: string) {
  const receipt = await db.pool.query<{ id: number }>(
    `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
     VALUES ('alice', '2026-01-31', 1.00, 'THB', 'mu', '{}', now(), 'alice') RETURNING id`,
  );
  const receiptId = receipt.rows[0]?.id;
  await db.pool.query(
    `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost)
     VALUES ($1, 1, 'lab', $2, $2, 1, 0, 0, 1.00)`,
    [receiptId, jobKey],
  );
  return receiptId;
}

describe('the database itself', () => {
  it('refuses a job key on two live receipts, and allows it again once the first is void', async () => {
    const first = await insertReceiptWithItem('4242');
    await expect(insertReceiptWithItem('4242')).rejects.toMatchObject({ code: '23505' });
    await db.pool.query('UPDATE receipt_items SET is_voided = true WHERE receipt_id = $1', [first]);
    await expect(insertReceiptWithItem('4242')).resolves.toBeTypeOf('number');
  });

  it('refuses to update, delete or truncate audit entries', async () => {
    await db.pool.query(
      `INSERT INTO audit_log (actor, action, status, prev_hash, hash) VALUES ('admin', 'user.create', 'ok', $1, $2)`,
      ['0'.repeat(64), 'a'.repeat(64)],
    );
    await expect(db.pool.query(`UPDATE audit_log SET actor = 'mallory'`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    await expect(db.pool.query('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
    const rows = await db.pool.query('SELECT actor FROM audit_log');
    expect(rows.rows).toEqual([{ actor: 'admin' }]);
  });

  it('stores money as numeric, exactly', async () => {
    const tier = await db.prisma.pricingTier.create({ data: { name: 'exact' } });
    await db.prisma.pricingRate.create({
      data: {
        tierId: tier.id,
        cpuPerHour: '0.1',
        gpuPerHour: '0.2',
        memPerHour: '0.3',
        currency: 'THB',
        effectiveFrom: new Date(),
      },
    });
    const sum = await db.pool.query<{ total: string }>(
      'SELECT (cpu_per_hour + gpu_per_hour)::text AS total FROM pricing_rates WHERE tier_id = $1',
      [tier.id],
    );
    expect(sum.rows[0]?.total).toBe('0.300000');
  });

  it('allows only one default pricing tier', async () => {
    await db.prisma.pricingTier.create({ data: { name: 'first-default', isDefault: true } });
    await expect(db.prisma.pricingTier.create({ data: { name: 'second-default', isDefault: true } })).rejects.toThrow();
  });
});
