import { describe, expect, it } from 'vitest';
import { paymentMoneyOf, returnedMinorOf } from '../../src/modules/payments/payment-money.js';

describe('what of a payment’s refunds went back to the payer', () => {
  it.each([
    // refunded as the provider reported, failed since, returned
    [null, null, null],
    [null, 0n, null],
    [500n, null, 500n],
    [500n, 300n, 200n],
    [1000n, 1000n, 0n],
    // A failure told before the refund total that counts it: nothing went back, never less.
    [null, 300n, 0n],
    [200n, 300n, 0n],
  ])('refunded %s, failed %s: returned %s', (refunded, failed, returned) => {
    expect(returnedMinorOf(refunded, failed)).toBe(returned);
  });

  it.each([
    // recorded total (refunds and the lost dispute), failed since, lost in the dispute, returned
    [2000n, 1000n, 1000n, 1000n],
    [700n, 300n, 400n, 400n],
    // The lost dispute recorded before the report of a refund that had failed already: the bank's 10.00 is gone.
    [1000n, 1000n, 1000n, 1000n],
    [400n, 300n, 400n, 400n],
  ])('recorded %s, failed %s, lost in a dispute %s: returned %s', (refunded, failed, lost, returned) => {
    expect(returnedMinorOf(refunded, failed, lost)).toBe(returned);
  });

  it('pages get what was returned and what failed, as decimals in the received currency', () => {
    const money = paymentMoneyOf({
      amountMinor: 1000n,
      currency: 'THB',
      receivedMinor: 1000n,
      receivedCurrency: 'THB',
      refundedMinor: 500n,
      refundedCurrency: 'THB',
      failedRefundMinor: 300n,
    });
    expect(money.refunded?.amount.toFixed(2)).toBe('2.00');
    expect(money.refundFailed).toMatchObject({ currency: 'THB' });
    expect(money.refundFailed?.amount.toFixed(2)).toBe('3.00');
    const none = paymentMoneyOf({ amountMinor: 1000n, currency: 'THB', receivedMinor: 1000n, receivedCurrency: 'THB' });
    expect(none.refunded).toBeNull();
    expect(none.refundFailed).toBeNull();
  });
});
