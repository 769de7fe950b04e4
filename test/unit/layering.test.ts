import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

const SRC = path.join(PROJECT_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/**
 * The repository modules a file imports functions from: a namespace import, or a named one that is
 * neither a type (`import type` is allowed anywhere) nor an error class to test with instanceof.
 */
function repositoryValueImportsOf(source: string): string[] {
  const imports = source.matchAll(/^import\s+(type\s+)?([^;]*?)\s+from\s+'([^']+\.repository\.js)';/gms);
  return [...imports]
    .filter(([, isTypeOnly, clause = '']) => {
      if (isTypeOnly) return false;
      const named = /^\{([^}]*)\}$/s.exec(clause.trim());
      if (!named) return true;
      return (named[1] ?? '')
        .split(',')
        .map((name) => name.trim())
        .some((name) => name !== '' && !name.startsWith('type ') && !/^\w*Error$/.test(name));
    })
    .map(([, , , from = '']) => from);
}

// docs/development.md, "Architecture": routes call a service, and services hand repositories their
// transaction. The app's wiring (src/app.ts), the server and the command-line tools are the outside
// of that too: they reach the database through a service, not by calling a repository themselves.
describe('layering', () => {
  it('no route, nor any file outside src/modules/, calls a repository directly', () => {
    const offenders = sourceFiles(SRC)
      .filter((file) => file.endsWith('.routes.ts') || !file.startsWith(path.join(SRC, 'modules') + path.sep))
      .flatMap((file) =>
        repositoryValueImportsOf(readFileSync(file, 'utf8')).map((from) => `${path.relative(SRC, file)} -> ${from}`),
      );
    expect(offenders).toEqual([]);
  });

  // The pg pool's direct users docs/development.md names: the session store (and the migrations and
  // the CSV exports' COPY, which live in src/db/ and a repository). Every other module queries in a repository.
  it('no module file but a repository (or the session store) sends SQL itself', () => {
    const offenders = sourceFiles(path.join(SRC, 'modules'))
      .filter((file) => !file.endsWith('.repository.ts') && !file.endsWith(`${path.sep}session.store.ts`))
      .filter((file) =>
        /\b(queryWithin|queryPrepared)(<[^>]*>)?\(|\.query(<[^>]*>)?\(/.test(readFileSync(file, 'utf8')),
      )
      .map((file) => path.relative(SRC, file));
    expect(offenders).toEqual([]);
  });

  it('sees a value import of a repository, and lets a type-only one through', () => {
    expect(repositoryValueImportsOf("import { findOldestOpenCheckouts } from './x/payments.repository.js';")).toEqual([
      './x/payments.repository.js',
    ]);
    expect(repositoryValueImportsOf("import * as repo from '../m/ingestion.repository.js';")).toEqual([
      '../m/ingestion.repository.js',
    ]);
    expect(repositoryValueImportsOf("import type { RunRecord } from './ingestion.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { type A, type B } from './audit.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { JobStoreError } from './ingestion.repository.js';")).toEqual([]);
    expect(repositoryValueImportsOf("import { JobStoreError, countJobs } from './ingestion.repository.js';")).toEqual([
      './ingestion.repository.js',
    ]);
  });
});
