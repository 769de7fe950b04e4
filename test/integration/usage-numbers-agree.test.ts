import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers, type JobSpec } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The same user's jobs over the same window, read the ways a researcher and an admin read them:
 * My usage's Per day view (page and JSON), /me.csv and Admin → Usage must give the same figures,
 * decimal-exact, however large the hours (a 4 TB-memory job of a month is millions of GB-hours).
 */

let db: TestDatabase;
let alice: Agent;
let bob: Agent;
let admin: Agent;
// 2026-04-20 12:00 in Berlin.
const now = () => new Date('2026-04-20T10:00:00Z');
// November to March: two month ends a year apart, and Berlin's clocks going back and forward.
const WINDOW = 'start=2025-11-01&end=2026-03-31';
const DAYS = 151;

/** Huge-memory, GPU jobs with odd elapsed times: hours of 7-10 digits before the 6 decimals. */
function hugeJobs(): JobSpec[] {
  const specs: JobSpec[] = [];
  for (let day = 1; day <= DAYS; day++) {
    for (let index = 0; index < 8; index++) {
      const end = new Date(Date.UTC(2025, 10, day, index * 3, 17, 29));
      specs.push({
        user: 'alice',
        name: `big-${day}-${index}`,
        end,
        elapsedSec: 2_591_999 - day * 7919 - index * 52_361,
        allocCpus: 256,
        allocMemMb: 12_582_912 + day * 3 + index,
        allocGpus: 8,
        totalCpuSec: String(((day * 104_729 + index * 7) % 9_999_999) / 1000 + 600_000_000.123),
        stepMemGbHours: null,
      });
    }
  }
  return specs;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [
    { name: 'mu', isDefault: true, cpu: '0.333333', gpu: '12.5', mem: '0.000777' },
    { name: 'gov', cpu: '0.80', gpu: '18.00', mem: '0.08' },
    { name: 'private', cpu: '1.50', gpu: '35.00', mem: '0.15' },
  ]);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'root', password: 'root-password', role: 'admin' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildJobs(db, hugeJobs());
  await buildJobs(db, [
    { user: 'bob', jobId: '901', end: '2026-03-10T12:00:00Z' },
    { user: 'bob', jobId: '902', end: '2026-03-20T12:00:00Z' },
  ]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Europe/Berlin' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  admin = await signInAs(app, 'root', 'root-password');
});
afterAll(() => db?.drop());

const HOURS_COLUMNS = ['cpu_hours', 'gpu_hours', 'mem_gb_hours'] as const;

/** The sums of a usage CSV's hours and cost columns, as decimals. */
function sumsOfCsv(text: string) {
  const [header, ...lines] = text.trim().split('\n');
  const columns = (header ?? '').split(',');
  const sums = {
    cpu_hours: new Prisma.Decimal(0),
    gpu_hours: new Prisma.Decimal(0),
    mem_gb_hours: new Prisma.Decimal(0),
  };
  let cost = new Prisma.Decimal(0);
  for (const line of lines) {
    const cells = line.split(',');
    for (const column of HOURS_COLUMNS) {
      sums[column] = sums[column].plus(cells[columns.indexOf(column)] ?? '0');
    }
    cost = cost.plus(cells[columns.indexOf('cost')] ?? '0');
  }
  return { jobs: lines.length, ...sums, cost };
}

