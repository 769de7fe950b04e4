import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { createMetrics, type Metrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenIn, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
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

/** Session rows whose stored data contains the text (a generated password must never be stored). */
async function sessionRowsHolding(text: string) {
  const rows = await db.prisma.$queryRaw<
    Array<{ n: bigint }>
  >`SELECT count(*) AS n FROM "session" WHERE sess::text LIKE ${`%${text}%`}`;
  return Number(rows[0]?.n);
}

const flashOf = (html: string) =>
  /<div class="alert (\w+)" role="status"(?: id="login-flash")?>([^<]*)<\/div>/.exec(html)?.slice(1, 3);

/**
 * A generated password as the page shows it: in a monospace element of its own, so that l, I and 1
 * can be told apart and it is copied without the sentence around it. [before, password, after].
 */
const shownPasswordOf = (html: string) =>
  /<div class="alert success" role="status">([^<]*)<code class="secret">([^<]*)<\/code>([^<]*)<\/div>/
    .exec(html)
    ?.slice(1, 4) ?? [];

describe('admin user management', () => {
  it('creates a user with a generated password shown once, who can then sign in', async () => {
    const { app, agent } = await adminAgent();
    // Shown in the answer to the post, not kept in the session for the next page.
    const page = await agent
      .post('/admin/users')
      .type('form')
      .send({ username: 'newbie', role: 'user', csrf_token: await csrfTokenOf(agent) })
      .expect(201);
    expect(page.headers['cache-control']).toBe('no-store');
    const [before, password = '', after] = shownPasswordOf(page.text);
    expect(before).toBe('Created newbie. Their password is ');
    expect(password).toMatch(/^[A-HJ-NP-Za-km-np-z2-9]{17}$/);
    expect(after).toBe(' — it is shown only once.');
    expect(await sessionRowsHolding(password)).toBe(0);
    const again = await agent.get('/admin/users').set('Accept', 'text/html');
    expect(again.text).not.toContain(password);
    await signInAs(app, 'newbie', password);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'user.create', target: 'user:newbie' },
    });
    expect(audit).toMatchObject({ actor: 'chief', status: 'ok' });
  });

  it('refuses a bad or duplicate username with a clear error and creates nothing', async () => {
    const { agent } = await adminAgent();
    const before = await db.prisma.user.count();
    const bad = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .send({ username: 'Robert); DROP', password: 'long-enough-12' })
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^username: must start with a lowercase letter/);
    const short = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .send({ username: 'shorty', password: 'short' })
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(short.body).toEqual({ error: 'password: must be at least 12 characters', code: 400 });
    const duplicate = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .send({ username: 'chief' })
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error).toBe('A user named "chief" already exists.');
    expect(await db.prisma.user.count()).toBe(before);
  });

  it('refuses the second of two creations of one username sent at once (a double click) as any duplicate', async () => {
    const { agent } = await adminAgent();
    const token = await csrfTokenOf(agent);
    // Holding the audit chain's lock keeps the first creation's row uncommitted while the second
    // finds no user of that name and inserts its own behind it.
    const client = await db.pool.connect();
    let first: Promise<request.Response>;
    let second: Promise<request.Response>;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.auditAppend]);
      first = agent
        .post('/admin/users')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ username: 'twin', password: 'twin-password-1' })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool)).toBe(1);
      second = agent
        .post('/admin/users')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'twin', password: 'twin-password-2', csrf_token: token })
        .then((response) => response);
      expect(await sessionsWaitingForLocks(db.pool, 10_000, 2)).toBe(2);
    } finally {
      await client.query('COMMIT');
      client.release();
    }
    expect((await first).status).toBe(201);
    const refused = await second;
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('A user named &#34;twin&#34; already exists.');
    expect(refused.text).toContain('name="username" value="twin"');
    expect(await db.prisma.user.count({ where: { username: 'twin' } })).toBe(1);
    expect(await db.prisma.auditLog.count({ where: { action: 'user.create', target: 'user:twin' } })).toBe(1);
  });

  it('gives a browser the form back with the reason and what was typed, never the password', async () => {
    const { agent } = await adminAgent();
    const before = await db.prisma.user.count();
    const created = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'newadmin', role: 'admin', password: 'first-password', csrf_token: await csrfTokenOf(agent) });
    expect(created.status).toBe(303);
    const taken = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        username: 'newadmin',
        role: 'admin',
        password: 'secret-typed-once',
        csrf_token: await csrfTokenOf(agent),
      });
    expect(taken.status).toBe(409);
    expect(taken.text).toContain('A user named &#34;newadmin&#34; already exists.');
    expect(taken.text).toContain('name="username" value="newadmin"');
    expect(taken.text).toMatch(/<option value="admin" selected>/);
    expect(taken.text).not.toContain('secret-typed-once');
    const bad = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'Bad Name', password: 'x', csrf_token: await csrfTokenOf(agent) });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Username: must start with a lowercase letter');
    expect(bad.text).toContain('Password: must be at least 12 characters');
    expect(bad.text).toContain('name="username" value="Bad Name"');
    expect(await db.prisma.user.count()).toBe(before + 1);
  });

  it('disables a user (ending their sessions), re-enables them, and audits both', async () => {
    const { app, agent } = await adminAgent();
    const target = await buildUser(db.prisma, { username: 'offboarded' });
    const theirs = await signInAs(app, 'offboarded', target.password);
    await agent
      .post(`/admin/users/${target.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await theirs.get('/account').set('Accept', 'text/html').expect(302);
    expect((await postLogin(app, 'offboarded', target.password)).response.status).toBe(401);
    const sessions = await db.pool.query(
      `SELECT count(*)::int AS n FROM session WHERE sess -> 'passport' ->> 'user' = $1`,
      [String(target.id)],
    );
    expect(sessions.rows[0].n).toBe(0);
    await agent
      .post(`/admin/users/${target.id}/enable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await signInAs(app, 'offboarded', target.password);
    const actions = await db.prisma.auditLog.findMany({
      where: { target: 'user:offboarded' },
      orderBy: { id: 'asc' },
      select: { action: true },
    });
    // The account's own sign-ins are in its history too: the one refused while disabled among them.
    expect(actions.map((entry) => entry.action)).toEqual([
      'login.success',
      'user.disable',
      'login.failure',
      'user.enable',
      'login.success',
    ]);
  });

  it('tells a signed-in user who was disabled why they are signed out, and no one else', async () => {
    const { app, agent } = await adminAgent();
    const target = await buildUser(db.prisma, { username: 'benched' });
    const browser = await signInAs(app, 'benched', target.password);
    const script = await signInAs(app, 'benched', target.password);
    const form = await browser.get('/account').set('Accept', 'text/html').expect(200);
    await agent
      .post(`/admin/users/${target.id}/disable`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const disabled = 'Your account has been disabled. Ask an administrator.';

    const sent = await browser
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        current: target.password,
        password: 'never-applied-1',
        confirm: 'never-applied-1',
        csrf_token: csrfTokenIn(form.text),
      });
    expect(sent.status).toBe(403);
    expect(sent.text).toContain('Your account has been disabled, so this form was not sent.');
    const page = await browser.get('/account').set('Accept', 'text/html').expect(302);
    expect(page.headers.location).toBe('/login?next=%2Faccount');
    const login = await browser.get('/login?next=%2Faccount').set('Accept', 'text/html').expect(200);
    expect(flashOf(login.text)).toEqual(['error', disabled]);

    const json = await script.get('/me').set('Accept', 'application/json').expect(401);
    expect(json.body).toEqual({ error: disabled, code: 401 });

    // Told the account is disabled, they try their password all the same: the refusal says the
    // same, not "Wrong username or password.", which sent them guessing into a lockout.
    const again = await postLogin(app, 'Benched ', target.password, { agent: browser });
    expect(again.response.status).toBe(401);
    expect(again.response.text).toContain(disabled);
    expect(again.response.text).not.toContain('Wrong username or password.');
    const scripted = await script
      .post('/login')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', csrfTokenIn((await script.get('/login').set('Accept', 'text/html')).text))
      .send({ username: 'benched', password: 'not-even-right' });
    expect(scripted.body).toEqual({ error: disabled, code: 401 });
    // Another username typed in that browser is refused as anywhere else.
    const other = await postLogin(app, 'chief', 'not-the-password', { agent: browser });
    expect(other.response.text).toContain('Wrong username or password.');
    expect(other.response.text).not.toContain(disabled);
    // And a browser that never held that session learns nothing.
    const elsewhere = await postLogin(app, 'benched', target.password);
    expect(elsewhere.response.text).toContain('Wrong username or password.');
    expect(elsewhere.response.text).not.toContain('disabled');

    // A visitor who never held that session learns nothing.
    const anonymous = await request(app).get('/login').set('Accept', 'text/html').expect(200);
    expect(anonymous.text).not.toContain('disabled');
    await request(app)
      .get('/me')
      .set('Accept', 'application/json')
      .expect(401, { error: 'Sign in to continue.', code: 401 });
  });

  it('stops telling that session the account is disabled once it is enabled again', async () => {
    const { app, agent } = await adminAgent();
    const target = await buildUser(db.prisma, { username: 'returning' });
    const browser = await signInAs(app, 'returning', target.password);
    const script = await signInAs(app, 'returning', target.password);
    const disabled = 'Your account has been disabled. Ask an administrator.';
    for (const action of ['disable', 'enable']) {
      await agent
        .post(`/admin/users/${target.id}/${action}`)
        .type('form')
        .send({ csrf_token: await csrfTokenOf(agent) })
        .expect(303);
    }

    // Enabled again: that browser is signed out, as anyone else, and told nothing of a disable.
    const page = await browser.get('/account').set('Accept', 'text/html').expect(302);
    expect(page.headers.location).toBe('/login?next=%2Faccount');
    const login = await browser.get('/login?next=%2Faccount').set('Accept', 'text/html').expect(200);
    expect(login.text).not.toContain(disabled);
    const json = await script.get('/me').set('Accept', 'application/json').expect(401);
    expect(json.body).toEqual({ error: 'Sign in to continue.', code: 401 });
    const typo = await postLogin(app, 'returning', 'not-the-password', { agent: browser });
    expect(typo.response.status).toBe(401);
    expect(typo.response.text).toContain('Wrong username or password.');
    expect(typo.response.text).not.toContain(disabled);
    await signInAs(app, 'returning', target.password);
    const signedIn = await postLogin(app, 'returning', target.password, { agent: browser });
    expect(signedIn.response.status).toBe(302);
  });

  it('takes an admin who made themselves a user to My usage with the confirmation, audited as no forbidden attempt', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'stepsdown', role: 'admin', password: 'stepsdown-password' });
    const self = await db.prisma.user.findUniqueOrThrow({ where: { username: 'stepsdown' } });
    await buildUser(db.prisma, { username: 'staysadmin', role: 'admin', password: 'staysadmin-password' });
    const agent = await signInAs(app, 'stepsdown', 'stepsdown-password');
    const changed = await agent
      .post(`/admin/users/${self.id}/role`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(agent, '/admin/users') })
      .expect(303);
    // The users page is no longer theirs: sent there, they were refused it, told only that, and
    // the refusal was audited as a forbidden attempt they never made.
    expect(changed.headers.location).toBe('/me');
    // (This database has no pricing tier, so My usage itself is a 404 here; the message is above it.)
    const next = await agent.get(changed.headers.location as string).set('Accept', 'text/html');
    expect(flashOf(next.text)).toEqual(['success', 'stepsdown is now a user.']);
    expect(await db.prisma.auditLog.count({ where: { actor: 'stepsdown', action: 'admin.forbidden' } })).toBe(0);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: self.id } })).role).toBe('user');
  });

  it('resets a password and changes a role, audited; the last admin cannot be demoted or disabled', async () => {
    const { app, agent } = await adminAgent();
    const target = await buildUser(db.prisma, { username: 'promoted' });
    await agent
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ password: 'brand-new-pass', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    await signInAs(app, 'promoted', 'brand-new-pass');
    const generated = await agent
      .post(`/admin/users/${target.id}/password`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) })
      .expect(200);
    const [before, password = '', after] = shownPasswordOf(generated.text);
    expect(before).toBe('New password for promoted: ');
    expect(password).toMatch(/^[A-HJ-NP-Za-km-np-z2-9]{17}$/);
    expect(after).toBe(' — it is shown only once.');
    expect(await sessionRowsHolding(password)).toBe(0);
    await signInAs(app, 'promoted', password);
    await agent
      .post(`/admin/users/${target.id}/role`)
      .type('form')
      .send({ role: 'admin', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).role).toBe('admin');
    await agent
      .post(`/admin/users/${target.id}/role`)
      .type('form')
      .send({ role: 'user', csrf_token: await csrfTokenOf(agent) })
      .expect(303);

    const chief = await db.prisma.user.findUniqueOrThrow({ where: { username: 'chief' } });
    await db.prisma.user.updateMany({ where: { role: 'admin', NOT: { id: chief.id } }, data: { role: 'user' } });
    const demote = await agent
      .post(`/admin/users/${chief.id}/role`)
      .set('Accept', 'application/json')
      .send({ role: 'user' })
      .set('X-CSRFToken', await csrfTokenOf(agent));
    expect(demote.status).toBe(409);
    expect(demote.body.error).toContain('last active admin');
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: chief.id } })).role).toBe('admin');
    const actions = await db.prisma.auditLog.findMany({
      where: { target: 'user:promoted' },
      orderBy: { id: 'asc' },
      select: { action: true },
    });
    expect(actions.map((entry) => entry.action)).toEqual([
      'user.password_reset',
      'login.success',
      'user.password_reset',
      'login.success',
      'user.role_change',
      'user.role_change',
    ]);
  });

  it('answers an unknown user id with 404 and a non-numeric one with 400', async () => {
    const { agent } = await adminAgent();
    const token = await csrfTokenOf(agent);
    const unknown = await agent
      .post('/admin/users/999999/disable')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({})
      .expect(404);
    // Worded as a missing receipt or payment is.
    expect(unknown.body).toEqual({ error: 'User #999999 was not found.', code: 404 });
    const notANumber = await agent
      .post('/admin/users/abc/disable')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({})
      .expect(400);
    expect(notANumber.body).toEqual({ error: 'user id: must be a whole number', code: 400 });
  });

  it('refuses a JSON list of users as a body that must be an object, creating and disabling nobody', async () => {
    const { agent } = await adminAgent();
    const token = await csrfTokenOf(agent);
    const target = await buildUser(db.prisma, { username: 'listtarget' });
    const before = await db.prisma.user.count();
    const sendJson = (path: string, text: string) =>
      agent
        .post(path)
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', token)
        .send(text);
    for (const text of ['[]', '[{"username":"listed","role":"admin"}]', '"listed"', 'null']) {
      const created = await sendJson('/admin/users', text);
      expect(created.body, text).toEqual({ error: 'The request body must be a JSON object.', code: 400 });
      // A route that reads no field is refused the same way, before it acts.
      const disabled = await sendJson(`/admin/users/${target.id}/disable`, text);
      expect(disabled.body, text).toEqual({ error: 'The request body must be a JSON object.', code: 400 });
    }
    expect(await db.prisma.user.count()).toBe(before);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).isDisabled).toBe(false);
  });

  it('still names a form field given twice as given twice', async () => {
    const { agent } = await adminAgent();
    const before = await db.prisma.user.count();
    const response = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .type('form')
      .send(`username=twice&role=admin&role=user&csrf_token=${encodeURIComponent(await csrfTokenOf(agent))}`);
    expect(response.body).toEqual({ error: 'role: must be given once', code: 400 });
    expect(await db.prisma.user.count()).toBe(before);
  });

  it('refuses a user id with leading zeros, which would be a second address for the same user', async () => {
    const { agent } = await adminAgent();
    const token = await csrfTokenOf(agent);
    const target = await buildUser(db.prisma, { username: 'zeropadded' });
    const hash = (await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).passwordHash;
    const post = (path: string, body: object) =>
      agent.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    for (const id of [`0${target.id}`, `00${target.id}`]) {
      for (const [path, body] of [
        [`/admin/users/${id}/disable`, {}],
        [`/admin/users/${id}/role`, { role: 'admin' }],
        [`/admin/users/${id}/password`, { password: 'zero-padded-password' }],
      ] as const) {
        const refused = await post(path, body);
        expect(refused.body, path).toEqual({ error: 'user id: must be written without leading zeros', code: 400 });
      }
    }
    expect(await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).toMatchObject({
      isDisabled: false,
      role: 'user',
      passwordHash: hash,
    });
    expect(await db.prisma.auditLog.count({ where: { target: 'user:zeropadded' } })).toBe(0);
  });

  it('refuses ids that only Number() reads as whole numbers, and one past integer, changing nobody', async () => {
    const { agent } = await adminAgent();
    const token = await csrfTokenOf(agent);
    const target = await buildUser(db.prisma, { username: 'numbertarget' });
    const enabledBefore = await db.prisma.user.count({ where: { isDisabled: false } });
    for (const id of [`${target.id}e0`, `0x${target.id.toString(16)}`, `${target.id}.0`, ` ${target.id}`]) {
      const refused = await agent
        .post(`/admin/users/${encodeURIComponent(id)}/disable`)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({});
      expect(refused.status, id).toBe(400);
      expect(refused.body).toEqual({ error: 'user id: must be a whole number', code: 400 });
    }
    const huge = await agent
      .post('/admin/users/99999999999/role')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ role: 'admin' });
    expect(huge.body).toEqual({ error: 'user id: must be at most 2147483647', code: 400 });
    expect(await db.prisma.user.count({ where: { isDisabled: false } })).toBe(enabledBefore);
  });
});

