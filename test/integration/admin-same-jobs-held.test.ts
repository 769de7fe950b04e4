import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDummyPayments } from '../support/dummy-payments.js';
import { researcherWithReceiptOf, startCheckout, voidAndBillAgain } from '../support/receipt-steps.js';
import { csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

describe("the admin's page of a receipt whose jobs' money is held on a voided receipt", () => {
  it('tells the admin before they mark it paid, as the researcher is told before paying', async () => {
    const { agent, receiptId: first } = await researcherWithReceiptOf(app, db, 'rebilled', 1);
    await agent
      .post(await startCheckout(agent, first))
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: first } });

    const admin = await signInNewAdmin(app, db, 'biller');
    const second = await voidAndBillAgain(admin, agent, first);

    const page = await admin.get(`/admin/receipts/${second}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      `Payment #${payment.id} of 0.50 THB for receipt #${first}, which billed some of these jobs, is held for review.`,
    );
    // The owner's page of the same receipt still says it its own way.
    const own = await agent.get(`/me/receipts/${second}`).set('Accept', 'text/html').expect(200);
    expect(own.text).toContain(`for receipt #${first}, which billed some of these jobs`);
  });
});
