import type express from 'express';
import { expect } from 'vitest';
import { amountDueOf, buildJobs } from './billing-factories.js';
import { buildUser } from './factories.js';
import { type Agent, csrfTokenOf, signInAs } from './sign-in.js';
import type { TestDatabase } from './test-database.js';

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

/** `admin` marks the receipt paid by hand (a bank transfer of the amount due, ref `txRef`) as a JSON client; fails the test unless it is paid. */
export async function markPaidByHandAsJson(
  admin: Agent,
  db: Pick<TestDatabase, 'prisma'>,
  receiptId: number,
  txRef: string,
) {
  const marked = await admin
    .post(`/admin/receipts/${receiptId}/paid`)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ method: 'bank_transfer', amount_received: await amountDueOf(db, receiptId), tx_ref: txRef });
  expect(marked.status, marked.text).toBe(200);
  return marked;
}

/**
 * `admin` voids the researcher's receipt and the researcher (`agent`) bills its jobs again: the
 * new receipt's id. The way a receipt comes to bill the jobs of a voided one.
 */
export async function voidAndBillAgain(admin: Agent, agent: Agent, receiptId: number, before = '2026-01-31') {
  await voidReceiptAsJson(admin, receiptId);
  return billJobs(agent, before);
}

/**
 * A new researcher `username` with one job of `cpuHours` CPU core-hours (no memory) that ended on
 * 2026-01-10, signed in to `app` and billed: at buildTiers' 0.50 THB an hour, a pending receipt of
 * cpuHours × 0.50 THB.
 */
export async function researcherWithReceiptOf(
  app: express.Express,
  db: TestDatabase,
  username: string,
  cpuHours: number,
) {
  const user = await buildUser(db.prisma, { username });
  await buildJobs(db, [
    { user: username, end: '2026-01-10T10:00:00Z', totalCpuSec: String(cpuHours * 3600), stepMemGbHours: '0' },
  ]);
  const agent = await signInAs(app, user.username, user.password);
  return { user, agent, receiptId: await billJobs(agent) };
}

/** Starts the online payment of the receipt, as its Pay button does: where the payer is sent to pay. */
export async function startCheckout(agent: Agent, receiptId: number) {
  const started = await agent
    .post(`/payments/receipt/${receiptId}/start`)
    .type('form')
    .send({ csrf_token: await csrfTokenOf(agent) });
  expect(started.status, started.text.slice(0, 200)).toBe(303);
  return started.headers.location as string;
}
