import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage names one tier and its rates above the jobs, but a billed job costs what its receipt
 * priced it at: another tier (an override set since) or older rates (changed since). A researcher
 * checking a billed row with a calculator against the rates on the page (or on /rates) could not
 * make it add up, and the page only said that unbilled costs are estimates. It now says where a
 * billed job's rates are.
 */
let db: TestDatabase;
let fay: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'fay', password: 'fay-password' });
  await buildJobs(db, [{ user: 'fay', end: '2025-09-18T05:00:00Z', totalCpuSec: '3600' }]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  fay = await signInAs(app, 'fay', 'fay-password');
});
afterAll(() => db?.drop());

describe('the rates line of My usage', () => {
  it('says a billed job is priced at the rates on its receipt, not the ones shown', async () => {
    const text = visibleTextOf((await fay.get('/me').set('Accept', 'text/html').expect(200)).text);
    expect(text).toContain(
      'Costs of unbilled jobs are estimates at these rates. A billed job costs what its receipt says, at the tier and rates printed on that receipt.',
    );
  });
});
