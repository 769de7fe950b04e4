import { CONFIG_ERROR_EXIT_CODE, ConfigError, loadConfig } from '../config/config.js';
import { isEmbeddedDatabaseUrl } from '../db/embedded-postgres.js';
import { unsealedAppendConfigError } from '../modules/audit/audit.service.js';
import {
  isDatabaseUnavailable,
  isMissingColumn,
  isMissingTable,
  isRefusedByServer,
  postgresMessageOf,
  UnsealedAuditAppendError,
} from '../shared/errors.js';
import { DEMO_EXPORT_LINE_FOR, TOOL_COMMANDS } from '../shared/tool-commands.js';

/**
 * Runs a command-line tool's main. Whatever it throws ends the process with the message alone on
 * stderr: a ConfigError (its message lists every problem) exits 78 (EX_CONFIG), as the server
 * does, so a script or an orchestrator tells a bad setting from a failed run; the tool's own
 * errors exit with what `exitCodeOf` says for them, anything else 1.
 */
export function runTool(
  main: () => Promise<void>,
  exitCodeOf: (error: unknown) => number | undefined = () => undefined,
) {
  main().catch((thrown: unknown) => {
    const error = asToolError(thrown);
    console.error(describeToolError(error, configuredDatabaseUrl()));
    process.exit(error instanceof ConfigError ? CONFIG_ERROR_EXIT_CODE : (exitCodeOf(error) ?? 1));
  });
}

/**
 * An error in the words a tool reports it with. An audit entry refused at its append, the log sealed
 * by another instance after the tool's check at its start (refuseUnsealedAppend), is that check's
 * ConfigError (exit 78): the same setting is missing. It exited 1, like a failed run, with the
 * server's words ("restart this one"). `outcome` says what became of the work, when it is not that
 * nothing was changed (the entry written after it).
 */
export function asToolError(error: unknown, outcome?: string): unknown {
  return error instanceof UnsealedAuditAppendError ? unsealedAppendConfigError(error.newestEntryId, outcome) : error;
}

/**
 * The problem a tool reports when it needs DATABASE_URL and has none, saying where the demo's is:
 * the embedded PostgreSQL's port can change from one start to the next, and only `npm start`'s banner prints it.
 */
export function missingDatabaseUrl(need: string): ConfigError {
  return new ConfigError([
    `DATABASE_URL: is required ${need}; for the demo that npm start runs, paste the export line its start-up banner prints '${DEMO_EXPORT_LINE_FOR}' (the embedded PostgreSQL's port can change from one start to the next)`,
  ]);
}

/** A command line the tool cannot take (EX_USAGE), as `npm run ingest` exits for a bad option. */
export const USAGE_EXIT_CODE = 64;

/**
 * For a tool that takes no arguments: any stops it before it does anything, saying what it does
 * instead. An ignored `--from 1200` ran the whole tool and exited 0, which a script took for what
 * it had asked.
 */
export function refuseArguments(command: string, whatItDoes: string, args = process.argv.slice(2)): void {
  if (args.length === 0) return;
  // Asked for help, as an operator does first, it is no usage error: it said "takes no arguments
  // (got '--help')" and exited 64, so `db:migrate -- --help && ...` stopped a script.
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(`Usage: ${command}\n  Takes no arguments: ${whatItDoes}`);
    process.exit(0);
  }
  console.error(`${command} takes no arguments (got '${args.join(' ')}'): ${whatItDoes}`);
  process.exit(USAGE_EXIT_CODE);
}

/**
 * What a failed tool prints: the error's own words. Prisma puts its call site before them
 * ("Invalid `db.user.findUnique()` invocation in", the source file and a numbered code frame),
 * which tells the person running the tool nothing; a database that cannot be reached is said to
 * be one, so that a wrong DATABASE_URL or a stopped server is not mistaken for a bug.
 */
export function describeToolError(error: unknown, databaseUrl?: string): string {
  if (!(error instanceof Error)) return String(error);
  const message = withoutPrismaCallSite(error.message);
  if (isDatabaseUnavailable(error)) {
    // The demo's URL, pasted from the banner of a start before the last, names a port nothing listens on now.
    const demoHint =
      databaseUrl !== undefined && isEmbeddedDatabaseUrl(databaseUrl)
        ? `; this is the URL of the demo's embedded PostgreSQL, whose port can change from one start of the app to the next: while it runs, paste the export line its start-up banner prints '${DEMO_EXPORT_LINE_FOR}' again`
        : '';
    const cause = postgresMessageOf(error) ?? message;
    return isRefusedByServer(error)
      ? `The database server refused DATABASE_URL: ${cause}${demoHint}`
      : `The database cannot be reached (DATABASE_URL): ${cause}${demoHint}`;
  }
  // A new DATABASE_URL before `npm run db:migrate` (db:seed first, say) said only that a table does not
  // exist, which read like a bug rather than a step left out.
  if (isMissingTable(error)) {
    return `${message}\nThe database is missing tables this version needs: apply its migrations with ${TOOL_COMMANDS.migrate} first (${TOOL_COMMANDS.start} applies them itself).`;
  }
  // An older dump restored, an upgrade nobody migrated: the tables are there, this release's columns
  // are not, and PostgreSQL's "column … does not exist" alone read like a bug too.
  return isMissingColumn(error)
    ? `${message}\nThe database is behind this version (migrations not applied): apply them with ${TOOL_COMMANDS.migrate} first (${TOOL_COMMANDS.start} applies them itself).`
    : message;
}

/** The tool's DATABASE_URL, read as the tool read it; none when the configuration itself failed. */
function configuredDatabaseUrl(): string | undefined {
  try {
    return loadConfig().databaseUrl;
  } catch {
    return undefined;
  }
}

const PRISMA_CALL_SITE = /^Invalid `[^`]*` invocation/;
// The call site's source file ("/app/src/x.ts:36:18") and its code frame ("  35 …", "→ 36 …").
const CALL_SITE_DETAIL = /^(\S+:\d+:\d+|→?\s*\d+(\s.*)?)$/;

function withoutPrismaCallSite(message: string): string {
  const lines = message.split('\n');
  const header = lines.findIndex((line) => PRISMA_CALL_SITE.test(line.trim()));
  if (header === -1) return message.trim();
  let start = header + 1;
  while (start < lines.length && (lines[start]?.trim() === '' || CALL_SITE_DETAIL.test(lines[start]?.trim() ?? ''))) {
    start += 1;
  }
  const rest = lines.slice(start).join('\n').trim();
  return rest === '' ? message.trim() : rest;
}
