import { expect } from 'vitest';
import { type Agent, csrfTokenOf } from './sign-in.js';

/** The signed-in researcher bills their jobs that ended before `before`, as the form does: the new receipt's id. */
export async function billJobs(agent: Agent, before = '2026-01-31'): Promise<number> {
  const created = await agent
    .post('/me/receipt')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(agent) });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  return Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
}

/** `admin` voids the receipt as a JSON client; fails the test unless it is voided. */
export async function voidReceiptAsJson(admin: Agent, receiptId: number, reason = 'billed to the wrong project') {
  const voided = await admin
    .post(`/admin/receipts/${receiptId}/void`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ reason });
  expect(voided.status, voided.text).toBe(200);
  return voided;
}

/**
 * `admin` voids the researcher's receipt and the researcher (`agent`) bills its jobs again: the
 * new receipt's id. The way a receipt comes to bill the jobs of a voided one.
 */
export async function voidAndBillAgain(admin: Agent, agent: Agent, receiptId: number, before = '2026-01-31') {
  await voidReceiptAsJson(admin, receiptId);
  return billJobs(agent, before);
}
