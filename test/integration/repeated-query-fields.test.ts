import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A filter given twice (an edited address, a bookmark made from two forms) is refused as every
 * other field given twice is: 400, the page back with the reason. On Usage across users the User,
 * Account and Partition filters answered 500 ("Something went wrong"), as the page's CSV link
 * label read them as text.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

describe('Usage across users with a filter given twice', () => {
  it.each([
    ['user', 'User'],
    ['account', 'Account'],
    ['partition', 'Partition'],
  ])('?%s=a&%s=b is a 400 naming the filter, with the form to correct it', async (field, label) => {
    const page = await admin.get(`/admin/usage?${field}=a&${field}=b`).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).toContain(`${label}: must be given once`);
    // The form is there to correct it, and the exports it would refuse are not offered.
    expect(page.text).toContain(`<input id="${field}" name="${field}" value=""`);
    expect(page.text).toContain('Download these jobs (CSV): needs a valid window and filters');
  });
});
