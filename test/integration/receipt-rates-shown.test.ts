import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildJobs } from '../support/billing-factories.js';
import { countQueriesDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { elementById, visibleTextOf } from '../support/html.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Create receipt on /me locks the rates in force when it is made (docs/pricing.md), but the form
 * carried nothing of the tier and rates the page estimated at: an admin moving the researcher to
 * another tier, or changing the tier's rates, between the page and the click billed them at rates
 * they never saw (462.04 read, a receipt of 589.74), without a word. The form now sends the rates
 * the page showed (`based_on`); when they are no longer the user's, nothing is billed (409).
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

const WINDOW = 'start=2026-01-01&end=2026-01-31';

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('guardadmin'));
});
afterAll(() => db?.drop());

/** A researcher with one 2 CPU-hour job (1.00 THB on mu, 1.60 on gov), signed in. */
async function researcher(username: string) {
  const user = await buildUser(db.prisma, { username, password: `${username}-password` });
  await buildJobs(db, [{ user: username, end: '2026-01-10T10:00:00Z', totalCpuSec: '7200', stepMemGbHours: '0' }]);
  return signInAs(app, user.username, `${username}-password`);
}

async function rateIdOf(tier: string): Promise<number> {
  const rate = await db.prisma.pricingRate.findFirst({
    where: { tier: { name: tier } },
    orderBy: { id: 'desc' },
    select: { id: true },
  });
  return rate?.id ?? -1;
}

/** The value of the receipt form's hidden based_on on a /me page. */
function basedOnIn(html: string): string | undefined {
  const form = elementById(html, 'create-receipt') ?? '';
  return /<input type="hidden" name="based_on" value="(\d+)"/.exec(form)?.[1];
}

async function adminJson(path: string, body: Record<string, unknown>) {
  const answer = await admin
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send(body);
  expect(answer.status, answer.text).toBe(200);
}

async function createReceipt(agent: Agent, fields: Record<string, unknown>, json = false) {
  const post = agent.post(`/me/receipt?${WINDOW}`);
  if (json) {
    return post
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ before: '2026-01-31', ...fields });
  }
  return post
    .set('Accept', 'text/html')
    .type('form')
    .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent), ...fields });
}

async function receiptsAndAuditOf(username: string) {
  return {
    receipts: await db.prisma.receipt.count({ where: { username } }),
    audit: await db.prisma.auditLog.count({ where: { action: 'receipt.create' } }),
  };
}

