import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPayingResearchers, setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import type { Agent } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * An empty `page=` (a form's empty field, a script's unset variable) was refused with "Page: is
 * required", while every other empty optional field (a date, a month-end run, a tier) reads as left
 * out. It is the first page now; a page that is not a whole number is still refused.
 */

let db: TestDatabase;
let app: express.Express;
let admin: Agent;
const researchers = createPayingResearchers(() => ({ db, app }), 'pager');

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('ledger'));
});
afterAll(() => db?.drop());

describe('an empty page= reads as the first page', () => {
  it.each(['/me?page=', '/me?view=billed&page=%20', '/me/receipts?page=', '/me/receipts/RECEIPT?page='])(
    'a researcher opening %s gets page 1',
    async (pathOf) => {
      const { agent, receiptId } = await researchers.researcherWithReceipt();
      const path = pathOf.replace('RECEIPT', String(receiptId));
      const page = await agent.get(path).set('Accept', 'text/html');
      expect(page.status, page.text.slice(0, 300)).toBe(200);
      expect(page.text).not.toContain('is required');
      const json = await agent.get(path).set('Accept', 'application/json');
      expect(json.status, json.text).toBe(200);
      expect(json.body.page).toBe(1);
    },
  );

  it.each(['/admin/receipts?page=', '/admin/users?page=', '/admin/tiers?page=', '/admin/month-end?page='])(
    'an admin opening %s gets page 1',
    async (path) => {
      await researchers.researcherWithReceipt();
      const page = await admin.get(path).set('Accept', 'text/html');
      expect(page.status, page.text.slice(0, 300)).toBe(200);
      expect(page.text).not.toContain('is required');
    },
  );

  it('still refuses a page that is not a whole number', async () => {
    const { agent } = await researchers.researcherWithReceipt();
    const refused = await agent.get('/me/receipts?page=x').set('Accept', 'application/json').expect(400);
    expect(refused.body).toEqual({ error: 'page: must be a whole number', code: 400 });
  });
});
