import { Prisma } from '@prisma/client';
import { describe, expect, it } from 'vitest';
import {
  describeMonthEndRun,
  type MonthEndDisabledUserBilled,
  type MonthEndSkip,
} from '../../src/modules/receipts/month-end.service.js';

const money = (total: Prisma.Decimal) => total.toFixed(2);
const users = (count: number, prefix = 'bench') =>
  Array.from({ length: count }, (_, index) => `${prefix}${String(index + 100).padStart(3, '0')}`);
const skips = (names: string[], kind: MonthEndSkip['kind'], reason = 'r'): MonthEndSkip[] =>
  names.map((username) => ({ username, kind, reason }));
const run = (skipped: MonthEndSkip[], receiptCount = 271, disabledUsersBilled: MonthEndDisabledUserBilled[] = []) => ({
  before: '2026-11-30',
  receiptCount,
  noChargeCount: 0,
  totals: receiptCount > 0 ? [{ currency: 'THB', total: new Prisma.Decimal('1234.5') }] : [],
  skipped,
  disabledUsersBilled,
});
const billed = (names: string[], total = '10', currency = 'THB'): MonthEndDisabledUserBilled[] =>
  names.map((username, index) => ({
    username,
    receiptId: 500 + index,
    total: new Prisma.Decimal(total),
    currency,
    status: 'pending',
  }));

describe('the month-end message', () => {
  it.each([
    ['no skips', [], 'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB.'],
    [
      'one user with nothing left',
      skips(['alice'], 'nothing_left'),
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 1 user had nothing left to bill ' +
        '(billed by another receipt meanwhile): alice. Find their receipts on the billing page filtered by user ' +
        '(/admin/receipts?user=alice).',
    ],
    [
      '194 users with nothing left: ten names and a count',
      skips(users(194), 'nothing_left'),
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 194 users had nothing left to bill ' +
        '(billed by another receipt meanwhile): bench100, bench101, bench102, bench103, bench104, bench105, bench106, ' +
        'bench107, bench108, bench109 and 184 more. Find their receipts on the billing page filtered by user ' +
        '(/admin/receipts?user=bench100).',
    ],
    [
      'exactly ten billed at the same moment: all named',
      skips(users(10), 'billed_meanwhile'),
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 10 users had their jobs billed by ' +
        'another receipt made at the same moment, so this run wrote nothing for them: bench100, bench101, bench102, ' +
        'bench103, bench104, bench105, bench106, bench107, bench108, bench109. Find their receipts on the billing ' +
        'page filtered by user (/admin/receipts?user=bench100).',
    ],
  ])('%s', (_label, skipped, expected) => {
    expect(describeMonthEndRun(run(skipped), money)).toBe(expected);
  });

  it.each([
    [
      'one disabled user billed',
      billed(['bob'], '7.1'),
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 1 of them went to a disabled user ' +
        '(total 7.10 THB): bob. Nobody can sign in to see or pay it: chase it by other means and mark it paid when ' +
        'finance settles it.',
    ],
    [
      'two in two currencies: a total in each',
      [...billed(['bob'], '7.1', 'EUR'), ...billed(['carol'], '1500.75')],
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 2 of them went to disabled users ' +
        '(total 7.10 EUR, 1500.75 THB): bob, carol. Nobody can sign in to see or pay them: chase them by other means ' +
        'and mark each paid when finance settles it.',
    ],
    [
      'twelve: ten names and a count',
      billed(users(12), '1'),
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 12 of them went to disabled users ' +
        '(total 12.00 THB): bench100, bench101, bench102, bench103, bench104, bench105, bench106, bench107, bench108, ' +
        'bench109 and 2 more. Nobody can sign in to see or pay them: chase them by other means and mark each paid ' +
        'when finance settles it.',
    ],
  ])('%s', (_label, disabledUsersBilled, expected) => {
    expect(describeMonthEndRun(run([], 271, disabledUsersBilled), money)).toBe(expected);
  });

  it("asks nobody to chase a disabled user's receipt settled as no charge", () => {
    // A receipt of 0.00 is made paid (settled as no charge): the run told the admin to chase it by other
    // means and mark it paid, which it already was.
    const settled = (names: string[]) => billed(names, '0').map((receipt) => ({ ...receipt, status: 'paid' as const }));
    expect(describeMonthEndRun(run([], 271, settled(['bob'])), money)).toBe(
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 1 of them went to a disabled user ' +
        '(total 0.00 THB): bob. It is settled as no charge: there is nothing to chase.',
    );
    expect(describeMonthEndRun(run([], 271, settled(['bob', 'carol'])), money)).toBe(
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 2 of them went to disabled users ' +
        '(total 0.00 THB): bob, carol. Each is settled as no charge: there is nothing to chase.',
    );
    // Some to pay among them: only those are to be chased, by name; asking to chase "them" all named
    // receipts that were already settled.
    expect(describeMonthEndRun(run([], 271, [...settled(['bob']), ...billed(['carol'], '7.1')]), money)).toBe(
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 2 of them went to disabled users ' +
        '(total 7.10 THB): bob, carol. Nobody can sign in to see or pay the one still to pay (carol): chase it by ' +
        'other means and mark it paid when finance settles it; the other is settled as no charge.',
    );
    expect(
      describeMonthEndRun(run([], 271, [...settled(['bob', 'dave']), ...billed(['carol', 'erin'], '7.1')]), money),
    ).toBe(
      'Month-end run up to 2026-11-30: 271 receipts created, total 1234.50 THB. 4 of them went to disabled users ' +
        '(total 14.20 THB): bob, dave, carol, erin. Nobody can sign in to see or pay the 2 still to pay (carol, ' +
        'erin): chase them by other means and mark each paid when finance settles it; the others are settled as no ' +
        'charge.',
    );
  });

  it('stays short with thousands of users of every kind', () => {
    const skipped = [
      ...skips(users(3000, 'a'), 'nothing_left'),
      ...skips(users(3000, 'b'), 'billed_meanwhile'),
      ...skips(users(3000, 'c'), 'conflict', 'The same reason.'),
      ...users(50, 'd').flatMap((username, index) => skips([username], 'conflict', `Reason ${index}.`)),
    ];
    const message = describeMonthEndRun(run(skipped, 0), money);
    expect(message.length).toBeLessThan(1_500);
    expect(message).toContain('nothing to bill, no receipt created.');
    expect(message).toContain('and 2,990 more.');
    expect(message).toContain('3,000 users skipped (The same reason): c100,');
    expect(message).toContain('48 more users skipped for other reasons: d102,');
  });
});
