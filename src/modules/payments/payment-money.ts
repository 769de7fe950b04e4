import { Prisma } from '@prisma/client';
import { formatDecimalText } from '../../http/view-format.js';
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
  /** What the provider reported refunding of it so far, or null when nothing was. */
  refunded: { amount: Prisma.Decimal; currency: string } | null;
}

export function paymentMoneyOf(payment: {
  amountMinor: bigint;
  currency: string;
  receivedMinor: bigint | null;
  receivedCurrency: string | null;
  refundedMinor?: bigint | null;
  refundedCurrency?: string | null;
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
    refunded:
      payment.refundedMinor === null ||
      payment.refundedMinor === undefined ||
      payment.refundedCurrency === null ||
      payment.refundedCurrency === undefined
        ? null
        : {
            amount: fromMinorUnits(payment.refundedMinor, payment.refundedCurrency),
            currency: payment.refundedCurrency,
          },
  };
}

/** A payment held for review as the researcher is told of it: its receipt and the money it stands for. */
export interface HeldPayment {
  id: number;
  receiptId: number;
  /** What the provider reported receiving, or the amount due when it did not say. */
  amount: Prisma.Decimal;
  currency: string;
}

export function heldPaymentOf(payment: {
  id: number;
  receiptId: number;
  amountMinor: bigint;
  currency: string;
  receivedMinor: bigint | null;
  receivedCurrency: string | null;
}): HeldPayment {
  const money = paymentMoneyOf(payment);
  const shown = money.received ?? { amount: money.amount, currency: money.currency };
  return { id: payment.id, receiptId: payment.receiptId, amount: shown.amount, currency: shown.currency };
}

/** The held money as the pages write money: "8,542.37 THB". */
export function describeHeldAmount(held: HeldPayment): string {
  const digits = minorUnitDigits(held.currency);
  const text = held.amount.toFixed(digits);
  return `${formatDecimalText(text, digits) ?? text} ${held.currency}`;
}

/**
 * Why a researcher cannot pay a receipt online while a payment for another of their receipts
 * that billed some of the same jobs (a receipt voided and billed again) is held for review.
 */
export function heldForSameJobsMessage(held: HeldPayment): string {
  return (
    `A payment of ${describeHeldAmount(held)} for receipt #${held.receiptId}, which billed some of these jobs, is ` +
    'being checked by the billing team, so this receipt cannot be paid online until they have decided what that ' +
    'money pays for; they will be in touch.'
  );
}
