import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { refusedFormStateOf, visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Two admins with Tier overrides open in two tabs: the second save silently undid the first, and
// the audit log read as though the second admin had chosen to overwrite it. As the rates form does,
// the user's form now carries the override it was opened on, and a change made since is a 409.
let db: TestDatabase;
let ops: Agent;
let carol: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  await buildUser(db.prisma, { username: 'carol', role: 'admin', password: 'carol-password-123' });
  await buildUser(db.prisma, { username: 'zoe', password: 'zoe-password-123' });
  const app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  carol = await signInAs(app, 'carol', 'carol-password-123');
});
afterAll(() => db?.drop());

/** The hidden fields of a user's form on Tier overrides as the page rendered them. */
async function openOverrideForm(agent: Agent, username: string) {
  const page = (await agent.get('/admin/tiers').set('Accept', 'text/html').expect(200)).text;
  const row = new RegExp(`<tbody id="user-${username}">.*?</form>`, 's').exec(page)?.[0] ?? '';
  const basedOn = /name="based_on_override" value="([^"]*)"/.exec(row)?.[1];
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(row)?.[1];
  return { basedOn, csrf };
}

async function overrideOf(username: string) {
  const row = await db.prisma.tierOverride.findUnique({ where: { username }, include: { tier: true } });
  return row?.tier.name;
}

describe('a tier override form opened before another admin moved the user', () => {
  it('is refused with what changed and by whom, and leaves the user where the other admin put them', async () => {
    const opsForm = await openOverrideForm(ops, 'zoe');
    // zoe is on her natural tier: no override.
    expect(opsForm.basedOn).toBe('');
    const carolForm = await openOverrideForm(carol, 'zoe');
    await carol
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'zoe', tier: 'gov', based_on_override: carolForm.basedOn, csrf_token: carolForm.csrf })
      .expect(303);
    expect(await overrideOf('zoe')).toBe('gov');
    const entries = await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.override' } } });

    const stale = await ops
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: 'zoe', tier: 'private', based_on_override: opsForm.basedOn, csrf_token: opsForm.csrf });
    expect(stale.status).toBe(409);
    expect(visibleTextOf(stale.text)).toMatch(
      /zoe not moved to private\. Their tier was changed by carol at \d{4}-\d\d-\d\d \d\d:\d\d after this page was opened: now gov \(override\)\. The list shows it as it is now; check it and save again\./,
    );
    // Her row is marked and focused, and its form now starts from carol's change.
    expect(refusedFormStateOf(stale.text).invalid).toEqual(['tier-for-zoe']);
    const refusedRow = /<tbody id="user-zoe">.*?<\/form>/s.exec(stale.text)?.[0] ?? '';
    expect(refusedRow).toContain('name="based_on_override" value="gov"');
    expect(await overrideOf('zoe')).toBe('gov');
    expect(await db.prisma.auditLog.count({ where: { action: { startsWith: 'pricing.override' } } })).toBe(entries);

    // JSON clients are told the same, with a 409.
    const json = await ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/tiers'))
      .send({ username: 'zoe', tier: 'mu', based_on_override: '' });
    expect(json.status).toBe(409);
    expect(json.body.error).toMatch(/^zoe not moved to mu\. Their tier was changed by carol at /);
    expect(await overrideOf('zoe')).toBe('gov');

    // Sent again from the refused page, the move goes through.
    await ops
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'zoe', tier: 'private', based_on_override: 'gov', csrf_token: opsForm.csrf })
      .expect(303);
    expect(await overrideOf('zoe')).toBe('private');
  });

  it('says a removed override was removed, and still takes a double submit as "already there"', async () => {
    const form = await openOverrideForm(ops, 'zoe');
    expect(form.basedOn).toBe('private');
    // carol puts zoe back on her natural tier (mu, the default): the override is removed.
    const carolForm = await openOverrideForm(carol, 'zoe');
    await carol
      .post('/admin/tiers')
      .type('form')
      .send({ username: 'zoe', tier: 'mu', based_on_override: carolForm.basedOn, csrf_token: carolForm.csrf })
      .expect(303);
    expect(await overrideOf('zoe')).toBeUndefined();
    const stale = await ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', form.csrf ?? '')
      .send({ username: 'zoe', tier: 'gov', based_on_override: 'private' });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatch(/Their tier was changed by carol at .* now mu \(natural, no override\)\./);
    // The same move twice (a double submit from one page): the second changes nothing, it is no conflict.
    const again = await ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', form.csrf ?? '')
      .send({ username: 'zoe', tier: 'mu', based_on_override: 'private' });
    expect(again.status).toBe(200);
    expect(again.body.user).toMatchObject({ isChanged: false });
  });
});

describe('a stale tier override form whose change has an entry time no date holds', () => {
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

  it.each([
    ['infinity', 'yan'],
    ['275761-01-01 00:00:00+00', 'yoko'],
  ])('with ts %s is refused with "not a valid time" (it was a 500), the user left where they are', async (ts, user) => {
    await buildUser(db.prisma, { username: user, password: `${user}-password-123` });
    const form = await openOverrideForm(ops, user);
    const carolForm = await openOverrideForm(carol, user);
    await carol
      .post('/admin/tiers')
      .type('form')
      .send({ username: user, tier: 'gov', based_on_override: carolForm.basedOn, csrf_token: carolForm.csrf })
      .expect(303);
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: `user:${user}`, action: 'pricing.override.set' },
      orderBy: { id: 'desc' },
    });
    // Not left the newest entry: an app without a key appends nothing after one that matches no hash.
    await recordAudit(db, { actor: 'test', action: 'test.after_spoiled', status: 'ok' });
    await asSuperuser('UPDATE audit_log SET ts = $1::timestamptz WHERE id = $2', [ts, String(entry.id)]);
    const entries = await db.prisma.auditLog.count();

    const stale = await ops
      .post('/admin/tiers')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: user, tier: 'private', based_on_override: form.basedOn, csrf_token: form.csrf });
    expect(stale.status).toBe(409);
    expect(visibleTextOf(stale.text)).toContain(
      `${user} not moved to private. Their tier was changed by carol at not a valid time after this page was opened: now gov (override).`,
    );
    const json = await ops
      .post('/admin/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops, '/admin/tiers'))
      .send({ username: user, tier: 'mu', based_on_override: '' });
    expect(json.status).toBe(409);
    expect(json.body.error).toMatch(
      `${user} not moved to mu. Their tier was changed by carol at not a valid time after`,
    );
    expect(await overrideOf(user)).toBe('gov');
    expect(await db.prisma.auditLog.count()).toBe(entries);
  });
});
