import { buildTiers } from './billing-factories.js';
import { signInNewAdmin } from './sign-in.js';
import { buildTestApp, type TestAppOptions } from './test-app.js';
import { createTestDatabase } from './test-database.js';

/**
 * A new database with buildTiers' rates, the app on it, and admin `adminName` (password
 * `<adminName>-password`) signed in: the set-up of a billing test file, for its beforeAll (the
 * file drops `db` in its afterAll).
 */
export async function setUpBillingApp(adminName: string, options: TestAppOptions = {}) {
  const db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db, options);
  const admin = await signInNewAdmin(app, db, adminName);
  return { db, app, admin };
}
