import { type Response, Router } from 'express';
import type { Db } from '../../db/database.js';
import type { CsvExports } from '../../http/csv-exports.js';
import { getDownload } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { linkTo } from '../../http/page-links.js';
import {
  answeredHeadWithoutWork,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { type AppError, invalidFieldsOf, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { ZAuditCsvQuery, ZAuditQuery } from './audit.schema.js';
import {
  AUDIT_FILTER_NAMES,
  type AuditFilterName,
  type AuditLogPage,
  type AuditLogRow,
  auditCsvExport,
  auditLogPage,
  auditTimeIso,
  type ChainVerdict,
  chainAnchorOf,
  checkAuditLogQuery,
  describeChainSeal,
  hasChainKey,
  intactBeforeOf,
} from './audit.service.js';
import type { AuditChainMonitor } from './audit-chain.monitor.js';

/**
 * An entry as /admin/audit's JSON writes it: the columns of the page, the details as recorded (the
 * hash chain covers them) and the amounts they keep in minor units as money at the currency's
 * scale. The id is text: a bigint, and the "older entries" cursor.
 */
function auditEntryJson(entry: AuditLogRow) {
  return {
    id: String(entry.id),
    // null for a time no date can hold: changed by SQL (the verification names the entry).
    ts: auditTimeIso(entry.ts) ?? null,
    actor: entry.actor,
    action: entry.action,
    target: entry.target ?? null,
    status: entry.status,
    ip: entry.ip ?? null,
    details: entry.details ?? null,
    amounts: entry.amounts,
  };
}

export interface AuditRoutesDeps {
  db: Db;
  guards: Guards;
  csvExports: CsvExports;
  timeZone: string;
  /** The app's clock: a Logged from alone after today (in timeZone) is refused. */
  now: () => Date;
  /** Verifies the chain (and reports the verdict to the metrics). */
  chainMonitor: AuditChainMonitor;
}

/** The admin's view of the audit log: a filtered page, a CSV of everything, and a chain check. */
export function auditRoutes(deps: AuditRoutesDeps): Router {
  const { db, guards, timeZone } = deps;
  const router = Router();

  /** The filters as typed, for the form of a refused page and the way back from a refused CSV. */
  const typedFilters = (input: unknown) =>
    Object.fromEntries(AUDIT_FILTER_NAMES.map((name) => [name, typedIn(input, name)])) as Record<
      AuditFilterName,
      string | undefined
    >;
  /**
   * The break this process's last verification found (an admin's or the periodic one), for the log's
   * page to say above the entries: it said "Append-only and hash-chained" over a changed entry that
   * AuditChainBroken had already named. Undefined when the last verdict was intact, or there is none.
   */
  const lastBreak = () => {
    const last = deps.chainMonitor.lastVerdict();
    if (last === undefined || last.verdict.isIntact) return undefined;
    return { brokenAt: String(last.verdict.brokenAt), reason: last.verdict.reason, verifiedAt: last.verifiedAt };
  };
  const renderPage = (res: Response, page: AuditLogPage, error?: AppError) =>
    res.render('audit/audit-log', {
      title: 'Audit log',
      chainBreak: lastBreak(),
      entries: page.entries,
      query: page.query,
      actions: page.actions,
      nextPageUrl: page.nextPageUrl,
      newestPageUrl: page.newestPageUrl,
      olderThan: page.olderThan,
      csvLink: page.csvLink,
      earlierTargets: page.earlierTargets,
      actorMatch: page.actorMatch,
      // The page under other filters (the actors containing a whole one are offered so), from its newest entry.
      link: (changes: Record<string, unknown>) =>
        linkTo('/admin/audit', Object.fromEntries(AUDIT_FILTER_NAMES.map((name) => [name, page.query[name]])), changes),
      timeZone,
      error: error === undefined ? undefined : readableMessageOf(error),
      invalidFields: error === undefined ? [] : invalidFieldsOf(error),
    });

  router.get('/admin/audit', guards.requireAdmin, async (req, res) => {
    // A HEAD (a link checker, `curl -I`) gets the status and type of its GET without reading an entry
    // or rendering the page; refused (a bad filter or cursor, a From after To or alone after today:
    // 400), the page its GET shows.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () =>
      checkAuditLogQuery(parseInput(ZAuditQuery, req.query), timeZone, deps.now()),
    );
    if (isHeadAnswered) return;
    let page: AuditLogPage;
    try {
      // The query is its filters and its "older entries" cursor; the service refuses a From after To,
      // or alone after today.
      page = await auditLogPage(db, { query: parseInput(ZAuditQuery, req.query) }, timeZone, deps.now());
    } catch (error) {
      // A bad filter comes back as the page with the message and what was typed, not as an error page.
      if (!isRefusedForm(req, error, [400])) throw error;
      renderPage(
        res.status(400),
        await auditLogPage(db, { typed: typedFilters(req.query) }, timeZone, deps.now()),
        error,
      );
      return;
    }
    if (prefersJson(req)) {
      res.json({
        filters: page.filters,
        // The actors an Actor filter matched (null without one) and the others containing a whole one, as billing's matchedUsers.
        matchedActors: page.actorMatch?.usernames ?? null,
        alsoContaining: page.actorMatch?.alsoContaining ?? [],
        timeZone,
        actions: page.actions,
        entries: page.entries.map(auditEntryJson),
        earlierTargets: page.earlierTargets,
        nextPageUrl: page.nextPageUrl ?? null,
        newestPageUrl: page.newestPageUrl ?? null,
        csvUrl: page.csvLink,
      });
      return;
    }
    renderPage(res, page);
  });

  getDownload(
    router,
    '/admin/audit.csv',
    (address) => linkTo('/admin/audit', typedFilters(address.query), {}),
    guards.requireAdmin,
    async (req, res) => {
      // Refused, back to the log filtered as typed, which says the same beside the filters to correct.
      offerWayBack(res, { href: linkTo('/admin/audit', typedFilters(req.query), {}), text: 'Back to the audit log' });
      // The filters alone (not the page's cursor); a From after To (or alone after today) is refused before the export starts, a HEAD's too.
      const exported = auditCsvExport(db, parseInput(ZAuditCsvQuery, req.query), timeZone, deps.now());
      await deps.csvExports.send(req, res, {
        kind: 'audit',
        username: sessionUserOf(req).username,
        filename: 'audit-log.csv',
        ...exported,
      });
    },
  );

  /** A verdict as the page and its JSON say it; the seal in the words of `npm run audit:verify` (null for an empty log). */
  const verdictBodyOf = (verdict: ChainVerdict) => {
    if (verdict.isIntact) {
      return {
        status: 'ok',
        entries: verdict.count,
        isSealed: verdict.isSealed,
        isSealedWithOldKey: verdict.isSealedWithOldKey,
        seal: describeChainSeal(verdict) ?? null,
        // The newest entry as `npm run audit:verify -- --anchor` takes it (null for an empty log).
        anchor: chainAnchorOf(verdict)?.anchor ?? null,
      };
    }
    // The entries before it are intact (null: none is): brokenAt, or the entry before it named as replaced.
    const intactBefore = intactBeforeOf(verdict);
    return {
      status: 'broken',
      entries: verdict.count,
      brokenAt: String(verdict.brokenAt),
      reason: verdict.reason,
      intactBefore: intactBefore === undefined ? null : String(intactBefore),
    };
  };
  /** The page: a verdict just reached (no time), the last one (with its time), or none yet. */
  const renderVerdict = (res: Response, verdict: ChainVerdict | undefined, verifiedAt?: Date) =>
    res.render('audit/audit-verify', {
      title: 'Audit chain',
      verdict: verdict === undefined ? undefined : verdictBodyOf(verdict),
      anchorCommand: verdict?.isIntact ? chainAnchorOf(verdict)?.command : undefined,
      verifiedAt,
      // Only an unkeyed log is a risk to warn of; entries before a first key are sealed by the next one.
      isUnkeyed: !hasChainKey(),
    });

  // The walk reads every entry: a GET, which a cross-site link an admin clicks or a browser's prefetch
  // sends, set it off. A GET shows the last verdict of this process and the button; the POST walks.
  router.get('/admin/audit/verify', guards.requireAdmin, (req, res) => {
    const last = deps.chainMonitor.lastVerdict();
    if (prefersJson(req)) {
      res.json(
        last === undefined
          ? { status: 'unverified' }
          : { ...verdictBodyOf(last.verdict), verifiedAt: last.verifiedAt.toISOString() },
      );
      return;
    }
    renderVerdict(res, last?.verdict, last?.verifiedAt);
  });

  router.post('/admin/audit/verify', guards.requireAdmin, async (req, res) => {
    const verdict = await deps.chainMonitor.verify();
    const status = verdict.isIntact ? 200 : 409;
    if (prefersJson(req)) {
      res.status(status).json(verdictBodyOf(verdict));
      return;
    }
    renderVerdict(res.status(status), verdict);
  });

  return router;
}
