import type { Prisma } from '@prisma/client';
import { BadRequestError, ConflictError } from '../../shared/errors.js';
import { formatLocalDateTime } from '../../shared/local-date.js';
import { revealControls } from '../../shared/visible-text.js';
import { appendAudit } from '../audit/audit.service.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import {
  describeMinorUnits,
  hasTakenMoney,
  lostDisputeMinorOf,
  receivedBy,
  receivedOf,
  returnedMinorOf,
  withoutEarlierRefundSoFar,
} from './payment-money.js';
import type { PaymentEvent } from './payment-provider.js';
import type { PaymentReviewService } from './payment-review.service.js';
import * as paymentsRepository from './payments.repository.js';
import type { PaymentsServiceDeps, WebhookOutcome } from './payments.service.js';

/**
 * A refund or dispute event that does not fit the payment (another currency, more than it
 * received): no money changes, the provider is told why (its dashboard shows the answer), and
 * the refusal is kept for finance on /admin/payments (recordRefusedClaim).
 */
export class ClaimBackRefusedError extends ConflictError {
  constructor(
    /** Why, as one clause (the answer wraps it); kept for finance with the refused claim. */
    readonly reason: string,
    /** The payment the claim was for, and what it claimed back (null: the event said no amount and currency). */
    readonly claim: { payment: { id: number; receiptId: number }; claimed: paymentsRepository.Received | null },
  ) {
    super(`Webhook rejected: ${reason}; nothing was changed.`);
  }
}

/** Who and what a provider's webhook audits: the provider, on the payment's receipt (no address or agent of a person). */
export function providerAuditOf(providerName: string, payment: { receiptId: number }) {
  return { actor: `provider:${providerName}`, ip: null, userAgent: null, target: `receipt:${payment.receiptId}` };
}

/**
 * Refuses money claimed back from `payment` (a refund, a dispute) in another currency than it
 * received, or more than it received: webhooks are amount-checked, and such an event is a
 * provider's or a forger's mistake that must change nothing (ClaimBackRefusedError, 409).
 */
function refuseClaimBeyondReceived(
  payment: paymentsRepository.PaymentRow,
  claimed: paymentsRepository.Received,
  kind: 'refund' | 'dispute' | 'failed refund',
  amountSuffix?: string,
): void {
  const received = receivedBy(payment);
  const receivedText = describeMinorUnits(received.amountMinor, received.currency);
  const claimedText = describeMinorUnits(claimed.amountMinor, claimed.currency);
  if (claimed.currency !== received.currency) {
    throw new ClaimBackRefusedError(
      `the ${kind} of payment #${payment.id} is in ${claimed.currency} (${claimedText}), but the payment received ${receivedText}`,
      { payment, claimed },
    );
  }
  if (claimed.amountMinor > received.amountMinor) {
    const amount = amountSuffix ? `${claimedText} ${amountSuffix}` : claimedText;
    throw new ClaimBackRefusedError(
      `the ${kind} of payment #${payment.id} (${amount}) is more than the ${receivedText} it received`,
      { payment, claimed },
    );
  }
}

/**
 * True for the payment a paid receipt is paid from: a success, an accepted held payment, or one
 * held after a partial refund or a dispute while the receipt stays paid from it.
 */
function paysItsReceipt(payment: paymentsRepository.PaymentRow): boolean {
  return (
    payment.status === 'succeeded' ||
    (payment.status === 'resolved' && payment.reviewOutcome === 'accepted') ||
    (payment.status === 'needs_review' && payment.holdsPaidReceipt)
  );
}

/** What the provider's money-going-back events need of the payments service (createPaymentsService). */
export interface PaymentReturnsServiceParts {
  /** The receipt, not void, that a payment's money pays now, its own receipt voided since (the admin's review reads it too). */
  receiptPaidWithMoneyOf: PaymentReviewService['receiptPaidWithMoneyOf'];
}

/**
 * The provider's events of money going back from a payment (refunds, disputes and their outcomes,
 * refunds that failed), each applied inside its webhook's transaction; part of the payments service.
 */
