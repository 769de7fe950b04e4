import express from 'express';
import type { CsvExports } from '../../http/csv-exports.js';
import { sessionUserOf } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import { AppError, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { linkTo, sendOwnUsageCsv } from './usage.routes.js';
import { ZAdminUsageQuery } from './usage.schema.js';
import { USAGE_CSV_COLUMNS, type UsageService, WindowTooLongForPageError } from './usage.service.js';

/** The admin usage filters as typed, for a link (the window is added by the caller). */
function filtersOf(raw: Record<string, string | undefined>) {
  return { user: raw.user?.trim(), account: raw.account?.trim(), partition: raw.partition?.trim() };
}

/** Usage across all users (admin) and the admin's own usage export. */
export function adminUsageRoutes(deps: { usage: UsageService; csvExports: CsvExports; guards: Guards }) {
  const { usage, csvExports, guards } = deps;
  const router = express.Router();

  router.get('/admin/usage', guards.requireAdmin, async (req, res) => {
    const raw = req.query as Record<string, string | undefined>;
    try {
      const query = parseInput(ZAdminUsageQuery, req.query);
      const result = await usage.getAdminUsage(query);
      const current = { start: result.window.start, end: result.window.end, ...result.filters };
      res.render('admin/usage', {
        title: 'Usage across users',
        result,
        error: undefined,
        form: current,
        csvLink: linkTo('/admin/usage.csv', current, {}),
      });
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 400) throw error;
      res.status(400).render('admin/usage', {
        title: 'Usage across users',
        result: undefined,
        error: readableMessageOf(error),
        form: raw,
        // The message sends a too-long window to the CSV: its link keeps the window and filters.
        csvLink:
          error instanceof WindowTooLongForPageError
            ? linkTo('/admin/usage.csv', { ...filtersOf(raw), ...error.window }, {})
            : '/admin/usage.csv',
      });
    }
  });

  router.get('/admin/usage.csv', guards.requireAdmin, async (req, res) => {
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

  router.get('/admin/my.csv', guards.requireAdmin, sendOwnUsageCsv({ usage, csvExports }));

  return router;
}
