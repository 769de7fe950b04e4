import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signInThroughPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { createPayingResearchers, deliverDummy } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { voidAndBillAgain } from '../support/receipt-steps.js';
import { signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The billing list says under a receipt's status which payment is held for review. On one line it
 * pushed the Paid column, and its "received, net of refunds and lost disputes", past a 1280 px screen's edge.
 */
describe.skipIf(!hasChromium)('the held-payment note on the billing list', { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig());
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  const { paidOnline, paidShortAndAccepted } = createPayingResearchers(() => ({ db, app }), 'heldlistnote');

  it('stays within a 1280 px screen beside a receipt paid short', async () => {
    const boss = await buildUser(db.prisma, { username: 'listboss', role: 'admin' });
    const admin = await signInAs(app, boss.username, boss.password);
    const short = await paidShortAndAccepted(admin, 700);
    await deliverDummy(app, {
      event_id: `heldlistnote_dispute_${short.payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: short.payment.externalPaymentId,
      amount_cents: 700,
      currency: 'THB',
    }).expect(200);
    const voided = await paidOnline();
    await voidAndBillAgain(admin, voided.agent, voided.receiptId);

    const context = await rig.browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      await signInThroughPage(page, rig.base, boss.username, boss.password);
      await page.goto(`${rig.base}/admin/receipts`);
      expect(await page.locator('main td[data-label="Status"]', { hasText: 'held for review' }).count()).toBe(3);
      const [scrollWidth, clientWidth] = (await page.evaluate(
        '[document.querySelector(".table-wrap").scrollWidth, document.querySelector(".table-wrap").clientWidth]',
      )) as [number, number];
      expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
    } finally {
      await context.close();
    }
  });
});
