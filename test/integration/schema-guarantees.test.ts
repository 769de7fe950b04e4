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

  it('moves the pricing version with every committed change to tiers, rates and overrides, and not before', async () => {
    const version = async () =>
      Number((await db.pool.query<{ v: string }>('SELECT version AS v FROM pricing_versions')).rows[0]?.v);
    const start = await version();
    const tier = await db.pool.query<{ id: number }>(
      `INSERT INTO pricing_tiers (name, description) VALUES ('versioned', '') RETURNING id`,
    );
    const tierId = tier.rows[0]?.id;
    expect(await version()).toBe(start + 1);
    await db.pool.query(
      `INSERT INTO pricing_rates (tier_id, cpu_per_hour, gpu_per_hour, mem_per_hour, currency, effective_from)
       VALUES ($1, 1, 1, 1, 'THB', now())`,
      [tierId],
    );
    expect(await version()).toBe(start + 2);

    // Inside an open transaction the change and its version stay invisible to others together.
    const writer = await db.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`INSERT INTO tier_overrides (username, tier_id) VALUES ('someone', $1)`, [tierId]);
      expect(await version()).toBe(start + 2);
      await writer.query('COMMIT');
    } finally {
      writer.release();
    }
    expect(await version()).toBe(start + 3);
    await db.pool.query(`DELETE FROM tier_overrides WHERE username = 'someone'`);
    expect(await version()).toBe(start + 4);
  });

  it('allows only one default pricing tier', async () => {
    await db.prisma.pricingTier.create({ data: { name: 'first-default', isDefault: true } });
    await expect(db.prisma.pricingTier.create({ data: { name: 'second-default', isDefault: true } })).rejects.toThrow();
  });
});
