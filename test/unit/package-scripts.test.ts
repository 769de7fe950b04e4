import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const packageJson = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

describe('package.json scripts that run the app or its tools with node', () => {
  // npm runs a script under `sh -c`; a signal sent to npm (docker stop and Kubernetes signal PID 1,
  // `kill` of the pid ps shows) reaches that shell, which died and left node running on, orphaned,
  // unless the shell exec'd it: a migration waiting for its lock, a backfill holding the ingestion lock.
  const nodeScripts = Object.entries(packageJson.scripts).filter(([, command]) => /(^|\s)node\s/.test(command));

  it('are found (the check below is not vacuous)', () => {
    expect(nodeScripts.map(([name]) => name)).toEqual(
      expect.arrayContaining(['start', 'start:prod', 'ingest', 'db:migrate', 'user:create:prod', 'audit:verify']),
    );
  });

  for (const [name, command] of nodeScripts) {
    it(`${name} execs node, so a signal to npm reaches it`, () => {
      expect(command).toMatch(/^exec node\s/);
    });
  }
});
