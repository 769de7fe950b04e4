import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findSourceNewerThanBuild, warnIfBuildIsStale } from '../../src/shared/stale-build.js';

/** A checkout with a built dist/: the compiled server at `builtAt`, source files at their times. */
function checkout(builtAt: Date, sources: Record<string, Date>): { root: string; built: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stale-build-'));
  const built = path.join(root, 'dist/src/server.js');
  mkdirSync(path.dirname(built), { recursive: true });
  writeFileSync(built, '');
  utimesSync(built, builtAt, builtAt);
  for (const [file, changedAt] of Object.entries(sources)) {
    const full = path.join(root, 'src', file);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, '');
    utimesSync(full, changedAt, changedAt);
  }
  return { root, built };
}

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('a compiled start beside newer source', () => {
  // `git pull` (or a checkout) and `npm run start:prod` without `npm run build` ran the older compiled
  // code, while the migrations it applies and checks readiness against are read from prisma/migrations,
  // the newer release's: the older code ran ready on the newer schema, and nothing said so.
  const built = new Date('2026-12-01T10:00:00Z');

  it('names the newest source file changed since the build', () => {
    const { root, built: file } = checkout(built, {
      'server.ts': new Date('2026-11-30T10:00:00Z'),
      'modules/billing/receipts.service.ts': new Date('2026-12-05T09:00:00Z'),
      'modules/billing/receipts.routes.ts': new Date('2026-12-04T09:00:00Z'),
    });
    roots.push(root);
    expect(findSourceNewerThanBuild(file, path.join(root, 'src'))).toEqual({
      file: path.join('modules', 'billing', 'receipts.service.ts'),
      changedAt: new Date('2026-12-05T09:00:00Z'),
      builtAt: built,
    });
  });

  it('says nothing of a build newer than every source file, or without source beside it (the image)', () => {
    const { root, built: file } = checkout(built, { 'server.ts': new Date('2026-11-30T10:00:00Z') });
    roots.push(root);
    expect(findSourceNewerThanBuild(file, path.join(root, 'src'))).toBeUndefined();
    rmSync(path.join(root, 'src'), { recursive: true });
    expect(findSourceNewerThanBuild(file, path.join(root, 'src'))).toBeUndefined();
  });

  it('is not asked of the TypeScript source run through tsx', () => {
    const { root } = checkout(built, { 'server.ts': new Date('2026-12-05T09:00:00Z') });
    roots.push(root);
    expect(findSourceNewerThanBuild(path.join(root, 'src/server.ts'), path.join(root, 'src'))).toBeUndefined();
  });

  it('is not asked of the source run through tsx from a checkout inside a folder named dist', () => {
    // A dist/ above the project (a checkout under /srv/dist/, say) is not the build's dist/: the
    // running src/server.ts was compared with the source beside it, and an edit to any other file
    // warned of a stale build under `npm run dev`, where nothing compiled runs.
    const parent = mkdtempSync(path.join(os.tmpdir(), 'stale-build-parent-'));
    roots.push(parent);
    const root = path.join(parent, 'dist', 'hpc-billing');
    for (const [file, changedAt] of Object.entries({
      'server.ts': new Date('2026-11-30T10:00:00Z'),
      'app.ts': new Date('2026-12-05T09:00:00Z'),
    })) {
      const full = path.join(root, 'src', file);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, '');
      utimesSync(full, changedAt, changedAt);
    }
    expect(findSourceNewerThanBuild(path.join(root, 'src/server.ts'), path.join(root, 'src'))).toBeUndefined();
  });

  it('logs a warning that says to run npm run build', () => {
    const { root, built: file } = checkout(built, { 'app.ts': new Date('2026-12-05T09:00:00Z') });
    roots.push(root);
    const warnings: { fields: object; message: string }[] = [];
    warnIfBuildIsStale(
      { warn: (fields: object, message: string) => warnings.push({ fields, message }) },
      file,
      path.join(root, 'src'),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/^the compiled code in dist\/ is older than src\/app\.ts .*run npm run build/);
    expect(warnings[0]?.fields).toEqual({ builtAt: built.toISOString(), changedAt: '2026-12-05T09:00:00.000Z' });
  });
});
