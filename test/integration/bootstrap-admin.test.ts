import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/bootstrap.js';
import { buildUser } from '../support/factories.js';
import { buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-own-password' });
  await buildUser(db.prisma, { username: 'alice', role: 'user', password: 'alice-password-1' });
  await buildUser(db.prisma, { username: 'gone', role: 'admin', password: 'gone-password-12', isDisabled: true });
});
afterAll(() => db?.drop());

/** The warnings a start logs, with ADMIN_USERNAME / ADMIN_PASSWORD when given. */
async function startWith(username?: string, password?: string, database: TestDatabase = db): Promise<string[]> {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  const admin: Record<string, string> =
    username && password ? { ADMIN_USERNAME: username, ADMIN_PASSWORD: password } : {};
  const config = buildTestConfig(database.url, admin);
  await (await prepareDatabase(config, logger)).stop();
  return lines.filter((line) => line.level === 40).map((line) => line.msg);
}

// ADMIN_USERNAME / ADMIN_PASSWORD create an admin only when no user of that name exists. An operator
// who named an existing account (a researcher's, a disabled one, or an admin whose password is not
// ADMIN_PASSWORD) got no admin they could sign in as, and the start said nothing.
describe('ADMIN_USERNAME naming a user who exists already', () => {
  it('says nothing when it is an enabled admin whose password is ADMIN_PASSWORD', async () => {
    expect(await startWith('ops', 'ops-own-password')).toEqual([]);
  });

  it('warns when ADMIN_PASSWORD is not that admin’s password', async () => {
    expect(await startWith('ops', 'another-password')).toEqual([
      'ADMIN_USERNAME ops exists already and ADMIN_PASSWORD is not its password: it was left as it is (ADMIN_USERNAME and ADMIN_PASSWORD only create an admin who does not exist yet). Sign in with its own password, or set one with npm run user:passwd -- --username ops; then remove ADMIN_PASSWORD from the settings',
    ]);
  });

  it('warns when it is not an admin', async () => {
    expect(await startWith('alice', 'alice-password-1')).toEqual([
      'ADMIN_USERNAME alice exists already and is not an admin: it was left as it is, so no admin was created (ADMIN_USERNAME and ADMIN_PASSWORD only create an admin who does not exist yet). Choose another ADMIN_USERNAME, or have an admin change its role on /admin/users',
    ]);
    expect(await db.prisma.user.count({ where: { username: 'alice', role: 'admin' } })).toBe(0);
  });

  it('warns when that admin is disabled', async () => {
    expect(await startWith('gone', 'gone-password-12')).toEqual([
      'ADMIN_USERNAME gone exists already and is disabled: it was left as it is, so it cannot sign in (ADMIN_USERNAME and ADMIN_PASSWORD only create an admin who does not exist yet). Enable it with npm run user:disable -- --username gone --enable, or choose another ADMIN_USERNAME',
    ]);
  });
});

// A database without an enabled admin (a production start before the first admin, the demo with
// DEMO_SEED=0, the last admin disabled) started as if all was well: the sign-in page then took no one.
describe('a start with no enabled admin', () => {
  const NO_ADMIN =
    'No enabled admin exists, so no one can sign in to manage users, rates and receipts: create one with npm run user:create -- --username NAME --role admin (node dist/src/cli/user.cli.js create ... in the Docker image), or set ADMIN_USERNAME and ADMIN_PASSWORD for the next start (docs/operations.md, "First production start")';

  it('warns on an empty database', async () => {
    const empty = await createTestDatabase();
    try {
      expect(await startWith(undefined, undefined, empty)).toEqual([NO_ADMIN]);
      // ADMIN_USERNAME creates one at this start: nothing to warn about.
      expect(await startWith('first', 'first-admin-password', empty)).toEqual([]);
    } finally {
      await empty.drop();
    }
  });

  it('warns when the only admins are disabled, and not while one is enabled', async () => {
    const researchers = await createTestDatabase();
    try {
      await buildUser(researchers.prisma, { username: 'bob', role: 'user' });
      await buildUser(researchers.prisma, { username: 'old', role: 'admin', isDisabled: true });
      expect(await startWith(undefined, undefined, researchers)).toEqual([NO_ADMIN]);
      expect(await startWith(undefined, undefined, db)).toEqual([]);
    } finally {
      await researchers.drop();
    }
  });
});

// Two instances (replicas, or hosts of one deployment) started together with the same settings
// both found no ADMIN_USERNAME user, both created it, and the one that committed second stopped
// with `HPC Billing failed to start: A user named "ops" already exists.` (exit 1): a first
// production start of a second instance failed for the admin the first had just made.
describe('ADMIN_USERNAME with two instances starting at once', () => {
  it('creates the admin once, and both starts succeed without a warning', async () => {
    const fresh = await createTestDatabase();
    try {
      const starts = await Promise.allSettled([
        startWith('first', 'first-admin-password', fresh),
        startWith('first', 'first-admin-password', fresh),
      ]);
      expect(starts.map((start) => (start.status === 'rejected' ? String(start.reason) : start.value))).toEqual([
        [],
        [],
      ]);
      expect(await fresh.prisma.user.count({ where: { username: 'first', role: 'admin' } })).toBe(1);
      expect(await fresh.prisma.auditLog.count({ where: { action: 'user.create' } })).toBe(1);
    } finally {
      await fresh.drop();
    }
  });
});