describe('Create receipt on /me and the rates the page showed', () => {
  it('carries the rates id the page priced at, in the form and in the JSON', async () => {
    const agent = await researcher('shown');
    const page = await agent.get(`/me?${WINDOW}`).expect(200);
    expect(basedOnIn(page.text)).toBe(String(await rateIdOf('mu')));
    const json = await agent.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200);
    expect(json.body.tier.rates.rateId).toBe(await rateIdOf('mu'));
  });

  it('is refused (409) when an admin moved the user to another tier since, billing nothing', async () => {
    const agent = await researcher('moved');
    const basedOn = basedOnIn((await agent.get(`/me?${WINDOW}`).expect(200)).text);
    await adminJson('/admin/tiers', { username: 'moved', tier: 'gov' });
    const before = await receiptsAndAuditOf('moved');

    const refused = await createReceipt(agent, { based_on: basedOn });
    expect(refused.status, refused.text.slice(0, 300)).toBe(409);
    const reason = visibleTextOf(elementById(refused.text, 'receipt-error') ?? '');
    expect(reason).toBe(
      'No receipt created. The rates this page showed are no longer yours: it estimated your jobs on tier mu at ' +
        'CPU 0.50 THB per core-hour, GPU 12.00 THB per GPU-hour, memory 0.05 THB per GB-hour, and a receipt would ' +
        'now bill them on tier gov at CPU 0.80 THB per core-hour, GPU 18.00 THB per GPU-hour, memory 0.08 THB per ' +
        'GB-hour. Nothing was billed: review the page, whose estimates now use the new rates, and create the receipt again.',
    );
    expect(await receiptsAndAuditOf('moved')).toEqual(before);
    // The page behind the reason estimates at the rates in force, so creating again bills what it shows.
    expect(basedOnIn(refused.text)).toBe(String(await rateIdOf('gov')));
    const again = await createReceipt(agent, { based_on: basedOnIn(refused.text) });
    expect(again.status, again.text.slice(0, 300)).toBe(303);
    const receipt = await db.prisma.receipt.findFirstOrThrow({ where: { username: 'moved' } });
    expect(receipt.tierName).toBe('gov');
    expect(receipt.total.toFixed(2)).toBe('1.60');
  });

  it("is refused (409) as JSON when the tier's rates changed since, billing nothing", async () => {
    const agent = await researcher('repriced');
    await adminJson('/admin/tiers', { username: 'repriced', tier: 'private' });
    const shown = await agent.get(`/me?${WINDOW}`).set('Accept', 'application/json').expect(200);
    const basedOn = shown.body.tier.rates.rateId;
    await adminJson('/formula', { type: 'private', cpu: '2', gpu: '35.00', mem: '0.15' });
    const before = await receiptsAndAuditOf('repriced');

    const refused = await createReceipt(agent, { based_on: basedOn }, true);
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body).toEqual({
      code: 409,
      error:
        'The rates this page showed are no longer yours: it estimated your jobs on tier private at ' +
        'CPU 1.50 THB per core-hour, GPU 35.00 THB per GPU-hour, memory 0.15 THB per GB-hour, and a receipt would ' +
        'now bill them on tier private at CPU 2.00 THB per core-hour, GPU 35.00 THB per GPU-hour, memory 0.15 THB ' +
        'per GB-hour. Nothing was billed: review the page, whose estimates now use the new rates, and create the receipt again.',
      rateId: await rateIdOf('private'),
    });
    expect(await receiptsAndAuditOf('repriced')).toEqual(before);
  });

  it('is created when the rates are still those the page showed, with no query more than without them', async () => {
    const agent = await researcher('unchanged');
    const basedOn = basedOnIn((await agent.get(`/me?${WINDOW}`).expect(200)).text);
    const withField = await countQueriesDuring(db.pool, async () => {
      const created = await createReceipt(agent, { based_on: basedOn });
      expect(created.status, created.text.slice(0, 300)).toBe(303);
    });
    const other = await researcher('unchanged2');
    await csrfTokenOf(other);
    const withoutField = await countQueriesDuring(db.pool, async () => {
      const created = await createReceipt(other, {});
      expect(created.status, created.text.slice(0, 300)).toBe(303);
    });
    expect(withField).toBe(withoutField);
  });

  it('is created as before without the field (scripts), at the rates in force', async () => {
    const agent = await researcher('script');
    await adminJson('/admin/tiers', { username: 'script', tier: 'gov' });
    const created = await createReceipt(agent, {}, true);
    expect(created.status, created.text).toBe(201);
    expect(created.body.receipt.total).toBe('1.60');
  });

  it.each([['abc'], ['-1'], ['1.5'], ['007']])('refuses a based_on of %s (400), billing nothing', async (value) => {
    const username = `bad${value.replace(/\W/g, '')}`;
    const agent = await researcher(username);
    const before = await receiptsAndAuditOf(username);
    const refused = await createReceipt(agent, { based_on: value }, true);
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.error).toMatch(/^based_on: must be/);
    expect(await receiptsAndAuditOf(username)).toEqual(before);
  });

  it('checks against the rates it locks: a rate change committing while the receipt waits for it is refused', async () => {
    const agent = await researcher('raced');
    const basedOn = basedOnIn((await agent.get(`/me?${WINDOW}`).expect(200)).text);
    await csrfTokenOf(agent);
    const before = await receiptsAndAuditOf('raced');
    // A rate change of mu in flight: it holds the pricing lock, as setRates does, until it commits.
    const change = await db.pool.connect();
    try {
      await change.query('BEGIN');
      await change.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK_KEYS.pricingChange]);
      await change.query(
        `INSERT INTO pricing_rates (tier_id, cpu_per_hour, gpu_per_hour, mem_per_hour, currency, effective_from, created_by)
         SELECT id, 0.90, 12, 0.05, 'THB', now(), 'racer' FROM pricing_tiers WHERE name = 'mu'`,
      );
      const pending = createReceipt(agent, { based_on: basedOn }, true);
      expect(await sessionsWaitingForLocks(db.pool)).toBeGreaterThan(0);
      await change.query('COMMIT');
      const refused = await pending;
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body.rateId).toBe(await rateIdOf('mu'));
    } finally {
      change.release();
    }
    expect(await receiptsAndAuditOf('raced')).toEqual(before);
  });
});
