import { loadConfig } from '../config/config.js';
import {
  type ChainVerdict,
  configureAuditChain,
  describeChainSeal,
  intactBeforeOf,
  verifyAuditChain,
} from '../modules/audit/audit.service.js';
import { createToolLogger } from '../shared/logger.js';
import { toolCommand } from '../shared/tool-commands.js';
import { missingDatabaseUrl, refuseArguments, runTool } from './run-tool.js';
import { openToolDatabase } from './tool-database.js';

/** The exit code of a chain that failed verification: apart from 1, a run that could not verify. */
const AUDIT_CHAIN_BROKEN_EXIT_CODE = 2;

/** The verdict in the words of /admin/audit/verify. */
function describeVerdict(verdict: ChainVerdict): string {
  if (verdict.isIntact) {
    const seal = describeChainSeal(verdict);
    const sealed = seal === undefined ? '' : ` ${seal}`;
    if (verdict.count === 0) return 'OK: the audit log has no entries yet, so there is nothing to verify.';
    if (verdict.count === 1) return `OK: the one entry of the audit log is intact.${sealed}`;
    return `OK: all ${verdict.count} entries of the audit log are intact and chained.${sealed}`;
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
 * 2 broken, 1 when it could not verify (78 for a configuration error, 64 for any argument).
 */
async function main() {
  refuseArguments(
    toolCommand('audit:verify'),
    'it verifies the whole audit log in DATABASE_URL with AUDIT_CHAIN_KEY, AUDIT_CHAIN_OLD_KEYS and AUDIT_CHAIN_UNSEALED_UNTIL from the environment.',
  );
  const config = loadConfig();
  configureAuditChain(config.audit);
  if (!config.databaseUrl) throw missingDatabaseUrl('to verify the audit log');
  const logger = createToolLogger(config.logLevel);
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: 1, logger });
  try {
    const verdict = await verifyAuditChain(db.prisma);
    console.log(describeVerdict(verdict));
    if (!verdict.isIntact) process.exitCode = AUDIT_CHAIN_BROKEN_EXIT_CODE;
  } finally {
    await db.close();
  }
}

runTool(main);
