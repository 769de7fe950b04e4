import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A role is read in any case on /admin/users, as `npm run user:create -- --role Admin` reads it and as
 * a username is read: a script's `"role": "Admin"` was refused there while `"username": "Zoe"` made zoe.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('the role on /admin/users', () => {
  it('creates a user with the role in any case, changes a role given in any case, and refuses another role', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'rolechief', role: 'admin', password: 'rolechief-password' });
    const agent = await signInAs(app, 'rolechief', 'rolechief-password');
    const post = async (path: string, body: Record<string, string>) =>
      agent
        .post(path)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send(body);

    const created = await post('/admin/users', { username: 'casedweb', role: 'Admin' });
    expect(created.status, created.text).toBe(201);
    const user = await db.prisma.user.findUniqueOrThrow({ where: { username: 'casedweb' } });
    expect(user.role).toBe('admin');

    const changed = await post(`/admin/users/${user.id}/role`, { role: 'USER' });
    expect(changed.status, changed.text).toBe(200);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).role).toBe('user');

    const refused = await post('/admin/users', { username: 'notmadeweb', role: 'Superuser' });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toContain('role: must be one of admin, user');
    expect(await db.prisma.user.count({ where: { username: 'notmadeweb' } })).toBe(0);
  });
});
