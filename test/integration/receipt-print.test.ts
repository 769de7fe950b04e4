import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** What a finance officer or a researcher gets of a receipt: its items CSV, its printout. */
let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let bob: Agent;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  await db.prisma.receiptItem.deleteMany();
  await db.prisma.receipt.deleteMany();
  await db.prisma.slurmJob.deleteMany();
});

/** Bills alice's jobs that ended up to `before`; the new receipt's id. */
async function billAliceUpTo(before: string): Promise<number> {
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: await csrfTokenOf(alice, '/me') });
  expect(created.status, created.text.slice(0, 200)).toBe(303);
  return Number(/\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location as string)?.[1]);
}

const csvLinesOf = async (agent: Agent, path: string) => (await agent.get(path).expect(200)).text.trimEnd().split('\n');

describe("a receipt's items CSV", () => {
  it('names each job and its end time after the first eight columns, a name from Slurm made inert', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:04:05Z', jobId: '9101', name: '=HYPERLINK("http://x")' },
      { user: 'alice', end: '2025-09-11T23:59:59Z', jobId: '9102', name: 'md, run' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    const mine = await csvLinesOf(alice, `/me/receipts/${id}/items.csv`);
    expect(mine[0]).toBe('receipt_id,job_id,cluster,cpu_hours,gpu_hours,mem_gb_hours,cost,currency,name,end');
    expect(mine.slice(1)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${id},9101,test,[\\d.]+,[\\d.]+,[\\d.]+,\\d+\\.\\d{2},THB,"'=HYPERLINK\\(""http://x""\\)",2025-09-10T03:04:05Z$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^${id},9102,test,[\\d.]+,[\\d.]+,[\\d.]+,\\d+\\.\\d{2},THB,"md, run",2025-09-11T23:59:59Z$`),
      ),
    ]);
    expect(await csvLinesOf(admin, `/admin/receipts/${id}/items.csv`)).toEqual(mine);

    // The same name and end as the usage CSV writes them for the same jobs.
    const usage = await csvLinesOf(alice, '/me.csv?start=2025-09-08&end=2025-09-20');
    const usageColumns = usage[0]?.split(',') ?? [];
    expect(usage[1]).toContain(`,"'=HYPERLINK(""http://x"")",`);
    expect(usageColumns.indexOf('end')).toBeGreaterThan(-1);
    expect(usage[2]).toContain(',2025-09-11T23:59:59Z,');
  });
});

describe("a receipt's page", () => {
  it("names each job and its end time in the app's time zone, beside its id, on the page and the printout", async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:04:05Z', jobId: '9201', name: '<b>md-run</b>' },
      { user: 'alice', end: '2025-09-11T23:59:59Z', jobId: '9202', name: 'align' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    const rowOf = (html: string, jobId: string) =>
      new RegExp(
        `<td data-label="Job">${jobId}</td><td data-label="Name" class="free-text">([^<]*)</td><td data-label="Ended">([^<]*)</td>`,
      ).exec(html);
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}`],
      [admin, `/admin/receipts/${id}`],
      [alice, `/me/receipts/${id}/print`],
    ] as const) {
      const html = (await agent.get(path).set('Accept', 'text/html').expect(200)).text;
      expect(html).toContain(
        '<th scope="col">Job</th><th scope="col">Name</th><th scope="col">Ended</th><th scope="col">Cluster</th>',
      );
      // Escaped, as text from Slurm always is; ended 2025-09-10 03:04 UTC is 10:04 in Bangkok.
      expect(rowOf(html, '9201')?.slice(1), path).toEqual(['&lt;b&gt;md-run&lt;/b&gt;', '2025-09-10 10:04']);
      expect(rowOf(html, '9202')?.slice(1), path).toEqual(['align', '2025-09-12 06:59']);
      expect(html).toContain('<th colspan="7" scope="row">Total (2 jobs)</th>');
    }
  });
});

/** 1,441.20: a THB amount as the pages write it. */
const formatted = (amount: { toFixed(digits: number): string }) => amount.toFixed(2).replace(/\B(?=(\d{3})+\.)/g, ',');

const jobsOn = (html: string) => [...html.matchAll(/<td data-label="Job">([^<]*)<\/td>/g)].map((match) => match[1]);

