import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, refusedFormStateOf, visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A From date with no To used to show the 7 days from From: a researcher who asked for "since
 * 1 August" saw 1 to 7 August, and the jobs since were missing without a word. From alone now
 * means From up to today, on the pages and in their CSV exports alike; a From too far back for a
 * page, or one after today, is refused with what to do instead.
 */
let db: TestDatabase;
let alice: Agent;
let boss: Agent;
let jobs: { before: string; first: string; last: string };

// 2025-09-20 12:00 in Bangkok: today is 2025-09-20.
const NOW = new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const [before, first, last] = await buildJobs(db, [
    { user: 'alice', end: '2025-07-31T05:00:00Z' },
    { user: 'alice', end: '2025-08-03T05:00:00Z' },
    { user: 'alice', end: '2025-09-20T04:00:00Z' },
  ]);
  jobs = { before: before ?? '', first: first ?? '', last: last ?? '' };
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => NOW });
  alice = await signInAs(app, 'alice', 'alice-password');
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

const htmlOf = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');
const jsonOf = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json');
const csvJobIds = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[0]);

describe('a From date and no To', () => {
  it('shows From up to today on My usage, its JSON and its CSV', async () => {
    const page = await htmlOf(alice, '/me?start=2025-08-01').expect(200);
    expect(visibleTextOf(page.text)).toContain('2025-08-01 to 2025-09-20');
    expect(page.text).toContain('id="end" name="end" type="date" value="2025-09-20"');
    expect(page.text).toContain('href="/me.csv?start=2025-08-01&amp;end=2025-09-20"');

    const json = await jsonOf(alice, '/me?start=2025-08-01').expect(200);
    expect(json.body.window).toMatchObject({ start: '2025-08-01', end: '2025-09-20' });
    expect(json.body.jobs.map((job: { jobId: string }) => job.jobId)).toEqual([jobs.last, jobs.first]);

    const csv = await alice.get('/me.csv?start=2025-08-01').expect(200);
    expect(csv.headers['content-disposition']).toContain('usage-alice-2025-08-01-2025-09-20.csv');
    expect(csvJobIds(csv.text)).toEqual([jobs.first, jobs.last]);
  });

  it('shows From up to today across users, in both usage exports and in the paid receipts export', async () => {
    const page = await htmlOf(boss, '/admin/usage?start=2025-08-01').expect(200);
    expect(visibleTextOf(page.text)).toContain('2025-08-01 to 2025-09-20');
    expect(page.text).toContain('href="/admin/usage.csv?start=2025-08-01&amp;end=2025-09-20"');
    const all = await boss.get('/admin/usage.csv?start=2025-08-01').expect(200);
    expect(all.headers['content-disposition']).toContain('usage-all-2025-08-01-2025-09-20.csv');
    expect(csvJobIds(all.text)).toEqual([jobs.first, jobs.last]);
    const mine = await boss.get('/admin/my.csv?start=2025-08-01').expect(200);
    expect(mine.headers['content-disposition']).toContain('usage-boss-2025-08-01-2025-09-20.csv');
    const paid = await boss.get('/admin/paid.csv?start=2025-08-01').expect(200);
    expect(paid.headers['content-disposition']).toContain('paid-2025-08-01-2025-09-20.csv');
  });

  it('keeps the 7 days up to a To given alone, and the last 7 days for neither', async () => {
    expect((await jsonOf(alice, '/me?end=2025-08-07').expect(200)).body.window).toMatchObject({
      start: '2025-08-01',
      end: '2025-08-07',
    });
    expect((await jsonOf(alice, '/me').expect(200)).body.window).toMatchObject({
      start: '2025-09-14',
      end: '2025-09-20',
    });
  });

  it('takes a From exactly the longest window back, and refuses one a day further with what to do', async () => {
    expect((await jsonOf(alice, '/me?start=2024-09-20').expect(200)).body.window).toMatchObject({
      start: '2024-09-20',
      end: '2025-09-20',
    });
    const message =
      'Ended from 2024-09-19 up to today (2025-09-20) is 367 days; a page shows at most 366 days. ' +
      'Pick an Ended from on or after 2024-09-20, or an Ended to as well (the CSV export has no limit).';
    const page = await htmlOf(alice, '/me?start=2024-09-19').expect(400);
    expect(visibleTextOf(page.text)).toContain(message);
    // The From typed is kept, marked as the field to change, and To stays empty as it was typed.
    expect(page.text).toContain('id="start" name="start" type="date" value="2024-09-19"');
    expect(page.text).toContain('id="end" name="end" type="date" value=""');
    const state = refusedFormStateOf(page.text);
    expect(state.invalid).toEqual(['start']);
    expect(elementById(page.text, state.describedBy.start ?? '')).toContain(message);
    // The tabs keep the window as typed; the CSV, which has no limit, exports all of it.
    expect(page.text).toContain('href="/me?start=2024-09-19&amp;view=aggregate"');
    expect(page.text).toContain('href="/me.csv?start=2024-09-19&amp;end=2025-09-20"');
    const csv = await alice.get('/me.csv?start=2024-09-19').expect(200);
    expect(csvJobIds(csv.text)).toEqual([jobs.before, jobs.first, jobs.last]);

    expect((await jsonOf(alice, '/me?start=2024-09-19').expect(400)).body).toEqual({ error: message, code: 400 });
    const admin = await htmlOf(boss, '/admin/usage?start=2024-09-19').expect(400);
    expect(visibleTextOf(admin.text)).toContain(message);
    expect(admin.text).toContain('href="/admin/usage.csv?start=2024-09-19&amp;end=2025-09-20"');
  });

  it('refuses a From after today, saying why, on the pages and in every export', async () => {
    const message =
      'Ended from (2025-09-21) is after today (2025-09-20), so nothing has happened since then yet. Pick an Ended from on or before today.';
    const page = await htmlOf(alice, '/me?start=2025-09-21').expect(400);
    expect(visibleTextOf(page.text)).toContain(message);
    expect(refusedFormStateOf(page.text).invalid).toEqual(['start']);
    expect(page.text).toContain('Download CSV (needs a valid window)');
    expect((await jsonOf(alice, '/me?start=2025-09-21').expect(400)).body).toEqual({ error: message, code: 400 });
    expect((await jsonOf(alice, '/me.csv?start=2025-09-21').expect(400)).body).toEqual({ error: message, code: 400 });

    const admin = await htmlOf(boss, '/admin/usage?start=2025-09-21').expect(400);
    expect(visibleTextOf(admin.text)).toContain(message);
    expect((await jsonOf(boss, '/admin/usage.csv?start=2025-09-21').expect(400)).body).toEqual({
      error: message,
      code: 400,
    });
    // The paid receipts export's form comes back with the reason, as for a reversed window.
    const paid = await htmlOf(boss, '/admin/paid.csv?start=2025-09-21').expect(400);
    // Named by that form's labels, Paid from and Paid to.
    expect(paid.text).toContain(
      'Paid receipts not exported. Paid from (2025-09-21) is after today (2025-09-20), so nothing has happened since then yet. Pick a Paid from on or before today.',
    );
    expect(paid.text).toContain('id="paid-start" name="start" type="date" value="2025-09-21"');
  });

  it('still shows a window wholly in the future that has both ends, and today alone', async () => {
    expect((await jsonOf(alice, '/me?start=2025-09-20').expect(200)).body.window).toMatchObject({
      start: '2025-09-20',
      end: '2025-09-20',
    });
    await jsonOf(alice, '/me?start=2025-10-01&end=2025-10-07').expect(200);
  });
});
