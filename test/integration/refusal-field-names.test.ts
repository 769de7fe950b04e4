import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * What a refusal says about the field it names: a page named the receipt in its address by the
 * code's names ("rid: is required", "receipt id: must be a whole number"), and a JSON client was told
 * an optional field it sent as null, or a reason it sent as a number, "is required".
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'named');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

const pageTextOf = async (agent: Agent, path: string) => {
  const page = await agent.get(path).set('Accept', 'text/html');
  return { status: page.status, text: visibleTextOf(page.text) };
};

describe('a receipt named in the address, refused on a page', () => {
  it.each([
    ['/payments/thanks', 'Receipt number in the address: is required'],
    ['/payments/thanks?rid=', 'Receipt number in the address: is required'],
    ['/payments/thanks?rid=abc', 'Receipt number in the address: must be a whole number'],
    ['/me/receipts/abc', 'Receipt number in the address: must be a whole number'],
    ['/payments/receipt/abc/start', 'Receipt number in the address: must be a whole number'],
  ])('%s says "%s"', async (path, reason) => {
    const { agent } = await researchers.researcherWithReceipt();
    const page = await pageTextOf(agent, path);
    expect(page.status).toBe(400);
    expect(page.text).toContain(reason);
    expect(page.text).not.toMatch(/\brid:|receipt id:/);
  });

  it('names the field by its key for a JSON client, as before', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    const thanks = await agent.get('/payments/thanks').set('Accept', 'application/json').expect(400);
    expect(thanks.body).toEqual({ error: 'rid: is required', code: 400 });
    const receipt = await agent.get('/me/receipts/abc').set('Accept', 'application/json').expect(400);
    expect(receipt.body).toEqual({ error: 'receipt id: must be a whole number', code: 400 });
  });
});

describe('another record named in the address, refused on an admin’s page', () => {
  it.each([
    ['/admin/month-end/abc', 'Month-end run number in the address: must be a whole number', /month-end run id:/],
    ['/admin/month-end/0', 'Month-end run number in the address: must be at least 1', /month-end run id:/],
  ])('%s says "%s", and JSON keeps the key', async (path, reason, codeName) => {
    const page = await pageTextOf(admin, path);
    expect(page.status).toBe(400);
    expect(page.text).toContain(reason);
    expect(page.text).not.toMatch(codeName);
    const json = await admin.get(path).set('Accept', 'application/json').expect(400);
    expect(json.body.error).toMatch(codeName);
  });

  it.each([
    [
      '/admin/payments/abc/resolve',
      { outcome: 'dismissed', note: 'x' },
      'Payment number in the address:',
      /payment id:/,
    ],
    ['/admin/users/abc/disable', {}, 'User number in the address:', /user id:/],
  ])('a form posted to %s names the record by its label', async (path, fields, reason, codeName) => {
    const page = await admin
      .post(path)
      .type('form')
      .set('Accept', 'text/html')
      .send({ ...fields, csrf_token: await csrfTokenOf(admin) });
    expect(page.status).toBe(400);
    const text = visibleTextOf(page.text);
    expect(text).toContain(reason);
    expect(text).not.toMatch(codeName);
  });
});

describe('a JSON field of the wrong kind', () => {
  it.each(['/formula', '/admin/rates'])(
    '%s: based_on null is not "required" (it is optional), changing nothing',
    async (path) => {
      const before = await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } });
      const refused = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ type: 'mu', cpu: '9', gpu: '9', mem: '9', based_on: null })
        .expect(400);
      expect(refused.body).toEqual({ error: 'based_on: cannot be null (leave it out, or give a value)', code: 400 });
      expect(await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } })).toEqual(before);
    },
  );

  it('a void reason sent as a number must be text, and the receipt stays pending', async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    const refused = await admin
      .post(`/admin/receipts/${receiptId}/void`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ reason: 5 })
      .expect(400);
    expect(refused.body).toEqual({ error: 'reason: must be text', code: 400 });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });
});

// A date sent as a JSON number (or true, or an object) was told "must be text", which named no
// format: the same field sent as a string in another format says what a date is written as.
describe('a date sent as another JSON type than text', () => {
  it.each([
    [20260131, 'must be a date as YYYY-MM-DD (got 20260131)'],
    [true, 'must be a date as YYYY-MM-DD (got true)'],
    [{ year: 2026 }, 'must be a date as YYYY-MM-DD (got {"year":2026})'],
  ])('POST /me/receipt with before %j says "%s", and makes no receipt', async (before, reason) => {
    const { agent } = await researchers.researcherWithReceipt();
    const receiptsBefore = await db.prisma.receipt.count();
    const refused = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ before });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body).toEqual({ error: `before: ${reason}`, code: 400 });
    expect(await db.prisma.receipt.count()).toBe(receiptsBefore);
  });

  it('a string in another format still says so, quoted', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    const refused = await agent
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ before: '20260131' });
    expect(refused.body).toEqual({ error: 'before: must be a date as YYYY-MM-DD (got "20260131")', code: 400 });
  });

  it('the month-end run refuses it the same way, and starts no run', async () => {
    const runsBefore = await db.prisma.monthEndRun.count();
    const refused = await admin
      .post('/admin/month-end')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ before: 20260131 });
    expect(refused.body).toEqual({ error: 'before: must be a date as YYYY-MM-DD (got 20260131)', code: 400 });
    expect(await db.prisma.monthEndRun.count()).toBe(runsBefore);
  });

  it("a mark paid's paid_on as a number (read as written there) says so, and the receipt stays pending", async () => {
    const { receiptId } = await researchers.researcherWithReceipt();
    const refused = await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .set('Content-Type', 'application/json')
      .send('{"method": "cash", "amount_received": "10.00", "paid_on": 20260115}');
    expect(refused.body).toEqual({ error: 'paid_on: must be a date as YYYY-MM-DD (got 20260115)', code: 400 });
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id: receiptId } })).status).toBe('pending');
  });

  it('a query date, always text, keeps its wording', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    const refused = await agent.get('/me?start=20260101').set('Accept', 'application/json');
    expect(refused.body).toEqual({ error: 'start: must be a date as YYYY-MM-DD (got "20260101")', code: 400 });
  });
});
