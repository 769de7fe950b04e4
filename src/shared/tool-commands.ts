import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './paths.js';

export interface ToolCommands {
  /** What applies the migrations, as this copy of the app is run. */
  migrate: string;
  /** What starts the app (which applies them too). */
  start: string;
}

/**
 * The commands an error message tells the operator to run, for the way this code runs: the
 * TypeScript source through tsx (`npm run db:migrate`), a build in a checkout (the `:prod` scripts),
 * or the image, which has neither tsx nor scripts/ nor src/, so that `npm run db:migrate` there fails
 * with Node's ERR_MODULE_NOT_FOUND and a stack. Every message said `npm run db:migrate`, whichever.
 */
export function toolCommandsFor(moduleFile: string, projectRoot: string): ToolCommands {
  if (moduleFile.endsWith('.ts')) return { migrate: 'npm run db:migrate', start: 'npm start' };
  return existsSync(path.join(projectRoot, 'src'))
    ? { migrate: 'npm run db:migrate:prod', start: 'npm run start:prod' }
    : { migrate: 'node dist/src/cli/migrate.cli.js', start: 'node dist/src/server.js' };
}

export const TOOL_COMMANDS = toolCommandsFor(import.meta.filename, PROJECT_ROOT);
