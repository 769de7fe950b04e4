import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A dummy `payment.disputed` carrying `dispute_status: lost` (an outcome sent under the dispute's own event
// type) was answered 200 `ignored` when its dispute was recorded (the same dispute told again), or recorded as
// a dispute still open when it was not: the loss was dropped, and nothing told whoever sent it that a dispute's
// outcome is `payment.dispute_closed`. It is a body of another event, refused 400 as a body missing its fields
// is (docs/payments.md, Webhooks): nothing is stored, so the event sent again as it should be is applied.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  ({ db, app } = await setUpDummyPayments({ logger: pino({ level: 'debug' }, sink) }));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'outcome');

function disputed(externalPaymentId: string | null, eventId: string, fields: Record<string, unknown> = {}) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
    dispute_id: 'dp_1',
    ...fields,
  };
}

const WHY =
  'Webhook rejected: body gives dispute_status "lost", the outcome of a dispute, which a payment.disputed ' +
  'event does not carry: send it as a payment.dispute_closed event with the same dispute_id (dp_1); nothing was stored.';

async function expectRefusedUnstored(eventId: string, answer: { status: number; body: { error?: string } }) {
  expect(answer.status).toBe(400);
  expect(answer.body.error).toBe(WHY);
  expect(await db.prisma.paymentEvent.count({ where: { externalEventId: eventId } })).toBe(0);
  expect(lines).toContainEqual(
    expect.objectContaining({ msg: 'webhook refused: a dispute outcome sent as payment.disputed', reason: WHY }),
  );
}

describe('a payment.disputed event carrying dispute_status', () => {
  it('after its dispute was recorded: refused (400) saying payment.dispute_closed is expected, nothing stored', async () => {
    const { receiptId, payment } = await paidOnline();
    await deliverDummy(app, disputed(payment.externalPaymentId, 'dp-open')).expect(200);
    const before = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(before.externalDisputeId).toBe('dp_1');
    const answer = await deliverDummy(app, disputed(payment.externalPaymentId, 'dp-lost', { dispute_status: 'lost' }));
    await expectRefusedUnstored('dp-lost', answer);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toEqual(before);
    // Sent again as the answer says, under the same event id: applied (nothing of the refused one was stored).
    const closed = await deliverDummy(app, {
      ...disputed(payment.externalPaymentId, 'dp-lost'),
      event_type: 'payment.dispute_closed',
      dispute_status: 'lost',
    });
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body.outcome).toBe('ok');
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      disputeStatus: 'lost',
    });
    expect(await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).toMatchObject({
      status: 'pending',
    });
  });

  it('before any dispute was recorded: refused too, not recorded as a dispute still open', async () => {
    const { payment } = await paidOnline();
    const answer = await deliverDummy(app, disputed(payment.externalPaymentId, 'dp-first', { dispute_status: 'lost' }));
    await expectRefusedUnstored('dp-first', answer);
    expect(await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).toMatchObject({
      status: 'succeeded',
      externalDisputeId: null,
    });
  });
});
