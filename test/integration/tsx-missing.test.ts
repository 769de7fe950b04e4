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
    'npm run %s with NODE_ENV=production says tsx is missing, why, and what to do, in one line (exit 1)',
    async (script) => {
      const result = await runToExit('npm', ['run', '--silent', script], {
        cwd: checkout,
        env: { NODE_ENV: 'production' },
      });
      expect(result).toEqual({
        code: 1,
        output:
          `npm run ${script} cannot start: tsx, the devDependency that runs the TypeScript source, is not installed ` +
          '(npm ci leaves out the devDependencies when NODE_ENV=production is set, as it is here). Install with ' +
          'npm ci --include=dev, or build where they are installed and run the compiled :prod scripts (docs/operations.md).\n',
      });
    },
    60_000,
  );

  // A newcomer who cloned and ran `npm start` without `npm ci` was told about NODE_ENV=production, which
  // they had not set, and sent to `npm ci --include=dev`.
  it.each(['start', 'ingest'])(
    'npm run %s without NODE_ENV=production says to install the dependencies with npm ci (exit 1)',
    async (script) => {
      const result = await runToExit('npm', ['run', '--silent', script], { cwd: checkout, env: {} });
      expect(result).toEqual({
        code: 1,
        output:
          `npm run ${script} cannot start: tsx, the devDependency that runs the TypeScript source, is not installed: ` +
          'run npm ci first (npm ci --include=dev where npm is set to leave out the devDependencies).\n',
      });
    },
    60_000,
  );
});
