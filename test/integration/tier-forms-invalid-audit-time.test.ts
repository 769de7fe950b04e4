import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The refusals of a stale Rates-page form (its tier renamed, deleted, or described since the page
// was opened) and the answers to a rename or deletion sent again name who changed the tier and when,
// from the audit entry. An entry whose ts was set by SQL to 'infinity' made formatLocalDateTime throw
// RangeError: a 500 instead of the answer. As the Tier overrides refusal does (6ff4236b,
// tiers-stale-form.test.ts), they now write such a time as "not a valid time" and change nothing.
let db: TestDatabase;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [
    { name: 'gov', isDefault: true, cpu: '0.80', gpu: '18.00', mem: '0.08' },
    { name: 'mu', cpu: '0.50', gpu: '12.00', mem: '0.05' },
  ]);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

/** As a superuser with the table's triggers off for the session, as whoever changed the row. */
async function asSuperuser(sql: string, values: unknown[] = []) {
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query(sql, values);
  } finally {
    await client.query("SET session_replication_role = 'origin'");
    client.release();
  }
}

/**
 * The newest entry of `action` gets the time 'infinity', as SQL can set it. An entry is written after it
 * first: an app without a key appends nothing after a newest entry that matches no hash (it could be
 * sealed with a key that app has not), and these tests go on changing tiers.
 */
async function spoilNewest(action: string) {
  const entry = await db.prisma.auditLog.findFirstOrThrow({ where: { action }, orderBy: { id: 'desc' } });
  await recordAudit(db, { actor: 'test', action: 'test.after_spoiled', status: 'ok' });
  await asSuperuser("UPDATE audit_log SET ts = 'infinity' WHERE id = $1", [String(entry.id)]);
}

async function asJson(agent: Agent, path: string, body: object) {
  return agent
    .post(path)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send(body);
}

async function asForm(agent: Agent, path: string, body: object) {
  return agent
    .post(path)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...body, csrf_token: await csrfTokenOf(agent) });
}

/** The based_on of `tier`'s rates form and of its Rename-or-describe form, as the Rates page rendered them. */
async function openForms(agent: Agent, tier: string) {
  const page = (await agent.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
  const card = new RegExp(`<section class="card" id="tier-${tier}">.*?</section>`, 's').exec(page)?.[0] ?? '';
  const basedOn = /name="based_on" value="(\d+)"/.exec(card)?.[1];
  expect(basedOn).toMatch(/^\d+$/);
  return { basedOn: basedOn as string };
}

/** Tiers, rates and the audit log, to show a refusal changed none of them. */
async function state() {
  return {
    tiers: await db.prisma.pricingTier.findMany({ orderBy: { id: 'asc' } }),
    rates: await db.prisma.pricingRate.count(),
    entries: await db.prisma.auditLog.count(),
  };
}

describe('a tier renamed by an audit entry whose time no date holds', () => {
  it('is named "at not a valid time" by each answer that names it (it was a 500), nothing changed', async () => {
    await asJson(ops, '/admin/rates/tiers', { name: 'lab', cpu: '1', gpu: '10', mem: '0.1' }).then((r) =>
      expect(r.status).toBe(201),
    );
    const { basedOn } = await openForms(carol, 'lab');
    expect((await asJson(ops, '/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' })).status).toBe(200);
    await spoilNewest('pricing.tier.update');
    const before = await state();
    const renamed = 'Tier lab was renamed to lab2 by ops at not a valid time after this page was opened.';

    // The rates form of lab (RenamedTierError).
    const rates = { type: 'lab', cpu: '2', gpu: '10', mem: '0.1', based_on: basedOn };
    const html = await asForm(carol, '/admin/rates', rates);
    expect(html.status).toBe(409);
    expect(visibleTextOf(html.text)).toContain(`Rates of lab not changed. ${renamed}`);
    const json = await asJson(carol, '/admin/rates', rates);
    expect(json.status).toBe(409);
    expect(json.body.error).toContain(renamed);

    // The same rename sent again: done already, by whom and when.
    const again = await asJson(carol, '/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' });
    expect(again.status).toBe(200);
    // JSON's times are ISO 8601, null for one no date holds (as the audit log's JSON `ts`).
    expect(again.body.tier.renamedBefore).toEqual({ by: 'ops', at: null });
    expect(again.body.message).toContain('by ops at not a valid time; nothing was changed.');
    const againHtml = await asForm(carol, '/admin/rates/tiers/edit', { type: 'lab', name: 'lab2' });
    expect(againHtml.status).toBe(303);
    const flash = (await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(flash)).toContain(
      'Tier lab was already renamed to lab2, by ops at not a valid time; nothing was changed.',
    );

    // Another rename of the old name: an unknown tier, saying what became of it.
    const edit = { type: 'lab', name: 'lab3' };
    const unknown = await asJson(carol, '/admin/rates/tiers/edit', edit);
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain('it was renamed to lab2 by ops at not a valid time');
    const unknownHtml = await asForm(carol, '/admin/rates/tiers/edit', edit);
    expect(unknownHtml.status).toBe(400);
    expect(visibleTextOf(unknownHtml.text)).toContain('it was renamed to lab2 by ops at not a valid time');
    expect(await state()).toEqual(before);

    // Another tier added under the old name since: the page's forms are refused (refuseTierReplaced).
    await asJson(ops, '/admin/rates/tiers', { name: 'lab', cpu: '5', gpu: '50', mem: '0.5' });
    const replacedBefore = await state();
    const replaced = 'the lab this page showed was renamed to lab2 by ops at not a valid time after it was opened';
    const describe = { type: 'lab', name: 'lab', description: 'Laboratory', based_on: basedOn };
    const replacedHtml = await asForm(carol, '/admin/rates/tiers/edit', describe);
    expect(replacedHtml.status).toBe(409);
    expect(visibleTextOf(replacedHtml.text)).toContain(replaced);
    const replacedJson = await asJson(carol, '/admin/rates/tiers/edit', { ...describe, based_on: Number(basedOn) });
    expect(replacedJson.status).toBe(409);
    expect(replacedJson.body.error).toContain(replaced);
    expect(await state()).toEqual(replacedBefore);
  });
});

