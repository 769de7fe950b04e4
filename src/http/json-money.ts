import type { Prisma } from '@prisma/client';
import { minorUnitDigits } from '../modules/pricing/pricing.js';

/**
 * Money as every JSON answer writes it: the decimal's text at the currency's scale ("5.20",
 * "0.00", "1200" for JPY). Never a JS number (a float, and 5.2) nor Decimal's bare toFixed()
 * ("5.2"), which drops the zeros a client comparing or showing amounts needs.
 */
export function moneyJson(amount: Prisma.Decimal, currency: string): string {
  return amount.toFixed(minorUnitDigits(currency));
}
