import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import { wantsHtml } from '../../http/error-handler.js';
import { isEtagMatched } from '../../http/hot-routes.js';
import { parseInput } from '../../http/validate.js';
import { AppError } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { ZFormulaQuery, ZSetOverride, ZSetRates } from './pricing.schema.js';
import type { RatesService } from './rates.service.js';

/**
 * GET /formula: public, and the hottest path of the app. Mount it before the session
 * and CSRF middlewares so a poll never touches the session store. Plain `/formula` is
 * answered before Express by hot-routes.ts; this route serves `?type=` and HEAD.
 */
export function formulaRoutes(deps: { rates: RatesService }) {
  const router = express.Router();
  router.get('/formula', async (req, res) => {
    const query = parseInput(ZFormulaQuery, req.query);
    const formula = await deps.rates.getFormula(query.type);
    res.setHeader('ETag', formula.etag);
    res.setHeader('Cache-Control', 'no-cache');
    if (isEtagMatched(req.headers['if-none-match'], formula.etag)) {
      res.status(304).end();
      return;
    }
    res.type('application/json').send(formula.body);
  });
  return router;
}

/** POST /formula (JSON) and the admin pages for rates and tier overrides. */
export function pricingAdminRoutes(deps: { rates: RatesService; guards: Guards }) {
  const { rates, guards } = deps;
  const router = express.Router();

  router.post('/formula', guards.requireAdmin, async (req, res) => {
    const input = parseInput(ZSetRates, req.body);
    const updated = await rates.setRates(auditContextOf(req), input);
    res.json({ ok: true, updated });
  });

  async function renderRates(res: express.Response, extra: { error?: string; notice?: string } = {}) {
    const snapshot = await rates.getSnapshot();
    res.render('admin/rates', { title: 'Rates', tiers: [...snapshot.tiers.values()], ...extra });
  }

  router.get('/admin/rates', guards.requireAdmin, async (_req, res) => {
    await renderRates(res);
  });

  router.post('/admin/rates', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZSetRates, req.body);
      await rates.setRates(auditContextOf(req), input);
      res.redirect(303, `/admin/rates?updated=${encodeURIComponent(input.type)}`);
    } catch (error) {
      // A form gets its page back with the problem on it; API clients get JSON from the error handler.
      if (!(error instanceof AppError) || !wantsHtml(req)) throw error;
      res.status(error.status);
      await renderRates(res, { error: error.message });
    }
  });

  async function renderTiers(res: express.Response, extra: { error?: string } = {}) {
    const [users, snapshot] = await Promise.all([rates.listUserTiers(), rates.getSnapshot()]);
    res.render('admin/tiers', { title: 'Tier overrides', users, tierNames: [...snapshot.knownTiers], ...extra });
  }

  router.get('/admin/tiers', guards.requireAdmin, async (_req, res) => {
    await renderTiers(res);
  });

  router.post('/admin/tiers', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZSetOverride, req.body);
      await rates.setOverride(auditContextOf(req), input);
      res.redirect(
        303,
        `/admin/tiers?updated=${encodeURIComponent(input.username)}#user-${encodeURIComponent(input.username)}`,
      );
    } catch (error) {
      if (!(error instanceof AppError) || !wantsHtml(req)) throw error;
      res.status(error.status);
      await renderTiers(res, { error: error.message });
    }
  });

  return router;
}
