import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled, visibleTextOf } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// My usage's Jobs view points to Per day for the window's total and Per day shows it under its
// table, but the Billed view, 50 jobs a page, showed no total at all: what the window's billed jobs
// came to had to be added up by hand, page by page.
let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');
const window = 'start=2025-09-01&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { now });
  // 52 jobs: two pages of the Billed view.
  await buildJobs(
    db,
    Array.from({ length: 52 }, (_, index) => ({
      user: 'alice',
      jobId: String(5000 + index),
      end: `2025-09-${String(2 + (index % 9)).padStart(2, '0')}T03:00:00Z`,
    })),
  );
  alice = await signInAs(app, 'alice', 'alice-password');
  await billJobs(alice, '2025-09-05');
  await billJobs(alice, '2025-09-12');
  // Items as the bench data writes them (four decimals): 0.0050 is shown as 0.01 on its row, so the
  // total must add up the 0.01s the rows show, as Per day's does (52 × 0.01, not 52 × 0.005 rounded).
  await db.pool.query("UPDATE receipt_items SET cost = CASE WHEN display_job_id = '5000' THEN 1.2345 ELSE 0.0050 END");
});
afterAll(() => db?.drop());

const html = (path: string) => alice.get(path).set('Accept', 'text/html');

describe("My usage's Billed view", () => {
  it("shows the window's total under the jobs on every page, adding up the costs the rows show", async () => {
    const pages = [
      (await html(`/me?${window}&view=billed`).expect(200)).text,
      (await html(`/me?${window}&view=billed&page=2`).expect(200)).text,
    ];
    const costs = pages.flatMap((page) => cellsLabelled(page, 'Cost (THB)'));
    expect(costs).toHaveLength(52);
    const shown = costs.reduce((sum, cost) => sum.plus(cost), new Prisma.Decimal(0));
    // 1.23 + 51 × 0.01.
    expect(shown.toFixed(2)).toBe('1.74');
    for (const page of pages) {
      const foot = /<tfoot>[\s\S]*?<\/tfoot>/.exec(page)?.[0] ?? '';
      expect(visibleTextOf(foot)).toBe('Total (52 jobs) 1.74 THB');
    }
  });

  it('gives the total to a JSON client too, as money text', async () => {
    const answer = await alice.get(`/me?${window}&view=billed`).set('Accept', 'application/json').expect(200);
    expect(answer.body).toMatchObject({ view: 'billed', count: 52, totals: { jobs: 52, cost: '1.74' } });
  });

  it('is 0.00 for a window with no billed job', async () => {
    const empty = (await html('/me?start=2025-09-15&end=2025-09-20&view=billed').expect(200)).text;
    expect(visibleTextOf(/<tfoot>[\s\S]*?<\/tfoot>/.exec(empty)?.[0] ?? '')).toBe('Total (0 jobs) 0.00 THB');
  });
});
