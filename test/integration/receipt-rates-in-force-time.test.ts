import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A receipt page said its rates were "in force since 2025-06-01", a day only, though rates can be
 * changed several times a day: which of that day's rates a receipt was priced at could not be told
 * from it. It gives the time too, in the site's time zone, as "locked" beside it does.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  ({ db, app } = await setUpBillingApp('sinceadmin', { env: { APP_TZ: 'Asia/Bangkok' } }));
  // 07:41 UTC, 14:41 in Bangkok: before anything has read the rates.
  await db.prisma.pricingRate.updateMany({ data: { effectiveFrom: new Date('2025-06-01T07:41:00Z') } });
});
afterAll(() => db?.drop());

describe("a receipt's rates", () => {
  it('are in force since a day and a time in the site time zone, on the receipt and its print page', async () => {
    const { agent, receiptId } = await researcherWithReceiptOf(app, db, 'sincetime', 2);
    for (const path of [`/me/receipts/${receiptId}`, `/me/receipts/${receiptId}/print`]) {
      const page = await agent.get(path).set('Accept', 'text/html').expect(200);
      expect(page.text).toContain(
        '(in force since <span><span class="nowrap">2025-06-01</span> <span class="nowrap">14:41</span></span>, locked ',
      );
    }
  });
});
