import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Every bad rate is told the same thing, on every path that takes one, naming the field.
const RULE = 'must be a plain decimal from 0 to 1000000 with at most 6 decimal places, such as 0.25';

let db: TestDatabase;
let admin: Agent;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ratesadmin', role: 'admin', password: 'ratesadmin-password' });
  admin = await signInAs(buildTestApp(db), 'ratesadmin', 'ratesadmin-password');
});
afterAll(() => db?.drop());

/** Everything a refused rate must leave as it was. */
async function pricingState() {
  return {
    tiers: await db.prisma.pricingTier.findMany({ orderBy: { id: 'asc' } }),
    rates: await db.prisma.pricingRate.findMany({ orderBy: { id: 'asc' } }),
    audit: await db.prisma.auditLog.count(),
  };
}

const BAD_RATES: [string, string][] = [
  ['an exponent', '1e3'],
  ['a capital exponent', '1E3'],
  ['a negative exponent', '5e-1'],
  ['letters', 'lots'],
  ['a hexadecimal', '0x10'],
  ['a decimal comma', '1,5'],
  ['a negative', '-1'],
  ['a negative fraction', '-0.5'],
  ['a negative zero', '-0'],
  ['a plus sign', '+1'],
  ['no digit before the point', '.5'],
  ['no digit after the point', '5.'],
  ['too many decimals', '0.1234567'],
  ['too large', '1000000.01'],
  ['far too large', '5000000'],
  ['empty', ''],
  ['only spaces', '   '],
];

describe.each(BAD_RATES)('a rate with %s (%j) is refused with one message naming the field', (_, bad) => {
  it('on the rates form (HTML), with the tier named and its rates unchanged', async () => {
    const before = await pricingState();
    const response = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu: bad, gpu: '18', mem: '0.08', csrf_token: await csrfTokenOf(admin) });
    expect(response.status).toBe(400);
    expect(response.text).toContain(`Rates of gov not changed. CPU core-hour: ${RULE}`);
    expect(await pricingState()).toEqual(before);
  });

  it('in JSON, as text on POST /formula and /admin/rates, rates unchanged', async () => {
    const before = await pricingState();
    for (const path of ['/formula', '/admin/rates']) {
      const response = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send({ type: 'gov', cpu: '0.8', gpu: bad, mem: '0.08' });
      expect(response.status, path).toBe(400);
      expect(response.body, path).toEqual({ error: `gpu: ${RULE}`, code: 400 });
    }
    expect(await pricingState()).toEqual(before);
  });

  it('on the add-a-tier form (HTML) and in JSON, adding nothing', async () => {
    const before = await pricingState();
    const form = await admin
      .post('/admin/rates/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ name: 'gold', cpu: '1', gpu: '1', mem: bad, csrf_token: await csrfTokenOf(admin) });
    expect(form.status).toBe(400);
    expect(form.text).toContain(`Tier not added. Memory GB-hour: ${RULE}`);
    const json = await admin
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ name: 'gold', cpu: '1', gpu: '1', mem: bad });
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: `mem: ${RULE}`, code: 400 });
    expect(await pricingState()).toEqual(before);
  });
});

describe('a rate sent as a JSON number is judged by its digits, with the same message', () => {
  it.each(['1e3', '1E+3', '1e-7', '-1', '-0', '0.1234567', '0.10000000000000001', '5000000'])('%s', async (number) => {
    const before = await pricingState();
    for (const path of ['/formula', '/admin/rates']) {
      const response = await admin
        .post(path)
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send(`{"type":"gov","cpu":${number},"gpu":18,"mem":0.08}`);
      expect(response.status, path).toBe(400);
      expect(response.body, path).toEqual({ error: `cpu: ${RULE}`, code: 400 });
    }
    expect(await pricingState()).toEqual(before);
  });

  it('a rate left out is told the rule, and a null that it cannot be null, as every field is', async () => {
    const before = await pricingState();
    for (const [body, error] of [
      ['{"type":"gov","cpu":0.8,"gpu":18}', `mem: ${RULE}`],
      ['{"type":"gov","cpu":0.8,"gpu":18,"mem":null}', 'mem: cannot be null (leave it out, or give a value)'],
    ]) {
      const response = await admin
        .post('/formula')
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .set('X-CSRFToken', await csrfTokenOf(admin))
        .send(body);
      expect(response.status, body).toBe(400);
      expect(response.body, body).toEqual({ error, code: 400 });
    }
    expect(await pricingState()).toEqual(before);
  });

  it('two bad rates are each named, with the same message', async () => {
    const response = await admin
      .post('/admin/rates')
      .set('Accept', 'text/html')
      .type('form')
      .send({ type: 'gov', cpu: '1e3', gpu: '18', mem: '-1', csrf_token: await csrfTokenOf(admin) });
    expect(response.status).toBe(400);
    expect(response.text).toContain(`Rates of gov not changed. CPU core-hour: ${RULE}; Memory GB-hour: ${RULE}`);
  });
});
