import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
});
afterAll(() => db?.drop());

// Behind a load balancer, an instance told to stop drains first (SHUTDOWN_DRAIN_DELAY_MS), serving on
// while /readyz says 503. A month-end started on it then was accepted (202, "Month-end run #6
// started") and, as the drain ended, recorded interrupted "after 0 of 30 users" (seen on two
// instances): the admin was told it had started, and had to find out and start it again. It is now
// refused at once, as while the process stops, and the next start goes to an instance that stays.
describe('a month-end run asked of an instance draining before a shutdown', () => {
  it('is refused with 503 and starts nothing; once not draining it starts', async () => {
    let isDraining = true;
    const config = buildTestConfig(db.url);
    const app = createApp({
      config,
      db,
      logger: createLogger('silent'),
      metrics: createMetrics({ hasProcessMetrics: false }),
      isDraining: () => isDraining,
    });
    const admin = await signInAs(app, 'boss', 'boss-password');
    const start = async () =>
      admin
        .post('/admin/month-end')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ before: '2025-09-01' });

    const refused = await start();
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('The app is stopping; start the month-end run again in a moment.');
    expect(await db.prisma.monthEndRun.count()).toBe(0);

    isDraining = false;
    const started = await start();
    expect(started.status, started.text.slice(0, 300)).toBe(202);
    expect(await db.prisma.monthEndRun.count()).toBe(1);
    // The run goes on after its 202: it must end before afterAll closes the pool under it (the drop
    // hung for the hook's 120 s once, in a README run, with the run's transaction left open).
    await expect
      .poll(async () => (await db.prisma.monthEndRun.findFirstOrThrow()).outcome, { timeout: 60_000 })
      .not.toBe('running');
  });
});
