import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two admins with Edit rates open in two tabs: carol makes gov the default tier, then ops, whose page
// still shows mu as the default, makes private the default. It silently undid carol's choice, and the
// audit log read as though ops had chosen private over gov, a tier his page never showed as the default
// (as a move on Tier overrides used to: tiers-stale-form.test.ts). The button now carries the default
// tier its page showed, and a default changed since is a 409.
let db: TestDatabase;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0', APP_TZ: 'UTC' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

/** The fields of the "Make `tier` the default tier" button as the page rendered it. */
async function openDefaultButton(agent: Agent, tier: string) {
  const page = (await agent.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</section>`, 's').exec(page)?.[0] ?? '';
  const form = /<form method="post" action="\/admin\/rates\/default".*?<\/form>/s.exec(card)?.[0] ?? '';
  expect(form, `no default button for ${tier}`).not.toBe('');
  return Object.fromEntries([...form.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((match) => [match[1], match[2]]));
}

async function defaultTier() {
  return (await db.prisma.pricingTier.findFirst({ where: { isDefault: true } }))?.name;
}

const defaultEntries = () => db.prisma.auditLog.count({ where: { action: 'pricing.tier.default' } });

describe('Make … the default tier from a page opened before another admin changed the default', () => {
  it('is refused, saying who made which tier the default, and leaves the default as they made it', async () => {
    const opsButton = await openDefaultButton(ops, 'private');
    expect(opsButton.based_on_default).toBe('mu');
    const carolButton = await openDefaultButton(carol, 'gov');
    await carol.post('/admin/rates/default').type('form').send(carolButton).expect(303);
    expect(await defaultTier()).toBe('gov');
    const entries = await defaultEntries();

    const stale = await ops.post('/admin/rates/default').set('Accept', 'text/html').type('form').send(opsButton);

    expect(stale.status).toBe(409);
    expect(stale.text).toMatch(
      /Default tier not changed\. The default tier was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened: it is now gov, not mu\. The page shows it as it is now; make private the default again if you still mean to\./,
    );
    expect(await defaultTier()).toBe('gov');
    expect(await defaultEntries()).toBe(entries);

    // From the page as it is now, it is made.
    await ops
      .post('/admin/rates/default')
      .type('form')
      .send(await openDefaultButton(ops, 'private'))
      .expect(303);
    expect(await defaultTier()).toBe('private');
  });

  it('is no conflict for the tier that is already the default, or for a default renamed since', async () => {
    const stale = await openDefaultButton(ops, 'gov');
    expect(stale.based_on_default).toBe('private');
    const mu = await openDefaultButton(carol, 'mu');
    await carol.post('/admin/rates/default').type('form').send(mu).expect(303);
    // ops asks for what carol did already: "already the default", not a conflict.
    const already = await ops
      .post('/admin/rates/default')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/rates'))
      .send({
        type: 'mu',
        based_on_default: 'private',
      });
    expect(already.status).toBe(200);
    expect(already.body.tier).toMatchObject({ name: 'mu', isChanged: false });

    // The default (mu) renamed since ops's page was opened is the same tier.
    const page = await openDefaultButton(ops, 'gov');
    const rename = await carol
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol, '/admin/rates'))
      .send({ type: 'mu', name: 'uni' });
    expect(rename.status).toBe(200);
    await ops.post('/admin/rates/default').type('form').send(page).expect(303);
    expect(await defaultTier()).toBe('gov');
  });

  it('leaves a JSON client that sends no based_on_default unchecked, as scripts are', async () => {
    const made = await ops
      .post('/admin/rates/default')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/rates'))
      .send({ type: 'private' });
    expect(made.status).toBe(200);
    expect(made.body.tier).toMatchObject({ name: 'private', previous: 'gov', isChanged: true });
  });
});
