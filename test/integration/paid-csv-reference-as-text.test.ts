import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A payment reference as a bank statement writes it is often digits alone: leading zeros, more than
 * the 15 digits a spreadsheet keeps, or a form it reads as an exponent or a date. paid.csv wrote it as
 * it was, and LibreOffice Calc and Excel opened `000123456789012345678` as the number
 * 1.23456789012346E+17 (the zeros and the last digits gone for good, also once saved back), `1e5` as
 * 100000 and `2026-12-01` as a date: finance could no longer match the line to the statement. Such a
 * reference is now written with a `'` in front, as a formula's first character is, so the
 * spreadsheet keeps it as text; a reference a spreadsheet reads as text is written as it was.
 */
const REFERENCES: { typed: string; written: string }[] = [
  { typed: '000123456789012345678', written: "'000123456789012345678" },
  { typed: '1e5', written: "'1e5" },
  { typed: '2026-12-01', written: "'2026-12-01" },
  { typed: '12.50', written: "'12.50" },
  { typed: 'INV-00123', written: 'INV-00123' },
  { typed: '12345_7', written: '12345_7' },
];

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;
// 2025-09-20 12:00 in Bangkok, after every job below ended.
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  // One job a day, so that a receipt for each day bills one job and takes one reference.
  await buildJobs(
    db,
    REFERENCES.map((_, index) => ({
      user: 'alice',
      jobId: String(8001 + index),
      end: new Date(Date.UTC(2025, 8, 10 + index, 1)),
    })),
  );
});
afterAll(() => db?.drop());

/** The cells of paid.csv's line for `receiptId`, read by its header (no cell below holds a comma). */
function paidLineOf(csv: string, receiptId: number): Record<string, string> {
  const [header, ...lines] = csv.trimEnd().split('\n');
  const names = (header ?? '').split(',');
  const line = lines.find((text) => text.startsWith(`${receiptId},`)) ?? '';
  const cells = line.split(',');
  return Object.fromEntries(names.map((name, index) => [name, cells[index] ?? '']));
}

describe('paid.csv and a payment reference a spreadsheet would read as a number or a date', () => {
  it('writes such a reference as text, and the money columns as numbers', async () => {
    const receipts: { id: number; typed: string; written: string; total: string }[] = [];
    for (const [index, reference] of REFERENCES.entries()) {
      const created = await alice
        .post('/me/receipt')
        .set('Accept', 'text/html')
        .type('form')
        .send({ before: `2025-09-${10 + index}`, csrf_token: await csrfTokenOf(alice, '/me') })
        .expect(303);
      const id = Number((created.headers.location as string).replace(/#.*$/, '').split('/').at(-1));
      const total = await amountDueOf(db, id);
      await admin
        .post(`/admin/receipts/${id}/paid`)
        .type('form')
        .send({
          method: 'bank_transfer',
          amount_received: total,
          tx_ref: reference.typed,
          csrf_token: await csrfTokenOf(admin),
        })
        .expect(303);
      receipts.push({ id, ...reference, total });
    }

    const paid = (await admin.get('/admin/paid.csv?start=2025-09-01&end=2025-09-30').expect(200)).text;
    for (const receipt of receipts) {
      const line = paidLineOf(paid, receipt.id);
      expect(line.tx_ref, receipt.typed).toBe(receipt.written);
      // Money stays a bare number: no `'`, whatever the reference beside it.
      expect(line.total, receipt.typed).toBe(receipt.total);
      expect(line.amount_received, receipt.typed).toBe(receipt.total);
    }
  });
});