describe('the password rule: at least 12 characters on every form that sets one', () => {
  const ELEVEN = 'eleven-char';
  const TWELVE = 'twelve-chars';
  const REFUSED = { error: 'password: must be at least 12 characters', code: 400 };
  const postJson = async (agent: Agent, url: string, body: object) =>
    agent
      .post(url)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send(body);

  it('creating a user on /admin/users refuses 11 characters and takes 12', async () => {
    expect([ELEVEN.length, TWELVE.length]).toEqual([11, 12]);
    const { app, agent } = await adminAgent();
    const refused = await postJson(agent, '/admin/users', { username: 'ruleshort', role: 'admin', password: ELEVEN });
    expect(refused.body).toEqual(REFUSED);
    expect(await db.prisma.user.count({ where: { username: 'ruleshort' } })).toBe(0);
    await postJson(agent, '/admin/users', { username: 'ruleexact', password: TWELVE }).then((response) =>
      expect(response.status).toBe(201),
    );
    await signInAs(app, 'ruleexact', TWELVE);
    // The browser is told the same number before it posts.
    const page = await agent.get('/admin/users').set('Accept', 'text/html');
    expect(page.text).toContain('name="password" type="password" autocomplete="new-password" minlength="12"');
  });

  it('refuses a password of only spaces on every form, changing nothing, and takes one with spaces in it', async () => {
    const SPACES = ' '.repeat(12);
    const ONLY_SPACES = { error: 'password: must not be only spaces', code: 400 };
    const { app, agent } = await adminAgent();
    expect((await postJson(agent, '/admin/users', { username: 'rulespaces', password: SPACES })).body).toEqual(
      ONLY_SPACES,
    );
    expect(await db.prisma.user.count({ where: { username: 'rulespaces' } })).toBe(0);

    const target = await buildUser(db.prisma, { username: 'rulespacereset' });
    const hashOf = async (id: number) => (await db.prisma.user.findUniqueOrThrow({ where: { id } })).passwordHash;
    const targetHash = await hashOf(target.id);
    expect((await postJson(agent, `/admin/users/${target.id}/password`, { password: `\t${SPACES}` })).body).toEqual(
      ONLY_SPACES,
    );
    expect(await hashOf(target.id)).toBe(targetHash);

    const self = await buildUser(db.prisma, { username: 'rulespaceself' });
    const selfAgent = await signInAs(app, 'rulespaceself', self.password);
    const selfHash = await hashOf(self.id);
    const refused = await postJson(selfAgent, '/account/password', {
      current: self.password,
      password: SPACES,
      confirm: SPACES,
    });
    expect(refused.body).toEqual(ONLY_SPACES);
    expect(await hashOf(self.id)).toBe(selfHash);

    const passphrase = 'correct horse battery';
    await postJson(agent, '/admin/users', { username: 'rulephrase', password: passphrase }).then((response) =>
      expect(response.status).toBe(201),
    );
    await signInAs(app, 'rulephrase', passphrase);
  });

  it('an admin resetting a password refuses 11 characters, changing nothing, and takes 12', async () => {
    const { app, agent } = await adminAgent();
    const target = await buildUser(db.prisma, { username: 'rulereset' });
    const hash = (await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).passwordHash;
    const refused = await postJson(agent, `/admin/users/${target.id}/password`, { password: ELEVEN });
    expect(refused.body).toEqual(REFUSED);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: target.id } })).passwordHash).toBe(hash);
    expect((await postJson(agent, `/admin/users/${target.id}/password`, { password: TWELVE })).status).toBe(200);
    await signInAs(app, 'rulereset', TWELVE);
  });

  it('changing your own password refuses 11 characters, changing nothing, and takes 12', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'ruleself' });
    const agent = await signInAs(app, 'ruleself', user.password);
    const hash = (await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash;
    const refused = await postJson(agent, '/account/password', {
      current: user.password,
      password: ELEVEN,
      confirm: ELEVEN,
    });
    expect(refused.body).toEqual(REFUSED);
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash).toBe(hash);
    const page = await agent.get('/account').set('Accept', 'text/html');
    expect(page.text).toContain('New password (at least 12 characters)');
    expect(page.text).toContain('minlength="12"');
    const accepted = await postJson(agent, '/account/password', {
      current: user.password,
      password: TWELVE,
      confirm: TWELVE,
    });
    expect(accepted.status).toBe(200);
    await signInAs(app, 'ruleself', TWELVE);
  });
});

