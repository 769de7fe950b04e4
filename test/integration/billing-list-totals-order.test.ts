import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// /admin/receipts' JSON `totals` came from a GROUP BY with no ORDER BY: the same receipts came back
// as [paid USD, pending THB, …] on one call and in another order on the next, so a finance script
// comparing two reads saw a change where there was none. They are in the cards' order: status as the
// page shows its cards (pending, paid, void), then currency in alphabetical order.
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  admin = await signInAs(buildTestApp(db), 'boss', 'boss-password');
});
afterAll(() => db?.drop());

describe("/admin/receipts' totals", () => {
  it('are listed by status in the order of the cards, then by currency, whatever order the receipts were made in', async () => {
    // Made in an order unlike the one expected: void before paid before pending, currencies backwards.
    const made: [status: 'pending' | 'paid' | 'void', currency: string, total: string][] = [
      ['void', 'USD', '1.00'],
      ['paid', 'USD', '2.00'],
      ['void', 'EUR', '3.00'],
      ['pending', 'USD', '4.00'],
      ['paid', 'THB', '5.00'],
      ['pending', 'THB', '6.00'],
      ['void', 'THB', '7.00'],
      ['paid', 'EUR', '8.00'],
      ['pending', 'EUR', '9.00'],
      ['pending', 'THB', '10.00'],
    ];
    for (const [status, currency, total] of made) {
      await buildReceiptRow(db, 'alice', { status, currency, total });
    }

    const expected = [
      { status: 'pending', currency: 'EUR', total: '9.00', count: 1 },
      { status: 'pending', currency: 'THB', total: '16.00', count: 2 },
      { status: 'pending', currency: 'USD', total: '4.00', count: 1 },
      { status: 'paid', currency: 'EUR', total: '8.00', count: 1 },
      { status: 'paid', currency: 'THB', total: '5.00', count: 1 },
      { status: 'paid', currency: 'USD', total: '2.00', count: 1 },
      { status: 'void', currency: 'EUR', total: '3.00', count: 1 },
      { status: 'void', currency: 'THB', total: '7.00', count: 1 },
      { status: 'void', currency: 'USD', total: '1.00', count: 1 },
    ];
    for (let read = 0; read < 3; read += 1) {
      const list = await admin.get('/admin/receipts').set('Accept', 'application/json').expect(200);
      expect(list.body.totals).toEqual(expected);
    }
  });
});
