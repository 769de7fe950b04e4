import { expect } from 'vitest';
import { amountDueOf, buildJobs } from './billing-factories.js';
import { createPaidCsvStory } from './paid-csv-story.js';
import { type Agent, csrfTokenOf } from './sign-in.js';
import type { TestDatabase } from './test-database.js';

/**
 * The steps of the stories of a voided receipt's money (a receipt paid by hand, voided for the wrong
 * tier, its jobs billed again at another): the voided-money tests each wrote them out. `database` and
 * `signIn` are read when a step runs, so they may return what a beforeAll sets up.
 */
export function createVoidedMoneyStory(database: () => TestDatabase, signIn: (username: string) => Promise<Agent>) {
  const { billEverything } = createPaidCsvStory(database);

  /** Puts the user on the tier named, as an admin's override would. */
  async function putOn(username: string, tierName: string) {
    const tier = await database().prisma.pricingTier.findUniqueOrThrow({ where: { name: tierName } });
    await database().prisma.tierOverride.upsert({
      where: { username },
      create: { username, tierId: tier.id, createdBy: 'finance' },
      update: { tierId: tier.id },
    });
  }

  /** Posts `body` as JSON with the agent's CSRF token. */
  async function post(admin: Agent, path: string, body: Record<string, unknown>) {
    return admin
      .post(path)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send(body);
  }

  /** A receipt of one hour of CPU, paid by hand at `firstTier`, voided, and billed again at `againTier`. */
  async function billedAgainAfterHandPaidVoid(username: string, firstTier: string, againTier: string) {
    const db = database();
    await buildJobs(db, [{ user: username, end: '2025-09-01T03:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' }]);
    await putOn(username, firstTier);
    const researcher = await signIn(username);
    const first = await billEverything(researcher);
    const admin = await signIn('finance');
    const paid = await post(admin, `/admin/receipts/${first}/paid`, {
      method: 'bank_transfer',
      amount_received: await amountDueOf(db, first),
      tx_ref: `BT-${username}`,
    });
    expect(paid.status, paid.text).toBe(200);
    expect((await post(admin, `/admin/receipts/${first}/void`, { reason: 'billed at the wrong tier' })).status).toBe(
      200,
    );
    await putOn(username, againTier);
    const again = await billEverything(researcher);
    return { admin, researcher, first, again };
  }

  return { putOn, post, billedAgainAfterHandPaidVoid };
}
