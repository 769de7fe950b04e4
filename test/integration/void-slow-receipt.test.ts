import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('slowvoider'));
});
afterAll(() => db?.drop());

/**
 * Past Prisma's default interactive-transaction limit (5 s). A void marks every item of the receipt
 * voided in its transaction: 59,640 items took 9.3 s on a resilience walk, and that void was refused
 * with a 503 at every try. A lock on the receipt's items, held this long, stands in for that work.
 */
const LONGER_THAN_PRISMA_DEFAULT_MS = 5_500;

describe('voiding a receipt whose items take longer than a few seconds to void', () => {
  it('voids it and bills its jobs again, instead of running out of time at every try', async () => {
    const { receiptId } = await researcherWithReceiptOf(app, db, 'manyjobs', 2);
    const token = await csrfTokenOf(admin);
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM receipt_items WHERE receipt_id = $1 FOR UPDATE', [receiptId]);
      const voiding = admin
        .post(`/admin/receipts/${receiptId}/void`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ reason: 'billed to the wrong project' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, LONGER_THAN_PRISMA_DEFAULT_MS));
      await holder.query('COMMIT');
      const voided = await voiding;
      expect(voided.status, voided.text).toBe(200);
      expect(voided.body.receipt).toMatchObject({ status: 'void', releasedJobs: 1 });
    } finally {
      holder.release();
    }
    const { rows } = await db.pool.query<{ status: string; live: number; unbilled: number }>(
      `SELECT r.status,
              (SELECT count(*) FROM receipt_items i WHERE i.receipt_id = r.id AND NOT i.is_voided)::int AS live,
              (SELECT count(*) FROM unbilled_jobs u JOIN slurm_jobs j ON j.id = u.job_id WHERE j."user" = r.username)::int AS unbilled
         FROM receipts r WHERE r.id = $1`,
      [receiptId],
    );
    expect(rows[0]).toEqual({ status: 'void', live: 0, unbilled: 1 });
  }, 60_000);
});
