import { createHash } from 'node:crypto';
import type { Prisma } from '@prisma/client';
import type { AppConfig } from '../../config/config.js';
import type { Database, Db } from '../../db/database.js';
import { rateJson } from '../../http/json-money.js';
import {
  AppError,
  BadRequestError,
  ConflictError,
  InvalidFieldsError,
  isUniqueViolation,
  NotFoundError,
  sqlStateOf,
  uniqueViolationOf,
} from '../../shared/errors.js';
import { formatLocalDateTime } from '../../shared/local-date.js';
import { type AuditContext, appendAudit, formatAuditTime } from '../audit/audit.service.js';
import { userTarget } from '../audit/audit-target.js';
import * as monthEndRunsRepository from '../receipts/month-end-runs.repository.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import { USERS_PAGE_SIZE, userListPageCount } from '../users/users.service.js';
import { type EffectiveTier, type Rates, resolveEffectiveTier, tierNameCaseNote } from './pricing.js';
import {
  type TCreateTier,
  type TDeleteTier,
  type TEditTier,
  TIER_FIELD_LABELS,
  type TSetDefaultTier,
  type TSetOverride,
  type TSetRates,
  ZOverrideUsername,
} from './pricing.schema.js';
import * as ratesRepository from './rates.repository.js';

/** One user's rates as the usage queries bind them. */
export interface RateTableRow {
  username: string;
  tier: string;
  cpu: Prisma.Decimal;
  gpu: Prisma.Decimal;
  mem: Prisma.Decimal;
}

/** A tier as the cache holds it: the rate in force now, and the whole history for the admin page. */
export interface TierView {
  id: number;
  name: string;
  description: string;
  isDefault: boolean;
  current: (Rates & { id: number; effectiveFrom: Date }) | undefined;
  history: ratesRepository.RateRow[];
}

/** The public `/formula` answer of one tier, serialised once per rate change. */
export interface FormulaDocument {
  body: string;
  etag: string;
}

export interface RatesSnapshot {
  tiers: Map<string, TierView>;
  knownTiers: ReadonlySet<string>;
  defaultTier: string;
  formulas: Map<string, FormulaDocument>;
  /** When a rate with a later effective_from takes over (ms since epoch); Infinity when none is scheduled. */
  validUntilMs: number;
  /** Tier overrides, username -> tier name. */
  overrides: ReadonlyMap<string, string>;
  /** Names tiers were renamed away from -> the name that tier has now (listFormerTierNames). */
  formerNames: ReadonlyMap<string, { name: string; entryId: bigint }>;
  /** Names tiers were deleted under -> when, and where their users went (listDeletedTierNames). */
  deletedNames: ReadonlyMap<string, ratesRepository.DeletedTierName>;
  /** Names of tiers renamed away from and deleted since -> the name deleted under (listFormerNamesOfDeletedTiers). */
  formerNamesOfDeleted: ReadonlyMap<string, ratesRepository.FormerNameOfDeletedTier>;
}

/** One rate row as the public price list shows it: the stored decimals as exact text. */
export interface PriceListRates {
  cpu: string;
  gpu: string;
  mem: string;
  currency: string;
  effectiveFrom: Date;
  /** Entered for a later date: not in force yet (isScheduledRate). */
  isScheduled: boolean;
}

/** A tier as the admin Rates page shows it: every rate row, each marked when it is scheduled. */
export interface AdminRatesTier extends Omit<TierView, 'history'> {
  history: (ratesRepository.RateRow & { isScheduled: boolean })[];
  /** Why deleting it would be refused (deletionBlockersOf): the page shows these instead of a button. */
  deletionBlockers: string[];
}

/**
 * Why a tier cannot be deleted, one clause each, none when it can: while it is the default tier,
 * while users are placed on it by override (`overrideUsernames`, sorted), or while PRICING_TIER_RULES
 * sends usernames to it (`rulePatterns`). Each would move users to another tier without anyone
 * choosing it. deleteTier refuses with these; the Rates page shows them beside the tier.
 */
function deletionBlockersOf(tier: { isDefault: boolean; overrideUsernames: string[]; rulePatterns: string[] }) {
  const blockers: string[] = [];
  if (tier.isDefault) {
    blockers.push(
      'it is the default tier, which prices every user whom no rule or override places on another tier; make another tier the default first',
    );
  }
  const users = tier.overrideUsernames;
  if (users.length > 0) {
    const shown = users.length > 5 ? `${users.slice(0, 5).join(', ')} and ${users.length - 5} more` : users.join(', ');
    blockers.push(
      `${users.length === 1 ? '1 user is' : `${users.length} users are`} assigned to this tier (${shown}); move them to another tier on Tier overrides first`,
    );
  }
  if (tier.rulePatterns.length > 0) {
    blockers.push(
      `PRICING_TIER_RULES sends usernames matching ${tier.rulePatterns.join(' or ')} to it; change that setting first`,
    );
  }
  return blockers;
}

/** A tier on the public price list. */
export interface PriceListTier {
  name: string;
  description: string;
  isDefault: boolean;
  current: PriceListRates | undefined;
  /** Rates already entered with a later effective date, soonest first. */
  upcoming: PriceListRates[];
}

export interface UserTier extends EffectiveTier {
  override: string | undefined;
  rates: Rates & { id: number; effectiveFrom: Date };
}

/** The tier and rates a receipt locks in (getUserTierForBilling), read with every tier's rates. */
export interface BillingTier extends UserTier {
  /**
   * The tier and rates of rates id `id` from the same read, with no query more: what a page that
   * priced at them showed. Undefined when no tier has them now (their tier was deleted).
   */
  ratesOf(id: number): { tier: string; rates: ratesRepository.RateRow } | undefined;
}

export interface RatesServiceDeps {
  db: Database;
  config: Pick<AppConfig, 'timeZone' | 'currency' | 'pricing'>;
  now?: () => Date;
}

/**
 * A rate change, new tier, rename, tier override or default change waits for the receipts in flight (lockPricingForChange), as long
 * as one of them may take (a receipt's own transaction allows 60 s); Prisma's default of 5 s cut
 * the change off with a 500 behind a month-end receipt of a very busy user.
 */
const WAITS_FOR_RECEIPTS = { timeout: 60_000, maxWait: 10_000 };

/**
 * Whether a rate row is scheduled at `nowMs`: entered for a later date, so not in force yet.
 * The one rule behind the rate in force, the cache's expiry, and the "(scheduled)" mark on
 * the price list and in the admin history, so the pages and /formula never disagree.
 */
export function isScheduledRate(rate: { effectiveFrom: Date }, nowMs: number): boolean {
  return rate.effectiveFrom.getTime() > nowMs;
}

/** Strong ETag over the exact bytes served, so it changes exactly when the answer does. */
function strongEtagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/**
 * What every price-dependent answer says before the first tier exists (a fresh production
 * database: the demo seed is what adds tiers in development). A 404, not a 5xx: nothing is
 * broken, the price list is simply empty, and a monitoring poll of /formula must not page
 * anyone as a server error.
 */
export const NO_TIERS_MESSAGE =
  'No pricing tier has rates yet; an administrator must add one on the Rates page (/admin/rates).';

/** The `reason` a JSON client reads beside NO_TIERS_MESSAGE, to tell "no rates configured" from a wrong path. */
export const NO_TIERS_REASON = 'no_pricing_tiers';

/**
 * Nothing can be priced: no tier has rates in force yet. A 404 with NO_TIERS_MESSAGE, and in JSON
 * `reason: "no_pricing_tiers"`: a program polling /formula (or reading /me) sees the same 404 for
 * a mistyped path, and must not have to match the English sentence to know which it got.
 */
export class NoTiersError extends NotFoundError {
  constructor() {
    super(NO_TIERS_MESSAGE, { publicFields: { reason: NO_TIERS_REASON } });
  }
}

/**
 * Says when rates in force are in another currency than CURRENCY (it was changed after rates
 * were entered): receipts and /formula keep the rates' currency while usage pages show CURRENCY.
 * Re-entering a tier's rates records them in CURRENCY; undefined when every tier is in it.
 */
export async function describeRatesInOtherCurrency(db: Db, currency: string, now: Date): Promise<string | undefined> {
  const tiers = await ratesRepository.findTiersPricedInOtherCurrency(db, currency, now);
  if (tiers.length === 0) return undefined;
  const listed = tiers.map((tier) => `${tier.tier} (${tier.currency})`).join(', ');
  return `CURRENCY is ${currency}, but the rates in force for ${listed} were entered in another currency: receipts and /formula keep that currency, while the usage pages show those costs as ${currency}. Save those tiers' rates again on the Rates page (they are then recorded in ${currency}), or set CURRENCY back.`;
}

