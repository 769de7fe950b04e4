import { describe, expect, it } from 'vitest';
import { describeAuditAmounts } from '../../src/modules/audit/audit.service.js';

describe('describeAuditAmounts', () => {
  it.each([
    [{ amountMinor: '922170', currency: 'THB' }, ['amountMinor 922170 = 9,221.70 THB']],
    // Paired with its own currency when the entry has one, else with `currency`.
    [
      { amountMinor: '54901', currency: 'THB', receivedMinor: '54901', receivedCurrency: 'USD' },
      ['amountMinor 54901 = 549.01 THB', 'receivedMinor 54901 = 549.01 USD'],
    ],
    [
      { amountMinor: '300', refundedTotalMinor: '1000', currency: 'THB' },
      ['amountMinor 300 = 3.00 THB', 'refundedTotalMinor 1000 = 10.00 THB'],
    ],
    // The currency's own decimals: none for JPY, three for KWD.
    [{ amountMinor: '1200', currency: 'JPY' }, ['amountMinor 1200 = 1,200 JPY']],
    [{ amountMinor: '1234', currency: 'KWD' }, ['amountMinor 1234 = 1.234 KWD']],
    // Left as recorded: no currency code, not a whole number, not minor units, no details.
    [{ amountMinor: '150' }, []],
    [{ amountMinor: '150', currency: 'baht' }, []],
    [{ amountMinor: '1.50', currency: 'THB' }, []],
    [{ total: '9221.70', currency: 'THB' }, []],
    [null, []],
    [['amountMinor'], []],
  ])('%j is described as %j', (details, expected) => {
    expect(describeAuditAmounts(details)).toEqual(expected);
  });
});
