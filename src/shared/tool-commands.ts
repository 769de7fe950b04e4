import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './paths.js';

/** How this copy of the app runs: its TypeScript source (tsx), a build in a checkout, or the image. */
export type Runs = 'source' | 'checkout' | 'image';

/** Whether `moduleFile` runs from source (tsx), from a build beside its src/, or from the image (no src/). */
export function howItRuns(moduleFile: string, projectRoot: string): Runs {
  if (moduleFile.endsWith('.ts')) return 'source';
  return existsSync(path.join(projectRoot, 'src')) ? 'checkout' : 'image';
}

export const RUNS = howItRuns(import.meta.filename, PROJECT_ROOT);

/** The compiled file (and command) behind each npm script of a tool. */
const COMPILED = {
  'db:migrate': 'migrate.cli.js',
  'user:create': 'user.cli.js create',
  'user:passwd': 'user.cli.js passwd',
  'user:disable': 'user.cli.js disable',
  'user:unlock': 'user.cli.js unlock',
  ingest: 'ingest.cli.js',
  'audit:verify': 'audit-verify.cli.js',
} as const;

export type Tool = keyof typeof COMPILED;

/**
 * The command line an error message or warning tells the operator to run, for the way this code
 * runs: `npm run db:migrate` from the source, the `:prod` script from a build in a checkout, the
 * compiled tool itself in the image, which has neither tsx nor scripts/ nor src/, so that
 * `npm run db:migrate` there fails with Node's ERR_MODULE_NOT_FOUND and a stack. Every message
 * named the tsx script, whichever.
 */
export function toolCommand(tool: Tool, args = '', runs: Runs = RUNS): string {
  if (runs === 'image') return `node dist/src/cli/${COMPILED[tool]}${args ? ` ${args}` : ''}`;
  const script = runs === 'checkout' ? `npm run ${tool}:prod` : `npm run ${tool}`;
  return args ? `${script} -- ${args}` : script;
}

/** What starts the app (which applies the migrations too), as this copy runs. */
export function startCommand(runs: Runs = RUNS): string {
  return runs === 'source' ? 'npm start' : runs === 'checkout' ? 'npm run start:prod' : 'node dist/src/server.js';
}

export const TOOL_COMMANDS = { migrate: toolCommand('db:migrate'), start: startCommand() };

/**
 * What the demo's start-up banner says its export line (DATABASE_URL, DATA_DIR) is for, and what the
 * tools quote when they need it: every tool that takes DATABASE_URL. It named ingest and user:* only,
 * and README's audit:verify and db:* users took the line for not theirs.
 */
export const DEMO_EXPORT_LINE_FOR = 'for npm run ingest / user:* / audit:verify / db:* in another shell';