function buildSnapshot(
  tiers: ratesRepository.TierWithRates[],
  overrides: ReadonlyMap<string, string>,
  formerNames: RatesSnapshot['formerNames'],
  nowMs: number,
  deletedNames: RatesSnapshot['deletedNames'] = new Map(),
  formerNamesOfDeleted: RatesSnapshot['formerNamesOfDeleted'] = new Map(),
): RatesSnapshot {
  const views = new Map<string, TierView>();
  const formulas = new Map<string, FormulaDocument>();
  let validUntilMs = Number.POSITIVE_INFINITY;
  for (const tier of tiers) {
    const inForce = tier.rates.filter((rate) => !isScheduledRate(rate, nowMs)).at(-1);
    for (const rate of tier.rates) {
      if (isScheduledRate(rate, nowMs)) validUntilMs = Math.min(validUntilMs, rate.effectiveFrom.getTime());
    }
    const current = inForce
      ? {
          id: inForce.id,
          cpu: inForce.cpu,
          gpu: inForce.gpu,
          mem: inForce.mem,
          currency: inForce.currency,
          effectiveFrom: inForce.effectiveFrom,
        }
      : undefined;
    views.set(tier.name, { ...tier, current, history: tier.rates });
    if (current) {
      const body = JSON.stringify({
        type: tier.name,
        unit: 'per-hour',
        // Text, never a JSON number: 0.50 stays "0.50" and 0.1234 every digit it was stored with.
        rates: {
          cpu: rateJson(current.cpu, current.currency),
          gpu: rateJson(current.gpu, current.currency),
          mem: rateJson(current.mem, current.currency),
        },
        currency: current.currency,
      });
      formulas.set(tier.name, { body, etag: strongEtagOf(body) });
    }
  }
  // A tier with no rate in force cannot price anything, so it is not offered.
  const knownTiers = new Set([...views.values()].filter((tier) => tier.current).map((tier) => tier.name));
  const defaultTier =
    [...views.values()].find((tier) => tier.isDefault && tier.current)?.name ?? [...knownTiers][0] ?? '';
  return {
    tiers: views,
    knownTiers,
    defaultTier,
    formulas,
    validUntilMs,
    overrides,
    formerNames,
    deletedNames,
    formerNamesOfDeleted,
  };
}

/**
 * Tiers, rates and tier overrides, cached per process. `/formula` must answer thousands
 * of times a second and every /me page needs its user's tier, so a worker serves its
 * snapshot and asks the database at most once per PRICING_CACHE_CHECK_MS whether
 * anything changed: a one-row read of pricing_versions (bumped by triggers in the
 * writer's transaction), and a full reload only when that version moved. Receipts never
 * use the cache (getUserTierForBilling reads inside their transaction). The worker that made a change drops its cache at
 * once; the others follow within one check interval. A TTL alone would reload the
 * whole history on a timer and still be stale for a full TTL; LISTEN/NOTIFY would
 * hold a dedicated connection per worker for a table that changes a few times a year.
 */
type RateFields = Record<'cpu' | 'gpu' | 'mem', string>;
type InForce = Omit<ratesRepository.RateRow, 'createdAt'>;

/**
 * A 409 for rates typed over a page opened before someone else's change (`based_on` is no longer
 * the rates in force): saving them would put back, unnoticed, the rates the admin did not mean to
 * touch. Says what is in force now and who set it. `formRates` is what the form should show next:
 * the rates the admin changed from the page (typed differently from `based_on`'s) as typed, the
 * others as they are now, so that sending it again changes only what the admin meant to.
 */
export class StaleRatesError extends ConflictError {
  readonly formRates: RateFields;

  /**
   * `deleted`: the tier the page showed was deleted (who, when) and the one of that name now is
   * another, added since; `basedOn` is then the deleted tier's rates, as its audit entry kept them.
   * A page is told of its form; a script (`message`) of the based_on to send next, and gets the rates
   * in force as `current`, written as GET /admin/rates writes a tier's `current`.
   */
  constructor(
    tier: string,
    current: InForce | undefined,
    basedOn: Pick<InForce, 'cpu' | 'gpu' | 'mem'> | undefined,
    typed: Pick<TSetRates, 'cpu' | 'gpu' | 'mem' | 'based_on'>,
    timeZone: string,
    deleted?: { actor: string; at: Date },
  ) {
    const fields = ['cpu', 'gpu', 'mem'] as const;
    const text = (rate: Pick<InForce, 'cpu' | 'gpu' | 'mem'>, field: (typeof fields)[number]) => rate[field].toFixed();
    const ratesNow = (rate: InForce) =>
      `CPU core-hour ${text(rate, 'cpu')}, GPU-hour ${text(rate, 'gpu')}, Memory GB-hour ${text(rate, 'mem')}`;
    const keeps =
      'The form keeps the rates you changed and shows the others as they are now; check it and submit again.';
    const refused = `Rates of ${tier} not changed. `;
    const deletedBy = deleted && `${deleted.actor} at ${formatAuditTime(deleted.at, timeZone)}`;
    const changedBy =
      current &&
      `${current.createdBy ? ` by ${current.createdBy}` : ''} at ${formatLocalDateTime(current.effectiveFrom, timeZone)}`;
    const sentAs = `the rates sent as based_on (${typed.based_on})`;
    const sendAgain = current && `Check your change against them, then send it again with based_on ${current.id}.`;
    // Whose rates, in the message itself: a JSON client gets it without the page's heading.
    const page =
      refused +
      (current && deleted
        ? `The tier ${tier} this page showed was deleted by ${deletedBy} ` +
          `after it was opened, and the ${tier} there is now is another tier, added since: its rates are ${ratesNow(current)}. ${keeps}`
        : current
          ? `They were changed${changedBy} after this page was opened: now ${ratesNow(current)}. ${keeps}`
          : 'They were changed after this page was opened. Reload it and try again.');
    const script =
      refused +
      (current && deleted
        ? `The tier ${tier} of ${sentAs} was deleted by ${deletedBy}, and the ${tier} there is now is another ` +
          `tier, added since: its rates are ${ratesNow(current)} (rateId ${current.id}). ${sendAgain}`
        : current
          ? `They were changed${changedBy} after ${sentAs}: now ${ratesNow(current)} (rateId ${current.id}). ${sendAgain}`
          : `They were changed after ${sentAs}, and ${tier} has no rates in force now (only rates scheduled for later): ` +
            'send the change again without based_on if you still mean it.');
    super(script, undefined, {
      pageMessage: page,
      publicFields: {
        tier,
        current: current
          ? {
              rateId: current.id,
              cpu: rateJson(current.cpu, current.currency),
              gpu: rateJson(current.gpu, current.currency),
              mem: rateJson(current.mem, current.currency),
              currency: current.currency,
              effectiveFrom: current.effectiveFrom.toISOString(),
            }
          : null,
      },
    });
    const isTouched = (field: (typeof fields)[number]) => !basedOn?.[field].equals(typed[field]);
    this.formRates = Object.fromEntries(
      fields.map((field) => [field, isTouched(field) || !current ? typed[field].toFixed() : text(current, field)]),
    ) as RateFields;
  }
}

/**
 * A 409 for rates sent from a page opened before someone else renamed their tier: the form names
 * the tier by its old name, and `based_on` (the rates it was opened on) is one of the renamed
 * tier's. It was refused as an unknown tier, told to add it (a second tier under the old name,
 * which nobody is on), and the page, having no card of that name, dropped the rates typed.
 * `tier` is the name now, whose card shows the form again; JSON clients get it as `tier`.
 */
export class RenamedTierError extends ConflictError {
  constructor(
    readonly previousName: string,
    readonly tier: string,
    change: { actor: string; at: Date },
    timeZone: string,
  ) {
    const by = ` by ${change.actor} at ${formatAuditTime(change.at, timeZone)}`;
    super(
      `Rates of ${previousName} not changed. Tier ${previousName} was renamed to ${tier}${by} after this page ` +
        `was opened. The form of ${tier} keeps the rates you typed; check them and submit again.`,
      undefined,
      { publicFields: { tier } },
    );
  }
}

/**
 * Rates set, another tier made the default, a user moved to another tier, a tier renamed or a tier
 * added that rules or the fallback send users to, while a month-end run bills: the run makes one
 * receipt a user, each at the tier and rates in force as it is made, so a change then billed the users
 * it had reached at the old rates and the rest at the new ones, one month at two prices by the order of
 * their names, with nothing in the run's summary saying so. Refused (409) until the run has ended;
 * JSON clients get the run's `runId` and `statusUrl`. `refusal` says what was not done, `split` what
 * the change would have billed, `advice` what to do instead, each worded for its form.
 */
export class PricingDuringMonthEndError extends ConflictError {
  constructor(
    wording: { refusal: string; split: string; advice: string },
    run: { id: number; before: string; startedBy: string; startedAt: Date } | undefined,
    timeZone: string,
  ) {
    const which = run
      ? `Month-end run #${run.id} (up to ${run.before}, started by ${run.startedBy} at ${formatLocalDateTime(run.startedAt, timeZone)})`
      : 'A month-end run';
    const statusUrl = run ? `/admin/month-end/${run.id}` : undefined;
    super(
      `${wording.refusal}: ${which} is billing now, and ${wording.split}. ${wording.advice} once it has finished` +
        `${statusUrl ? ` (its page, ${statusUrl}, says when)` : ''}.`,
      undefined,
      { publicFields: run && statusUrl ? { runId: run.id, statusUrl } : {} },
    );
  }
}

/**
 * A 409 for a tier's name and description sent from a page opened before someone else changed its
 * description (`based_on_description` is no longer the description): saving would put the old text
 * back, unnoticed, as the Rates form would its rates (StaleRatesError). Says what it is now and who
 * changed it, when the audit log knows. `formDescription` is what the form should show next: the
 * text the admin typed when they changed it from the page's, else the description as it is now.
 */
export class StaleTierDescriptionError extends ConflictError {
  readonly formDescription: string;

  /** A page is told of its form; a script (`message`) what to send, with the description now as `description`. */
  constructor(
    tier: string,
    current: string,
    input: { description: string; basedOn: string },
    change: { actor: string; at: Date } | undefined,
    timeZone: string,
  ) {
    const isTouched = input.description !== input.basedOn;
    const by = change ? ` by ${change.actor} at ${formatAuditTime(change.at, timeZone)}` : '';
    const quoted = (text: string) => (text ? `“${text}”` : 'empty');
    const now = `now ${quoted(current)}.`;
    super(
      `Tier ${tier} not changed. Its description was changed${by} after the based_on_description sent ` +
        `(${quoted(input.basedOn)}): ${now} Check your text against it, then send it again with ` +
        'based_on_description set to the description now (description in this answer).',
      { field: 'description' },
      {
        pageMessage:
          `Tier ${tier} not changed. Its description was changed${by} after this page was opened: ${now} ` +
          (isTouched
            ? 'The form keeps the text you typed; check it and submit again.'
            : 'The form shows it as it is now; check it and submit again.'),
        publicFields: { tier, description: current },
      },
    );
    this.formDescription = isTouched ? input.description : current;
  }
}

