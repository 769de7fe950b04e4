import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  }),
);

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments({ logger }));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
  () => ({ db, app }),
  'reviewlog',
);

const warningsFor = (eventId: string) =>
  lines.filter((line) => line.level === 40 && line.msg === 'payment needs review' && line.eventId === eventId);

// The warning an operator reads when a webhook holds a payment named only the provider's event id:
// which payment waits on /admin/payments had to be looked up in the database.
describe('the warning logged when a webhook holds a payment for review', () => {
  it('names the payment beside the event, for a short payment', async () => {
    const { agent, receiptId } = await researcherWithReceipt();
    await startCheckout(agent, receiptId);
    const payment = await latestPaymentOf(receiptId);
    await deliverDummy(app, {
      event_id: `short_log_${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200, { received: true, outcome: 'mismatch' });
    expect(warningsFor(`short_log_${payment.id}`)).toEqual([
      expect.objectContaining({
        provider: 'dummy',
        outcome: 'mismatch',
        paymentId: payment.id,
        eventType: 'payment.succeeded',
      }),
    ]);
  });

  it('names it for a partial refund too', async () => {
    const { payment } = await paidOnline();
    await deliverDummy(app, {
      event_id: `refund_log_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200, { received: true, outcome: 'review' });
    expect(warningsFor(`refund_log_${payment.id}`)).toEqual([
      expect.objectContaining({ outcome: 'review', paymentId: payment.id, eventType: 'payment.refunded' }),
    ]);
  });
});
