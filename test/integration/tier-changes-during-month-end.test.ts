import type { PoolClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_KEYS } from '../../src/db/advisory-locks.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Tier changes while a month-end run bills. New rates and another default tier are refused then
// (month-end-runs.test.ts); so is a move on Tier overrides, which can move a user's price partway
// through the run.
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

async function moveUser(accept: string, fields: Record<string, string>) {
  return admin
    .post('/admin/tiers')
    .set('Accept', accept)
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(admin, '/admin/tiers') });
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
