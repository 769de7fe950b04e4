import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import { wantsHtml } from '../../http/error-handler.js';
import { isEtagMatched } from '../../http/hot-routes.js';
import { isRefusedForm, typedIn } from '../../http/route-helpers.js';
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

/** What was typed into one tier's form, shown back in it when the form is refused. */
interface TypedRates {
  type: string;
  cpu: string;
  gpu: string;
  mem: string;
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

  /** The rates page; a refused form comes back with its tier named and what was typed in it. */
  async function renderRates(res: express.Response, refused?: { error: AppError; form: TypedRates }) {
    const snapshot = await rates.getSnapshot();
    const tiers = [...snapshot.tiers.values()];
    if (!refused) {
      res.render('admin/rates', { title: 'Rates', tiers });
      return;
    }
    // Every tier's form has the same three fields: "cpu: must be 0 or more" alone does not say whose.
    const isShownTier = snapshot.tiers.has(refused.form.type);
    res.render('admin/rates', {
      title: 'Rates',
      tiers,
      error: isShownTier
        ? `Rates of ${refused.form.type} not changed. ${refused.error.message}`
        : refused.error.message,
      form: isShownTier ? refused.form : undefined,
    });
  }

  router.get('/admin/rates', guards.requireAdmin, async (_req, res) => {
    await renderRates(res);
  });

  router.post('/admin/rates', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZSetRates, req.body);
      const { isChanged } = await rates.setRates(auditContextOf(req), input);
      req.session.flash = isChanged
        ? { type: 'success', message: `Rates of ${input.type} saved; they apply from now.` }
        : { type: 'warning', message: `Rates of ${input.type} are already these; nothing was saved.` };
      res.redirect(303, '/admin/rates');
    } catch (error) {
      // A form gets its page back with the problem on it; API clients get JSON from the error handler.
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      const typed = (name: string) => typedIn(req.body, name) ?? '';
      res.status(error.status);
      await renderRates(res, {
        error,
        form: { type: typed('type'), cpu: typed('cpu'), gpu: typed('gpu'), mem: typed('mem') },
      });
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
      const outcome = await rates.setOverride(auditContextOf(req), input);
      req.session.flash = outcome.isChanged
        ? { type: 'success', message: `${input.username} is now on ${outcome.effectiveTier}.` }
        : {
            type: 'warning',
            message: `${input.username} is already on ${outcome.effectiveTier}; nothing was changed.`,
          };
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
