import { Router } from 'express';
import type { Database } from '../../db/database.js';
import { auditContextOf } from '../../http/audit-context.js';
import { prefersJson } from '../../http/error-handler.js';
import { answerChange, answerHeadWithoutWork, answerRefused } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { counted, formatCount } from '../../shared/counted.js';
import { formatLocalDateTime } from '../../shared/local-date.js';
import type { Guards } from '../auth/auth.guards.js';
import type { RunRecord } from './ingestion.repository.js';
import { ZRunNow } from './ingestion.schema.js';
import { getIngestionOverview, type IngestionService } from './ingestion.service.js';

export interface IngestionRoutesDeps {
  db: Database;
  guards: Guards;
  service: IngestionService;
  timeZone: string;
  /** SLURM_CLUSTER, the cluster this instance reads (unset: each source's host's). */
  cluster?: string;
  now: () => Date;
}

/** A run's cluster as the page names it: '' is an instance's without SLURM_CLUSTER, reading its host's. */
export function clusterText(cluster: string): string {
  return cluster === '' ? "its host's (SLURM_CLUSTER unset)" : cluster;
}

/** "5 min", "3 h 20 min", "2 d 4 h": how old the data is, for people. */
export function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/**
 * Before the first completed run (of this instance's cluster, named where runs of several are listed):
 * only what is known, whether jobs are stored or not.
 */
export function noCompletedRunText(
  storedJobs: { count: number; isEstimate: boolean },
  cluster?: string | null,
): string {
  const run = cluster ? `No ingestion run of cluster ${cluster}` : 'No ingestion run';
  if (storedJobs.count === 0) return `${run} has completed yet, and no jobs are stored.`;
  const jobs = `${storedJobs.isEstimate ? 'about ' : ''}${counted(storedJobs.count, 'job')}`;
  return `${run} has completed yet; ${jobs} ${storedJobs.count === 1 ? 'is' : 'are'} stored.`;
}

/**
 * The sources' notes as the page shows them: without the file's fingerprint, which only tells the
 * next run whether the file changed.
 */
function shownNotesOf(run: RunRecord): [string, string][] {
  return Object.entries(run.sourceNotes ?? {}).filter(([key]) => key !== 'fileFingerprint');
}

/**
 * The notes the page shows under a run's error: a source whose failure the error gives already
 * ("file: … cannot be read", noted as "failed: … cannot be read") is not said again after it.
 */
function notesBesideErrorOf(run: RunRecord): [string, string][] {
  const notes = shownNotesOf(run);
  if (!run.error) return notes;
  const error = run.error;
  return notes.filter(([key, value]) => {
    const reason = value.replace(/^(failed|configuration error): /, '');
    return !error.includes(`${key}: ${reason}`);
  });
}

/** A run of /admin/ingestion as JSON, named as Run now's answer names its run (`runId`, `window`). */
function runJson(run: RunRecord, ownCluster: string) {
  return {
    runId: run.id,
    trigger: run.trigger,
    // '' for an instance without SLURM_CLUSTER; a run recorded before runs had a cluster is this instance's.
    cluster: run.cluster ?? ownCluster,
    source: run.source,
    window: { start: run.windowStart.toISOString(), end: run.windowEnd.toISOString() },
    seen: run.seen,
    inserted: run.inserted,
    updated: run.updated,
    skipped: run.skipped,
    outcome: run.outcome,
    error: run.error,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    durationMs: run.durationMs,
    sourceNotes: Object.fromEntries(shownNotesOf(run)),
  };
}

