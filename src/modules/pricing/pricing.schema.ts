import { Prisma } from '@prisma/client';
import { z } from 'zod';
import { refusedField } from '../../http/field-labels.js';
import { JsonNumberText } from '../../http/lossless-json.js';
import { strictBody } from '../../http/strict-body.js';
import { ONE_LINE_RULE, ONE_LINE_TEXT } from '../../shared/visible-text.js';
import { MAX_INT4, zWholeNumber } from '../../shared/whole-number.js';

/** A rate above this per hour is a typo (an extra zero or two), not a price. */
export const MAX_RATE_PER_HOUR = 1_000_000;
/** pricing_rates stores six decimals. */
const RATE_DECIMALS = 6;

/**
 * What every refused rate is told, whatever was wrong with it (an exponent, a sign, letters, a
 * negative, too many decimals, too large, empty or left out): the whole rule at once, in one
 * wording on every path that takes a rate (the rates form, POST /formula, Add a tier). Two
 * wordings for one rule read as two rules; a field is named by its label or key (validate.ts).
 */
export const RATE_RULE = `must be a plain decimal from 0 to ${MAX_RATE_PER_HOUR} with at most ${RATE_DECIMALS} decimal places, such as 0.25`;

/**
 * The grammar of a rate: ASCII digits, then optionally a point and more digits. Leading zeros are
 * allowed: "00.5" has every digit of 0.5 and no other reading, as a padded field or a
 * spreadsheet may write it. A sign (even on a zero: "-0" used to be stored as 0), an exponent
 * (1e3 is far more likely a slip than 1,000 an hour), and ".5" or "5." (a missing digit beside
 * the point is as often a slip as a shorthand) are not rates.
 */
const PLAIN_RATE = /^\d+(\.\d+)?$/;

/**
 * A per-hour rate >= 0, at most MAX_RATE_PER_HOUR, with at most 6 decimals, judged by the text
 * the client sent: a form field, a JSON string, or a JSON number as written (JsonNumberText,
 * from the lossless parser the rates routes use). A JSON number that went through JSON.parse
 * has lost that text (1e3 is already 1000, 0.10000000000000001 already 0.1), so a plain
 * number is refused rather than guessed at. Every refusal is RATE_RULE.
 */
export const ZRate = z
  .union([z.string(), z.instanceof(JsonNumberText).transform((number) => number.text)], { error: RATE_RULE })
  .transform((input, ctx) => {
    const text = input.trim();
    const rate = PLAIN_RATE.test(text) ? new Prisma.Decimal(text) : undefined;
    if (!rate || rate.greaterThan(MAX_RATE_PER_HOUR) || rate.decimalPlaces() > RATE_DECIMALS) {
      ctx.addIssue({ code: 'custom', message: RATE_RULE });
      return z.NEVER;
    }
    return rate;
  });

/** Where a tier name is stored: pricing_tiers.name and receipts.tier_name are VARCHAR(32). */
export const MAX_TIER_NAME_LENGTH = 32;

/** Names an existing tier: anything a tier may already be called (the demo's, or one added by SQL). */
const ZTierName = z.string().trim().min(1, 'is required').max(MAX_TIER_NAME_LENGTH);

/**
 * The name of a new tier. It is an identifier rather than a label (the description is the
 * label): clients ask for it in `/formula?type=`, PRICING_TIER_RULES and overrides name it
 * exactly, receipts copy it, and the rates page links to it by anchor. Lowercase only, so
 * "Gov" can never sit beside "gov" as a second tier that a rule naming "gov" silently misses.
 */
export const ZNewTierName = z
  .string()
  .trim()
  .min(1, { error: 'is required', abort: true })
  .max(MAX_TIER_NAME_LENGTH, { error: `must be at most ${MAX_TIER_NAME_LENGTH} characters`, abort: true })
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, - or _, starting with a letter or digit');

/**
 * A tier's description as the rates page shows it under its name: one line. The page edits it in a
 * one-line field, which drops line breaks (as HTML requires of a text input), so a description with
 * one, sent as JSON, lost it silently the next time the tier was renamed on the page ("line one" and
 * "line two" saved as "line oneline two"); the price list shows it on one line anyway.
 */
const ZTierDescriptionText = z.string().trim().max(200).regex(ONE_LINE_TEXT, ONE_LINE_RULE);
const ZTierDescription = ZTierDescriptionText.optional().default('');

/** The rates page's labels of the rate fields, which a refusal shown on the page names them by. */
const RATE_LABELS = { cpu: 'CPU core-hour', gpu: 'GPU-hour', mem: 'Memory GB-hour' } as const;
/** The rates and tiers pages' labels of every field (`type` and `tier` name a tier: hidden or a list). */
export const TIER_FIELD_LABELS = {
  ...RATE_LABELS,
  type: 'Tier',
  tier: 'Tier',
  name: 'Name',
  description: 'Description',
  username: 'Username',
} as const;

/**
 * The id of the rates in force when the form was opened (the Rates page's hidden field). The form
 * sends all three rates, so one opened before another admin's change would silently put back the
 * rates it did not mean to touch; with it, such a change is refused (409). Left out or empty (a
 * script), nothing is compared.
 */
export const ZBasedOnRate = z.preprocess(
  (input) => (input instanceof JsonNumberText ? input.text : input === '' ? undefined : input),
  zWholeNumber(1, MAX_INT4).optional(),
);

/** POST /formula and the admin rates form. */
export const ZSetRates = strictBody(
  { type: ZTierName, cpu: ZRate, gpu: ZRate, mem: ZRate, based_on: ZBasedOnRate },
  TIER_FIELD_LABELS,
);
export type TSetRates = z.infer<typeof ZSetRates>;

