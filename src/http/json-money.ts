import { Prisma } from '@prisma/client';
import { minorUnitDigits } from '../modules/pricing/pricing.js';

/**
 * Money as every JSON answer writes it: the decimal's text at the currency's scale ("5.20",
 * "0.00", "1200" for JPY). Never a JS number (a float, and 5.2) nor Decimal's bare toFixed()
 * ("5.2"), which drops the zeros a client comparing or showing amounts needs.
 */
export function moneyJson(amount: Prisma.Decimal, currency: string): string {
  return amount.toFixed(minorUnitDigits(currency));
}

/**
 * A rate (money an hour) as JSON answers write it: text with at least the currency's scale and
 * every digit it was stored with ("0.50", "12.00", "0.1234", "0.000001"): a rate may be finer
 * than the minor unit, and rounding it to the scale would answer another rate than the one in force.
 */
export function rateJson(rate: Prisma.Decimal, currency: string): string {
  const digits = minorUnitDigits(currency);
  return rate.decimalPlaces() > digits ? rate.toFixed() : rate.toFixed(digits);
}

/**
 * Resource hours (core-, GPU-, memory GB-hours) as JSON answers write them: text with the six
 * decimals they are priced at, so hours × rate gives the cost shown, never a float.
 */
export function hoursJson(hours: Prisma.Decimal | number): string {
  return new Prisma.Decimal(hours).toFixed(6, Prisma.Decimal.ROUND_HALF_UP);
}
