import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Every admin page a signed-in researcher was refused wrote an admin.forbidden entry: a script
 * repeating one request (or walking /admin/receipts/1, /2, /3 …) appended to the audit log, which
 * nothing may delete, as fast as it could send. Now the first refusal of each user at each admin
 * page (its route, by method) in an hour is audited; every refusal is still counted in
 * auth_forbidden_redirect_total, and each still gets its answer.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const forbiddenEntries = (actor: string) =>
  db.prisma.auditLog.findMany({
    where: { actor, action: 'admin.forbidden' },
    orderBy: { id: 'asc' },
    select: { target: true, details: true },
  });

describe('refused admin pages in the audit log', () => {
  it('holds the first refusal of each user at each page in an hour; the metric counts every one', async () => {
    let clock = new Date('2026-12-04T09:00:00Z');
    const metrics = createMetrics();
    const app = buildTestApp(db, { metrics, now: () => clock });
    const prober = await buildUser(db.prisma, { username: 'prober' });
    const agent = await signInAs(app, 'prober', prober.password);

    for (let attempt = 0; attempt < 5; attempt += 1) {
      await agent.get('/admin/users').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    }
    await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    // Another receipt is the same page: walking the ids is not a new entry each.
    for (const id of [1, 2, 3]) {
      await agent.get(`/admin/receipts/${id}`).set('Accept', 'text/html').expect(302).expect('Location', '/me');
    }
    // A form posted to an admin page is another attempt than reading it.
    const token = await csrfTokenOf(agent);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await agent.post('/admin/users').set('Accept', 'application/json').set('X-CSRFToken', token).send({}).expect(403);
    }
    expect(await forbiddenEntries('prober')).toEqual([
      { target: '/admin/users', details: { method: 'GET' } },
      { target: '/admin/receipts/1', details: { method: 'GET' } },
      { target: '/admin/users', details: { method: 'POST' } },
    ]);
    expect(await metricValue(metrics, 'auth_forbidden_redirect_total')).toBe(12);

    // Another researcher's first refusal is theirs to be audited.
    const other = await buildUser(db.prisma, { username: 'otherprober' });
    const otherAgent = await signInAs(app, 'otherprober', other.password);
    await otherAgent.get('/admin/users').set('Accept', 'text/html').expect(302);
    expect(await forbiddenEntries('otherprober')).toHaveLength(1);

    // Within the hour, still not; past it, the page's next refusal is audited again (the session
    // kept alive meanwhile: it ends after an hour idle).
    clock = new Date('2026-12-04T09:40:00Z');
    await agent.get('/admin/users').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    expect(await forbiddenEntries('prober')).toHaveLength(3);
    clock = new Date('2026-12-04T10:01:00Z');
    await agent.get('/admin/users').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const entries = await forbiddenEntries('prober');
    expect(entries).toHaveLength(4);
    expect(entries[3]).toEqual({ target: '/admin/users', details: { method: 'GET' } });
    expect(await metricValue(metrics, 'auth_forbidden_redirect_total')).toBe(15);
  });
});
