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
    expect(json.body.error).toContain('They were changed by carol at ');

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
