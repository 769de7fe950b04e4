import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TOOL_COMMANDS, toolCommandsFor } from '../../src/shared/tool-commands.js';

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

describe('the migrate command a message names', () => {
  // In the image every "run npm run db:migrate" sent the operator to a script that needs tsx and
  // scripts/require-tsx.mjs, neither of which the image has: Node's ERR_MODULE_NOT_FOUND and a stack.
  it('is the npm script from the TypeScript source (tsx)', () => {
    const root = copyOfTheApp(true);
    expect(toolCommandsFor(path.join(root, 'src/shared/tool-commands.ts'), root)).toEqual({
      migrate: 'npm run db:migrate',
      start: 'npm start',
    });
  });

  it('is the :prod script from a build in a checkout', () => {
    const root = copyOfTheApp(true);
    expect(toolCommandsFor(path.join(root, 'dist/src/shared/tool-commands.js'), root)).toEqual({
      migrate: 'npm run db:migrate:prod',
      start: 'npm run start:prod',
    });
  });

  it('is the compiled tool itself in the image, which ships no src/ and no tsx', () => {
    const root = copyOfTheApp(false);
    expect(toolCommandsFor(path.join(root, 'dist/src/shared/tool-commands.js'), root)).toEqual({
      migrate: 'node dist/src/cli/migrate.cli.js',
      start: 'node dist/src/server.js',
    });
  });

  it('is the npm script for the tests, which run the source', () => {
    expect(TOOL_COMMANDS.migrate).toBe('npm run db:migrate');
  });
});
