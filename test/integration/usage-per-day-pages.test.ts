import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Per day over a long window listed every day of it: a year was 366 rows on a desktop and 366
 * cards on a phone. It is paged as the Jobs tab is (50 a page, the same pager), with the totals
 * still those of the whole window on every page; the CSV stays whole. The days are listed newest
 * first, as Jobs lists its jobs: page 1 of a year's window showed its oldest 50 days, a year ago.
 */
let db: TestDatabase;
let alice: Agent;
let bob: Agent;
// 2025-09-20 12:00 in Bangkok.
const now = () => new Date('2025-09-20T05:00:00Z');
const YEAR = 'start=2024-09-20&end=2025-09-20';
const YEAR_HTML = YEAR.replace('&', '&amp;');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  // The window's first day, a day in the middle and its last day (noon in Bangkok).
  await buildJobs(db, [
    { user: 'alice', jobId: '1', end: '2024-09-20T05:00:00Z', totalCpuSec: '3600' },
    { user: 'alice', jobId: '2', end: '2025-03-01T05:00:00Z', totalCpuSec: '3600' },
    { user: 'alice', jobId: '3', end: '2025-09-20T04:00:00Z', totalCpuSec: '3600' },
  ]);
  // Bob's last job ends after today, 2025-09-25 (a cluster whose clock runs ahead of the app's).
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildJobs(db, [
    { user: 'bob', jobId: '11', end: '2025-09-10T05:00:00Z', totalCpuSec: '3600' },
    { user: 'bob', jobId: '12', end: '2025-09-25T05:00:00Z', totalCpuSec: '3600' },
  ]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  bob = await signInAs(app, 'bob', 'bob-password');
});
afterAll(() => db?.drop());

const html = (path: string) => alice.get(path).set('Accept', 'text/html');
const json = (path: string) => alice.get(path).set('Accept', 'application/json');
const totalRowOf = (page: string) => /<tfoot>([\s\S]*?)<\/tfoot>/.exec(page)?.[1] ?? '';

describe('Per day over a year', () => {
  it('shows 50 days a page under the pager the Jobs tab has, the totals of the whole window on each', async () => {
    const first = (await html(`/me?${YEAR}&view=aggregate`).expect(200)).text;
    const days = cellsLabelled(first, 'Day');
    expect(days).toHaveLength(50);
    expect(days[0]).toBe('2025-09-20');
    expect(days.at(-1)).toBe('2025-08-02');
    expect(first).toContain('<nav class="pagination" aria-label="Pages">');
    expect(first).toContain('<span>Page 1 of 8</span>');
    expect(first).toContain(`href="/me?${YEAR_HTML}&amp;view=aggregate&amp;page=2" rel="next"`);
    expect(totalRowOf(first)).toContain('<td data-label="Jobs" class="num">3</td>');
    expect(first).toContain(
      "<p>Days 2025-09-20 back to 2025-08-02, newest first (page 1 of 8, 50 days a page). The total under them is the whole window's 366 days.</p>",
    );

    const last = (await html(`/me?${YEAR}&view=aggregate&page=8`).expect(200)).text;
    const lastDays = cellsLabelled(last, 'Day');
    expect(lastDays).toHaveLength(16);
    expect(lastDays[0]).toBe('2024-10-05');
    expect(lastDays.at(-1)).toBe('2024-09-20');
    expect(last).toContain('<span>Page 8 of 8</span>');
    expect(last).toContain(`href="/me?${YEAR_HTML}&amp;view=aggregate&amp;page=7" rel="prev"`);
    expect(totalRowOf(last)).toBe(totalRowOf(first));
    // The tabs go to the first page of their view.
    expect(last).toContain(`href="/me?${YEAR_HTML}&amp;view=detail"`);
  });

  it('answers a page past the last with a 404 saying how many days and pages, and a link to page 1', async () => {
    const past = (await html(`/me?${YEAR}&view=aggregate&page=9`).expect(404)).text;
    expect(past).toContain('This window (2024-09-20 to 2025-09-20) has 366 days, on 8 pages; there is no page 9.');
    expect(past).toContain(`<a href="/me?${YEAR_HTML}&amp;view=aggregate">Go to page 1</a>`);
    const refused = await json(`/me?${YEAR}&view=aggregate&page=9`).expect(404);
    expect(refused.body.error).toBe(
      'This window (2024-09-20 to 2025-09-20) has 366 days, on 8 pages; there is no page 9.',
    );
  });

  it('pages the JSON as the page, with the paging and the totals of the whole window', async () => {
    const body = (await json(`/me?${YEAR}&view=aggregate&page=2`).expect(200)).body;
    expect(body).toMatchObject({ view: 'aggregate', page: 2, pageCount: 8, count: 366 });
    expect(body.days).toHaveLength(50);
    expect(body.days[0].day).toBe('2025-08-01');
    expect(body.days.at(-1).day).toBe('2025-06-13');
    expect(body.totals.jobs).toBe(3);
  });

  it('keeps a window of 50 days or fewer on one page, without a pager', async () => {
    const page = (await html('/me?start=2025-08-02&end=2025-09-20&view=aggregate').expect(200)).text;
    expect(cellsLabelled(page, 'Day')).toHaveLength(50);
    expect(page).not.toContain('class="pagination"');
    const body = (await json('/me?start=2025-08-02&end=2025-09-20&view=aggregate').expect(200)).body;
    expect(body).toMatchObject({ page: 1, pageCount: 1, count: 50 });
  });

  it('names a last page of one day as that day, not as days from it back to itself', async () => {
    const page = (await html('/me?start=2025-08-01&end=2025-09-20&view=aggregate&page=2').expect(200)).text;
    expect(cellsLabelled(page, 'Day')).toEqual(['2025-08-01']);
    expect(page).toContain(
      "<p>Day 2025-08-01 (page 2 of 2, 50 days a page). The total under it is the whole window's 51 days.</p>",
    );
  });

  it('still exports every job of the window as CSV', async () => {
    const csv = (await alice.get(`/me.csv?${YEAR}`).expect(200)).text;
    expect(csv.trimEnd().split('\n')).toHaveLength(4);
  });
});

