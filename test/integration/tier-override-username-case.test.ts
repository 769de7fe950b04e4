import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { elementById, refusedFormStateOf, visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Accounts are named in lower case, and Tier overrides' search finds zoe for "Zoe": a JSON move of
// "Zoe" was refused as no user (404), where the page moved zoe. A name typed in another case is the
// lower-case user's, as sign-in and the user tools read it (docs/pricing.md); a name that is no
// user's in either case stays a 404 that changes nothing.
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'zoe' });
  // A job owner Slurm names with a capital and no account here: the page lists it, and moves it, so.
  await buildJobs(db, [{ user: 'Kai', end: '2026-11-02T10:00:00Z' }]);
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

async function move(body: Record<string, string>) {
  return ops
    .post('/admin/tiers')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/tiers'))
    .send(body);
}

async function overrides() {
  const rows = await db.prisma.tierOverride.findMany({
    select: { username: true, tier: { select: { name: true } } },
    orderBy: { username: 'asc' },
  });
  return rows.map((row) => [row.username, row.tier.name]);
}

async function lastEntryOf(username: string) {
  return db.prisma.auditLog.findFirst({
    where: { target: `user:${username}`, action: { startsWith: 'pricing.override.' } },
    orderBy: { id: 'desc' },
    select: { action: true, actor: true, target: true, details: true },
  });
}

describe('a JSON move of a user named in another case', () => {
  it('sets, changes and removes the lower-case account’s override, audited under its name', async () => {
    const set = await move({ username: 'Zoe', tier: 'gov' });
    expect(set.status).toBe(200);
    expect(set.body.user).toEqual({ username: 'zoe', override: 'gov', effectiveTier: 'gov', isChanged: true });
    expect(set.body.usernameAsTyped).toBe('Zoe');
    expect(set.body.message).toBe(
      'zoe is now on gov. Zoe read as zoe: usernames are lower case, as sign-in reads them.',
    );
    expect(await overrides()).toEqual([['zoe', 'gov']]);
    expect(await lastEntryOf('zoe')).toEqual({
      action: 'pricing.override.set',
      actor: 'ops',
      target: 'user:zoe',
      details: { previous: null, next: 'gov', naturalTier: 'mu' },
    });

    const changed = await move({ username: ' ZOE ', tier: 'private', based_on_override: 'gov' });
    expect(changed.status).toBe(200);
    expect(changed.body.user).toEqual({
      username: 'zoe',
      override: 'private',
      effectiveTier: 'private',
      isChanged: true,
    });
    expect(changed.body.usernameAsTyped).toBe('ZOE');
    expect(await overrides()).toEqual([['zoe', 'private']]);
    expect(await lastEntryOf('zoe')).toMatchObject({
      action: 'pricing.override.set',
      target: 'user:zoe',
      details: { previous: 'gov', next: 'private' },
    });

    const again = await move({ username: 'zOE', tier: 'private' });
    expect(again.status).toBe(200);
    expect(again.body.user).toMatchObject({ username: 'zoe', isChanged: false });

    const removed = await move({ username: 'zOe', tier: 'mu', based_on_override: 'private' });
    expect(removed.status).toBe(200);
    expect(removed.body.user).toEqual({ username: 'zoe', override: null, effectiveTier: 'mu', isChanged: true });
    expect(await overrides()).toEqual([]);
    expect(await lastEntryOf('zoe')).toEqual({
      action: 'pricing.override.remove',
      actor: 'ops',
      target: 'user:zoe',
      details: { previous: 'private', next: null, naturalTier: 'mu' },
    });
    // Nothing was ever written under the name as typed.
    expect(await db.prisma.auditLog.count({ where: { target: { in: ['user:Zoe', 'user:ZOE', 'user:zOe'] } } })).toBe(0);
  });

  it('answers a name typed in lower case without a note', async () => {
    const set = await move({ username: 'zoe', tier: 'gov' });
    expect(set.status).toBe(200);
    expect(set.body.usernameAsTyped).toBeUndefined();
    expect(set.body.message).toBe('zoe is now on gov.');
    await move({ username: 'zoe', tier: 'mu' });
    expect(await overrides()).toEqual([]);
  });

  it('refuses a name no user has in any case with a 404 that changes nothing', async () => {
    await move({ username: 'zoe', tier: 'gov' });
    const entriesBefore = await db.prisma.auditLog.count();
    const refused = await move({ username: 'Nobody', tier: 'private' });
    expect(refused.status).toBe(404);
    expect(refused.body).toEqual({ error: 'No user or job owner is called "Nobody" (nor "nobody").', code: 404 });
    const lower = await move({ username: 'nobody', tier: 'private' });
    expect(lower.status).toBe(404);
    expect(lower.body.error).toBe('No user or job owner is called "nobody".');
    expect(await overrides()).toEqual([['zoe', 'gov']]);
    expect(await db.prisma.auditLog.count()).toBe(entriesBefore);
    await move({ username: 'zoe', tier: 'mu' });
  });

  it('moves a job owner Slurm names with a capital by that name, as its row on the page does', async () => {
    const set = await move({ username: 'Kai', tier: 'gov' });
    expect(set.status).toBe(200);
    expect(set.body.user).toMatchObject({ username: 'Kai', override: 'gov' });
    expect(set.body.usernameAsTyped).toBeUndefined();
    expect(await overrides()).toEqual([['Kai', 'gov']]);
    expect(await lastEntryOf('Kai')).toMatchObject({ action: 'pricing.override.set', target: 'user:Kai' });
    // "kai" is no one's name: Kai's jobs are not an account kai's.
    const lower = await move({ username: 'kai', tier: 'private' });
    expect(lower.status).toBe(404);
    expect(await overrides()).toEqual([['Kai', 'gov']]);
  });
});

