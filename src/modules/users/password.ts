import { pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import {
  Argon2ThreadFailure,
  type Argon2Threads,
  type Argon2ThreadsSettings,
  createArgon2Threads,
} from './argon2-threads.js';

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: string,
  keylen: number,
  options: object,
) => Promise<Buffer>;

// OWASP's argon2id baseline (19 MiB, t=2, p=1): about 14 ms a verify on a 2-core machine.
const MEMORY_COST = 19_456;
const TIME_COST = 2;
const ARGON2_OPTIONS = {
  algorithm: 2 /* Algorithm.Argon2id: an ambient const enum, unusable under isolatedModules */,
  memoryCost: MEMORY_COST,
  timeCost: TIME_COST,
  parallelism: 1,
} as const;

let threadSettings: Argon2ThreadsSettings = { threads: availableParallelism(), niceness: 0 };
let threads: Argon2Threads | undefined;

/**
 * How this process hashes: server.ts passes the configured threads and nice value before it
 * serves; CLIs and tests hash on a thread per core at normal priority.
 */
export async function configurePasswordHashing(settings: Argon2ThreadsSettings): Promise<void> {
  await closePasswordHashing();
  threadSettings = settings;
}

/** Ends the hashing threads (they are unref'd, so this is for an orderly shutdown and tests). */
export async function closePasswordHashing(): Promise<void> {
  const open = threads;
  threads = undefined;
  await open?.close();
}

function hashingThreads(): Argon2Threads {
  threads ??= createArgon2Threads(threadSettings);
  return threads;
}

/** Hashes a password with argon2id at the current parameters. */
export function hashPassword(password: string): Promise<string> {
  return hashingThreads().hash(password, ARGON2_OPTIONS);
}

/**
 * True when the password matches the stored hash. Besides argon2 it reads the hashes of
 * the Flask/werkzeug system centres migrate from (`pbkdf2:sha256:N$salt$hex`,
 * `scrypt:N:r:p$salt$hex`), so imported users can sign in and be upgraded.
 * A malformed hash never matches; a hashing thread that fails is an error, not a mismatch.
 */
export async function verifyPassword(storedHash: string, password: string): Promise<boolean> {
  try {
    if (storedHash.startsWith('$argon2')) return await hashingThreads().verify(storedHash, password);
    if (storedHash.startsWith('pbkdf2:') || storedHash.startsWith('scrypt:'))
      return await verifyWerkzeug(storedHash, password);
    return false;
  } catch (error) {
    if (error instanceof Argon2ThreadFailure) throw error;
    return false;
  }
}

// What hashPassword writes: argon2id, version 0x13, the current parameters, then @node-rs/argon2's
// 16-byte salt (22 characters of unpadded base64) and 32-byte output (43).
const CURRENT_HASH = new RegExp(
  `^\\$argon2id\\$v=19\\$m=${MEMORY_COST},t=${TIME_COST},p=${ARGON2_OPTIONS.parallelism}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`,
);

/**
 * True when a hash should be replaced by a fresh argon2id one after a successful sign-in: whenever
 * it is anything but what hashPassword writes now. Only weaker argon2id parameters were replaced: a
 * stronger hash (more memory or passes, another parallelism, argon2i or argon2d) was kept for good,
 * so its account went on costing more CPU per sign-in and was told apart from the others by timing.
 */
export function needsRehash(storedHash: string): boolean {
  return !CURRENT_HASH.test(storedHash);
}

/**
 * True when checking a password against `storedHash` may cost less than the argon2 check an unknown
 * username pays: werkzeug's hashes (1,000 pbkdf2 rounds are as valid as 600,000), argon2 at less
 * memory times passes per lane than now, and anything malformed (refused before any hashing). A refused
 * sign-in against such a hash also pays that check, so it is never quicker than an unknown name's.
 * An argon2 hash at the current cost or more already costs what the unknown name's check does: paying
 * the check on top only made its account's refusals slower still, and a hashing thread busier.
 */
export function costsLessThanCurrentHash(storedHash: string): boolean {
  const parameters = /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?([^$]+)\$[^$]+\$[^$]+$/.exec(storedHash)?.[1];
  if (!parameters) return true;
  const memory = Number(/(?:^|,)m=(\d+)(?:,|$)/.exec(parameters)?.[1] ?? 0);
  const passes = Number(/(?:^|,)t=(\d+)(?:,|$)/.exec(parameters)?.[1] ?? 0);
  // Lanes may be filled on as many threads at once: the check can take 1/p of its work's time.
  const lanes = Number(/(?:^|,)p=(\d+)(?:,|$)/.exec(parameters)?.[1] ?? 1) || 1;
  return (memory * passes) / lanes < (MEMORY_COST * TIME_COST) / ARGON2_OPTIONS.parallelism;
}

async function verifyWerkzeug(storedHash: string, password: string): Promise<boolean> {
  const [method, salt, expectedHex] = storedHash.split('$');
  if (!method || salt === undefined || !expectedHex || !/^[0-9a-f]+$/.test(expectedHex)) return false;
  const expected = Buffer.from(expectedHex, 'hex');
  const [kind, ...params] = method.split(':');
  let actual: Buffer;
  if (kind === 'pbkdf2') {
    const digest = params[0] ?? 'sha256';
    const iterations = Number(params[1] ?? 600_000);
    if (!['sha256', 'sha512', 'sha1'].includes(digest) || !Number.isInteger(iterations) || iterations < 1) return false;
    actual = await pbkdf2Async(password, salt, iterations, expected.length, digest);
  } else if (kind === 'scrypt') {
    const [n, r, p] = params.map(Number);
    if (!n || !r || !p) return false;
    actual = await scryptAsync(password, salt, expected.length, { N: n, r, p, maxmem: 132 * n * r * p });
  } else {
    return false;
  }
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
