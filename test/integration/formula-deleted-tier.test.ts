import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A client still polling /formula?type=lab after an admin deleted lab was told only
 * `Unknown tier "lab". Known tiers: mu, gov, private.`, as for a name no tier ever had: nothing said that
 * the tier had been there and was gone, since when, or where its users went. /formula now says so (with
 * `deletedAt`, and `useInstead` when every user placed on it was moved to one tier before it was
 * deleted), still as the 400 docs/pricing.md gives an unknown tier. Not who deleted it: /formula is public.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
const KNOWN = 'Known tiers: mu, gov, private, kiosk, hall.';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'alice' });
  await buildUser(db.prisma, { username: 'bob' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0', APP_TZ: 'UTC' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  const tier = (name: string) => ({ name, description: name, cpu: '0.3', gpu: '7', mem: '0.01' });
  // lab: its users moved to gov, then deleted.
  await send('/admin/rates/tiers', tier('lab'), 201);
  await send('/admin/tiers', { username: 'alice', tier: 'lab' });
  await send('/admin/tiers', { username: 'bob', tier: 'lab' });
  await send('/admin/tiers', { username: 'alice', tier: 'gov' });
  await send('/admin/tiers', { username: 'bob', tier: 'gov' });
  await send('/admin/rates/tiers/delete', { type: 'lab' });
  // spare: nobody was ever placed on it.
  await send('/admin/rates/tiers', tier('spare'), 201);
  await send('/admin/rates/tiers/delete', { type: 'spare' });
  // split: its users went to two tiers, so none is the one to use.
  await send('/admin/rates/tiers', tier('split'), 201);
  await send('/admin/tiers', { username: 'alice', tier: 'split' });
  await send('/admin/tiers', { username: 'bob', tier: 'split' });
  await send('/admin/tiers', { username: 'alice', tier: 'private' });
  await send('/admin/tiers', { username: 'bob', tier: 'gov' });
  await send('/admin/rates/tiers/delete', { type: 'split' });
  // booth: renamed away to kiosk, then another tier given the name booth and deleted.
  await send('/admin/rates/tiers', tier('booth'), 201);
  await send('/admin/rates/tiers/edit', { type: 'booth', name: 'kiosk', description: 'booth' });
  await send('/admin/rates/tiers', tier('booth'), 201);
  await send('/admin/rates/tiers/delete', { type: 'booth' });
  // room: renamed away to hall after a tier called room was deleted.
  await send('/admin/rates/tiers', tier('room'), 201);
  await send('/admin/rates/tiers/delete', { type: 'room' });
  await send('/admin/rates/tiers', tier('room'), 201);
  await send('/admin/rates/tiers/edit', { type: 'room', name: 'hall', description: 'room' });
  // den: renamed away to studio, its users moved to gov, then deleted as studio.
  await send('/admin/rates/tiers', tier('den'), 201);
  await send('/admin/rates/tiers/edit', { type: 'den', name: 'studio', description: 'den' });
  await send('/admin/tiers', { username: 'alice', tier: 'studio' });
  await send('/admin/tiers', { username: 'alice', tier: 'gov' });
  await send('/admin/rates/tiers/delete', { type: 'studio' });
  // nook: renamed to cubby, then to alcove, then deleted as alcove.
  await send('/admin/rates/tiers', tier('nook'), 201);
  await send('/admin/rates/tiers/edit', { type: 'nook', name: 'cubby', description: 'nook' });
  await send('/admin/rates/tiers/edit', { type: 'cubby', name: 'alcove', description: 'nook' });
  await send('/admin/rates/tiers/delete', { type: 'alcove' });
});
afterAll(() => db?.drop());

async function send(path: string, body: Record<string, unknown>, status = 200) {
  const token = await csrfTokenOf(ops);
  const response = await ops.post(path).set('Accept', 'application/json').set('X-CSRFToken', token).send(body);
  expect(response.status, response.text.slice(0, 300)).toBe(status);
}

/** When the tier called `name` was last deleted, as its audit entry says. */
async function deletedAtOf(name: string): Promise<Date> {
  const entry = await db.prisma.auditLog.findFirstOrThrow({
    where: { action: 'pricing.tier.delete', target: `tier:${name}` },
    orderBy: { id: 'desc' },
  });
  return entry.ts;
}

/** A deletion time as the message writes it: the app's time zone's wall clock, to the minute. */
function minuteOf(at: Date): string {
  return at.toISOString().slice(0, 16).replace('T', ' ');
}