describe('a printed receipt', () => {
  it('lists every job of a paged receipt on its printable page, which its Print link leads to', async () => {
    // 1,201 jobs: three pages of the receipt's 500, two batches of the printout's 1,000 and one more.
    await buildJobs(
      db,
      Array.from({ length: 1201 }, (_, index) => ({
        user: 'alice',
        end: new Date(Date.UTC(2025, 8, 1, 0, 0, index)),
        jobId: String(800_000 + index),
      })),
    );
    const id = await billAliceUpTo('2025-09-15');
    const items = await db.prisma.receiptItem.findMany({ where: { receiptId: id }, orderBy: { id: 'asc' } });
    const receipt = await db.prisma.receipt.findUniqueOrThrow({ where: { id } });

    const paged = await alice.get(`/me/receipts/${id}`).set('Accept', 'text/html').expect(200);
    expect(jobsOn(paged.text)).toHaveLength(500);
    expect(paged.text).toContain(
      `<a class="button secondary" href="/me/receipts/${id}/print" data-print-full>Print all 1,201 jobs</a>`,
    );
    expect(paged.text).not.toMatch(/ data-print[ >]/);

    const printed = await alice.get(`/me/receipts/${id}/print`).set('Accept', 'text/html').expect(200);
    expect(printed.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(jobsOn(printed.text)).toEqual(items.map((item) => item.displayJobId));
    expect(printed.text).toContain(
      '<strong>Printable full receipt.</strong> This page lists all 1,201 jobs of receipt',
    );
    expect(printed.text).toContain('data-print-on-load');
    expect(printed.text).toContain(`<a href="/me/receipts/${id}">Back to the receipt</a>`);
    expect(printed.text).toContain('Total (1,201 jobs)');
    expect(printed.text).toContain(`<strong>${formatted(receipt.total)} THB</strong> for 1,201 jobs`);
    expect(printed.text).not.toContain('rel="next"');
    expect(printed.text.trimEnd().endsWith('</html>')).toBe(true);

    // The admin's printout is the same list, linked from the admin's receipt page.
    const adminPage = await admin.get(`/admin/receipts/${id}`).set('Accept', 'text/html').expect(200);
    expect(adminPage.text).toContain(`href="/admin/receipts/${id}/print" data-print-full>`);
    const adminPrinted = await admin.get(`/admin/receipts/${id}/print`).set('Accept', 'text/html').expect(200);
    expect(jobsOn(adminPrinted.text)).toEqual(items.map((item) => item.displayJobId));
    expect(adminPrinted.text).toContain(`<a href="/admin/receipts/${id}">Back to the receipt</a>`);
  });

  it('keeps printing in place on a receipt of one page, and its printout lists the same jobs', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9201' },
      { user: 'alice', end: '2025-09-11T03:00:00Z', jobId: '9202' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    const page = await alice.get(`/me/receipts/${id}`).set('Accept', 'text/html').expect(200);
    // Shown by print.js; without JavaScript the line beside it says to use the browser's Print.
    expect(page.text).toContain('<button type="button" class="secondary" data-print hidden>Print</button>');
    expect(page.text).toContain("<span data-print-hint>To print, use your browser's Print");
    expect(page.text).not.toContain('data-print-full');
    const printed = await alice.get(`/me/receipts/${id}/print`).set('Accept', 'text/html').expect(200);
    expect(jobsOn(printed.text)).toEqual(['9201', '9202']);
  });

  it("answers another user's receipt, an unknown one and a bad id as the receipt's own page does", async () => {
    await buildJobs(db, [{ user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9301' }]);
    const id = await billAliceUpTo('2025-09-15');
    const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');
    for (const path of [`/me/receipts/${id}`, `/me/receipts/${id}/print`]) {
      expect((await json(bob, path).expect(404)).body, path).toEqual({
        error: `Receipt #${id} was not found.`,
        code: 404,
      });
    }
    expect((await json(alice, '/me/receipts/999999/print').expect(404)).body.error).toBe(
      'Receipt #999999 was not found.',
    );
    expect((await json(alice, `/me/receipts/0${id}/print`).expect(400)).body.error).toMatch(/^receipt id: /);
    await json(alice, `/admin/receipts/${id}/print`).expect(403);
    await json(admin, '/admin/receipts/999999/print').expect(404);
    const signedOut = await request(app).get(`/me/receipts/${id}/print`).set('Accept', 'text/html');
    expect(signedOut.status).toBe(302);
  });
});

describe("a billed item's cost with more decimals than the currency's minor unit", () => {
  it('is rounded half-up to the minor unit alike on the usage page, the usage CSV, the receipt and its CSV', async () => {
    await buildJobs(db, [
      { user: 'alice', end: '2025-09-10T03:00:00Z', jobId: '9401' },
      { user: 'alice', end: '2025-09-11T03:00:00Z', jobId: '9402' },
    ]);
    const id = await billAliceUpTo('2025-09-15');
    // As the bench data generator writes them (4 decimals); 0.0050 is a tie at the minor unit.
    await db.pool.query(
      "UPDATE receipt_items SET cost = CASE display_job_id WHEN '9401' THEN 1.23456 ELSE 0.0050 END WHERE receipt_id = $1",
      [id],
    );
    const expected = ['1.23', '0.01'];
    // My usage and a receipt's items both label their cost cards with the currency ("Cost (THB)").
    const costsOn = (html: string) =>
      [...html.matchAll(/data-label="Cost \(THB\)" class="num">([^<]*)</g)].map((m) => m[1]);
    const window = 'start=2025-09-08&end=2025-09-20';
    expect(costsOn((await alice.get(`/me?${window}&sort=end&dir=asc`).expect(200)).text)).toEqual(expected);
    const billed = (await alice.get(`/me?${window}&view=billed`).expect(200)).text;
    // Billed lists a receipt's jobs newest first.
    expect(costsOn(billed)).toEqual([...expected].reverse());
    const usageCsv = await csvLinesOf(alice, `/me.csv?${window}`);
    expect(usageCsv.slice(1).map((line) => line.split(',')[14])).toEqual(expected);
    expect(costsOn((await alice.get(`/me/receipts/${id}`).expect(200)).text)).toEqual(expected);
    expect(costsOn((await alice.get(`/me/receipts/${id}/print`).expect(200)).text)).toEqual(expected);
    const itemsCsv = await csvLinesOf(alice, `/me/receipts/${id}/items.csv`);
    expect(itemsCsv.slice(1).map((line) => line.split(',')[6])).toEqual(expected);
  });
});
