import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * An admin demoted by another admin (in another tab, another office) who then sends a form from a
 * page opened while still an admin got "Forbidden (403) Only admins can do this.": neither that the
 * account had lost the role nor that nothing was done.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const AT = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}`;

describe('an admin route refused to a signed-in user who is not an admin', () => {
  it('tells an admin demoted since that their account no longer is one, by whom and when, and that nothing was changed', async () => {
    const app = buildTestApp(db);
    const boss = await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    const zoe = await buildUser(db.prisma, { username: 'zoe', role: 'admin', password: 'zoe-password' });
    const bossAgent = await signInAs(app, 'boss', boss.password);
    const zoeAgent = await signInAs(app, 'zoe', zoe.password);
    // Zoe's old tab: the users page, opened while she was an admin.
    const token = await csrfTokenOf(zoeAgent, '/admin/users');
    await bossAgent
      .post(`/admin/users/${zoe.id}/role`)
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(bossAgent, '/admin/users') })
      .expect(303);

    const form = { username: 'newcomer', role: 'user', csrf_token: token };
    const page = await zoeAgent.post('/admin/users').set('Accept', 'text/html').type('form').send(form).expect(403);
    const said = new RegExp(
      String.raw`Your account is no longer an administrator \(changed by boss at ${AT}\), so nothing was changed\.`,
    );
    expect(page.text).toMatch(said);
    const json = await zoeAgent.post('/admin/users').set('Accept', 'application/json').type('form').send(form);
    expect(json.status).toBe(403);
    expect(json.body.code).toBe(403);
    expect(json.body.error).toMatch(new RegExp(`^${said.source}$`));

    expect(await db.prisma.user.findUnique({ where: { username: 'newcomer' } })).toBeNull();
    // The refusal is still audited as a forbidden attempt.
    expect(await db.prisma.auditLog.count({ where: { actor: 'zoe', action: 'admin.forbidden' } })).toBe(1);
  });

  it('tells a researcher who never was an admin plainly that only admins can do it and nothing was changed', async () => {
    const app = buildTestApp(db);
    const alice = await buildUser(db.prisma, { username: 'alice-never' });
    const agent = await signInAs(app, 'alice-never', alice.password);
    const form = { username: 'sneaky', role: 'admin', csrf_token: await csrfTokenOf(agent) };
    const page = await agent.post('/admin/users').set('Accept', 'text/html').type('form').send(form).expect(403);
    expect(page.text).toContain('Only admins can do this, so nothing was changed.');
    expect(page.text).not.toContain('no longer');
    const json = await agent.post('/admin/users').set('Accept', 'application/json').type('form').send(form);
    expect(json.body).toEqual({ error: 'Only admins can do this, so nothing was changed.', code: 403 });
    expect(await db.prisma.user.findUnique({ where: { username: 'sneaky' } })).toBeNull();
    expect(await db.prisma.auditLog.count({ where: { actor: 'alice-never', action: 'admin.forbidden' } })).toBe(1);
  });

  it('tells a demoted admin reading an admin address as JSON that the account is no longer one', async () => {
    const app = buildTestApp(db);
    const boss = await signInAs(app, 'boss', 'boss-password');
    const kim = await buildUser(db.prisma, { username: 'kim', role: 'admin', password: 'kim-password' });
    const kimAgent = await signInAs(app, 'kim', kim.password);
    await boss
      .post(`/admin/users/${kim.id}/role`)
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(boss, '/admin/users') })
      .expect(303);
    const json = await kimAgent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body.error).toMatch(
      new RegExp(
        `^Your account is no longer an administrator \\(changed by boss at ${AT}\\): only admins can do this\\.$`,
      ),
    );
    // A browser's visit is sent to My usage, whose warning says the same.
    const visit = await kimAgent.get('/admin/users').set('Accept', 'text/html').expect(302);
    const me = await kimAgent.get(visit.headers.location as string).set('Accept', 'text/html');
    expect(me.text).toMatch(new RegExp(`and kim is no longer one \\(changed by boss at ${AT}\\)`));
  });

  it('does not take a user made again under a demoted admin’s name for that admin', async () => {
    const app = buildTestApp(db);
    // The audit log keeps the demotion of a lee whose account is gone; the new lee never was an admin.
    const boss = await signInAs(app, 'boss', 'boss-password');
    const lee = await buildUser(db.prisma, { username: 'lee', role: 'admin', password: 'lee-password' });
    await boss
      .post(`/admin/users/${lee.id}/role`)
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(boss, '/admin/users') })
      .expect(303);
    await db.prisma.session.deleteMany({});
    await db.prisma.user.delete({ where: { id: lee.id } });
    const again = await buildUser(db.prisma, { username: 'lee', password: 'lee-password-2' });
    const agent = await signInAs(app, 'lee', again.password);
    const json = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body).toEqual({ error: 'Only admins can do this.', code: 403 });
  });
});

/**
 * The same admin demoted by an operator in the database (UPDATE users SET role = 'user'), which the app
 * does not audit: the refusal read the audit log alone, and so told them "Only admins can do this.", as
 * it tells a researcher who never was one. The session remembers that it was signed in as an admin.
 */
describe('an admin demoted in the database, not through the app', () => {
  const demoteBySql = (id: number) => db.pool.query(`UPDATE users SET role = 'user' WHERE id = $1`, [id]);
  const promoteBySql = (id: number) => db.pool.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [id]);

  it('is told the account is no longer an administrator, and that nothing was changed', async () => {
    const app = buildTestApp(db);
    const max = await buildUser(db.prisma, { username: 'max', role: 'admin', password: 'max-password' });
    const agent = await signInAs(app, 'max', max.password);
    const token = await csrfTokenOf(agent, '/admin/users');
    await demoteBySql(max.id);

    const form = { username: 'by-sql', role: 'user', csrf_token: token };
    const page = await agent.post('/admin/users').set('Accept', 'text/html').type('form').send(form).expect(403);
    expect(page.text).toContain(
      'Your account is no longer an administrator (its role was changed since you signed in), so nothing was changed.',
    );
    const json = await agent.post('/admin/users').set('Accept', 'application/json').type('form').send(form);
    expect(json.body).toEqual({
      error:
        'Your account is no longer an administrator (its role was changed since you signed in), so nothing was changed.',
      code: 403,
    });
    expect(await db.prisma.user.findUnique({ where: { username: 'by-sql' } })).toBeNull();

    const read = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(read.body.error).toBe(
      'Your account is no longer an administrator (its role was changed since you signed in): only admins can do this.',
    );
    const visit = await agent.get('/admin/users').set('Accept', 'text/html').expect(302);
    const me = await agent.get(visit.headers.location as string).set('Accept', 'text/html');
    expect(me.text).toContain('and max is no longer one (its role was changed since you signed in)');
  });

  it('does not name a demotion in the app from before the session was signed in as an admin', async () => {
    const app = buildTestApp(db);
    const boss = await signInAs(app, 'boss', 'boss-password');
    const ray = await buildUser(db.prisma, { username: 'ray', role: 'admin', password: 'ray-password' });
    await boss
      .post(`/admin/users/${ray.id}/role`)
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(boss, '/admin/users') })
      .expect(303);
    // Made an admin again by hand, signed in as one, then demoted by hand again.
    await promoteBySql(ray.id);
    const agent = await signInAs(app, 'ray', ray.password);
    await agent.get('/admin/users').set('Accept', 'application/json').expect(200);
    await demoteBySql(ray.id);
    const json = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body.error).toBe(
      'Your account is no longer an administrator (its role was changed since you signed in): only admins can do this.',
    );
  });

  it('keeps knowing after a password change puts the session on a new id', async () => {
    const app = buildTestApp(db);
    const ivy = await buildUser(db.prisma, { username: 'ivy', role: 'admin', password: 'ivy-password' });
    const agent = await signInAs(app, 'ivy', ivy.password);
    await demoteBySql(ivy.id);
    await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ current: ivy.password, password: 'ivy-password-2', confirm: 'ivy-password-2' })
      .expect(200);
    const json = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body.error).toBe(
      'Your account is no longer an administrator (its role was changed since you signed in): only admins can do this.',
    );
  });

  it('a researcher signed in as one is still told plainly, whatever the database says of others', async () => {
    const app = buildTestApp(db);
    const una = await buildUser(db.prisma, { username: 'una', password: 'una-password' });
    const agent = await signInAs(app, 'una', una.password);
    const json = await agent.get('/admin/users').set('Accept', 'application/json').expect(403);
    expect(json.body).toEqual({ error: 'Only admins can do this.', code: 403 });
  });
});
