import { Prisma } from '@prisma/client';
import { minorUnitDigits } from '../pricing/pricing.js';

/** Minor units back to a decimal amount, for pages. */
export function fromMinorUnits(amountMinor: bigint, currency: string): Prisma.Decimal {
  return new Prisma.Decimal(amountMinor.toString()).div(new Prisma.Decimal(10).pow(minorUnitDigits(currency)));
}

/** Whether a receipt asks for money: one of 0.00 has nothing to pay (docs/payments.md). */
export function hasAmountDue(receipt: { total: Prisma.Decimal }): boolean {
  return receipt.total.greaterThan(0);
}

/** A payment's due and received money as pages show them. */
export interface PaymentMoney {
  /** The amount due (the receipt's total when the payment started). */
  amount: Prisma.Decimal;
  currency: string;
  /** What the provider reported receiving, or null when it reported no success or did not say. */
  received: { amount: Prisma.Decimal; currency: string } | null;
  /** The received money is known and is not the amount due (another amount or currency). */
  isReceivedDifferent: boolean;
}

export function paymentMoneyOf(payment: {
  amountMinor: bigint;
  currency: string;
  receivedMinor: bigint | null;
  receivedCurrency: string | null;
}): PaymentMoney {
  const received =
    payment.receivedMinor === null || payment.receivedCurrency === null
      ? null
      : { amount: fromMinorUnits(payment.receivedMinor, payment.receivedCurrency), currency: payment.receivedCurrency };
  return {
    amount: fromMinorUnits(payment.amountMinor, payment.currency),
    currency: payment.currency,
    received,
    isReceivedDifferent:
      received !== null &&
      (payment.receivedMinor !== payment.amountMinor || payment.receivedCurrency !== payment.currency),
  };
}
