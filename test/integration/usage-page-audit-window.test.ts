import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The audit log reads its window as from/to, every other page as start/end. The usage exports and the
 * billing list refuse from/to by name; the usage pages ignored them as unknown fields, so
 * /admin/usage?from=2026-12-01&to=2026-12-02 (or /me?from=…) answered 200 with the last 7 days,
 * read as the window asked for. They are refused with the exports' words, on the page, as JSON and on HEAD.
 */
let db: TestDatabase;
let alice: Agent;
let boss: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [{ user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' }]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

const NOT_READ_HERE =
  'is not read here: this page reads its window from start and end; from and to are read by the audit log only';

describe("the audit log's from and to on a usage page", () => {
  it.each([
    ['/me', () => alice],
    ['/admin/usage', () => boss],
  ])('%s refuses them by name on the page, as JSON and on HEAD, and still reads start and end', async (path, agent) => {
    const json = await agent().get(`${path}?from=2025-08-01&to=2025-08-31`).set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: `from: ${NOT_READ_HERE}; to: ${NOT_READ_HERE}`, code: 400 });

    const page = await agent().get(`${path}?start=2025-09-01&to=2025-08-31`).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`to: ${NOT_READ_HERE}`);
    // The dates typed that are read stay in the form.
    expect(page.text).toMatch(/name="start"[^>]*value="2025-09-01"|value="2025-09-01"[^>]*name="start"/);

    for (const accept of ['text/html', 'application/json']) {
      const head = await agent().head(`${path}?from=2025-08-01`).set('Accept', accept);
      expect(head.status, accept).toBe(400);
    }

    // start and end still choose the window.
    const read = await agent().get(`${path}?start=2025-09-01&end=2025-09-19`).set('Accept', 'application/json');
    expect(read.status).toBe(200);
    expect(read.body.window).toMatchObject({ start: '2025-09-01', end: '2025-09-19' });
  });
});
