/**
 * At a centre of 3,000 users, `/admin/receipts?user=bench1` (part of 1,100 names) took 0.46-1.5 s: the
 * names matched were spelled out as 1,100 parameters of `username IN (...)` in each of the page's
 * queries (the list, its count, the status totals, what the paid receipts received), each planned anew.
 * Part of a name is now one pattern in each query; the names are still read once, for the page to name
 * them, and the "part of a name" rule is unchanged (test/integration/admin-receipts-user-filter.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { statementsDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
const MATCHED = 150;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  // Rows written straight in: this reads the statements sent, not billing. 150 names containing "lab1"
  // (lab1, lab10-lab19, lab100-lab199 less those past 150), two receipts each, and others that do not.
  await db.pool.query(`INSERT INTO receipts (username, billed_through, status, total, currency, tier_name,
      rates_snapshot, rates_locked_at, created_by, created_at)
    SELECT name, DATE '2026-01-31', (ARRAY['pending', 'paid', 'void'])[1 + (i + g) % 3]::"ReceiptStatus",
      (i % 97)::numeric, 'THB', 'mu', '{}', now(), 'bulk', TIMESTAMPTZ '2026-01-01' + (i * 2 + g) * INTERVAL '1 hour'
    FROM (SELECT i, CASE WHEN i <= ${MATCHED} THEN 'xlab1' || i ELSE 'other' || i END AS name
            FROM generate_series(1, 200) AS i) AS names
    CROSS JOIN generate_series(1, 2) AS g`);
  await db.pool.query(`INSERT INTO receipts (username, billed_through, status, total, currency, tier_name,
      rates_snapshot, rates_locked_at, created_by)
    SELECT name, DATE '2026-01-31', 'pending', 1, 'THB', 'mu', '{}', now(), 'bulk'
      FROM unnest(ARRAY['ab_c', 'abxc', 'ab%c']) AS name`);
  await db.pool.query('ANALYZE receipts');
  admin = await signInAs(buildTestApp(db), 'boss', 'boss-password');
}, 60_000);
afterAll(() => db?.drop());

describe('/admin/receipts?user= with part of many names', () => {
  it('sends the part of a name as one pattern, not the names matched as a list of values', async () => {
    let body: { count: number; matchedUsers: string[]; totals: { count: number }[] } | undefined;
    const sent = await statementsDuring(db.pool, async () => {
      const page = await admin.get('/admin/receipts?user=LAB1').set('Accept', 'application/json').expect(200);
      body = page.body;
    });
    // Every receipt of the 150 names, and every name for the page and its JSON to list.
    expect(body?.count).toBe(MATCHED * 2);
    expect(body?.matchedUsers).toHaveLength(MATCHED);
    expect(body?.totals.reduce((sum, total) => sum + total.count, 0)).toBe(MATCHED * 2);
    // Prisma's statements and the list's own (listReceipts: one prepared statement over the pool).
    const receiptQueries = sent.filter((statement) => /FROM ("public"\."receipts"|receipts r\b)/.test(statement.text));
    expect(receiptQueries.length).toBeGreaterThan(3);
    const widest = Math.max(...sent.map((statement) => statement.parameterCount));
    expect(widest, 'the most parameters one statement carried').toBeLessThan(30);
  });

  it('reads a _ or % in the part of a name as itself, as the names are read', async () => {
    for (const [typed, names] of [
      ['b_', ['ab_c']],
      ['b%', ['ab%c']],
    ] as const) {
      const page = await admin
        .get(`/admin/receipts?user=${encodeURIComponent(typed)}`)
        .set('Accept', 'application/json');
      expect(page.status).toBe(200);
      expect(page.body.matchedUsers).toEqual(names);
      expect(page.body.receipts.map((receipt: { username: string }) => receipt.username)).toEqual(names);
      expect(page.body.count).toBe(1);
    }
  });
});
