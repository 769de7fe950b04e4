import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** A receipt of `username` holding one live item for each job key on `cluster`. */
async function insertReceiptWithItems(jobKeys: string[], { username = 'alice', cluster = 'lab' } = {}) {
  const receipt = await db.pool.query<{ id: number }>(
    `INSERT INTO receipts (username, billed_through, total, currency, tier_name, rates_snapshot, rates_locked_at, created_by)
     VALUES ($1, '2026-01-31', 1.00, 'THB', 'mu', '{}', now(), $1) RETURNING id`,
    [username],
  );
  const receiptId = receipt.rows[0]?.id;
  await db.pool.query(
    `INSERT INTO receipt_items (receipt_id, slurm_job_id, cluster, job_key, display_job_id, cpu_hours, gpu_hours, mem_gb_hours, cost, job_end_at)
     SELECT $1, 1, $2, k, k, 1, 0, 0, 1.00, now() FROM unnest($3::text[]) AS k`,
    [receiptId, cluster, jobKeys],
  );
  return receiptId;
}

describe('the database itself', () => {
  it('refuses a job key on two live receipts, and allows it again once the first is void', async () => {
    const first = await insertReceiptWithItems(['4242']);
    await expect(insertReceiptWithItems(['4242'])).rejects.toMatchObject({ code: '23505' });
    await db.pool.query('UPDATE receipt_items SET is_voided = true WHERE receipt_id = $1', [first]);
    await expect(insertReceiptWithItems(['4242'])).resolves.toBeTypeOf('number');
  });

  it('keeps new money received only beside a voided receipt’s money, and more than nothing', async () => {
    // paid.csv reads new_money_received as the line's money only for a receipt paid with a voided
    // receipt's money (migration 20261206080000): alone, it would hide the rest of the total.
    const source = await insertReceiptWithItems(['5151'], { username: 'nina' });
    const paid = await insertReceiptWithItems(['5152'], { username: 'nina' });
    await expect(
      db.pool.query('UPDATE receipts SET new_money_received = 0.30 WHERE id = $1', [paid]),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      db.pool.query('UPDATE receipts SET paid_with_receipt_id = $2, new_money_received = 0 WHERE id = $1', [
        paid,
        source,
      ]),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      db.pool.query('UPDATE receipts SET paid_with_receipt_id = $2, new_money_received = 0.30 WHERE id = $1', [
        paid,
        source,
      ]),
    ).resolves.toMatchObject({ rowCount: 1 });
  });

  it('compares the job keys byte by byte (collation C)', async () => {
    // Every job and receipt-item lookup compares these columns many times; under the
    // database's C.UTF-8 they went through strcoll (migration 20261201190000).
    const columns = await db.pool.query<{ column: string; collation: string | null }>(
      `SELECT table_name || '.' || column_name AS column, collation_name AS collation
         FROM information_schema.columns
        WHERE (table_name, column_name) IN (('slurm_jobs', 'cluster'), ('slurm_jobs', 'job_id'),
              ('slurm_jobs', 'job_key'), ('receipt_items', 'cluster'), ('receipt_items', 'job_key'))
        ORDER BY 1`,
    );
    expect(columns.rows).toEqual([
      { column: 'receipt_items.cluster', collation: 'C' },
      { column: 'receipt_items.job_key', collation: 'C' },
      { column: 'slurm_jobs.cluster', collation: 'C' },
      { column: 'slurm_jobs.job_id', collation: 'C' },
      { column: 'slurm_jobs.job_key', collation: 'C' },
    ]);
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

  it('queues a finished job for billing exactly while no live receipt item holds its key', async () => {
    const cluster = 'queued';
    const addJob = (jobId: string, jobKey: string, isTerminal = true) =>
      db.pool.query(
        `INSERT INTO slurm_jobs (cluster, job_id, job_key, "user", state, is_terminal, end_at, source)
         VALUES ($1, $2, $3, 'queuer', $4, $5, now() - interval '1 day', 'file')`,
        [cluster, jobId, jobKey, isTerminal ? 'COMPLETED' : 'RUNNING', isTerminal],
      );
    const addItems = (jobKeys: string[]) => insertReceiptWithItems(jobKeys, { username: 'queuer', cluster });
    /** The queued job ids, after checking the queue row for row against the rule it stands for. */
    const queued = async () => {
      const { rows } = await db.pool.query<{ job_id: string; is_queued: boolean; is_due: boolean; is_same: boolean }>(
        `SELECT j.job_id, u.job_id IS NOT NULL AS is_queued,
                j.is_terminal AND NOT EXISTS (
                  SELECT 1 FROM receipt_items ri
                   WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided) AS is_due,
                u.job_id IS NULL OR (u."user" = j."user" AND u.end_at IS NOT DISTINCT FROM j.end_at) AS is_same
           FROM slurm_jobs j LEFT JOIN unbilled_jobs u ON u.job_id = j.id
          WHERE j.cluster = $1 ORDER BY j.job_id`,
        [cluster],
      );
      for (const row of rows) {
        expect(row.is_queued, `job ${row.job_id}`).toBe(row.is_due);
        expect(row.is_same, `job ${row.job_id} owner and end`).toBe(true);
      }
      return rows.filter((row) => row.is_queued).map((row) => row.job_id);
    };
    const update = (set: string, jobId: string) =>
      db.pool.query(`UPDATE slurm_jobs SET ${set} WHERE cluster = $1 AND job_id = $2`, [cluster, jobId]);

    await addJob('1', 'k1');
    await addJob('2', 'k2');
    await addJob('3', 'k3');
    await addJob('5', 'k5', false);
    expect(await queued()).toEqual(['1', '2', '3']);

    const first = await addItems(['k1', 'k2']);
    expect(await queued()).toEqual(['3']);

    // A row that arrives later with a billed key is not due; one given a billed key by an
    // update leaves the queue, and comes back with its own key.
    await addJob('4', 'k1');
    await update(`job_key = 'k2'`, '3');
    expect(await queued()).toEqual([]);
    await update(`job_key = 'k3'`, '3');
    expect(await queued()).toEqual(['3']);

    // A running job joins when it finishes; a corrected owner or end moves with it.
    await update(`state = 'COMPLETED', is_terminal = true`, '5');
    expect(await queued()).toEqual(['3', '5']);
    await update(`"user" = 'someone-else', end_at = now() - interval '2 days'`, '5');
    expect(await queued()).toEqual(['3', '5']);
    await update(`name = 'renamed'`, '3');
    expect(await queued()).toEqual(['3', '5']);

    // Voiding frees the keys; billing one again takes it out again.
    await db.pool.query('UPDATE receipt_items SET is_voided = true WHERE receipt_id = $1', [first]);
    expect(await queued()).toEqual(['1', '2', '3', '4', '5']);
    const second = await addItems(['k2', 'k3']);
    expect(await queued()).toEqual(['1', '4', '5']);

    // Deleting a live item frees its key, and only its key; a deleted job leaves the queue.
    await db.pool.query(`DELETE FROM receipt_items WHERE receipt_id = $1 AND job_key = 'k3'`, [second]);
    expect(await queued()).toEqual(['1', '3', '4', '5']);
    await db.pool.query(`DELETE FROM slurm_jobs WHERE cluster = $1 AND job_id = '4'`, [cluster]);
    expect(await queued()).toEqual(['1', '3', '5']);

    // A refused insert (the live-key index refuses k2 twice) leaves the queue as it was.
    await expect(addItems(['k1', 'k2'])).rejects.toMatchObject({ code: '23505' });
    expect(await queued()).toEqual(['1', '3', '5']);
  });

  it('queues a voided job with the owner and end a concurrent correction gives it', async () => {
    await db.pool.query(
      `INSERT INTO slurm_jobs (cluster, job_id, job_key, "user", state, is_terminal, end_at, source)
       VALUES ('raced', '1', 'r1', 'racer', 'COMPLETED', true, '2026-03-01T00:00:00Z', 'file')`,
    );
    const receiptId = await insertReceiptWithItems(['r1'], { username: 'racer', cluster: 'raced' });
    const correcting = await db.pool.connect();
    try {
      await correcting.query('BEGIN');
      await correcting.query(
        `UPDATE slurm_jobs SET "user" = 'racer-corrected', end_at = '2026-03-02T00:00:00Z' WHERE cluster = 'raced'`,
      );
      // The void reads the job while the correction is not yet committed.
      const voiding = db.pool.query('UPDATE receipt_items SET is_voided = true WHERE receipt_id = $1', [receiptId]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await correcting.query('COMMIT');
      await voiding;
    } finally {
      correcting.release();
    }
    const { rows } = await db.pool.query(
      `SELECT u."user", u.end_at FROM unbilled_jobs u JOIN slurm_jobs j ON j.id = u.job_id WHERE j.cluster = 'raced'`,
    );
    expect(rows).toEqual([{ user: 'racer-corrected', end_at: new Date('2026-03-02T00:00:00Z') }]);
  });

  it('refills the queue when receipt_items is truncated and empties it with slurm_jobs', async () => {
    const count = async () => (await db.pool.query('SELECT count(*)::int AS n FROM unbilled_jobs')).rows[0]?.n;
    const jobs = async () =>
      (await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs WHERE is_terminal')).rows[0]?.n;
    await db.pool.query(
      'TRUNCATE receipt_items, payment_events, payment_refused_claims, payment_failed_refunds, payments, receipts',
    );
    expect(await count()).toBe(await jobs());
    expect(await count()).toBeGreaterThan(0);
    await db.pool.query('TRUNCATE slurm_jobs');
    expect(await count()).toBe(0);
  });

  it('allows only one default pricing tier', async () => {
    await db.prisma.pricingTier.create({ data: { name: 'first-default', isDefault: true } });
    await expect(db.prisma.pricingTier.create({ data: { name: 'second-default', isDefault: true } })).rejects.toThrow();
  });
});
