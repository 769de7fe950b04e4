import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused password change comes back as the Account page with every password field empty (a
 * password is never sent back). The focus started on the field the reason was about: after "New
 * password again: does not match the new password" on New password again, under an empty Current
 * password and New password, so a keyboard user typed it again, pressed Enter and was stopped by the
 * browser at Current password, told nothing of having to type the other two again. The focus now
 * starts on Current password, the first field to fill again, described by the reason; the field the
 * reason is about stays marked invalid.
 */
describe('a refused password change on the Account page', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(() => db.drop());

  const changePassword = async (agent: Agent, fields: { current: string; password: string; confirm: string }) =>
    agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({ ...fields, csrf_token: await csrfTokenOf(agent) });
  /** The `<input>` tag of the field `id` in the page. */
  const fieldOf = (html: string, id: string) => new RegExp(`<input id="${id}"[^>]*>`).exec(html)?.[0] ?? '';
  const hashOf = async (username: string) =>
    (await db.prisma.user.findUniqueOrThrow({ where: { username } })).passwordHash;

  it.each([
    ['a mismatch', 'confirm', { password: 'new-password-1', confirm: 'different-1' }],
    ['a new password equal to the current one', 'password', {}],
  ])('after %s, starts the focus at Current password, described by the reason', async (_case, refused, change) => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: `refocus_${refused}` });
    const agent = await signInAs(app, user.username, user.password);
    const hash = await hashOf(user.username);
    const page = await changePassword(agent, {
      current: user.password,
      password: user.password,
      confirm: user.password,
      ...change,
    });
    expect(page.status).toBe(400);
    const current = fieldOf(page.text, 'current');
    expect(current).toContain('autofocus');
    expect(current).toContain('aria-describedby="password-error"');
    // The field the reason is about is still marked, without taking the focus; every field is empty.
    expect(fieldOf(page.text, refused)).toContain('aria-invalid="true"');
    expect(fieldOf(page.text, refused)).not.toContain('autofocus');
    expect(page.text.match(/ autofocus/g)).toHaveLength(1);
    for (const id of ['current', 'password', 'confirm']) expect(fieldOf(page.text, id)).not.toContain('value=');
    // Nothing changed.
    expect(await hashOf(user.username)).toBe(hash);
  });

  it('after a wrong current password, keeps the focus there, as before', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'refocus_wrong' });
    const agent = await signInAs(app, user.username, user.password);
    const page = await changePassword(agent, {
      current: 'wrong',
      password: 'new-password-1',
      confirm: 'new-password-1',
    });
    expect(page.status).toBe(400);
    const current = fieldOf(page.text, 'current');
    expect(current).toContain('aria-invalid="true"');
    expect(current).toContain('aria-describedby="password-error"');
    expect(current).toContain('autofocus');
  });
});
