import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Bodies are read in UTF-8 alone (docs/security.md), as the payment webhooks read theirs. The JSON
 * parser took any charset beginning "utf-" (`application/json; charset=utf-16` and a UTF-16 body was
 * decoded and acted on), the JSON of the rate routes any charset at all (latin1 too), and the form
 * parser iso-8859-1: each is a 415 naming the charset, and nothing is written.
 */
let db: TestDatabase;
let ops: Agent;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db, [{ name: 'gov', isDefault: true, cpu: '0.80', gpu: '18.00', mem: '0.08' }]);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  ops = await signInAs(buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } }), 'ops', 'ops-password-123');
  token = await csrfTokenOf(ops);
});
afterAll(() => db?.drop());

/** Tiers, rates and the audit log: what a refused body must leave as it was. */
async function state() {
  return {
    tiers: await db.prisma.pricingTier.findMany({ orderBy: { id: 'asc' } }),
    rates: await db.prisma.pricingRate.count(),
    entries: await db.prisma.auditLog.count(),
  };
}

function post(path: string, contentType: string, body: Buffer) {
  return (
    ops
      .post(path)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .set('Content-Type', contentType)
      // As the bytes given: superagent would serialize a Buffer as JSON, {"type":"Buffer","data":[…]}.
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(body)
  );
}

const utf16 = (text: string) => Buffer.from(`\ufeff${text}`, 'utf16le');
const refusal = (charset: string) => ({
  error: `The request body is in the charset ${charset}, which is not read here: send it as UTF-8.`,
  code: 415,
});

describe('a body in another charset than UTF-8', () => {
  it.each([
    [
      '/admin/rates/tiers',
      'application/json; charset=utf-16',
      'utf-16',
      utf16('{"name":"lab","cpu":"1","gpu":"2","mem":"0.1"}'),
    ],
    [
      '/admin/rates/tiers',
      'application/json; charset="UTF-16LE"',
      'utf-16le',
      Buffer.from('{"name":"lab","cpu":"1","gpu":"2","mem":"0.1"}', 'utf16le'),
    ],
    [
      '/admin/rates/tiers',
      'application/x-www-form-urlencoded; charset=iso-8859-1',
      'iso-8859-1',
      Buffer.from('name=lab&cpu=1&gpu=2&mem=0.1', 'latin1'),
    ],
    [
      '/admin/rates',
      'application/json; charset=utf-16',
      'utf-16',
      utf16('{"type":"gov","cpu":"0.9","gpu":"18","mem":"0.08"}'),
    ],
    [
      '/admin/rates',
      'application/json; charset=latin1',
      'latin1',
      Buffer.from('{"type":"gov","cpu":"0.9","gpu":"18","mem":"0.08"}', 'latin1'),
    ],
  ])('%s as %s is refused with 415 naming it, nothing written', async (path, contentType, charset, body) => {
    const before = await state();
    const answer = await post(path, contentType, body);
    expect(answer.status, answer.text).toBe(415);
    expect(answer.body).toEqual(refusal(charset));
    expect(await state()).toEqual(before);
  });

  it('an empty charset (`charset=`) is refused too, as the webhooks refuse it, nothing written', async () => {
    const before = await state();
    const body = Buffer.from('{"name":"lab","cpu":"1","gpu":"2","mem":"0.1"}');
    const answer = await post('/admin/rates/tiers', 'application/json; charset=', body);
    expect(answer.status, answer.text).toBe(415);
    expect(answer.body).toEqual({
      error: "The request body's Content-Type gives an empty charset: send the body as UTF-8.",
      code: 415,
    });
    expect(await state()).toEqual(before);
  });

  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=UTF-8',
    'application/json; charset="utf-8"',
  ])('%s is read', async (contentType) => {
    const name = `t${Math.random().toString(36).slice(2, 8)}`;
    const answer = await post(
      '/admin/rates/tiers',
      contentType,
      Buffer.from(JSON.stringify({ name, cpu: '1', gpu: '2', mem: '0.1' })),
    );
    expect(answer.status, answer.text).toBe(201);
    expect(await db.prisma.pricingTier.count({ where: { name } })).toBe(1);
  });
});
