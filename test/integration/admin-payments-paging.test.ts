import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Its own database: the payments made here would change the lists and counts other files check.
let db: TestDatabase;
let admin: Agent;
let receiptId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  await buildUser(db.prisma, { username: 'pageadmin', role: 'admin', password: 'pageadmin-password' });
  const researcher = await buildUser(db.prisma, { username: 'payer' });
  const receipt = await buildReceiptRow(db, researcher.username);
  receiptId = receipt.id;
  admin = await signInAs(app, 'pageadmin', 'pageadmin-password');
});
afterAll(() => db?.drop());

/**
 * `count` payments, `perMinute` of them sharing each creation time (so the order must break
 * ties by id), every 7th held for review; in one statement.
 */
async function buildPayments(count: number, perMinute: number) {
  await db.pool.query(
    `INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, external_payment_id,
                           idempotency_key, review_reason, created_at, updated_at)
     SELECT $1, 'dummy', (CASE WHEN n % 7 = 0 THEN 'needs_review' ELSE 'failed' END)::"PaymentStatus", 50, 'THB',
            'page-' || n, 'page-' || n,
            CASE WHEN n % 7 = 0 THEN 'paid 1.00 THB but 0.50 THB was due' END,
            timestamptz '2026-02-01 00:00Z' + (n / $3) * interval '1 minute', now()
       FROM generate_series(1, $2::int) AS n`,
    [receiptId, count, perMinute],
  );
}

const page = (path: string) => admin.get(path).set('Accept', 'text/html');

/** The payment ids of the "All payments" table, in the order shown. */
function listedIds(html: string): number[] {
  const table = html.slice(html.indexOf('<h2>All payments</h2>'), html.indexOf('<h2>Webhook deliveries</h2>'));
  return [...table.matchAll(/<td data-label="Payment">(\d+)<\/td>/g)].map((match) => Number(match[1]));
}

function linkOf(html: string, rel: 'prev' | 'next'): string | undefined {
  const match = new RegExp(`<a href="([^"]+)" rel="${rel}">`).exec(html);
  return match?.[1]?.replaceAll('&amp;', '&');
}

describe('/admin/payments pages through every payment', () => {
  it('lists 200 a page, newest first, with Older and Newer links that reach every payment once', async () => {
    await buildPayments(450, 3);
    const all = await db.prisma.payment.findMany({
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      select: { id: true },
    });
    const expected = all.map((payment) => payment.id);
    expect(expected).toHaveLength(450);

    const first = await page('/admin/payments').expect(200);
    expect(listedIds(first.text)).toEqual(expected.slice(0, 200));
    expect(linkOf(first.text, 'prev')).toBeUndefined();
    const olderLink = linkOf(first.text, 'next');
    expect(olderLink).toBe(`/admin/payments?older=${expected[199]}`);
    expect(first.text).toContain('Older payments →');

    const second = await page(olderLink as string).expect(200);
    expect(listedIds(second.text)).toEqual(expected.slice(200, 400));
    const third = await page(linkOf(second.text, 'next') as string).expect(200);
    expect(listedIds(third.text)).toEqual(expected.slice(400));
    expect(linkOf(third.text, 'next')).toBeUndefined();

    // Back the other way: each Newer page is the one before it.
    const newerLink = linkOf(third.text, 'prev');
    expect(newerLink).toBe(`/admin/payments?newer=${expected[400]}`);
    expect(third.text).toContain('← Newer payments');
    const backToSecond = await page(newerLink as string).expect(200);
    expect(listedIds(backToSecond.text)).toEqual(expected.slice(200, 400));
    const backToFirst = await page(linkOf(backToSecond.text, 'prev') as string).expect(200);
    expect(listedIds(backToFirst.text)).toEqual(expected.slice(0, 200));
    expect(linkOf(backToFirst.text, 'prev')).toBeUndefined();

    // The held payments stay above the list on every page: all 64 of them, whichever page.
    for (const shown of [first, second, third]) {
      expect(shown.text).toContain('64 payments need review');
      expect(shown.text.match(/action="\/admin\/payments\/\d+\/resolve"/g)).toHaveLength(64);
    }
  });

  it('a page older than the oldest payment says so and links back to the newest, not a dead end', async () => {
    if ((await db.prisma.payment.count()) === 0) await buildPayments(3, 1);
    const oldest = await db.prisma.payment.findFirstOrThrow({
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      select: { id: true },
    });
    const empty = await page(`/admin/payments?older=${oldest.id}`).expect(200);
    expect(listedIds(empty.text)).toEqual([]);
    expect(empty.text).toContain('No older payments.');
    expect(linkOf(empty.text, 'next')).toBeUndefined();
    expect(linkOf(empty.text, 'prev')).toBe('/admin/payments');
  });

  // A page names the cursor as the audit log names its own ("Older than entry"), a script by its key.
  it.each([
    ['/admin/payments?older=abc', 400, 'Older than payment: must be a whole number', 'older: must be a whole number'],
    [
      '/admin/payments?newer=007',
      400,
      'Newer than payment: must be written without leading zeros',
      'newer: must be written without leading zeros',
    ],
    ['/admin/payments?older=1&newer=2', 400, 'Give older or newer, not both.', 'Give older or newer, not both.'],
    [
      '/admin/payments?older=2000000',
      404,
      'There is no payment #2000000 to page from.',
      'There is no payment #2000000 to page from.',
    ],
  ])('refuses %s with %i and says why, changing nothing', async (path, status, message, jsonMessage) => {
    const before = await db.prisma.payment.count();
    const refused = await page(path).expect(status);
    expect(refused.text).toContain(message);
    const json = await admin.get(path).set('Accept', 'application/json').expect(status);
    expect(json.body).toEqual({ error: jsonMessage, code: status });
    expect(await db.prisma.payment.count()).toBe(before);
  });
});
