import type { Prisma } from '@prisma/client';
import { BadRequestError, ConflictError, NotFoundError, notFoundById } from '../../shared/errors.js';
import { formatLocalDateTime, toLocalDate } from '../../shared/local-date.js';
import { revealControls } from '../../shared/visible-text.js';
import { type AuditContext, appendAudit } from '../audit/audit.service.js';
import * as receiptsRepository from '../receipts/receipts.repository.js';
import {
  allGoneAdvice,
  cancelOpenPaymentsIn,
  heldMoneyAllGone,
  markReceiptPaidIn,
} from '../receipts/receipts.service.js';
import type { CanceledCheckout, CloseCanceledCheckouts } from './checkout-closer.js';
import {
  billingTeamRefundOf,
  describeMinorUnits,
  lostDisputeMinorOf,
  paymentMoneyOf,
  receivedBy,
  returnedMinorOf,
} from './payment-money.js';
import * as paymentsRepository from './payments.repository.js';
import type { TPaymentsPageQuery, TResolveReview, TSettleRefusedClaim } from './payments.schema.js';
import type { PaymentsServiceDeps } from './payments.service.js';

/** How /admin/payments names what a refused claim was, by its event's type. */
const REFUSED_CLAIM_KINDS: Readonly<Record<string, string>> = {
  'payment.refunded': 'Refund',
  'payment.disputed': 'Dispute',
  'payment.dispute_closed': 'Dispute outcome',
  'payment.refund_failed': 'Failed refund',
};

/** How many payments held for review, payments and webhook deliveries /admin/payments lists (a page of payments). */
const ADMIN_LIST_LIMIT = 200;

/**
 * What happened to a held payment that still pays its receipt, and what accepting it keeps, for the
 * 409 that refuses any other outcome: a dispute lost in part is money the bank took back, not a
 * refund, though both count as refunded (recordMoneyGone).
 */
function whatWentBackFrom(
  payment: paymentsRepository.PaymentRow,
  failedRefundMinor: bigint,
  uncountedFailedMinor: bigint,
): string {
  const lost = lostDisputeMinorOf(payment);
  if (lost > 0n) {
    const lostText = describeMinorUnits(lost, payment.disputedCurrency);
    // Refunds apart from the lost dispute, which the refunded total counts too; a refund that
    // failed took nothing back.
    const refundedApart =
      (returnedMinorOf(payment.refundedMinor, failedRefundMinor, lost, uncountedFailedMinor) ?? 0n) - lost;
    const what =
      refundedApart > 0n
        ? `${describeMinorUnits(refundedApart, payment.refundedCurrency)} was refunded and ${lostText} taken back by a lost dispute`
        : `${lostText} was taken back by a lost dispute`;
    return `of which ${what}. Accept it to keep the receipt paid from the rest,`;
  }
  if (payment.disputedMinor !== null && payment.refundedMinor === null) {
    return 'and the payer disputed it. Accept it to keep the receipt paid,';
  }
  if (payment.disputedMinor !== null) {
    return 'of which part was refunded, and the payer disputed it. Accept it to keep the receipt paid from the rest,';
  }
  return 'of which part was refunded. Accept it to keep the receipt paid from the rest,';
}

/** What the admin's review needs of the payments service (createPaymentsService). */
export interface PaymentReviewServiceParts {
  /** Closes the checkouts that accepting a held payment canceled, after the commit (the payments service's closer). */
  closeCanceledCheckouts: CloseCanceledCheckouts;
}

/**
 * The admin's side of /admin/payments: the lists, resolving a payment held for review and settling
 * a refused refund or dispute; part of the payments service.
 */
