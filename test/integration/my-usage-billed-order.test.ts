import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled, visibleTextOf } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Jobs and Per day list newest first, but Billed listed each receipt's jobs oldest first
 * (the newest receipt first, then its jobs by Ended, the oldest at the top): page 1 of a receipt of
 * many jobs was its oldest ones. Each receipt's jobs are now newest first, ties by the job's row id,
 * the later first, as Jobs breaks its ties; on the page, in its JSON and in the line over its pages.
 * The usage CSV stays in the order the jobs ended, oldest first (docs/billing.md).
 */
let db: TestDatabase;
let alice: Agent;
let older: number;
let newer: number;
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-01&end=2025-09-20';

// 51 jobs on the older receipt, ending one an hour from 2025-09-02 00:00 with 5002 and 5003 at the same
// moment (a tie), and 3 on the newer receipt: 54 jobs, two pages of 50.
const olderJobs = Array.from({ length: 51 }, (_, index) => ({
  user: 'alice',
  jobId: String(5000 + index),
  end: new Date(Date.parse('2025-09-02T00:00:00Z') + (index === 3 ? 2 : index) * 3_600_000),
}));
const newerJobs = [
  { user: 'alice', jobId: '6001', end: '2025-09-12T03:00:00Z' },
  { user: 'alice', jobId: '6002', end: '2025-09-14T03:00:00Z' },
  { user: 'alice', jobId: '6003', end: '2025-09-13T03:00:00Z' },
];

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const app = buildTestApp(db, { now });
  await buildJobs(db, olderJobs);
  await buildJobs(db, newerJobs);
  alice = await signInAs(app, 'alice', 'alice-password');
  older = await billJobs(alice, '2025-09-10');
  newer = await billJobs(alice, '2025-09-15');
});
afterAll(() => db?.drop());

const html = async (path: string) => (await alice.get(path).set('Accept', 'text/html').expect(200)).text;
const json = async (path: string) => (await alice.get(path).set('Accept', 'application/json').expect(200)).body;

// Newest receipt first; each receipt's jobs by Ended, newest first: 5003 (built after 5002, at the same end)
// before 5002, as Jobs breaks a tie of Ended, newest first.
const EXPECTED = ['6002', '6003', '6001', ...olderJobs.map((job) => job.jobId).reverse()];

describe("My usage's Billed view", () => {
  it("lists each receipt's jobs newest first, the newest receipt first, across its pages", async () => {
    const pages = [await html(`/me?${WINDOW}&view=billed`), await html(`/me?${WINDOW}&view=billed&page=2`)];
    expect(pages.flatMap((page) => cellsLabelled(page, 'Job'))).toEqual(EXPECTED);
    const receiptsOf = (page: string) =>
      [...page.matchAll(/data-label="Receipt"><a href="\/me\/receipts\/\d+"[^>]*>([^<]*)<\/a>/g)].map(
        (match) => match[1],
      );
    expect(pages.flatMap(receiptsOf)).toEqual([
      ...newerJobs.map(() => `#${newer}`),
      ...olderJobs.map(() => `#${older}`),
    ]);
  });

  it('lists them so in its JSON', async () => {
    const pages = [await json(`/me?${WINDOW}&view=billed`), await json(`/me?${WINDOW}&view=billed&page=2`)];
    expect(pages.map((page) => [page.page, page.pageCount, page.count])).toEqual([
      [1, 2, 54],
      [2, 2, 54],
    ]);
    expect(pages.flatMap((page) => page.jobs.map((job: { jobId: string }) => job.jobId))).toEqual(EXPECTED);
  });

  it('says over its pages which jobs a page shows, and in what order', async () => {
    const first = await html(`/me?${WINDOW}&view=billed`);
    expect(visibleTextOf(first)).toContain(
      "Jobs 1–50 of 54, the newest receipt first and each receipt's jobs newest first (page 1 of 2, 50 jobs a page). " +
        "The total under them is the whole window's.",
    );
    const last = await html(`/me?${WINDOW}&view=billed&page=2`);
    expect(visibleTextOf(last)).toContain('Jobs 51–54 of 54,');
    expect(first).toContain(
      `<caption class="visually-hidden">Billed jobs, the newest receipt first and each receipt&#39;s jobs newest first</caption>`,
    );
  });

  it('names the one job of a last page of one', async () => {
    // The older receipt's 51 jobs alone: page 2 holds one.
    const last = await html('/me?start=2025-09-02&end=2025-09-04&view=billed&page=2');
    expect(visibleTextOf(last)).toContain(
      "Job 51 of 51, the newest receipt first and each receipt's jobs newest first",
    );
    expect(cellsLabelled(last, 'Job')).toEqual(['5000']);
  });

  it('says nothing of pages when there is one', async () => {
    const one = await html('/me?start=2025-09-12&end=2025-09-20&view=billed');
    expect(one).not.toContain('(page 1 of');
  });

  it('leaves the usage CSV in the order the jobs ended, oldest first', async () => {
    const csv = (await alice.get(`/me.csv?${WINDOW}`).expect(200)).text.trimEnd().split('\n').slice(1);
    const ids = csv.map((line) => line.split(',')[0]);
    expect(ids.slice(0, 3)).toEqual(['5000', '5001', '5002']);
    expect(ids.slice(-3)).toEqual(['6001', '6003', '6002']);
  });
});
