import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused `/me.csv` (an edited link, a bookmark of an impossible window) opened in a browser left
 * the researcher on an error page whose only link was "Back to the start page". The browser gets
 * the error page with the message and a way back to My usage at the window typed; a script asking
 * for JSON still gets `{error, code}`; both with the same status.
 */
let db: TestDatabase;
let alice: Agent;
let boss: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

// What Chromium sends when the address is typed or a link followed.
const BROWSER_ACCEPT =
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';

describe('a refused export of my own usage', () => {
  it.each([
    [
      'start=2026-11-30&end=2026-11-01',
      'Ended from (2026-11-30) is after Ended to (2026-11-01).',
      'start (2026-11-30) is after end (2026-11-01).',
    ],
    [
      'start=2025-02-30',
      'Ended from: is not a real calendar date (2025-02-30)',
      'start: is not a real calendar date (2025-02-30)',
    ],
    [
      'start=tomorrow&end=2025-09-01',
      'Ended from: must be a date as YYYY-MM-DD (got &#34;tomorrow&#34;)',
      'start: must be a date as YYYY-MM-DD (got "tomorrow")',
    ],
  ])('/me.csv?%s: the error page to a browser, {error, code} to a script, both 400', async (query, shown, sent) => {
    const page = await alice.get(`/me.csv?${query}`).set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`<p class="lead">${shown}</p>`);
    expect(page.text).toContain(`<a href="/me?${query.replaceAll('&', '&amp;')}">Back to My usage</a>`);
    // It leads to My usage at that window, which says the same beside a form to correct it.
    const back = await alice.get(`/me?${query}`).set('Accept', BROWSER_ACCEPT);
    expect(back.status).toBe(400);
    expect(back.text).toContain(shown);

    for (const accept of ['application/json', undefined]) {
      const request = alice.get(`/me.csv?${query}`);
      const json = await (accept ? request.set('Accept', accept) : request);
      expect(json.status, accept).toBe(400);
      expect(json.headers['content-type'], accept).toMatch(/^application\/json/);
      expect(json.body, accept).toEqual({ error: sent, code: 400 });
    }
  });

  it("/admin/my.csv goes back to the admin's usage page", async () => {
    const page = await boss.get('/admin/my.csv?start=2026-11-30&end=2026-11-01').set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(400);
    expect(page.text).toContain(
      '<a href="/admin/usage?start=2026-11-30&amp;end=2026-11-01">Back to Usage across users</a>',
    );
    const json = await boss.get('/admin/my.csv?start=2026-11-30&end=2026-11-01').set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: 'start (2026-11-30) is after end (2026-11-01).', code: 400 });
  });
});

describe("the audit log's from and to on a usage export", () => {
  // The audit log's window is from/to, every other one start/end. Ignored as unknown fields, a
  // /me.csv?from=2025-08-01&to=2025-08-31 answered 200 with the last 7 days' jobs, named so only in the file name.
  const NOT_READ_HERE =
    'is not read here: this export reads its window from start and end; from and to are read by the audit log only';
  it.each([
    ['/me.csv', () => alice],
    ['/admin/my.csv', () => boss],
    ['/admin/usage.csv', () => boss],
  ])('%s refuses them by name, and still exports start and end', async (path, agent) => {
    const refused = await agent().get(`${path}?from=2025-08-01&to=2025-08-31`).set('Accept', 'application/json');
    expect(refused.status).toBe(400);
    expect(refused.headers['content-disposition']).toBeUndefined();
    expect(refused.body).toEqual({ error: `from: ${NOT_READ_HERE}; to: ${NOT_READ_HERE}`, code: 400 });

    const page = await agent().get(`${path}?to=2025-08-31`).set('Accept', BROWSER_ACCEPT);
    expect(page.status).toBe(400);
    expect(page.text).toContain(`<p class="lead">to: ${NOT_READ_HERE}</p>`);

    const csv = await agent().get(`${path}?start=2025-08-01&end=2025-08-31`).expect(200);
    expect(csv.headers['content-disposition']).toContain('-2025-08-01-2025-08-31.csv');
  });
});
