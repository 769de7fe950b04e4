import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { Argon2ThreadFailure } from '../../src/modules/users/argon2-threads.js';
import {
  closePasswordHashing,
  configurePasswordHashing,
  hashPassword,
  verifyPassword,
} from '../../src/modules/users/password.js';

/** The nice value of every thread of this process, by thread id. */
function threadNiceValues(): Map<string, number> {
  const values = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis start at field 3 (state); nice is field 19.
    values.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return values;
}

describe('password hashing on threads of its own', () => {
  afterEach(async () => {
    await configurePasswordHashing({ threads: availableParallelism(), niceness: 0 });
  });

  it('verifies the right password and refuses a wrong one or a malformed hash', async () => {
    const stored = await hashPassword('correct horse battery');
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(stored, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(stored, 'correct horse batterY')).toBe(false);
    expect(await verifyPassword('$argon2id$v=19$not-a-hash', 'anything')).toBe(false);
  });

  it('gives each of many waiting verifies its own answer when one thread takes them in turn', async () => {
    await configurePasswordHashing({ threads: 1, niceness: 0 });
    const [first, second] = await Promise.all([hashPassword('first password'), hashPassword('second password')]);
    const answers = await Promise.all([
      verifyPassword(first, 'first password'),
      verifyPassword(first, 'second password'),
      verifyPassword(second, 'second password'),
      verifyPassword(second, 'first password'),
      verifyPassword(first, 'first password'),
    ]);
    expect(answers).toEqual([true, false, true, false, true]);
  });

  it.runIf(process.platform === 'linux')(
    'runs its threads at the configured nice value and leaves the rest of the process alone',
    async () => {
      const before = threadNiceValues();
      await configurePasswordHashing({ threads: 2, niceness: 7 });
      const stored = await hashPassword('a password to verify');
      await Promise.all([verifyPassword(stored, 'a password to verify'), verifyPassword(stored, 'another')]);
      const after = threadNiceValues();
      const newThreads = [...after].filter(([tid]) => !before.has(tid));
      expect(newThreads.filter(([, nice]) => nice === 7)).toHaveLength(2);
      const others = [...after].filter(([, nice]) => nice !== 7).map(([, nice]) => nice);
      expect(new Set(others)).toEqual(new Set([0]));
    },
  );

  it('keeps a process alive while it hashes, and lets it exit by itself once idle', () => {
    // What a CLI does: hash, verify, and end with nothing else to wait for. The module flag is
    // the process's own and must not change how the threads load.
    const password = path.resolve(import.meta.dirname, '../../src/modules/users/password.ts');
    const script = `import { hashPassword, verifyPassword } from ${JSON.stringify(password)};
      const stored = await hashPassword('a password to verify');
      console.log(await verifyPassword(stored, 'a password to verify'));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.error, 'the process did not exit by itself').toBeUndefined();
    expect({ status: child.status, stdout: child.stdout.trim(), stderr: child.stderr }).toEqual({
      status: 0,
      stdout: 'true',
      stderr: '',
    });
  });

  it('fails the verifies running or waiting when the threads close, instead of calling the password wrong', async () => {
    const stored = await hashPassword('a password to verify');
    await configurePasswordHashing({ threads: 1, niceness: 0 });
    // One running and one waiting for the only thread: both fail.
    const outcomes = Promise.allSettled([
      verifyPassword(stored, 'a password to verify'),
      verifyPassword(stored, 'a password to verify'),
    ]);
    await closePasswordHashing();
    const [running, waiting] = await outcomes;
    expect(running).toMatchObject({ status: 'rejected', reason: expect.any(Argon2ThreadFailure) });
    expect(waiting).toMatchObject({ status: 'rejected', reason: expect.any(Argon2ThreadFailure) });
    // The next verify starts a new thread.
    expect(await verifyPassword(stored, 'a password to verify')).toBe(true);
  });
});

describe('PASSWORD_HASH_NICENESS', () => {
  it('defaults to 10 and takes 0 to 19', () => {
    expect(loadConfig({}).auth.passwordHashNiceness).toBe(10);
    expect(loadConfig({ PASSWORD_HASH_NICENESS: '0' }).auth.passwordHashNiceness).toBe(0);
    expect(loadConfig({ PASSWORD_HASH_NICENESS: '19' }).auth.passwordHashNiceness).toBe(19);
  });

  it.each(['20', '-1', 'low', '2.5'])('refuses %j with a readable problem', (value) => {
    let problems: string[] = [];
    try {
      loadConfig({ PASSWORD_HASH_NICENESS: value });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expect(problems).toEqual([expect.stringMatching(/^PASSWORD_HASH_NICENESS: must be (from 0 to 19|a whole number)/)]);
  });
});
