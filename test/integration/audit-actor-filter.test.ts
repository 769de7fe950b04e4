import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { CLI_ACTOR, SYSTEM_ACTOR } from '../../src/modules/audit/audit-actors.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The audit log's Actor filter, and its CSV's, matched a whole actor, case and all: an admin who typed
 * "ali" for alice was told "No entries match.", where the billing page finds part of a name in any case.
 * Both now follow the billing page's rule: part of a name in any case lists every actor containing it; a
 * whole one (in any case) is that actor alone, the others containing it offered. The application's own
 * actors (cli for the user tools, system for the start-up, provider:<name>) are names like any other.
 */
let db: TestDatabase;
let admin: Agent;

const actors = ['alice', 'Alice', 'malice', CLI_ACTOR, 'clive', SYSTEM_ACTOR, 'provider:stripe', 'a_b', 'axb'];

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
  // Alice: what someone typed at a failed sign-in, which the log keeps as typed.
  for (const actor of actors) {
    await recordAudit(db, { actor, ip: null, userAgent: null, action: 'test.actor', status: 'ok' });
  }
});
afterAll(() => db?.drop());

const html = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(200)).text;
const json = async (path: string) => (await admin.get(path).set('Accept', 'application/json').expect(200)).body;
/** The actors of the entries listed (test.actor's alone: signing in wrote finance's). */
const actorsListed = async (query: string) =>
  (await json(`/admin/audit?action=test.actor&${query}`)).entries.map((entry: { actor: string }) => entry.actor);
/** The actor column of each line of the CSV (after its header). */
const csvActors = async (query: string) =>
  (await admin.get(`/admin/audit.csv?action=test.actor&${query}`).expect(200)).text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',')[2]);

describe('the audit log’s Actor filter', () => {
  it('lists every actor containing the text, in any case, and names them', async () => {
    expect(new Set(await actorsListed('actor=LIC'))).toEqual(new Set(['alice', 'Alice', 'malice']));
    const body = await json('/admin/audit?actor=LIC');
    expect(body.filters).toEqual({ actor: 'LIC' });
    expect(new Set(body.matchedActors)).toEqual(new Set(['alice', 'Alice', 'malice']));
    expect(body.alsoContaining).toEqual([]);
    expect(await html('/admin/audit?actor=LIC')).toMatch(
      /<p class="muted" id="user-matches">“LIC” is part of 3 actors: [^<]*malice\.<\/p>/,
    );
  });

  it('lists a whole name alone, in any case, and offers the actors containing it', async () => {
    expect(new Set(await actorsListed('actor=ALICE'))).toEqual(new Set(['alice', 'Alice']));
    expect(await json('/admin/audit?actor=alice')).toMatchObject({ alsoContaining: ['malice'] });
    expect(await html('/admin/audit?actor=alice&action=test.actor')).toContain(
      'Actors also containing “alice”: <a href="/admin/audit?actor=malice&amp;action=test.actor">malice</a>.</p>',
    );
    expect(await json('/admin/audit')).toMatchObject({ matchedActors: null, alsoContaining: [] });
  });

  it('treats the application’s own actors as names: cli alone, system by part of it, a provider by its prefix', async () => {
    // The user tools' entries, not clive's: the whole name wins.
    expect(await actorsListed('actor=cli')).toEqual(['cli']);
    expect(await json('/admin/audit?actor=CLI')).toMatchObject({ matchedActors: ['cli'], alsoContaining: ['clive'] });
    expect(await actorsListed('actor=system')).toEqual(['system']);
    expect(await actorsListed('actor=sys')).toEqual(['system']);
    expect(await actorsListed('actor=provider')).toEqual(['provider:stripe']);
    expect(await actorsListed('actor=provider:stripe')).toEqual(['provider:stripe']);
  });

  it('reads _ and % as themselves, and says what it looked for when nothing matches', async () => {
    expect(await actorsListed('actor=a_b')).toEqual(['a_b']);
    expect(await actorsListed('actor=%25')).toEqual([]);
    const page = await html('/admin/audit?actor=zed');
    expect(page).toContain('<label for="actor">Actor <span class="muted">(part of a name, any case)</span></label>');
    expect(page).toContain('No entries match. No entry is by an actor containing “zed” (in any case).');
  });

  it('exports the same entries in its CSV', async () => {
    expect(new Set(await csvActors('actor=LIC'))).toEqual(new Set(['alice', 'Alice', 'malice']));
    expect(await csvActors('actor=cli')).toEqual(['cli']);
    expect(await csvActors('actor=a_b')).toEqual(['a_b']);
    expect(await csvActors('actor=zed')).toEqual([]);
  });
});
