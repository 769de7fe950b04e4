import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runToExit } from '../support/run-to-exit.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';

// `npm ci` with NODE_ENV=production set leaves out the devDependencies, tsx among them: `npm start`
// then stopped with Node's "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'tsx'" and a stack,
// which did not say why or what to do. A checkout without node_modules is such an install.
const checkout = mkdtempSync(path.join(os.tmpdir(), 'tsx-missing-'));
mkdirSync(path.join(checkout, 'scripts'));
cpSync(path.join(PROJECT_ROOT, 'package.json'), path.join(checkout, 'package.json'));
cpSync(path.join(PROJECT_ROOT, 'scripts/require-tsx.mjs'), path.join(checkout, 'scripts/require-tsx.mjs'));
afterAll(() => rmSync(checkout, { recursive: true, force: true }));

describe('an npm script run through tsx, without the devDependencies installed', () => {
  it.each(['start', 'db:migrate', 'db:seed', 'user:create', 'audit:verify', 'ingest'])(
    'npm run %s says tsx is missing, why, and what to do, in one line (exit 1)',
    async (script) => {
      const result = await runToExit('npm', ['run', '--silent', script], { cwd: checkout, env: {} });
      expect(result).toEqual({
        code: 1,
        output:
          `npm run ${script} cannot start: tsx, the devDependency that runs the TypeScript source, is not installed ` +
          '(npm ci leaves out the devDependencies when NODE_ENV=production is set). Install with ' +
          'npm ci --include=dev, or build where they are installed and run the compiled :prod scripts (docs/operations.md).\n',
      });
    },
    60_000,
  );
});