describe('the Tier overrides page', () => {
  it('flashes the user as stored and returns to their row when the name was typed in another case', async () => {
    const moved = await ops
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'ZOE', tier: 'gov', csrf_token: await csrfTokenOf(ops, '/admin/tiers') });
    expect(moved.status).toBe(303);
    expect(moved.headers.location).toBe('/admin/tiers?updated=zoe#user-zoe');
    expect(await overrides()).toEqual([
      ['Kai', 'gov'],
      ['zoe', 'gov'],
    ]);
  });

  // The refusal went to the top of the page, no row marked: the page looked for a row named as typed
  // (ZOE), which no row is, while the move and its success's return (#user-zoe) read it as zoe.
  it.each([
    ['a form opened before the user was moved', { based_on_override: '' }, 409, /^zoe not moved to private\. /],
    [
      'a tier that does not exist',
      { tier: 'gold' },
      400,
      /^Tier: unknown tier \S*gold\S* Known tiers: mu, gov, private\./,
    ],
  ])(
    'refuses %s in the row of the user the name typed in another case reads as',
    async (_case, sent, status, reason) => {
      const before = await overrides();
      const entries = await db.prisma.auditLog.count();
      const refused = await ops
        .post('/admin/tiers')
        .set('Accept', 'text/html')
        .type('form')
        .send({ username: 'ZOE', tier: 'private', ...sent, csrf_token: await csrfTokenOf(ops, '/admin/tiers') });
      expect(refused.status).toBe(status);
      expect(refusedFormStateOf(refused.text).invalid).toEqual(['tier-for-zoe']);
      // The reason that describes it is in zoe's row, not at the page's top.
      const reasonInRow = elementById(elementById(refused.text, 'user-zoe') ?? '', 'tiers-error') ?? '';
      expect(visibleTextOf(reasonInRow)).toMatch(reason);
      expect(refused.text.indexOf('id="tiers-error"')).toBe(refused.text.lastIndexOf('id="tiers-error"'));
      expect(await overrides()).toEqual(before);
      expect(await db.prisma.auditLog.count()).toBe(entries);
    },
  );

  it('refuses a job owner Slurm names with a capital in its own row', async () => {
    const refused = await ops
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        username: 'Kai',
        tier: 'private',
        based_on_override: '',
        csrf_token: await csrfTokenOf(ops, '/admin/tiers'),
      });
    expect(refused.status).toBe(409);
    expect(refusedFormStateOf(refused.text).invalid).toEqual(['tier-for-Kai']);
    expect(await overrides()).toEqual([
      ['Kai', 'gov'],
      ['zoe', 'gov'],
    ]);
  });
});
