import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BrowserRig,
  closeRigAndDatabase,
  hasChromium,
  signedInPage,
  startDummyPaymentsRig,
} from '../support/browser.js';
import { createPayingResearchers, deliverDummy } from '../support/dummy-payments.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Admin → Payments with two payments held for review, as a screen reader reads their forms (Tab from one
 * field to the next, or its list of form fields): each card's group read "Outcome", its note "Note: what
 * was done" and its tick "Accept the different amount", the same in every card, so nothing said which
 * payment a note or an outcome was for; the payment is named only in the card's heading, which moving
 * through the fields does not read (WCAG 2.4.6, 1.3.1). Its button already named it.
 */
describe.skipIf(!hasChromium)("the held payments' review forms, read out of their card", { timeout: 120_000 }, () => {
  let db: TestDatabase;
  let app: express.Express;
  let rig: BrowserRig;
  const { researcherWithReceipt, startCheckout, latestPaymentOf, paidOnline } = createPayingResearchers(
    () => ({ db, app }),
    'heldnamed',
  );

  beforeAll(async () => {
    ({ db, app, rig } = await startDummyPaymentsRig({ admin: 'boss' }));
  });

  afterAll(() => closeRigAndDatabase(rig, db));

  /** A payment held for review: 1.00 THB received of 10.00 THB due. */
  async function heldPayment(): Promise<number> {
    const researcher = await researcherWithReceipt();
    await startCheckout(researcher.agent, researcher.receiptId);
    const payment = await latestPaymentOf(researcher.receiptId);
    await deliverDummy(app, {
      event_id: `held-named-${payment.id}`,
      event_type: 'payment.succeeded',
      external_payment_id: payment.externalPaymentId,
      amount_cents: 100,
      currency: 'THB',
    }).expect(200);
    return payment.id;
  }

  it("names each held payment's outcome group, note and tick with the payment", async () => {
    const ids = [await heldPayment(), await heldPayment()];
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password');
    await page.goto(`${rig.base}/admin/payments`);
    for (const id of ids) {
      for (const [role, name] of [
        ['group', `Outcome of payment #${id}`],
        ['textbox', `Note: what was done with payment #${id}`],
        ['checkbox', `Accept the different amount of payment #${id} (say in the note how the difference was settled)`],
      ] as const) {
        expect(await page.getByRole(role, { name, exact: true }).count(), name).toBe(1);
      }
    }
    // To the eye they read as before: the words added are drawn in a pixel or less.
    const [first] = ids;
    for (const [selector, shown] of [
      [`#review-${first} legend`, 'Outcome'],
      [`label[for="note-${first}"]`, 'Note: what was done'],
    ] as const) {
      const element = page.locator(selector);
      let text = (await element.textContent()) ?? '';
      for (const part of await element.locator('span').all()) {
        const box = await part.boundingBox();
        if (box && box.width <= 1) text = text.replace((await part.textContent()) ?? '', '');
      }
      expect(text.trim(), selector).toBe(shown);
    }
    await context.close();
  });

  it("names each refused claim's note with the claim", async () => {
    // Two refunds of more than their payment received: refused, each listed with a note to settle it.
    for (const index of [1, 2]) {
      const { payment } = await paidOnline();
      await deliverDummy(app, {
        event_id: `refused-named-${index}`,
        event_type: 'payment.refunded',
        external_payment_id: payment.externalPaymentId,
        amount_cents: 1001,
        currency: 'THB',
      }).expect(409);
    }
    const claims = await db.prisma.paymentRefusedClaim.findMany({ select: { id: true }, orderBy: { id: 'asc' } });
    expect(claims).toHaveLength(2);
    const { context, page } = await signedInPage(rig, 'boss', 'boss-password');
    await page.goto(`${rig.base}/admin/payments`);
    for (const { id } of claims) {
      const name = `Note: what was done with the provider for refused claim #${id}`;
      expect(await page.getByRole('textbox', { name, exact: true }).count(), name).toBe(1);
    }
    await context.close();
  });
});