describe('/formula?type= with the name of a deleted tier', () => {
  it('says the tier was deleted, when, and the tier its users were moved to, as a 400 with deletedAt and useInstead', async () => {
    const at = await deletedAtOf('lab');
    const response = await request(app).get('/formula?type=lab').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: `Unknown tier "lab": it was deleted at ${minuteOf(at)} (UTC); the users placed on it were moved to gov before, so ask for /formula?type=gov instead. ${KNOWN}`,
      code: 400,
      deletedAt: at.toISOString(),
      useInstead: 'gov',
    });
    expect(response.headers['cache-control']).toBe('no-cache');
    expect(response.headers.etag).toBeUndefined();
    // Public: not who deleted it.
    expect(response.text).not.toContain('ops');
  });

  it('says the same to a browser', async () => {
    const response = await request(app).get('/formula?type=lab').set('Accept', 'text/html');
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(visibleTextOf(response.text)).toContain('Unknown tier &#34;lab&#34;: it was deleted at ');
  });

  it('names no tier to use instead when nobody was placed on it, or its users went to several', async () => {
    for (const name of ['spare', 'split']) {
      const at = await deletedAtOf(name);
      const response = await request(app).get(`/formula?type=${name}`).set('Accept', 'application/json');
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: `Unknown tier "${name}": it was deleted at ${minuteOf(at)} (UTC). ${KNOWN}`,
        code: 400,
        deletedAt: at.toISOString(),
      });
    }
  });

  it('says what became of a name last: deleted after a rename away, renamed after a deletion', async () => {
    const room = await request(app).get('/formula?type=room').set('Accept', 'application/json');
    expect(room.status).toBe(400);
    expect(room.body).toEqual({
      error: `Unknown tier "room": it was renamed to hall. ${KNOWN}`,
      code: 400,
      renamedTo: 'hall',
    });
    const at = await deletedAtOf('booth');
    const booth = await request(app).get('/formula?type=booth').set('Accept', 'application/json');
    expect(booth.status).toBe(400);
    expect(booth.body).toEqual({
      error: `Unknown tier "booth": it was deleted at ${minuteOf(at)} (UTC). ${KNOWN}`,
      code: 400,
      deletedAt: at.toISOString(),
    });
  });

  it('says a tier renamed away from the name and deleted under its new one was deleted, and its name then', async () => {
    // It answered `Unknown tier "den". Known tiers: …`, as for a name no tier ever had.
    const studioAt = await deletedAtOf('studio');
    const den = await request(app).get('/formula?type=den').set('Accept', 'application/json');
    expect(den.status).toBe(400);
    expect(den.body).toEqual({
      error:
        `Unknown tier "den": it was renamed to studio and then deleted at ${minuteOf(studioAt)} (UTC); the users ` +
        `placed on it were moved to gov before, so ask for /formula?type=gov instead. ${KNOWN}`,
      code: 400,
      renamedTo: 'studio',
      deletedAt: studioAt.toISOString(),
      useInstead: 'gov',
    });
    expect(den.text).not.toContain('ops');
    // Renamed twice: the name it was deleted under, for both of its earlier names.
    const alcoveAt = await deletedAtOf('alcove');
    for (const name of ['nook', 'cubby']) {
      const response = await request(app).get(`/formula?type=${name}`).set('Accept', 'application/json');
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: `Unknown tier "${name}": it was renamed to alcove and then deleted at ${minuteOf(alcoveAt)} (UTC). ${KNOWN}`,
        code: 400,
        renamedTo: 'alcove',
        deletedAt: alcoveAt.toISOString(),
      });
    }
  });

  it('a name no tier ever had is an unknown tier as before', async () => {
    const response = await request(app).get('/formula?type=nope').set('Accept', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: `Unknown tier "nope". ${KNOWN}`,
      code: 400,
    });
  });

  it('a tier that is there answers with its ETag, and a 304 for it', async () => {
    const response = await request(app).get('/formula?type=gov').expect(200);
    expect(response.body.type).toBe('gov');
    const etag = String(response.headers.etag);
    expect(etag).toMatch(/^"/);
    await request(app).get('/formula?type=gov').set('If-None-Match', etag).expect(304);
  });

  it('a deleted name a new tier was given answers that tier', async () => {
    await send(
      '/admin/rates/tiers',
      { name: 'spare', description: 'Spare again', cpu: '2', gpu: '9', mem: '0.2' },
      201,
    );
    const response = await request(app).get('/formula?type=spare').expect(200);
    expect(response.body.type).toBe('spare');
    expect(response.body.rates.cpu).toBe('2.00');
  });
});
