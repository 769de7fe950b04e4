import { parseArgs } from 'node:util';
import { z } from 'zod';
import { EARLIEST_LOCAL_DATE, isCalendarDate, LATEST_LOCAL_DATE } from '../shared/local-date.js';
import { RUNS, toolCommand } from '../shared/tool-commands.js';
import { describeArgsError } from './stray-words.js';

// Named as this copy runs it (the :prod script compiled, node dist/src/cli/ingest.cli.js in the image).
export const INGEST_USAGE = `Usage: ${RUNS === 'image' ? toolCommand('ingest', '[--force]') : `${toolCommand('ingest')} [-- --force]`}
  One incremental run, as the server's scheduler does (for cron with INGEST_ENABLED=false):
  reads from where the last run ended (less INGEST_OVERLAP_SEC) up to now.
Usage: ${toolCommand('ingest', '--from 2025-01-01 --to 2025-03-31 [--force]')}
  The backfill: reads Slurm accounting day by day (days in APP_TZ, both ends included) into the
  database. Days a previous backfill already finished are skipped unless --force is given; stopping
  (Ctrl-C) finishes the current day first, so the command can simply be run again.`;

export interface IngestArgs {
  from: string;
  to: string;
  force: boolean;
}

export type TParsedIngestArgs =
  | { kind: 'run'; args: IngestArgs }
  | { kind: 'incremental'; force: boolean }
  | { kind: 'help' }
  | { kind: 'usage-error'; message: string };

export { isCalendarDate };

const ZDate = z
  .string({ error: 'is required (YYYY-MM-DD)' })
  .refine(isCalendarDate, { error: (issue) => `${String(issue.input) || '""'} is not a calendar date (YYYY-MM-DD)` })
  // The range every page and form takes: 1800-01-01 would start a backfill of 82,000 days.
  .refine((text) => !isCalendarDate(text) || (text >= EARLIEST_LOCAL_DATE && text <= LATEST_LOCAL_DATE), {
    error: (issue) => `${String(issue.input)} is outside ${EARLIEST_LOCAL_DATE} to ${LATEST_LOCAL_DATE}`,
  });
const ZArgs = z
  .object({ from: ZDate, to: ZDate, force: z.boolean().default(false) })
  // A date that is not one has its own message already.
  .refine((args) => !isCalendarDate(args.from) || !isCalendarDate(args.to) || args.from <= args.to, {
    error: (issue) => {
      const args = issue.input as IngestArgs;
      return `--from ${args.from} is after --to ${args.to}`;
    },
  });

/**
 * The ingestion tool's command line (an incremental run, or a backfill with both dates), checked before anything is opened: every mistake is a usage
 * error (exit 64) that names the option, never a stack of Date or parseArgs internals.
 */
export function parseIngestArgs(argv: string[]): TParsedIngestArgs {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        // Collected, not last-one-wins: `--from 2026-01-01 ... --from 2026-02-01` read a month fewer unsaid.
        from: { type: 'string', multiple: true },
        to: { type: 'string', multiple: true },
        force: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    // parseArgs throws TypeErrors naming the option for unknown options, missing values and extra words.
    return {
      kind: 'usage-error',
      message: describeArgsError(error, 'ingest', argv, { knownOptions: ['from', 'to', 'force', 'help'] }),
    };
  }
  const repeated = (['from', 'to'] as const).flatMap((name) => {
    const given = values[name] as string[] | undefined;
    return given && given.length > 1
      ? [`--${name}: given ${given.length} times (${given.join(', ')}); give it once`]
      : [];
  });
  if (values.help) return { kind: 'help' };
  if (repeated.length > 0) return { kind: 'usage-error', message: repeated.join('\n') };
  values.from = (values.from as string[] | undefined)?.[0];
  values.to = (values.to as string[] | undefined)?.[0];
  // Neither date: cron's run (the docs' `npm run ingest` with INGEST_ENABLED=false), which reads
  // from the high-water mark as the scheduler does; one date alone is a half-typed backfill.
  if (values.from === undefined && values.to === undefined)
    return { kind: 'incremental', force: values.force === true };
  const parsed = ZArgs.safeParse(values);
  if (!parsed.success) {
    const message = parsed.error.issues
      .map((issue) => (issue.path.length > 0 ? `--${issue.path.join('.')}: ${issue.message}` : issue.message))
      .join('\n');
    return { kind: 'usage-error', message };
  }
  return { kind: 'run', args: parsed.data };
}
