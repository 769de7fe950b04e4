import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import {
  type ChainCheckpoint,
  type ChainVerdict,
  chainAnchorOf,
  configureAuditChain,
  describeChainSeal,
  intactBeforeOf,
  verifyAuditChain,
} from '../modules/audit/audit.service.js';
import { createToolLogger } from '../shared/logger.js';
import { toolCommand } from '../shared/tool-commands.js';
import { missingDatabaseUrl, runTool, USAGE_EXIT_CODE } from './run-tool.js';
import { openToolDatabase } from './tool-database.js';

/** The exit code of a chain that failed verification: apart from 1, a run that could not verify. */
const AUDIT_CHAIN_BROKEN_EXIT_CODE = 2;

const WHAT_IT_DOES =
  'it verifies the whole audit log in DATABASE_URL with AUDIT_CHAIN_KEY, AUDIT_CHAIN_OLD_KEYS and AUDIT_CHAIN_UNSEALED_UNTIL from the environment; ' +
  '--anchor ID:HASH (the newest entry an earlier run printed) also checks that this entry is still there as it was.';

/** An entry's id (digits, no leading zero) and its hash, as the tool prints the newest entry. */
const ANCHOR = /^([1-9]\d{0,18}):([0-9a-fA-F]{64})$/;

/** A usage error (exit 64): the message and what the tool does, nothing verified. */
function refuseUsage(message: string): never {
  console.error(`${toolCommand('audit:verify')} ${message}: ${WHAT_IT_DOES}`);
  process.exit(USAGE_EXIT_CODE);
}

/**
 * The command line: nothing, or `--anchor ID:HASH`. Anything else stops the tool before it reads
 * the log: an ignored `--from 1200` verified the whole chain and exited 0, which a script took for
 * the check it meant to run.
 */
function parseAnchor(args: string[]): ChainCheckpoint | undefined {
  if (args.length === 0) return undefined;
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(
      `Usage: ${toolCommand('audit:verify', '[--anchor ID:HASH]')}\n  Takes no other arguments: ${WHAT_IT_DOES}`,
    );
    process.exit(0);
  }
  let anchor: string | undefined;
  let anchors: (string | undefined)[] = [];
  try {
    const { values, tokens } = parseArgs({ args, options: { anchor: { type: 'string' } }, strict: true, tokens: true });
    anchor = values.anchor;
    anchors = tokens.flatMap((token) => (token.kind === 'option' ? [token.value] : []));
  } catch {
    refuseUsage(`takes no arguments but --anchor ID:HASH (got '${args.join(' ')}')`);
  }
  // parseArgs keeps the last of a repeated option: the anchors before it went unchecked, and a
  // rewritten one given first was answered "OK" (exit 0) on the strength of the second.
  if (anchors.length > 1) {
    refuseUsage(
      `--anchor: given ${anchors.length} times (${anchors.join(', ')}); give it once, and run the tool once for each anchor to check`,
    );
  }
  const match = ANCHOR.exec(anchor ?? '');
  if (!match?.[1] || !match[2]) {
    refuseUsage(
      `--anchor must be an entry's id and hash as the tool printed them (ID:HASH, 64 hex digits), got '${anchor}'`,
    );
  }
  return { id: BigInt(match[1]), hash: match[2].toLowerCase(), source: 'anchor' };
}

/**
 * What an intact chain cannot show, and the newest entry to keep outside the database so that a later
 * run can (`--anchor`): deleting the newest entries leaves a shorter chain whose every hash is right.
 */
function describeAnchor(verdict: Extract<ChainVerdict, { isIntact: true }>): string {
  const anchor = chainAnchorOf(verdict);
  if (!anchor) return '';
  return (
    `\nThe newest entry is #${anchor.id}, hash ${anchor.hash}. Deleting the newest entries leaves a chain that still verifies: ` +
    `keep this line outside the database, and check a later log against it with ${anchor.command}`
  );
}

/** The verdict in the words of /admin/audit/verify, and of an intact chain the anchor to keep. */
function describeVerdict(verdict: ChainVerdict): string {
  if (verdict.isIntact) {
    const seal = describeChainSeal(verdict);
    const sealed = seal === undefined ? '' : ` ${seal}`;
    if (verdict.count === 0) return 'OK: the audit log has no entries yet, so there is nothing to verify.';
    if (verdict.count === 1) return `OK: the one entry of the audit log is intact.${sealed}${describeAnchor(verdict)}`;
    return `OK: all ${verdict.count} entries of the audit log are intact and chained.${sealed}${describeAnchor(verdict)}`;
  }
  const first = verdict.count <= 1 ? ', the first entry' : '';
  const intactBefore = intactBeforeOf(verdict);
  const intact = intactBefore === undefined ? '' : ` Entries before #${intactBefore} are intact.`;
  return (
    `The audit log's hash chain is broken at entry #${verdict.brokenAt}${first}: ${verdict.reason}.${intact} ` +
    'Keep a copy of the database as it is and investigate who changed it (docs/operations.md, AuditChainBroken).'
  );
}

/**
 * `npm run audit:verify`: walks the audit log's hash chain in DATABASE_URL, as /admin/audit/verify
 * does, for an operator who is no admin of the app or whose app does not start. Exit 0 intact,
 * 2 broken, 1 when it could not verify (78 for a configuration error, 64 for an argument but
 * `--anchor ID:HASH`).
 */
async function main() {
  const anchor = parseAnchor(process.argv.slice(2));
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw missingDatabaseUrl('to verify the audit log');
  const logger = createToolLogger(config.logLevel);
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: 1, logger });
  try {
    const verdict = await verifyAuditChain(db.prisma, anchor);
    console.log(describeVerdict(verdict));
    if (!verdict.isIntact) process.exitCode = AUDIT_CHAIN_BROKEN_EXIT_CODE;
  } finally {
    await db.close();
  }
}

runTool(main);
