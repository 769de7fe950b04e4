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
import type { TestDatabase } from '../support/test-database.js';

/**
 * A receipt's own page printed with the browser (Ctrl+P): the notices that state what happened to
 * its money (a payment held for review, a refund) are on paper, as the printable receipt has them.
 * The held-payment notices were inside the page's no-print actions, so a printout of a receipt whose
 * payment was disputed read as settled.
 */
describe.skipIf(!hasChromium)("a receipt's page printed by the browser", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig({ admin: 'printboss' }));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  const { paidOnline } = createPayingResearchers(() => ({ db, app }), 'printnote');

  it('prints the held-payment and refund notices, on the researcher’s page and the admin’s', async () => {
    const { user, payment, receiptId } = await paidOnline();
    await deliverDummy(app, {
      event_id: `printnote_refund_${payment.id}`,
      event_type: 'payment.refunded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 300,
      currency: 'THB',
    }).expect(200);
    await deliverDummy(app, {
      event_id: `printnote_dispute_${payment.id}`,
      event_type: 'payment.disputed',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 1000,
      currency: 'THB',
      dispute_id: `dp_printnote_${payment.id}`,
    }).expect(200);

    const pages: [string, string, string, string, string][] = [
      [
        user.username,
        user.password,
        `/me/receipts/${receiptId}`,
        '#payment-held',
        'is being checked by the billing team',
      ],
      [
        'printboss',
        'printboss-password',
        `/admin/receipts/${receiptId}`,
        '#payment-held-admin',
        'An online payment for this receipt is held for review.',
      ],
    ];
    for (const [username, password, path, heldNotice, heldText] of pages) {
      const context = await rig.browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const page = await context.newPage();
        await signInThroughPage(page, rig.base, username, password);
        await page.goto(`${rig.base}${path}`);
        await page.emulateMedia({ media: 'print' });
        const held = page.locator(heldNotice);
        expect(await held.isVisible(), `${path}: ${heldNotice} on paper`).toBe(true);
        expect(await held.textContent()).toContain(heldText);
        const refund = page.locator(`#refund-${payment.id}`);
        expect(await refund.isVisible(), `${path}: the refund on paper`).toBe(true);
        expect(await refund.textContent()).toContain('3.00 THB of payment');
        // What to do (pay, void, mark paid) stays off the paper.
        expect(await page.locator('.receipt-actions').isVisible(), path).toBe(false);
      } finally {
        await context.close();
      }
    }
  });
});
