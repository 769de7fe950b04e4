import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { postFormIn } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two admins with the Users page open both reset bob's password: each was shown a new password,
// "shown once", and the one whose reset committed first handed bob a password that no longer worked.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  app = buildTestApp(db);
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

/** The fields of `username`'s Reset password form as the Users page rendered them. */
async function openResetForm(agent: Agent, username: string) {
  const user = await db.prisma.user.findUniqueOrThrow({ where: { username } });
  const page = (await agent.get(`/admin/users?q=${username}`).set('Accept', 'text/html').expect(200)).text;
  const form = postFormIn(page, `/admin/users/${user.id}/password`) ?? '';
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(form)?.[1];
  return {
    action: `/admin/users/${user.id}/password`,
    csrf: field('csrf_token'),
    basedOn: field('based_on_password_changed_at'),
  };
}

const hashOf = async (username: string) =>
  (await db.prisma.user.findUniqueOrThrow({ where: { username } })).passwordHash;

describe('two admins resetting the same password', () => {
  it('refuses the second with 409 naming who reset it and when, and keeps the first one', async () => {
    await buildUser(db.prisma, { username: 'bob', password: 'bob-password-123' });
    const opsForm = await openResetForm(ops, 'bob');
    const carolForm = await openResetForm(carol, 'bob');
    // '' for a user built without the stamp (as before it was stored); digits once set.
    expect(opsForm.basedOn).toBe('');

    const first = await carol
      .post(carolForm.action)
      .set('Accept', 'text/html')
      .type('form')
      .send({ based_on_password_changed_at: carolForm.basedOn, csrf_token: carolForm.csrf });
    expect(first.status).toBe(200);
    const carolsPassword = /<code class="secret">([^<]*)<\/code>/.exec(first.text)?.[1] ?? '';
    expect(carolsPassword).not.toBe('');
    const hash = await hashOf('bob');
    const entries = await db.prisma.auditLog.count({ where: { action: 'user.password_reset' } });

    const second = await ops
      .post(opsForm.action)
      .set('Accept', 'text/html')
      .type('form')
      .send({ based_on_password_changed_at: opsForm.basedOn, csrf_token: opsForm.csrf });
    expect(second.status).toBe(409);
    expect(second.text).toMatch(
      /The password of bob was reset by carol at \d{4}-\d\d-\d\d \d\d:\d\d, after this page was opened, and carol has the new one; yours was not set\. Reload the page to reset it again, only if it still needs a new password\./,
    );
    expect(second.text).not.toContain('<code class="secret">');
    expect(await hashOf('bob')).toBe(hash);
    expect(await db.prisma.auditLog.count({ where: { action: 'user.password_reset' } })).toBe(entries);
    await signInAs(buildTestApp(db), 'bob', carolsPassword);

    // A JSON client is told the same; the page opened again resets it.
    const json = await ops
      .post(opsForm.action)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', opsForm.csrf ?? '')
      .send({ based_on_password_changed_at: opsForm.basedOn, password: 'ops-chose-this-1' });
    expect(json.status).toBe(409);
    expect(json.body.error).toMatch(/^The password of bob was reset by carol at /);
    expect(await hashOf('bob')).toBe(hash);
    const reloaded = await openResetForm(ops, 'bob');
    expect(reloaded.basedOn).toMatch(/^\d+$/);
    await ops
      .post(reloaded.action)
      .type('form')
      .send({ based_on_password_changed_at: reloaded.basedOn, csrf_token: reloaded.csrf })
      .expect(200);
    expect(await hashOf('bob')).not.toBe(hash);
  });

  it('names the user when they changed it themselves, and takes a script that sends no stamp', async () => {
    await buildUser(db.prisma, { username: 'dana', password: 'dana-password-123' });
    const opsForm = await openResetForm(ops, 'dana');
    const dana = await signInAs(app, 'dana', 'dana-password-123');
    const page = (await dana.get('/account').set('Accept', 'text/html').expect(200)).text;
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page)?.[1];
    await dana
      .post('/account/password')
      .type('form')
      .send({
        current: 'dana-password-123',
        password: 'dana-password-456',
        confirm: 'dana-password-456',
        csrf_token: csrf,
      })
      .expect(303);
    const stale = await ops
      .post(opsForm.action)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', opsForm.csrf ?? '')
      .send({ based_on_password_changed_at: opsForm.basedOn });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(
      /^The password of dana was changed by dana at \d{4}-\d\d-\d\d \d\d:\d\d, after this page was opened; yours was not set\./,
    );
    await signInAs(buildTestApp(db), 'dana', 'dana-password-456');
    // No stamp sent (a script): nothing to compare, the reset is made.
    const script = await ops
      .post(opsForm.action)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', opsForm.csrf ?? '')
      .send({ password: 'ops-chose-this-2' });
    expect(script.status).toBe(200);
    await signInAs(buildTestApp(db), 'dana', 'ops-chose-this-2');
  });
});
