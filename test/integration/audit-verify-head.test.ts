import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * HEAD /admin/audit/verify (a link checker, `curl -I`) walked and verified the whole audit chain,
 * as its GET did (Express answers a HEAD with the GET's route), and sent the verdict to nothing. It
 * now answers the headers without reading the log, as its GET does (the walk is a POST,
 * audit-verify-post.test.ts): with the table renamed away the POST fails, while the HEAD still answers.
 */
let db: TestDatabase;
let admin: Agent;
let researcher: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'ann', password: 'ann-password' });
  const app = buildTestApp(db);
  admin = await signInAs(app, 'boss', 'boss-password');
  researcher = await signInAs(app, 'ann', 'ann-password');
});
afterAll(() => db?.drop());

async function withoutAuditLog<T>(body: () => Promise<T>): Promise<T> {
  await db.pool.query('ALTER TABLE audit_log RENAME TO audit_log_away');
  try {
    return await body();
  } finally {
    await db.pool.query('ALTER TABLE audit_log_away RENAME TO audit_log');
  }
}

describe('HEAD /admin/audit/verify', () => {
  it.each([
    ['text/html', 'text/html; charset=utf-8'],
    ['application/json', 'application/json; charset=utf-8'],
  ])('Accept %s: the type its GET answers, without walking the chain', async (accept, type) => {
    const got = await admin.get('/admin/audit/verify').set('Accept', accept).expect(200);
    const token = await csrfTokenOf(admin);
    expect(got.headers['content-type']).toBe(type);
    await withoutAuditLog(async () => {
      const head = await admin.head('/admin/audit/verify').set('Accept', accept);
      expect(head.status).toBe(200);
      expect(head.headers['content-type']).toBe(type);
      expect(head.text ?? '').toBe('');
      // The control: the POST that verifies does read the log.
      const failed = await admin.post('/admin/audit/verify').set('Accept', accept).set('X-CSRFToken', token);
      expect(failed.status).not.toBe(200);
    });
  });

  it('is still for admins only', async () => {
    const head = await researcher.head('/admin/audit/verify').set('Accept', 'application/json');
    expect(head.status).toBe(403);
  });
});
