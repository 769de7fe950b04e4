import { pbkdf2Sync } from 'node:crypto';
import { hashSync } from '@node-rs/argon2';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import * as password from '../../src/modules/users/password.js';
import { buildUser } from '../support/factories.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The hashing function is watched at its module's boundary; the database stays real. A worker keeps
// modules between test files (vitest.config.ts, isolate: false), so the app an earlier file loaded
// would keep the real function: the modules are loaded afresh for this file, and again after it, so
// that no later file gets the watched one.
vi.hoisted(() => vi.resetModules());
vi.mock('../../src/modules/users/password.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/modules/users/password.js')>();
  return { ...actual, verifyPassword: vi.fn(actual.verifyPassword) };
});
const verifyPassword = vi.mocked(password.verifyPassword);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
  vi.doUnmock('../../src/modules/users/password.js');
  vi.resetModules();
});
beforeEach(() => verifyPassword.mockClear());

/** The hashes a sign-in verified against, in order. */
async function hashesCheckedBySignIn(username: string, typed: string): Promise<string[]> {
  verifyPassword.mockClear();
  const { response } = await postLogin(buildTestApp(db), username, typed);
  expect(response.status).toBe(401);
  return verifyPassword.mock.calls.map(([storedHash]) => storedHash);
}

describe('a wrong password for an account with a hash from the old system', () => {
  it('is refused after the same argon2 check an unknown username gets, besides its own', async () => {
    const salt = 'abcdefgh';
    const legacy = `pbkdf2:sha256:1000$${salt}$${pbkdf2Sync('old-password', salt, 1000, 32, 'sha256').toString('hex')}`;
    await db.prisma.user.create({
      data: { username: 'imported', passwordHash: legacy, passwordChangedAt: new Date() },
    });
    await buildUser(db.prisma, { username: 'current' });

    const [dummy, ...unknownRest] = await hashesCheckedBySignIn('nobody-here', 'a-wrong-password');
    expect(dummy).toMatch(/^\$argon2id\$/);
    expect(unknownRest).toEqual([]);

    // A cheap legacy hash (1,000 rounds) used to be refused sooner than an unknown username.
    expect(await hashesCheckedBySignIn('imported', 'a-wrong-password')).toEqual([legacy, dummy]);

    const current = await hashesCheckedBySignIn('current', 'a-wrong-password');
    expect(current).toHaveLength(1);
    expect(current[0]).not.toBe(dummy);

    // The legacy hash itself still works, and is replaced at that sign-in.
    const { response } = await postLogin(buildTestApp(db), 'imported', 'old-password');
    expect(response.status).toBe(302);
    const stored = await db.prisma.user.findUniqueOrThrow({ where: { username: 'imported' } });
    expect(stored.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});

describe('an argon2 hash made with other parameters than the current ones', () => {
  // Only weaker argon2id hashes were replaced: a stronger one, or argon2i, was kept for good.
  // Until then a wrong password is checked against it, and against the unknown names' dummy only when
  // it costs less than the dummy (as a legacy hash does): a stronger one used to pay both.
  it.each([
    ['stronger argon2id', 'strongerhash', { algorithm: 2, memoryCost: 47_104, timeCost: 3, parallelism: 1 }, 1],
    ['argon2id with p=2', 'paralleled', { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 2 }, 2],
    ['argon2i', 'argon2iuser', { algorithm: 1, memoryCost: 19_456, timeCost: 2, parallelism: 1 }, 1],
    ['weaker argon2id', 'weakerhash', { algorithm: 2, memoryCost: 12_288, timeCost: 1, parallelism: 1 }, 2],
  ])('(%s) is replaced with a current one at the next sign-in', async (_, username, options, checksOfWrongPassword) => {
    const stored = hashSync('its-password-1', options);
    await db.prisma.user.create({ data: { username, passwordHash: stored, passwordChangedAt: new Date() } });
    const checked = await hashesCheckedBySignIn(username, 'a-wrong-password');
    expect(checked).toHaveLength(checksOfWrongPassword);
    expect(checked[0]).toBe(stored);
    if (checksOfWrongPassword === 2) expect(checked[1]).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

    const { response } = await postLogin(buildTestApp(db), username, 'its-password-1');
    expect(response.status).toBe(302);
    const rehashed = (await db.prisma.user.findUniqueOrThrow({ where: { username } })).passwordHash;
    expect(rehashed).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await password.verifyPassword(rehashed, 'its-password-1')).toBe(true);
    // Current now: a wrong password is checked against it alone.
    expect(await hashesCheckedBySignIn(username, 'a-wrong-password')).toEqual([rehashed]);
  });
});
