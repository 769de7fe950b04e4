import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A receipt paid online and voided has its payment held; the billing team refunds it and resolves it
// as refunded on /admin/payments. The receipt's page and JSON said "refunded in full by the billing
// team", but paid.csv's amount_refunded stayed empty on its line until the provider's webhook confirmed
// the refund (never, for money returned outside the provider): the file read that money as still held.
let db: TestDatabase;
const clock = new Date('2025-09-05T03:00:00Z');
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['alice', 'bob']) await buildUser(db.prisma, { username, password: `${username}-password` });
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok', ...DUMMY_PAYMENTS_ENV }, now: () => clock });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything, payOnline, paidCsv } = createPaidCsvStory(() => db);
const september = 'start=2025-09-01&end=2025-09-30';

async function voidAsJson(admin: Agent, receiptId: number) {
  const voided = await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason: 'billed at the wrong tier' });
  expect(voided.status, voided.text).toBe(200);
}

async function resolveRefunded(admin: Agent, paymentId: number) {
  const resolved = await admin
    .post(`/admin/payments/${paymentId}/resolve`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ outcome: 'refunded', note: 'refunded by bank transfer to the payer' });
  expect(resolved.status, resolved.text).toBe(200);
}

async function lineOf(admin: Agent, receiptId: number) {
  const { rows } = await paidCsv(admin, september);
  const lines = rows.filter((row) => row.receipt_id === String(receiptId));
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('paid.csv of a payment the billing team refunded', () => {
  it('counts all it received as refunded once the team resolves it as refunded, and once when the provider confirms it', async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-01T03:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' }]);
    const alice = await signIn('alice');
    const receiptId = await billEverything(alice);
    const payment = await payOnline(alice, receiptId);
    const admin = await signIn('finance');
    await voidAsJson(admin, receiptId);
    // Held, its money still with the centre: nothing refunded.
    expect(await lineOf(admin, receiptId)).toMatchObject({ amount_received: '1.00', amount_refunded: '' });

    await resolveRefunded(admin, payment.id);
    expect(await lineOf(admin, receiptId)).toMatchObject({
      amount_received: '1.00',
      received_currency: 'THB',
      amount_refunded: '1.00',
      amount_disputed_lost: '',
    });
    // As the receipt's JSON says it.
    const own = (await alice.get(`/me/receipts/${receiptId}`).set('Accept', 'application/json').expect(200)).body;
    expect(own.receipt.refunds).toMatchObject([{ paymentId: payment.id, amount: '1.00', isByBillingTeam: true }]);

    // The provider's report of the same refund adds nothing.
    const confirmed = await deliverDummy(app, {
      event_id: `team_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(await lineOf(admin, receiptId)).toMatchObject({ amount_received: '1.00', amount_refunded: '1.00' });
  });

  it('counts the provider’s part and the team’s rest together, once', async () => {
    await buildJobs(db, [{ user: 'bob', end: '2025-09-01T03:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' }]);
    const bob = await signIn('bob');
    const receiptId = await billEverything(bob);
    const payment = await payOnline(bob, receiptId);
    const admin = await signIn('finance');
    const part = await deliverDummy(app, {
      event_id: `part_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 30,
      currency: 'THB',
    });
    expect(part.status, part.text).toBe(200);
    await voidAsJson(admin, receiptId);
    expect(await lineOf(admin, receiptId)).toMatchObject({ amount_refunded: '0.30' });

    await resolveRefunded(admin, payment.id);
    expect(await lineOf(admin, receiptId)).toMatchObject({ amount_received: '1.00', amount_refunded: '1.00' });
  });
});
