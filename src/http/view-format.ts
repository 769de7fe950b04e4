import type { Prisma } from '@prisma/client';
import { minorUnitDigits } from '../modules/pricing/pricing.js';

type Numeric = Prisma.Decimal | number | string | null | undefined;

/** Number and date formatting the views share, fixed to the site's zone and currency. */
export function createViewFormatters(options: { timeZone: string; currency: string }) {
  const dateTime = new Intl.DateTimeFormat('en-GB', {
    timeZone: options.timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
  const date = new Intl.DateTimeFormat('en-CA', {
    timeZone: options.timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  });
  const grouping = (digits: number) =>
    new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const hours = grouping(2);
  const counts = grouping(0);
  const moneyFormats = new Map<string, Intl.NumberFormat>();
  const moneyFormat = (currency: string) => {
    let format = moneyFormats.get(currency);
    if (!format) {
      format = grouping(minorUnitDigits(currency));
      moneyFormats.set(currency, format);
    }
    return format;
  };
  // Intl formats strings exactly ("1234.565" is not turned into a float first).
  const exact = (value: Numeric) => (value === null || value === undefined ? '0' : value.toString());
  return {
    /** 1,234.50 in the currency's minor unit (no symbol; columns say which currency). */
    money: (value: Numeric, currency = options.currency) =>
      moneyFormat(currency).format(exact(value) as unknown as number),
    /** 10,146: a count with thousands separators. */
    count: (value: number) => counts.format(value),
    /** Hours to two decimals. */
    hours: (value: Numeric) => hours.format(exact(value) as unknown as number),
    /** 20/09/2025, 14:05 in APP_TZ. */
    dateTime: (value: Date | null | undefined) => (value ? dateTime.format(value) : ''),
    /** 2025-09-20 in APP_TZ. */
    date: (value: Date | null | undefined) => (value ? date.format(value) : ''),
    /** 1-02:03:04 like sacct. */
    duration: (seconds: number) => {
      const days = Math.floor(seconds / 86_400);
      const clock = [Math.floor((seconds % 86_400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
        .map((part) => String(part).padStart(2, '0'))
        .join(':');
      return days > 0 ? `${days}-${clock}` : clock;
    },
    timeZone: options.timeZone,
    currency: options.currency,
  };
}

export type ViewFormatters = ReturnType<typeof createViewFormatters>;
