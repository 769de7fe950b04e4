import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, deliverDummy, setUpDummyPayments } from '../support/dummy-payments.js';
import { type Agent, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// A payment records one dispute (its external_dispute_id, amount, when, outcome). A second dispute
// under another id overwrote the first's id, amount and time but kept its outcome: after a lost
// dispute of 4.00 THB, a new one of 2.00 THB made the row say that dispute of 2.00 had been lost,
// so paid.csv read 2.00 THB refunded (nothing was), 2.00 THB lost (4.00 was) and no open dispute,
// and /admin/payments said 2.00 THB taken back by the bank. Over an open dispute it replaced the
// amount being claimed. It is now refused (409, nothing changed) and listed for finance under
// "Refused refunds and disputes", as a claim that does not fit its payment is.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
  admin = await signInNewAdmin(app, db, 'chief');
});
afterAll(() => db?.drop());

const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'twice');

function disputed(externalPaymentId: string | null, eventId: string, disputeId: string, amountCents: number) {
  return {
    event_id: eventId,
    event_type: 'payment.disputed',
    external_payment_id: externalPaymentId,
    amount_cents: amountCents,
    currency: 'THB',
    dispute_id: disputeId,
    dispute_reason: 'fraudulent',
  };
}

async function paymentRow(id: number) {
  return db.prisma.payment.findUniqueOrThrow({ where: { id } });
}

async function paidCsvLineOf(receiptId: number) {
  const csv = (await admin.get('/admin/paid.csv?start=2020-01-01').expect(200)).text;
  const [header, ...lines] = csv.trim().split('\n');
  const columns = (header ?? '').split(',');
  const line = lines.find((row) => row.startsWith(`${receiptId},`)) ?? '';
  return Object.fromEntries(line.split(',').map((value, index) => [columns[index], value]));
}

describe('a second dispute of a payment, under another dispute id', () => {
  it('after a lost dispute, is refused and listed, and the lost amount stays what the bank took', async () => {
    const { payment, receiptId } = await paidOnline();
    const external = payment.externalPaymentId;
    await deliverDummy(app, disputed(external, 'sd_1', 'dp_first', 400)).expect(200);
    await deliverDummy(app, {
      ...disputed(external, 'sd_1_closed', 'dp_first', 400),
      event_type: 'payment.dispute_closed',
      dispute_status: 'lost',
    }).expect(200);
    const before = await paymentRow(payment.id);
    const auditsBefore = await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } });

    const refused = await deliverDummy(app, disputed(external, 'sd_2', 'dp_second', 200)).expect(409);
    expect(refused.body.error).toBe(
      `Webhook rejected: payment #${payment.id} already has dispute dp_first (lost), and a payment records one ` +
        'dispute here, so dispute dp_second (2.00 THB) was not recorded: check it at dummy; nothing was changed.',
    );
    expect(await paymentRow(payment.id)).toEqual(before);
    // The refusal's own audit entry (payment.claim_refused) is the only one added.
    expect(await db.prisma.auditLog.count({ where: { target: `receipt:${receiptId}` } })).toBe(auditsBefore + 1);
    expect(await db.prisma.paymentEvent.count({ where: { externalEventId: 'sd_2' } })).toBe(0);
    const claims = await db.prisma.paymentRefusedClaim.findMany({ where: { paymentId: payment.id } });
    expect(claims.map((claim) => [claim.externalEventId, claim.claimedMinor])).toEqual([['sd_2', 200n]]);

    const line = await paidCsvLineOf(receiptId);
    expect(line).toMatchObject({
      amount_refunded: '',
      amount_disputed: '',
      amount_disputed_lost: '4.00',
    });
  });

  it('while the first is open, is refused and the open dispute keeps its amount', async () => {
    const { payment, receiptId } = await paidOnline();
    const external = payment.externalPaymentId;
    await deliverDummy(app, disputed(external, 'so_1', 'dp_open', 400)).expect(200);
    const before = await paymentRow(payment.id);

    const refused = await deliverDummy(app, disputed(external, 'so_2', 'dp_other', 300)).expect(409);
    expect(refused.body.error).toMatch(
      new RegExp(`^Webhook rejected: payment #${payment.id} already has dispute dp_open \\(open\\), `),
    );
    expect(await paymentRow(payment.id)).toEqual(before);
    expect((await paidCsvLineOf(receiptId)).amount_disputed).toBe('4.00');
  });

  it('under the same dispute id is still a repeat that changes nothing (200 ignored)', async () => {
    const { payment } = await paidOnline();
    await deliverDummy(app, disputed(payment.externalPaymentId, 'sr_1', 'dp_same', 400)).expect(200);
    const before = await paymentRow(payment.id);
    const again = await deliverDummy(app, disputed(payment.externalPaymentId, 'sr_2', 'dp_same', 400)).expect(200);
    expect(again.body.outcome).toBe('ignored');
    expect(await paymentRow(payment.id)).toEqual(before);
  });
});
