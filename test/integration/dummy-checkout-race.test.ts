import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

// The dummy checkout takes one choice: a second one, sent after the first has committed (a page
// left open in another tab), is 409 and sends nothing. Cancel and Pay pressed in two tabs at the
// same moment both passed that check before either had committed, so the second choice's webhook
// arrived for a payment that had just ended and was held for review ("payment succeeded after it
// was canceled"), as a late success from a real provider is, instead of being refused.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('checkoutraceadmin'));
});
afterAll(() => db?.drop());

const { researcherWithReceipt, startCheckout, latestPaymentOf } = createPayingResearchers(
  () => ({ db, app }),
  'checkoutrace',
);

const ENDED_SENTENCES: Record<string, string> = {
  canceled: 'This payment was canceled, so its checkout takes no other choice; nothing was changed.',
  succeeded: 'This payment has already succeeded, so its checkout takes no other choice; nothing was changed.',
};

describe('Cancel and Pay pressed at the same moment in two tabs of the dummy checkout', () => {
  it.each([
    ['cancel', 'pay', 'canceled'],
    ['pay', 'cancel', 'succeeded'],
  ] as const)(
    '%s first: takes it and refuses %s with 409, as when they come one after the other',
    async (first, second, ended) => {
      const { agent, receiptId } = await researcherWithReceipt();
      const checkoutPath = await startCheckout(agent, receiptId);
      const payment = await latestPaymentOf(receiptId);
      const token = await csrfTokenOf(agent);
      const choose = (choice: string) =>
        agent
          .post(checkoutPath)
          .set('Accept', 'text/html')
          .type('form')
          .send({ choice, csrf_token: token })
          .then((response) => response);

      // The payment's row held: both choices get past the page's own check and wait at the row, in
      // the order they were pressed.
      const blocker = await db.pool.connect();
      let firstAnswer: ReturnType<typeof choose>;
      let secondAnswer: ReturnType<typeof choose>;
      try {
        await blocker.query('BEGIN');
        await blocker.query('SELECT id FROM payments WHERE id = $1 FOR UPDATE', [payment.id]);
        firstAnswer = choose(first);
        expect(await sessionsWaitingForLocks(db.pool, 10_000, 1)).toBe(1);
        secondAnswer = choose(second);
        expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
      } finally {
        await blocker.query('COMMIT');
        blocker.release();
      }
      const taken = await firstAnswer;
      const refused = await secondAnswer;

      expect(taken.status, taken.text.slice(0, 300)).toBe(303);
      expect(refused.status, refused.text.slice(0, 300)).toBe(409);
      // The refused tab gets the checkout page back, saying how the payment ended, with no buttons.
      expect(refused.text).toContain(ENDED_SENTENCES[ended]);
      expect(refused.text).not.toContain('name="choice"');
      const after = await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } });
      expect(after).toMatchObject({ status: ended, reviewReason: null });
      const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } });
      expect(receipt.status).toBe(ended === 'succeeded' ? 'paid' : 'pending');
      // The refused choice sent nothing that stayed: no delivery stored, no audit entry, nothing held.
      expect(await db.prisma.paymentEvent.count({ where: { paymentId: payment.id } })).toBe(1);
      const audits = await db.prisma.auditLog.findMany({ where: { target: `receipt:${receiptId}` } });
      expect(audits.map((entry) => entry.action)).not.toContain('payment.review');

      // What the admin sees: nothing held for review, and the payment as the first choice left it.
      const json = await admin.get('/admin/payments').set('Accept', 'application/json').expect(200);
      expect(json.body.needsReview).toBe(0);
      expect(json.body.heldForReview).toEqual([]);
      expect(json.body.payments.find((row: { id: number }) => row.id === payment.id)).toMatchObject({
        status: ended,
        reviewReason: null,
      });
      // And the payer: the status page of the receipt says how the first choice ended it.
      const thanks = await agent.get(`/payments/thanks?rid=${receiptId}`).set('Accept', 'text/html').expect(200);
      expect(thanks.text).not.toContain('billing team');
    },
  );
});
