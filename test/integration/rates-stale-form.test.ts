import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two admins with the Rates page open: the form sends all three rates, so a form opened before
// someone else's change would put the rates it did not mean to touch back as they were.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

/** A rates form's refusal on the page when its hidden based_on came back as no rates of its tier. */
const ALTERED_BASED_ON =
  'This form came back with its record of the rates it was opened on altered, so whether someone changed them since could not be checked. It keeps the rates you typed: submit it again to set them, or reload the page to see the rates in force.';

/** The hidden fields of a tier's rates form as the page rendered them. */
async function openRatesForm(agent: Agent, tier: string) {
  const page = (await agent.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</form>`, 's').exec(page)?.[0] ?? '';
  const basedOn = /name="based_on" value="(\d+)"/.exec(card)?.[1];
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(card)?.[1];
  return { basedOn, csrf };
}

async function ratesInForce(tier: string) {
  const rate = await db.prisma.pricingRate.findFirstOrThrow({
    where: { tier: { name: tier } },
    orderBy: [{ effectiveFrom: 'desc' }, { id: 'desc' }],
  });
  return { cpu: rate.cpuPerHour.toFixed(), gpu: rate.gpuPerHour.toFixed(), mem: rate.memPerHour.toFixed() };
}

describe('a rates form opened before another admin changed the rates', () => {
  it('is refused with what changed and by whom, and saves nothing, instead of undoing the change', async () => {
    const opsForm = await openRatesForm(ops, 'mu');
    expect(opsForm.basedOn).toMatch(/^\d+$/);
    const carolForm = await openRatesForm(carol, 'mu');
    await carol
      .post('/admin/rates')
      .type('form')
      .send({ type: 'mu', cpu: '0.5', gpu: '15', mem: '0.05', based_on: carolForm.basedOn, csrf_token: carolForm.csrf })
      .expect(303);
    expect(await ratesInForce('mu')).toEqual({ cpu: '0.5', gpu: '15', mem: '0.05' });
    const rows = await db.prisma.pricingRate.count();
    const entries = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });

    // ops meant to change the CPU rate only; the GPU field still shows the 12 of the page he opened.
    const stale = await ops
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'mu', cpu: '0.6', gpu: '12', mem: '0.05', based_on: opsForm.basedOn, csrf_token: opsForm.csrf });
    expect(stale.status).toBe(409);
    expect(stale.text).toMatch(
      /Rates of mu not changed\. They were changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened: now CPU core-hour 0\.5, GPU-hour 15, Memory GB-hour 0\.05\. The form keeps the rates you changed and shows the others as they are now; check it and submit again\./,
    );
    // The rate ops changed stays as typed; the one he left alone shows carol's 15, not the stale 12.
    expect(stale.text).toContain('id="cpu-mu" name="cpu" inputmode="decimal" required value="0.6"');
    expect(stale.text).toContain('id="gpu-mu" name="gpu" inputmode="decimal" required value="15"');
    expect(stale.text).toContain('id="mem-mu" name="mem" inputmode="decimal" required value="0.05"');
    const refusedForm = /<section class="card" id="tier-mu">.*?<\/form>/s.exec(stale.text)?.[0] ?? '';
    const reloaded = await openRatesForm(ops, 'mu');
    expect(reloaded.basedOn).not.toBe(opsForm.basedOn);
    expect(refusedForm).toContain(`name="based_on" value="${reloaded.basedOn}"`);
    expect(await ratesInForce('mu')).toEqual({ cpu: '0.5', gpu: '15', mem: '0.05' });
    expect(await db.prisma.pricingRate.count()).toBe(rows);
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(entries);

    // JSON clients are told the same, with a 409.
    const token = await csrfTokenOf(ops);
    const json = await ops
      .post('/admin/rates')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ type: 'mu', cpu: '0.6', gpu: '12', mem: '0.05', based_on: Number(opsForm.basedOn) });
    expect(json.status).toBe(409);
    // Whose rates, as the page says: "They were changed" alone named no tier.
    expect(json.body.error).toMatch(/^Rates of mu not changed\. They were changed by carol at /);

    // Sent again as the refused page shows it, the change goes through, carol's rate kept.
    await ops
      .post('/admin/rates')
      .type('form')
      .send({ type: 'mu', cpu: '0.6', gpu: '15', mem: '0.05', based_on: reloaded.basedOn, csrf_token: reloaded.csrf })
      .expect(303);
    expect(await ratesInForce('mu')).toEqual({ cpu: '0.6', gpu: '15', mem: '0.05' });
  });

  it('still answers a double submit as "already these", not as a conflict', async () => {
    const form = await openRatesForm(ops, 'gov');
    const send = () =>
      ops
        .post('/admin/rates')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', form.csrf ?? '')
        .send({ type: 'gov', cpu: '0.9', gpu: '18', mem: '0.08', based_on: form.basedOn });
    expect((await send()).body.updated).toMatchObject({ isChanged: true });
    const second = await send();
    expect(second.status).toBe(200);
    expect(second.body.updated).toMatchObject({ isChanged: false });
  });

  it('refuses a based_on that names rates of another tier, rather than say someone changed these', async () => {
    // A script that took the rateId of gov's audit entry for mu's was told mu's rates "were changed by
    // demo-seed at 2020-01-01 after this page was opened": no one had changed them.
    const govForm = await openRatesForm(ops, 'gov');
    const muBefore = await ratesInForce('mu');
    const rows = await db.prisma.pricingRate.count();
    const send = (basedOn: number) =>
      ops
        .post('/formula')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', govForm.csrf ?? '')
        .send({ type: 'mu', cpu: '0.7', gpu: muBefore.gpu, mem: muBefore.mem, based_on: basedOn });
    const otherTiers = await send(Number(govForm.basedOn));
    expect(otherTiers.status).toBe(400);
    expect(otherTiers.body.error).toMatch(
      new RegExp(`^based_on: ${govForm.basedOn} names no rates of mu \\(its rates in force are \\d+\\)`),
    );
    const none = await send(2_000_000);
    expect(none.status).toBe(400);
    expect(none.body.error).toMatch(/^based_on: 2000000 names no rates of mu/);
    expect(await ratesInForce('mu')).toEqual(muBefore);
    expect(await db.prisma.pricingRate.count()).toBe(rows);

    // On the page, in the tier's card, as any other refusal of its form.
    const page = await ops.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'mu',
      cpu: '0.7',
      gpu: muBefore.gpu,
      mem: muBefore.mem,
      based_on: govForm.basedOn,
      csrf_token: govForm.csrf,
    });
    expect(page.status).toBe(400);
    expect(page.text).toContain(`Rates of mu not changed. ${ALTERED_BASED_ON}`);
    expect(page.text).not.toContain('based_on:');
    // The form now starts from mu's rates in force, so sending it again is not refused the same way.
    const muRates = await openRatesForm(ops, 'mu');
    const refusedCard = /<section class="card" id="tier-mu">.*?<\/form>/s.exec(page.text)?.[0] ?? '';
    expect(refusedCard).toContain(`name="based_on" value="${muRates.basedOn}"`);
    expect(refusedCard).toContain('id="cpu-mu" name="cpu" inputmode="decimal" required value="0.7"');
    expect(await db.prisma.pricingRate.count()).toBe(rows);
  });

  it('tells an admin whose form came back with its hidden based_on altered what that means, not the key', async () => {
    // The page showed "Rates of gov not changed. based_on: must be a whole number", naming a hidden
    // field the admin never saw (an extension, a proxy or a hand-edited form had changed it).
    const form = await openRatesForm(ops, 'gov');
    const govBefore = await ratesInForce('gov');
    const rows = await db.prisma.pricingRate.count();
    const entries = await db.prisma.auditLog.count();
    for (const basedOn of ['latest', '0', '2000000']) {
      const page = await ops.post('/admin/rates').set('Accept', 'text/html').type('form').send({
        type: 'gov',
        cpu: '0.95',
        gpu: govBefore.gpu,
        mem: govBefore.mem,
        based_on: basedOn,
        csrf_token: form.csrf,
      });
      expect(page.status, basedOn).toBe(400);
      const card = /<section class="card" id="tier-gov">.*?<\/form>/s.exec(page.text)?.[0] ?? '';
      expect(card, basedOn).toContain(`Rates of gov not changed. ${ALTERED_BASED_ON}`);
      expect(page.text, basedOn).not.toContain('based_on:');
      // What was typed stays; the form now starts from the rates in force.
      expect(card).toContain('id="cpu-gov" name="cpu" inputmode="decimal" required value="0.95"');
      expect(card).toContain(`name="based_on" value="${form.basedOn}"`);
    }
    // With a rate refused as well, both are told, the rate by its label.
    const both = await ops.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'gov',
      cpu: 'lots',
      gpu: govBefore.gpu,
      mem: govBefore.mem,
      based_on: 'latest',
      csrf_token: form.csrf,
    });
    expect(both.status).toBe(400);
    expect(both.text).toMatch(/Rates of gov not changed\. CPU core-hour: [^<]*\. This form came back with its record/);
    expect(both.text).not.toContain('based_on:');
    expect(await ratesInForce('gov')).toEqual(govBefore);
    expect(await db.prisma.pricingRate.count()).toBe(rows);
    expect(await db.prisma.auditLog.count()).toBe(entries);
  });

  it('tells an admin whose altered form names a tier not on the page that in words, keeping the typed rates', async () => {
    // The page showed "based_on: must be a whole number": the key of a hidden field, over a tier no card has.
    const form = await openRatesForm(ops, 'gov');
    const rows = await db.prisma.pricingRate.count();
    const entries = await db.prisma.auditLog.count();
    const altered =
      'This form came back altered: it names a tier that is not one of the current tiers (mu, gov, private), and ' +
      'its record of the rates it was opened on was changed too.';
    const typedRates =
      'The rates you typed were CPU core-hour 0.95, GPU-hour 18, Memory GB-hour 0.08: reload the ' +
      'page and set them in the form of the tier you meant.';
    for (const [type, basedOn] of [
      ['gold', 'latest'],
      ['gold', '0'],
      ['<b>gold</b>', 'latest'],
      ['', 'latest'],
      ['g'.repeat(40), 'latest'],
    ] as const) {
      const page = await ops.post('/admin/rates').set('Accept', 'text/html').type('form').send({
        type,
        cpu: '0.95',
        gpu: '18',
        mem: '0.08',
        based_on: basedOn,
        csrf_token: form.csrf,
      });
      const label = `${type} ${basedOn}`;
      expect(page.status, label).toBe(400);
      const [alert, ...others] = page.text.match(/<div class="alert error"[^>]*>[^<]*<\/div>/g) ?? [];
      expect(others, label).toEqual([]);
      expect(alert, label).toBe(
        `<div class="alert error" role="alert" tabindex="-1" autofocus>Rates not changed. ${altered} ${typedRates}</div>`,
      );
      // Neither hidden field's key nor what came back in them is echoed, escaped or not.
      expect(page.text, label).not.toContain('based_on:');
      expect(page.text, label).not.toContain('gold');
      expect(page.text, label).not.toContain('ggg');
    }
    // A typed rate is echoed escaped, after its own reason by its label; a direction control as its escape.
    const markup = await ops.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'gold',
      cpu: '<img src=x onerror=alert(1)>',
      gpu: '18\u202e',
      mem: '0.08',
      based_on: 'latest',
      csrf_token: form.csrf,
    });
    expect(markup.status).toBe(400);
    expect(markup.text).not.toContain('<img src=x');
    expect(markup.text).not.toContain('\u202e');
    expect(markup.text).toMatch(
      new RegExp(
        `>Rates not changed\\. CPU core-hour: [^<]*\\. ${altered.replace(/[().]/g, '\\$&')} The rates you typed were ` +
          'CPU core-hour &lt;img src=x onerror=alert\\(1\\)&gt;, GPU-hour 18\\\\u202e, Memory GB-hour 0\\.08: ',
      ),
    );
    expect(await db.prisma.pricingRate.count()).toBe(rows);
    expect(await db.prisma.auditLog.count()).toBe(entries);
  });

  it('refuses a based_on that is not a rate id', async () => {
    const token = await csrfTokenOf(ops);
    const response = await ops
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ type: 'gov', cpu: '0.9', gpu: '18', mem: '0.08', based_on: 'latest' });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('based_on: must be a whole number');
  });
});

/** The hidden fields and description of a tier's rename-or-describe form as the page rendered them. */
async function openTierEditForm(agent: Agent, tier: string) {
  const page = (await agent.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  return tierEditFormIn(page, tier);
}

function tierEditFormIn(page: string, tier: string) {
  const form = new RegExp(`<details id="rename-${tier}".*?</form>`, 's').exec(page)?.[0] ?? '';
  return {
    form,
    basedOn: /name="based_on_description" value="([^"]*)"/.exec(form)?.[1],
    description: new RegExp(`id="edit-description-${tier}" name="description" value="([^"]*)"`).exec(form)?.[1],
    csrf: /name="csrf_token" value="([^"]+)"/.exec(form)?.[1],
  };
}