describe('Per day of a window that runs past today', () => {
  // A researcher's "this month", 2025-09-01 to 2025-09-30 on 2025-09-20: the table began with ten
  // days still to come, all zero, above today; a window to 2025-12-31 had a whole first page of them.
  it('lists the days from today back, and says the days after today are not listed', async () => {
    const month = (await html('/me?start=2025-09-01&end=2025-09-30&view=aggregate').expect(200)).text;
    const days = cellsLabelled(month, 'Day');
    expect(days[0]).toBe('2025-09-20');
    expect(days).toHaveLength(20);
    expect(month).toContain(
      '<p class="muted">The days <span class="nowrap">2025-09-21</span> to <span class="nowrap">2025-09-30</span> are not listed: they are after today, and no job has ended on them yet.</p>',
    );
    expect(totalRowOf(month)).toContain('<td data-label="Jobs" class="num">1</td>');

    const ahead = (await html('/me?start=2025-08-01&end=2025-12-31&view=aggregate').expect(200)).text;
    expect(cellsLabelled(ahead, 'Day')[0]).toBe('2025-09-20');
    expect(ahead).toContain(
      "<p>Days 2025-09-20 back to 2025-08-02, newest first (page 1 of 2, 50 days a page). The total under them is the whole window's 153 days.</p>",
    );
    const past = await json('/me?start=2025-08-01&end=2025-12-31&view=aggregate&page=3').expect(404);
    expect(past.body.error).toBe(
      'This window (2025-08-01 to 2025-12-31) has 51 days up to today (2025-09-20), on 2 pages; there is no page 3.',
    );

    const tomorrow = (await html('/me?start=2025-09-14&end=2025-09-21&view=aggregate').expect(200)).text;
    expect(tomorrow).toContain(
      'The day <span class="nowrap">2025-09-21</span> is not listed: it is after today, and no job has ended on it yet.',
    );
  });

  it('lists the same days in its JSON, the window totals unchanged', async () => {
    const body = (await json('/me?start=2025-09-01&end=2025-09-30&view=aggregate').expect(200)).body;
    expect(body).toMatchObject({ page: 1, pageCount: 1, count: 20 });
    expect(body.days[0].day).toBe('2025-09-20');
    expect(body.totals.jobs).toBe(1);
  });

  it('lists every day of a window that ends today or earlier, as before', async () => {
    const week = (await html('/me?start=2025-09-14&end=2025-09-20&view=aggregate').expect(200)).text;
    expect(cellsLabelled(week, 'Day')).toHaveLength(7);
    expect(week).not.toContain('not listed');
  });

  it('names only days of the window as not listed when the whole window is after today', async () => {
    // A To typed alone a week ahead (2025-10-07: the 7 days 2025-10-01 to 2025-10-07) said "The days
    // after today (2025-09-21 to 2025-10-07) are not listed", ten days before the window it showed.
    const ahead = (await html('/me?start=2025-10-01&end=2025-10-07&view=aggregate').expect(200)).text;
    expect(cellsLabelled(ahead, 'Day')).toEqual([]);
    expect(ahead).toContain(
      '<p class="muted">The days <span class="nowrap">2025-10-01</span> to <span class="nowrap">2025-10-07</span> are not listed: they are after today, and no job has ended on them yet.</p>',
    );
    expect(ahead).not.toContain('2025-09-21');

    // Its page 2 said the window "has 0 days up to today (2025-09-20)", a today before the window.
    const past = await json('/me?start=2025-10-01&end=2025-10-07&view=aggregate&page=2').expect(404);
    expect(past.body.error).toBe(
      'This window (2025-10-01 to 2025-10-07) is after today (2025-09-20), so none of its days is listed yet; there is no page 2.',
    );
  });

  it('names as not listed only the days after the last one listed, when a job ended after today', async () => {
    // A clock running behind the cluster's: a job of tomorrow is listed with the days up to it, and
    // the days said not to be listed start after it (they started at tomorrow, a day that is listed).
    await buildUser(db.prisma, { username: 'carol', password: 'carol-password' });
    await buildJobs(db, [{ user: 'carol', jobId: '41', end: '2025-09-22T05:00:00Z', totalCpuSec: '3600' }]);
    const carol = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now }), 'carol', 'carol-password');
    const page = (await carol.get('/me?start=2025-09-14&end=2025-09-30&view=aggregate').set('Accept', 'text/html'))
      .text;
    expect(cellsLabelled(page, 'Day')[0]).toBe('2025-09-22');
    expect(page).toContain(
      '<p class="muted">The days <span class="nowrap">2025-09-23</span> to <span class="nowrap">2025-09-30</span> are not listed: they are after today, and no job has ended on them yet.</p>',
    );
  });
});

