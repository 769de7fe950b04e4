import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * HEAD /admin/usage (a link checker, `curl -I`) summed every user's jobs of the window, up to a year
 * of them, as its GET does, and sent the page to nothing. It now checks the window and filters as the
 * GET does (the same 400) and answers the headers without reading the jobs, as a CSV export's HEAD
 * does: with slurm_jobs renamed away its GET fails, while its HEAD still answers.
 */
let db: TestDatabase;
let admin: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [{ user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' }]);
  admin = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now }), 'boss', 'boss-password');
});
afterAll(() => db?.drop());

async function withoutJobs<T>(body: () => Promise<T>): Promise<T> {
  await db.pool.query('ALTER TABLE slurm_jobs RENAME TO slurm_jobs_away');
  try {
    return await body();
  } finally {
    await db.pool.query('ALTER TABLE slurm_jobs_away RENAME TO slurm_jobs');
  }
}

const YEAR = '/admin/usage?start=2024-09-21&end=2025-09-20';

describe('HEAD /admin/usage', () => {
  it.each([
    ['text/html', 'text/html; charset=utf-8'],
    ['application/json', 'application/json; charset=utf-8'],
  ])('Accept %s: the status and type of its GET, without summing the jobs', async (accept, type) => {
    const got = await admin.get(YEAR).set('Accept', accept).expect(200);
    expect(got.headers['content-type']).toBe(type);
    await withoutJobs(async () => {
      const head = await admin.head(YEAR).set('Accept', accept);
      expect(head.status).toBe(200);
      expect(head.headers['content-type']).toBe(type);
      expect(head.text ?? '').toBe('');
      // The control: its GET does read the jobs.
      const failed = await admin.get(YEAR).set('Accept', accept);
      expect(failed.status).not.toBe(200);
    });
  });

  it.each([
    ['a window over 366 days', '/admin/usage?start=2024-01-01&end=2025-09-20'],
    ['a start after the end', '/admin/usage?start=2025-09-20&end=2025-09-01'],
    ['a date that is not one', '/admin/usage?start=2025-02-30'],
  ])('is refused as its GET is: %s', async (_, path) => {
    for (const accept of ['application/json', 'text/html', '*/*']) {
      const got = await admin.get(path).set('Accept', accept);
      expect(got.status).toBe(400);
      const head = await admin.head(path).set('Accept', accept);
      expect(head.status).toBe(400);
      // The page with the reason and the filters, as its GET shows it: it was the error page's type and length.
      expect(head.headers['content-type'], accept).toBe(got.headers['content-type']);
      expect(head.headers['content-length'], accept).toBe(got.headers['content-length']);
    }
  });
});