/** /admin/ingestion: recent runs, data freshness, and "run now" (CSRF-checked globally, audited). */
export function ingestionRoutes(deps: IngestionRoutesDeps): Router {
  const { db, guards, timeZone } = deps;
  const router = Router();

  router.get('/admin/ingestion', guards.requireAdmin, async (req, res) => {
    // A HEAD (a link checker, `curl -I`): its GET's status and type, no run or job read.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    const overview = await getIngestionOverview(db, deps.now(), { cluster: deps.cluster });
    // A script gets the page's figures, as Run now and the other admin pages answer it.
    if (prefersJson(req)) {
      res.json({
        timeZone,
        // The figures below are this instance's cluster's; `runs` are every cluster's.
        cluster: overview.cluster,
        isRunning: overview.isRunning,
        dataThrough: overview.dataThrough?.toISOString() ?? null,
        freshnessSec: overview.freshnessSec,
        storedJobs: overview.storedJobs,
        runs: overview.runs.map((run) => runJson(run, overview.cluster)),
      });
      return;
    }
    const when = (date: Date | null) => (date ? formatLocalDateTime(date, timeZone) : '');
    // Instances sharing the database, one per cluster: each run's cluster is named, and whose the figures are.
    const ownCluster = overview.hasClusters ? clusterText(overview.cluster) : null;
    res.render('ingestion/admin-ingestion', {
      title: 'Ingestion',
      timeZone,
      isRunning: overview.isRunning,
      dataThrough: when(overview.dataThrough),
      freshness: overview.freshnessSec === null ? null : formatAge(overview.freshnessSec),
      noRunYet: overview.storedJobs && noCompletedRunText(overview.storedJobs, ownCluster),
      clusterText: ownCluster,
      runs: overview.runs.map((run) => ({
        ...run,
        clusterText: clusterText(run.cluster ?? overview.cluster),
        startedText: when(run.startedAt),
        // The demo's seed reads its whole file, from the epoch: 1970, shifted into the local zone, read as a date.
        windowStartText: run.windowStart.getTime() === 0 ? 'the start' : when(run.windowStart),
        windowEndText: when(run.windowEnd),
        // The error (in bold) gives each failed source's reason; the notes say the rest once.
        notesText: notesBesideErrorOf(run)
          .map(([key, value]) => `${key}: ${value}`)
          .join('; '),
      })),
    });
  });

  router.post('/admin/ingestion/run', guards.requireAdmin, async (req, res) => {
    parseInput(ZRunNow, req.body);
    // The service records the audit entry, a skipped run's too.
    const result = await deps.service.runNow(auditContextOf(req));
    const location = '/admin/ingestion';
    if (result.status === 'skipped') {
      const message = 'A run is already in progress; it was not started twice.';
      answerRefused(req, res, {
        status: 409,
        message,
        json: { status: result.status, reason: result.reason },
        flash: { type: 'warning', message },
        location,
      });
      return;
    }
    if (result.status === 'running') {
      // Still going at RUN_NOW_ANSWER_WITHIN_MS (a source hanging): answered now, before a reverse proxy
      // gives up on the request; the runs table shows it running, then how it ended. As month-end's
      // start answers: a 202 to a script, with where to read the run; a 303 to the page for a browser.
      const message = `Run #${result.runId} is still running; its outcome will be in the runs table when it ends.`;
      if (prefersJson(req)) {
        res.location(location);
        res.status(202).json({ ok: true, status: result.status, runId: result.runId, statusUrl: location, message });
        return;
      }
      answerChange(req, res, { json: {}, flash: { type: 'success', message }, location });
      return;
    }
    const { run } = result;
    if (run.outcome === 'failed') {
      // No source answered: a Slurm the app depends on failed, hence 502. The run was still made
      // and recorded, so `run` says how it ended, as the runs table does.
      const message = `The run failed: ${run.error ?? 'no source answered'}`;
      answerRefused(req, res, {
        status: 502,
        message,
        json: { status: result.status, run },
        flash: { type: 'error', message },
        location,
      });
      return;
    }
    answerChange(req, res, {
      json: { status: result.status, run },
      flash: {
        type: run.outcome === 'partial' ? 'warning' : 'success',
        message: `Run #${run.runId} via ${run.source}: ${counted(run.seen, 'job')}, ${formatCount(run.inserted)} new, ${formatCount(run.updated)} updated, ${formatCount(run.skipped)} skipped.`,
      },
      location,
    });
  });

  return router;
}
