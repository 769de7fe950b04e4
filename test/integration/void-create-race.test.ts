import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  app = buildTestApp(db);
});
afterAll(() => db?.drop());

/** Jobs of `username` on more than one live receipt, and finished jobs whose place in the billing queue is wrong. */
async function billingFaultsOf(username: string) {
  const { rows } = await db.pool.query<{ twice: number; misqueued: number }>(
    `SELECT (SELECT count(*) FROM (SELECT job_key FROM receipt_items ri JOIN receipts r ON r.id = ri.receipt_id
                                    WHERE r.username = $1 AND NOT ri.is_voided GROUP BY job_key HAVING count(*) > 1) d)::int AS twice,
            (SELECT count(*) FROM slurm_jobs j
              WHERE j."user" = $1 AND j.is_terminal
                AND (EXISTS (SELECT 1 FROM unbilled_jobs u WHERE u.job_id = j.id))
                  = (EXISTS (SELECT 1 FROM receipt_items ri
                              WHERE ri.cluster = j.cluster AND ri.job_key = j.job_key AND NOT ri.is_voided)))::int AS misqueued`,
    [username],
  );
  return rows[0];
}

describe('a researcher billing while an admin voids their receipt', () => {
  it('bills every job once at most, keeps the billing queue exact and answers both, over many rounds', async () => {
    const admin = await signInNewAdmin(app, db, 'voider');
    const adminToken = await csrfTokenOf(admin);
    for (let round = 0; round < 8; round++) {
      const user = await buildUser(db.prisma, { username: `biller${round}` });
      await buildJobs(db, [
        { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
        { user: user.username, end: '2026-01-11T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
      ]);
      const agent = await signInAs(app, user.username, user.password);
      const token = await csrfTokenOf(agent);
      const first = await agent
        .post('/me/receipt')
        .type('form')
        .send({ before: '2026-01-10', csrf_token: token })
        .expect(303);
      const firstId = Number(/\/me\/receipts\/(\d+)/.exec(first.headers.location ?? '')?.[1]);

      const [voided, created] = await Promise.all([
        admin
          .post(`/admin/receipts/${firstId}/void`)
          .set('Accept', 'application/json')
          .set('X-CSRFToken', adminToken)
          .send({ reason: 'wrong project' }),
        agent.post('/me/receipt').type('form').send({ before: '2026-01-31', csrf_token: token }),
      ]);
      expect(voided.status).toBe(200);
      expect(created.status).toBe(303);
      expect(await billingFaultsOf(user.username)).toEqual({ twice: 0, misqueued: 0 });
      // Whatever the second receipt took, the rest bills now, and nothing is left over.
      await agent.post('/me/receipt').type('form').send({ before: '2026-01-31', csrf_token: token });
      const live = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM receipt_items ri JOIN receipts r ON r.id = ri.receipt_id
          WHERE r.username = $1 AND NOT ri.is_voided`,
        [user.username],
      );
      expect(live.rows[0]?.n).toBe(2);
      expect(await billingFaultsOf(user.username)).toEqual({ twice: 0, misqueued: 0 });
    }
  });
});
