import type { PoolClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Tier changes while a month-end run bills. New rates and another default tier are refused then
// (month-end-runs.test.ts); so is every tier change that can move a user's price partway through
// the run: a move, a removed override, a rename, a tier rules or the fallback send users to. What
// provably prices no one of the run (a new tier nothing sends anyone to, a description, deleting a
// tier no one is on) is still saved.
let db: TestDatabase;
// 2025-09-20 12:00 in Bangkok, moving with the real clock.
const STARTED = Date.now();
const now = () => new Date(Date.parse('2025-09-20T05:00:00Z') + (Date.now() - STARTED));
// The default rules (gov_* to gov, ext_* to private) and one naming lab, a tier not added yet.
const RULES = JSON.stringify([
  { pattern: '^gov[-_.]', tier: 'gov' },
  { pattern: '^(ext|ind)[-_.]', tier: 'private' },
  { pattern: '^lab[-_.]', tier: 'lab' },
]);
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  const app = buildTestApp(db, {
    env: { APP_TZ: 'Asia/Bangkok', PRICING_CACHE_CHECK_MS: '0', PRICING_TIER_RULES: RULES },
    now,
  });
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** A running run's row and a session holding the month-end lock, as a run's process does; `end()` ends both. */
async function startRunIn(database: TestDatabase) {
  const row = await database.prisma.monthEndRun.create({
    data: {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'boss',
      startedAt: new Date('2025-09-20T04:30:00Z'),
      usersTotal: 10,
      usersDone: 4,
    },
  });
  const holder: PoolClient = await database.pool.connect();
  await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.monthEnd]);
  return {
    id: row.id,
    /** What every refusal names: the run, and where its page says when it has finished. */
    named: (refusal: string, split: string, advice: string) =>
      `${refusal}: Month-end run #${row.id} (up to 2025-08-31, started by boss at 2025-09-20 11:30) is billing now, ` +
      `and ${split}. ${advice} once it has finished (its page, /admin/month-end/${row.id}, says when).`,
    async end() {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await database.prisma.monthEndRun.update({
        where: { id: row.id },
        data: { outcome: 'succeeded', finishedAt: now() },
      });
    },
  };
}

type Run = Awaited<ReturnType<typeof startRunIn>>;

/** Everything a refused change must leave as it was. */
async function pricingState(database: TestDatabase = db) {
  return {
    tiers: await database.prisma.pricingTier.findMany({
      orderBy: { id: 'asc' },
      select: { id: true, name: true, description: true, isDefault: true },
    }),
    rates: await database.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } }),
    overrides: await database.prisma.tierOverride.findMany({ orderBy: { username: 'asc' } }),
    audit: await database.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.' } } }),
  };
}

/** The refusal's JSON: its reason, and the run's id and page for a script to wait on. */
const refusalJson = (run: Run, message: string) => ({
  error: message,
  code: 409,
  runId: run.id,
  statusUrl: `/admin/month-end/${run.id}`,
});

const escaped = (text: string) => text.replaceAll("'", '&#39;');
const typedValue = (page: string, id: string) => new RegExp(`id="${id}"[^>]*value="([^"]*)"`).exec(page)?.[1];

async function moveUser(accept: string, fields: Record<string, string>) {
  return admin
    .post('/admin/tiers')
    .set('Accept', accept)
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(admin, '/admin/tiers') });
}

async function postRatesForm(path: string, accept: string, fields: Record<string, string>) {
  return admin
    .post(path)
    .set('Accept', accept)
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(admin, '/admin/rates') });
}