/** The rates page's form that adds a tier with its first rates (POST /formula never creates one). */
export const ZCreateTier = strictBody(
  {
    name: ZNewTierName,
    description: ZTierDescription,
    cpu: ZRate,
    gpu: ZRate,
    mem: ZRate,
  },
  TIER_FIELD_LABELS,
);
export type TCreateTier = z.infer<typeof ZCreateTier>;

/**
 * The rates page's form that renames a tier or changes its description. `type` is the name the
 * tier has now; the new name is held to the rules of a new tier's. A description left out (a JSON
 * client renaming only) keeps the one the tier has.
 */
export const ZEditTier = strictBody(
  {
    type: ZTierName,
    name: ZNewTierName,
    description: ZTierDescriptionText.optional(),
    // The description the form was opened with (the Rates page's hidden field): a description
    // changed since is not overwritten (409). Left out (a script), nothing is compared.
    based_on_description: z.string().max(1000).optional(),
    // The rates in force when the page was opened, as ZDeleteTier's: tells the tier the page showed
    // from another given its name since (409). Left out (a script), the tier of that name is changed.
    based_on: ZBasedOnRate,
  },
  TIER_FIELD_LABELS,
);
export type TEditTier = z.infer<typeof ZEditTier>;

/**
 * The rates page's button that deletes a tier nothing depends on. `based_on`, the rates in force when
 * the page was opened (its hidden field), tells the tier the page showed from another given its name
 * since; left out (a script), the tier of that name is deleted.
 */
export const ZDeleteTier = strictBody({ type: ZTierName, based_on: ZBasedOnRate }, TIER_FIELD_LABELS);
export type TDeleteTier = z.infer<typeof ZDeleteTier>;

/**
 * The rates page's button that makes a tier the default tier; `based_on` as ZDeleteTier's.
 * `based_on_default` is the default tier the page showed (its hidden field): a default changed by
 * someone else since is not overwritten unnoticed (409). Left out (a script), nothing is compared.
 */
export const ZSetDefaultTier = strictBody(
  { type: ZTierName, based_on: ZBasedOnRate, based_on_default: z.string().max(MAX_TIER_NAME_LENGTH).optional() },
  TIER_FIELD_LABELS,
);
export type TSetDefaultTier = z.infer<typeof ZSetDefaultTier>;

/**
 * GET /formula. An empty `type` (or only spaces) is a type left out, the default tier, as an
 * empty field is everywhere else (ZOptionalLocalDate): `?type=` is what a form or a script
 * with an unset variable sends.
 */
export const ZFormulaQuery = z.object({
  type: z
    .string()
    .trim()
    .optional()
    .transform((text) => text || undefined)
    .pipe(z.string().max(MAX_TIER_NAME_LENGTH).optional()),
  // The app's own word for a price list everywhere else (Tier overrides, PRICING_TIER_RULES):
  // ignored as any unknown query field is, /formula?tier=gov answered the default tier's rates.
  tier: refusedField('is not read here: /formula reads the tier from type, as /formula?type=gov'),
});

/**
 * The user a Tier overrides move names: an account or a job owner. Not lower-cased here, as
 * ZUsername of users.schema.ts does: a job owner keeps Slurm's spelling (`Kai`), and the page's row
 * for it sends that name. The service reads a name that is no user's as typed in lower case (`Zoe`
 * is the account zoe: knownUsernameOf in rates.service.ts).
 */
// An empty name is also "not a username", and parseInput keeps a field's last reason: stop at the first.
export const ZOverrideUsername = z
  .string()
  .trim()
  .min(1, { error: 'is required', abort: true })
  .max(64)
  .regex(/^[A-Za-z0-9._@-]+$/, 'is not a username');

/**
 * The rates in force of each tier a Tier overrides form offered, as its hidden field holds them:
 * `name:rateId` pairs separated by spaces ("mu:3 gov:7"), read into a map by name.
 */
const ZBasedOnRates = z
  .string()
  .trim()
  .max(100_000)
  .regex(/^(?:[a-z0-9][a-z0-9_-]*:\d{1,10}(?: +|$))*$/, 'is not a list of tier:rates pairs')
  .transform((text, context) => {
    const pairs = text.split(/ +/).filter(Boolean);
    const rates = new Map(
      pairs.map((pair) => [pair.slice(0, pair.lastIndexOf(':')), Number(pair.slice(pair.lastIndexOf(':') + 1))]),
    );
    // Ten digits reach past the ids the database holds: such an id, looked up, was a 500.
    if ([...rates.values()].some((id) => id > MAX_INT4)) {
      context.addIssue({ code: 'custom', message: `has a rates id past ${MAX_INT4}, which no rates have` });
      return z.NEVER;
    }
    return rates;
  })
  .optional();

/**
 * The tier overrides form: choosing the natural tier removes the override. `based_on_override` is
 * the override the form was opened on (the page's hidden field; empty for none): a user moved by
 * someone else since is not moved back over them (409). Left out (a script), nothing is compared.
 * `based_on` is the rates in force of the tier chosen when the list was read (a JSON client's), and
 * `based_on_rates` those of every tier the page's list offered (its hidden field; the chosen tier's
 * counts): a tier replaced since by another of its name is not chosen in its place (409). Both left
 * out (a script), the tier of that name is chosen.
 */
export const ZSetOverride = strictBody(
  {
    username: ZOverrideUsername,
    tier: ZTierName,
    based_on_override: z.string().max(MAX_TIER_NAME_LENGTH).optional(),
    based_on: ZBasedOnRate,
    based_on_rates: ZBasedOnRates,
  },
  TIER_FIELD_LABELS,
);
export type TSetOverride = z.infer<typeof ZSetOverride>;
