import type { Prisma } from '@prisma/client';
import { minorUnitDigits } from '../modules/pricing/pricing.js';
import { formatCount, listedNames } from '../shared/counted.js';
import { endOfLocalDay, localParts, padTwoDigits, repeatedTimeMark } from '../shared/local-date.js';
import { revealControls } from '../shared/visible-text.js';

type Numeric = Prisma.Decimal | number | string | null | undefined;

const PLAIN_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Decimal text ("1234.565", "-0.004") with `digits` decimals, rounded half away from zero and
 * grouped by thousands: what Intl.NumberFormat('en-US') writes for the same string (the unit
 * tests compare the two), at a tenth of the cost. Anything else (exponents) returns undefined.
 */
export function formatDecimalText(text: string, digits: number): string | undefined {
  const match = PLAIN_DECIMAL.exec(text);
  if (!match) return undefined;
  const [, sign = '', whole = '', fraction = ''] = match;
  // The number scaled by 10^digits, as a digit string, rounded on the first dropped digit.
  let scaled = (whole + fraction.slice(0, digits).padEnd(digits, '0')).replace(/^0+(?=\d)/, '');
  if ((fraction.charCodeAt(digits) || 0) >= 53) scaled = incrementDigits(scaled);
  const padded = scaled.padStart(digits + 1, '0');
  const integer = padded.slice(0, padded.length - digits).replace(/\B(?=(\d{3})+$)/g, ',');
  return `${sign}${integer}${digits > 0 ? `.${padded.slice(padded.length - digits)}` : ''}`;
}

/** "199" -> "200", "99" -> "100". */
function incrementDigits(digits: string): string {
  let index = digits.length - 1;
  while (index >= 0 && digits[index] === '9') index -= 1;
  if (index < 0) return `1${'0'.repeat(digits.length)}`;
  return digits.slice(0, index) + String(Number(digits[index]) + 1) + '0'.repeat(digits.length - index - 1);
}

// How a payment that has ended is told to its payer, after "This payment": the statuses are
// codes (needs_review), not words, and "already needs_review" read as neither.
const ENDED_PAYMENTS: ReadonlyMap<string, string> = new Map([
  ['succeeded', 'has already succeeded'],
  ['failed', 'failed'],
  ['canceled', 'was canceled'],
  ['needs_review', 'is held for review by the billing team'],
  ['resolved', 'was reviewed and closed by the billing team'],
]);

/** "has already succeeded", "was canceled": how a payment ended; undefined while it is pending. */
export function describeEndedPayment(status: string): string | undefined {
  return ENDED_PAYMENTS.get(status);
}

/**
 * The longest word of a login name a list keeps whole: a name's words are rarely longer
 * (srinivasaraghavan_ is 18), and a word of 32 letters kept whole, the most useradd accepts, widened
 * the payments list past a 1280 px screen.
 */
const LONGEST_WHOLE_WORD = 20;

/**
 * A login name in the pieces a table may break it between: after its separators (_ - . @), never
 * inside a word, as the audit log's actors. In one piece a name of 30-odd letters
 * ("srinivasaraghavan_venkatanarayanan") widened the Billing list past a 1280 px screen, its Paid
 * column behind a sideways scroll. A piece longer than LONGEST_WHOLE_WORD breaks where it must.
 */
export function splitLoginName(name: string): { text: string; isKeptWhole: boolean }[] {
  return name.split(/(?<=[_.@-])/).map((text) => ({ text, isKeptWhole: text.length <= LONGEST_WHOLE_WORD }));
}