const descriptionOf = async (tier: string) =>
  (await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: tier } })).description;

describe('a tier description form opened before another admin changed the description', () => {
  it('is refused with 409 naming who changed it, keeps the typed text, and saves nothing', async () => {
    await db.prisma.pricingTier.update({ where: { name: 'private' }, data: { description: 'Companies' } });
    const opsForm = await openTierEditForm(ops, 'private');
    expect(opsForm.basedOn).toBe('Companies');
    const carolForm = await openTierEditForm(carol, 'private');
    await carol
      .post('/admin/rates/tiers/edit')
      .type('form')
      .send({
        type: 'private',
        name: 'private',
        description: 'Companies and other paying outsiders',
        based_on_description: carolForm.basedOn,
        csrf_token: carolForm.csrf,
      })
      .expect(303);
    const entries = await db.prisma.auditLog.count({ where: { action: 'pricing.tier.update' } });

    const stale = await ops.post('/admin/rates/tiers/edit').set('Accept', 'text/html').type('form').send({
      type: 'private',
      name: 'private',
      description: 'Industry partners',
      based_on_description: opsForm.basedOn,
      csrf_token: opsForm.csrf,
    });
    expect(stale.status).toBe(409);
    expect(stale.text).toMatch(
      /Tier private not changed\. Its description was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened: now “Companies and other paying outsiders”\. The form keeps the text you typed; check it and submit again\./,
    );
    const refused = tierEditFormIn(stale.text, 'private');
    expect(refused.description).toBe('Industry partners');
    // Sent again as shown, it is based on the description now in force.
    expect(refused.basedOn).toBe('Companies and other paying outsiders');
    expect(await descriptionOf('private')).toBe('Companies and other paying outsiders');
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.tier.update' } })).toBe(entries);

    // JSON clients are told the same, with a 409.
    const json = await ops
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'private', name: 'private', description: 'Industry partners', based_on_description: 'Companies' });
    expect(json.status).toBe(409);
    expect(json.body.error).toContain('Its description was changed by carol at ');
    expect(await descriptionOf('private')).toBe('Companies and other paying outsiders');

    await ops
      .post('/admin/rates/tiers/edit')
      .type('form')
      .send({
        type: 'private',
        name: 'private',
        description: refused.description,
        based_on_description: refused.basedOn,
        csrf_token: refused.csrf,
      })
      .expect(303);
    expect(await descriptionOf('private')).toBe('Industry partners');
  });

  it('refuses a rename from a stale form too, rather than putting the old description back', async () => {
    await db.prisma.pricingTier.update({ where: { name: 'mu' }, data: { description: 'University' } });
    const opsForm = await openTierEditForm(ops, 'mu');
    await db.prisma.pricingTier.update({ where: { name: 'mu' }, data: { description: 'University and hospital' } });
    const stale = await ops.post('/admin/rates/tiers/edit').set('Accept', 'text/html').type('form').send({
      type: 'mu',
      name: 'mu-new',
      description: opsForm.description,
      based_on_description: opsForm.basedOn,
      csrf_token: opsForm.csrf,
    });
    expect(stale.status).toBe(409);
    // Changed outside the page (no audit entry names who): said without a name.
    expect(stale.text).toContain(
      'Tier mu not changed. Its description was changed after this page was opened: now “University and hospital”. The form shows it as it is now; check it and submit again.',
    );
    // The description the admin did not touch shows as it is now.
    expect(tierEditFormIn(stale.text, 'mu').description).toBe('University and hospital');
    expect(await db.prisma.pricingTier.count({ where: { name: 'mu-new' } })).toBe(0);
    expect(await descriptionOf('mu')).toBe('University and hospital');
  });

  it('takes the same text sent twice, and a client that sends no based_on_description', async () => {
    const form = await openTierEditForm(ops, 'mu');
    const send = (body: Record<string, string | undefined>) =>
      ops
        .post('/admin/rates/tiers/edit')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', form.csrf ?? '')
        .send({ type: 'mu', name: 'mu', ...body });
    expect((await send({ description: 'University', based_on_description: form.basedOn })).status).toBe(200);
    // A double submit: the text is already this one, nothing would be overwritten.
    const second = await send({ description: 'University', based_on_description: form.basedOn });
    expect(second.status).toBe(200);
    expect(second.body.tier).toMatchObject({ isChanged: false });
    expect((await send({ description: 'University staff' })).status).toBe(200);
    expect(await descriptionOf('mu')).toBe('University staff');
  });
});