describe('Per day of a window with a job that ends after today', () => {
  // A cluster's clock ahead of the app's, or end times in the future in the data: the days up to
  // that job are listed, and the note said the days from tomorrow on were not listed, no job having
  // ended on them, above a table that listed them, the job's day among them.
  const NOTE = /<p class="muted">[^<]*(?:<span class="nowrap">[^<]*<\/span>[^<]*)*not listed[^<]*<\/p>/;
  const noteOf = (page: string) => NOTE.exec(page)?.[0] ?? '';

  it('lists the days up to that job, and says only the days after it are not listed', async () => {
    const month = (await bob.get('/me?start=2025-09-01&end=2025-09-30&view=aggregate').expect(200)).text;
    const days = cellsLabelled(month, 'Day');
    expect(days[0]).toBe('2025-09-25');
    expect(days).toHaveLength(25);
    expect(noteOf(month)).toBe(
      '<p class="muted">The days <span class="nowrap">2025-09-26</span> to <span class="nowrap">2025-09-30</span> are not listed: they are after today, and no job has ended on them yet.</p>',
    );

    const oneLeft = (await bob.get('/me?start=2025-09-01&end=2025-09-26&view=aggregate').expect(200)).text;
    expect(noteOf(oneLeft)).toBe(
      '<p class="muted">The day <span class="nowrap">2025-09-26</span> is not listed: it is after today, and no job has ended on it yet.</p>',
    );

    // Up to the job's day, every day is listed: no note.
    const toTheJob = (await bob.get('/me?start=2025-09-01&end=2025-09-25&view=aggregate').expect(200)).text;
    expect(cellsLabelled(toTheJob, 'Day')).toHaveLength(25);
    expect(toTheJob).not.toContain('not listed');
  });

  it('names only days of the window when it starts after today', async () => {
    const october = (await bob.get('/me?start=2025-10-01&end=2025-10-31&view=aggregate').expect(200)).text;
    expect(cellsLabelled(october, 'Day')).toEqual([]);
    expect(noteOf(october)).toBe(
      '<p class="muted">The days <span class="nowrap">2025-10-01</span> to <span class="nowrap">2025-10-31</span> are not listed: they are after today, and no job has ended on them yet.</p>',
    );
  });

  it('pages to that job on the page, its JSON and its HEAD alike, and a page past the last names the day listed to', async () => {
    // 2025-08-05 to 2025-09-20 is 47 days, one page; to the job's day, 52 days, two.
    const window = 'start=2025-08-05&end=2025-12-31&view=aggregate';
    const second = (await bob.get(`/me?${window}&page=2`).expect(200)).text;
    expect(cellsLabelled(second, 'Day')).toEqual(['2025-08-06', '2025-08-05']);
    const body = (await bob.get(`/me?${window}`).set('Accept', 'application/json').expect(200)).body;
    expect(body).toMatchObject({ page: 1, pageCount: 2, count: 52 });
    expect(body.days[0].day).toBe('2025-09-25');
    expect((await bob.head(`/me?${window}&page=2`)).status).toBe(200);
    expect((await bob.head(`/me?${window}&page=3`)).status).toBe(404);

    const past = await bob.get(`/me?${window}&page=3`).set('Accept', 'application/json').expect(404);
    expect(past.body.error).toBe(
      'This window (2025-08-05 to 2025-12-31) has 52 days up to 2025-09-25, its last day with a job, on 2 pages; there is no page 3.',
    );
  });
});
