/**
 * Finance could not export the billing list to chase pending receipts: paid.csv holds paid receipts by
 * payment date only. /admin/receipts.csv is the receipts of the list as filtered (status, user, created
 * window, run), every page of it, newest first, streamed as the other exports are, its text formula-escaped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;
const ids: Record<string, number> = {};

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const rows: [string, string, 'pending' | 'paid' | 'void', string][] = [
    ['alice1', 'alice', 'pending', '2026-03-01T10:00:00Z'],
    ['alicia', 'alicia', 'paid', '2026-03-02T10:00:00Z'],
    ['alice2', 'alice', 'pending', '2026-03-03T10:00:00Z'],
    ['bob', 'bob', 'pending', '2026-03-04T10:00:00Z'],
    ['formula', '=HYPERLINK("x")', 'pending', '2026-03-05T10:00:00Z'],
  ];
  for (const [key, username, status, at] of rows) {
    const receipt = await buildReceiptRow(db, username, {
      status,
      createdAt: new Date(at),
      total: '12.5',
      ...(status === 'paid' ? { paidAt: new Date(at), paymentMethod: 'bank_transfer' } : {}),
    });
    ids[key] = receipt.id;
  }
  // More than a page of the list (25), so that the file is seen to hold every page.
  for (let i = 0; i < 30; i++) {
    await buildReceiptRow(db, 'carol', { status: 'void', createdAt: new Date(Date.UTC(2026, 1, 1, i)) });
  }
  admin = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } }), 'boss', 'boss-password');
});
afterAll(() => db?.drop());

const linesOf = (text: string) => text.trimEnd().split('\n');

describe('/admin/receipts.csv', () => {
  it('lists the receipts the filters match, newest first, as a download', async () => {
    const csv = await admin.get('/admin/receipts.csv?status=pending&user=ali').expect(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/attachment; filename="receipts-.*\.csv"/);
    const [header, ...rows] = linesOf(csv.text);
    expect(header).toBe(
      'receipt_id,user,status,total,currency,tier,billed_through,created_at,paid_at,payment_method,month_end_run_id',
    );
    expect(rows.map((row) => row.split(',')[0])).toEqual([String(ids.alice2), String(ids.alice1)]);
    expect(rows[0]).toMatch(
      new RegExp(`^${ids.alice2},alice,pending,12.50,THB,mu,2026-01-31,2026-03-03T10:00:00.000Z,,,$`),
    );
  });

  it('holds every page of the list, not the page shown', async () => {
    const csv = await admin.get('/admin/receipts.csv?status=void&page=2').expect(200);
    expect(linesOf(csv.text)).toHaveLength(1 + 30);
  });

  it('writes a name that starts a formula as text', async () => {
    const csv = await admin.get('/admin/receipts.csv?user=hyperlink').expect(200);
    expect(linesOf(csv.text)[1]).toContain(`${ids.formula},"'=HYPERLINK(""x"")",pending`);
  });

  it('refuses filters the page refuses, with nothing exported', async () => {
    const refused = await admin
      .get('/admin/receipts.csv?start=2026-03-05&end=2026-03-01')
      .set('Accept', 'application/json')
      .expect(400);
    expect(refused.body.error).toMatch(/after|before/);
    expect(refused.headers['content-type']).toMatch(/json/);
  });

  it('is linked from the billing page at its filters', async () => {
    const page = await admin.get('/admin/receipts?status=pending&user=ali').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('href="/admin/receipts.csv?status=pending&amp;user=ali"');
  });
});
