import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My receipts writes when each receipt was made, and up to when a receipt made on its own last day
 * billed, in APP_TZ, and said in which zone nowhere: in Honolulu "Created 2026-12-05 21:27" read as
 * the day after to a researcher who took it for UTC. The list says it under its heading, as the
 * price list and My usage do.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

describe('My receipts', () => {
  it('says in which time zone its times are written', async () => {
    const app = buildTestApp(db, { env: { APP_TZ: 'Pacific/Honolulu' } });
    const user = await buildUser(db.prisma, { username: 'kai' });
    await buildJobs(db, [{ user: 'kai', end: new Date('2026-01-10T10:00:00Z') }]);
    const agent = await signInAs(app, 'kai', user.password);
    await billJobs(agent, '2026-01-31');
    const page = await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Times are in Pacific/Honolulu.');
  });

  it('a receipt page and its print say the zone of its Created time', async () => {
    // The receipt's "Jobs ended up to" named the zone; its Created time, a line above, did not.
    const app = buildTestApp(db, { env: { APP_TZ: 'Pacific/Honolulu' } });
    const user = await buildUser(db.prisma, { username: 'lani' });
    await buildJobs(db, [{ user: 'lani', end: new Date('2026-01-10T10:00:00Z') }]);
    const agent = await signInAs(app, 'lani', user.password);
    const receiptPath = `/me/receipts/${await billJobs(agent, '2026-01-31')}`;
    for (const path of [receiptPath, `${receiptPath}/print`]) {
      const page = await agent.get(path).set('Accept', 'text/html').expect(200);
      const created = /<dt>Created<\/dt><dd>(.*?)<\/dd>/s.exec(page.text)?.[1] ?? '';
      expect(created.replace(/<[^>]+>/g, ''), path).toMatch(
        /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} Pacific\/Honolulu by lani$/,
      );
    }
  });
});
