import type { Database } from '../../db/database.js';
import type { Logger } from '../../shared/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PaymentProvider } from './payment-provider.js';
import * as paymentsRepository from './payments.repository.js';

/** A payment a void canceled, with what closing its checkout at the provider needs. */
export interface CanceledCheckout {
  id: number;
  provider: string;
  externalPaymentId: string | null;
  idempotencyKey: string;
}

/**
 * What ended the payment whose checkout is closed: the receipt's void, or a newer click that abandoned
 * the start while the provider was still opening its checkout (payments.service.ts, startPayment).
 */
export type CheckoutEndedBy = 'void' | 'mark_paid' | 'accept' | 'abandoned_start';

const LOG_MESSAGE: Record<CheckoutEndedBy, string> = {
  void: 'voided receipt: checkout not closed at the payment provider',
  mark_paid: 'receipt marked paid by hand: checkout not closed at the payment provider',
  accept: 'receipt paid from an accepted held payment: checkout not closed at the payment provider',
  abandoned_start: 'abandoned payment start: checkout not closed at the payment provider',
};

const ALREADY_PAID_WHEN: Record<CheckoutEndedBy, string> = {
  void: 'when the receipt was voided',
  mark_paid: 'when the receipt was marked paid by hand',
  accept: 'when a held payment was accepted for the receipt',
  abandoned_start: 'when its start was abandoned',
};

/** What the admin's notice says came just after the payment at the checkout. */
const JUST_BEFORE: Record<CheckoutEndedBy, string> = {
  void: 'the void',
  mark_paid: 'the receipt was marked paid by hand',
  accept: 'a held payment was accepted for the receipt',
  abandoned_start: 'its start was abandoned',
};

/** A checkout that may still take money at the provider after the void; the admin is told. */
export interface CheckoutLeftOpen {
  paymentId: number;
  /** already_complete: paid just before the void; failed: the provider could not be told. */
  outcome: 'already_complete' | 'failed';
  /** What to tell the admin, in a sentence. */
  notice: string;
}

export interface CheckoutCloserDeps {
  db: Database;
  /** The configured provider; undefined when online payment is off. */
  provider: PaymentProvider | undefined;
  metrics: Pick<Metrics, 'checkoutExpiries'>;
  logger: Logger;
}

/**
 * Closes at the provider the checkouts a void canceled, so the researcher cannot pay in a tab left
 * open; a start whose checkout arrived after its payment ended (voided or abandoned meanwhile)
 * closes that one through here too. Called after the void commits: a provider that is slow or down
 * must neither hold the void's row locks for its timeout nor undo the void, which stands whatever
 * the provider answers. A checkout left open is told, not thrown: its payment is canceled (or
 * failed), so a success there is held for review by the webhook (docs/payments.md, Webhooks).
 */
export function createCheckoutCloser(deps: CheckoutCloserDeps) {
  const { provider, metrics, logger } = deps;

  async function leftOpen(
    payment: CanceledCheckout,
    receiptId: number,
    endedBy: CheckoutEndedBy,
    outcome: CheckoutLeftOpen['outcome'],
    reason: string,
    notice: string,
  ): Promise<CheckoutLeftOpen> {
    metrics.checkoutExpiries.inc({ provider: payment.provider, outcome });
    logger.warn(
      { paymentId: payment.id, receiptId, provider: payment.provider, outcome, reason },
      LOG_MESSAGE[endedBy],
    );
    try {
      // Also on the payments page, where the money will show up: the flash is gone after one page.
      await paymentsRepository.noteCheckoutLeftOpen(deps.db.prisma, payment.id, reason);
    } catch (error) {
      logger.warn({ paymentId: payment.id, err: error }, 'could not note the checkout left open on its payment');
    }
    return { paymentId: payment.id, outcome, notice };
  }

  async function closeOne(
    receiptId: number,
    payment: CanceledCheckout,
    endedBy: CheckoutEndedBy,
  ): Promise<CheckoutLeftOpen | null> {
    const shown = shownProviderName(payment.provider);
    // No provider id yet: the start under way attaches its checkout to the canceled payment, then
    // closes it through here itself and does not send the researcher there (startPayment).
    if (payment.externalPaymentId === null) return null;
    if (provider?.name !== payment.provider) {
      const reason = `its checkout could not be expired: ${shown} is not the configured payment provider`;
      return leftOpen(
        payment,
        receiptId,
        endedBy,
        'failed',
        reason,
        `Payment #${payment.id}: ${reason}. It may still be open there; money paid there will be held for review on the payments page.`,
      );
    }
    if (!provider.expireCheckout) return null;
    try {
      const expiry = await provider.expireCheckout(payment.externalPaymentId, `${payment.idempotencyKey}-expire`);
      if (expiry === 'expired') {
        metrics.checkoutExpiries.inc({ provider: payment.provider, outcome: 'expired' });
        return null;
      }
      return leftOpen(
        payment,
        receiptId,
        endedBy,
        'already_complete',
        `its checkout had already been paid at ${shown} ${ALREADY_PAID_WHEN[endedBy]}`,
        `Payment #${payment.id} had already been paid at its ${shown} checkout just before ${JUST_BEFORE[endedBy]}: ` +
          `${shown}'s confirmation will hold it for review on the payments page, to refund or apply elsewhere.`,
      );
    } catch (error) {
      const message = (error as Error).message;
      return leftOpen(
        payment,
        receiptId,
        endedBy,
        'failed',
        `its checkout could not be expired at ${shown} (${message})`,
        `The checkout of payment #${payment.id} could not be expired at ${shown} (${message}) and may ` +
          'still be open there: money paid there will be held for review on the payments page.',
      );
    }
  }

  /** Closes each checkout; returns those that may still take money (or took it), with what to tell the admin. */
  return async function closeCanceledCheckouts(
    receiptId: number,
    canceled: CanceledCheckout[],
    endedBy: CheckoutEndedBy = 'void',
  ): Promise<CheckoutLeftOpen[]> {
    const open: CheckoutLeftOpen[] = [];
    for (const payment of canceled) {
      const result = await closeOne(receiptId, payment, endedBy);
      if (result) open.push(result);
    }
    return open;
  };
}

export type CloseCanceledCheckouts = ReturnType<typeof createCheckoutCloser>;

/** How a provider is named in sentences: its brand, where it has one. */
function shownProviderName(provider: string): string {
  return provider === 'stripe' ? 'Stripe' : provider;
}
