import type { Prisma } from '@prisma/client';
import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import { prefersJson, wantsHtml } from '../../http/error-handler.js';
import { isEtagMatched, takeFastPathFailure } from '../../http/hot-routes.js';
import { rateJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import { refuseQueryNotUtf8 } from '../../http/percent-encoded-utf8.js';
import { rejectUnstorableText } from '../../http/reject-unstorable-text.js';
import {
  answerChange,
  answerHeadWithoutWork,
  type ChangeMade,
  isRefusedForm,
  offerWayBack,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import {
  AppError,
  InvalidFieldsError,
  invalidFieldsOf,
  NotAcceptableError,
  readableMessageOf,
} from '../../shared/errors.js';
import { revealControls } from '../../shared/visible-text.js';
import { auditTimeIso, formatAuditTime } from '../audit/audit.service.js';
import type { Guards } from '../auth/auth.guards.js';
import { type TUserListQuery, usernameReadAsNoteOf, ZUserListQuery } from '../users/users.schema.js';
import {
  TIER_FIELD_LABELS,
  ZCreateTier,
  ZDeleteTier,
  ZEditTier,
  ZFormulaQuery,
  ZSetDefaultTier,
  ZSetOverride,
  ZSetRates,
} from './pricing.schema.js';
import {
  type AdminRatesTier,
  NO_TIERS_MESSAGE,
  NoTiersError,
  PricingDuringMonthEndError,
  type RatesService,
  RenamedTierError,
  StaleRatesError,
  StaleTierDescriptionError,
} from './rates.service.js';

/** /admin/tiers at `listed`'s search and page (page 1 unnamed, as the page's own address has it), with `extra`. */
function tiersPageOf(listed: TUserListQuery, extra: Record<string, string> = {}): string {
  return linkTo('/admin/tiers', { q: listed.q, page: listed.page > 1 ? listed.page : undefined }, extra);
}

/**
 * GET /formula: public, and the hottest path of the app. Mount it before the session
 * and CSRF middlewares so a poll never touches the session store. Plain `/formula` is
 * answered before Express by hot-routes.ts; this route serves `?type=` and HEAD. Being
 * mounted before the body parsers, it is also before rejectUnstorableText and refuseQueryNotUtf8,
 * which it runs itself: `?type=%00` was answered `Unknown tier "\u0000"`, not the NUL refusal every
 * other route gives, and `?type=caf%E9` named a tier "caf\ufffd". Plain `/formula` has no query to
 * carry either, so the hot path needs no check.
 */
export function formulaRoutes(deps: { rates: RatesService }) {
  const router = express.Router();
  router.get('/formula', refuseQueryNotUtf8, rejectUnstorableText, async (req, res) => {
    // Refusals too: a 404 is cacheable by default, and "no tier yet" must not outlive the first tier in a proxy.
    res.setHeader('Cache-Control', 'no-cache');
    const fastPathFailure = takeFastPathFailure(req);
    if (fastPathFailure) throw fastPathFailure;
    const query = parseInput(ZFormulaQuery, req.query);
    const formula = await deps.rates.getFormula(query.type);
    res.setHeader('ETag', formula.etag);
    if (isEtagMatched(req.headers['if-none-match'], formula.etag)) {
      res.status(304).end();
      return;
    }
    res.type('application/json').send(formula.body);
  });
  return router;
}

/**
 * GET /rates: the price list for people, readable without signing in as /formula is. Mounted
 * behind the session (unlike /formula) so a signed-in reader keeps their own navigation.
 */
export function ratesPageRoutes(deps: { rates: RatesService }) {
  const router = express.Router();
  router.get('/rates', async (req, res) => {
    // The page is for people; a script that asked it for JSON got the HTML. /formula is its JSON.
    if (prefersJson(req)) {
      throw new NotAcceptableError(
        '/rates is the price list for people, HTML only. Programs read the rates as JSON from /formula?type=<tier>.',
        { publicFields: { jsonUrl: '/formula' } },
      );
    }
    // A HEAD (a link checker, `curl -I`): its GET's status and type, no rate read.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, false);
      return;
    }
    const priceList = await deps.rates.getPriceList();
    res.render('pricing/rates', { title: 'Rates', ...priceList, noTiersMessage: NO_TIERS_MESSAGE });
  });
  return router;
}

/**
 * The routes that set rates. A JSON body sent to them is parsed keeping each number's text
 * (lossless-json.ts), so ZRate judges what the client wrote; app.ts mounts that parser for
 * these paths before the general JSON parser.
 */
export const RATE_WRITE_PATHS = ['/formula', '/admin/rates', '/admin/rates/tiers'];

/** What was typed into one tier's rates form, and why it was refused: shown back in the tier's card. */
interface TypedRates {
  type: string;
  cpu: string;
  gpu: string;
  mem: string;
  /** The rates the typed ones were written over; undefined once the form is to start from those in force. */
  basedOn: string | undefined;
  error: string;
  /** The rates the error is about (cpu, gpu, mem), marked invalid on the form. */
  invalid?: string[];
}

/**
 * A rates form's refusal as its page shows it. The form's hidden `based_on` (the rates it was opened
 * on) refused, as not a rate id or not one of the tier's rates, means the form came back altered (an
 * extension, a proxy, a hand-edited page): the admin never saw that field, and "based_on: must be a
 * whole number" told him nothing he could act on.
 */
function ratesRefusalOnPage(error: AppError): string {
  if (!(error instanceof InvalidFieldsError) || !('based_on' in error.fields)) return readableMessageOf(error);
  const others = error.readableMessageWithout('based_on');
  return (
    `${others ? `${others}. ` : ''}This form came back with its record of the rates it was opened on altered, so whether ` +
    'someone changed them since could not be checked. It keeps the rates you typed: submit it again to set them, or ' +
    'reload the page to see the rates in force.'
  );
}

/** A typed rate as a message quotes it: cut short past 40 characters, its direction controls shown, not applied. */
function quotedRate(typed: string | undefined): string {
  if (!typed) return '(empty)';
  const characters = [...typed];
  return revealControls(characters.length > 40 ? `${characters.slice(0, 40).join('')}…` : typed);
}

/**
 * A rates form's refusal where the tier it names has no card on the page, so no form to keep the
 * rates typed in. Its hidden based_on refused as well means the form came back altered (both hidden
 * fields): the page showed "based_on: must be a whole number", the key of a field the admin never
 * saw. It now says so in words, without echoing the tier it came back naming (no card has it, and
 * the admin never typed it), and quotes the rates typed, which are lost with the form otherwise.
 */
function ratesRefusalWithoutCard(error: AppError, typed: (name: string) => string, tiers: string[]): string {
  if (!(error instanceof InvalidFieldsError) || !('based_on' in error.fields)) return readableMessageOf(error);
  // The tier's own reason (none given, too long) is what the sentence below says.
  const others = error.readableMessageWithout('based_on', 'type');
  const names =
    tiers.length > 0
      ? `it names a tier that is not one of the current tiers (${tiers.join(', ')})`
      : 'it names a tier, and there are none yet';
  const rates = (['cpu', 'gpu', 'mem'] as const)
    .map((field) => `${TIER_FIELD_LABELS[field]} ${quotedRate(typed(field))}`)
    .join(', ');
  return (
    `Rates not changed. ${others ? `${others}. ` : ''}This form came back altered: ${names}, and its record of ` +
    `the rates it was opened on was changed too. The rates you typed were ${rates}: ` +
    'reload the page and set them in the form of the tier you meant.'
  );
}

/** What was typed into the add-a-tier form, and why it was refused. */
interface TypedNewTier {
  name: string;
  description: string;
  cpu: string;
  gpu: string;
  mem: string;
  error: string;
  /** The fields the error is about (name, description, cpu, gpu, mem), marked invalid on the form. */
  invalid: string[];
}

/** What was typed into one tier's rename form, and why it was refused. */
interface TypedTierEdit {
  type: string;
  name: string;
  description: string;
  /** The description the typed one was written over; undefined once the form is to start from the one now. */
  basedOnDescription: string | undefined;
  /** The rates id the form was opened on (`based_on`), kept so a form sent again is still checked against it. */
  basedOn: string | undefined;
  error: string;
  /** The fields the error is about (name, description), marked invalid on the form. */
  invalid: string[];
}

/**
 * A rate of a tier as the Edit rates page's JSON writes it: the rates as /formula writes them, and
 * `rateId`, what a rates change sends as `based_on` to be refused if another change came first.
 */
function adminRateJson(rate: {
  id: number;
  cpu: Prisma.Decimal;
  gpu: Prisma.Decimal;
  mem: Prisma.Decimal;
  currency: string;
  effectiveFrom: Date;
}) {
  return {
    rateId: rate.id,
    cpu: rateJson(rate.cpu, rate.currency),
    gpu: rateJson(rate.gpu, rate.currency),
    mem: rateJson(rate.mem, rate.currency),
    currency: rate.currency,
    effectiveFrom: rate.effectiveFrom.toISOString(),
  };
}

/** A tier of the Edit rates page as JSON: what its card shows, its whole rate history included. */
function adminRatesTierJson(tier: AdminRatesTier) {
  return {
    name: tier.name,
    description: tier.description,
    isDefault: tier.isDefault,
    current: tier.current ? adminRateJson(tier.current) : null,
    // Newest first, as the page lists it.
    history: [...tier.history].reverse().map((rate) => ({
      ...adminRateJson(rate),
      isScheduled: rate.isScheduled,
      createdBy: rate.createdBy,
      createdAt: rate.createdAt.toISOString(),
    })),
    deletionBlockers: tier.deletionBlockers,
  };
}

/** The flash after a tier's name or description was saved: what follows the new name, and what does not. */
function describeTierEdit(outcome: Awaited<ReturnType<RatesService['editTier']>>): string {
  const { previous, name } = outcome;
  if (!outcome.isRenamed) return `Description of ${name} saved.`;
  const notes = [
    `Tier ${previous} renamed to ${name}${outcome.isDescribed ? ' and its description saved' : ''}.`,
    `Its rate history and the users placed on it follow the new name; existing receipts keep the name ${previous}, and clients asking /formula?type=${previous} must now ask for ${name}.`,
  ];
  // A rename is refused while the old name's rules have no counterpart for the new one.
  if (outcome.rulePatterns.length > 0) {
    notes.push(`PRICING_TIER_RULES sends usernames matching ${outcome.rulePatterns.join(' or ')} to it from now on.`);
  }
  if (outcome.previousRulePatterns.length > 0) {
    notes.push(
      `The rules for ${previous} (${outcome.previousRulePatterns.join(' or ')}) no longer name a tier; remove them from PRICING_TIER_RULES.`,
    );
  }
  return notes.join(' ');
}

/**
 * What setting `type`'s rates did, in a sentence: POST /admin/rates's flash, and both rate routes'
 * JSON `message`. Rates scheduled for later (SQL) replace the new ones at their time, which the
 * admin must hear: "they apply from now" alone read as for good.
 */
function ratesSetFlashOf(
  type: string,
  updated: Awaited<ReturnType<RatesService['setRates']>>,
  fmt: ViewFormatters,
): ChangeMade['flash'] {
  if (!updated.isChanged) return { type: 'warning', message: `Rates of ${type} are already these; nothing was saved.` };
  const { scheduled } = updated;
  if (!scheduled) return { type: 'success', message: `Rates of ${type} saved; they apply from now.` };
  return {
    type: 'success',
    message:
      `Rates of ${type} saved; they apply from now until ${fmt.dateTime(new Date(scheduled.effectiveFrom))}, when the rates ` +
      `scheduled then${scheduled.createdBy ? ` by ${scheduled.createdBy}` : ''} take over (CPU core-hour ${scheduled.cpu}, ` +
      `GPU-hour ${scheduled.gpu}, Memory GB-hour ${scheduled.mem}): delete that scheduled row to keep these.`,
  };
}

/**
 * Who made a change already made, and when, as JSON writes times: UTC ISO 8601 (null for an audit
 * entry's time no date holds, as the audit log's JSON `ts`). It was the page's local display,
 * "2026-12-07 03:25", which a script cannot read without knowing APP_TZ; the message keeps it.
 */
function changeMadeJson(made: { by: string; at: Date }): { by: string; at: string | null } {
  return { by: made.by, at: auditTimeIso(made.at) ?? null };
}

/** POST /formula (JSON) and the admin pages for rates and tier overrides. */
export function pricingAdminRoutes(deps: { rates: RatesService; guards: Guards; timeZone: string }) {
  const { rates, guards, timeZone } = deps;
  const router = express.Router();

  // JSON to every client (an API, not a form), with the `message` every change's JSON answer has.
  router.post('/formula', guards.requireAdmin, async (req, res) => {
    const input = parseInput(ZSetRates, req.body);
    const updated = await rates.setRates(auditContextOf(req), input);
    res.json({
      ok: true,
      updated,
      message: ratesSetFlashOf(input.type, updated, req.app.locals.fmt as ViewFormatters).message,
    });
  });

  /**
   * The rates page. A refused rates form comes back in its tier's card with the reason and what
   * was typed; a refused new tier comes back in the add-a-tier form. Each form's action ends in
   * the id of the element holding it and its reason, so the browser opens the page there.
   */
  async function renderRates(
    res: express.Response,
    refused: { error?: string; form?: TypedRates; newTier?: TypedNewTier; tierEdit?: TypedTierEdit } = {},
  ) {
    const { tiers, ruleTiers } = await rates.getAdminRates();
    res.render('admin/rates', {
      // Not "Rates": that is the price list (/rates), which an admin's nav links as well.
      title: 'Edit rates',
      tiers,
      ruleTiers,
      error: refused.error,
      form: refused.form,
      newTier: refused.newTier,
      tierEdit: refused.tierEdit,
    });
  }

  router.get('/admin/rates', guards.requireAdmin, async (req, res) => {
    // A HEAD (a link checker, `curl -I`): its GET's status and type, no tier or rate read.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    // A script gets the tiers as JSON, as the page's changes and the other admin pages answer it;
    // before the first tier, an empty list (this is where the first tier is added, not a 404).
    if (prefersJson(req)) {
      const { tiers, ruleTiers } = await rates.getAdminRates();
      res.json({ tiers: tiers.map(adminRatesTierJson), ruleTiers });
      return;
    }
    await renderRates(res);
  });

  router.post('/admin/rates', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZSetRates, req.body);
      const updated = await rates.setRates(auditContextOf(req), input);
      answerChange(req, res, {
        // The `updated` POST /formula answers, so a script reads the two alike.
        json: { updated },
        flash: ratesSetFlashOf(input.type, updated, req.app.locals.fmt as ViewFormatters),
        // Back to the tier's card, as browsers would anyway: a Location without a fragment keeps the form action's.
        location: `/admin/rates#tier-${encodeURIComponent(input.type)}`,
      });
    } catch (error) {
      // A form gets its page back with the problem on it; API clients get JSON from the error handler.
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      const typed = (name: string) => typedIn(req.body, name) ?? '';
      // A tier renamed since the page was opened: its card is under the name it has now.
      const renamed = error instanceof RenamedTierError;
      const type = renamed ? error.tier : typed('type');
      res.status(error.status);
      // A tier that is not on the page has no card to show it in.
      const { tiers } = await rates.getCurrentSnapshot();
      if (!tiers.has(type)) {
        await renderRates(res, { error: ratesRefusalWithoutCard(error, typed, [...tiers.keys()]) });
        return;
      }
      // Over a stale page, the rates the admin did not change show as they are now.
      const shown = error instanceof StaleRatesError ? error.formRates : undefined;
      await renderRates(res, {
        form: {
          type,
          cpu: shown?.cpu ?? typed('cpu'),
          gpu: shown?.gpu ?? typed('gpu'),
          mem: shown?.mem ?? typed('mem'),
          // Refused as stale, the form starts from the rates in force; refused for a typo, it keeps
          // the rates it was opened on, so a change made meanwhile is still caught.
          // based_on refused (not one of this tier's rates) starts from those in force too, or sending
          // the form again would be refused the same way.
          basedOn: shown || invalidFieldsOf(error).includes('based_on') ? undefined : typedIn(req.body, 'based_on'),
          // Every tier's form has the same three fields: "CPU core-hour: must be a plain decimal ..." alone does not say whose.
          // A stale form's refusal says so itself (JSON clients get it too).
          error:
            shown || renamed || error instanceof PricingDuringMonthEndError
              ? readableMessageOf(error)
              : `Rates of ${type} not changed. ${ratesRefusalOnPage(error)}`,
          invalid: invalidFieldsOf(error),
        },
      });
    }
  });

  router.post('/admin/rates/tiers', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZCreateTier, req.body);
      const created = await rates.createTier(auditContextOf(req), input);
      if ('addedBefore' in created) {
        const { by, at } = created.addedBefore;
        answerChange(req, res, {
          json: { tier: { ...created, addedBefore: changeMadeJson(created.addedBefore) } },
          flash: {
            type: 'warning',
            message: `Tier ${created.name} was already added with these rates and description, by ${by} at ${formatAuditTime(at, timeZone)}; nothing was changed.`,
          },
          location: `/admin/rates#tier-${encodeURIComponent(created.name)}`,
        });
        return;
      }
      const notes = [`Tier ${created.name} added; its rates apply from now.`];
      if (created.isDefault) {
        notes.push('It is the default tier: it prices every user whom no rule or override places on another tier.');
      }
      if (created.rulePatterns.length > 0) {
        notes.push(
          `PRICING_TIER_RULES sends usernames matching ${created.rulePatterns.join(' or ')} to it from now on.`,
        );
      }
      answerChange(req, res, {
        json: { tier: created },
        flash: { type: 'success', message: notes.join(' ') },
        location: `/admin/rates#tier-${encodeURIComponent(created.name)}`,
        // Something new, as a receipt or a user is: 201, at the address programs read its rates from.
        createdUrl: `/formula?type=${encodeURIComponent(created.name)}`,
      });
    } catch (caught) {
      // A name another tier has is said with the other reasons, not once they are fixed.
      const error =
        caught instanceof InvalidFieldsError
          ? await rates.withTakenTierName(caught, typedIn(req.body, 'name'))
          : caught;
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      const typed = (name: string) => typedIn(req.body, name) ?? '';
      res.status(error.status);
      await renderRates(res, {
        newTier: {
          name: typed('name'),
          description: typed('description'),
          cpu: typed('cpu'),
          gpu: typed('gpu'),
          mem: typed('mem'),
          // A 409 already says nothing was added; a 400 names only the field.
          error: error.status === 400 ? `Tier not added. ${readableMessageOf(error)}` : readableMessageOf(error),
          invalid: invalidFieldsOf(error),
        },
      });
    }
  });

  router.post('/admin/rates/tiers/edit', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZEditTier, req.body);
      const outcome = await rates.editTier(auditContextOf(req), input);
      const renamedBefore = 'renamedBefore' in outcome ? outcome.renamedBefore : undefined;
      answerChange(req, res, {
        json: { tier: renamedBefore ? { ...outcome, renamedBefore: changeMadeJson(renamedBefore) } : outcome },
        flash: outcome.isChanged
          ? { type: 'success', message: describeTierEdit(outcome) }
          : renamedBefore
            ? {
                type: 'warning',
                message: `Tier ${outcome.previous} was already renamed to ${outcome.name}, by ${renamedBefore.by} at ${formatAuditTime(renamedBefore.at, timeZone)}; nothing was changed.`,
              }
            : {
                type: 'warning',
                message: `${outcome.name} already has this name and description; nothing was changed.`,
              },
        location: `/admin/rates#tier-${encodeURIComponent(outcome.name)}`,
      });
    } catch (error) {
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      const typed = (name: string) => typedIn(req.body, name) ?? '';
      res.status(error.status);
      // A tier renamed by someone else since the page was opened: its form is under the name it has now,
      // keeping what was typed (a name left as the page showed it becomes the name now).
      const renamedTo = typeof error.details?.renamedTo === 'string' ? error.details.renamedTo : undefined;
      const type = renamedTo ?? typed('type');
      // The refusal goes back into the tier's own form; a tier that is not on the page has none. Nor
      // has a tier replaced by another of its name since the page was opened: in that other tier's
      // card, the name and description typed for the old one would be one click from being saved on it.
      if (error.details?.tierReplaced === true) {
        await renderRates(res, { error: readableMessageOf(error) });
        return;
      }
      if (!(await rates.getCurrentSnapshot()).tiers.has(type)) {
        await renderRates(res, { error: `Tier not changed. ${readableMessageOf(error)}` });
        return;
      }
      // Over a stale page, a description the admin did not change shows as it is now.
      const isStale = error instanceof StaleTierDescriptionError;
      const keeps = renamedTo ? ' The form keeps what you typed; check it and save again.' : '';
      await renderRates(res, {
        tierEdit: {
          type,
          name: renamedTo && typed('name') === typed('type') ? renamedTo : typed('name'),
          description: isStale ? error.formDescription : typed('description'),
          basedOnDescription: isStale ? undefined : typedIn(req.body, 'based_on_description'),
          basedOn: invalidFieldsOf(error).includes('based_on') ? undefined : typedIn(req.body, 'based_on'),
          // A 409 already says what was not done; a 400 names only the field.
          error:
            error.status === 400
              ? `Tier ${typed('type')} not changed. ${readableMessageOf(error)}${keeps}`
              : readableMessageOf(error),
          invalid: invalidFieldsOf(error),
        },
      });
    }
  });

  router.post('/admin/rates/tiers/delete', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZDeleteTier, req.body);
      const deleted = await rates.deleteTier(auditContextOf(req), input);
      const deletedBefore = 'deletedBefore' in deleted ? deleted.deletedBefore : undefined;
      answerChange(req, res, {
        json: { tier: deletedBefore ? { ...deleted, deletedBefore: changeMadeJson(deletedBefore) } : deleted },
        flash: deletedBefore
          ? {
              type: 'warning',
              message: `Tier ${deleted.name} was already deleted, by ${deletedBefore.by} at ${formatAuditTime(deletedBefore.at, timeZone)}; nothing was changed.`,
            }
          : {
              type: 'success',
              message: `Tier ${deleted.name} deleted, with its rate history (${deleted.rateCount === 1 ? '1 rate' : `${deleted.rateCount} rates`}). Receipts priced with it keep their copy of its rates.`,
            },
        location: '/admin/rates',
      });
    } catch (error) {
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      res.status(error.status);
      // A 409 already says the tier was not deleted and why; a 400 names only the field.
      await renderRates(res, {
        error: error.status === 400 ? `Tier not deleted. ${readableMessageOf(error)}` : readableMessageOf(error),
      });
    }
  });

  router.post('/admin/rates/default', guards.requireAdmin, async (req, res) => {
    try {
      const input = parseInput(ZSetDefaultTier, req.body);
      const outcome = await rates.setDefaultTier(auditContextOf(req), input);
      answerChange(req, res, {
        // `previous` is null when no tier was marked the default (tiers made in SQL).
        json: { tier: { ...outcome, previous: outcome.previous ?? null } },
        flash: outcome.isChanged
          ? {
              type: 'success',
              message:
                `${outcome.name} is now the default tier${outcome.previous ? ` instead of ${outcome.previous}` : ''}: ` +
                'every user whom no rule or override places on another tier is priced with it from now on. ' +
                'Existing receipts keep their rates.',
            }
          : { type: 'warning', message: `${outcome.name} is already the default tier; nothing was changed.` },
        location: `/admin/rates#tier-${encodeURIComponent(outcome.name)}`,
      });
    } catch (error) {
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      res.status(error.status);
      // A refusal during a month-end run says what was not done itself.
      const reason = readableMessageOf(error);
      await renderRates(res, {
        error: error instanceof PricingDuringMonthEndError ? reason : `Default tier not changed. ${reason}`,
      });
    }
  });

  /**
   * The overrides page listing `query`'s search and page; `error` is a refused change's reason,
   * `refusedUser` whose change it was and `invalidFields` the fields it is about (tier).
   */
  async function renderTiers(
    res: express.Response,
    query: TUserListQuery,
    extra: { error?: string; refusedUser?: string; invalidFields?: string[]; chosenTier?: string } = {},
  ) {
    const snapshot = await rates.getCurrentSnapshot();
    // Before the first tier there is no tier to show anyone on: the page says where to add one.
    const list =
      snapshot.knownTiers.size === 0 ? undefined : await rates.listUserTiers({ search: query.q, page: query.page });
    res.render('admin/tiers', {
      title: 'Tier overrides',
      list,
      users: list?.users ?? [],
      search: query.q ?? '',
      link: (changes: Record<string, unknown>) => linkTo('/admin/tiers', { q: query.q }, changes),
      listedAt: tiersPageOf(query),
      tierNames: [...snapshot.knownTiers],
      // The rates in force of each tier offered ("mu:3 gov:7"), the forms' hidden based_on_rates: a
      // tier replaced by another of its name after the page was opened is not chosen in its place.
      tierRates: [...snapshot.knownTiers]
        .flatMap((name) => {
          const current = snapshot.tiers.get(name)?.current;
          return current ? [`${name}:${current.id}`] : [];
        })
        .join(' '),
      refusedUser: undefined,
      invalidFields: [],
      chosenTier: undefined,
      ...extra,
    });
  }

  router.get('/admin/tiers', guards.requireAdmin, async (req, res) => {
    // A refused query or a page past the last is the error page: it leads back to the list, not only to the start.
    offerWayBack(res, { href: '/admin/tiers', text: 'Open Tier overrides' });
    const listed = parseInput(ZUserListQuery, req.query);
    if (listed.q) offerWayBack(res, { href: `/admin/tiers?q=${encodeURIComponent(listed.q)}`, text: 'Go to page 1' });
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the tiers checked (before the first,
    // a script's 404; a browser's page says where to add one) and the users found counted for a later
    // page (404 past the last), none read, nor their overrides, and the page not rendered.
    if (req.method === 'HEAD') {
      try {
        await rates.checkUserTiersPage({ search: listed.q, page: listed.page });
      } catch (error) {
        if (!(error instanceof NoTiersError) || prefersJson(req)) throw error;
      }
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    if (prefersJson(req)) {
      // A script gets the list as JSON, as the page's changes and the other admin lists answer it.
      // Before the first tier no one can be on one: the 404 /formula and /me give, with its reason.
      const snapshot = await rates.getCurrentSnapshot();
      if (snapshot.knownTiers.size === 0) throw new NoTiersError();
      const list = await rates.listUserTiers({ search: listed.q, page: listed.page });
      res.json({
        q: listed.q ?? null,
        tiers: [...snapshot.knownTiers],
        defaultTier: snapshot.defaultTier,
        page: list.page,
        pageCount: list.pageCount,
        count: list.count,
        // No override (null) is the user on their natural tier, as the change's answer says.
        users: list.users.map((user) => ({ ...user, override: user.override ?? null })),
      });
      return;
    }
    await renderTiers(res, listed);
  });

  // The page's forms post to the search and page they were on (?q=&page=), to come back to them.
  router.post('/admin/tiers', guards.requireAdmin, async (req, res) => {
    // A refused ?q=&page= (an address edited by hand) is the error page, as on the GET: it leads back
    // to the list, not only to the start page.
    offerWayBack(res, { href: '/admin/tiers', text: 'Open Tier overrides' });
    const listed = parseInput(ZUserListQuery, req.query);
    try {
      const input = parseInput(ZSetOverride, req.body);
      const { usernameAsTyped, ...outcome } = await rates.setOverride(auditContextOf(req), input);
      // The user as stored (zoe for Zoe typed), and what the name typed was read as.
      const { username } = outcome;
      const readAs = usernameAsTyped ? ` ${usernameReadAsNoteOf(usernameAsTyped, username)}` : '';
      answerChange(req, res, {
        // No override (null) is the user on their natural tier.
        json: {
          user: { ...outcome, override: outcome.override ?? null },
          ...(usernameAsTyped ? { usernameAsTyped } : {}),
        },
        flash: outcome.isChanged
          ? { type: 'success', message: `${username} is now on ${outcome.effectiveTier}.${readAs}` }
          : {
              type: 'warning',
              message: `${username} is already on ${outcome.effectiveTier}; nothing was changed.${readAs}`,
            },
        // A change moves no one in the list (it is by name), so the user is on this page still.
        location: `${tiersPageOf(listed, { updated: username })}#user-${encodeURIComponent(username)}`,
      });
    } catch (error) {
      if (!(error instanceof AppError) || !wantsHtml(req)) throw error;
      res.status(error.status);
      await renderTiers(res, listed, {
        error: readableMessageOf(error),
        // The row of the user the name reads as (zoe for ZOE typed), as a move and its success's return read it.
        refusedUser: await rates.findRefusedMoveUser(typedIn(req.body, 'username')),
        invalidFields: invalidFieldsOf(error),
        // Refused only until a month-end run has ended: the row keeps the tier chosen, to save again then.
        chosenTier: error instanceof PricingDuringMonthEndError ? typedIn(req.body, 'tier') : undefined,
      });
    }
  });

  return router;
}
