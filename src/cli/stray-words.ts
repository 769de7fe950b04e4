import { isRunByNpm } from '../config/npm-script.js';
import { RUNS, type Runs, type Tool, toolCommand } from '../shared/tool-commands.js';

/** What a tool's options look like, for the example the hint gives. */
const EXAMPLE_OPTIONS: Partial<Record<Tool, string>> = {
  ingest: '--from 2025-01-01 --to 2025-03-31',
  'user:create': '--username NAME --role admin',
  'user:passwd': '--username NAME',
  'user:disable': '--username NAME',
  'user:unlock': '--username NAME',
};

/**
 * A command-line mistake as node:util's parseArgs words it, with the fix for the one a newcomer
 * makes most: `npm run user:create --username ops --role admin`, without the `--` after the script's
 * name. npm takes `--username` and `--role` for settings of its own and hands the tool only the
 * words after them, so the tool said `Unexpected argument 'ops'. This command does not take
 * positional arguments`, which named neither the cause nor the fix. The hint is for a stray word
 * given through npm (no `--` reached the tool: npm removes the one it is given); a tool run as
 * `node dist/src/cli/…` (the image has no npm) gets its words as typed, and a word after a `--` that
 * did reach the tool is another mistake.
 */
export function describeArgsError(
  error: unknown,
  tool: Tool,
  args: string[],
  { runs = RUNS, isNpmScript = isRunByNpm() }: { runs?: Runs; isNpmScript?: boolean } = {},
): string {
  const message = error instanceof Error ? error.message : String(error);
  const isStrayWord = (error as { code?: unknown } | null)?.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL';
  if (!isStrayWord || !isNpmScript || runs === 'image' || args.includes('--')) return message;
  const example = toolCommand(tool, EXAMPLE_OPTIONS[tool] ?? '--help', runs);
  return `${message}\nWas it run without "--" after the script's name? npm keeps the options before "--" for itself and passes on only the words after them: ${example}`;
}