describe('tier overrides while a month-end run bills', () => {
  it('refuses moving a user to another tier (409 naming the run), the row keeping the tier chosen; moves them once it has ended', async () => {
    const before = await pricingState();
    const run = await startRunIn(db);
    const message = run.named(
      'alice not moved to gov',
      "its receipt for alice would be at mu's rates if it has already billed alice, and at gov's if not",
      'Move alice',
    );
    try {
      const refused = await moveUser('application/json', { username: 'alice', tier: 'gov' });
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual(refusalJson(run, message));
      const page = await moveUser('text/html', { username: 'alice', tier: 'gov', based_on_override: '' });
      expect(page.status).toBe(409);
      // In alice's row, where the admin saved, with gov still chosen, to save again once the run has ended.
      const row = /<tbody id="user-alice">[\s\S]*?<\/tbody>/.exec(page.text)?.[0] ?? '';
      expect(row).toContain(
        `<div class="alert error" role="alert" id="tiers-error" tabindex="-1">${escaped(message)}</div>`,
      );
      expect(row).toMatch(/<option value="gov" selected>gov<\/option>/);
      expect(row).not.toMatch(/<option value="mu" selected>/);
      expect(row).toMatch(/<select id="tier-for-alice"[^>]* aria-describedby="tiers-error" autofocus>/);
      expect(row).not.toContain('aria-invalid');
      expect(await pricingState()).toEqual(before);
    } finally {
      await run.end();
    }
    const moved = await moveUser('application/json', { username: 'alice', tier: 'gov' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body.user).toMatchObject({ username: 'alice', override: 'gov', isChanged: true });
  });

  it('refuses removing an override (back to the natural tier) the same way, the override kept', async () => {
    const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
    await db.prisma.tierOverride.create({ data: { username: 'bob', tierId: gov.id, createdBy: 'test' } });
    const before = await pricingState();
    const run = await startRunIn(db);
    const message = run.named(
      'bob not moved back to mu (their natural tier)',
      "its receipt for bob would be at gov's rates if it has already billed bob, and at mu's if not",
      'Move bob',
    );
    try {
      const refused = await moveUser('application/json', { username: 'bob', tier: 'mu' });
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual(refusalJson(run, message));
      const page = await moveUser('text/html', { username: 'bob', tier: 'mu', based_on_override: 'gov' });
      expect(page.status).toBe(409);
      const row = /<tbody id="user-bob">[\s\S]*?<\/tbody>/.exec(page.text)?.[0] ?? '';
      expect(row).toContain(escaped(message));
      expect(row).toMatch(/<option value="mu" selected>mu \(natural\)<\/option>/);
      expect(await pricingState()).toEqual(before);
      // Choosing the tier they are on changes nothing, and is no price split: answered as before.
      const same = await moveUser('application/json', { username: 'bob', tier: 'gov' });
      expect(same.status, same.text).toBe(200);
      expect(same.body.user).toMatchObject({ username: 'bob', override: 'gov', isChanged: false });
    } finally {
      await run.end();
    }
    const removed = await moveUser('application/json', { username: 'bob', tier: 'mu' });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body.user).toMatchObject({ username: 'bob', override: null, isChanged: true });
  });
});