export function createPaymentReviewService(
  deps: PaymentsServiceDeps,
  { closeCanceledCheckouts }: PaymentReviewServiceParts,
) {
  const { metrics, now } = deps;
  const prisma = deps.db.prisma;

  /**
   * What /admin/payments refuses in its cursor, a 400 for both at once and a 404 for a payment that
   * is not there, and the place it pages from. Alone, for a HEAD (a link checker, `curl -I`), which
   * answers the status and headers of its GET and used to read every list of the page for nothing.
   */
  async function checkAdminPage(from: TPaymentsPageQuery = {}) {
    if (from.older !== undefined && from.newer !== undefined) {
      throw new BadRequestError('Give older or newer, not both.');
    }
    const fromPayment =
      from.older !== undefined
        ? { direction: 'older' as const, paymentId: from.older }
        : from.newer !== undefined
          ? { direction: 'newer' as const, paymentId: from.newer }
          : undefined;
    if (fromPayment && !(await paymentsRepository.paymentExists(prisma, fromPayment.paymentId))) {
      throw new NotFoundError(`There is no payment #${fromPayment.paymentId} to page from.`);
    }
    return fromPayment;
  }

  /**
   * /admin/payments: the payments held for review, one page of every payment (newest first,
   * `older` or `newer` than a payment's place: keyset paging on created_at, id) and the latest
   * webhook deliveries.
   */
  async function listForAdmin(from: TPaymentsPageQuery = {}) {
    const fromPayment = await checkAdminPage(from);
    // One more than a page says whether there is a page beyond it.
    let rows = await paymentsRepository.listPaymentsPageForAdmin(prisma, fromPayment, ADMIN_LIST_LIMIT + 1);
    let hasOlder: boolean;
    let hasNewer: boolean;
    if (fromPayment?.direction === 'newer') {
      hasNewer = rows.length > ADMIN_LIST_LIMIT;
      // Back at the newest: the first page itself, full, rather than the few left above the cursor.
      if (!hasNewer) return listForAdmin();
      rows = rows.slice(0, ADMIN_LIST_LIMIT).reverse();
      hasOlder = true;
    } else {
      hasOlder = rows.length > ADMIN_LIST_LIMIT;
      rows = rows.slice(0, ADMIN_LIST_LIMIT);
      // The payment paged from is newer than all of these.
      hasNewer = fromPayment !== undefined;
    }
    const [held, events, needsReview, refusedClaims, refusedClaimCount] = await Promise.all([
      paymentsRepository.listHeldPaymentsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.listEventsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.countPaymentsInReview(prisma),
      paymentsRepository.listRefusedClaimsForAdmin(prisma, ADMIN_LIST_LIMIT),
      paymentsRepository.countRefusedClaims(prisma),
    ]);
    const withMoney = (payment: paymentsRepository.AdminPaymentRow) => ({
      ...payment,
      ...paymentMoneyOf(payment),
      // Resolved as refunded by the billing team: all it received went back, part of it perhaps at the
      // provider first. The list showed only the provider's part (or nothing), where the receipt's
      // page, its JSON and paid.csv count all of it, so one payment read as two refunds.
      billingTeamRefund: billingTeamRefundOf(payment),
    });
    return {
      heldForReview: held.map(withMoney),
      payments: rows.map(withMoney),
      events,
      needsReview,
      refusedClaims: refusedClaims.map((claim) => ({
        ...claim,
        what: REFUSED_CLAIM_KINDS[claim.eventType] ?? claim.eventType,
        claimedText:
          claim.claimedMinor === null || claim.claimedCurrency === null
            ? 'no amount'
            : describeMinorUnits(claim.claimedMinor, claim.claimedCurrency),
      })),
      refusedClaimCount,
      paymentsPage: {
        // Past the oldest payment (an edited or saved link) there is no row to page from: back to the newest.
        newerLink: hasNewer ? (rows[0] ? `/admin/payments?newer=${rows[0].id}` : '/admin/payments') : undefined,
        olderLink: hasOlder && rows.length > 0 ? `/admin/payments?older=${rows[rows.length - 1]?.id}` : undefined,
        isFirst: fromPayment === undefined,
      },
    };
  }

  /**
   * Refuses a resolution that the payment's state decides, whatever the form says: no such payment
   * (404), resolved already or never held (409).
   */
  function refuseUnlessHeld(
    paymentId: number,
    payment: paymentsRepository.PaymentRow | null,
  ): asserts payment is paymentsRepository.PaymentRow {
    if (!payment) throw notFoundById('Payment', paymentId);
    if (payment.status === 'resolved') {
      throw new ConflictError(
        `Payment #${paymentId} was already resolved (${payment.reviewOutcome}) by ${payment.reviewedBy} on ` +
          `${payment.reviewedAt ? formatLocalDateTime(payment.reviewedAt, deps.timeZone) : 'an unknown date'}; ` +
          'nothing was changed.',
      );
    }
    if (payment.status !== 'needs_review') {
      throw new ConflictError(
        `Payment #${paymentId} is ${payment.status}, not held for review; there is nothing to resolve.`,
      );
    }
  }

  /**
   * Before its form is read: a payment resolved already (a second admin, another tab) is told so
   * (409), not that the note is too short, which led the admin to correct a note for a 409. Read
   * without a lock; resolveReview checks again under it.
   */
  async function checkResolvable(paymentId: number): Promise<void> {
    refuseUnlessHeld(paymentId, await paymentsRepository.findById(prisma, paymentId));
  }

  /**
   * A payment that paid its receipt before the receipt was voided, whose money then paid the receipt
   * billing its jobs again (marked paid "with the money of" it, docs/billing.md): resolved as refunded,
   * that receipt would read as paid with money the payer has back. Refused (409, nothing changed)
   * while the money pays a receipt that is not void; voiding that receipt first frees it. The voided
   * receipt is locked as a mark paid spending its money locks it, so the two take turns.
   */
  async function refuseRefundOfMoneyPayingAReceipt(
    tx: Prisma.TransactionClient,
    payment: { id: number; receiptId: number; provider: string; externalPaymentId: string | null },
  ) {
    const paid = await receiptPaidWithMoneyOf(tx, payment);
    if (paid === null) return;
    throw new ConflictError(
      `The money of payment #${payment.id} (receipt #${payment.receiptId}, voided) paid receipt #${paid.id}` +
        `${paid.through.length === 0 ? '' : ` (through ${paid.through.join(', ')}, voided since)`}: it was marked paid with it. ` +
        `To refund it, void receipt #${paid.id} first; nothing was changed.`,
      { field: 'outcome' },
    );
  }

  /**
   * The receipt, not void, that the money of this payment pays now: its own receipt voided since and
   * the receipt billing its jobs again marked paid with that money (receipts.paid_with_receipt_id),
   * or, that one voided in turn, the next down the chain (`through` names the voided ones between).
   * Null when its money pays no receipt. The voided receipt is locked as a mark paid spending its money
   * locks it, so the two take turns.
   */
  async function receiptPaidWithMoneyOf(
    tx: Prisma.TransactionClient,
    payment: { receiptId: number; provider: string; externalPaymentId: string | null },
  ): Promise<{ id: number; through: string[] } | null> {
    await receiptsRepository.lockReceiptWhoseMoneyPays(tx, payment.receiptId);
    const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
    const isMoneyOfReceipt =
      receipt !== undefined &&
      receipt.status === 'void' &&
      receipt.paymentMethod === payment.provider &&
      payment.externalPaymentId !== null &&
      receipt.txRef === payment.externalPaymentId;
    if (!isMoneyOfReceipt) return null;
    const chain = await receiptsRepository.findReceiptsPaidWithMoneyOf(tx, payment.receiptId);
    const now = chain.at(-1);
    if (now === undefined || now.status === 'void') return null;
    return { id: now.id, through: chain.slice(0, -1).map((voided) => `receipt #${voided.id}`) };
  }

  /**
   * Closes a review: the admin says what was done with the money (accepted for the receipt,
   * refunded at the provider, or handled otherwise) and why. The payment row is locked, so a
   * double submit or a second admin waits and then finds it resolved (409, nothing written).
   * Accepting marks the receipt paid from this payment through the billing page's mark-paid
   * rule; refunded and dismissed leave the receipt as it is.
   */
  async function resolveReview(actor: AuditContext, paymentId: number, input: TResolveReview) {
    const reviewedAt = now();
    let canceled: CanceledCheckout[] = [];
    const result = await prisma.$transaction(async (tx) => {
      // Accepting marks the receipt paid and names its other held payments, as marking paid by hand
      // does: their locks are taken in the order marking paid and voiding take them, the receipt's
      // held payments in id order (this one among them) before anything else. Taking this one first,
      // then an earlier one, waited in a circle with a mark paid holding the earlier one.
      if (input.outcome === 'accepted') {
        const receiptId = await paymentsRepository.findReceiptIdOf(tx, paymentId);
        if (receiptId !== null) await paymentsRepository.lockHeldPayments(tx, receiptId);
      }
      const payment = await paymentsRepository.lockById(tx, paymentId);
      refuseUnlessHeld(paymentId, payment);
      // A form opened before the payment changed (a refund or a dispute reported, its receipt voided or
      // paid since): its reason, which the decision is taken on, is not the one the admin read.
      if (
        input.based_on_updated_at !== undefined &&
        payment.updatedAt.getTime() !== Number(input.based_on_updated_at)
      ) {
        throw new ConflictError(
          `Payment #${paymentId} changed after this page was opened; nothing was changed. ` +
            'Read why it is held now, then resolve it.',
        );
      }
      if (input.outcome === 'refunded') await refuseRefundOfMoneyPayingAReceipt(tx, payment);
      if (payment.holdsPaidReceipt && input.outcome !== 'accepted') {
        // Its receipt is paid from it: any other outcome would leave a paid receipt that no money pays.
        const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
        const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
          isInReportedTotal: false,
        });
        throw new ConflictError(
          `Payment #${paymentId} still pays receipt #${payment.receiptId}, ` +
            `${whatWentBackFrom(payment, failedMinor, uncountedMinor)} ` +
            'or void the receipt on the billing page first; nothing was changed.',
          { field: 'outcome' },
        );
      }
      if (input.outcome === 'accepted' && payment.holdsPaidReceipt) {
        // The receipt stays paid from what is left of this payment, as it has been since the refund.
        await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
      } else if (input.outcome === 'accepted') {
        // Held after its refund failed, a payment can still lose its money to a lost dispute (or a
        // refund reported since): what went back is no money to mark its receipt paid from.
        const failedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id);
        const uncountedMinor = await paymentsRepository.sumFailedRefundMinor(tx, payment.id, {
          isInReportedTotal: false,
        });
        const returned =
          returnedMinorOf(payment.refundedMinor, failedMinor, lostDisputeMinorOf(payment), uncountedMinor) ?? 0n;
        const received = receivedBy(payment);
        // A success the provider reported as 0.00: nothing arrived, so none of it "went back" either.
        if (received.amountMinor === 0n) {
          throw new ConflictError(
            `Nothing of payment #${paymentId} is left to pay receipt #${payment.receiptId}: it received nothing ` +
              `(${describeMinorUnits(0n, received.currency)}). Resolve it as dismissed with what was done; nothing was changed.`,
            { field: 'outcome' },
          );
        }
        if (returned >= received.amountMinor) {
          throw new ConflictError(
            `Nothing of payment #${paymentId} is left to pay receipt #${payment.receiptId}: the ` +
              `${describeMinorUnits(received.amountMinor, received.currency)} it received went back (refunded, or taken ` +
              'back by a lost dispute). Resolve it as refunded, or as dismissed with what was done; nothing was changed.',
            { field: 'outcome' },
          );
        }
        if (payment.hasAmountMismatch && !input.accept_mismatch) {
          throw new BadRequestError(
            // The reason may quote a note (describeResolution) or a provider's words: their bidi controls as escapes.
            `Payment #${paymentId} did not match the amount due (${revealControls(payment.reviewReason ?? '')}). ` +
              'To accept it anyway, say in the note how the difference was settled and tick "accept the different ' +
              'amount" (accept_mismatch=yes).',
            {
              field: 'accept_mismatch',
              fields: { accept_mismatch: 'is required to accept a payment whose amount did not match' },
            },
          );
        }
        // Part of its money went back since it arrived (a refund, a lost dispute): what is left is short of
        // the total, as a short payment's is, and is accepted only so, ticked. It marked the receipt paid at
        // its whole total with nothing asked, also from a page opened before the refund arrived.
        if (returned > 0n && !payment.hasAmountMismatch && !input.accept_mismatch) {
          throw new BadRequestError(
            `Payment #${paymentId} received ${describeMinorUnits(received.amountMinor, received.currency)}, but ` +
              `${describeMinorUnits(returned, received.currency)} of it went back to the payer since (refunded, or ` +
              `taken back by a lost dispute): only ${describeMinorUnits(received.amountMinor - returned, received.currency)} ` +
              `of it is left for receipt #${payment.receiptId}, whose total is ` +
              `${describeMinorUnits(payment.amountMinor, payment.currency)}. To accept it anyway, say in the note how ` +
              'the rest was settled and tick "accept the different amount" (accept_mismatch=yes).',
            {
              field: 'accept_mismatch',
              fields: { accept_mismatch: 'is required to accept a payment part of whose money went back' },
            },
          );
        }
        // Payment, then the receipt's open payments, then the receipt: the order a webhook and a void take.
        // The receipt before reading it or its other held payments, as a mark paid by hand takes it: a
        // late success being held at this moment holds the receipt, and read before it, that payment
        // was missed, left held without saying it can no longer be accepted for the receipt paid here.
        await paymentsRepository.lockOpenPayments(tx, payment.receiptId);
        await paymentsRepository.lockReceiptForPayments(tx, payment.receiptId);
        const receipt = await receiptsRepository.findReceipt(tx, payment.receiptId);
        if (receipt && receipt.status !== 'pending') {
          throw new ConflictError(
            `Receipt #${payment.receiptId} is ${receipt.status}, so payment #${paymentId} cannot be accepted for it. ` +
              'Refund the money at the provider and resolve as refunded, or resolve as dismissed with what was done.',
            // The outcome is what to change, not the note.
            { field: 'outcome' },
          );
        }
        // A newer checkout of the receipt (opened after this payment failed or was canceled) could
        // take the same money a second time: canceled here, as marking paid by hand does, so a
        // success there is held for review, and closed at the provider after the commit.
        canceled = await cancelOpenPaymentsIn(
          tx,
          actor,
          payment.receiptId,
          `receipt #${payment.receiptId} was marked paid from payment #${paymentId} while this checkout was open`,
          reviewedAt,
        );
        // Held after a refund that failed, the payment's money arrived when it first paid the
        // receipt and never left: it pays it from then, so the period it was paid in keeps its
        // paid.csv line (a closed export must not lose or move one). Any other held payment's
        // money pays the receipt from now.
        const keptPaidAt = await paymentsRepository.findPaidAtKeptByFailedRefund(tx, paymentId);
        const paidAt = keptPaidAt ?? reviewedAt;
        // The receipt's other payments held for review (a success held behind this one, paid short)
        // can no longer be accepted for it once it is paid from this one: named in the mark_paid entry
        // and in their reasons, as marking paid by hand names them. Locked above, in id order.
        const otherHeld = (await paymentsRepository.findHeldPaymentsOfReceipt(tx, payment.receiptId)).filter(
          (held) => held.id !== paymentId,
        );
        await markReceiptPaidIn(tx, actor, payment.receiptId, {
          method: payment.provider,
          txRef: payment.externalPaymentId,
          paidAt,
          paidOn: toLocalDate(paidAt, deps.timeZone),
          recordedAt: reviewedAt,
          details: {
            paymentId,
            ...(canceled.length === 0 ? {} : { canceledPaymentIds: canceled.map((open) => open.id) }),
            // What actually arrived, when it is known: finance reconciles this, not the total.
            ...(payment.receivedMinor === null
              ? {}
              : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
            ...(otherHeld.length === 0
              ? {}
              : {
                  heldPayments: otherHeld.map((held) => ({
                    paymentId: held.id,
                    ...(held.receivedMinor === null
                      ? {}
                      : { receivedMinor: String(held.receivedMinor), receivedCurrency: held.receivedCurrency }),
                  })),
                }),
          },
        });
        // All of a held payment's money gone back already (refunded in full while a dispute keeps it
        // held): "refund it" asked finance to refund the payer a second time. The rule and wording of
        // marking paid by hand and voiding.
        const allGone = await heldMoneyAllGone(tx, payment.receiptId, otherHeld);
        for (const held of otherHeld) {
          const gone = allGone.get(held.id);
          await paymentsRepository.addToHoldReason(
            tx,
            held.id,
            `${held.reviewReason ?? 'held for review'}; receipt #${payment.receiptId} was marked paid from payment ` +
              `#${paymentId}, accepted by ${actor.actor}, while this payment was held, so it cannot be accepted for ` +
              (gone
                ? `it; ${allGoneAdvice(gone)}`
                : 'it: refund it, or apply it elsewhere and resolve it as dismissed'),
          );
        }
        if (keptPaidAt === null) await paymentsRepository.recordPaidAt(tx, paymentId, reviewedAt);
      }
      const isResolved = await paymentsRepository.resolveReview(tx, paymentId, {
        outcome: input.outcome,
        note: input.note,
        reviewedBy: actor.actor,
        reviewedAt,
      });
      if (!isResolved) throw new ConflictError(`Payment #${paymentId} was resolved meanwhile; nothing was changed.`);
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'payment.resolve',
          target: `receipt:${payment.receiptId}`,
          status: 'ok',
          details: {
            paymentId,
            outcome: input.outcome,
            note: input.note,
            reviewReason: payment.reviewReason,
            hasAmountMismatch: payment.hasAmountMismatch,
            // The money the decision is about (refunded, kept or settled otherwise), as payment.start wrote it.
            amountMinor: String(payment.amountMinor),
            currency: payment.currency,
            ...(payment.receivedMinor === null
              ? {}
              : { receivedMinor: String(payment.receivedMinor), receivedCurrency: payment.receivedCurrency }),
            ...(payment.refundedMinor === null
              ? {}
              : { refundedMinor: String(payment.refundedMinor), refundedCurrency: payment.refundedCurrency }),
          },
        },
        reviewedAt,
      );
      return {
        id: paymentId,
        receiptId: payment.receiptId,
        status: 'resolved' as const,
        outcome: input.outcome,
        // A partly refunded payment accepted keeps a receipt that was paid already.
        isReceiptMarkedPaid: input.outcome === 'accepted' && !payment.holdsPaidReceipt,
      };
    });
    const { isReceiptMarkedPaid, ...resolved } = result;
    if (isReceiptMarkedPaid) metrics.receiptMarkedPaid.inc({ actor_type: 'admin' });
    // After the commit, and whatever the provider answers: the receipt stays paid either way.
    const checkoutsLeftOpen =
      canceled.length > 0 ? await closeCanceledCheckouts(result.receiptId, canceled, 'accept') : [];
    return {
      ...resolved,
      canceledPaymentIds: canceled.map((open) => open.id),
      checkoutNotice: checkoutsLeftOpen.length === 0 ? null : checkoutsLeftOpen.map((open) => open.notice).join(' '),
    };
  }

  /**
   * Refuses a settlement that the claim's state decides, whatever the form says: no such claim
   * (404), settled already (409).
   */
  function refuseUnlessUnsettled<T extends { settledAt: Date | null; settledBy: string | null }>(
    id: number,
    claim: T | null,
  ): asserts claim is T {
    if (!claim) throw notFoundById('Refused claim', id);
    if (claim.settledAt !== null) {
      throw new ConflictError(
        `Refused claim #${id} was already settled by ${claim.settledBy} on ` +
          `${formatLocalDateTime(claim.settledAt, deps.timeZone)}; nothing was changed.`,
      );
    }
  }

  /**
   * Before its form is read: a claim settled already (a second admin, another tab) is told so
   * (409), and one not there 404, not that the note is too short, which led the admin to correct
   * a note for a 409. Read without a lock; settleRefusedClaim checks again under it.
   */
  async function checkSettleable(id: number): Promise<void> {
    refuseUnlessUnsettled(id, await paymentsRepository.findRefusedClaim(prisma, id));
  }

  /**
   * Marks a refused refund or dispute settled: finance checked it with the provider and says what
   * was done. Nothing about money changes (the claim was refused); it leaves the banner and the
   * list on /admin/payments, and the row and a `payment.claim_refusal_settle` audit entry keep it.
   * The row is locked, so a double submit waits and then finds it settled (409, nothing written).
   */
  async function settleRefusedClaim(actor: AuditContext, id: number, input: TSettleRefusedClaim) {
    const settledAt = now();
    return prisma.$transaction(async (tx) => {
      const claim = await paymentsRepository.lockRefusedClaim(tx, id);
      refuseUnlessUnsettled(id, claim);
      if (
        !(await paymentsRepository.settleRefusedClaim(tx, id, { settledBy: actor.actor, settledAt, note: input.note }))
      )
        throw new ConflictError(`Refused claim #${id} was settled meanwhile; nothing was changed.`);
      await appendAudit(
        tx,
        {
          ...actor,
          action: 'payment.claim_refusal_settle',
          target: `receipt:${claim.payment.receiptId}`,
          status: 'ok',
          details: {
            refusedClaimId: id,
            paymentId: claim.paymentId,
            eventId: claim.externalEventId,
            eventType: claim.eventType,
            reason: claim.reason,
            note: input.note,
          },
        },
        settledAt,
      );
      return { id, paymentId: claim.paymentId, externalEventId: claim.externalEventId };
    });
  }

  return {
    listForAdmin,
    checkAdminPage,
    checkResolvable,
    resolveReview,
    checkSettleable,
    settleRefusedClaim,
    receiptPaidWithMoneyOf,
  };
}

export type PaymentReviewService = ReturnType<typeof createPaymentReviewService>;
