import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A client still polling /formula?type=cloud after an admin renamed cloud to hpc was told only
 * `Unknown tier "cloud". Known tiers: mu, gov, private, hpc.`: nothing said that its tier was still there
 * under another name, where the admins' forms already say "it was renamed to hpc". /formula now
 * says so too (with `renamedTo` in JSON), still as the 400 docs/pricing.md gives an unknown tier.
 * Not who renamed it or when: /formula is public, and the admins' names are not.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  await send('/admin/rates/tiers', { name: 'cloud', description: 'Cloud', cpu: '0.3', gpu: '7', mem: '0.01' });
  await send('/admin/rates/tiers/edit', { type: 'cloud', name: 'hpc', description: 'Cloud' });
  await send('/admin/rates/tiers', { name: 'lab', description: 'Lab', cpu: '0.3', gpu: '7', mem: '0.01' });
  await send('/admin/rates/tiers/edit', { type: 'lab', name: 'lab2', description: 'Lab' });
  await send('/admin/rates/tiers/edit', { type: 'lab2', name: 'lab3', description: 'Lab' });
});
afterAll(() => db?.drop());

async function send(path: string, body: Record<string, unknown>) {
  const token = await csrfTokenOf(ops);
  const response = await ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
  // Adding a tier creates it: 201, as a new receipt or user.
  expect(response.status, response.text.slice(0, 300)).toBe(path === '/admin/rates/tiers' ? 201 : 200);
}

describe('/formula?type= with the old name of a renamed tier', () => {
  it('says the tier was renamed, and to what, as a 400 with renamedTo', async () => {
    const response = await request(app).get('/formula?type=cloud').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'Unknown tier "cloud": it was renamed to hpc. Known tiers: mu, gov, private, hpc, lab3.',
      code: 400,
      renamedTo: 'hpc',
    });
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers.etag).toBeUndefined();
    // Public: not who renamed it.
    expect(response.text).not.toContain('ops');
  });

  it('says the same to a browser', async () => {
    const response = await request(app).get('/formula?type=cloud').set('Accept', 'text/html');
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(visibleTextOf(response.text)).toContain('Unknown tier &#34;cloud&#34;: it was renamed to hpc.');
  });

  it('names the name the tier has now after several renames', async () => {
    const response = await request(app).get('/formula?type=lab').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body.error).toContain('Unknown tier "lab": it was renamed to lab3.');
    expect(response.body.renamedTo).toBe('lab3');
    const middle = await request(app).get('/formula?type=lab2').set('Accept', 'application/json');
    expect(middle.body.renamedTo).toBe('lab3');
  });

  it('a name no tier ever had is an unknown tier as before', async () => {
    const response = await request(app).get('/formula?type=nope').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'Unknown tier "nope". Known tiers: mu, gov, private, hpc, lab3.',
      code: 400,
    });
  });

  it('the new name answers with its ETag, and a 304 for it', async () => {
    const response = await request(app).get('/formula?type=hpc').expect(200);
    expect(response.body.type).toBe('hpc');
    const etag = String(response.headers.etag);
    expect(etag).toMatch(/^"/);
    await request(app).get('/formula?type=hpc').set('If-None-Match', etag).expect(304);
  });

  it('an old name a new tier was given answers that tier', async () => {
    await send('/admin/rates/tiers', { name: 'cloud', description: 'Cloud again', cpu: '2', gpu: '9', mem: '0.2' });
    const response = await request(app).get('/formula?type=cloud').expect(200);
    expect(response.body.type).toBe('cloud');
    expect(response.body.rates.cpu).toBe('2.00');
  });
});
