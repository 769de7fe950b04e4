import { Router } from 'express';
import type { Db } from '../../db/database.js';
import type { CsvExports } from '../../http/csv-exports.js';
import { prefersJson } from '../../http/error-handler.js';
import { fieldLabelsOf } from '../../http/field-labels.js';
import { moneyJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import {
  answerHeadWithoutWork,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { invalidFieldsOf, ReversedWindowError, readableMessageOf } from '../../shared/errors.js';
import { endOfLocalDay, formatLocalDateTime, startOfLocalDay } from '../../shared/local-date.js';
import type { Guards } from '../auth/auth.guards.js';
import type { AuditFilter, StoredAuditEntry } from './audit.repository.js';
import { type TAuditCsvQuery, type TAuditQuery, ZAuditCsvQuery, ZAuditQuery } from './audit.schema.js';
import {
  AUDIT_CSV_COLUMNS,
  describeAuditAmounts,
  describeChainSeal,
  findAuditAmounts,
  findAuditPage,
  hasChainKey,
  listDistinctActions,
  splitAuditActor,
  splitAuditDetails,
  streamAuditCsv,
  tierNameSpans,
} from './audit.service.js';
import type { AuditChainMonitor } from './audit-chain.monitor.js';
import { targetsMatching } from './audit-target.js';

const PAGE_SIZE = 50;

/**
 * The CSV of the entries a page lists: its filters, not its "older entries" cursor. Without a
 * filter it is the whole log; refused filters (undefined) get none, since the export refuses them too.
 */
function csvLinkOf(
  query: { actor?: string; action?: string; target?: string; from?: string; to?: string } | undefined,
) {
  if (!query) return undefined;
  const { actor, action, target, from, to } = query;
  return linkTo('/admin/audit.csv', { actor, action, target, from, to }, {});
}

/** The page's filters, in the order of its form and its links. */
const FILTER_NAMES = ['actor', 'action', 'target', 'from', 'to'] as const;

/**
 * An entry as /admin/audit's JSON writes it: the columns of the page, the details as recorded (the
 * hash chain covers them) and the amounts they keep in minor units as money at the currency's
 * scale. The id is text: a bigint, and the "older entries" cursor.
 */
function auditEntryJson(entry: StoredAuditEntry) {
  return {
    id: String(entry.id),
    ts: entry.ts.toISOString(),
    actor: entry.actor,
    action: entry.action,
    target: entry.target ?? null,
    status: entry.status,
    ip: entry.ip ?? null,
    details: entry.details ?? null,
    amounts: findAuditAmounts(entry.details).map((found) => ({
      field: found.field,
      minor: found.minor,
      amount: moneyJson(found.amount, found.currency),
      currency: found.currency,
    })),
  };
}

export interface AuditRoutesDeps {
  db: Db;
  guards: Guards;
  csvExports: CsvExports;
  timeZone: string;
  /** Verifies the chain (and reports the verdict to the metrics). */
  chainMonitor: AuditChainMonitor;
}

/** The admin's view of the audit log: a filtered page, a CSV of everything, and a chain check. */
export function auditRoutes(deps: AuditRoutesDeps): Router {
  const { db, guards, timeZone } = deps;
  const router = Router();

  const filterOf = async (query: TAuditCsvQuery): Promise<AuditFilter> => ({
    actor: query.actor,
    action: query.action,
    targets: query.target ? targetsMatching(query.target) : undefined,
    targetSpans: query.target ? await tierNameSpans(db, query.target) : undefined,
    from: query.from ? startOfLocalDay(query.from, timeZone) : undefined,
    to: query.to ? endOfLocalDay(query.to, timeZone) : undefined,
  });
  const checkWindow = <Q extends TAuditCsvQuery>(query: Q): Q => {
    if (query.from && query.to && query.from > query.to) {
      throw new ReversedWindowError(query.from, query.to, {
        fields: ['from', 'to'],
        labels: fieldLabelsOf(ZAuditQuery),
      });
    }
    return query;
  };
  /** The page's query: its filters and its "older entries" cursor. */
  const parseQuery = (input: unknown): TAuditQuery => checkWindow(parseInput(ZAuditQuery, input));
  /** The CSV's: the filters alone (ZAuditCsvQuery). */
  const parseCsvQuery = (input: unknown): TAuditCsvQuery => checkWindow(parseInput(ZAuditCsvQuery, input));

  router.get('/admin/audit', guards.requireAdmin, async (req, res) => {
    let query: TAuditQuery;
    try {
      query = parseQuery(req.query);
    } catch (error) {
      // A bad filter comes back as the page with the message and what was typed, not as an error page.
      if (!isRefusedForm(req, error, [400])) throw error;
      const typed = (name: string) => typedIn(req.query, name);
      res.status(400).render('audit/audit-log', {
        title: 'Audit log',
        entries: [],
        query: Object.fromEntries(FILTER_NAMES.map((name) => [name, typed(name)])),
        actions: await listDistinctActions(db),
        nextPageUrl: undefined,
        newestPageUrl: undefined,
        olderThan: undefined,
        csvLink: csvLinkOf(undefined),
        earlierTargets: [],
        timeZone,
        error: readableMessageOf(error),
        invalidFields: invalidFieldsOf(error),
      });
      return;
    }
    const filter = await filterOf(query);
    const entries = await findAuditPage(db, filter, PAGE_SIZE + 1, query.before);
    // Said on the page: entries under other targets than the one typed would otherwise puzzle.
    const earlierTargets = (filter.targetSpans ?? []).map((span) => ({
      target: span.target,
      fromId: span.fromId === undefined ? null : String(span.fromId),
      upToId: span.upToId === undefined ? null : String(span.upToId),
    }));
    const hasMore = entries.length > PAGE_SIZE;
    const shown = entries.slice(0, PAGE_SIZE);
    const nextQuery = new URLSearchParams({
      ...Object.fromEntries(FILTER_NAMES.flatMap((name) => (query[name] ? [[name, query[name]]] : []))),
      ...(hasMore ? { before: String(shown[shown.length - 1]?.id) } : {}),
    });
    const nextPageUrl = hasMore ? `/admin/audit?${nextQuery}` : undefined;
    // An older page (the last one, or one past it) leads back to the newest entries under the same
    // filters: the Filter button was its only way there, and past the oldest it said "No entries match".
    const newestPageUrl = query.before
      ? linkTo('/admin/audit', Object.fromEntries(FILTER_NAMES.map((name) => [name, query[name]])), {})
      : undefined;
    if (prefersJson(req)) {
      res.json({
        filters: Object.fromEntries(FILTER_NAMES.flatMap((name) => (query[name] ? [[name, query[name]]] : []))),
        timeZone,
        actions: await listDistinctActions(db),
        entries: shown.map(auditEntryJson),
        earlierTargets,
        nextPageUrl: nextPageUrl ?? null,
        newestPageUrl: newestPageUrl ?? null,
        csvUrl: csvLinkOf(query),
      });
      return;
    }
    res.render('audit/audit-log', {
      title: 'Audit log',
      entries: shown.map((entry) => ({
        ...entry,
        when: formatLocalDateTime(entry.ts, timeZone),
        actorParts: splitAuditActor(entry.actor),
        detailsParts: splitAuditDetails(entry.details),
        // An IPv6 address, 39 characters on one line, left the details a third of the table.
        ipParts: entry.ip ? entry.ip.split(/(?<=:)/) : [],
        detailsAmounts: describeAuditAmounts(entry.details),
      })),
      query,
      actions: await listDistinctActions(db),
      nextPageUrl,
      newestPageUrl,
      olderThan: query.before === undefined ? undefined : String(query.before),
      csvLink: csvLinkOf(query),
      earlierTargets,
      timeZone,
      error: undefined,
      invalidFields: [],
    });
  });

  router.get('/admin/audit.csv', guards.requireAdmin, async (req, res) => {
    // Refused, back to the log filtered as typed, which says the same beside the filters to correct.
    const typed = Object.fromEntries(FILTER_NAMES.map((name) => [name, typedIn(req.query, name)]));
    offerWayBack(res, { href: linkTo('/admin/audit', typed, {}), text: 'Back to the audit log' });
    const filter = await filterOf(parseCsvQuery(req.query));
    await deps.csvExports.send(req, res, {
      kind: 'audit',
      username: sessionUserOf(req).username,
      filename: 'audit-log.csv',
      columns: AUDIT_CSV_COLUMNS,
      open: async () => streamAuditCsv(db, filter),
    });
  });

  router.get('/admin/audit/verify', guards.requireAdmin, async (req, res) => {
    const isJson = req.accepts(['html', 'json']) === 'json';
    // A HEAD (a link checker, `curl -I`) is answered with the type its GET would have and reads no
    // entry: it walked the whole chain, as a CSV export's HEAD ran the export, to send nothing.
    // Only a GET gives the verdict, and its 409.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, isJson);
      return;
    }
    const verdict = await deps.chainMonitor.verify();
    // The seal in the words of `npm run audit:verify` (null for an empty log).
    const body = verdict.isIntact
      ? {
          status: 'ok',
          entries: verdict.count,
          isSealed: verdict.isSealed,
          isSealedWithOldKey: verdict.isSealedWithOldKey,
          seal: describeChainSeal(verdict) ?? null,
        }
      : { status: 'broken', entries: verdict.count, brokenAt: String(verdict.brokenAt), reason: verdict.reason };
    if (isJson) {
      res.status(verdict.isIntact ? 200 : 409).json(body);
      return;
    }
    res.status(verdict.isIntact ? 200 : 409).render('audit/audit-verify', {
      title: 'Audit chain',
      verdict: body,
      // Only an unkeyed log is a risk to warn of; entries before a first key are sealed by the next one.
      isUnkeyed: !hasChainKey(),
    });
  });

  return router;
}
