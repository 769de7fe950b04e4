import { describe, expect, it } from 'vitest';
import { withoutEarlierRefundSoFar } from '../../src/modules/payments/payment-money.js';

// A held payment's reason names the provider's refund total so far; a later total takes its place rather
// than being added after it (three refunds in part read as three totals).
describe('a held payment’s reason without the refund words of an earlier total', () => {
  const voided = 'receipt #7 was voided after it was paid online: refund the payment or apply it elsewhere';
  const disputed =
    'the payer disputed 4.00 THB of the 10.00 THB received at dummy (reason: fraudulent); receipt #7 stays paid ' +
    'until this is resolved';
  it.each([
    [
      'held apart',
      `${voided}; 3.00 THB of the 10.00 THB received has been refunded at dummy so far; 7.00 THB is still held`,
      voided,
    ],
    [
      'held apart, its money paying another receipt',
      `${voided}; 0.20 THB of the 10.00 THB received has been refunded at dummy so far; 9.80 THB is still held; its ` +
        'money paid receipt #9 (marked paid with the money of receipt #7), which stays paid though 0.20 THB of that ' +
        'money went back to the payer: collect 0.20 THB for receipt #9 or void it, then resolve this',
      voided,
    ],
    [
      'held apart, with a failed refund in the total',
      `${voided}; dummy reported 5.00 THB of the 10.00 THB received refunded so far, of which 3.00 THB had failed ` +
        'already, so 2.00 THB went back; 8.00 THB is still held',
      voided,
    ],
    [
      'still paying its receipt, held for a dispute',
      `${disputed}; 3.00 THB of the 10.00 THB received was refunded at dummy; receipt #7 stays paid until this is resolved`,
      disputed,
    ],
    [
      'only the refund',
      '3.00 THB of the 10.00 THB received was refunded at dummy; receipt #7 stays paid until this is resolved',
      '',
    ],
    // Words something else wrote after the refund's: they stay, and the total's words are taken from
    // before them (they were left, and the next total added after, so the reason said two totals).
    [
      'a failure after it',
      `${voided}; 3.00 THB of the 10.00 THB received has been refunded at dummy so far; 7.00 THB is still held; the ` +
        'refund re_1 of 3.00 THB failed at dummy',
      `${voided}; the refund re_1 of 3.00 THB failed at dummy`,
    ],
    [
      'a dispute after it, its money paying another receipt',
      `${voided}; 0.20 THB of the 10.00 THB received has been refunded at dummy so far; 9.80 THB is still held; its ` +
        'money paid receipt #9 (marked paid with the money of receipt #7), which stays paid though 0.20 THB of that ' +
        `money went back to the payer: collect 0.20 THB for receipt #9 or void it, then resolve this; ${disputed}`,
      `${voided}; ${disputed}`,
    ],
    [
      'still paying its receipt, an earlier decision after it',
      '3.00 THB of the 10.00 THB received was refunded at dummy; receipt #7 stays paid until this is resolved; it had ' +
        'been dismissed by boss, after it was held for review: the payer disputed it',
      'it had been dismissed by boss, after it was held for review: the payer disputed it',
    ],
    // The reason's own words come first; an earlier decision's reason quoted after them keeps its refund's.
    [
      'an earlier decision quoting an earlier refund',
      '4.00 THB of the 10.00 THB received was refunded at dummy; receipt #7 stays paid until this is resolved; it had ' +
        'been dismissed by boss, after it was held for review: 1.00 THB of the 10.00 THB received was refunded at ' +
        'dummy; receipt #7 stays paid until this is resolved',
      'it had been dismissed by boss, after it was held for review: 1.00 THB of the 10.00 THB received was refunded ' +
        'at dummy; receipt #7 stays paid until this is resolved',
    ],
    // Words that only end like a refund's are not its sentence.
    [
      'a sentence that only ends like one',
      `${voided}; not 3.00 THB of the 10.00 THB received has been refunded at dummy so far; 7.00 THB is still held`,
      null,
    ],
    ['no refund', voided, null],
    // Another payment's money or another provider's words are not this refund's.
    [
      'another amount received',
      `${voided}; 3.00 THB of the 12.00 THB received has been refunded at dummy so far; 9.00 THB is still held`,
      null,
    ],
    [
      'another provider',
      `${voided}; 3.00 THB of the 10.00 THB received has been refunded at stripe so far; 7.00 THB is still held`,
      null,
    ],
  ])('%s', (_case, reason, left) => {
    expect(withoutEarlierRefundSoFar(reason, '10.00 THB', 'dummy')).toBe(left ?? reason);
  });
});
