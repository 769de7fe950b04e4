import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * GET /admin/audit/verify walked the whole audit chain, so a cross-site link an admin clicked (or a
 * browser's prefetch) set off its full cost. The walk is now a POST with the CSRF token (the audit
 * page's button); a GET shows the page and the last verdict without reading the log: with the table
 * renamed away it still answers, while the POST fails.
 */
let db: TestDatabase;
let admin: Agent;
let researcher: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  await buildUser(db.prisma, { username: 'rae', password: 'rae-password' });
  const app = buildTestApp(db);
  admin = await signInAs(app, 'chief', 'chief-password');
  researcher = await signInAs(app, 'rae', 'rae-password');
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

describe('GET /admin/audit/verify', () => {
  it('does not walk the chain: it answers with the log out of reach, where the POST fails', async () => {
    const token = csrfTokenIn((await admin.get('/admin/audit').set('Accept', 'text/html').expect(200)).text);
    await withoutAuditLog(async () => {
      const page = await admin.get('/admin/audit/verify').set('Accept', 'text/html');
      expect(page.status).toBe(200);
      expect(page.text).toContain('Verify the chain now');
      // Not "never verified": with several workers another one may hold a verdict this one does not.
      expect(page.text).toContain('No recent result to show: verify the chain now to see its state.');
      const json = await admin.get('/admin/audit/verify').set('Accept', 'application/json');
      expect(json.status).toBe(200);
      expect(json.body).toEqual({ status: 'unverified' });
      // The control: the POST does read the log.
      const walked = await admin
        .post('/admin/audit/verify')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token);
      expect(walked.status).not.toBe(200);
    });
  });

  it('shows the last verdict, with when it was reached', async () => {
    const verdict = await postAuditVerify(admin, 'application/json');
    expect(verdict.body).toMatchObject({ status: 'ok' });
    const last = await admin.get('/admin/audit/verify').set('Accept', 'application/json').expect(200);
    expect(last.body).toMatchObject({ ...verdict.body, verifiedAt: expect.any(String) });
    const page = await admin.get('/admin/audit/verify').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Last verified');
  });
});

describe('POST /admin/audit/verify', () => {
  it('is refused without the CSRF token, as a cross-site form would send it', async () => {
    const refused = await admin.post('/admin/audit/verify').set('Accept', 'application/json');
    expect(refused.status).toBe(403);
    const form = await admin.post('/admin/audit/verify').set('Accept', 'text/html').type('form').send({});
    expect(form.status).toBe(403);
  });

  it("is the audit page's button, which sends the token as a form", async () => {
    const log = await admin.get('/admin/audit').set('Accept', 'text/html').expect(200);
    expect(log.text).toMatch(/<form method="post" action="\/admin\/audit\/verify"/);
    const page = await admin
      .post('/admin/audit/verify')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: csrfTokenIn(log.text) });
    expect(page.status).toBe(200);
    expect(page.text).toContain('OK:');
  });

  it('is for admins only', async () => {
    const token = await csrfTokenOf(researcher);
    const refused = await researcher
      .post('/admin/audit/verify')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token);
    expect(refused.status).toBe(403);
  });
});
