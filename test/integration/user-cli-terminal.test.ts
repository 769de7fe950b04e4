import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtFile } from '../support/built-app.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// util-linux's `script` gives the tool a terminal, as an operator typing at a shell does.
const SCRIPT = '/usr/bin/script';
const FIRST_PROMPT = 'Password (empty: generate one): ';
const REPEAT_PROMPT = 'Repeat the password: ';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Runs `npm run user:* -- args` on a terminal (the tool compiled once for the run, test/support/built-app.ts), typing `typed[i]` when the i-th prompt shows. */
function runOnTerminal(args: string[], typed: string[]): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, builtFile('src/cli/user.cli.ts'), ...args].join(' ');
  const child = spawn(SCRIPT, ['-qec', command, '/dev/null'], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATABASE_URL: db.url,
      LOG_LEVEL: 'warn',
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let answered = 0;
  const onData = (chunk: Buffer) => {
    output += chunk;
    const prompts = [FIRST_PROMPT, REPEAT_PROMPT];
    while (answered < typed.length && output.split(prompts[answered] as string).length > 1) {
      child.stdin.write(`${typed[answered]}\r`);
      answered += 1;
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

describe.skipIf(!existsSync(SCRIPT))('npm run user:create on a terminal', () => {
  it('asks for the password twice, and a mistyped repeat creates no one', async () => {
    const result = await runOnTerminal(
      ['create', '--username', 'typo', '--role', 'admin'],
      ['first-password-123', 'frist-password-123'],
    );
    expect(result.output).toContain(REPEAT_PROMPT);
    expect(result.output).toContain('The two passwords differ; nothing was changed.');
    expect(result.code).toBe(64);
    expect(await db.prisma.user.count({ where: { username: 'typo' } })).toBe(0);
  }, 60_000);

  it('creates the user when both agree', async () => {
    const result = await runOnTerminal(
      ['create', '--username', 'careful', '--role', 'admin'],
      ['careful-password-123', 'careful-password-123'],
    );
    expect(result.output).toContain('Created admin careful.');
    expect(result.code).toBe(0);
    expect(await db.prisma.user.count({ where: { username: 'careful' } })).toBe(1);
  }, 60_000);
});