/**
 * A 409 for a user's tier chosen on a Tier overrides page opened before someone else moved them
 * (`based_on_override` is no longer their override): saving would move them back over that change,
 * unnoticed, and the audit log would read as this admin's choice. Says where they are now and who
 * moved them, when the audit log knows.
 */
export class StaleOverrideError extends ConflictError {
  /** A page is told of its list; a script (`message`) of the based_on_override to send, with `override` now. */
  constructor(
    input: Pick<TSetOverride, 'username' | 'tier' | 'based_on_override'>,
    now: { override: string | undefined; naturalTier: string },
    change: { actor: string; at: Date } | undefined,
    timeZone: string,
  ) {
    // `at` is the audit entry's time: one changed by SQL to no date ('infinity') made this refusal a 500.
    const by = change ? ` by ${change.actor} at ${formatAuditTime(change.at, timeZone)}` : '';
    const where = now.override ? `${now.override} (override)` : `${now.naturalTier} (natural, no override)`;
    const refused = `${input.username} not moved to ${input.tier}. Their tier was changed${by}`;
    super(
      `${refused} after the based_on_override sent ("${input.based_on_override ?? ''}"): now ${where}. Check the move ` +
        `against it, then send it again with based_on_override "${now.override ?? ''}".`,
      { field: 'tier' },
      {
        pageMessage: `${refused} after this page was opened: now ${where}. The list shows it as it is now; check it and save again.`,
        publicFields: { username: input.username, override: now.override ?? null, naturalTier: now.naturalTier },
      },
    );
  }
}

