import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { howItRuns, RUNS, startCommand, TOOL_COMMANDS, toolCommand } from '../../src/shared/tool-commands.js';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** A copy of the app: a checkout holds src/ beside dist/, the image dist/ alone. */
function copyOfTheApp(withSource: boolean): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tool-commands-'));
  roots.push(root);
  mkdirSync(path.join(root, 'dist/src/shared'), { recursive: true });
  if (withSource) mkdirSync(path.join(root, 'src/shared'), { recursive: true });
  return root;
}

describe('how this copy of the app runs', () => {
  it('from the TypeScript source (tsx), from a build in a checkout, or in the image (no src/)', () => {
    const checkout = copyOfTheApp(true);
    expect(howItRuns(path.join(checkout, 'src/shared/tool-commands.ts'), checkout)).toBe('source');
    expect(howItRuns(path.join(checkout, 'dist/src/shared/tool-commands.js'), checkout)).toBe('checkout');
    const image = copyOfTheApp(false);
    expect(howItRuns(path.join(image, 'dist/src/shared/tool-commands.js'), image)).toBe('image');
  });

  it('is the source for the tests', () => {
    expect(RUNS).toBe('source');
    expect(TOOL_COMMANDS).toEqual({ migrate: 'npm run db:migrate', start: 'npm start' });
  });
});

describe('the command a message names', () => {
  // In the image every "run npm run db:migrate" sent the operator to a script that needs tsx and
  // scripts/require-tsx.mjs, neither of which the image has: Node's ERR_MODULE_NOT_FOUND and a stack.
  it.each([
    ['source', 'npm run db:migrate', 'npm start'],
    ['checkout', 'npm run db:migrate:prod', 'npm run start:prod'],
    ['image', 'node dist/src/cli/migrate.cli.js', 'node dist/src/server.js'],
  ] as const)('migrating and starting, %s', (runs, migrate, start) => {
    expect(toolCommand('db:migrate', '', runs)).toBe(migrate);
    expect(startCommand(runs)).toBe(start);
  });

  it.each([
    ['source', 'npm run user:disable -- --username ops --enable'],
    ['checkout', 'npm run user:disable:prod -- --username ops --enable'],
    ['image', 'node dist/src/cli/user.cli.js disable --username ops --enable'],
  ] as const)('a user tool with its options, %s', (runs, command) => {
    expect(toolCommand('user:disable', '--username ops --enable', runs)).toBe(command);
  });
});