export function createPaymentReturnsService(
  deps: PaymentsServiceDeps,
  { receiptPaidWithMoneyOf }: PaymentReturnsServiceParts,
) {
  const { now } = deps;

  /**
   * Records that `gone` (all of the payment's money gone back so far: refunds, and a lost dispute's
   * amount) left the payment, and settles its receipt as a refund does: when the payment paid it,
   * gone in full, the receipt is unpaid again and the payment resolved `refunded` by the provider;
   * in part, the receipt stays paid and the payment is held for an admin with `partReason`.
   */
  async function recordMoneyGone(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    gone: paymentsRepository.Received,
    at: Date,
    texts: {
      fullReason: string;
      fullNote: string;
      partReason: string;
      /**
       * Gone in full while something is still open on the payment (a dispute): the receipt is unpaid
       * all the same, but the payment stays held with this reason instead of being resolved.
       */
      fullHeldReason?: string;
    },
    /** What of `gone` actually went back (less refunds known to have failed); `gone` when absent. */
    returned: bigint = gone.amountMinor,
  ): Promise<{ receiptChange: 'unpaid' | 'stays_paid' | 'none'; outcome: WebhookOutcome }> {
    await paymentsRepository.recordRefund(tx, payment.id, gone, at);
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const paidTheReceipt = receipt?.status === 'paid' && paysItsReceipt(payment);
    if (!paidTheReceipt) return { receiptChange: 'none', outcome: 'ok' };
    if (returned === receivedBy(payment).amountMinor) {
      // Nothing of the money is left: the receipt, with its jobs, is to be paid again. The payment
      // keeps when it paid it, so paid.csv still lists it in that period.
      if (receipt.paidAt) await paymentsRepository.keepPaidAtIfUnset(tx, payment.id, receipt.paidAt);
      const isUnpaid = await receiptsRepository.transitionReceipt(tx, payment.receiptId, ['paid'], {
        status: 'pending',
        paidAt: null,
        paymentMethod: null,
        txRef: null,
      });
      if (!isUnpaid) throw new ConflictError(`Receipt #${payment.receiptId} changed meanwhile; nothing was changed.`);
      if (texts.fullHeldReason !== undefined) {
        await paymentsRepository.holdAfterFullRefund(tx, payment.id, texts.fullHeldReason);
        return { receiptChange: 'unpaid', outcome: 'review' };
      }
      await paymentsRepository.resolveAsRefundedByProvider(tx, payment.id, {
        reviewReason: texts.fullReason,
        note: texts.fullNote,
        reviewedBy: `provider:${providerName}`,
        reviewedAt: at,
      });
      return { receiptChange: 'unpaid', outcome: 'ok' };
    }
    // Part of the money went back: the receipt stays paid from the rest until an admin decides
    // (keep it paid, or void it to bill its jobs again and settle the rest).
    await paymentsRepository.holdForPartialRefund(tx, payment.id, texts.partReason);
    return { receiptChange: 'stays_paid', outcome: 'review' };
  }

  /**
   * A payment whose review was closed other than by accepting it (refunded, dismissed, or resolved
   * by a refund in full) pays no receipt, and /admin/payments lists it as settled: what the provider
   * reports about its money since (a dispute, its outcome) is nothing that decision weighed.
   */
  function isResolvedApart(payment: paymentsRepository.PaymentRow): boolean {
    return payment.status === 'resolved' && payment.reviewOutcome !== 'accepted';
  }

  /**
   * A resolution as the reason of a later hold names it: "resolved as refunded by alice on 2026-12-04
   * 03:50 ("note")". The note's bidirectional controls are written as escapes (revealControls):
   * raw, one turned the rest of the sentence around wherever it went (the card's "Why:", a refusal
   * quoting the reason). The note as typed stays in its payment.resolve audit entry.
   */
  function describeResolution(payment: paymentsRepository.PaymentRow): string {
    const when = payment.reviewedAt ? formatLocalDateTime(payment.reviewedAt, deps.timeZone) : 'an unknown date';
    return (
      `resolved as ${payment.reviewOutcome} by ${payment.reviewedBy ?? 'an unknown reviewer'} on ${when}` +
      `${payment.reviewNote ? ` ("${revealControls(payment.reviewNote)}")` : ''}`
    );
  }

  /**
   * For a payment an admin resolved, which an event is about to hold again (clearing the decision
   * from the row): the decision and what it was taken on (an open dispute, a void), for the end of
   * the new reason, where /admin/payments says them. Empty otherwise; a provider's own resolution (a
   * refund in full) is the event's business and not repeated.
   */
  function decisionNoteOf(payment: paymentsRepository.PaymentRow): string {
    if (payment.status !== 'resolved' || payment.reviewedBy?.startsWith('provider:')) return '';
    return (
      `; it had been ${describeResolution(payment)}` +
      `${payment.reviewReason ? `, after it was held for review: ${revealControls(payment.reviewReason)}` : ''}`
    );
  }

  /**
   * Holds a resolved payment for review again because the provider reported `what` after the
   * decision; the reason names that decision (who, when, their note) and what it was held for
   * before, since the resolution itself is cleared (the audit log keeps it). Takes the receipt's
   * lock after the payment's, as every hold does.
   */
  async function reopenAfterResolution(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    what: string,
    consequence: string,
  ) {
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const reason =
      `${what}, after this payment was ${describeResolution(payment)}: ${consequence}; check it with ` +
      `${providerName} and resolve it again` +
      `${payment.reviewReason ? `; before it was resolved it was held for review: ${revealControls(payment.reviewReason)}` : ''}`;
    if (!(await paymentsRepository.reopenResolvedReview(tx, payment.id, reason)))
      throw new ConflictError(`Payment #${payment.id} changed meanwhile; nothing was changed.`);
  }

  /**
   * A refund the provider reports for a payment (what it has refunded of it so far), inside the
   * event's transaction; the payment's row is locked. Money that never arrived changes nothing
   * (`ignored`). A refund in another currency than the payment received, or of more than it
   * received, is refused (ClaimBackRefusedError: the transaction, event row included, rolls back).
   * Otherwise the refund is recorded on the payment and audited, and when the payment paid its
   * receipt: refunded in full, the receipt is unpaid again and the payment resolved as refunded
   * by the provider; in part, the receipt stays paid and the payment is held for an admin. A held
   * payment that did not pay its receipt has a refund in part added to its reason, with what is left.
   */
  async function applyRefund(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    const received = receivedBy(payment);
    const receivedText = describeMinorUnits(received.amountMinor, received.currency);
    const refunded = receivedOf(event);
    if (refunded === null) {
      throw new ClaimBackRefusedError(
        `the refund of payment #${payment.id} says ${describeMinorUnits(event.amountMinor, event.currency)}, not an amount and currency`,
        { payment, claimed: null },
      );
    }
    const refundedText = describeMinorUnits(refunded.amountMinor, refunded.currency);
    refuseClaimBeyondReceived(payment, refunded, 'refund', 'in all');
    // A lost dispute is in the recorded total too (recordMoneyGone), but not in the provider's
    // refund total (Stripe's amount_refunded counts refunds only): it is kept on top of it.
    const lostMinor = lostDisputeMinorOf(payment);
    // The provider's total counts the refunds that stand: one reported and then failed is taken out
    // of it again (Stripe's amount_refunded; the dummy's amount_cents alike), so the failures the
    // recorded total counts are added back to read it as the recorded one (refunds ever reported).
    // A failure the provider made after this total (Stripe's event times say so) is still in it:
    // a report made before a refund failed, delivered after the failure. Without the times (the
    // dummy provider), or made in the same second, a total is read as made after every failure told
    // before it.
    const madeBefore = (failure: { failureOccurredAt: Date | null }) =>
      event.occurredAt != null && failure.failureOccurredAt !== null && event.occurredAt < failure.failureOccurredAt;
    let droppedMinor = 0n;
    let failedSinceMinor = 0n;
    for (const failure of await paymentsRepository.findFailedRefundsInReportedTotal(tx, payment.id)) {
      if (madeBefore(failure)) failedSinceMinor += failure.amountMinor;
      else droppedMinor += failure.amountMinor;
    }
    const reported = refunded.amountMinor + droppedMinor;
    // Provider totals only grow: an earlier refund's event arriving late, or one of nothing, adds nothing.
    const before = (payment.refundedMinor ?? 0n) - lostMinor;
    if (reported <= before) return { outcome: 'ignored', paymentId: payment.id };
    const at = now();
    // Providers do not promise order: a refund's failure can arrive before the report that counts
    // it. A refund known to have failed returned nothing, so it must not unpay the receipt; the
    // total is still recorded as reported, as when the failure comes second (returnedMinorOf).
    const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
    // Of the failures told before any report of them, this total counts only those it can hold (in
    // the order they were told): what it adds to the refunds already recorded. A refund larger than
    // that had failed before the total was made, which leaves it out as it leaves out any failed
    // refund; it was read as counted all the same, so 3.00 THB reported after a failed 4.00 THB read
    // as nothing returned. Either way it is in the recorded total from now on.
    const failedFirst = await paymentsRepository.findFailedRefundsNotInReportedTotal(tx, payment.id);
    let room = reported - before;
    let failedFirstMinor = 0n;
    let failedBeforeMinor = 0n;
    for (const failure of failedFirst) {
      if (failure.amountMinor <= room) {
        room -= failure.amountMinor;
        failedFirstMinor += failure.amountMinor;
      } else {
        failedBeforeMinor += failure.amountMinor;
      }
    }
    // Refunds this total counts that had failed already: its reason says so.
    const failedInTotalMinor = failedFirstMinor + failedSinceMinor;
    const standingMinor = reported - droppedMinor - failedInTotalMinor;
    const returned = standingMinor > 0n ? standingMinor : 0n;
    const returnedText = returned === 0n ? 'nothing' : describeMinorUnits(returned, refunded.currency);
    const recorded = { amountMinor: reported + failedBeforeMinor + lostMinor, currency: refunded.currency };
    refuseClaimBeyondReceived(
      payment,
      { amountMinor: returned + lostMinor, currency: refunded.currency },
      'refund',
      'in all, with its lost dispute',
    );
    const lostText = describeMinorUnits(lostMinor, refunded.currency);
    // What the provider refunded, when a lost dispute took the rest: "the whole" amount read as refunded,
    // and finance matching the provider's refunds looked for money the provider never returned.
    const fullRefundNote =
      lostMinor === 0n
        ? `${providerName} reported the whole ${receivedText} refunded (event ${event.id})`
        : `${providerName} reported ${refundedText} refunded, the rest of the ${receivedText} received after the ` +
          `${lostText} taken back by the lost dispute (event ${event.id})`;
    // Held already for a dispute: the bank may take more than this refund, so the dispute stays in
    // what the admin decides on (the refund's own words replace an earlier refund's).
    // What it is held for so far, less the words of an earlier refund in part: this total says the refund
    // so far in their place (each refund's words were added after the last, so the reason repeated itself).
    const heldAsIs = payment.status === 'needs_review' && payment.reviewReason ? payment.reviewReason : '';
    const heldReason = heldAsIs && withoutEarlierRefundSoFar(heldAsIs, receivedText, providerName);
    const heldForDispute = payment.externalDisputeId !== null && heldReason !== '' ? `${heldReason}; ` : '';
    // Held already, by a refund that failed before this total: what the admin decides on so far is kept.
    const heldBefore = heldReason === '' ? '' : `${heldReason}; `;
    const partReason =
      (failedInTotalMinor === 0n && lostMinor === 0n
        ? `${failedMinor === 0n ? heldForDispute : heldBefore}${refundedText} of the ${receivedText} received was ` +
          `refunded at ${providerName}; receipt #${payment.receiptId} stays paid until this is resolved`
        : failedInTotalMinor === 0n
          ? // Held already by the lost dispute: what the admin decides on so far is kept.
            `${heldBefore}` +
            `${refundedText} of the ${receivedText} received was refunded at ${providerName}, on top of the ` +
            `${lostText} taken back by the lost dispute; receipt #${payment.receiptId} stays paid until this is resolved`
          : // Held already by the failure told first: what the admin decides on so far is kept.
            `${heldBefore}` +
            `${providerName} reported ${refundedText} of the ${receivedText} received refunded, of which ` +
            `${describeMinorUnits(failedInTotalMinor, refunded.currency)} had failed already, so ${returnedText} went back; ` +
            `receipt #${payment.receiptId} stays paid until this is resolved`) + decisionNoteOf(payment);
    // Held after a refund that failed, what the admin decided on so far is kept whole before the refund in
    // full: the failure's words were dropped from the reason /admin/payments shows (still recorded apart),
    // and only "refunded in full …" was left. Whole, since the failure's words name the refund in part.
    const fullReason =
      `${failedMinor === 0n ? heldForDispute : heldAsIs && `${heldAsIs}; `}refunded in full at ${providerName} (${refundedText}` +
      `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); ` +
      `receipt #${payment.receiptId} is unpaid again`;
    // A dispute still open: the bank may yet take the money back from the centre, though it went back
    // to the payer already. Resolved as refunded, the payment left /admin/payments' held list and the
    // dispute's words left its reason, so nobody answered the bank; held, it waits for finance, as a
    // dispute told after a refund in full holds it (either order ends the same).
    const isDisputeOpen = payment.externalDisputeId !== null && payment.disputeStatus === null;
    const { receiptChange, outcome } = await recordMoneyGone(
      tx,
      providerName,
      payment,
      recorded,
      at,
      {
        fullReason: `${fullReason}${decisionNoteOf(payment)}`,
        fullNote: fullRefundNote,
        partReason,
        ...(isDisputeOpen
          ? {
              fullHeldReason:
                `${fullReason}; the dispute is still open, so the bank may take the money back as well: answer ` +
                `it at ${providerName} (the payer was refunded) and resolve this once it is settled` +
                decisionNoteOf(payment),
            }
          : {}),
      },
      returned + lostMinor,
    );
    // A failure told before this report is counted by it; the provider's next totals leave it out.
    if (failedFirst.length > 0) await paymentsRepository.markFailedRefundsInReportedTotal(tx, payment.id);
    // Held without paying its receipt (paid short, after a cancel, its receipt voided or paid
    // otherwise), and now all of its money went back to the payer: there is nothing left for
    // finance to accept or apply, which is what the hold waited for. Left held, it kept the receipt,
    // and every receipt billing its jobs, from being paid online until an admin typed in what the
    // provider had already said. An open dispute keeps it held: the bank may take the money again.
    const isHeldGoneInFull =
      receiptChange === 'none' &&
      payment.status === 'needs_review' &&
      !isDisputeOpen &&
      returned + lostMinor === received.amountMinor;
    // Held without paying its receipt and with its dispute still open, all of its money went back:
    // it stays held for the dispute, and its reason says the payer was refunded. It used to be
    // recorded and answered `ok` with the reason unchanged, so the admin reviewing it did not see
    // that the money had gone back, and might refund it again.
    const isHeldWithDisputeGoneInFull =
      receiptChange === 'none' &&
      payment.status === 'needs_review' &&
      isDisputeOpen &&
      returned + lostMinor === received.amountMinor;
    // Unless its money paid another receipt since (its receipt voided, the receipt billing its jobs
    // again marked paid with that money): that receipt stays paid with money the payer now has back.
    // Resolved as refunded, nothing on /admin/payments said so, though an admin's own `refunded` is
    // refused for it (refuseRefundOfMoneyPayingAReceipt); held, it waits for finance to collect that
    // receipt again or void it.
    // Held without paying its receipt (its receipt voided, paid short, after a cancel), and part of its
    // money went back: still held, as it was (`ok`), but the reason the admin reads on /admin/payments
    // said nothing of the refund, so finance, told to refund the payment or apply it, saw the Refunded
    // column but not what is left to settle. Each total is added as a total ("so far"): the provider
    // reports what it has refunded in all, and a later one is read after the earlier.
    const isHeldGoneInPart =
      receiptChange === 'none' && payment.status === 'needs_review' && returned + lostMinor < received.amountMinor;
    // Its money paid another receipt (its receipt voided, the receipt billing its jobs again marked paid
    // with that money): a refund in full or in part is money that receipt stays paid with, gone back.
    const moneyPaid = isHeldGoneInFull || isHeldGoneInPart ? await receiptPaidWithMoneyOf(tx, payment) : null;
    const isHeldRefundedInFull = isHeldGoneInFull && moneyPaid === null;
    let heldOutcome = outcome;
    if (isHeldWithDisputeGoneInFull) {
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); the dispute is still ` +
          `open, so the bank may take the money back as well: answer it at ${providerName} (the payer was ` +
          'refunded) and resolve this once it is settled',
      );
      heldOutcome = 'review';
    }
    if (isHeldGoneInPart) {
      const stillText = describeMinorUnits(received.amountMinor - returned - lostMinor, refunded.currency);
      const refundWords =
        failedInTotalMinor === 0n
          ? `${refundedText} of the ${receivedText} received has been refunded at ${providerName} so far` +
            `${lostMinor === 0n ? '' : `, on top of the ${lostText} taken back by the lost dispute`}`
          : `${providerName} reported ${refundedText} of the ${receivedText} received refunded so far, of which ` +
            `${describeMinorUnits(failedInTotalMinor, refunded.currency)} had failed already, so ${returnedText} went back`;
      // In part: the reason named only what is still held, and finance, told to refund the rest or apply it,
      // did not see that a receipt stays paid with the money that went back.
      const goneText = describeMinorUnits(returned + lostMinor, refunded.currency);
      const paidWords =
        moneyPaid === null
          ? ''
          : `; its money paid receipt #${moneyPaid.id} (marked paid with the money of receipt #${payment.receiptId}` +
            `${moneyPaid.through.length === 0 ? '' : `, through ${moneyPaid.through.join(', ')}, voided since`}), ` +
            `which stays paid though ${goneText} of that money went back to the payer: collect ${goneText} for ` +
            `receipt #${moneyPaid.id} or void it, then resolve this`;
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; ${refundWords}; ${stillText} is still held${paidWords}`,
      );
    }
    if (moneyPaid !== null && isHeldGoneInFull) {
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`}); its money paid receipt ` +
          `#${moneyPaid.id} (marked paid with the money of receipt #${payment.receiptId}` +
          `${moneyPaid.through.length === 0 ? '' : `, through ${moneyPaid.through.join(', ')}, voided since`}), which ` +
          `stays paid with money that went back to the payer: collect receipt #${moneyPaid.id} again or void it, ` +
          'then resolve this',
      );
      heldOutcome = 'review';
    }
    if (isHeldRefundedInFull) {
      await paymentsRepository.resolveAsRefundedByProvider(tx, payment.id, {
        reviewReason:
          `${heldReason || 'held for review'}; refunded in full at ${providerName} (${refundedText}` +
          `${lostMinor === 0n ? '' : `, with ${lostText} taken back by the lost dispute`})`,
        note: fullRefundNote,
        reviewedBy: `provider:${providerName}`,
        reviewedAt: at,
      });
    }
    // Dismissed (handled otherwise: applied to another receipt, settled outside the app): the
    // decision counted on this money, which has now gone back to the payer. A payment resolved
    // `refunded` was refunded as the admin said, and this is the provider confirming it.
    const isReopened = payment.status === 'resolved' && payment.reviewOutcome === 'dismissed';
    if (isReopened) {
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        `${refundedText} of the ${receivedText} received was refunded at ${providerName}`,
        'the payer got back money that was settled otherwise, so what it was applied to may be unpaid',
      );
      heldOutcome = 'review';
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.refund',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          // This refund, in the currency the payment received.
          amountMinor: String(reported - before),
          currency: refunded.currency,
          // All of them so far as recorded: with the amount of a lost dispute, as its audit entry's.
          refundedTotalMinor: String(recorded.amountMinor),
          // Of that total, what went back: less the refunds already reported failed.
          ...(failedMinor === 0n ? {} : { returnedTotalMinor: String(returned + lostMinor) }),
          receivedMinor: String(received.amountMinor),
          receivedCurrency: received.currency,
          // The payment was resolved before: now held again, or (accepted) resolved by this refund.
          ...(isReopened || (payment.status === 'resolved' && receiptChange !== 'none')
            ? { previousOutcome: payment.reviewOutcome }
            : {}),
          // Held for review before, and resolved as refunded by this refund.
          ...(isHeldRefundedInFull ? { previousStatus: 'needs_review' } : {}),
          // Refunded in full or in part but held: its money paid this receipt, which stays paid.
          ...(moneyPaid === null ? {} : { moneyPaidReceiptId: moneyPaid.id }),
          // Refunded in full (unpaid by it, or held without paying it), but held: its dispute is still open.
          ...((receiptChange === 'unpaid' && isDisputeOpen) || isHeldWithDisputeGoneInFull
            ? { isDisputeOpen: true }
            : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome: heldOutcome, paymentId: payment.id };
  }

  /**
   * A dispute (chargeback) the provider reports for a payment, inside the event's transaction:
   * recorded on the payment and audited; the payment that paid its receipt is held for an admin,
   * the receipt staying paid from it until they decide (docs/payments.md, "Disputes").
   */
  async function applyDispute(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    // Nothing was taken, so nothing can be claimed back; and the same dispute told again adds nothing.
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    const disputed = receivedOf(event);
    if (!event.dispute || disputed === null) {
      throw new BadRequestError(
        `Webhook rejected: the dispute of payment #${payment.id} says no dispute id, amount or currency.`,
      );
    }
    if (payment.externalDisputeId === event.dispute.id) return { outcome: 'ignored', paymentId: payment.id };
    // A dispute of nothing claims nothing back, as a refund total of nothing adds nothing. Recorded, it
    // held the payment (no online payment for its jobs meanwhile) and took the payment's one dispute, so
    // the payer's real dispute after it was refused as a second one. Its outcome then finds no dispute
    // of its id and is ignored too (applyDisputeClosed).
    if (disputed.amountMinor === 0n) return { outcome: 'ignored', paymentId: payment.id };
    if (payment.externalDisputeId !== null) {
      // The payment's columns hold one dispute: another one written over it replaced the first's id,
      // amount and time but kept its outcome, so a lost 4.00 read as a lost 2.00 and 2.00 refunded.
      // Refused and listed for finance, as a claim that does not fit its payment is.
      throw new ClaimBackRefusedError(
        `payment #${payment.id} already has dispute ${payment.externalDisputeId} (${payment.disputeStatus ?? 'open'}), ` +
          `and a payment records one dispute here, so dispute ${event.dispute.id} ` +
          `(${describeMinorUnits(disputed.amountMinor, disputed.currency)}) was not recorded: check it at ${providerName}`,
        { payment, claimed: disputed },
      );
    }
    refuseClaimBeyondReceived(payment, disputed, 'dispute');
    const at = now();
    await paymentsRepository.recordDispute(
      tx,
      payment.id,
      { externalDisputeId: event.dispute.id, disputed, reason: event.dispute.reason },
      at,
    );
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const paidTheReceipt = receipt?.status === 'paid' && paysItsReceipt(payment);
    let outcome: WebhookOutcome = 'ok';
    const received =
      payment.receivedMinor !== null && payment.receivedCurrency !== null
        ? describeMinorUnits(payment.receivedMinor, payment.receivedCurrency)
        : describeMinorUnits(payment.amountMinor, payment.currency);
    const disputeNote =
      `the payer disputed ${describeMinorUnits(disputed.amountMinor, disputed.currency)} of the ${received} received ` +
      `at ${providerName} (reason: ${event.dispute.reason ?? 'none given'})`;
    // Resolved already (refunded, dismissed): the bank claiming the money back is news to finance,
    // and a resolved payment is listed nowhere as needing attention. Held again, saying why.
    const isReopened = isResolvedApart(payment);
    if (isReopened) {
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        disputeNote,
        'the bank may take back money already returned or settled',
      );
      outcome = 'review';
    }
    if (!paidTheReceipt && payment.status === 'needs_review') {
      // Held for another reason (its receipt voided, a success after a cancel): the admin deciding
      // to refund it must know the bank may take the money back as well. /admin/payments says a
      // dispute nowhere but in the reason.
      await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${disputeNote}`);
    }
    if (paidTheReceipt) {
      // Held already after a partial refund: the dispute is added to what the admin decides on.
      const reason =
        payment.status === 'needs_review' && payment.reviewReason
          ? `${payment.reviewReason}; ${disputeNote}`
          : `${disputeNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNoteOf(payment)}`;
      await paymentsRepository.holdForDispute(tx, payment.id, reason);
      outcome = 'review';
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.dispute',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          disputeId: event.dispute.id,
          amountMinor: String(disputed.amountMinor),
          currency: disputed.currency,
          reason: event.dispute.reason,
          // The payment was resolved before (refunded, dismissed): now held again.
          ...(isReopened ? { previousOutcome: payment.reviewOutcome } : {}),
          // What became of the receipt: still paid from the held payment, or left as it was.
          receipt: paidTheReceipt ? 'stays_paid' : 'none',
        },
      },
      at,
    );
    return { outcome, paymentId: payment.id };
  }

  /**
   * The outcome of a dispute the provider reports closed, inside the event's transaction
   * (docs/payments.md, "Disputes"). Only the dispute recorded on the payment, with its amount and
   * currency, is taken (another amount is refused, nothing stored); an unknown dispute, or one
   * already closed, changes nothing (`ignored`). Lost: the bank took the disputed amount back, so it
   * is recorded as refunded, and the receipt settled as a refund of it settles it. Won: recorded,
   * and a payment held for the dispute says so, for the admin to accept.
   */
  async function applyDisputeClosed(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    const disputed = receivedOf(event);
    const status = event.dispute?.status;
    if (!event.dispute || disputed === null || status === undefined) {
      throw new BadRequestError(
        `Webhook rejected: the closed dispute of payment #${payment.id} says no dispute id, outcome, amount or currency.`,
      );
    }
    // Resolved before this event: its audit entry names the decision the outcome undoes, if any.
    const wasResolvedAs = payment.status === 'resolved' ? payment.reviewOutcome : null;
    // Providers do not promise the order of their events: an outcome that comes first records its
    // dispute as the dispute's own event would (that event, arriving later, then adds nothing).
    if (payment.externalDisputeId === null && hasTakenMoney(payment)) {
      await applyDispute(tx, providerName, payment, { ...event, type: 'payment.disputed' });
      const recorded = await paymentsRepository.lockById(tx, payment.id);
      if (!recorded) throw new ConflictError(`Payment #${payment.id} changed meanwhile; nothing was changed.`);
      payment = recorded;
    }
    if (payment.externalDisputeId !== event.dispute.id || payment.disputeStatus !== null)
      return { outcome: 'ignored', paymentId: payment.id };
    const disputedText = describeMinorUnits(disputed.amountMinor, disputed.currency);
    if (disputed.amountMinor !== payment.disputedMinor || disputed.currency !== payment.disputedCurrency) {
      throw new ClaimBackRefusedError(
        `the closed dispute ${event.dispute.id} of payment #${payment.id} is for ${disputedText}, but it was opened ` +
          `for ${describeMinorUnits(payment.disputedMinor, payment.disputedCurrency)}`,
        { payment, claimed: disputed },
      );
    }
    refuseClaimBeyondReceived(payment, disputed, 'dispute');
    const received = receivedBy(payment);
    const receivedText = describeMinorUnits(received.amountMinor, received.currency);
    const at = now();
    await paymentsRepository.recordDisputeClosed(tx, payment.id, status, at);
    let receiptChange: 'unpaid' | 'stays_paid' | 'none' = 'none';
    let outcome: WebhookOutcome = 'ok';
    let goneTotal: paymentsRepository.Received | null = null;
    let failedMinor = 0n;
    let returnedTotalMinor = 0n;
    if (status === 'lost') {
      // The bank took the amount back from the centre: for finance it is gone as a refund of it is,
      // on top of what was refunded already (the total is what every refund count reads).
      goneTotal = { amountMinor: (payment.refundedMinor ?? 0n) + disputed.amountMinor, currency: disputed.currency };
      // A refund that failed stays in that total (flagged, not reversed) but took nothing back: the
      // money the bank took is checked, and settles the receipt, on top of what actually went back.
      failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
      // One told before any report of its refund is not in the refunded total: nothing to take out.
      const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
        isInReportedTotal: false,
      });
      returnedTotalMinor =
        (returnedMinorOf(payment.refundedMinor, failedMinor, 0n, uncountedMinor) ?? 0n) + disputed.amountMinor;
      refuseClaimBeyondReceived(
        payment,
        { amountMinor: returnedTotalMinor, currency: disputed.currency },
        'dispute',
        'with its refunds',
      );
      const lostNote = `the dispute was lost at ${providerName}: ${disputedText} of the ${receivedText} received was taken back`;
      ({ receiptChange, outcome } = await recordMoneyGone(
        tx,
        providerName,
        payment,
        goneTotal,
        at,
        {
          fullReason: `${lostNote}; receipt #${payment.receiptId} is unpaid again${decisionNoteOf(payment)}`,
          fullNote: `${providerName} reported dispute ${event.dispute.id} lost (event ${event.id})`,
          partReason:
            payment.status === 'needs_review' && payment.reviewReason
              ? `${payment.reviewReason}; ${lostNote}`
              : `${lostNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNoteOf(payment)}`,
        },
        returnedTotalMinor,
      ));
      // Held without paying its receipt (after a refund in full that failed): the reason says the
      // bank took the money, so the admin does not mark the receipt paid from it.
      if (receiptChange === 'none' && payment.status === 'needs_review') {
        await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${lostNote}`);
      }
      // Resolved (refunded, dismissed): the bank took money finance had returned or settled already.
      if (receiptChange === 'none' && isResolvedApart(payment)) {
        await reopenAfterResolution(
          tx,
          providerName,
          payment,
          lostNote,
          'the bank took that money back from the centre, though it was already returned or settled',
        );
        outcome = 'review';
      }
    } else if (isResolvedApart(payment)) {
      // Resolved (refunded, dismissed) while the dispute was open: finance may have counted this
      // money as lost or returned; the bank takes none of it.
      await reopenAfterResolution(
        tx,
        providerName,
        payment,
        `the dispute was won at ${providerName}, the ${disputedText} stays`,
        'the bank takes none of it back, which the decision may not have counted on',
      );
      outcome = 'review';
    } else if (payment.status === 'needs_review' && payment.holdsPaidReceipt) {
      // Still held for the admin, who decides; the won dispute is what they accept it on.
      await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
      await paymentsRepository.holdForDispute(
        tx,
        payment.id,
        `${payment.reviewReason ?? ''}; the dispute was won at ${providerName}, the ${disputedText} stays: ` +
          `accept this payment to keep receipt #${payment.receiptId} paid`,
      );
      receiptChange = 'stays_paid';
      outcome = 'review';
    } else if (payment.status === 'needs_review') {
      // Held for another reason, whose reason named the dispute: it must not read as still open.
      await paymentsRepository.addToHoldReason(
        tx,
        payment.id,
        `${payment.reviewReason ?? 'held'}; the dispute was won at ${providerName}, the ${disputedText} stays`,
      );
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.dispute_closed',
        status: 'ok',
        details: {
          paymentId: payment.id,
          eventId: event.id,
          disputeId: event.dispute.id,
          disputeStatus: status,
          amountMinor: String(disputed.amountMinor),
          currency: disputed.currency,
          ...(goneTotal ? { refundedTotalMinor: String(goneTotal.amountMinor) } : {}),
          // Of that total, what went back: less the refunds reported failed.
          ...(failedMinor === 0n ? {} : { returnedTotalMinor: String(returnedTotalMinor) }),
          receivedMinor: String(received.amountMinor),
          receivedCurrency: received.currency,
          // The payment was resolved before: now held again, or (accepted) unpaid by the loss.
          ...(wasResolvedAs !== null && (outcome === 'review' || receiptChange !== 'none')
            ? { previousOutcome: wasResolvedAs }
            : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome, paymentId: payment.id };
  }

  /**
   * A refund the provider reported, then reported failed or canceled (docs/payments.md, "A refund
   * that failed"), inside the event's transaction: the money was not returned, so finance must
   * decide again. The failure is recorded once per refund id and audited, and the payment is held
   * for review with a message saying so; the refunded amount stays what the provider reported (it
   * may count this refund or not, depending on what arrived before), and no receipt changes by
   * itself: a receipt a full refund unpaid stays pending, but the hold stops it being paid online
   * again, so its jobs are not paid for twice.
   */
  async function applyRefundFailed(
    tx: Prisma.TransactionClient,
    providerName: string,
    payment: paymentsRepository.PaymentRow,
    event: PaymentEvent,
  ): Promise<{ outcome: WebhookOutcome; paymentId: number | null }> {
    const failed = receivedOf(event);
    if (!event.refund || failed === null) {
      throw new BadRequestError(
        `Webhook rejected: the failed refund of payment #${payment.id} says no refund id, amount or currency.`,
      );
    }
    // Nothing was taken, so no refund of it can have failed.
    if (!hasTakenMoney(payment)) return { outcome: 'ignored', paymentId: payment.id };
    // A refund of nothing returned nothing, so its failure leaves nothing with the centre, as a dispute
    // of nothing claims nothing (applyDispute). Recorded, it held the payment for money that is not
    // there, and a receipt refunded in full could not be paid online again meanwhile.
    if (failed.amountMinor === 0n) return { outcome: 'ignored', paymentId: payment.id };
    refuseClaimBeyondReceived(payment, failed, 'failed refund');
    const at = now();
    // Reported already when the refunds the provider's last total counted (the recorded total less
    // the lost dispute and the failures it leaves out since) cover it; else its report is still to
    // come, and will count it (applyRefund).
    const standingMinor =
      (payment.refundedMinor ?? 0n) -
      lostDisputeMinorOf(payment) -
      (await paymentsRepository.sumFailedRefundMinor(tx, payment.id, { isInReportedTotal: true }));
    const isNew = await paymentsRepository.recordFailedRefund(tx, {
      provider: providerName,
      externalRefundId: event.refund.id,
      paymentId: payment.id,
      failed,
      status: event.refund.status,
      failureReason: event.refund.failureReason,
      externalEventId: event.id,
      failedAt: at,
      isInReportedTotal: standingMinor >= failed.amountMinor,
      failureOccurredAt: event.occurredAt ?? null,
    });
    if (!isNew) {
      // Refund ids are the provider's, one per refund: a failure recorded under this one for another
      // payment is another refund under a used id (a second demo payment's failure sent with the
      // docs' refund_id), not this one told again. Answered "ignored", it was read as taken, and
      // this payment's money was never shown as still with the centre.
      const recordedFor = await paymentsRepository.findPaymentOfFailedRefund(tx, providerName, event.refund.id);
      if (recordedFor !== null && recordedFor !== payment.id) {
        throw new ConflictError(
          `Webhook rejected: the refund ${event.refund.id} was already reported failed for payment #${recordedFor}, ` +
            `and this delivery says it was a refund of payment #${payment.id}; a refund id names one refund, so this ` +
            `failure was not applied. Send it with the refund_id of payment #${payment.id}'s refund; nothing was changed.`,
        );
      }
      // The same refund's failure told again by another event.
      return { outcome: 'ignored', paymentId: payment.id };
    }
    // A dispute lost in full took back all the payment received, so a refund of it tried since
    // (a provider refuses one) returned nothing and leaves nothing with the centre: holding the
    // payment would ask finance to decide on money that is not there, and accepting is refused.
    const failureDetails = {
      paymentId: payment.id,
      eventId: event.id,
      refundId: event.refund.id,
      refundStatus: event.refund.status,
      failureReason: event.refund.failureReason,
      amountMinor: String(failed.amountMinor),
      currency: failed.currency,
    };
    if (lostDisputeMinorOf(payment) >= receivedBy(payment).amountMinor) {
      await appendAudit(
        tx,
        {
          ...providerAuditOf(providerName, payment),
          action: 'payment.refund_failed',
          status: 'ok',
          details: { ...failureDetails, isAllTakenByDispute: true, receipt: 'none' },
        },
        at,
      );
      return { outcome: 'ok', paymentId: payment.id };
    }
    const failedText = describeMinorUnits(failed.amountMinor, failed.currency);
    const how = event.refund.status === 'failed' ? 'failed' : 'was canceled';
    const why = event.refund.failureReason ? ` (${event.refund.failureReason})` : '';
    const failureNote =
      `the refund ${event.refund.id} of ${failedText} ${how} at ${providerName}${why}: ` +
      'the money was not returned to the payer and is still with the centre';
    // Payment, then receipt: the lock order of every webhook and of a void.
    await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const receiptStatus = receipt?.status ?? 'gone';
    // Resolved by an admin: the hold below clears that decision; the reason keeps it (decisionNoteOf).
    const decisionNote = decisionNoteOf(payment);
    let receiptChange: 'stays_paid' | 'none' = 'none';
    if (payment.status === 'needs_review') {
      // Held already (a partial refund, a dispute, a void): the failure is added to what the admin decides on.
      await paymentsRepository.addToHoldReason(tx, payment.id, `${payment.reviewReason ?? 'held'}; ${failureNote}`);
      if (payment.holdsPaidReceipt) receiptChange = 'stays_paid';
    } else if (receiptStatus === 'paid' && paysItsReceipt(payment)) {
      // Still paying its receipt (a partial refund, accepted or not yet): held again as after a partial refund.
      await paymentsRepository.holdForPartialRefund(
        tx,
        payment.id,
        `${failureNote}; receipt #${payment.receiptId} stays paid until this is resolved${decisionNote}`,
      );
      receiptChange = 'stays_paid';
    } else {
      // A full refund unpaid the receipt (or an admin resolved the payment): the money is back with
      // the centre but pays nothing. Held, the receipt cannot be paid online meanwhile.
      const receiptNote =
        receiptStatus === 'pending'
          ? `receipt #${payment.receiptId} was unpaid by that refund and is pending: accept this payment to mark it ` +
            `paid from this money, or refund it again at ${providerName} and resolve as refunded`
          : receiptStatus === 'paid'
            ? `receipt #${payment.receiptId} was paid again since, so the payer may have paid twice: refund this ` +
              `payment again at ${providerName} and resolve as refunded, or resolve as dismissed with what was done`
            : `receipt #${payment.receiptId} is ${receiptStatus}: refund this payment again at ${providerName} and ` +
              'resolve as refunded, or resolve as dismissed with what was done';
      await paymentsRepository.holdAfterFailedRefund(tx, payment.id, `${failureNote}; ${receiptNote}${decisionNote}`);
    }
    await appendAudit(
      tx,
      {
        ...providerAuditOf(providerName, payment),
        action: 'payment.refund_failed',
        status: 'ok',
        details: {
          ...failureDetails,
          // What is recorded as refunded so far, left as the provider reported it.
          ...(payment.refundedMinor === null ? {} : { refundedTotalMinor: String(payment.refundedMinor) }),
          // The payment was resolved before (by a full refund, or an admin): now held again.
          ...(payment.status === 'resolved' ? { previousOutcome: payment.reviewOutcome } : {}),
          receipt: receiptChange,
        },
      },
      at,
    );
    return { outcome: 'review', paymentId: payment.id };
  }

  return { applyRefund, applyDispute, applyDisputeClosed, applyRefundFailed };
}
