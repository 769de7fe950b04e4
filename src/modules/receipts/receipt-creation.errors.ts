import type { Prisma } from '@prisma/client';
import { formatCount } from '../../shared/counted.js';
import { AppError, ConflictError } from '../../shared/errors.js';
import { minorUnitDigits, type Rates } from '../pricing/pricing.js';
import { RECEIPT_TOTAL_BOUND } from './receipts.repository.js';

/*
 * The refusals of making a receipt, by hand or by a month-end run: both services throw and catch
 * them (month-end.service.ts skips a user with their reason), so they live apart from either.
 */

/**
 * Why a receipt left out jobs /me shows at an estimate: they have an end time but have not finished
 * (REQUEUE_HOLD, SPECIAL_EXIT, a state ingestion did not know), and a receipt bills finished jobs only.
 */
export function unfinishedJobsSentence(count: number, before: string): string {
  const jobs = count === 1 ? '1 job that ended by' : `${formatCount(count)} jobs that ended by`;
  return (
    `${jobs} ${before} ${count === 1 ? 'was' : 'were'} left out because ${count === 1 ? 'it has' : 'they have'} ` +
    'not finished (REQUEUE_HOLD, SPECIAL_EXIT or another state that is not an end); each is billed by a receipt ' +
    'made once it finishes.'
  );
}

/** Asked for a receipt with no finished, unbilled job in its window: no empty receipt is made. */
export class NothingToBillError extends AppError {
  /**
   * `billedOn`: the user's newest receipt that bills up to `before` or later, when there is one (a
   * receipt made a moment ago in another tab, or before the back button): where the jobs went.
   * `madeOnThatDay`: when that receipt was made during day `before` itself (local `YYYY-MM-DD HH:MM`,
   * its zone, and whether that day is today): it bills only the jobs ended by then, as its page says,
   * not the whole day ("already bills your jobs up to that day" said more than it billed). The zone is
   * named as pages name it: "made at 19:51 today" read as the reader's own clock, or UTC to a script.
   */
  constructor(
    readonly before: string,
    readonly billedOn: number | null = null,
    madeOnThatDay?: { at: string; timeZone: string; isToday: boolean },
    readonly unfinishedJobCount = 0,
  ) {
    let billedBy = '';
    if (billedOn !== null && madeOnThatDay?.isToday) {
      billedBy = ` Receipt #${billedOn}, made at ${madeOnThatDay.at.slice(11)} (${madeOnThatDay.timeZone}) today, already bills your jobs that had ended by then, and none has ended since.`;
    } else if (billedOn !== null && madeOnThatDay) {
      billedBy = ` Receipt #${billedOn} already bills your jobs that had ended when it was made (${madeOnThatDay.at}, ${madeOnThatDay.timeZone}), and none ended later that day.`;
    } else if (billedOn !== null) {
      billedBy = ` Receipt #${billedOn} already bills your jobs up to that day.`;
    }
    const unfinished = unfinishedJobCount > 0 ? ` ${unfinishedJobsSentence(unfinishedJobCount, before)}` : '';
    super(
      422,
      `Nothing to bill: no finished, unbilled jobs ended on or before ${before}.${billedBy}${unfinished}`,
      { before },
      { publicFields: { unfinishedJobCount } },
    );
  }
}

/**
 * A 409 for Create receipt sent from a /me page that estimated the jobs at other rates than the user's
 * now (`based_on`): an admin moved the user to another tier, or changed the tier's rates, after the
 * page was read. A receipt is priced at the rates in force when it is made (docs/pricing.md), so it
 * would have billed more (or less) than the estimate read, without a word. Names both, as the page
 * writes them; JSON clients get the rates id now as `rateId`, to send once they have looked.
 */
export class RatesChangedSinceShownError extends ConflictError {
  constructor(
    shown: { tier: string; rates: Rates } | undefined,
    shownId: number,
    now: { tier: string; rates: Rates & { id: number } },
  ) {
    const ratesText = (rates: Rates) => {
      const digits = minorUnitDigits(rates.currency);
      const text = (rate: Prisma.Decimal) =>
        `${rate.decimalPlaces() > digits ? rate.toFixed() : rate.toFixed(digits)} ${rates.currency}`;
      return `CPU ${text(rates.cpu)} per core-hour, GPU ${text(rates.gpu)} per GPU-hour, memory ${text(rates.mem)} per GB-hour`;
    };
    super(
      'The rates this page showed are no longer yours: ' +
        (shown
          ? `it estimated your jobs on tier ${shown.tier} at ${ratesText(shown.rates)}`
          : `it estimated your jobs at rates no tier has now (rates #${shownId}, of a tier deleted since)`) +
        `, and a receipt would now bill them on tier ${now.tier} at ${ratesText(now.rates)}. ` +
        'Nothing was billed: review the page, whose estimates now use the new rates, and create the receipt again.',
      { shownId, rateId: now.rates.id },
      { publicFields: { rateId: now.rates.id } },
    );
  }
}

/**
 * Some of the jobs a receipt was to bill went onto another receipt while it was being made (the
 * unique job-key index refused them). Worded for the person who asked for their own receipt.
 */
export class BilledMeanwhileError extends ConflictError {
  constructor(
    readonly username: string,
    readonly before: string,
  ) {
    super(
      'Some of these jobs were put on another receipt at the same moment, so this receipt was not created ' +
        'and nothing was written. Open your receipts to see the other one.',
      { username, before },
    );
  }
}

/**
 * The user's unbilled jobs cost more in all than a receipt's total can hold (RECEIPT_TOTAL_BOUND):
 * only jobs priced far beyond any real one get there (ingestion lets each job's hours reach a bound
 * whose item still fits). Refused with what it would have come to, so that someone looks at those
 * jobs and the rates; nothing is billed. A month-end run skips the user with this reason.
 */
export class ReceiptTotalTooLargeError extends AppError {
  constructor(
    readonly username: string,
    readonly before: string,
    total: Prisma.Decimal,
    currency: string,
  ) {
    const digits = minorUnitDigits(currency);
    const grouped = new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
    // Intl formats a decimal's text exactly; a number would be a float.
    const money = (value: string) => `${grouped.format(value as unknown as number)} ${currency}`;
    super(
      422,
      `The receipt's total, ${money(total.toFixed(digits))}, is more than a receipt can hold (less than ` +
        `${money(RECEIPT_TOTAL_BOUND)}): some of ${username}'s jobs that ended on or before ${before} are priced far ` +
        'beyond any real job. Check their figures (Usage across users) and the rates of their tier. Nothing was billed.',
      { username, before },
    );
  }
}
