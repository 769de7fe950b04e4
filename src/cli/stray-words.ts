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
  {
    runs = RUNS,
    isNpmScript = isRunByNpm(),
    knownOptions = [],
  }: { runs?: Runs; isNpmScript?: boolean; knownOptions?: string[] } = {},
): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    // `--usrname`, `--user`, `--form`: the option meant, when one is that close.
    const typed = /^Unknown option '-{1,2}([^'=]+)/.exec(message)?.[1];
    const meant = typed === undefined ? undefined : closestOption(typed, knownOptions);
    return meant ? `${message} (did you mean --${meant}?)` : message;
  }
  const isStrayWord = code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL';
  if (!isStrayWord || !isNpmScript || runs === 'image' || args.includes('--')) return message;
  const example = toolCommand(tool, EXAMPLE_OPTIONS[tool] ?? '--help', runs);
  return `${message}\nWas it run without "--" after the script's name? npm keeps the options before "--" for itself and passes on only the words after them: ${example}`;
}

/** The known option `typed` is a slip of: one it begins (`--user`), or one at most two edits away (`--usrname`). */
function closestOption(typed: string, knownOptions: string[]): string | undefined {
  const word = typed.toLowerCase();
  const begun = knownOptions.filter((option) => word.length >= 2 && option.startsWith(word));
  if (begun.length === 1) return begun[0];
  let best: { option: string; distance: number } | undefined;
  for (const option of knownOptions) {
    const distance = editDistance(word, option);
    if (distance <= 2 && distance < word.length && (!best || distance < best.distance)) best = { option, distance };
  }
  return best?.option;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
