import { Prisma } from '@prisma/client';
import { z } from 'zod';
import { strictBody } from '../../http/strict-body.js';

/** A rate above this per hour is a typo (an extra zero or two), not a price. */
export const MAX_RATE_PER_HOUR = 1_000_000;
/** pricing_rates stores six decimals. */
const RATE_DECIMALS = 6;

/** A per-hour rate: a finite number (or numeric string) >= 0, at most MAX_RATE_PER_HOUR, 6 decimals. */
export const ZRate = z
  .union([z.number(), z.string().trim().min(1)], { error: 'must be a number' })
  .transform((value, ctx) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      ctx.addIssue({ code: 'custom', message: 'must be a finite number' });
      return z.NEVER;
    }
    const text = String(value);
    // ".5" is how many people write a half; Decimal reads it as 0.5. Exponents are refused:
    // a price typed as 1e3 is far more likely a slip than a wish for 1,000 an hour.
    if (/^-?(\d+(\.\d+)?|\.\d+)e[-+]?\d+$/i.test(text)) {
      ctx.addIssue({ code: 'custom', message: 'must be written as a plain decimal such as 0.50, without an exponent' });
      return z.NEVER;
    }
    if (!/^-?(\d+(\.\d+)?|\.\d+)$/.test(text)) {
      ctx.addIssue({ code: 'custom', message: 'must be a number' });
      return z.NEVER;
    }
    // "-0" is zero, which is a valid rate; decimal.js keeps its sign and would call it negative.
    const parsed = new Prisma.Decimal(text);
    const rate = parsed.isZero() ? new Prisma.Decimal(0) : parsed;
    if (rate.isNegative()) {
      ctx.addIssue({ code: 'custom', message: 'must be 0 or more' });
      return z.NEVER;
    }
    if (rate.greaterThan(MAX_RATE_PER_HOUR)) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_RATE_PER_HOUR} per hour` });
      return z.NEVER;
    }
    if (rate.decimalPlaces() > RATE_DECIMALS) {
      ctx.addIssue({ code: 'custom', message: `must have at most ${RATE_DECIMALS} decimal places` });
      return z.NEVER;
    }
    return rate;
  });

const ZTierName = z.string().trim().min(1, 'is required').max(32);

/** POST /formula and the admin rates form. */
export const ZSetRates = strictBody({ type: ZTierName, cpu: ZRate, gpu: ZRate, mem: ZRate });
export type TSetRates = z.infer<typeof ZSetRates>;

/** GET /formula. */
export const ZFormulaQuery = z.object({ type: z.string().trim().min(1).max(32).optional() });

// An empty name is also "not a username", and parseInput keeps a field's last reason: stop at the first.
const ZUsername = z
  .string()
  .trim()
  .min(1, { error: 'is required', abort: true })
  .max(64)
  .regex(/^[A-Za-z0-9._@-]+$/, 'is not a username');

/** The tier overrides form: choosing the natural tier removes the override. */
export const ZSetOverride = strictBody({ username: ZUsername, tier: ZTierName });
export type TSetOverride = z.infer<typeof ZSetOverride>;
