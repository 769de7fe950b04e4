import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { type Agent, csrfTokenOf, signInNewAdmin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db);
  admin = await signInNewAdmin(app, db, 'wrongtypes-admin');
});
afterAll(() => db?.drop());

async function postJson(path: string, body: unknown) {
  const token = await csrfTokenOf(admin);
  return admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', token)
    .send(body as object);
}

// A text field sent as another JSON type was told "is required", as if it had not been sent.
describe('a JSON client sending a text field as another type', () => {
  const wrongValues: [string, unknown][] = [
    ['a number', 12345678901],
    ['true', true],
    ['an object', { text: 'refunded at the bank' }],
  ];
  const routes: [string, Record<string, unknown>][] = [
    ['/admin/payments/999/resolve', { outcome: 'dismissed' }],
    ['/admin/payments/refused-claims/999/settle', {}],
  ];
  for (const [path, rest] of routes) {
    it.each(wrongValues)(
      `${path}: a note sent as %s is told it must be text, and nothing is written`,
      async (_name, note) => {
        const auditBefore = await db.prisma.auditLog.count();
        const response = await postJson(path, { ...rest, note });
        expect(response.status, response.text).toBe(400);
        expect(response.body).toEqual({ error: 'note: must be text', code: 400 });
        expect(await db.prisma.auditLog.count()).toBe(auditBefore);
      },
    );
  }

  it('a note left out is still "is required"', async () => {
    const response = await postJson('/admin/payments/refused-claims/999/settle', {});
    expect(response.body).toEqual({ error: 'note: is required', code: 400 });
  });
});
