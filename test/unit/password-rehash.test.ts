import { hashSync } from '@node-rs/argon2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  closePasswordHashing,
  costsLessThanCurrentHash,
  hashPassword,
  needsRehash,
} from '../../src/modules/users/password.js';

/**
 * A stored hash is replaced at the next successful sign-in whenever it is not what hashPassword
 * writes now. Only argon2id hashes weaker than the current parameters were: a stronger one (or
 * another parallelism, argon2i or argon2d) was kept for good, so that account went on costing
 * more CPU per sign-in than the others, and stayed told apart from them by its timing.
 */
afterAll(() => closePasswordHashing());

// The current parameters (password.ts): argon2id, version 0x13, 19 MiB, t=2, p=1, 32-byte output.
const CURRENT = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
const ARGON2D = 0;
const ARGON2I = 1;
const VERSION_0X10 = 0;
const argon2 = (options: Record<string, unknown>) => hashSync('a password', { ...CURRENT, ...options });

describe('needsRehash', () => {
  it('is false for a hash hashPassword writes now', async () => {
    expect(needsRehash(await hashPassword('a password'))).toBe(false);
    expect(needsRehash(argon2({}))).toBe(false);
  });

  it.each([
    ['argon2id, more memory', () => argon2({ memoryCost: 65_536 })],
    ['argon2id, less memory', () => argon2({ memoryCost: 12_288 })],
    ['argon2id, more passes', () => argon2({ timeCost: 3 })],
    ['argon2id, fewer passes', () => argon2({ timeCost: 1 })],
    ['argon2id, more parallelism', () => argon2({ parallelism: 2 })],
    ["argon2id, more memory and one pass (OWASP's 46 MiB, t=1)", () => argon2({ memoryCost: 47_104, timeCost: 1 })],
    ['argon2id, version 0x10', () => argon2({ version: VERSION_0X10 })],
    ['argon2id, a 16-byte output', () => argon2({ outputLen: 16 })],
    ['argon2id, an 8-byte salt', () => argon2({ salt: new Uint8Array(8).fill(7) })],
    ['argon2i, the same parameters', () => argon2({ algorithm: ARGON2I })],
    ['argon2d, the same parameters', () => argon2({ algorithm: ARGON2D })],
    ['argon2i, stronger', () => argon2({ algorithm: ARGON2I, memoryCost: 65_536, timeCost: 3 })],
    ['argon2 with a key id', () => argon2({}).replace('p=1$', 'p=1,keyid=AAAA$')],
    ['argon2 without a version (the 1.0 format)', () => argon2({}).replace('$v=19$', '$')],
    ['argon2 with the parameters in another order', () => argon2({}).replace('m=19456,t=2,p=1', 't=2,m=19456,p=1')],
    ['werkzeug pbkdf2', () => 'pbkdf2:sha256:600000$abcdefgh$00ff'],
    ['werkzeug scrypt', () => 'scrypt:32768:8:1$abcdefgh$00ff'],
    ['empty', () => ''],
  ])('is true for %s', (_, stored) => {
    expect(needsRehash(stored())).toBe(true);
  });
});

describe('costsLessThanCurrentHash', () => {
  // A refused sign-in against a hash that costs less than the unknown names' argon2 check also pays
  // that check; one at the current cost or more does not pay it again.
  it.each([
    ['the current parameters', () => argon2({}), false],
    ['argon2id, more memory', () => argon2({ memoryCost: 65_536 }), false],
    ['argon2id, more passes', () => argon2({ timeCost: 3 }), false],
    [
      "argon2id, more memory and one pass (OWASP's 46 MiB, t=1)",
      () => argon2({ memoryCost: 47_104, timeCost: 1 }),
      false,
    ],
    [
      'argon2id, more parallelism and as much work per lane',
      () => argon2({ parallelism: 2, memoryCost: 38_912 }),
      false,
    ],
    ['argon2id, more parallelism (its lanes may be hashed at once)', () => argon2({ parallelism: 2 }), true],
    ['argon2i, the same parameters', () => argon2({ algorithm: ARGON2I }), false],
    [
      'argon2 with the parameters in another order',
      () => argon2({}).replace('m=19456,t=2,p=1', 't=2,m=19456,p=1'),
      false,
    ],
    ['argon2id, less memory', () => argon2({ memoryCost: 12_288 }), true],
    ['argon2id, fewer passes', () => argon2({ timeCost: 1 }), true],
    ['argon2 without a memory cost', () => argon2({}).replace('m=19456,', ''), true],
    ['werkzeug pbkdf2', () => 'pbkdf2:sha256:600000$abcdefgh$00ff', true],
    ['werkzeug scrypt', () => 'scrypt:32768:8:1$abcdefgh$00ff', true],
    ['empty', () => '', true],
  ])('%s: %s', (_, stored, isCheaper) => {
    expect(costsLessThanCurrentHash(stored())).toBe(isCheaper);
  });
});