describe('one user and one window, read every way', () => {
  it("Per day's totals (JSON) are the CSV's sums to the last of the six decimals", async () => {
    const csv = await alice.get(`/me.csv?${WINDOW}`).expect(200);
    const sums = sumsOfCsv(csv.text);
    expect(sums.jobs).toBe(DAYS * 8);
    const page = (await alice.get(`/me?view=aggregate&${WINDOW}`).set('Accept', 'application/json').expect(200)).body;
    expect(page.totals).toEqual({
      jobs: DAYS * 8,
      cpuHours: sums.cpu_hours.toFixed(6),
      gpuHours: sums.gpu_hours.toFixed(6),
      memGbHours: sums.mem_gb_hours.toFixed(6),
      cost: sums.cost.toFixed(2),
    });
    // And each day's hours are its jobs' sum, exactly (page 1 starts at the window's last day, newest first).
    const lastDay = csv.text
      .trim()
      .split('\n')
      .filter((line) => line.includes(`,big-${DAYS}-`));
    expect(page.days[0].day).toBe('2026-03-31');
    expect(page.days[0].memGbHours).toBe(
      sumsOfCsv(`${csv.text.split('\n')[0]}\n${lastDay.join('\n')}`).mem_gb_hours.toFixed(6),
    );
  });

  it("Admin → Usage's row for the user is the user's own Per day totals", async () => {
    const mine = (await alice.get(`/me?view=aggregate&${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    const totalRow = mine.match(/<tfoot><tr class="labelled"><th scope="row">Total<\/th>(.*?)<\/tr>/)?.[1] ?? '';
    const adminPage = (await admin.get(`/admin/usage?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    const userRow = adminPage.match(/<tr><td data-label="User"><a [^>]*>alice<\/a><\/td>(.*?)<\/tr>/)?.[1] ?? '';
    const cell = (row: string, label: string) => row.match(new RegExp(`data-label="${label}"[^>]*>([^<]*)<`))?.[1];
    // Both label the cost cards with the currency, as their headers do (a phone shows the labels).
    for (const [label, mineLabel] of [
      ['Jobs', 'Jobs'],
      ['CPU h', 'CPU h'],
      ['GPU h', 'GPU h'],
      ['Mem GB·h', 'Mem GB·h'],
      ['Cost \\(THB\\)', 'Cost \\(THB\\)'],
    ] as const) {
      expect(cell(userRow, label), label).toBeDefined();
      expect(cell(userRow, label), label).toBe(cell(totalRow, mineLabel));
    }
  });

  it("Admin → Usage names the tier the user's own page names for unbilled jobs, and the receipt's for billed ones, after a move to another tier mid-month", async () => {
    // Bob's first job is billed on mu; then an admin moves him to gov.
    await bob
      .post('/me/receipt')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(bob, '/me'))
      .send({ before: '2026-03-15' })
      .expect(201);
    await admin
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin, '/admin/rates'))
      .send({ username: 'bob', tier: 'gov' })
      .expect(200);
    const own = (await bob.get(`/me?view=aggregate&${WINDOW}`).set('Accept', 'application/json').expect(200)).body;
    expect(own.tier.name).toBe('gov');
    const adminPage = (await admin.get(`/admin/usage?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    // Job 902, unbilled, is under bob's tier now; job 901 under the tier its receipt billed it at.
    const tierCellOf = (page: string) =>
      (page.match(/<tr><td data-label="User"><a [^>]*>bob<\/a><\/td><td data-label="Tier"[^>]*>(.*?)<\/td>/)?.[1] ?? '')
        .replace(/<br>/g, ' | ')
        .replace(/<[^>]*>/g, '');
    expect(tierCellOf(adminPage)).toBe('gov (current, 1 job) | mu (billed, 1 job)');
    // The same with the admin's user filter, which prices through one user's rates.
    const filtered = (await admin.get(`/admin/usage?${WINDOW}&user=bob`).set('Accept', 'text/html').expect(200)).text;
    expect(tierCellOf(filtered)).toBe('gov (current, 1 job) | mu (billed, 1 job)');
    const json = (await admin.get(`/admin/usage?${WINDOW}&user=bob`).set('Accept', 'application/json').expect(200))
      .body;
    expect(json.users[0]).toMatchObject({
      username: 'bob',
      tier: 'gov',
      tiers: [
        { tier: 'gov', billed: false, jobs: 1 },
        { tier: 'mu', billed: true, jobs: 1 },
      ],
    });
    // The CSV says the same of each job: its tier, and which kind of tier it is.
    const csv = (await admin.get(`/admin/usage.csv?${WINDOW}&user=bob`).expect(200)).text.trim().split('\n');
    const columns = (csv[0] ?? '').split(',');
    const tierAndBasis = csv.slice(1).map((line) => {
      const cells = line.split(',');
      return [cells[columns.indexOf('job_id')], cells[columns.indexOf('tier')], cells[columns.indexOf('tier_basis')]];
    });
    expect(tierAndBasis).toEqual([
      ['901', 'mu', 'billed'],
      ['902', 'gov', 'current'],
    ]);
  });
});