/** Number and date formatting the views share, fixed to the site's zone and currency. */
export function createViewFormatters(options: { timeZone: string; currency: string }) {
  const time = new Intl.DateTimeFormat('en-GB', {
    timeZone: options.timeZone,
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
  const numberFormats = new Map<number, Intl.NumberFormat>();
  /**
   * Decimals (Prisma.Decimal, or their text) are formatted from their exact text; numbers
   * (sums made in JS) and exponent forms go through Intl, which rounds them the same way.
   */
  const decimal = (value: Numeric, digits: number): string => {
    const text = value === null || value === undefined ? '0' : value.toString();
    if (typeof value !== 'number') {
      const fast = formatDecimalText(text, digits);
      if (fast !== undefined) return fast;
    }
    let format = numberFormats.get(digits);
    if (!format) {
      format = grouping(digits);
      numberFormats.set(digits, format);
    }
    // Intl formats strings exactly ("1234.565" is not turned into a float first).
    return format.format(text as unknown as number);
  };
  // Years before 1000 or after 9999 are left to Intl, which pads and signs them its way.
  const isPlainYear = (year: number) => year >= 1000 && year <= 9999;
  const formatters = {
    /** 1,234.50 in the currency's minor unit (no symbol; columns say which currency). */
    money: (value: Numeric, currency = options.currency) => decimal(value, minorUnitDigits(currency)),
    /**
     * A rate (money an hour) with the digits /formula and every JSON answer write (rateJson): at least the
     * currency's decimals and every digit stored, 0.50, 12.00, 0.123456, never rounded. Pages wrote
     * the stored digits alone (0.5, 12), and a receipt's 0.5 was compared with /formula's 0.50. Grouped
     * by thousands as money is on the page (1,500, 12,345.5): a JPY rate read 1500 beside totals of 1,500.
     * /formula, JSON and CSV, read by programs, keep the digits ungrouped.
     */
    rate: (value: Numeric, currency = options.currency) => {
      // A receipt made before its snapshot kept a rate shows none, not 0.00.
      if (value === null || value === undefined) return '';
      const text = value.toString();
      const stored = PLAIN_DECIMAL.exec(text)?.[3]?.replace(/0+$/, '').length ?? 0;
      return decimal(value, Math.max(minorUnitDigits(currency), stored));
    },
    /** 10,146: a count with thousands separators. */
    count: formatCount,
    /** "a, b, … and 1,090 more": at most 10 names, the rest counted, as the month-end summary lists them. */
    listedNames,
    /** bank_transfer -> bank transfer: a payment method's code as the mark-paid form names it. */
    paymentMethod: (code: string | null | undefined) => (code ?? '').replaceAll('_', ' '),
    /**
     * " (scheduled)" after the time a rate entered for a later date takes effect, in the price
     * list and the admin history alike; nothing for any other rate.
     */
    scheduledMark: (rate: { isScheduled: boolean }) => (rate.isScheduled ? ' (scheduled)' : ''),
    /**
     * Free text someone typed (a review note), its bidirectional and terminal controls written as
     * escapes (\u202e, \u001b) as the audit log writes them: shown as typed, a bidirectional one
     * turned the rest of its paragraph around, figures included.
     */
    visibleText: (text: string | null | undefined) => revealControls(text ?? ''),
    /**
     * A held payment's reason (visibleText) as HTML for /admin/payments, the receipt its money paid since
     * ("its money paid receipt #12") a link to that receipt's page: the receipt finance must collect again
     * or void is one click away, not a number to type into the billing page's filter.
     */
    reviewReasonHtml: (text: string | null | undefined) =>
      escapeHtml(revealControls(text ?? '')).replace(
        /its money paid receipt #(\d+)/g,
        'its money paid receipt <a href="/admin/receipts/$1">#$1</a>',
      ),
    /** succeeded -> has already succeeded: how a payment ended, after "This payment"; undefined while pending. */
    endedPayment: describeEndedPayment,
    /** A login name's pieces, to break between (loginNameHtml). */
    loginNameParts: splitLoginName,
    /**
     * A login name in a table cell of class login-name, as HTML: it may break after its separators,
     * its words kept whole (loginNameParts). One block, so that on a phone it stays together beside
     * the cell's label. A function, not an EJS include: an include copies the view's locals each time,
     * once a row on /admin/payments' 200 payments (the cost 37fb8bb measured on My usage).
     */
    loginNameHtml: (name: unknown) =>
      `<span>${splitLoginName(String(name))
        .map((part) => `<span${part.isKeptWhole ? ' class="nowrap"' : ''}>${escapeHtml(part.text)}</span>`)
        .join('<wbr>')}</span>`,
    /**
     * Hours to the six decimals they are priced at (as Jobs, a receipt and the CSV write them): rounded
     * to two, Per day's days read 0.01 each under a total of 0.02, and its column did not add up.
     */
    hours: (value: Numeric) => decimal(value, 6),
    /**
     * 2025-09-20 14:05 in APP_TZ: the order the dates beside it (windows, the audit log) use;
     * 02/12/2026 reads as 2 December to some and 12 February to others. A time the clocks show
     * twice (the hour repeated when summer time ends) adds its offset: 2026-11-01 01:30 (UTC-04:00).
     */
    dateTime: (value: Date | null | undefined) => {
      if (!value) return '';
      const p = localParts(value, options.timeZone);
      const mark = repeatedTimeMark(value, options.timeZone);
      if (!isPlainYear(p.year)) return `${date.format(value)} ${time.format(value)}${mark}`;
      return `${p.year}-${padTwoDigits(p.month)}-${padTwoDigits(p.day)} ${padTwoDigits(p.hour)}:${padTwoDigits(p.minute)}${mark}`;
    },
    /** 2025-09-20 in APP_TZ. */
    date: (value: Date | null | undefined) => {
      if (!value) return '';
      const p = localParts(value, options.timeZone);
      if (!isPlainYear(p.year)) return date.format(value);
      return `${p.year}-${padTwoDigits(p.month)}-${padTwoDigits(p.day)}`;
    },
    /**
     * Up to when a receipt's jobs ended: its last day, or, for a receipt made before that day was
     * over (its end was the day it was made), the moment it was made. A receipt bills only the
     * jobs that had ended by then; one that ends later that day goes on the next receipt, so
     * "2025-09-20 (end of day)" said more than it billed. `madeAt` is that moment's local time, or
     * null when the whole day was over. `endedAt` is the cut-off's local time when it is not the end
     * of `day` in APP_TZ (the receipt was made under another APP_TZ, whose day it ended): "end of day"
     * named the wrong instant, hours off the jobs it billed.
     */
    receiptWindowEnd: (receipt: {
      billedThrough: Date;
      windowEnd?: Date | null;
      createdAt: Date;
    }): { day: string; madeAt: string | null; endedAt: string | null } => {
      const day = receipt.billedThrough.toISOString().slice(0, 10);
      const zoneDayEnd = endOfLocalDay(day, options.timeZone);
      const dayEnd = receipt.windowEnd ?? zoneDayEnd;
      if (receipt.createdAt < dayEnd) return { day, madeAt: formatters.dateTime(receipt.createdAt), endedAt: null };
      return {
        day,
        madeAt: null,
        endedAt: dayEnd.getTime() === zoneDayEnd.getTime() ? null : formatters.dateTime(dayEnd),
      };
    },
    /** 1-02:03:04 like sacct. */
    duration: (seconds: number) => {
      const days = Math.floor(seconds / 86_400);
      const clock = [Math.floor((seconds % 86_400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
        .map(padTwoDigits)
        .join(':');
      return days > 0 ? `${days}-${clock}` : clock;
    },
    timeZone: options.timeZone,
    currency: options.currency,
  };
  // HTML, for `<%-`. Functions rather than partials: an include copies the view's locals, and one
  // per row of /me (the tier of each job) cost `me` about a fifth of its requests per second.
  return {
    ...formatters,
    /**
     * A name (a tier's) that a line may break after its separators (_ . @ -), its words kept whole,
     * in a cell of class tier-name: in one piece a name of 30-odd letters widened its list past a
     * 1280 px screen.
     */
    breakableNameHtml: (name: unknown) =>
      String(name)
        .split(/(?<=[_.@-])/)
        .map(escapeHtml)
        .join('<wbr>'),
    /**
     * A date and time (a Date, or the text a route formatted) where a line may wrap: the day may go
     * above the time, never break inside itself ("2026-12-" above "04 10:28"). One element, so that on
     * a phone's stacked card the day and the time stay together beside the cell's label.
     */
    wrappableDateTimeHtml: (at: Date | string | null | undefined) => {
      const text = typeof at === 'string' ? at : formatters.dateTime(at);
      const timeStart = text.lastIndexOf(' ');
      if (timeStart < 0) return escapeHtml(text);
      return `<span><span class="nowrap">${escapeHtml(text.slice(0, timeStart))}</span> <span class="nowrap">${escapeHtml(text.slice(timeStart + 1))}</span></span>`;
    },
  };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };

/** What EJS's `<%=` writes for the same text. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}

export type ViewFormatters = ReturnType<typeof createViewFormatters>;
