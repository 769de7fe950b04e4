import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A tier whose only rates are scheduled (inserted with SQL for next year, as docs/pricing.md shows)
 * cannot price anyone yet, so no user can be placed on it. Moving a user there by JSON (or an
 * altered form) was refused as 'unknown tier "nextyear". Known tiers: mu, gov, private, nextyear.',
 * which names the tier as known in the sentence that calls it unknown. The refusal now says why,
 * and when the tier can be used, and lists the tiers a user can be placed on.
 */

let db: TestDatabase;
let agent: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await db.prisma.pricingTier.create({
    data: {
      name: 'nextyear',
      rates: {
        create: {
          cpuPerHour: new Prisma.Decimal('0.40'),
          gpuPerHour: new Prisma.Decimal('10.00'),
          memPerHour: new Prisma.Decimal('0.04'),
          currency: 'THB',
          effectiveFrom: new Date('2099-01-01T00:00:00Z'),
          createdBy: 'ops (SQL)',
        },
      },
    },
  });
  // A tier row with no rates at all (made by hand in SQL).
  await db.prisma.pricingTier.create({ data: { name: 'empty' } });
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  await buildUser(db.prisma, { username: 'zed' });
  agent = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

/** What a refused move must leave as it was. */
async function overridesAndAudit() {
  return {
    overrides: await db.prisma.tierOverride.findMany({ select: { username: true, tierId: true } }),
    audit: await db.prisma.auditLog.count(),
  };
}

async function moveAsJson(tier: string, status: number) {
  return agent
    .post('/admin/tiers')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send({ username: 'zed', tier })
    .expect(status);
}

describe('moving a user to a tier without rates in force', () => {
  it('says the tier has only scheduled rates, from when, and which tiers can be chosen; changes nothing', async () => {
    const before = await overridesAndAudit();
    const refused = await moveAsJson('nextyear', 400);
    expect(refused.body.error).toBe(
      'tier: nextyear has no rates in force yet (its first rates take effect at 2099-01-01 00:00), so no user ' +
        'can be placed on it before then. Tiers with rates in force: mu, gov, private.',
    );
    expect(refused.body.error).not.toMatch(/unknown tier/);
    expect(await overridesAndAudit()).toEqual(before);
  });

  it('says a tier with no rates at all needs rates first; changes nothing', async () => {
    const before = await overridesAndAudit();
    const refused = await moveAsJson('empty', 400);
    expect(refused.body.error).toBe(
      'tier: empty has no rates yet, so no user can be placed on it; set its rates on the Rates page ' +
        '(/admin/rates) first. Tiers with rates in force: mu, gov, private.',
    );
    expect(await overridesAndAudit()).toEqual(before);
  });

  it('shows the same reason on the page, by the field’s label', async () => {
    const before = await overridesAndAudit();
    const refused = await agent
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'zed', tier: 'nextyear', csrf_token: await csrfTokenOf(agent, '/admin/tiers') })
      .expect(400);
    expect(refused.text).toContain(
      'Tier: nextyear has no rates in force yet (its first rates take effect at 2099-01-01 00:00), so no user can be ' +
        'placed on it before then. Tiers with rates in force: mu, gov, private.',
    );
    expect(await overridesAndAudit()).toEqual(before);
  });

  it('still calls a tier no one has made unknown, listing the tiers there are', async () => {
    const refused = await moveAsJson('platinum', 400);
    expect(refused.body.error).toBe('tier: unknown tier "platinum". Known tiers: mu, gov, private, nextyear, empty.');
  });
});