describe('a tier deleted by an audit entry whose time no date holds', () => {
  it('is named "at not a valid time" by each answer that names it (it was a 500), nothing changed', async () => {
    await asJson(ops, '/admin/rates/tiers', { name: 'desk', cpu: '1', gpu: '10', mem: '0.1' }).then((r) =>
      expect(r.status).toBe(201),
    );
    const { basedOn } = await openForms(carol, 'desk');
    expect((await asJson(ops, '/admin/rates/tiers/delete', { type: 'desk' })).status).toBe(200);
    await spoilNewest('pricing.tier.delete');
    const before = await state();

    // The same deletion sent again: done already, by whom and when.
    const again = await asJson(carol, '/admin/rates/tiers/delete', { type: 'desk' });
    expect(again.status).toBe(200);
    // JSON's times are ISO 8601, null for one no date holds (as the audit log's JSON `ts`).
    expect(again.body.tier.deletedBefore).toEqual({ by: 'ops', at: null });
    expect(again.body.message).toContain('by ops at not a valid time; nothing was changed.');
    expect((await asForm(carol, '/admin/rates/tiers/delete', { type: 'desk' })).status).toBe(303);
    const flash = (await carol.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    expect(visibleTextOf(flash)).toContain(
      'Tier desk was already deleted, by ops at not a valid time; nothing was changed.',
    );

    // A rename of it: an unknown tier, saying what became of it.
    const edit = { type: 'desk', name: 'desk2' };
    const unknown = await asJson(carol, '/admin/rates/tiers/edit', edit);
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain('it was deleted by ops at not a valid time');
    const unknownHtml = await asForm(carol, '/admin/rates/tiers/edit', edit);
    expect(unknownHtml.status).toBe(400);
    expect(visibleTextOf(unknownHtml.text)).toContain('it was deleted by ops at not a valid time');
    expect(await state()).toEqual(before);

    // Another desk added since: the page's rates form (StaleRatesError) and Delete (refuseTierReplaced).
    await asJson(ops, '/admin/rates/tiers', { name: 'desk', cpu: '5', gpu: '50', mem: '0.5' });
    const replacedBefore = await state();
    const rates = { type: 'desk', cpu: '2', gpu: '10', mem: '0.1', based_on: basedOn };
    const ratesText = 'The tier desk this page showed was deleted by ops at not a valid time after it was opened';
    const ratesHtml = await asForm(carol, '/admin/rates', rates);
    expect(ratesHtml.status).toBe(409);
    expect(visibleTextOf(ratesHtml.text)).toContain(ratesText);
    const ratesJson = await asJson(carol, '/admin/rates', rates);
    expect(ratesJson.status).toBe(409);
    expect(ratesJson.body.error).toContain(
      `The tier desk of the rates sent as based_on (${basedOn}) was deleted by ops at not a valid time, and`,
    );
    const deleteText = 'the desk this page showed was deleted by ops at not a valid time after it was opened';
    const deleteHtml = await asForm(carol, '/admin/rates/tiers/delete', { type: 'desk', based_on: basedOn });
    expect(deleteHtml.status).toBe(409);
    expect(visibleTextOf(deleteHtml.text)).toContain(deleteText);
    const deleteJson = await asJson(carol, '/admin/rates/tiers/delete', { type: 'desk', based_on: Number(basedOn) });
    expect(deleteJson.status).toBe(409);
    expect(deleteJson.body.error).toContain(deleteText);
    expect(await state()).toEqual(replacedBefore);
  });
});

describe('a tier description changed by an audit entry whose time no date holds', () => {
  it('refuses the stale form "at not a valid time" (it was a 500), the description left as it is', async () => {
    const mu = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'mu' } });
    const edit = { type: 'mu', name: 'mu', description: 'Members', based_on_description: mu.description };
    const changed = await asJson(ops, '/admin/rates/tiers/edit', { type: 'mu', name: 'mu', description: 'Uni' });
    expect(changed.status).toBe(200);
    await spoilNewest('pricing.tier.update');
    const before = await state();
    const text =
      'Tier mu not changed. Its description was changed by ops at not a valid time after this page was opened';

    const html = await asForm(carol, '/admin/rates/tiers/edit', edit);
    expect(html.status).toBe(409);
    expect(visibleTextOf(html.text)).toContain(text);
    const json = await asJson(carol, '/admin/rates/tiers/edit', edit);
    expect(json.status).toBe(409);
    // A script is told of the based_on_description it sent, not of a page.
    expect(json.body.error).toContain(
      'Tier mu not changed. Its description was changed by ops at not a valid time after the based_on_description sent',
    );
    expect(await state()).toEqual(before);
  });
});
