import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A role or state the user already has (a second tab, a double click, a page opened before another
// admin's change) changed nothing and audited nothing, yet was confirmed as "bob is now a user.":
// the admin read that they had changed something.
let db: TestDatabase;
let chief: Agent;
let bobId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  bobId = (await buildUser(db.prisma, { username: 'bob', password: 'bob-password-123' })).id;
  chief = await signInAs(buildTestApp(db), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

const audits = () => db.prisma.auditLog.count({ where: { target: 'user:bob' } });

/** The flash the users page shows after a change: its kind and text. */
async function flashAfter(path: string, body: Record<string, string>): Promise<string> {
  const answer = await chief
    .post(path)
    .type('form')
    .send({ ...body, csrf_token: await csrfTokenOf(chief) })
    .expect(303);
  const page = await chief
    .get(answer.headers.location as string)
    .set('Accept', 'text/html')
    .expect(200);
  const flash = /<div class="alert (\w+)" role="status">([^<]*)</.exec(page.text);
  return flash ? `${flash[1]}: ${flash[2]}` : page.text;
}

describe('a role or state the user already has', () => {
  it('says nothing was changed, on the page and in JSON, and audits nothing', async () => {
    const before = await audits();
    expect(await flashAfter(`/admin/users/${bobId}/role`, { role: 'user' })).toBe(
      'warning: bob is already a user; nothing was changed.',
    );
    expect(await flashAfter(`/admin/users/${bobId}/enable`, {})).toBe(
      'warning: bob is already enabled; nothing was changed.',
    );
    const json = await chief
      .post(`/admin/users/${bobId}/role`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(chief))
      .send({ role: 'user' })
      .expect(200);
    expect(json.body).toMatchObject({ user: { username: 'bob', role: 'user' }, isChanged: false });
    expect(await audits()).toBe(before);
  });

  it('still confirms a change that was made', async () => {
    const before = await audits();
    expect(await flashAfter(`/admin/users/${bobId}/disable`, {})).toBe('success: bob is disabled.');
    const json = await chief
      .post(`/admin/users/${bobId}/enable`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(chief))
      .send({})
      .expect(200);
    expect(json.body).toMatchObject({ user: { username: 'bob', isDisabled: false }, isChanged: true });
    expect(await audits()).toBe(before + 2);
  });
});
