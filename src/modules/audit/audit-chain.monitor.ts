import type { Db } from '../../db/database.js';
import type { Logger } from '../../shared/logger.js';
import { createPeriodicTask, type PeriodicTask } from '../../shared/periodic-task.js';
import type { Metrics } from '../metrics/metrics.js';
import { type ChainCheckpoint, type ChainVerdict, verifyAuditChain } from './audit.service.js';

/** Verifies the audit log's chain for the admin's page and the periodic check alike. */
export interface AuditChainMonitor {
  /** Walks the whole chain; the newest entry an earlier call found intact must still be there. */
  verify(): Promise<ChainVerdict>;
  /** The verdict of this process's last verification (an admin's or the periodic check's), if any; reads nothing. */
  lastVerdict(): LastChainVerdict | undefined;
}

/** A verdict and when it was reached. */
export interface LastChainVerdict {
  verdict: ChainVerdict;
  verifiedAt: Date;
}

export interface AuditChainMonitorDeps {
  db: Db;
  /** Told every verdict (the audit_chain_ok gauge). */
  onVerdict?: (verdict: ChainVerdict) => void;
  /** Where a break is logged, whichever verification found it (the periodic one or an admin's). */
  logger?: Pick<Logger, 'error'>;
  now?: () => Date;
}

/**
 * One per process. It remembers the head of the last intact verification: the table's
 * trigger refuses deletes, so an entry that was there and is gone was removed behind the
 * application's back, which a chain that is merely shorter cannot show by itself.
 */
export function createAuditChainMonitor(deps: AuditChainMonitorDeps): AuditChainMonitor {
  let checkpoint: ChainCheckpoint | undefined;
  let last: LastChainVerdict | undefined;
  const now = deps.now ?? (() => new Date());
  return {
    lastVerdict: () => last,
    async verify() {
      const verdict = await verifyAuditChain(deps.db, checkpoint);
      // Never back: an admin's verification and the periodic one may overlap, and the one that read
      // fewer entries, finishing last, made the entries after its newest ones nobody would miss.
      if (verdict.isIntact && verdict.head && (checkpoint === undefined || verdict.head.id > checkpoint.id)) {
        checkpoint = verdict.head;
      }
      last = { verdict, verifiedAt: now() };
      deps.onVerdict?.(verdict);
      if (!verdict.isIntact) {
        // Here, not only in the periodic check: an admin's verification sets the gauge too, and
        // AuditChainBroken then fired with no line naming the entry until the next periodic check.
        deps.logger?.error(
          { brokenAt: String(verdict.brokenAt), reason: verdict.reason, entries: verdict.count },
          'the audit log hash chain is broken',
        );
      }
      return verdict;
    },
  };
}

/** Sets the audit chain gauges from each verdict. */
export function reportChainVerdictTo(metrics: Metrics): (verdict: ChainVerdict) => void {
  return (verdict) => {
    metrics.auditChainOk.set(verdict.isIntact ? 1 : 0);
    metrics.auditChainVerifiedAt.set(Date.now() / 1000);
  };
}

export interface AuditChainVerifierDeps {
  monitor: AuditChainMonitor;
  logger: Logger;
  intervalSec: number;
}

/**
 * Verifies the chain every AUDIT_VERIFY_INTERVAL_SEC, in one process per instance (as the
 * pruners), so a broken chain raises AuditChainBroken without anyone opening the page; the
 * first run is at start-up, so a restart does not silence the alert for a whole interval.
 */
export function createAuditChainVerifier(deps: AuditChainVerifierDeps): PeriodicTask {
  return createPeriodicTask(deps.intervalSec, async () => {
    try {
      const verdict = await deps.monitor.verify();
      // A break is logged by the monitor itself, whoever asked.
      if (verdict.isIntact) {
        // The newest entry as `npm run audit:verify -- --anchor` takes it: these lines, kept outside the
        // database, are what shows the newest entries deleted once no process remembers them.
        const anchor = verdict.head ? `${verdict.head.id}:${verdict.head.hash}` : undefined;
        deps.logger.info(
          { entries: verdict.count, isSealed: verdict.isSealed, anchor },
          'the audit log hash chain is intact',
        );
      }
    } catch (error) {
      // The next interval tries again; the gauge keeps the last verdict meanwhile.
      deps.logger.warn({ err: error }, 'could not verify the audit log hash chain');
    }
  });
}