describe('an empty new password', () => {
  it('is said to be required on the change-password form, for a browser and a JSON client, changing nothing', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'emptynew' });
    const agent = await signInAs(app, 'emptynew', user.password);
    const hash = (await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash;

    const page = await agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({ current: user.password, password: '', confirm: '', csrf_token: await csrfTokenOf(agent) });
    expect(page.status).toBe(400);
    expect(/<div class="alert error" role="alert"[^>]*>([^<]*)<\/div>/.exec(page.text)?.[1]).toBe(
      'New password: is required',
    );

    for (const body of [
      { current: user.password, password: '', confirm: '' },
      { current: user.password, confirm: '' },
    ]) {
      const json = await agent
        .post('/account/password')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send(body);
      expect(json.body).toEqual({ error: 'password: is required', code: 400 });
    }
    expect((await db.prisma.user.findUniqueOrThrow({ where: { id: user.id } })).passwordHash).toBe(hash);
    // Not counted as a wrong current password either: the right one still works afterwards.
    await signInAs(app, 'emptynew', user.password);
  });
});

describe('your own account', () => {
  const changePassword = async (agent: Agent, fields: { current: string; password: string; confirm?: string }) =>
    agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({ confirm: fields.password, ...fields, csrf_token: await csrfTokenOf(agent) });
  const errorOf = (html: string) => /<div class="alert error" role="alert"[^>]*>([^<]*)<\/div>/.exec(html)?.[1];
  const sessionIdsOf = async (userId: number) =>
    (
      await db.pool.query<{ sid: string }>(`SELECT sid FROM session WHERE sess -> 'passport' ->> 'user' = $1`, [
        String(userId),
      ])
    ).rows.map((row) => row.sid);
  const hashOf = async (username: string) =>
    (await db.prisma.user.findUniqueOrThrow({ where: { username } })).passwordHash;

  it('changes your password only with the current one', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'selfservice' });
    const agent = await signInAs(app, 'selfservice', user.password);
    const wrong = await changePassword(agent, { current: 'wrong', password: 'new-password-1' });
    expect(wrong.status).toBe(400);
    expect(errorOf(wrong.text)).toBe('The current password is not right.');
    expect(wrong.text).toContain('name="current"');
    const mismatch = await changePassword(agent, {
      current: user.password,
      password: 'new-password-1',
      confirm: 'different-1',
    });
    expect(mismatch.status).toBe(400);
    expect(errorOf(mismatch.text)).toBe('New password again: does not match the new password');
    await changePassword(agent, { current: user.password, password: 'new-password-1' }).then((response) =>
      expect(response.status).toBe(303),
    );
    expect(flashOf((await agent.get('/account').set('Accept', 'text/html')).text)?.[0]).toBe('success');
    await signInAs(app, 'selfservice', 'new-password-1');
  });

  it('answers a JSON client with {error, code} when it refuses, and changes nothing', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'jsonclient' });
    const agent = await signInAs(app, 'jsonclient', user.password);
    const hash = await hashOf('jsonclient');
    const wrong = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ current: 'wrong', password: 'new-password-1', confirm: 'new-password-1' });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toEqual({ error: 'The current password is not right.', code: 400 });
    expect(await hashOf('jsonclient')).toBe(hash);
  });

  it('ends your other sessions and keeps this one, on a new session id', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'twodevices' });
    const bystander = await buildUser(db.prisma, { username: 'bystander' });
    const laptop = await signInAs(app, 'twodevices', user.password);
    const phone = await signInAs(app, 'twodevices', user.password);
    const theirs = await signInAs(app, 'bystander', bystander.password);
    const before = await sessionIdsOf(user.id);
    expect(before).toHaveLength(2);

    const changed = await changePassword(laptop, { current: user.password, password: 'fresh-password-1' });
    expect(changed.status).toBe(303);
    expect(changed.headers.location).toBe('/account');

    await phone.get('/account').set('Accept', 'text/html').expect(302).expect('Location', '/login?next=%2Faccount');
    const landed = await laptop.get('/account').set('Accept', 'text/html').expect(200);
    expect(flashOf(landed.text)).toEqual(['success', 'Your password was changed. 1 other session was signed out.']);
    await theirs.get('/account').set('Accept', 'text/html').expect(200);
    const after = await sessionIdsOf(user.id);
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);
    // The re-issued session works for forms too: it signs out with a token from its own page.
    await laptop
      .post('/logout')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(laptop) })
      .expect(302, /login/);
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'user.password_change', target: 'user:twodevices' },
    });
    expect(audit).toMatchObject({ actor: 'twodevices', status: 'ok', details: { endedSessions: 1 } });
  });

  it('tells a session your change signed out why, on the sign-in page it is sent to', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'labdesk' });
    const office = await signInAs(app, 'labdesk', user.password);
    const lab = await signInAs(app, 'labdesk', user.password);
    await changePassword(office, { current: user.password, password: 'fresh-password-2' }).then((response) =>
      expect(response.status).toBe(303),
    );

    // The lab computer's next click: signed out, and the sign-in page says why (it said nothing, as
    // if the session had never been, and the researcher there could not tell what had happened).
    await lab.get('/me').set('Accept', 'text/html').expect(302).expect('Location', '/login?next=%2Fme');
    const signInPage = await lab.get('/login?next=%2Fme').set('Accept', 'text/html').expect(200);
    expect(flashOf(signInPage.text)).toEqual([
      'warning',
      'Your password was changed in another session, so this one was signed out. Sign in with the new password.',
    ]);
    // Said once, and the session signs in again with the new password.
    expect(flashOf((await lab.get('/login').set('Accept', 'text/html')).text)).toBeUndefined();
    const { response } = await postLogin(app, 'labdesk', 'fresh-password-2', { agent: lab });
    expect(response.status).toBe(302);
    await lab.get('/account').set('Accept', 'text/html').expect(200);
    expect(await sessionIdsOf(user.id)).toHaveLength(2);
  });

  it("tells the user's sessions an admin's reset signed out why", async () => {
    const { agent: admin } = await adminAgent();
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'resetwhileaway' });
    const session = await signInAs(app, 'resetwhileaway', user.password);
    await admin
      .post(`/admin/users/${user.id}/password`)
      .type('form')
      .send({ password: 'given-by-admin-1', csrf_token: await csrfTokenOf(admin) })
      .expect(303);

    await session.get('/me').set('Accept', 'text/html').expect(302);
    const signInPage = await session.get('/login?next=%2Fme').set('Accept', 'text/html').expect(200);
    expect(flashOf(signInPage.text)).toEqual([
      'warning',
      'An administrator reset your password, so you were signed out. Sign in with the new password.',
    ]);
    expect(await sessionIdsOf(user.id)).toHaveLength(0);
  });

  it('keeps the session of an admin resetting their own password, on a new id, and ends their others', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'selfreset', role: 'admin', password: 'selfreset-password' });
    const agent = await signInAs(app, 'selfreset', 'selfreset-password');
    const other = await signInAs(app, 'selfreset', 'selfreset-password');
    const me = await db.prisma.user.findUniqueOrThrow({ where: { username: 'selfreset' } });
    const before = await sessionIdsOf(me.id);

    const chosen = await agent
      .post(`/admin/users/${me.id}/password`)
      .type('form')
      .send({ password: 'my-own-new-password', csrf_token: await csrfTokenOf(agent, '/admin/users') });
    expect(chosen.status).toBe(303);
    const landed = await agent.get(chosen.headers.location as string).set('Accept', 'text/html');
    expect(landed.status).toBe(200);
    expect(flashOf(landed.text)).toEqual(['success', 'Password of selfreset changed.']);
    await other.get('/account').set('Accept', 'text/html').expect(302);
    const after = await sessionIdsOf(me.id);
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);

    // A generated one is shown, and the pages after it still open.
    const generated = await agent
      .post(`/admin/users/${me.id}/password`)
      .type('form')
      .send({ password: '', csrf_token: await csrfTokenOf(agent, '/admin/users') });
    expect(generated.status).toBe(200);
    const [, password = ''] = shownPasswordOf(generated.text);
    await agent.get('/admin/users').set('Accept', 'text/html').expect(200);
    // The page's own forms work: its token is the kept session's.
    await agent
      .post('/logout')
      .type('form')
      .send({ csrf_token: csrfTokenIn(generated.text) })
      .expect(302, /login/);
    await signInAs(app, 'selfreset', password);
  });

  it('keeps the session of an admin resetting their own password alive for as long as it had left', async () => {
    let now = new Date('2026-06-01T08:00:00Z');
    const app = buildTestApp(db, { now: () => now });
    await buildUser(db.prisma, { username: 'longday', role: 'admin', password: 'longday-password' });
    const agent = await signInAs(app, 'longday', 'longday-password');
    const me = await db.prisma.user.findUniqueOrThrow({ where: { username: 'longday' } });
    // Busy all morning: never idle for the hour the session allows, though signed in 3 hours ago.
    for (const hour of ['09', '10', '11']) {
      now = new Date(`2026-06-01T${hour}:00:00Z`);
      await agent.get('/account').set('Accept', 'text/html').expect(200);
    }
    await agent
      .post(`/admin/users/${me.id}/password`)
      .type('form')
      .send({ password: 'longday-new-password', csrf_token: await csrfTokenOf(agent, '/admin/users') })
      .expect(303);
    await agent.get('/account').set('Accept', 'text/html').expect(200);
  });

  it('refuses a new password equal to the current one, and writes nothing', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'samesame' });
    const agent = await signInAs(app, 'samesame', user.password);
    const other = await signInAs(app, 'samesame', user.password);
    const hash = await hashOf('samesame');
    const auditEntries = await db.prisma.auditLog.count();
    const same = await changePassword(agent, { current: user.password, password: user.password });
    expect(same.status).toBe(400);
    expect(errorOf(same.text)).toBe('New password: must differ from the current password');
    expect(await hashOf('samesame')).toBe(hash);
    expect(await db.prisma.auditLog.count()).toBe(auditEntries);
    expect(await db.prisma.authThrottle.count({ where: { username: 'samesame' } })).toBe(0);
    await other.get('/account').set('Accept', 'text/html').expect(200);
    await signInAs(app, 'samesame', user.password);
  });

  it('says a wrong current password is wrong, also when the new password repeats it', async () => {
    // Refused before the current password was checked, "must differ from the current password" named
    // what was typed as the current password, wrong as it was: the researcher went on to sign in with it.
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'misremembered' });
    const agent = await signInAs(app, 'misremembered', user.password);
    const hash = await hashOf('misremembered');
    const typedTwice = await changePassword(agent, {
      current: 'what-i-thought-it-was',
      password: 'what-i-thought-it-was',
    });
    expect(typedTwice.status).toBe(400);
    expect(errorOf(typedTwice.text)).toBe('The current password is not right.');
    expect(await hashOf('misremembered')).toBe(hash);
    // A wrong current password counts toward the lockout, however the new one is written.
    expect(await db.prisma.authThrottle.count({ where: { username: 'misremembered' } })).toBeGreaterThan(0);
    // With the right current password, the repeat is still refused, in a script's words too, and forgotten.
    const same = await agent
      .post('/account/password')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ current: user.password, password: user.password, confirm: user.password });
    expect(same.status).toBe(400);
    expect(same.body.error).toBe('password: must differ from the current password');
    expect(await hashOf('misremembered')).toBe(hash);
    expect(await db.prisma.authThrottle.count({ where: { username: 'misremembered' } })).toBe(0);
  });

  describe('wrong current passwords', () => {
    let clock: Date;
    let metrics: Metrics;
    beforeEach(() => {
      clock = new Date('2026-06-01T08:00:00Z');
      metrics = createMetrics();
    });
    const lockoutApp = () => buildTestApp(db, { now: () => clock, metrics });

    it('lock the account like failed sign-ins; even the right one is refused until the lock ends', async () => {
      const app = lockoutApp();
      const user = await buildUser(db.prisma, { username: 'stolencookie' });
      const agent = await signInAs(app, 'stolencookie', user.password);
      const hash = await hashOf('stolencookie');
      for (let attempt = 1; attempt <= 4; attempt++) {
        const wrong = await changePassword(agent, { current: `guess-${attempt}`, password: 'taken-over-1' });
        expect(wrong.status).toBe(400);
        expect(errorOf(wrong.text)).toBe('The current password is not right.');
      }
      const fifth = await changePassword(agent, { current: 'guess-5', password: 'taken-over-1' });
      expect(fifth.status).toBe(429);
      expect(fifth.headers['retry-after']).toBe('300');
      // What the lock means, not only how long: it is the sign-in lock, so a researcher who signed out
      // to try again was kept out, and did not know an administrator could end it.
      expect(errorOf(fifth.text)).toBe(
        'Too many failed attempts. Try again in 5 min 00 s. Until then even the right password is refused, here and at sign-in: stay signed in meanwhile; an administrator can lift the lock sooner.',
      );
      expect(fifth.text).toContain('name="current"');

      clock = new Date(clock.getTime() + 120_000);
      const right = await changePassword(agent, { current: user.password, password: 'changed-password-1' });
      expect(right.status).toBe(429);
      expect(right.headers['retry-after']).toBe('180');
      expect(errorOf(right.text)).toMatch(/^Too many failed attempts\. Try again in 3 min 00 s\. Until then /);
      expect(await hashOf('stolencookie')).toBe(hash);
      // The lock is the sign-in lock.
      const signIn = await postLogin(app, 'stolencookie', user.password);
      expect(signIn.response.text).toContain('Too many failed sign-ins. Try again in 3 min 00 s.');

      clock = new Date(clock.getTime() + 181_000);
      const afterLock = await changePassword(agent, { current: user.password, password: 'changed-password-1' });
      expect(afterLock.status).toBe(303);
      expect(await db.prisma.authThrottle.count({ where: { username: 'stolencookie' } })).toBe(0);
      await signInAs(app, 'stolencookie', 'changed-password-1');

      const entries = await db.prisma.auditLog.findMany({
        where: { actor: 'stolencookie', action: { in: ['user.password_change', 'login.lockout_start'] } },
        orderBy: { id: 'asc' },
        select: { action: true, status: true, details: true },
      });
      expect(entries).toEqual([
        ...Array.from({ length: 5 }, () => ({
          action: 'user.password_change',
          status: 'failed',
          details: { reason: 'bad_current_password' },
        })),
        {
          action: 'login.lockout_start',
          status: 'denied',
          details: { scope: ['address'], until: '2026-06-01T08:05:00.000Z', via: 'password_change' },
        },
        { action: 'user.password_change', status: 'denied', details: { reason: 'locked', scope: ['address'] } },
        { action: 'user.password_change', status: 'ok', details: { endedSessions: 0 } },
      ]);
      expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);
      // The form's locked answer and the sign-in's; not the fifth wrong password that started the lock.
      expect(await metricValue(metrics, 'auth_lockout_active_total')).toBe(2);
      expect(await metricValue(metrics, 'auth_lockout_end_total')).toBe(1);
      expect(await metricValue(metrics, 'auth_login_failure_total', { reason: 'bad_credentials' })).toBe(0);
    });

    it('share one budget with the sign-in form, and a change resets it as a sign-in does', async () => {
      const app = lockoutApp();
      const user = await buildUser(db.prisma, { username: 'onebudget' });
      const agent = await signInAs(app, 'onebudget', user.password);
      for (let attempt = 0; attempt < 3; attempt++) {
        const { response } = await postLogin(app, 'onebudget', 'guess');
        expect(response.text).toContain('Wrong username or password.');
      }
      expect((await changePassword(agent, { current: 'guess', password: 'taken-over-1' })).status).toBe(400);
      const fifth = await changePassword(agent, { current: 'guess', password: 'taken-over-1' });
      expect(fifth.status).toBe(429);
      expect((await postLogin(app, 'onebudget', user.password)).response.text).toContain('Too many failed sign-ins.');

      clock = new Date(clock.getTime() + 301_000);
      for (let attempt = 0; attempt < 4; attempt++) {
        const wrong = await changePassword(agent, { current: 'guess', password: 'taken-over-1' });
        expect(wrong.status).toBe(400);
      }
      await changePassword(agent, { current: user.password, password: 'second-password-1' }).then((response) =>
        expect(response.status).toBe(303),
      );
      // Four more failures after the reset do not lock.
      for (let attempt = 0; attempt < 4; attempt++) await postLogin(app, 'onebudget', 'guess');
      await signInAs(app, 'onebudget', 'second-password-1');
    });

    it('sent at once, check no more current passwords than the lockout allows', async () => {
      const app = lockoutApp();
      const user = await buildUser(db.prisma, { username: 'manytabs' });
      const agent = await signInAs(app, 'manytabs', user.password);
      const token = await csrfTokenOf(agent);
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, attempt) =>
          agent
            .post('/account/password')
            .set('Accept', 'text/html')
            .type('form')
            .send({
              current: `guess-${attempt}`,
              password: 'taken-over-1',
              confirm: 'taken-over-1',
              csrf_token: token,
            }),
        ),
      );
      const checked = await db.prisma.auditLog.count({
        where: { action: 'user.password_change', actor: 'manytabs', status: 'failed' },
      });
      expect(checked).toBe(5);
      expect(answers.filter((answer) => answer.status === 400)).toHaveLength(4);
      expect(answers.filter((answer) => answer.status === 429)).toHaveLength(26);
      expect(await metricValue(metrics, 'auth_lockout_start_total')).toBe(1);

      clock = new Date(clock.getTime() + 299_000);
      const right = await changePassword(agent, { current: user.password, password: 'changed-password-1' });
      expect(right.status).toBe(429);
      expect(errorOf(right.text)).toMatch(/^Too many failed attempts\. Try again in 1 s\. Until then /);
      clock = new Date(clock.getTime() + 1_000);
      expect((await changePassword(agent, { current: user.password, password: 'changed-password-1' })).status).toBe(
        303,
      );
    });
  });
});
