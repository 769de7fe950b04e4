import { Prisma } from '@prisma/client';
import express from 'express';
import type { CsvExports } from '../../http/csv-exports.js';
import { getDownload } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { hoursJson, moneyJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import { answeredHeadWithoutWork, offerWayBack, sessionUserOf, typedIn } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import { AppError, invalidFieldsOf, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { exportLinkOf, sendOwnUsageCsv, typedWindowOf } from './usage.routes.js';
import { ZAdminUsageCsvQuery, ZAdminUsagePageQuery, ZAdminUsageQuery, ZWindowQuery } from './usage.schema.js';
import { USAGE_CSV_COLUMNS, type UsageService } from './usage.service.js';

/**
 * The words of the usage CSV link: it downloads the jobs under the filters, and "all jobs" read as
 * every user's even with a user, account, partition or tier typed (once, or twice in an edited address).
 */
function csvLabelFor(filters: Record<string, unknown>): string {
  const isFiltered = ['user', 'account', 'partition', 'tier'].some((name) => {
    const value = filters[name];
    return Array.isArray(value) || (typeof value === 'string' && value.trim() !== '');
  });
  return isFiltered ? 'Download these jobs (CSV)' : 'Download all jobs (CSV)';
}

type AdminUsage = Awaited<ReturnType<UsageService['getAdminUsage']>>;

/**
 * /admin/usage as JSON: the page's per-user totals and their total under the same window and
 * filters, the usernames a User filter matched (null without one) and the others containing a whole
 * name it matched. Money is decimal text at the currency's scale and hours the six decimals they are
 * priced at, as /me's JSON writes them: never floats, whose sums drift from the receipts.
 */
export function adminUsageJson(result: AdminUsage, timeZone: string) {
  const figures = (row: AdminUsage['totals'] & { jobs: number }) => ({
    jobs: row.jobs,
    cpuHours: hoursJson(row.cpuHours),
    gpuHours: hoursJson(row.gpuHours),
    memGbHours: hoursJson(row.memGbHours),
    cost: moneyJson(new Prisma.Decimal(row.cost ?? 0), result.currency),
    billedCost: moneyJson(new Prisma.Decimal(row.billedCost ?? 0), result.currency),
  });
  return {
    window: { start: result.window.start, end: result.window.end, timeZone },
    filters: result.filters,
    matchedUsers: result.matchedUsers,
    alsoContaining: result.alsoContaining,
    formerTier: result.formerTier,
    currency: result.currency,
    users: result.users.map((row) => ({
      username: row.username,
      tier: row.tier,
      tiers: row.tiers.map((share) => ({ tier: share.tier, billed: share.billed, jobs: share.jobs })),
      ...figures(row),
    })),
    totals: figures(result.totals),
  };
}

/** The fields of the page's filter form, which its export takes too. */
const USAGE_FILTERS = ['start', 'end', 'user', 'account', 'partition', 'tier'] as const;

/** Usage across all users (admin) and the admin's own usage export. */
export function adminUsageRoutes(deps: { usage: UsageService; csvExports: CsvExports; guards: Guards }) {
  const { usage, csvExports, guards } = deps;
  const router = express.Router();

  router.get('/admin/usage', guards.requireAdmin, async (req, res) => {
    // A HEAD (a link checker, `curl -I`) gets the status and type of its GET without the sums: it read
    // up to a year of every user's jobs to send nothing. Refused, it gets the page its GET shows.
    // A page past the last is a 404 (the users counted, for a later page), as its GET answers; the JSON has no pages.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () =>
      prefersJson(req)
        ? usage.checkAdminUsageQuery(parseInput(ZAdminUsageQuery, req.query))
        : usage.checkAdminUsagePage(parseInput(ZAdminUsagePageQuery, req.query)),
    );
    if (isHeadAnswered) return;
    // A script gets the page's figures as JSON, and a refused window or filter as {error, code}.
    if (prefersJson(req)) {
      const result = await usage.getAdminUsage(parseInput(ZAdminUsageQuery, req.query));
      res.json(adminUsageJson(result, (req.app.locals.fmt as ViewFormatters).timeZone));
      return;
    }
    // What the refused page's form shows: a field given twice is a list, which it cannot, and leaves empty.
    const typed = Object.fromEntries(USAGE_FILTERS.map((name) => [name, typedIn(req.query, name)]));
    // A page past the last (an old link, filters that match fewer users now) leads to page 1 at the filters typed.
    offerWayBack(res, { href: linkTo('/admin/usage', typed, {}), text: 'Go to page 1' });
    try {
      const query = parseInput(ZAdminUsagePageQuery, req.query);
      const result = await usage.getAdminUsagePage(query);
      const window = { start: result.window.start, end: result.window.end };
      const current = { ...window, ...result.filters };
      res.render('admin/usage', {
        title: 'Usage across users',
        result,
        error: undefined,
        invalidFields: [],
        form: current,
        // The page under other filters: the names containing a whole username are offered so.
        link: (changes: Record<string, unknown>) => linkTo('/admin/usage', current, changes),
        csvLink: linkTo('/admin/usage.csv', current, {}),
        csvLabel: csvLabelFor(result.filters),
        myCsvLink: linkTo('/admin/my.csv', window, {}),
      });
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 400) throw error;
      // The exports take the window and filters typed (a too-long window is what the message
      // sends to the CSV), and are not offered for ones they would refuse.
      const typedWindow = () => {
        const window = usage.resolveWindow(parseInput(ZWindowQuery, { start: req.query.start, end: req.query.end }));
        return { start: window.start, end: window.end };
      };
      res.status(400).render('admin/usage', {
        title: 'Usage across users',
        result: undefined,
        error: readableMessageOf(error),
        invalidFields: invalidFieldsOf(error),
        form: typed,
        csvLink: exportLinkOf('/admin/usage.csv', () => {
          const { user, account, partition, tier } = parseInput(ZAdminUsageQuery, req.query);
          return { user, account, partition, tier, ...typedWindow() };
        }),
        csvLabel: csvLabelFor(req.query),
        myCsvLink: exportLinkOf('/admin/my.csv', typedWindow),
      });
    }
  });

  const typedFiltersOf = (query: unknown) =>
    Object.fromEntries(USAGE_FILTERS.map((name) => [name, typedIn(query, name)]));
  getDownload(
    router,
    '/admin/usage.csv',
    (address) => linkTo('/admin/usage', typedFiltersOf(address.query), {}),
    guards.requireAdmin,
    async (req, res) => {
      // Refused, back to the page at the window and filters typed, which says the same beside a form to correct them.
      offerWayBack(res, {
        href: linkTo('/admin/usage', typedFiltersOf(req.query), {}),
        text: 'Back to Usage across users',
      });
      const query = parseInput(ZAdminUsageCsvQuery, req.query);
      // Resolved here, for the file's name a HEAD answers with too; the export reads the same dates.
      const { start, end } = usage.resolveWindow(query);
      await csvExports.send(req, res, {
        kind: 'user_usage',
        username: sessionUserOf(req).username,
        filename: `usage-all-${start}-${end}.csv`,
        columns: USAGE_CSV_COLUMNS,
        async open() {
          return (await usage.streamAdminCsv({ ...query, start, end })).chunks;
        },
      });
    },
  );

  getDownload(
    router,
    '/admin/my.csv',
    (address) => linkTo('/admin/usage', typedWindowOf(address.query), {}),
    guards.requireAdmin,
    sendOwnUsageCsv({ usage, csvExports, backTo: { href: '/admin/usage', text: 'Back to Usage across users' } }),
  );

  return router;
}
