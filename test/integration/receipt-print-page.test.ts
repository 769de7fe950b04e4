import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildJobs } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The printable receipt lists every job, so every page of the receipt is in it; but a page the
 * receipt does not have is not. /me/receipts/1/print?page=2 of a one-page receipt printed (200)
 * while /me/receipts/1?page=2 said there is no page 2 (404), and ?page=abc printed too. A `page` in
 * a printable receipt's address is now checked as the receipt's page checks it.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let researcher: Agent;
let receiptId: number;
beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('print-page-admin'));
  const user = await buildUser(db.prisma, { username: 'pia' });
  await buildJobs(db, [{ user: 'pia', end: new Date('2026-01-10T10:00:00Z') }]);
  researcher = await signInAs(app, 'pia', user.password);
  receiptId = await billJobs(researcher, '2026-01-31');
});
afterAll(() => db?.drop());

describe.each([
  ['the researcher', () => researcher, '/me/receipts'],
  ['an admin', () => admin, '/admin/receipts'],
])('a printable receipt asked for a page, by %s', (_who, agentOf, list) => {
  it.each([
    ['?page=2', 404, 'there is no page 2'],
    ['?page=abc', 400, 'must be a whole number'],
    ['?page=0', 400, 'must be at least 1'],
    ['?page=2&page=3', 400, 'must be given once'],
  ])('%s is refused as the receipt page refuses it (%i)', async (query, status, reason) => {
    const receipt = await agentOf().get(`${list}/${receiptId}${query}`).set('Accept', 'text/html');
    expect(receipt.status).toBe(status);
    expect(receipt.text).toContain(reason);
    const print = await agentOf().get(`${list}/${receiptId}/print${query}`).set('Accept', 'text/html');
    expect(print.status).toBe(status);
    expect(print.text).toContain(reason);
    expect(print.text).toContain(`href="${list}/${receiptId}"`);
    await agentOf().head(`${list}/${receiptId}/print${query}`).set('Accept', 'text/html').expect(status);
    const json = await agentOf().get(`${list}/${receiptId}/print${query}`).set('Accept', 'application/json');
    expect(json.status).toBe(status);
  });

  it('a page the receipt has prints all of it, as without one', async () => {
    const print = await agentOf().get(`${list}/${receiptId}/print?page=1`).set('Accept', 'text/html').expect(200);
    expect(print.text).toContain(`Receipt #${receiptId} (printable, all jobs)`);
  });
});