/** The rates service: tiers, their rates and user overrides, and the cached pricing every request reads. */
export function createRatesService(deps: RatesServiceDeps) {
  const { config } = deps;
  const db = deps.db.prisma;
  const now = deps.now ?? (() => new Date());
  let cached: { snapshot: RatesSnapshot; version: string; checkedAtMs: number } | undefined;
  let inflight: Promise<RatesSnapshot> | undefined;
  // Bumped by invalidate(): a reload that started before a change must not be kept.
  let generation = 0;

  async function reload(): Promise<RatesSnapshot> {
    const startedGeneration = generation;
    const version = await ratesRepository.readPricingVersion(db);
    const nowMs = now().getTime();
    if (cached && cached.version === version && nowMs < cached.snapshot.validUntilMs) {
      cached.checkedAtMs = nowMs;
      return cached.snapshot;
    }
    // The former and deleted names too, read with the tiers (a rename, a deletion and a user's move bump
    // pricing_versions): /formula's refusal of such a name says what became of the tier without a query
    // per refused request.
    const [tiers, overrides, formerNames, deletedNames, formerNamesOfDeleted] = await Promise.all([
      ratesRepository.listTiersWithRates(db),
      ratesRepository.listOverrides(db),
      ratesRepository.listFormerTierNames(db),
      ratesRepository.listDeletedTierNames(db),
      ratesRepository.listFormerNamesOfDeletedTiers(db),
    ]);
    const snapshot = buildSnapshot(tiers, overrides, formerNames, nowMs, deletedNames, formerNamesOfDeleted);
    if (startedGeneration === generation) cached = { snapshot, version, checkedAtMs: nowMs };
    return snapshot;
  }

  /** Tiers and rates in force, from the cache when it is fresh. */
  async function getSnapshot(): Promise<RatesSnapshot> {
    const nowMs = now().getTime();
    if (cached && nowMs - cached.checkedAtMs < config.pricing.cacheCheckMs && nowMs < cached.snapshot.validUntilMs) {
      return cached.snapshot;
    }
    // Requests arriving while a check runs share it instead of each asking the database.
    inflight ??= reload().finally(() => {
      inflight = undefined;
    });
    return inflight;
  }

  /**
   * Tiers and rates as the database has them now, for the pages admins change them on (Edit rates, Tier
   * overrides): the version is read whatever PRICING_CACHE_CHECK_MS says (one row, and a reload only
   * when it moved), and the cache takes the result. With several workers the page a change redirects to
   * is often another worker's, whose cache may be that interval behind: after "Rates of gov saved" the
   * card showed the old rates (and their id, so saving it again was refused as a stale page), and a tier
   * just added was missing from the page and from Tier overrides' lists.
   */
  async function getCurrentSnapshot(): Promise<RatesSnapshot> {
    return reload();
  }

  function invalidate() {
    generation += 1;
    cached = undefined;
    inflight = undefined;
  }

  /**
   * The public formula document of a tier (the default tier when none is named); unknown
   * tier -> 400; no tier at all yet -> 404, whatever was asked for.
   */
  async function getFormula(tierName: string | undefined): Promise<FormulaDocument & { tier: string }> {
    const snapshot = await getSnapshot();
    if (snapshot.knownTiers.size === 0) throw new NoTiersError();
    const tier = tierName ?? snapshot.defaultTier;
    const formula = snapshot.formulas.get(tier);
    if (!formula) {
      const known = `Known tiers: ${[...snapshot.knownTiers].join(', ')}.`;
      const renamed = snapshot.formerNames.get(tier);
      const deleted = snapshot.deletedNames.get(tier);
      const renamedGone = snapshot.formerNamesOfDeleted.get(tier);
      // Whichever came last is what became of the name: a tier renamed away, then another of that name deleted.
      const last = [renamed?.entryId, deleted?.entryId, renamedGone?.entryId].reduce<bigint>(
        (latest, id) => (id !== undefined && id > latest ? id : latest),
        -1n,
      );
      if (deleted?.entryId === last) throw deletedTierError(snapshot, tier, deleted);
      // Renamed away and deleted under its new name: it answered as a name no tier ever had.
      if (renamedGone?.entryId === last) {
        // Where its users went is known from the deletion of that name only if it was this tier's.
        const deletion = snapshot.deletedNames.get(renamedGone.name);
        const movedTo = deletion?.entryId === renamedGone.deletedEntryId ? deletion.movedTo : [];
        throw deletedTierError(
          snapshot,
          tier,
          { at: renamedGone.deletedAt, entryId: renamedGone.deletedEntryId, movedTo },
          renamedGone.name,
        );
      }
      // A client still asking by a renamed tier's old name is told its name now, as the admins' forms
      // say it; not who renamed it or when, which they add: /formula is public.
      const renamedTo = renamed?.name;
      if (renamedTo !== undefined && snapshot.knownTiers.has(renamedTo)) {
        throw new AppError(400, `Unknown tier "${tier}": it was renamed to ${renamedTo}. ${known}`, undefined, {
          publicFields: { renamedTo },
        });
      }
      // `Private` for private: said to be lower case, not read as private (tierNameCaseNote says why).
      const caseNote = tierNameCaseNote(tier, snapshot.knownTiers);
      throw new BadRequestError(`Unknown tier "${tier}"${caseNote}. ${known}`, {
        knownTiers: [...snapshot.knownTiers],
      });
    }
    return { ...formula, tier };
  }

  /**
   * /formula's refusal of a deleted tier's name (400, as an unknown tier): when it was deleted (not by
   * whom: /formula is public), and the tier to ask for instead when every user placed on it was moved to
   * one tier that prices now. It said "Unknown tier" alone, as of a name no tier ever had, and a poller
   * could not tell a tier gone from a typo.
   */
  function deletedTierError(
    snapshot: RatesSnapshot,
    tier: string,
    deleted: ratesRepository.DeletedTierName,
    /** The name it was deleted under, when it was renamed away from `tier` first. */
    renamedTo?: string,
  ) {
    const known = `Known tiers: ${[...snapshot.knownTiers].join(', ')}.`;
    // Named as they were then: a tier renamed since is asked for by its name now.
    const nowNamed = new Set(
      deleted.movedTo.map((name) =>
        snapshot.knownTiers.has(name) ? name : (snapshot.formerNames.get(name)?.name ?? name),
      ),
    );
    const [only] = nowNamed;
    const useInstead = nowNamed.size === 1 && only !== undefined && snapshot.knownTiers.has(only) ? only : undefined;
    const instead =
      useInstead === undefined
        ? ''
        : `; the users placed on it were moved to ${useInstead} before, so ask for /formula?type=${useInstead} instead`;
    return new AppError(
      400,
      `Unknown tier "${tier}": it was ${renamedTo === undefined ? '' : `renamed to ${renamedTo} and then `}deleted at ` +
        `${formatLocalDateTime(deleted.at, config.timeZone)} (${config.timeZone})${instead}. ${known}`,
      undefined,
      {
        publicFields: {
          ...(renamedTo === undefined ? {} : { renamedTo }),
          deletedAt: deleted.at.toISOString(),
          ...(useInstead === undefined ? {} : { useInstead }),
        },
      },
    );
  }

  /**
   * The public price list: every tier that can price now or has rates scheduled, with the
   * default marked. Empty before the first tier, which the page says in words instead of a 404:
   * a person opened it, and the page still explains how a cost is computed.
   */
  async function getPriceList(): Promise<{ tiers: PriceListTier[]; cpuBasis: AppConfig['pricing']['cpuBasis'] }> {
    const snapshot = await getSnapshot();
    const nowMs = now().getTime();
    // Decimal's toFixed() without digits is the stored value exactly (0.123456 stays 0.123456).
    const toText = (rate: Rates & { effectiveFrom: Date }): PriceListRates => ({
      cpu: rate.cpu.toFixed(),
      gpu: rate.gpu.toFixed(),
      mem: rate.mem.toFixed(),
      currency: rate.currency,
      effectiveFrom: rate.effectiveFrom,
      isScheduled: isScheduledRate(rate, nowMs),
    });
    const tiers = [...snapshot.tiers.values()]
      .map((tier) => ({
        name: tier.name,
        description: tier.description,
        isDefault: tier.name === snapshot.defaultTier,
        current: tier.current ? toText(tier.current) : undefined,
        upcoming: tier.history.filter((rate) => isScheduledRate(rate, nowMs)).map(toText),
      }))
      .filter((tier) => tier.current || tier.upcoming.length > 0);
    return { tiers, cpuBasis: config.pricing.cpuBasis };
  }

  /**
   * The admin Rates page: every tier with its whole rate history, each row marked when it is
   * scheduled as the price list marks it, and the tiers the rules name that cannot price yet.
   */
  async function getAdminRates(): Promise<{
    tiers: AdminRatesTier[];
    ruleTiers: { tier: string; patterns: string[] }[];
  }> {
    const snapshot = await getCurrentSnapshot();
    const nowMs = now().getTime();
    const overrideUsernames = (tierName: string) =>
      [...snapshot.overrides].filter(([, name]) => name === tierName).map(([username]) => username);
    const tiers = [...snapshot.tiers.values()].map((tier) => {
      // "Default" as pricing applies it: the marked tier, else the one buildSnapshot falls back to.
      const isDefault = tier.name === snapshot.defaultTier;
      return {
        ...tier,
        isDefault,
        history: tier.history.map((rate) => ({ ...rate, isScheduled: isScheduledRate(rate, nowMs) })),
        // As the page is opened: deleteTier decides afresh, for a page opened before a user was placed on it.
        deletionBlockers: deletionBlockersOf({
          isDefault,
          overrideUsernames: overrideUsernames(tier.name).sort(),
          rulePatterns: rulePatternsFor(tier.name),
        }),
      };
    });
    return { tiers, ruleTiers: listMissingRuleTiers(snapshot) };
  }

  function tierOf(snapshot: RatesSnapshot, username: string, override: string | undefined): UserTier {
    const effective = resolveEffectiveTier({
      username,
      override,
      rules: config.pricing.tierRules,
      knownTiers: snapshot.knownTiers,
      defaultTier: snapshot.defaultTier,
    });
    const rates = snapshot.tiers.get(effective.tier)?.current;
    if (!rates) throw new NoTiersError();
    return { ...effective, override, rates };
  }

  /** A user's effective tier and the rates in force for it now. */
  async function getUserTier(username: string): Promise<UserTier> {
    const snapshot = await getSnapshot();
    return tierOf(snapshot, username, snapshot.overrides.get(username));
  }

  /** Effective tiers of many users at once. */
  async function getUserTiers(usernames: string[]): Promise<Map<string, UserTier>> {
    const snapshot = await getSnapshot();
    return new Map(
      usernames.map((username) => [username, tierOf(snapshot, username, snapshot.overrides.get(username))]),
    );
  }

  /** Per-user rates for SQL estimates: the given users, or every known user when omitted. */
  async function getRateTable(usernames?: string[]): Promise<RateTableRow[]> {
    const names = usernames ?? (await ratesRepository.listKnownUsernames(db));
    const tiers = await getUserTiers(names);
    return [...tiers].map(([username, tier]) => ({
      username,
      tier: tier.tier,
      cpu: tier.rates.cpu,
      gpu: tier.rates.gpu,
      mem: tier.rates.mem,
    }));
  }

  /**
   * The tier and rates a receipt locks in, read inside its transaction from the
   * database rather than the cache, so a receipt never uses rates a second stale.
   */
  async function getUserTierForBilling(tx: Prisma.TransactionClient, username: string, at: Date): Promise<BillingTier> {
    // Called after holdPricingForBilling, with `at` taken after it: see there.
    const snapshot = buildSnapshot(await ratesRepository.listTiersWithRates(tx), new Map(), new Map(), at.getTime());
    const ratesOf = (id: number) => {
      for (const tier of snapshot.tiers.values()) {
        const rates = tier.history.find((rate) => rate.id === id);
        if (rates) return { tier: tier.name, rates };
      }
      return undefined;
    };
    return { ...tierOf(snapshot, username, await ratesRepository.findOverride(tx, username)), ratesOf };
  }

  /** Sets new rates for a tier from now on (a new row; history is kept); audited in the same transaction. */
  async function setRates(actor: AuditContext, input: TSetRates) {
    try {
      const result = await db.$transaction(async (tx) => {
        await ratesRepository.lockPricingForChange(tx);
        const tierId = await ratesRepository.lockTierByName(tx, input.type);
        // Taken once the receipts in flight have committed (lockPricingForChange) and the tier is
        // ours: taken before, it dated the new rates before a receipt that billed at the old ones.
        const effectiveFrom = now();
        if (tierId === undefined) {
          // A form opened before its tier was renamed: its rates say which tier it meant, and the
          // audit log that the tier had this name (not a script's typo beside another tier's rates).
          const tier =
            input.based_on === undefined ? undefined : await ratesRepository.findTierOfRate(tx, input.based_on);
          const rename = tier && (await ratesRepository.findRenameChange(tx, tier.id, input.type));
          if (tier && rename) throw new RenamedTierError(input.type, tier.name, rename, config.timeZone);
          // Setting rates never adds a tier: a name mistyped in a script would otherwise become a
          // tier that users can be put on and billed with.
          throw await unknownTierError(
            tx,
            input.type,
            'Setting rates does not add a tier: add it on the Rates page (/admin/rates).',
          );
        }
        const previous = await ratesRepository.findRateInForce(tx, tierId, effectiveFrom);
        const isUnchanged =
          previous !== undefined &&
          previous.currency === config.currency &&
          previous.cpu.equals(input.cpu) &&
          previous.gpu.equals(input.gpu) &&
          previous.mem.equals(input.mem);
        if (!isUnchanged && input.based_on !== undefined && previous?.id !== input.based_on) {
          const basedOn = await ratesRepository.findTierRate(tx, tierId, input.based_on);
          if (!basedOn) await refuseRatesOfTierReplaced(tx, input, input.based_on, previous);
          // Rates of another tier (a script's mix-up) or none: a stale page it is not, and the 409's
          // "changed by demo-seed at 2020-01-01 after this page was opened" named a change no one made.
          if (!basedOn) {
            const inForce = previous ? ` (its rates in force are ${previous.id})` : '';
            throw new InvalidFieldsError(
              {
                based_on: `${input.based_on} names no rates of ${input.type}${inForce}: send the rateId of the ${input.type} rates the change starts from, or leave it out`,
              },
              TIER_FIELD_LABELS,
            );
          }
          throw new StaleRatesError(input.type, previous, basedOn, input, config.timeZone);
        }
        // Rates scheduled for later (SQL) still take over at their time: the answer says until when these apply.
        const next = await ratesRepository.findNextScheduledRate(tx, tierId, effectiveFrom);
        const scheduled = next
          ? {
              cpu: rateJson(next.cpu, next.currency),
              gpu: rateJson(next.gpu, next.currency),
              mem: rateJson(next.mem, next.currency),
              currency: next.currency,
              effectiveFrom: next.effectiveFrom.toISOString(),
              createdBy: next.createdBy,
            }
          : null;
        if (isUnchanged) {
          // A double submit or a form sent back as it was: a new history row and audit entry
          // saying 0.5 -> 0.5 would only hide the real changes.
          return {
            type: input.type,
            cpu: rateJson(previous.cpu, previous.currency),
            gpu: rateJson(previous.gpu, previous.currency),
            mem: rateJson(previous.mem, previous.currency),
            currency: previous.currency,
            effectiveFrom: previous.effectiveFrom.toISOString(),
            isChanged: false,
            scheduled,
          };
        }
        await refuseDuringMonthEnd(tx, {
          refusal: `Rates of ${input.type} not changed`,
          split:
            'rates changed during it would bill the users it has already billed at the old rates and the others at the new ones',
          advice: 'Set them',
        });
        const rate = await ratesRepository.insertRate(tx, {
          tierId,
          cpu: input.cpu,
          gpu: input.gpu,
          mem: input.mem,
          currency: config.currency,
          effectiveFrom,
          createdBy: actor.actor,
        });
        const updated = {
          type: input.type,
          cpu: rateJson(input.cpu, config.currency),
          gpu: rateJson(input.gpu, config.currency),
          mem: rateJson(input.mem, config.currency),
          currency: config.currency,
          effectiveFrom: effectiveFrom.toISOString(),
          isChanged: true,
          scheduled,
        };
        await appendAudit(tx, {
          ...actor,
          action: 'pricing.rates.set',
          target: `tier:${input.type}`,
          status: 'ok',
          details: {
            rateId: rate.id,
            // With their currency: saved again after a change of CURRENCY, the figures alone read as no change.
            previous: previous
              ? {
                  cpu: previous.cpu.toFixed(),
                  gpu: previous.gpu.toFixed(),
                  mem: previous.mem.toFixed(),
                  currency: previous.currency,
                }
              : null,
            next: {
              cpu: input.cpu.toFixed(),
              gpu: input.gpu.toFixed(),
              mem: input.mem.toFixed(),
              currency: config.currency,
            },
          },
        });
        return updated;
      }, WAITS_FOR_RECEIPTS);
      return result;
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError('These rates were changed at the same moment by someone else; try again.');
      }
      throw error;
    } finally {
      invalidate();
    }
  }

  /**
   * Throws PricingDuringMonthEndError while a month-end run holds its lock. Called under the pricing
   * lock the change holds until it commits: a run starting after this check bills every user after
   * the change, its receipts waiting for it.
   */
  async function refuseDuringMonthEnd(
    tx: Prisma.TransactionClient,
    wording: ConstructorParameters<typeof PricingDuringMonthEndError>[0],
  ): Promise<void> {
    if (!(await receiptsRepository.isMonthEndLockHeldIn(tx))) return;
    const run = await monthEndRunsRepository.findRunningRun(tx);
    throw new PricingDuringMonthEndError(
      wording,
      run
        ? {
            id: run.id,
            before: run.billedThrough.toISOString().slice(0, 10),
            startedBy: run.startedBy,
            startedAt: run.startedAt,
          }
        : undefined,
      config.timeZone,
    );
  }

  /**
   * Throws when `based_on`, no rates of the tier named `type` now, is rates of the tier that had that
   * name when the page was opened: renamed since (RenamedTierError, its card keeps the rates typed) or
   * deleted (StaleRatesError), another tier given the name after it. Both were refused as a form that
   * "came back altered", shown in the new tier's card with "submit it again to set them": sent again,
   * the rates typed for the old tier replaced all three of the new one's.
   */
  async function refuseRatesOfTierReplaced(
    tx: Prisma.TransactionClient,
    input: TSetRates,
    basedOnId: number,
    current: InForce | undefined,
  ): Promise<void> {
    const replaced = await findTierReplaced(tx, input.type, basedOnId);
    if (replaced?.renamedTo !== undefined) {
      throw new RenamedTierError(input.type, replaced.renamedTo, replaced.change, config.timeZone);
    }
    if (replaced?.deletedRates) {
      throw new StaleRatesError(input.type, current, replaced.deletedRates, input, config.timeZone, replaced.change);
    }
  }

  /**
   * What became of the tier whose rates `basedOnId` are, when it no longer has the name `type` a page
   * showed it under: renamed since (`renamedTo`), or deleted (`deletedRates`, as its audit entry kept
   * them), with who did it and when; undefined when neither (the rates are no tier's that had the name).
   */
  async function findTierReplaced(
    tx: Prisma.TransactionClient,
    type: string,
    basedOnId: number,
  ): Promise<
    | { renamedTo: string; deletedRates?: undefined; change: { actor: string; at: Date } }
    | { renamedTo?: undefined; deletedRates: Pick<InForce, 'cpu' | 'gpu' | 'mem'>; change: { actor: string; at: Date } }
    | undefined
  > {
    const tier = await ratesRepository.findTierOfRate(tx, basedOnId);
    if (tier) {
      const rename = await ratesRepository.findRenameChange(tx, tier.id, type);
      return rename && { renamedTo: tier.name, change: rename };
    }
    const deleted = await ratesRepository.findDeletedTierRate(tx, type, basedOnId);
    return deleted && { deletedRates: deleted, change: deleted };
  }

  /**
   * Refuses a deletion, a change of the default, a rename or description, or a move of user `move`
   * on Tier overrides, whose `based_on` (the rates its page showed) is no rates of the tier named
   * `type` now: the tier the page showed was renamed or deleted since, and another tier given its
   * name. The forms sent the name alone, and deleted that other tier with its rate history, priced
   * every user of the default tier with it, renamed or described it, or put a user on it. A
   * `based_on` of no tier that had the name is a 400, as the rates form's is. The 409's `details`
   * say `tierReplaced` (the Rates page shows it at its top, not in the other tier's card) and, for a
   * move, the field it is about (`tier`, the user's row).
   */
  async function refuseTierReplaced(
    tx: Prisma.TransactionClient,
    type: string,
    basedOnId: number,
    action: 'delete' | 'default' | 'edit' | { move: string },
  ): Promise<never> {
    const replaced = await findTierReplaced(tx, type, basedOnId);
    if (replaced) {
      const { change } = replaced;
      const what = replaced.renamedTo !== undefined ? `renamed to ${replaced.renamedTo}` : 'deleted';
      const [refused, instead] =
        action === 'delete'
          ? [`Tier ${type} was not deleted`, 'delete it from its own card']
          : action === 'default'
            ? [`${type} was not made the default tier`, 'make it the default from its own card']
            : action === 'edit'
              ? [`Tier ${type} was not renamed or described`, 'rename or describe it from its own card']
              : [`${action.move} not moved to ${type}`, 'choose it again from the list as it is now'];
      throw new ConflictError(
        `${refused}: the ${type} this page showed was ${what} by ${change.actor} at ` +
          `${formatAuditTime(change.at, config.timeZone)} after it was opened, and the ${type} there is now is ` +
          `another tier, added since; ${instead} if you mean to.`,
        typeof action === 'object' ? { tierReplaced: true, field: 'tier' } : { tierReplaced: true },
      );
    }
    throw new InvalidFieldsError(
      { based_on: `${basedOnId} names no rates of ${type}: send the rateId of its rates, or leave it out` },
      TIER_FIELD_LABELS,
    );
  }

  /** The tiers there are, and the sentence a refusal of an unknown tier lists them in. */
  async function listKnownTiers(client: Db | Prisma.TransactionClient): Promise<{ names: string[]; known: string }> {
    const names = await ratesRepository.listTierNames(client);
    return { names, known: names.length > 0 ? `Known tiers: ${names.join(', ')}.` : 'No tier exists yet.' };
  }

  /**
   * Why a tier without rates in force cannot take a user: when its first scheduled rates take over,
   * or that it has none, with the tiers that can be chosen instead.
   */
  function noRatesInForceReason(tier: TierView, snapshot: RatesSnapshot): string {
    const first = tier.history.reduce<Date | undefined>(
      (earliest, rate) => (earliest === undefined || rate.effectiveFrom < earliest ? rate.effectiveFrom : earliest),
      undefined,
    );
    const others =
      snapshot.knownTiers.size > 0
        ? ` Tiers with rates in force: ${[...snapshot.knownTiers].join(', ')}.`
        : ' No tier has rates in force yet.';
    return first
      ? `${tier.name} has no rates in force yet (its first rates take effect at ${formatLocalDateTime(first, config.timeZone)}), ` +
          `so no user can be placed on it before then.${others}`
      : `${tier.name} has no rates yet, so no user can be placed on it; set its rates on the Rates page (/admin/rates) first.${others}`;
  }

  /** A 400 for a tier name that names no tier, listing those that exist; `hint` says what to do instead. */
  async function unknownTierError(tx: Prisma.TransactionClient, name: string, hint = ''): Promise<InvalidFieldsError> {
    const { names, known } = await listKnownTiers(tx);
    const { note, renamed } = await fateOfTierName(tx, name);
    // A tier renamed is not to be added again: the hint (add it) is for a name no tier has had since.
    return new InvalidFieldsError(
      {
        type: `unknown tier "${name}"${note || tierNameCaseNote(name, names)}. ${known}${hint && !renamed ? ` ${hint}` : ''}`,
      },
      TIER_FIELD_LABELS,
      // `renamedTo`: the name the tier has now, whose card a page shows the refused form in.
      { knownTiers: names, renamedTo: renamed?.name },
    );
  }

  /**
   * Why a form names a tier that does not exist, when the reason is that another admin renamed or
   * deleted it after the page was opened (": it was renamed to uni by ops at ...", ": it was deleted
   * by ops at ..."), as the audit log says; '' otherwise. Such a form was refused as naming an
   * unknown tier, with no word of what became of the tier the admin had just seen.
   */
  async function fateOfTierName(
    client: Db | Prisma.TransactionClient,
    name: string,
  ): Promise<{ note: string; renamed?: { name: string } }> {
    const { renamed, deleted } = await findLastChangeOfTierName(client, name);
    const at = (when: Date) => formatAuditTime(when, config.timeZone);
    if (deleted) return { note: `: it was deleted by ${deleted.actor} at ${at(deleted.at)}` };
    if (renamed)
      return { note: `: it was renamed to ${renamed.name} by ${renamed.actor} at ${at(renamed.at)}`, renamed };
    return { note: '' };
  }

  /**
   * What the audit log last says became of the tier name `name`: a rename of it away (with the
   * tier under its name now) or a deletion, whichever is later; neither when the log has none.
   */
  async function findLastChangeOfTierName(client: Db | Prisma.TransactionClient, name: string) {
    // One after the other: the client may be a transaction's.
    const renamed = await ratesRepository.findRenamedTier(client, name);
    const deleted = await ratesRepository.findTierDeletion(client, name);
    // The later of the two is what became of the name: a tier renamed away, then another of that name deleted.
    return deleted && (!renamed || deleted.entryId > renamed.entryId) ? { deleted } : { renamed };
  }

  /**
   * What the audit log says became of a tier name no tier has now, with the times as the app writes
   * them: renamed (to the name that tier has now) or deleted, whichever is later; neither when the
   * log has none. For a filter by a name receipts keep (/admin/usage's Tier), to say what it is now.
   */
  async function whatBecameOfTierName(
    name: string,
  ): Promise<{ renamed?: { name: string; actor: string; at: string }; deleted?: { actor: string; at: string } }> {
    const { renamed, deleted } = await findLastChangeOfTierName(db, name);
    const at = (when: Date) => formatAuditTime(when, config.timeZone);
    if (deleted) return { deleted: { actor: deleted.actor, at: at(deleted.at) } };
    if (renamed) return { renamed: { name: renamed.name, actor: renamed.actor, at: at(renamed.at) } };
    return {};
  }

  /** The PRICING_TIER_RULES patterns that send usernames to `tierName`, in rule order. */
  function rulePatternsFor(tierName: string): string[] {
    return config.pricing.tierRules.filter((rule) => rule.tier === tierName).map((rule) => rule.pattern.source);
  }

  /**
   * Tiers PRICING_TIER_RULES names that cannot price yet (missing, or without rates in
   * force), with their patterns: resolveEffectiveTier skips those rules, so the users they
   * describe are on the default tier until an admin adds the tier.
   */
  function listMissingRuleTiers(snapshot: RatesSnapshot): { tier: string; patterns: string[] }[] {
    const names = [...new Set(config.pricing.tierRules.map((rule) => rule.tier))];
    return names
      .filter((name) => !snapshot.knownTiers.has(name))
      .map((name) => ({ tier: name, patterns: rulePatternsFor(name) }));
  }

  /**
   * The tier `input` would add, when it was added already with these very rates and description and
   * nothing has changed it since (Add a tier sent again after Back, from a second tab, or a request
   * retried): done already, as a rename or a deletion sent again is, not a name another tier has.
   * Any other rates or description are another tier's, refused as a taken name. A tier whose first
   * rates were written in SQL (no one named) is not the admin's own.
   */
  async function findSameTierAdded(tx: Prisma.TransactionClient, input: TCreateTier) {
    const tier = await ratesRepository.lockTierForChange(tx, input.name);
    if (!tier || tier.description !== input.description) return undefined;
    const first = await ratesRepository.findOnlyRateOfTier(tx, tier.id);
    const isSameFirstRate =
      first?.currency === config.currency &&
      first.cpu.equals(input.cpu) &&
      first.gpu.equals(input.gpu) &&
      first.mem.equals(input.mem);
    if (!isSameFirstRate || !first.createdBy) return undefined;
    return {
      name: tier.name,
      isDefault: tier.isDefault,
      rulePatterns: rulePatternsFor(tier.name),
      isChanged: false as const,
      addedBefore: { by: first.createdBy, at: first.effectiveFrom },
    };
  }

  /**
   * Adds a tier with its first rates, in force from now, and the audit entry, in one
   * transaction. The first tier of all becomes the default tier: without one nothing can be
   * priced. Names are unique by pricing_tiers_name_key, so of two admins adding the same
   * name at once the second gets a 409 from the index, not from a check that both could pass.
   */
  async function createTier(actor: AuditContext, input: TCreateTier) {
    try {
      return await db.$transaction(async (tx) => {
        // As a rate change: a tier PRICING_TIER_RULES names moves the users it matches onto it from
        // its first rates' time, which comes after the receipts in flight (they billed the old tier).
        await ratesRepository.lockPricingForChange(tx);
        const effectiveFrom = now();
        await ratesRepository.lockTiersForChange(tx);
        const addedBefore = await findSameTierAdded(tx, input);
        if (addedBefore) return addedBefore;
        const isDefault = (await ratesRepository.countTiers(tx)) === 0;
        const tier = await ratesRepository.insertTier(tx, {
          name: input.name,
          description: input.description,
          isDefault,
        });
        const rate = await ratesRepository.insertRate(tx, {
          tierId: tier.id,
          cpu: input.cpu,
          gpu: input.gpu,
          mem: input.mem,
          currency: config.currency,
          effectiveFrom,
          createdBy: actor.actor,
        });
        const rulePatterns = rulePatternsFor(input.name);
        // Checked once the tier is in, so a taken name is refused as such. A tier rules send users to,
        // or the one pricing falls back to when no other prices yet, takes its users from now on: during
        // a run, the users it had reached stayed where they were and the rest were billed with it. A
        // tier neither is prices no one until a user is moved onto it (refused during a run too), so it
        // is added during a run; the same holds for deleting a tier, which no one may be on.
        if (rulePatterns.length > 0) {
          await refuseDuringMonthEnd(tx, {
            refusal: `Tier ${input.name} not added`,
            split:
              `PRICING_TIER_RULES sends usernames matching ${rulePatterns.join(' or ')} to it, so those it has ` +
              `already billed would be at their tier's rates and the others at ${input.name}'s`,
            advice: `Add ${input.name}`,
          });
        } else if ((await readTiersNow(tx)).defaultTier === input.name) {
          await refuseDuringMonthEnd(tx, {
            refusal: `Tier ${input.name} not added`,
            split: `no tier prices anyone yet, so ${input.name} would price the users it has not reached yet and none of those it has`,
            advice: `Add ${input.name}`,
          });
        }
        await appendAudit(tx, {
          ...actor,
          action: 'pricing.tier.create',
          target: `tier:${input.name}`,
          status: 'ok',
          details: {
            tierId: tier.id,
            rateId: rate.id,
            isDefault,
            description: input.description,
            rates: { cpu: input.cpu.toFixed(), gpu: input.gpu.toFixed(), mem: input.mem.toFixed() },
            currency: config.currency,
            // The users PRICING_TIER_RULES sends to it move onto it now, and their prices with them: the
            // entry says by which patterns, as the setting itself is audited nowhere.
            ...(rulePatterns.length > 0 ? { rulePatterns } : {}),
          },
        });
        return { name: input.name, isDefault, rulePatterns };
      }, WAITS_FOR_RECEIPTS);
    } catch (error) {
      const index = uniqueViolationOf(error);
      if (index !== undefined && !index.includes('one_default')) {
        const taken = `A tier named "${input.name}" already exists, so nothing was added. To change its rates, `;
        // A script has no form of the tier's: it is told the request that changes them.
        throw new ConflictError(
          `${taken}send POST /admin/rates with type "${input.name}" and its cpu, gpu and mem (GET /admin/rates gives those in force).`,
          { field: 'name' },
          { pageMessage: `${taken}use its own form.` },
        );
      }
      if (index !== undefined) {
        throw new ConflictError('Another tier was added at the same moment; nothing was added. Try again.');
      }
      throw error;
    } finally {
      invalidate();
    }
  }

  /**
   * A new tier's form refused for its other fields, with the reason its name would be refused too
   * when another tier has it: said one at a time, the admin fixed a rate and only then heard the
   * name was taken. The error itself when the name is free (or already refused).
   */
  async function withTakenTierName(error: InvalidFieldsError, name: string | undefined): Promise<InvalidFieldsError> {
    const typed = name?.trim();
    if (!typed || 'name' in error.fields || !(await ratesRepository.findTierByName(db, typed))) return error;
    const taken = `a tier named "${typed}" already exists (to change its rates, `;
    return new InvalidFieldsError(
      { name: `${taken}send POST /admin/rates with type "${typed}")`, ...error.fields },
      TIER_FIELD_LABELS,
      {},
      { name: `${taken}use its own form)` },
    );
  }

  /**
   * Renames a tier or changes its description, with the audit entry, in one transaction. The
   * tier keeps its id, so its rate history and the users placed on it by override follow the
   * new name; receipts keep the name they copied. A taken name is refused by the unique index
   * (409), not by a check two admins could both pass. Saving the name and description the tier
   * already has changes nothing and writes no audit entry.
   */
  async function editTier(actor: AuditContext, input: TEditTier) {
    try {
      return await db.$transaction(async (tx) => {
        // As a rate change: a receipt in flight reads the tiers, then the user's override by tier
        // name, in two statements; a rename committing between them left the override naming a
        // tier the receipt had not read, which pricing skips, and billed the user on another tier.
        // It also moves the users a rule naming the new name matches. Taken before the tiers'
        // lock, as adding a tier and moving the default take them, so the three never deadlock. A
        // description alone changes no price and does not wait for a month-end's receipts.
        if (input.name !== input.type) await ratesRepository.lockPricingForChange(tx);
        await ratesRepository.lockTiersForChange(tx);
        const tier = await ratesRepository.lockTierForChange(tx, input.type);
        if (!tier) {
          // The same rename sent again once made (a double click on Save, two tabs): done already,
          // not an unknown tier. Only with the description it has now: any other was not saved.
          const renamed =
            input.name === input.type ? undefined : (await findLastChangeOfTierName(tx, input.type)).renamed;
          if (
            renamed?.name === input.name &&
            (input.description === undefined || input.description === renamed.description)
          ) {
            return {
              previous: input.type,
              name: input.name,
              isRenamed: false,
              isDescribed: false,
              previousRulePatterns: rulePatternsFor(input.type),
              rulePatterns: rulePatternsFor(input.name),
              isChanged: false,
              renamedBefore: { by: renamed.actor, at: renamed.at },
            };
          }
          throw await unknownTierError(tx, input.type);
        }
        // A page opened before the tier it showed was renamed or deleted and another given its name.
        if (input.based_on !== undefined && !(await ratesRepository.findTierRate(tx, tier.id, input.based_on))) {
          await refuseTierReplaced(tx, input.type, input.based_on, 'edit');
        }
        const next = { name: input.name, description: input.description ?? tier.description };
        const basedOn = input.based_on_description;
        // Saving would overwrite a description changed since the form was opened with another text.
        if (basedOn !== undefined && basedOn !== tier.description && next.description !== tier.description) {
          throw new StaleTierDescriptionError(
            tier.name,
            tier.description,
            { description: next.description, basedOn },
            await ratesRepository.findDescriptionChange(tx, tier.id, tier.description),
            config.timeZone,
          );
        }
        const outcome = {
          previous: tier.name,
          name: next.name,
          isRenamed: next.name !== tier.name,
          isDescribed: next.description !== tier.description,
          // Rules name tiers by name: a rename moves the users they match, which the admin must hear.
          previousRulePatterns: rulePatternsFor(tier.name),
          rulePatterns: rulePatternsFor(next.name),
        };
        if (!outcome.isRenamed && !outcome.isDescribed) return { ...outcome, isChanged: false };
        // Updated first, so a taken name is refused as such; the rules check below rolls it back.
        await ratesRepository.updateTier(tx, tier.id, next);
        // Rules naming a tier that no longer exists are skipped, so without a rule for the new name
        // the rule's users would silently fall to the default tier and be billed at its rates.
        if (outcome.isRenamed && outcome.previousRulePatterns.length > 0 && outcome.rulePatterns.length === 0) {
          throw new ConflictError(
            `Tier ${tier.name} was not renamed: PRICING_TIER_RULES sends usernames matching ` +
              `${outcome.previousRulePatterns.join(' or ')} to it, and no rule names ${next.name}, so those users ` +
              `would be priced with the default tier. Add the same rules for ${next.name} to PRICING_TIER_RULES ` +
              `(a rule naming a tier that does not exist yet is skipped) and restart, then rename.`,
            { field: 'name' },
          );
        }
        // Receipts copy the tier's name, and rules name tiers by name: during a run, a rename named one
        // tier two ways in one month's receipts, and moved the users rules send to the new name partway.
        // A description alone is on no receipt and moves no one, so it is saved during a run.
        if (outcome.isRenamed) {
          const moves =
            outcome.rulePatterns.length > 0
              ? `, and PRICING_TIER_RULES would move the usernames matching ${outcome.rulePatterns.join(' or ')} ` +
                'onto it partway through'
              : '';
          await refuseDuringMonthEnd(tx, {
            refusal: `${tier.name} not renamed to ${next.name}`,
            split:
              `the receipts it has made so far name the tier ${tier.name} and those still to come would name it ` +
              `${next.name}${moves}`,
            advice: 'Rename it',
          });
        }
        await appendAudit(tx, {
          ...actor,
          action: 'pricing.tier.update',
          target: `tier:${tier.name}`,
          status: 'ok',
          details: {
            tierId: tier.id,
            previous: { name: tier.name, description: tier.description },
            next,
            // A rename moves the users the rules naming the new name match onto it (and those naming the
            // old name off it, were it allowed): which patterns applied, before and after.
            ...(outcome.isRenamed && (outcome.previousRulePatterns.length > 0 || outcome.rulePatterns.length > 0)
              ? { rulePatterns: { previous: outcome.previousRulePatterns, next: outcome.rulePatterns } }
              : {}),
          },
        });
        return { ...outcome, isChanged: true };
      }, WAITS_FOR_RECEIPTS);
    } catch (error) {
      if (uniqueViolationOf(error) !== undefined) {
        throw new ConflictError(
          `A tier named "${input.name}" already exists, so ${input.type} was not renamed. Choose another name.`,
          { field: 'name' },
        );
      }
      throw error;
    } finally {
      invalidate();
    }
  }

  /**
   * Deletes a tier that nothing depends on, with its rate history, and the audit entry, in one
   * transaction. Refused (409, nothing changed), naming every reason, while it is the default
   * tier, while users are placed on it by override, or while PRICING_TIER_RULES sends usernames
   * to it: each would move users to another tier without anyone choosing it. Receipts do not
   * hold it: they copied the tier's name and rates (rates_snapshot) when created, and their
   * rate_id has no foreign key, so they read the same afterwards; the audit entry keeps the
   * deleted rate rows, so a receipt's rate_id can still be traced.
   */
  async function deleteTier(actor: AuditContext, input: TDeleteTier) {
    const at = now();
    try {
      return await db.$transaction(async (tx) => {
        await ratesRepository.lockTiersForChange(tx);
        // The row lock makes a user being placed on the tier either finish first (and be counted
        // below) or wait and then find the tier gone; the foreign keys stop anything missed.
        const tier = await ratesRepository.lockTierForChange(tx, input.type);
        if (!tier) {
          // The same deletion sent again once made (a double click on Delete, two tabs): done
          // already, not an unknown tier.
          const { deleted } = await findLastChangeOfTierName(tx, input.type);
          if (deleted) {
            return {
              name: input.type,
              rateCount: 0,
              isChanged: false,
              deletedBefore: { by: deleted.actor, at: deleted.at },
            };
          }
          throw await unknownTierError(tx, input.type);
        }
        if (input.based_on !== undefined && !(await ratesRepository.findTierRate(tx, tier.id, input.based_on))) {
          await refuseTierReplaced(tx, input.type, input.based_on, 'delete');
        }
        const tiers = await ratesRepository.listTiersWithRates(tx);
        const users = await ratesRepository.listOverrideUsernamesOfTier(tx, tier.id);
        const reasons = deletionBlockersOf({
          // Also the tier pricing falls back to when none is marked (tiers made in SQL).
          isDefault:
            tier.isDefault || buildSnapshot(tiers, new Map(), new Map(), at.getTime()).defaultTier === tier.name,
          overrideUsernames: users,
          rulePatterns: rulePatternsFor(tier.name),
        });
        if (reasons.length > 0) {
          throw new ConflictError(`Tier ${tier.name} was not deleted: ${reasons.join('; ')}.`, {
            assignedUsers: users.length,
          });
        }
        const history = tiers.find((candidate) => candidate.id === tier.id)?.rates ?? [];
        await ratesRepository.deleteTierWithRates(tx, tier.id);
        await appendAudit(tx, {
          ...actor,
          action: 'pricing.tier.delete',
          target: `tier:${tier.name}`,
          status: 'ok',
          details: {
            tierId: tier.id,
            description: tier.description,
            rates: history.map((rate) => ({
              rateId: rate.id,
              cpu: rate.cpu.toFixed(),
              gpu: rate.gpu.toFixed(),
              mem: rate.mem.toFixed(),
              currency: rate.currency,
              effectiveFrom: rate.effectiveFrom.toISOString(),
            })),
          },
        });
        return { name: tier.name, rateCount: history.length, isChanged: true };
      });
    } catch (error) {
      // Unreachable through the app (the row lock comes first), but a foreign key is the last word.
      if (sqlStateOf(error) === '23503') {
        throw new ConflictError(
          `Tier ${input.type} was not deleted: a user was placed on it at the same moment. Reload the page and try again.`,
        );
      }
      throw error;
    } finally {
      invalidate();
    }
  }

  /**
   * Makes a tier the default: the tier of every user whom no override and no rule places
   * elsewhere. Audited; choosing the tier that already is the default changes nothing.
   */
  async function setDefaultTier(actor: AuditContext, input: TSetDefaultTier) {
    try {
      return await db.$transaction(async (tx) => {
        // As a rate change: the default tier's users' receipts in flight commit at the tier they
        // read, and the change (its audit entry's time) comes after them.
        await ratesRepository.lockPricingForChange(tx);
        const at = now();
        await ratesRepository.lockTiersForChange(tx);
        const tier = await ratesRepository.findTierByName(tx, input.type);
        if (!tier) throw await unknownTierError(tx, input.type);
        if (input.based_on !== undefined && !(await ratesRepository.findTierRate(tx, tier.id, input.based_on))) {
          await refuseTierReplaced(tx, input.type, input.based_on, 'default');
        }
        if (tier.isDefault) return { name: tier.name, previous: tier.name, isChanged: false };
        // Changed by someone else since the page was opened: making this one the default would undo
        // their choice unnoticed, and the audit log would read as a choice over a default never shown.
        // The default the page showed, renamed since, is the same tier: no conflict.
        const defaultNow = (await readTiersNow(tx)).defaultTier;
        const shown = input.based_on_default;
        if (shown !== undefined && shown !== defaultNow && !(await isRenamedTo(tx, shown, defaultNow || undefined))) {
          const change = await ratesRepository.findDefaultChange(tx, defaultNow);
          const by = change ? ` by ${change.actor} at ${formatAuditTime(change.at, config.timeZone)}` : '';
          // A script, which has no page, is told the based_on_default to send, and gets the default now.
          throw new ConflictError(
            `The default tier was changed${by} after the based_on_default sent (${shown || '""'}): it is now ` +
              `${defaultNow || 'none'}. Check the change against it, then send it again with based_on_default "${defaultNow}".`,
            undefined,
            {
              pageMessage:
                `The default tier was changed${by} after this page was opened: it is now ${defaultNow || 'none'}` +
                `${shown ? `, not ${shown}` : ''}. The page shows it as it is now; make ${tier.name} the default again ` +
                'if you still mean to.',
              publicFields: { defaultTier: defaultNow || null },
            },
          );
        }
        if (!(await ratesRepository.findRateInForce(tx, tier.id, at))) {
          // buildSnapshot would pass over it and keep pricing with another tier: say so instead.
          throw new ConflictError(`${tier.name} has no rates in force yet, so it cannot be the default tier.`);
        }
        const previous = await ratesRepository.findDefaultTierName(tx);
        await refuseDuringMonthEnd(tx, {
          refusal: `${tier.name} not made the default tier`,
          split:
            `the users of the default tier it has already billed would be at ${previous ?? 'the old default'}'s rates ` +
            `and the others at ${tier.name}'s`,
          advice: `Make ${tier.name} the default`,
        });
        await ratesRepository.markDefaultTier(tx, tier.id);
        await appendAudit(tx, {
          ...actor,
          action: 'pricing.tier.default',
          target: `tier:${tier.name}`,
          status: 'ok',
          details: { previous: previous ?? null, next: tier.name },
        });
        return { name: tier.name, previous, isChanged: true };
      }, WAITS_FOR_RECEIPTS);
    } finally {
      invalidate();
    }
  }

  /**
   * Whether the tier a page named `shownName` is the tier now called `currentName`, renamed since:
   * a user on it was not moved by anyone, and a move from that page is no conflict. It was refused
   * as "Their tier was changed after this page was opened". Not while another tier has the old name.
   */
  async function isRenamedTo(tx: Prisma.TransactionClient, shownName: string, currentName: string | undefined) {
    if (currentName === undefined || shownName === '') return false;
    if (await ratesRepository.findTierByName(tx, shownName)) return false;
    return (await ratesRepository.findRenamedTier(tx, shownName))?.name === currentName;
  }

  /**
   * What /admin/tiers refuses, for a HEAD (a link checker, `curl -I`), which read and rendered a page of
   * users and their overrides to send nothing: no tier yet (NoTiersError, 404: its JSON's refusal; its
   * page then says where to add one), then a page past the last (404), the users found counted, none
   * read. Page 1 is always there and needs no count.
   */
  async function checkUserTiersPage(query: { search?: string; page: number }): Promise<void> {
    if ((await getCurrentSnapshot()).knownTiers.size === 0) throw new NoTiersError();
    if (query.page === 1) return;
    userListPageCount(await ratesRepository.countKnownUsernames(db, query.search), query);
  }

  /**
   * A page of the overrides page: the known users whose name contains `search` (everyone without
   * one) with natural, override and effective tier, paged and refused as /admin/users is.
   */
  async function listUserTiers(query: { search?: string; page: number }) {
    const [snapshot, { usernames, count }] = await Promise.all([
      getCurrentSnapshot(),
      ratesRepository.listKnownUsernamesPage(db, {
        search: query.search,
        offset: (query.page - 1) * USERS_PAGE_SIZE,
        limit: USERS_PAGE_SIZE,
      }),
    ]);
    const pageCount = userListPageCount(count, query);
    // Read, not the cached snapshot's: a change made through another worker shows at once.
    const overrides = await ratesRepository.listOverrides(db, usernames);
    const users = usernames.map((username) => {
      const tier = tierOf(snapshot, username, overrides.get(username));
      return { username, naturalTier: tier.naturalTier, override: tier.override, effectiveTier: tier.tier };
    });
    return { users, page: query.page, pageCount, count };
  }

  /** The tiers as the database has them now, without overrides: what a change is judged by, not the cache. */
  async function readTiersNow(client: Db | Prisma.TransactionClient): Promise<RatesSnapshot> {
    return buildSnapshot(await ratesRepository.listTiersWithRates(client), new Map(), new Map(), now().getTime());
  }

  /**
   * The tier named `name` in `tiers` that a user can be placed on; refused (400, naming the tiers there
   * are) when no tier has that name (saying what became of it: renamed or deleted) or it has no rates
   * in force yet.
   */
  async function placeableTier(client: Db | Prisma.TransactionClient, tiers: RatesSnapshot, name: string) {
    const tier = tiers.tiers.get(name);
    if (tier && !tiers.knownTiers.has(name)) {
      // A tier that exists but cannot price anyone yet (its rates scheduled by SQL, or none): it was
      // refused as an "unknown tier" in a sentence that listed it among the known ones.
      throw new InvalidFieldsError({ tier: noRatesInForceReason(tier, tiers) }, TIER_FIELD_LABELS, {
        knownTiers: [...tiers.knownTiers],
      });
    }
    if (!tier) {
      const { note } = await fateOfTierName(client, name);
      // Which tiers there are, as every other form naming a tier says: a script had no list to pick from.
      const { names, known } = await listKnownTiers(client);
      const reason = `unknown tier "${name}"${note || tierNameCaseNote(name, names)}. ${known}`;
      throw new InvalidFieldsError({ tier: reason }, TIER_FIELD_LABELS, {
        knownTiers: names,
      });
    }
    return tier;
  }

  /**
   * The known user (an account or a job owner) a move names: the name as typed when it is one (the
   * page's own rows, job owners as Slurm spells them included), else the name in lower case (`Zoe`
   * is the account zoe, as sign-in and the user tools read it); 404 when it is neither. A JSON move
   * of `Zoe` was refused as no user while the page's search found zoe for it.
   */
  async function knownUsernameOf(typed: string): Promise<string> {
    const known = await ratesRepository.findKnownUsername(db, typed);
    if (known !== null) return known;
    const lower = typed.toLowerCase();
    const nor = lower === typed ? '' : ` (nor "${lower}")`;
    throw new NotFoundError(`No user or job owner is called "${typed}"${nor}.`);
  }

  /**
   * The user a refused move on Tier overrides is about, for the page to mark their row: the name
   * typed read as a move reads it (knownUsernameOf: `ZOE` is zoe, a job owner `Kai` stays Kai), or
   * as typed when it is not a username or names no user (no row is then marked). The page looked
   * for a row named as typed, so a refusal for `ZOE` stood at the page's top, zoe's row unmarked.
   */
  async function findRefusedMoveUser(typed: string | undefined): Promise<string | undefined> {
    const parsed = ZOverrideUsername.safeParse(typed);
    if (!parsed.success) return typed;
    return (await ratesRepository.findKnownUsername(db, parsed.data)) ?? typed;
  }

  /**
   * Moves a user to a tier; choosing the natural tier removes the override. Audited. Asking
   * for the tier the user is already on changes nothing and writes no audit entry
   * (`isChanged: false`): an entry saying gov -> gov only hides the real changes. The user is
   * named as knownUsernameOf reads the name typed, and so stored, audited and answered;
   * `usernameAsTyped` is the name typed when that was another.
   */
  async function setOverride(actor: AuditContext, typed: TSetOverride) {
    // The tier is judged by the tiers as they are, read here, not by this worker's cache, which may be
    // up to PRICING_CACHE_CHECK_MS behind another worker's change: a tier renamed there was still found
    // under its old name, and the user put on it with an audit entry naming a tier that had that name no
    // more; a tier added there was "unknown" in a sentence listing it among the known ones. Checked
    // here first so a refusal does not wait for the receipts in flight, and again under the lock below.
    await placeableTier(db, await readTiersNow(db), typed.tier);
    const input = { ...typed, username: await knownUsernameOf(typed.username) };
    const usernameAsTyped = input.username === typed.username ? undefined : typed.username;
    try {
      const outcome = await db.$transaction(async (tx) => {
        // As a rate change: the user's receipts in flight commit at the tier they read, and the move
        // (its audit entry's time) comes after them; a receipt started meanwhile waits and reads it.
        await ratesRepository.lockPricingForChange(tx);
        // The natural tier as it is now, read under the lock that default changes and new tiers take:
        // this worker's cache may be up to PRICING_CACHE_CHECK_MS behind another worker's change, and
        // judged by it, choosing the tier that was the default a moment ago was taken for "back to
        // the natural tier" and left the user on the new default. Compared by id.
        const tiersNow = await readTiersNow(tx);
        // Renames and additions take the lock above: the tier of this name stays the one read here.
        const tier = await placeableTier(tx, tiersNow, input.tier);
        const natural = tierOf(tiersNow, input.username, undefined).naturalTier;
        // The tier the page offered under this name, replaced since by another of that name: the rates
        // it showed are no rates of the tier of that name now.
        const basedOnRate = input.based_on ?? input.based_on_rates?.get(input.tier);
        if (basedOnRate !== undefined && !(await ratesRepository.findTierRate(tx, tier.id, basedOnRate))) {
          await refuseTierReplaced(tx, input.tier, basedOnRate, { move: input.username });
        }
        const isRemoval = tiersNow.tiers.get(natural)?.id === tier.id;
        const next = isRemoval ? undefined : input.tier;
        const unchanged = { override: next, isChanged: false };
        const current = await ratesRepository.findOverride(tx, input.username);
        if (current === next) return unchanged;
        // Moved by someone else since the page was opened: saving would put them back unnoticed.
        if (
          input.based_on_override !== undefined &&
          input.based_on_override !== (current ?? '') &&
          !(await isRenamedTo(tx, input.based_on_override, current))
        ) {
          throw new StaleOverrideError(
            input,
            { override: current, naturalTier: natural },
            await ratesRepository.findOverrideChange(tx, input.username, current),
            config.timeZone,
          );
        }
        // A move during a run priced the user at the old tier if the run had billed them already and at
        // the new one if not, while this page said the new one; a change of no one's tier is no split.
        const from = tierOf(tiersNow, input.username, current).tier;
        await refuseDuringMonthEnd(tx, {
          refusal: isRemoval
            ? `${input.username} not moved back to ${input.tier} (their natural tier)`
            : `${input.username} not moved to ${input.tier}`,
          split:
            `its receipt for ${input.username} would be at ${from}'s rates if it has already billed ` +
            `${input.username}, and at ${input.tier}'s if not`,
          advice: `Move ${input.username}`,
        });
        // The snapshot may predate the tier's deletion: hold it, or say it is gone (not a 500 from the key).
        if (!isRemoval && !(await ratesRepository.holdTier(tx, tier.id))) {
          throw new ConflictError(
            `tier: ${input.tier} was deleted a moment ago, so ${input.username} was not moved. Reload the page.`,
            { field: 'tier' },
          );
        }
        const previous = isRemoval
          ? await ratesRepository.deleteOverride(tx, input.username)
          : await ratesRepository.upsertOverride(tx, {
              username: input.username,
              tierId: tier.id,
              createdBy: actor.actor,
            });
        await appendAudit(tx, {
          ...actor,
          action: isRemoval ? 'pricing.override.remove' : 'pricing.override.set',
          target: userTarget(input.username),
          status: 'ok',
          details: { previous: previous ?? null, next: next ?? null, naturalTier: natural },
        });
        return { override: next, isChanged: true };
      }, WAITS_FOR_RECEIPTS);
      return { username: input.username, ...outcome, effectiveTier: input.tier, usernameAsTyped };
    } finally {
      // This worker prices with the new tier at once; the others within one cache check.
      invalidate();
    }
  }

  return {
    getSnapshot,
    getCurrentSnapshot,
    getFormula,
    getPriceList,
    getAdminRates,
    getUserTier,
    getUserTiers,
    getRateTable,
    getUserTierForBilling,
    setRates,
    createTier,
    withTakenTierName,
    editTier,
    deleteTier,
    setDefaultTier,
    checkUserTiersPage,
    listUserTiers,
    findRefusedMoveUser,
    setOverride,
    whatBecameOfTierName,
    invalidate,
  };
}

export type RatesService = ReturnType<typeof createRatesService>;
