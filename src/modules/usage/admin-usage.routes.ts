import express from 'express';
import type { CsvExports } from '../../http/csv-exports.js';
import { linkTo } from '../../http/page-links.js';
import { offerWayBack, sessionUserOf, typedIn } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { AppError, invalidFieldsOf, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { exportLinkOf, sendOwnUsageCsv } from './usage.routes.js';
import { ZAdminUsageQuery, ZWindowQuery } from './usage.schema.js';
import { USAGE_CSV_COLUMNS, type UsageService } from './usage.service.js';

/**
 * The words of the usage CSV link: it downloads the jobs under the filters, and "all jobs" read as
 * every user's even with a user, account or partition typed (once, or twice in an edited address).
 */
function csvLabelFor(filters: Record<string, unknown>): string {
  const isFiltered = ['user', 'account', 'partition'].some((name) => {
    const value = filters[name];
    return Array.isArray(value) || (typeof value === 'string' && value.trim() !== '');
  });
  return isFiltered ? 'Download these jobs (CSV)' : 'Download all jobs (CSV)';
}

/** The fields of the page's filter form, which its export takes too. */
const USAGE_FILTERS = ['start', 'end', 'user', 'account', 'partition'] as const;

/** Usage across all users (admin) and the admin's own usage export. */
export function adminUsageRoutes(deps: { usage: UsageService; csvExports: CsvExports; guards: Guards }) {
  const { usage, csvExports, guards } = deps;
  const router = express.Router();

  router.get('/admin/usage', guards.requireAdmin, async (req, res) => {
    // What the refused page's form shows: a field given twice is a list, which it cannot, and leaves empty.
    const typed = Object.fromEntries(USAGE_FILTERS.map((name) => [name, typedIn(req.query, name)]));
    try {
      const query = parseInput(ZAdminUsageQuery, req.query);
      const result = await usage.getAdminUsage(query);
      const window = { start: result.window.start, end: result.window.end };
      const current = { ...window, ...result.filters };
      res.render('admin/usage', {
        title: 'Usage across users',
        result,
        error: undefined,
        invalidFields: [],
        form: current,
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
          const { user, account, partition } = parseInput(ZAdminUsageQuery, req.query);
          return { user, account, partition, ...typedWindow() };
        }),
        csvLabel: csvLabelFor(req.query),
        myCsvLink: exportLinkOf('/admin/my.csv', typedWindow),
      });
    }
  });

  router.get('/admin/usage.csv', guards.requireAdmin, async (req, res) => {
    // Refused, back to the page at the window and filters typed, which says the same beside a form to correct them.
    const typed = Object.fromEntries(USAGE_FILTERS.map((name) => [name, typedIn(req.query, name)]));
    offerWayBack(res, { href: linkTo('/admin/usage', typed, {}), text: 'Back to Usage across users' });
    const query = parseInput(ZAdminUsageQuery, req.query);
    await csvExports.send(req, res, {
      kind: 'user_usage',
      username: sessionUserOf(req).username,
      async open() {
        const { window, chunks } = await usage.streamAdminCsv(query);
        return { filename: `usage-all-${window.start}-${window.end}.csv`, columns: USAGE_CSV_COLUMNS, chunks };
      },
    });
  });

  router.get(
    '/admin/my.csv',
    guards.requireAdmin,
    sendOwnUsageCsv({ usage, csvExports, backTo: { href: '/admin/usage', text: 'Back to Usage across users' } }),
  );

  return router;
}
