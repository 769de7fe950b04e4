import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A script that sets rates with `based_on` (the rateId it read from GET /admin/rates) after another
 * admin's change is refused with 409, as the page's form is. Its answer told it "The form keeps the
 * rates you changed and shows the others as they are now; check it and submit again": a script has
 * no form, and the answer did not carry the rateId to send next, so it could only read the rates
 * again and guess. It now says what to send and carries the rates in force as /admin/rates writes
 * them (`current`, with its `rateId`).
 */
let db: TestDatabase;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

async function currentOf(agent: Agent, tier: string) {
  const rates = await agent.get('/admin/rates').set('Accept', 'application/json').expect(200);
  return rates.body.tiers.find((each: { name: string }) => each.name === tier).current;
}

async function postRates(agent: Agent, body: Record<string, unknown>) {
  return agent
    .post('/admin/rates')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send(body);
}

describe('a script setting rates from rates someone changed since', () => {
  it('is told, in its own terms, the rates in force and the based_on to send, and nothing is saved', async () => {
    const read = await currentOf(ops, 'gov');
    expect(
      (await postRates(carol, { type: 'gov', cpu: '0.85', gpu: '18', mem: '0.08', based_on: read.rateId })).status,
    ).toBe(200);
    const now = await currentOf(ops, 'gov');
    const rows = await db.prisma.pricingRate.count();

    const stale = await postRates(ops, { type: 'gov', cpu: '0.80', gpu: '20', mem: '0.08', based_on: read.rateId });
    expect(stale.status).toBe(409);
    expect(stale.body.code).toBe(409);
    expect(stale.body.error).toMatch(
      new RegExp(
        `^Rates of gov not changed\\. They were changed by carol at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d after the rates sent as based_on \\(${read.rateId}\\): now CPU core-hour 0\\.85, GPU-hour 18, Memory GB-hour 0\\.08 \\(rateId ${now.rateId}\\)\\. Check your change against them, then send it again with based_on ${now.rateId}\\.$`,
      ),
    );
    expect(stale.body.error).not.toContain('form');
    expect(stale.body.tier).toBe('gov');
    expect(stale.body.current).toEqual(now);
    expect(await db.prisma.pricingRate.count()).toBe(rows);

    // Sent again with the based_on it was given, the change goes through.
    const again = await postRates(ops, { type: 'gov', cpu: '0.85', gpu: '20', mem: '0.08', based_on: now.rateId });
    expect(again.status).toBe(200);
    expect(again.body.updated).toMatchObject({ cpu: '0.85', gpu: '20.00', isChanged: true });
  });

  it('moving a user from an override someone changed since is told the based_on_override to send', async () => {
    await buildUser(db.prisma, { username: 'zed' });
    const move = async (agent: Agent, body: Record<string, unknown>) =>
      agent
        .post('/admin/tiers')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send(body);
    expect((await move(carol, { username: 'zed', tier: 'gov', based_on_override: '' })).status).toBe(200);

    // ops read zed with no override, and moves them to private.
    const stale = await move(ops, { username: 'zed', tier: 'private', based_on_override: '' });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(
      /^zed not moved to private\. Their tier was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after the based_on_override sent \(""\): now gov \(override\)\. Check the move against it, then send it again with based_on_override "gov"\.$/,
    );
    expect(stale.body.error).not.toContain('list');
    expect(stale.body).toMatchObject({ code: 409, username: 'zed', override: 'gov' });
    const kept = await db.prisma.tierOverride.findUniqueOrThrow({
      where: { username: 'zed' },
      include: { tier: true },
    });
    expect(kept.tier.name).toBe('gov');

    const again = await move(ops, { username: 'zed', tier: 'private', based_on_override: stale.body.override });
    expect(again.status).toBe(200);
    expect(again.body.user).toMatchObject({ username: 'zed', override: 'private', isChanged: true });
  });

  it('renaming or describing a tier whose description someone changed since is told the based_on_description to send', async () => {
    const edit = async (agent: Agent, body: Record<string, unknown>) =>
      agent
        .post('/admin/rates/tiers/edit')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send(body);
    expect(
      (
        await edit(carol, {
          type: 'private',
          name: 'private',
          description: 'Companies and others',
          based_on_description: '',
        })
      ).status,
    ).toBe(200);

    const stale = await edit(ops, {
      type: 'private',
      name: 'private',
      description: 'Paying outsiders',
      based_on_description: '',
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(
      /^Tier private not changed\. Its description was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after the based_on_description sent \(empty\): now “Companies and others”\. Check your text against it, then send it again with based_on_description set to the description now \(description in this answer\)\.$/,
    );
    expect(stale.body.error).not.toContain('form');
    expect(stale.body).toMatchObject({ code: 409, tier: 'private', description: 'Companies and others' });

    const again = await edit(ops, {
      type: 'private',
      name: 'private',
      description: 'Paying outsiders',
      based_on_description: stale.body.description,
    });
    expect(again.status).toBe(200);
  });

  it('making a tier the default over a default someone changed since is told the based_on_default to send', async () => {
    const makeDefault = async (agent: Agent, body: Record<string, unknown>) =>
      agent
        .post('/admin/rates/default')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(agent))
        .send(body);
    expect((await makeDefault(carol, { type: 'gov', based_on_default: 'mu' })).status).toBe(200);

    const stale = await makeDefault(ops, { type: 'private', based_on_default: 'mu' });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(
      /^The default tier was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after the based_on_default sent \(mu\): it is now gov\. Check the change against it, then send it again with based_on_default "gov"\.$/,
    );
    expect(stale.body).toMatchObject({ code: 409, defaultTier: 'gov' });
    expect((await db.prisma.pricingTier.findFirstOrThrow({ where: { isDefault: true } })).name).toBe('gov');

    const again = await makeDefault(ops, { type: 'private', based_on_default: stale.body.defaultTier });
    expect(again.status).toBe(200);
    expect(again.body.tier).toMatchObject({ name: 'private', previous: 'gov', isChanged: true });
  });
});