describe('tiers while a month-end run bills', () => {
  it('refuses renaming a tier (409 naming the run), the form keeping what was typed; saves a new description alone', async () => {
    const before = await pricingState();
    const run = await startRunIn(db);
    const message = run.named(
      'mu not renamed to standard',
      'the receipts it has made so far name the tier mu and those still to come would name it standard',
      'Rename it',
    );
    try {
      const refused = await postRatesForm('/admin/rates/tiers/edit', 'application/json', {
        type: 'mu',
        name: 'standard',
      });
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual(refusalJson(run, message));
      const page = await postRatesForm('/admin/rates/tiers/edit', 'text/html', {
        type: 'mu',
        name: 'standard',
        description: 'For everyone',
      });
      expect(page.status).toBe(409);
      expect(page.text).toContain(`${escaped(message)}</div>`);
      expect(typedValue(page.text, 'edit-name-mu')).toBe('standard');
      expect(typedValue(page.text, 'edit-description-mu')).toBe('For everyone');
      expect(await pricingState()).toEqual(before);

      // Rules naming the new name would also move their users onto the tier partway through the run.
      const ruled = await postRatesForm('/admin/rates/tiers/edit', 'application/json', { type: 'gov', name: 'lab' });
      expect(ruled.status, ruled.text).toBe(409);
      expect(ruled.body).toEqual(
        refusalJson(
          run,
          run.named(
            'gov not renamed to lab',
            'the receipts it has made so far name the tier gov and those still to come would name it lab, and ' +
              'PRICING_TIER_RULES would move the usernames matching ^lab[-_.] onto it partway through',
            'Rename it',
          ),
        ),
      );
      expect(await pricingState()).toEqual(before);

      // A description is on no receipt and moves no one: saved during the run.
      const described = await postRatesForm('/admin/rates/tiers/edit', 'application/json', {
        type: 'mu',
        name: 'mu',
        description: 'For everyone',
      });
      expect(described.status, described.text).toBe(200);
      expect(described.body.tier).toMatchObject({ name: 'mu', isDescribed: true, isRenamed: false });
    } finally {
      await run.end();
    }
    const renamed = await postRatesForm('/admin/rates/tiers/edit', 'application/json', {
      type: 'mu',
      name: 'standard',
    });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.tier).toMatchObject({ previous: 'mu', name: 'standard', isRenamed: true });
  });

  it('refuses adding a tier PRICING_TIER_RULES sends users to, the form keeping what was typed; adds and deletes one nothing sends anyone to', async () => {
    const before = await pricingState();
    const run = await startRunIn(db);
    const message = run.named(
      'Tier lab not added',
      'PRICING_TIER_RULES sends usernames matching ^lab[-_.] to it, so those it has already billed would be at ' +
        "their tier's rates and the others at lab's",
      'Add lab',
    );
    const lab = { name: 'lab', description: 'Lab users', cpu: '0.40', gpu: '10.00', mem: '0.04' };
    try {
      const refused = await postRatesForm('/admin/rates/tiers', 'application/json', lab);
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual(refusalJson(run, message));
      const page = await postRatesForm('/admin/rates/tiers', 'text/html', lab);
      expect(page.status).toBe(409);
      expect(page.text).toContain(
        `<div class="alert error" role="alert" id="new-tier-error" tabindex="-1" autofocus>${escaped(message)}</div>`,
      );
      expect(
        ['name', 'description', 'cpu', 'gpu', 'mem'].map((field) => typedValue(page.text, `new-tier-${field}`)),
      ).toEqual(['lab', 'Lab users', '0.40', '10.00', '0.04']);
      expect(await pricingState()).toEqual(before);

      // A tier no rule names, added after the default, prices no one until someone is moved onto it
      // (refused until the run has ended): added. Deleting it, as any tier no one is on, prices no one either.
      const spare = await postRatesForm('/admin/rates/tiers', 'application/json', { ...lab, name: 'spare' });
      expect(spare.status, spare.text).toBe(201);
      expect(spare.body.tier).toMatchObject({ name: 'spare', isDefault: false, rulePatterns: [] });
      const deleted = await postRatesForm('/admin/rates/tiers/delete', 'application/json', { type: 'spare' });
      expect(deleted.status, deleted.text).toBe(200);
      expect(deleted.body.tier).toMatchObject({ name: 'spare', isChanged: true });
    } finally {
      await run.end();
    }
    const added = await postRatesForm('/admin/rates/tiers', 'application/json', lab);
    expect(added.status, added.text).toBe(201);
    expect(added.body.tier).toMatchObject({ name: 'lab', rulePatterns: ['^lab[-_.]'] });
  });
});

describe('the first tier while a month-end run bills', () => {
  let empty: TestDatabase;
  let first: Agent;

  beforeAll(async () => {
    empty = await createTestDatabase();
    await buildUser(empty.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
    first = await signInAs(buildTestApp(empty, { env: { APP_TZ: 'Asia/Bangkok' }, now }), 'boss', 'boss-password');
  });
  afterAll(() => empty?.drop());

  it('is refused (409 naming the run): it would price the users the run has not reached and not those it has', async () => {
    const before = await pricingState(empty);
    const run = await startRunIn(empty);
    const message = run.named(
      'Tier mu not added',
      'no tier prices anyone yet, so mu would price the users it has not reached yet and none of those it has',
      'Add mu',
    );
    const mu = { name: 'mu', cpu: '0.50', gpu: '12.00', mem: '0.05' };
    const add = async () =>
      first
        .post('/admin/rates/tiers')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(first, '/admin/rates'))
        .send(mu);
    try {
      const refused = await add();
      expect(refused.status, refused.text).toBe(409);
      expect(refused.body).toEqual(refusalJson(run, message));
      expect(await pricingState(empty)).toEqual(before);
    } finally {
      await run.end();
    }
    const added = await add();
    expect(added.status, added.text).toBe(201);
    expect(added.body.tier).toMatchObject({ name: 'mu', isDefault: true });
  });
});
