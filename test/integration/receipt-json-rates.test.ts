import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A finance script checking that a receipt made before a rate change kept the rates it was priced
 * at read the receipt as JSON and found its tier and total, but not the rates: only the page showed
 * the snapshot, so "hours × rates = cost" could not be checked without scraping HTML.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('ratesreader'));
});
afterAll(() => db?.drop());

describe("a receipt's JSON", () => {
  it('carries the rates it was priced at, kept after the tier’s rates change', async () => {
    const before = await researcherWithReceiptOf(app, db, 'snapold', 2);
    const changed = await admin
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ type: 'mu', cpu: '0.6', gpu: '12', mem: '0.05' });
    expect(changed.status, changed.text).toBe(200);
    const after = await researcherWithReceiptOf(app, db, 'snapnew', 2);

    const rateIds = await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' }, select: { id: true } });
    const old = (await admin.get(`/admin/receipts/${before.receiptId}`).set('Accept', 'application/json').expect(200))
      .body.receipt;
    expect(old.total).toBe('1.00');
    expect(old.rates).toEqual({
      rateId: rateIds[0]?.id,
      cpu: '0.50',
      gpu: '12.00',
      mem: '0.05',
      currency: 'THB',
      effectiveFrom: '2020-01-01T00:00:00.000Z',
      lockedAt: expect.any(String),
      cpuBasis: 'used',
    });
    const fresh = (
      await after.agent.get(`/me/receipts/${after.receiptId}`).set('Accept', 'application/json').expect(200)
    ).body.receipt;
    expect(fresh.total).toBe('1.20');
    expect(fresh.rates).toMatchObject({ cpu: '0.60', gpu: '12.00', mem: '0.05', currency: 'THB' });
    expect(fresh.rates.rateId).not.toBe(old.rates.rateId);
  });
});
