import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The admin's lists read one page of a table that only grows: with 20,000 receipts, a page must be
 * read from an index in the list's order, not by reading and sorting every row (a plan that
 * grows with the table). Plans, not timings: the statements mirror those the repositories send.
 */
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  // Rows written straight in: these tests read plans, not billing. 40 users, five receipts an hour.
  await db.pool.query(`INSERT INTO receipts (username, billed_through, status, total, currency, tier_name,
      rates_snapshot, rates_locked_at, created_by, created_at)
    SELECT 'user' || (i % 40), DATE '2026-01-31', (ARRAY['pending', 'paid', 'void'])[1 + i % 3]::"ReceiptStatus",
      (i % 97)::numeric, 'THB', 'mu', '{}', now(), 'bulk', TIMESTAMPTZ '2026-01-01' + (i / 5) * INTERVAL '1 hour'
    FROM generate_series(1, 20000) AS i`);
  await db.pool.query(`INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, idempotency_key, created_at)
    SELECT id, 'dummy', 'failed', 100, 'THB', 'bulk-' || id, created_at FROM receipts`);
  await db.pool.query('ANALYZE receipts');
  await db.pool.query('ANALYZE payments');
}, 60_000);
afterAll(() => db?.drop());

async function planOf(sql: string): Promise<string> {
  const plan = await db.pool.query(`EXPLAIN ${sql}`);
  return plan.rows.map((row) => row['QUERY PLAN']).join('\n');
}

describe('/admin/receipts', () => {
  const page = 'SELECT * FROM receipts';
  const order = 'ORDER BY created_at DESC, id DESC LIMIT 25 OFFSET 25';

  it('reads a page of every receipt, and of a creation window, from an index in the list order', async () => {
    for (const where of ['', "WHERE created_at >= '2026-02-01' AND created_at < '2026-02-10'"]) {
      const plan = await planOf(`${page} ${where} ${order}`);
      expect(plan).toMatch(/Index Scan using receipts_created_at_id_idx on receipts/);
      expect(plan).not.toMatch(/Seq Scan|Sort/);
    }
  });

  // listReceipts' pages after and before a receipt (its Older and Newer links): the bound on created_at
  // alone is where the index scan starts, so a page deep in the list reads its own rows, not every row
  // before it as OFFSET did; the pair decides among receipts of the same millisecond.
  const at = "TIMESTAMPTZ '2026-03-01 10:00'";
  const older = `created_at <= ${at} AND (created_at < ${at} OR (created_at = ${at} AND id < 9000))`;
  const newer = `created_at >= ${at} AND (created_at > ${at} OR (created_at = ${at} AND id > 9000))`;
  it.each([
    ['every receipt, older', `WHERE ${older} ORDER BY created_at DESC, id DESC`, /receipts_created_at_id_idx/],
    ['every receipt, newer', `WHERE ${newer} ORDER BY created_at ASC, id ASC`, /receipts_created_at_id_idx/],
    [
      "a user's, older",
      `WHERE username = 'user7' AND ${older} ORDER BY created_at DESC, id DESC`,
      /receipts_username_created_at_idx/,
    ],
    [
      'a status, older',
      `WHERE status = 'paid' AND ${older} ORDER BY created_at DESC, id DESC`,
      /receipts_(status_created_at|created_at_id)_idx/,
    ],
  ])('reads the page of %s than a receipt from the index, starting at its place', async (_, rest, index) => {
    const plan = await planOf(`${page} ${rest} LIMIT 26`);
    expect(plan).toMatch(new RegExp(`Index Scan( Backward)? using ${index.source} on receipts`));
    expect(plan).toMatch(/Index Cond: .*created_at (<=|>=)/);
    // A user's or a status's index has no id: an Incremental Sort orders the receipts of one
    // millisecond by id as the index hands them over, never the whole list.
    expect(plan).not.toMatch(/Seq Scan|(^|->)\s*Sort\s+\(/m);
  });
});

describe('/admin/payments', () => {
  // listPaymentsPageForAdmin's statements: the newest page, and the pages older and newer than a payment.
  const page = 'SELECT p.*, r.username FROM payments p JOIN receipts r ON r.id = p.receipt_id';
  const key = '(SELECT k.created_at, k.id FROM payments k WHERE k.id = 10000)';

  it('reads the newest page, and those older and newer than a payment, from an index in the list order', async () => {
    for (const statement of [
      `${page} ORDER BY p.created_at DESC, p.id DESC LIMIT 201`,
      `${page} WHERE (p.created_at, p.id) < ${key} ORDER BY p.created_at DESC, p.id DESC LIMIT 201`,
      `${page} WHERE (p.created_at, p.id) > ${key} ORDER BY p.created_at ASC, p.id ASC LIMIT 201`,
    ]) {
      const plan = await planOf(statement);
      expect(plan).toMatch(/Index Scan( Backward)? using payments_created_at_id_idx on payments p/);
      expect(plan).not.toMatch(/Seq Scan|Sort/);
    }
  });
});
