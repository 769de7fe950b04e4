import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

async function adminAgent() {
  const app = buildTestApp(db);
  if (!(await db.prisma.user.findUnique({ where: { username: 'chief' } }))) {
    await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  }
  return { app, agent: await signInAs(app, 'chief', 'chief-password') };
}

const flashOf = (html: string) => /<div class="alert (\w+)" role="status">([^<]*)<\/div>/.exec(html)?.slice(1, 3);

const usersNamed = (...names: string[]) => db.prisma.user.count({ where: { username: { in: names } } });

// Sign-in reads a typed username in lower case, and so do the user tools (docs/security.md): BOB can
// only ever sign in as bob. The Create a user form refused BOB with "must start with a lowercase
// letter", as if it could be some other account's name.
describe('creating a user on /admin/users with a username in capitals', () => {
  it('reads it in lower case and says so in the confirmation (form)', async () => {
    const { app, agent } = await adminAgent();
    const created = await agent
      .post('/admin/users')
      .type('form')
      .send({ username: ' BOB ', password: 'bob-password-123', csrf_token: await csrfTokenOf(agent) });
    expect(created.status).toBe(303);
    expect(created.headers.location).toBe('/admin/users?q=bob');
    const page = await agent.get('/admin/users?q=bob').set('Accept', 'text/html');
    expect(flashOf(page.text)).toEqual([
      'success',
      'Created bob. Username BOB read as bob: usernames are lower case, as sign-in reads them.',
    ]);
    expect(await usersNamed('bob')).toBe(1);
    expect(await usersNamed('BOB', ' BOB ')).toBe(0);
    await signInAs(app, 'bob', 'bob-password-123');
  });

  it('says so beside a generated password too', async () => {
    const { agent } = await adminAgent();
    const page = await agent
      .post('/admin/users')
      .type('form')
      .send({ username: 'Zoe', csrf_token: await csrfTokenOf(agent) });
    expect(page.status).toBe(201);
    expect(page.text).toMatch(
      /Created zoe\. Their password is <code class="secret">[^<]+<\/code> — it is shown only once\. Username Zoe read as zoe: usernames are lower case, as sign-in reads them\.<\/div>/,
    );
    expect(await usersNamed('zoe')).toBe(1);
    expect(await usersNamed('Zoe')).toBe(0);
  });

  it('reads it in lower case for a JSON client, and says so in the message', async () => {
    const { agent } = await adminAgent();
    const created = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'CAROL', password: 'carol-password-1', role: 'admin' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      ok: true,
      user: { username: 'carol', role: 'admin', isDisabled: false },
      usernameAsTyped: 'CAROL',
      message: 'Created carol. Username CAROL read as carol: usernames are lower case, as sign-in reads them.',
    });
    // A name typed in lower case says nothing of it.
    const plain = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'dave', password: 'dave-password-12' });
    expect(plain.status).toBe(201);
    expect(plain.body.message).toBe('Created dave.');
    expect(plain.body).not.toHaveProperty('usernameAsTyped');
    const generated = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'Erin' });
    expect(generated.status).toBe(201);
    expect(generated.body).toMatchObject({
      ok: true,
      username: 'erin',
      usernameAsTyped: 'Erin',
      note: 'Username Erin read as erin: usernames are lower case, as sign-in reads them.',
      message: 'Created erin. Username Erin read as erin: usernames are lower case, as sign-in reads them.',
    });
    expect(Object.keys(generated.body).sort()).toEqual([
      'message',
      'note',
      'ok',
      'password',
      'username',
      'usernameAsTyped',
    ]);
    expect(await usersNamed('carol', 'dave', 'erin')).toBe(3);
  });

  it('still refuses a name bad in lower case too, or taken in another case, and creates nothing', async () => {
    const { agent } = await adminAgent();
    await buildUser(db.prisma, { username: 'frank' });
    const before = await db.prisma.user.count();
    const bad = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'BAD NAME', password: 'long-enough-12', csrf_token: await csrfTokenOf(agent) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Username: must start with a lowercase letter');
    expect(bad.text).toContain('name="username" value="BAD NAME"');
    const taken = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'FRANK', password: 'long-enough-12', csrf_token: await csrfTokenOf(agent) });
    expect(taken.status).toBe(409);
    // Said as the confirmation says it: "A user named "frank" already exists." alone did not say that
    // FRANK had been read as frank, and read as if the name typed were some other account's.
    expect(taken.text).toContain(
      'A user named &#34;frank&#34; already exists. Username FRANK read as frank: usernames are lower case, as sign-in reads them.',
    );
    expect(taken.text).toContain('name="username" value="FRANK"');
    // Taken, and another reason: both said at once, the name as it would be.
    const takenAndShort = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'Frank', password: 'short' });
    expect(takenAndShort.status).toBe(400);
    expect(takenAndShort.body.error).toContain(
      'username: a user named "frank" already exists (Frank read as frank: usernames are lower case, as sign-in reads them)',
    );
    // A JSON client is told so in its error, with the name as typed beside it as its success has it.
    const takenJson = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'Frank', password: 'long-enough-12' });
    expect(takenJson.status).toBe(409);
    expect(takenJson.body).toEqual({
      error:
        'A user named "frank" already exists. Username Frank read as frank: usernames are lower case, as sign-in reads them.',
      code: 409,
      usernameAsTyped: 'Frank',
    });
    // Typed in lower case, the refusal says nothing of it.
    const takenAsTyped = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: 'frank', password: 'long-enough-12' });
    expect(takenAsTyped.status).toBe(409);
    expect(takenAsTyped.body).toEqual({ error: 'A user named "frank" already exists.', code: 409 });
    expect(takenAndShort.body.error).toContain('password: must be at least 12 characters');
    const badJson = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: '9LIVES', password: 'long-enough-12' });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toMatch(/^username: must start with a lowercase letter/);
    expect(await db.prisma.user.count()).toBe(before);
    expect(await usersNamed('bad name', 'BAD NAME', 'FRANK', 'Frank', '9lives', '9LIVES')).toBe(0);
  });
});
