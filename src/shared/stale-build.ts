import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface StaleBuild {
  /** The newest source file changed since the build, relative to the source folder. */
  file: string;
  changedAt: Date;
  builtAt: Date;
}

/** The newest .ts file under `directory` (relative to `root`) with its change time. */
function newestSource(root: string, directory = root): { file: string; changedAt: Date } | undefined {
  let newest: { file: string; changedAt: Date } | undefined;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    const candidate = entry.isDirectory()
      ? newestSource(root, full)
      : entry.name.endsWith('.ts')
        ? { file: path.relative(root, full), changedAt: statSync(full).mtime }
        : undefined;
    if (candidate && (!newest || candidate.changedAt > newest.changedAt)) newest = candidate;
  }
  return newest;
}

/**
 * Whether the compiled file running (`builtFile`, under dist/) is older than the TypeScript source
 * beside it in a checkout: `git pull` without `npm run build`. Undefined for the source itself (tsx),
 * for an image, which ships no src/, and when the files cannot be read.
 */
export function findSourceNewerThanBuild(builtFile: string, sourceDirectory: string): StaleBuild | undefined {
  // The project's own dist/, beside src/: a folder named dist above the checkout is not the build.
  const relative = path.relative(path.join(path.dirname(sourceDirectory), 'dist'), builtFile);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  try {
    const builtAt = statSync(builtFile).mtime;
    const newest = newestSource(sourceDirectory);
    return newest && newest.changedAt > builtAt ? { ...newest, builtAt } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Warns when the compiled code is older than the source beside it. The migrations it applies, and
 * checks readiness against, are read from prisma/migrations, which a pull updates: older code then
 * migrates the database to the newer release and runs on it ready, with nothing to say so.
 */
export function warnIfBuildIsStale(
  logger: { warn(fields: object, message: string): void },
  builtFile: string,
  sourceDirectory: string,
) {
  const stale = findSourceNewerThanBuild(builtFile, sourceDirectory);
  if (!stale) return;
  logger.warn(
    { builtAt: stale.builtAt.toISOString(), changedAt: stale.changedAt.toISOString() },
    `the compiled code in dist/ is older than src/${stale.file.split(path.sep).join('/')} beside it: this runs the ` +
      'code of the last build, with the migrations of prisma/migrations as they are now; run npm run build, then ' +
      'this command again (docs/operations.md, "Upgrading")',
  );
}
