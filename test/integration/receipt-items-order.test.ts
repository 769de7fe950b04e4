import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt listed its jobs in the order they were billed (by job id), so the End column read as
 * shuffled. Every list of a receipt's items (its page for the owner and for an admin, its JSON,
 * its printout, its items CSV) is in end-time order, ties by job id.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** Bills alice's jobs that ended up to `before`; the new receipt's id. */
async function billAliceUpTo(before: string): Promise<number> {
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
    .send({ before })
    .expect(201);
  return created.body.receipt.id as number;
}

const jobIdsInHtml = (html: string) =>
  [...html.matchAll(/<td data-label="Job">([^<]*)<\/td>/g)].map((match) => match[1]);
const jobIdsInCsv = (csv: string) =>
  csv
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[1]);

const htmlJobIds = async (agent: Agent, path: string) =>
  jobIdsInHtml((await agent.get(path).set('Accept', 'text/html').expect(200)).text);

/** The job ids on one page of receipt `id`: its owner's page, its JSON and the admin's page. */
async function pageOf(id: number, page = 1) {
  const json = await alice.get(`/me/receipts/${id}?page=${page}`).set('Accept', 'application/json').expect(200);
  return {
    ownPage: await htmlJobIds(alice, `/me/receipts/${id}?page=${page}`),
    json: (json.body.items as { jobId: string }[]).map((item) => item.jobId),
    adminPage: await htmlJobIds(admin, `/admin/receipts/${id}?page=${page}`),
  };
}

/** The job ids of receipt `id` on each of its whole lists: the printouts and the items CSVs. */
async function wholeListsOf(id: number) {
  return {
    ownPrint: await htmlJobIds(alice, `/me/receipts/${id}/print`),
    adminPrint: await htmlJobIds(admin, `/admin/receipts/${id}/print`),
    ownCsv: jobIdsInCsv((await alice.get(`/me/receipts/${id}/items.csv`).expect(200)).text),
    adminCsv: jobIdsInCsv((await admin.get(`/admin/receipts/${id}/items.csv`).expect(200)).text),
  };
}

describe("a receipt's jobs", () => {
  it('are listed by end time, ties by job id, on every list of the receipt', async () => {
    await buildJobs(db, [
      { user: 'alice', jobId: '9001', end: '2025-09-12T10:00:00Z' },
      { user: 'alice', jobId: '9002', end: '2025-09-10T10:00:00Z' },
      { user: 'alice', jobId: '9003', end: '2025-09-11T10:00:00Z' },
      { user: 'alice', jobId: '9004', end: '2025-09-10T10:00:00Z' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    const byEnd = ['9002', '9004', '9003', '9001'];
    expect({ ...(await pageOf(id)), ...(await wholeListsOf(id)) }).toEqual({
      ownPage: byEnd,
      json: byEnd,
      adminPage: byEnd,
      ownPrint: byEnd,
      adminPrint: byEnd,
      ownCsv: byEnd,
      adminCsv: byEnd,
    });
  });

  it('keep that order across pages and across the batches of the printout and the CSV', async () => {
    // 1,201 jobs, two ending at each time, their ids counting down as their end times go up:
    // more than two pages of 500 and one printed batch of 1,000, with ties at the boundaries.
    const count = 1_201;
    const jobs = Array.from({ length: count }, (_, index) => ({
      user: 'alice',
      jobId: String(700_000 - index),
      end: new Date(Date.parse('2025-09-16T00:00:00Z') + Math.floor(index / 2) * 60_000),
    }));
    await buildJobs(db, jobs);
    const id = await billAliceUpTo('2025-09-18');
    // Two jobs of each end time, the lower id first.
    const byEnd = jobs
      .map((job) => job.jobId)
      .map((_, index, ids) => ids[index % 2 === 0 ? Math.min(index + 1, count - 1) : index - 1] as string);
    expect(await wholeListsOf(id)).toEqual({ ownPrint: byEnd, adminPrint: byEnd, ownCsv: byEnd, adminCsv: byEnd });
    const pages = [await pageOf(id, 1), await pageOf(id, 2), await pageOf(id, 3)];
    expect(pages.map((page) => page.ownPage.length)).toEqual([500, 500, 201]);
    for (const list of ['ownPage', 'json', 'adminPage'] as const) {
      expect(
        pages.flatMap((page) => page[list]),
        list,
      ).toEqual(byEnd);
    }
  });
});
