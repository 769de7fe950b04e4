import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPayingResearchers,
  deliverDummy,
  dummyRefundEvent,
  setUpDummyPaymentsApp,
} from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import type { Agent } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// After a dispute lost in part (the bank took 4.00 THB of 10.00 THB back), the provider's refund of the
// other 6.00 THB resolves the payment as refunded by the provider. Its resolution note, on
// /admin/payments ("Resolution: refunded by provider:dummy, …") and in the JSON, said "dummy reported the
// whole 10.00 THB refunded", beside a reason that says 6.00 THB was refunded and 4.00 THB taken back by
// the bank: finance matching the provider's refunds looked for 10.00 THB the provider never refunded.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('lostnote'));
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'lostnotepayer');

describe('a refund of the rest after a dispute lost in part', () => {
  it('the resolution note names what the provider refunded and what the bank took', async () => {
    const { receiptId, payment } = await paidOnline();
    const ext = payment.externalPaymentId;
    const dispute = {
      external_payment_id: ext,
      amount_cents: 400,
      currency: 'THB',
      dispute_id: `dp_note_${payment.id}`,
    };
    await deliverDummy(app, {
      ...dispute,
      event_id: `note_dispute_${payment.id}`,
      event_type: 'payment.disputed',
    }).expect(200);
    await deliverDummy(app, {
      ...dispute,
      event_id: `note_lost_${payment.id}`,
      event_type: 'payment.dispute_closed',
      dispute_status: 'lost',
    }).expect(200);
    const refund = await deliverDummy(app, dummyRefundEvent(ext, `note_refund_${payment.id}`, 600)).expect(200);
    expect(refund.body).toEqual({ received: true, outcome: 'ok' });

    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved).toMatchObject({ status: 'resolved', reviewOutcome: 'refunded', reviewedBy: 'provider:dummy' });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
    const note =
      'dummy reported 6.00 THB refunded, the rest of the 10.00 THB received after the 4.00 THB taken back by the ' +
      `lost dispute (event note_refund_${payment.id})`;
    expect(resolved.reviewNote).toBe(note);
    const page = visibleTextOf((await admin.get('/admin/payments').set('Accept', 'text/html').expect(200)).text);
    expect(page).toContain(note);
    expect(page).not.toContain('dummy reported the whole 10.00 THB refunded');
  });

  it('a refund in full with no dispute keeps its note', async () => {
    const { payment } = await paidOnline();
    await deliverDummy(app, dummyRefundEvent(payment.externalPaymentId, `note_full_${payment.id}`, 1000)).expect(200);
    const resolved = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
    expect(resolved.reviewNote).toBe(`dummy reported the whole 10.00 THB refunded (event note_full_${payment.id})`);
  });
});
