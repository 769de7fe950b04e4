import { Prisma } from '@prisma/client';
import express from 'express';
import type { CsvExports } from '../../http/csv-exports.js';
import { getDownload } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { hoursJson, moneyJson, rateJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import {
  answeredHeadWithoutWork,
  type BackLink,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import { AppError, invalidFieldsOf, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { type TWindowQuery, ZOwnUsageExportQuery, ZUsageQuery, ZWindowQuery } from './usage.schema.js';
import { type MyUsageAsk, USAGE_CSV_COLUMNS, type UsageService, type UserUsagePage } from './usage.service.js';

/**
 * The address of a CSV export of what a refused page was asked for (`exported` resolves it,
 * parsing as the export does), or undefined when the export would refuse it too: a reversed
 * window or a date that is not one. A link without them would download the default window,
 * not the one in the form. The export takes a window of any length, so a window too long for
 * the page keeps its link.
 */
export function exportLinkOf(path: string, exported: () => Record<string, unknown>): string | undefined {
  try {
    return linkTo(path, exported(), {});
  } catch (error) {
    if (error instanceof AppError && error.status === 400) return undefined;
    throw error;
  }
}

/** A refused "Create receipt", shown beside its form on /me. */
export interface RefusedReceipt {
  error: string;
  /** The date as typed, kept in the form even when it is not one. */
  before: string;
  /** A way on after the reason: the receipts list, when another receipt took the jobs. */
  link?: { href: string; text: string };
}

/** Renders /me: the page of GET /me, and the page a refused "Create receipt" comes back to. */
export type ShowMyUsage = (
  req: express.Request,
  res: express.Response,
  shown: { query: unknown; refusedReceipt?: RefusedReceipt },
) => Promise<void>;

/**
 * /me for the signed-in user: the window and view of `query`; a bad window or a page past the
 * last comes back as the page with the message and the form. A status the caller set (a
 * refused receipt's) is kept unless the window itself is refused.
 */
export function createMyUsagePage(deps: { usage: UsageService }): ShowMyUsage {
  const { usage } = deps;
  return async (req, res, { query, refusedReceipt }) => {
    const raw = (query ?? {}) as Record<string, string | undefined>;
    let asked: MyUsageAsk;
    try {
      asked = { query: parseInput(ZUsageQuery, query) };
    } catch (error) {
      // Bad dates come back as the page with the message and the form, not as an error page.
      if (!(error instanceof AppError) || error.status !== 400) throw error;
      asked = { refused: error, typedWindow: typedWindowQueryOf(raw), typedEnd: typedEndOf(raw) };
    }
    const shown = await usage.myUsagePage(sessionUserOf(req).username, asked);
    const { heldPayments } = shown;
    if (shown.kind === 'page') {
      const { page } = shown;
      // A Job id stays on the Jobs view's pages and sorts; the other views do not filter by it.
      const current = {
        start: page.window.start,
        end: page.window.end,
        view: page.view,
        job: page.view === 'detail' ? page.job : undefined,
      };
      res.render('usage/me', {
        title: 'My usage',
        page,
        ...page.receiptForm,
        error: undefined,
        refusedReceipt,
        heldPayments,
        // The window's form sends the sort back with the dates, as the tabs and pages do.
        keptSort: { sort: raw.sort, dir: raw.dir },
        link: (changes: Record<string, unknown>) =>
          linkTo('/me', { ...current, sort: raw.sort, dir: raw.dir }, changes),
        // The CSV of what the Jobs view lists, in its order: the link carried the window alone, and a
        // researcher who had sorted by cost or found one job downloaded every job in the order they ended.
        csvLink: linkTo(
          '/me.csv',
          { start: page.window.start, end: page.window.end },
          page.view === 'detail' ? { sort: raw.sort, dir: raw.dir, job: page.job } : {},
        ),
        // A refused receipt comes back to the window, view and sort it was asked from, not the default 7 days.
        receiptAction: linkTo(
          '/me/receipt',
          { start: raw.start, end: raw.end, view: raw.view, sort: raw.sort, dir: raw.dir },
          {},
        ),
      });
      return;
    }
    if (shown.kind === 'pageNotFound') {
      // The form, the tabs and a way back to the first page of the same window and sort.
      const { window, view } = shown.error;
      const current = { start: window.start, end: window.end, view, sort: raw.sort, dir: raw.dir };
      res.status(404).render('usage/me', {
        title: 'My usage',
        page: undefined,
        ...shown.receiptForm,
        error: readableMessageOf(shown.error),
        refusedReceipt,
        heldPayments,
        form: { start: window.start, end: window.end, view },
        keptSort: { sort: raw.sort, dir: raw.dir },
        link: (changes: Record<string, unknown>) => linkTo('/me', current, changes),
        csvLink: linkTo(
          '/me.csv',
          { start: window.start, end: window.end },
          view === 'detail' ? { sort: raw.sort, dir: raw.dir, job: raw.job } : {},
        ),
        firstPageLink: linkTo('/me', current, {}),
        // Under a refused page too, a refused receipt comes back to this window (it came back to the last 7 days).
        receiptAction: linkTo('/me/receipt', current, {}),
      });
      return;
    }
    const { shownWindow, exportWindow, error } = shown;
    const keptView = takenOption(raw.view, ZUsageQuery.shape.view.unwrap().options);
    const keptSort = keptSortOf(raw);
    // 400, or 404 for a Job id none of the user's jobs has.
    res.status(error.status).render('usage/me', {
      title: 'My usage',
      page: undefined,
      ...shown.receiptForm,
      error: readableMessageOf(error),
      invalidFields: invalidFieldsOf(shown.error),
      refusedReceipt,
      heldPayments,
      // The window form sends the view back: a refused one (view=Per day) was refused again at every Show.
      form: { start: raw.start ?? '', end: raw.end ?? '', view: keptView ?? 'detail', job: raw.job ?? '' },
      // And the sort, when the page takes it: after a refused window, Show listed the jobs by Ended again.
      keptSort,
      // The tabs keep the window of the form when a page can show it (a refused view, sort or page
      // sent them to the last 7 days, another window than the form's and the CSV's), or a too-long
      // one as typed (a From alone stays alone).
      link: (changes: Record<string, unknown>) =>
        linkTo('/me', { ...shownWindow, view: undefined, ...keptSort }, changes),
      // A refused receipt comes back to the window the tabs keep, in a view and sort that are ones,
      // without what was refused (it came back to the last 7 days).
      receiptAction: linkTo('/me/receipt', { ...shownWindow, view: keptView, ...keptSort }, {}),
      // The CSV exports the window typed (a too-long one is what the message sends it to),
      // and is not offered for a window it would refuse.
      csvLink: exportWindow && linkTo('/me.csv', exportWindow, {}),
    });
  };
}

/** The window of a refused query as typed, parsed alone; undefined when its dates are refused too. */
function typedWindowQueryOf(raw: Record<string, unknown>): TWindowQuery | undefined {
  try {
    return parseInput(ZWindowQuery, { start: raw.start, end: raw.end });
  } catch (error) {
    if (error instanceof AppError && error.status === 400) return undefined;
    throw error;
  }
}

/**
 * The To of a refused query as typed, parsed alone (a From that is not a date leaves it one); undefined
 * when it is not a date. The receipt form bills up to it when it is before today.
 */
function typedEndOf(raw: Record<string, unknown>): string | undefined {
  try {
    return parseInput(ZWindowQuery, { end: raw.end }).end;
  } catch (error) {
    if (error instanceof AppError && error.status === 400) return undefined;
    throw error;
  }
}

/** A refused query's value when it is one of the page's options (a view, a sort, a direction), else undefined. */
function takenOption<T extends string>(value: unknown, options: readonly T[]): T | undefined {
  return options.find((option) => option === value);
}

/** The sort and direction of a refused query that the page takes; one the page refuses is left out. */
function keptSortOf(raw: Record<string, unknown>): { sort?: string; dir?: string } {
  return {
    sort: takenOption(raw.sort, ZUsageQuery.shape.sort.unwrap().options),
    dir: takenOption(raw.dir, ZUsageQuery.shape.dir.unwrap().options),
  };
}

/**
 * /me as JSON: what the page shows in its view, under the same window, sort and page. Money is
 * decimal text at the currency's scale (THB "12.50", JPY "13"), rounded as the page rounds it, and
 * hours are the six decimals they are priced at: never floats, whose sums drift from the receipt.
 */
export function myUsageJson(page: UserUsagePage, timeZone: string) {
  const money = (value: Prisma.Decimal | null) =>
    value === null ? null : moneyJson(new Prisma.Decimal(value), page.currency);
  const { rates } = page.tier;
  const base = {
    view: page.view,
    window: { start: page.window.start, end: page.window.end, timeZone },
    currency: page.currency,
    tier: {
      name: page.tier.tier,
      source: page.tier.source,
      rates: {
        // What POST /me/receipt may send as based_on: refused (409) once they are no longer the user's.
        rateId: rates.id,
        cpu: rateJson(rates.cpu, rates.currency),
        gpu: rateJson(rates.gpu, rates.currency),
        mem: rateJson(rates.mem, rates.currency),
        currency: rates.currency,
      },
    },
  };
  const paging = { page: page.page, pageCount: page.pageCount, count: page.count };
  if (page.view === 'aggregate') {
    const sums = (row: {
      jobs: number;
      cpuHours: Prisma.Decimal;
      gpuHours: Prisma.Decimal;
      memGbHours: Prisma.Decimal;
    }) => ({
      jobs: row.jobs,
      cpuHours: hoursJson(row.cpuHours),
      gpuHours: hoursJson(row.gpuHours),
      memGbHours: hoursJson(row.memGbHours),
    });
    // The page's days (`count` is the window's up to today, or its last job when later), and the totals of the whole window, as the page shows them.
    return {
      ...base,
      ...paging,
      days: page.days.map((day) => ({ day: day.day, ...sums(day), cost: money(day.cost) })),
      totals: { ...sums(page.totals), cost: money(page.totals.cost) },
    };
  }
  if (page.view === 'billed') {
    return {
      ...base,
      ...paging,
      jobs: page.rows.map((row) => ({
        receiptId: row.receiptId,
        receiptStatus: row.receiptStatus,
        receiptCreatedAt: row.receiptCreatedAt.toISOString(),
        cluster: row.cluster,
        jobId: row.jobId,
        name: row.name,
        endAt: row.endAt.toISOString(),
        cost: money(row.cost),
      })),
      totals: { jobs: page.totals.jobs, cost: money(page.totals.cost) },
    };
  }
  return {
    ...base,
    sort: page.sort,
    dir: page.dir,
    ...paging,
    jobs: page.rows.map((row) => ({
      cluster: row.cluster,
      jobId: row.jobId,
      name: row.name,
      state: row.state,
      account: row.account,
      partition: row.partition,
      startAt: row.startAt?.toISOString() ?? null,
      endAt: row.endAt.toISOString(),
      elapsedSec: row.elapsedSec,
      cpuHours: hoursJson(row.cpuHours),
      gpuHours: hoursJson(row.gpuHours),
      memGbHours: hoursJson(row.memGbHours),
      tier: row.tier,
      cost: money(row.cost),
      receipt: row.receiptId === null ? null : { id: row.receiptId, status: row.receiptStatus },
      // False for a job with an end time that has not finished: shown at an estimate, billed by no receipt until it does.
      isFinished: row.isFinished !== false,
    })),
  };
}

/** A researcher's own usage: GET /me (three views) and GET /me.csv. */
export function usageRoutes(deps: {
  usage: UsageService;
  csvExports: CsvExports;
  guards: Guards;
  showMyUsage: ShowMyUsage;
}) {
  const { usage, csvExports, guards, showMyUsage } = deps;
  const router = express.Router();

  router.get('/me', guards.requireUser, async (req, res) => {
    // A HEAD (a link checker, `curl -I`) gets the status and type of its GET without the jobs, their sums
    // or the held payments; refused (a bad window 400, a page past the last 404), the page its GET shows.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () =>
      usage.checkUserUsagePage(sessionUserOf(req).username, parseInput(ZUsageQuery, req.query)),
    );
    if (isHeadAnswered) return;
    // A script gets the page's data as JSON, and a refused window or page as {error, code}.
    if (prefersJson(req)) {
      const page = await usage.getUserUsage(sessionUserOf(req).username, parseInput(ZUsageQuery, req.query));
      res.json(myUsageJson(page, (req.app.locals.fmt as ViewFormatters).timeZone));
      return;
    }
    await showMyUsage(req, res, { query: req.query });
  });

  getDownload(
    router,
    '/me.csv',
    (address) => linkTo('/me', typedOwnExportOf(address.query), {}),
    guards.requireUser,
    sendOwnUsageCsv({ usage, csvExports, backTo: ME_BACK, typedOf: typedOwnExportOf }),
  );

  return router;
}

const ME_BACK: BackLink = { href: '/me', text: 'Back to My usage' };

/** The window an export's address asks for, as typed. */
export function typedWindowOf(query: unknown): { start?: string; end?: string } {
  return { start: typedIn(query, 'start'), end: typedIn(query, 'end') };
}

/** What /me.csv's address asks for, as typed: the window, and the Jobs view's sort and Job id, which My usage reads too. */
function typedOwnExportOf(query: unknown): Record<string, string | undefined> {
  return {
    ...typedWindowOf(query),
    sort: typedIn(query, 'sort'),
    dir: typedIn(query, 'dir'),
    job: typedIn(query, 'job'),
  };
}

/**
 * The signed-in user's own jobs in a window as CSV: /me.csv, and /admin/my.csv for an admin, of
 * the jobs of a Job id and in a sort when asked (ZOwnUsageExportQuery). A refused export opened in
 * a browser shows the error page with a link to `backTo` at what was typed (`typedOf`: by default
 * the window), whose page shows the same refusal beside a form to correct it.
 */
export function sendOwnUsageCsv(deps: {
  usage: UsageService;
  csvExports: CsvExports;
  backTo: BackLink;
  typedOf?: (query: unknown) => Record<string, string | undefined>;
}): express.RequestHandler {
  const typedOf = deps.typedOf ?? typedWindowOf;
  return async (req, res) => {
    offerWayBack(res, { href: linkTo(deps.backTo.href, typedOf(req.query), {}), text: deps.backTo.text });
    const user = sessionUserOf(req);
    const query = parseInput(ZOwnUsageExportQuery, req.query);
    // Resolved here, for the file's name a HEAD answers with too; the export reads the same dates. A
    // Job id without dates is looked up (its days, or a 404 as on the page), a HEAD's too.
    const { start, end } = await deps.usage.resolveOwnExportWindow(user.username, query);
    await deps.csvExports.send(req, res, {
      kind: 'my_usage',
      username: user.username,
      filename: `usage-${user.username}-${start}-${end}.csv`,
      columns: USAGE_CSV_COLUMNS,
      async open() {
        return (await deps.usage.streamUserCsv(user.username, { ...query, start, end })).chunks;
      },
    });
  };
}
