import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Per day view puts each job on the local day (APP_TZ) its Jobs view and CSV count it in.
 * `CET`, `MET`, `EET` and `WET` are zones with summer time to the app (Intl: CET is Europe/Brussels,
 * 00:30 CEST at 22:30 UTC on 1 July), but PostgreSQL reads those names as its fixed-offset abbreviations
 * (CET always UTC+01:00): the days were summed in SQL with `AT TIME ZONE`, so a job the window counted
 * (it ended 00:30 on 2 July) was summed on 1 July, outside it, and the day and the totals said 0 jobs
 * where Jobs and the CSV said 1.
 */

let db: TestDatabase;
const now = () => new Date('2026-11-20T10:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [{ name: 'mu', isDefault: true, cpu: '0.50', gpu: '10.00', mem: '0.01' }]);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [
    // 00:30 on 2 July in CET/MET (CEST); 23:30 on 1 July by a fixed UTC+01:00.
    { user: 'alice', jobId: '701', end: '2026-07-01T22:30:00Z' },
    // 00:30 on 6 July in EET (EEST); 23:30 on 5 July by a fixed UTC+02:00.
    { user: 'alice', jobId: '705', end: '2026-07-05T21:30:00Z' },
    // 00:30 on 9 July in WET (WEST); 23:30 on 8 July by a fixed UTC.
    { user: 'alice', jobId: '706', end: '2026-07-08T23:30:00Z' },
    // 00:30 on 25 October CEST, before the clocks go back; 23:30 on 24 October by a fixed UTC+01:00.
    { user: 'alice', jobId: '702', end: '2026-10-24T22:30:00Z' },
    // 23:59:59.999 on 28 March, CET: the last moment of the day before the clocks go forward.
    { user: 'alice', jobId: '703', end: '2026-03-28T22:59:59.999Z' },
    // 00:00 on 29 March, CET.
    { user: 'alice', jobId: '704', end: '2026-03-28T23:00:00Z' },
  ]);
});
afterAll(() => db?.drop());

interface PerDayJson {
  days: { day: string; jobs: number; cost: string }[];
  totals: { jobs: number; cost: string };
}

async function readAs(timeZone: string, window: string) {
  const app = buildTestApp(db, { env: { APP_TZ: timeZone }, now });
  const alice: Agent = await signInAs(app, 'alice', 'alice-password');
  const perDay = await alice.get(`/me?${window}&view=aggregate`).set('Accept', 'application/json');
  expect(perDay.status, perDay.text.slice(0, 300)).toBe(200);
  const jobs = await alice.get(`/me?${window}`).set('Accept', 'application/json');
  expect(jobs.status, jobs.text.slice(0, 300)).toBe(200);
  const csv = await alice.get(`/me.csv?${window}`);
  expect(csv.status).toBe(200);
  const body = perDay.body as PerDayJson;
  return {
    byDay: Object.fromEntries(body.days.filter((day) => day.jobs > 0).map((day) => [day.day, day.jobs])),
    perDayTotal: body.totals.jobs,
    jobsCount: (jobs.body as { count: number }).count,
    csvRows: csv.text.trim().split('\n').length - 1,
  };
}

describe('Per day in a zone PostgreSQL knows by another meaning', () => {
  it.each([
    ['CET', 'start=2026-07-02&end=2026-07-02', { '2026-07-02': 1 }],
    ['MET', 'start=2026-07-02&end=2026-07-02', { '2026-07-02': 1 }],
    ['EET', 'start=2026-07-06&end=2026-07-06', { '2026-07-06': 1 }],
    ['WET', 'start=2026-07-09&end=2026-07-09', { '2026-07-09': 1 }],
    ['CET', 'start=2026-10-25&end=2026-10-25', { '2026-10-25': 1 }],
    ['CET', 'start=2026-03-28&end=2026-03-29', { '2026-03-28': 1, '2026-03-29': 1 }],
    ['Europe/Berlin', 'start=2026-03-28&end=2026-03-29', { '2026-03-28': 1, '2026-03-29': 1 }],
  ])('APP_TZ=%s, %s: each job on the day its window counts it in', async (timeZone, window, expected) => {
    const read = await readAs(timeZone, window);
    const count = Object.keys(expected).length;
    expect(read.byDay).toEqual(expected);
    expect(read.perDayTotal).toBe(count);
    expect(read.jobsCount).toBe(count);
    expect(read.csvRows).toBe(count);
  });
});
