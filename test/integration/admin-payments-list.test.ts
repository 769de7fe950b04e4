import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Its own database: hundreds of held payments would change the review counts other files check.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** `count` payments of one receipt, held for review (or succeeded), made in one statement. */
async function buildPayments(receiptId: number, count: number, status: 'needs_review' | 'succeeded', tag: string) {
  await db.pool.query(
    `INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, external_payment_id,
                           idempotency_key, review_reason, created_at, updated_at)
     SELECT $1, 'dummy', $2::"PaymentStatus", 5000, 'THB', $3 || n, $3 || n,
            CASE WHEN $2 = 'needs_review' THEN 'paid 50.00 THB but 0.50 THB was due' END,
            now() - n * interval '1 minute', now() - n * interval '1 minute'
       FROM generate_series(1, $4::int) AS n`,
    [receiptId, status, tag, count],
  );
}

describe('/admin/payments with more payments than it lists', () => {
  it('says how many held payments it shows and that the list is the newest', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    await buildUser(db.prisma, { username: 'listadmin', role: 'admin', password: 'listadmin-password' });
    const researcher = await buildUser(db.prisma, { username: 'manypayments' });
    const receipt = await buildReceiptRow(db, researcher.username);
    const admin = await signInAs(app, 'listadmin', 'listadmin-password');

    await buildPayments(receipt.id, 150, 'succeeded', 'ok-');
    await buildPayments(receipt.id, 30, 'needs_review', 'held-');
    const some = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(some.text).toContain('30 payments need review');
    // What a reader sees: no space before the ")" after the link.
    expect(visibleTextOf(some.text)).toContain(
      '(refund it there, or mark the receipt paid by hand or void it on the billing page), then resolve the ' +
        'payment below with what was done.',
    );
    expect(some.text.match(/action="\/admin\/payments\/\d+\/resolve"/g)).toHaveLength(30);
    expect(some.text).not.toContain('held payments, the newest');
    expect(some.text).not.toContain('200 a page');
    expect(some.text).not.toContain('Older payments');

    await buildPayments(receipt.id, 190, 'needs_review', 'held-more-');
    const many = await admin.get('/admin/payments').set('Accept', 'text/html').expect(200);
    expect(many.text).toContain('220 payments need review');
    expect(many.text.match(/action="\/admin\/payments\/\d+\/resolve"/g)).toHaveLength(200);
    expect(many.text).toContain('Showing 200 of 220 held payments, the newest');
    expect(many.text).toContain('Newest first, 200 a page.');
    expect(many.text).toContain('Older payments →');
  });
});

describe("/admin/payments' line under a payment that was never held", () => {
  it('says why it failed or was canceled, not "Why review"', async () => {
    const app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
    await buildUser(db.prisma, { username: 'notesadmin', role: 'admin', password: 'notesadmin-password' });
    const researcher = await buildUser(db.prisma, { username: 'notespayer' });
    const receipt = await buildReceiptRow(db, researcher.username);
    const admin = await signInAs(app, 'notesadmin', 'notesadmin-password');
    // The reasons the app writes on payments it gave up on: a checkout the provider could not open,
    // and one a mark paid by hand canceled. Neither waits for anyone, so "Why review" sent finance
    // looking for a review that was never asked of them.
    await db.pool.query(
      `INSERT INTO payments (receipt_id, provider, status, amount_minor, currency, external_payment_id,
                             idempotency_key, review_reason)
       VALUES ($1, 'dummy', 'failed', 5000, 'THB', NULL, 'notes-failed',
               'checkout could not start: the provider refused it'),
              ($1, 'dummy', 'canceled', 5000, 'THB', 'dummy_notes_canceled', 'notes-canceled',
               'receipt #${receipt.id} was marked paid by hand while this checkout was open'),
              ($1, 'dummy', 'needs_review', 5000, 'THB', 'dummy_notes_held', 'notes-held',
               'paid 50.00 THB but 0.50 THB was due')`,
      [receipt.id],
    );
    const page = visibleTextOf((await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text);
    expect(page).toContain('Why it failed: checkout could not start: the provider refused it');
    expect(page).toContain(`Why canceled: receipt #${receipt.id} was marked paid by hand while this checkout was open`);
    expect(page).toContain('Why review: paid 50.00 THB but 0.50 THB was due');
    expect(page).not.toContain('Why review: checkout could not start');
    expect(page).not.toContain('Why review: receipt #');
  });
});
