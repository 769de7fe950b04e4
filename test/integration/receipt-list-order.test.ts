import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A month-end run creates its receipts milliseconds apart, and the lists show creation times to
 * the minute: ordered by creation time alone, receipts made at the same moment came in whatever
 * order PostgreSQL read them, so #20 could be listed above #21. Every list of receipts is newest
 * first with the id as tie-breaker, in the same direction.
 */
let db: TestDatabase;
let admin: Agent;
let alice: Agent;
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
const SAME_MOMENT = '2025-09-01 04:00:00+00';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  admin = await signInAs(app, 'boss', 'boss-password');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

/** The receipt ids a receipts list page shows, in order. */
const listedIds = (html: string) =>
  [...html.matchAll(/<td data-label="Receipt"><a href="\/(?:me|admin)\/receipts\/(\d+)"[^>]*>/g)].map((match) =>
    Number(match[1]),
  );
const htmlIds = async (agent: Agent, path: string) =>
  listedIds((await agent.get(path).set('Accept', 'text/html').expect(200)).text);

/** Bills alice's jobs that ended before `before`; the new receipt's id. */
async function billAliceUpTo(before: string): Promise<number> {
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
    .send({ before })
    .expect(201);
  return created.body.receipt.id as number;
}

describe('receipts created at the same moment', () => {
  it("are listed by id, newest first, on the researcher's list and its JSON and on the admin's list", async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-08-10T03:00:00Z' },
      { user: 'alice', end: '2025-08-12T03:00:00Z' },
      { user: 'alice', end: '2025-08-14T03:00:00Z' },
    ]);
    const ids = [
      await billAliceUpTo('2025-08-11'),
      await billAliceUpTo('2025-08-13'),
      await billAliceUpTo('2025-08-15'),
    ];
    await db.pool.query('UPDATE receipts SET created_at = $1 WHERE id = ANY($2)', [SAME_MOMENT, ids]);
    const newestFirst = [...ids].sort((a, b) => b - a);

    const json = await alice.get('/me/receipts').set('Accept', 'application/json').expect(200);
    expect({
      own: await htmlIds(alice, '/me/receipts'),
      ownJson: (json.body.receipts as { id: number }[]).map((receipt) => receipt.id),
      admin: await htmlIds(admin, '/admin/receipts?user=alice'),
    }).toEqual({ own: newestFirst, ownJson: newestFirst, admin: newestFirst });
  });

  it("made by one month-end run are listed by id, newest first, on the run's receipts list", async () => {
    const users = ['carol', 'dave', 'erin', 'frank', 'grace'];
    await buildJobs(
      db,
      users.map((user) => ({ user, end: '2025-07-20T03:00:00Z' })),
    );
    const started = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-07-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    const run = await waitForMonthEndRun(admin, monthEndRunPathOf(started));
    expect(run.receiptCount).toBe(users.length);
    const made = await db.pool.query<{ id: number }>(
      'UPDATE receipts SET created_at = $1 WHERE month_end_run_id = $2 RETURNING id',
      [SAME_MOMENT, run.id],
    );
    const newestFirst = made.rows.map((row) => row.id).sort((a, b) => b - a);

    expect(await htmlIds(admin, `/admin/receipts?run=${run.id}`)).toEqual(newestFirst);
    // The whole billing list too: alice's three were given the same moment above.
    const all = await htmlIds(admin, '/admin/receipts');
    expect(all).toHaveLength(newestFirst.length + 3);
    expect(all).toEqual([...all].sort((a, b) => b - a));
  });
});
