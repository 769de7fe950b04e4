import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The nearest folder at or above `start` that holds package.json. The same code runs
 * from src/ (tsx) and from dist/src/ (the build), so fixed `../..` hops would point
 * into dist/ once built.
 */
export function findProjectRoot(start: string): string {
  let directory = start;
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`no package.json at or above ${start}`);
    directory = parent;
  }
  return directory;
}

/** Where package.json, views/, public/ and prisma/ live, in a checkout and in the built image alike. */
export const PROJECT_ROOT = findProjectRoot(import.meta.dirname);
