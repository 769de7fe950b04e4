import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two admins with the Rates page open; one renames a tier, the other then sets its rates from the
// page opened before. The form still names the tier by its old name: it was refused as an unknown
// tier, told to "add it on the Rates page" (a second tier under the old name, which nobody is on),
// and the rates typed were gone from the page.
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

/** The hidden fields of a tier's rates form as the page rendered them. */
async function openRatesForm(agent: Agent, tier: string) {
  const page = (await agent.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  return ratesFormIn(page, tier);
}

function ratesFormIn(page: string, tier: string) {
  const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</form>`, 's').exec(page)?.[0] ?? '';
  const basedOn = /name="based_on" value="(\d+)"/.exec(card)?.[1];
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(card)?.[1];
  return { card, basedOn, csrf };
}

async function ratesOf(tier: string) {
  const rate = await db.prisma.pricingRate.findFirstOrThrow({
    where: { tier: { name: tier } },
    orderBy: [{ effectiveFrom: 'desc' }, { id: 'desc' }],
  });
  return { cpu: rate.cpuPerHour.toFixed(), gpu: rate.gpuPerHour.toFixed(), mem: rate.memPerHour.toFixed() };
}

describe('a rates form opened before another admin renamed its tier', () => {
  it('says the tier was renamed, to what and by whom, and keeps the typed rates in its card', async () => {
    const carolForm = await openRatesForm(carol, 'mu');
    expect(carolForm.basedOn).toMatch(/^\d+$/);
    const token = await csrfTokenOf(ops);
    await ops
      .post('/admin/rates/tiers/edit')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ type: 'mu', name: 'uni' })
      .expect(200);
    const rows = await db.prisma.pricingRate.count();
    const entries = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });

    const refused = await carol.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'mu',
      cpu: '0.7',
      gpu: '12',
      mem: '0.05',
      based_on: carolForm.basedOn,
      csrf_token: carolForm.csrf,
    });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /Rates of mu not changed\. Tier mu was renamed to uni by ops at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened\. The form of uni keeps the rates you typed; check them and submit again\./,
    );
    expect(refused.text).not.toContain('add it on the Rates page');
    // The form was sent to #tier-mu, which the page no longer has: it would open at its top, the
    // reason out of sight further down; the reason takes the focus (autofocus.js), which scrolls to it.
    expect(refused.text).toMatch(/<div class="alert error" role="alert" id="rates-error-uni" tabindex="-1" autofocus>/);
    // In uni's card, as typed, still based on the rates the page was opened on.
    const card = ratesFormIn(refused.text, 'uni');
    expect(card.card).toContain('id="cpu-uni" name="cpu" inputmode="decimal" required value="0.7"');
    expect(card.basedOn).toBe(carolForm.basedOn);
    expect(await db.prisma.pricingRate.count()).toBe(rows);
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(entries);

    // A JSON client is told the same, with the tier's name now.
    const json = await carol
      .post('/admin/rates')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(carol))
      .send({ type: 'mu', cpu: '0.7', gpu: '12', mem: '0.05', based_on: carolForm.basedOn });
    expect(json.status).toBe(409);
    expect(json.body).toMatchObject({ code: 409, tier: 'uni' });
    expect(json.body.error).toMatch(/^Rates of mu not changed\. Tier mu was renamed to uni by ops at /);

    // Sent again as the refused page shows it, the rates are set.
    await carol
      .post('/admin/rates')
      .type('form')
      .send({ type: 'uni', cpu: '0.7', gpu: '12', mem: '0.05', based_on: card.basedOn, csrf_token: card.csrf })
      .expect(303);
    expect(await ratesOf('uni')).toEqual({ cpu: '0.7', gpu: '12', mem: '0.05' });
  });

  it('says so when another tier has taken the old name since, rather than offer to set that tier', async () => {
    // A tier renamed, then a new tier added under its old name: the stale form's based_on is no rate of
    // the new tier. It was refused as "came back altered ... submit it again to set them", in the new
    // tier's card, and sending it again set the new tier's three rates to those typed for the old one.
    const token = await csrfTokenOf(ops);
    const json = (path: string, body: object) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    await json('/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '10', mem: '0.1' }).expect(201);
    const carolForm = await openRatesForm(carol, 'lab');
    await json('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' }).expect(200);
    await json('/admin/rates/tiers', { name: 'lab', cpu: '5', gpu: '50', mem: '0.5' }).expect(201);
    const entries = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });

    const refused = await carol.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'lab',
      cpu: '1.2',
      gpu: '10',
      mem: '0.1',
      based_on: carolForm.basedOn,
      csrf_token: carolForm.csrf,
    });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /Rates of lab not changed\. Tier lab was renamed to lab2 by ops at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened\. The form of lab2 keeps the rates you typed; check them and submit again\./,
    );
    expect(refused.text).not.toContain('came back with its record');
    const card = ratesFormIn(refused.text, 'lab2');
    expect(card.card).toContain('id="cpu-lab2" name="cpu" inputmode="decimal" required value="1.2"');
    expect(card.basedOn).toBe(carolForm.basedOn);
    // The new lab's form is as it is: nothing typed for the old lab waits in it to be sent.
    expect(ratesFormIn(refused.text, 'lab').card).toContain(
      'id="cpu-lab" name="cpu" inputmode="decimal" required value="5"',
    );
    expect(await ratesOf('lab')).toEqual({ cpu: '5', gpu: '50', mem: '0.5' });
    expect(await ratesOf('lab2')).toEqual({ cpu: '1', gpu: '10', mem: '0.1' });
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(entries);

    const api = await json('/formula', {
      type: 'lab',
      cpu: '1.2',
      gpu: '10',
      mem: '0.1',
      based_on: Number(carolForm.basedOn),
    });
    expect(api.status).toBe(409);
    expect(api.body).toMatchObject({ code: 409, tier: 'lab2' });
    expect(await ratesOf('lab')).toEqual({ cpu: '5', gpu: '50', mem: '0.5' });
  });

  it('says so when the tier was deleted and another added under its name, keeping only what was changed', async () => {
    const token = await csrfTokenOf(ops);
    const json = (path: string, body: object) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    await json('/admin/rates/tiers', { name: 'spare', cpu: '1', gpu: '10', mem: '0.1' }).expect(201);
    const carolForm = await openRatesForm(carol, 'spare');
    await json('/admin/rates/tiers/delete', { type: 'spare' }).expect(200);
    await json('/admin/rates/tiers', { name: 'spare', cpu: '5', gpu: '50', mem: '0.5' }).expect(201);
    const entries = await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } });

    // carol changed the CPU rate of the spare she saw; GPU and memory are still that tier's.
    const refused = await carol.post('/admin/rates').set('Accept', 'text/html').type('form').send({
      type: 'spare',
      cpu: '1.2',
      gpu: '10',
      mem: '0.1',
      based_on: carolForm.basedOn,
      csrf_token: carolForm.csrf,
    });
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /Rates of spare not changed\. The tier spare this page showed was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the spare there is now is another tier, added since: its rates are CPU core-hour 5, GPU-hour 50, Memory GB-hour 0\.5\. The form keeps the rates you changed and shows the others as they are now; check it and submit again\./,
    );
    expect(refused.text).not.toContain('came back with its record');
    const card = ratesFormIn(refused.text, 'spare');
    expect(card.card).toContain('id="cpu-spare" name="cpu" inputmode="decimal" required value="1.2"');
    expect(card.card).toContain('id="gpu-spare" name="gpu" inputmode="decimal" required value="50"');
    expect(card.card).toContain('id="mem-spare" name="mem" inputmode="decimal" required value="0.5"');
    expect(await ratesOf('spare')).toEqual({ cpu: '5', gpu: '50', mem: '0.5' });
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.rates.set' } })).toBe(entries);

    const api = await json('/formula', {
      type: 'spare',
      cpu: '1.2',
      gpu: '10',
      mem: '0.1',
      based_on: Number(carolForm.basedOn),
    });
    expect(api.status).toBe(409);
    // A script is told of the based_on it sent and the one to send next, not of a page's form.
    expect(api.body.error).toMatch(
      new RegExp(
        `^Rates of spare not changed\\. The tier spare of the rates sent as based_on \\(${carolForm.basedOn}\\) was deleted by ops at .*, and the spare there is now is another tier, added since: its rates are CPU core-hour 5, GPU-hour 50, Memory GB-hour 0\\.5 \\(rateId ${api.body.current.rateId}\\)\\. Check your change against them, then send it again with based_on ${api.body.current.rateId}\\.$`,
      ),
    );
    expect(api.body.current).toMatchObject({ cpu: '5.00', gpu: '50.00', mem: '0.50' });
    expect(await ratesOf('spare')).toEqual({ cpu: '5', gpu: '50', mem: '0.5' });
  });

  it('a Delete button opened before its tier was replaced by another of that name deletes nothing', async () => {
    // The button sent the name alone: from a second tab, after another admin had deleted the tier (or
    // renamed it) and added a new one under that name, it deleted the new tier and its rate history.
    const token = await csrfTokenOf(ops);
    const json = (path: string, body: object) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    const deleteFormIn = (page: string, tier: string) => {
      const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</section>`, 's').exec(page)?.[0] ?? '';
      const form = /<form method="post" action="\/admin\/rates\/tiers\/delete".*?<\/form>/s.exec(card)?.[0] ?? '';
      const fields = Object.fromEntries(
        [...form.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]),
      );
      return fields as Record<string, string>;
    };
    await json('/admin/rates/tiers', { name: 'old', cpu: '1', gpu: '10', mem: '0.1' }).expect(201);
    await json('/admin/rates/tiers', { name: 'moved', cpu: '1', gpu: '10', mem: '0.1' }).expect(201);
    const page = (await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    const deleteOld = deleteFormIn(page, 'old');
    const deleteMoved = deleteFormIn(page, 'moved');
    expect(deleteOld).toMatchObject({ type: 'old' });
    await json('/admin/rates/tiers/delete', { type: 'old' }).expect(200);
    await json('/admin/rates/tiers', { name: 'old', cpu: '5', gpu: '50', mem: '0.5' }).expect(201);
    await json('/admin/rates/tiers/edit', { type: 'moved', name: 'moved2' }).expect(200);
    await json('/admin/rates/tiers', { name: 'moved', cpu: '6', gpu: '60', mem: '0.6' }).expect(201);
    const deletions = await db.prisma.auditLog.count({ where: { action: 'pricing.tier.delete' } });

    const deleted = await carol
      .post('/admin/rates/tiers/delete')
      .set('Accept', 'text/html')
      .type('form')
      .send(deleteOld);
    expect(deleted.status).toBe(409);
    expect(deleted.text).toMatch(
      /Tier old was not deleted: the old this page showed was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the old there is now is another tier, added since; delete it from its own card if you mean to\./,
    );
    const renamed = await carol
      .post('/admin/rates/tiers/delete')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', deleteMoved.csrf_token ?? '')
      .send({ type: 'moved', based_on: Number(deleteMoved.based_on) });
    expect(renamed.status).toBe(409);
    expect(renamed.body.error).toMatch(
      /^Tier moved was not deleted: the moved this page showed was renamed to moved2 by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the moved there is now is another tier, added since; delete it from its own card if you mean to\.$/,
    );
    expect(await ratesOf('old')).toEqual({ cpu: '5', gpu: '50', mem: '0.5' });
    expect(await ratesOf('moved')).toEqual({ cpu: '6', gpu: '60', mem: '0.6' });
    expect(await db.prisma.auditLog.count({ where: { action: 'pricing.tier.delete' } })).toBe(deletions);

    // From a page showing the tier as it is, the button deletes it.
    const fresh = deleteFormIn((await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text, 'old');
    await carol.post('/admin/rates/tiers/delete').type('form').send(fresh).expect(303);
    expect(await db.prisma.pricingTier.count({ where: { name: 'old' } })).toBe(0);
  });

  it('a Make-default button opened before its tier was replaced by another of that name changes nothing', async () => {
    // Sent by name alone, it made the new tier the default: every user on the default tier priced at
    // the rates of a tier the admin had never seen.
    const token = await csrfTokenOf(ops);
    const json = (path: string, body: object) =>
      ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
    const defaultFormIn = (page: string, tier: string) => {
      const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</section>`, 's').exec(page)?.[0] ?? '';
      const form = /<form method="post" action="\/admin\/rates\/default".*?<\/form>/s.exec(card)?.[0] ?? '';
      return Object.fromEntries(
        [...form.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]),
      ) as Record<string, string>;
    };
    await json('/admin/rates/tiers', { name: 'cheap', cpu: '0.1', gpu: '1', mem: '0.01' }).expect(201);
    const makeDefault = defaultFormIn(
      (await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text,
      'cheap',
    );
    expect(makeDefault).toMatchObject({ type: 'cheap' });
    await json('/admin/rates/tiers/delete', { type: 'cheap' }).expect(200);
    await json('/admin/rates/tiers', { name: 'cheap', cpu: '9', gpu: '90', mem: '0.9' }).expect(201);
    const before = await db.prisma.pricingTier.findFirstOrThrow({ where: { isDefault: true }, select: { name: true } });

    const refused = await carol.post('/admin/rates/default').set('Accept', 'text/html').type('form').send(makeDefault);
    expect(refused.status).toBe(409);
    expect(refused.text).toMatch(
      /cheap was not made the default tier: the cheap this page showed was deleted by ops at \d{4}-\d\d-\d\d \d\d:\d\d after it was opened, and the cheap there is now is another tier, added since; make it the default from its own card if you mean to\./,
    );
    expect(
      await db.prisma.pricingTier.findFirstOrThrow({ where: { isDefault: true }, select: { name: true } }),
    ).toEqual(before);

    const fresh = defaultFormIn((await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text, 'cheap');
    await carol.post('/admin/rates/default').type('form').send(fresh).expect(303);
    expect(
      await db.prisma.pricingTier.findFirstOrThrow({ where: { isDefault: true }, select: { name: true } }),
    ).toEqual({
      name: 'cheap',
    });
    await json('/admin/rates/default', { type: before.name }).expect(200);
  });

  it('still refuses a tier that never had that name as unknown, whatever rates it names', async () => {
    const token = await csrfTokenOf(ops);
    const gov = await openRatesForm(ops, 'gov');
    for (const basedOn of [undefined, gov.basedOn]) {
      const response = await ops
        .post('/admin/rates')
        .set('Accept', 'application/json')
        .set('X-CSRFToken', token)
        .send({ type: 'nosuch', cpu: '0.7', gpu: '12', mem: '0.05', based_on: basedOn });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatch(/^type: unknown tier "nosuch"/);
    }
  });
});
