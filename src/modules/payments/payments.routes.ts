import type { Prisma } from '@prisma/client';
import express, { Router } from 'express';
import type { z } from 'zod';
import { auditContextOf } from '../../http/audit-context.js';
import { charsetOf } from '../../http/body-charset.js';
import { answerInJson, prefersJson } from '../../http/error-handler.js';
import { moneyJson } from '../../http/json-money.js';
import {
  answerChange,
  answerHeadWithoutWork,
  type BackLink,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import {
  invalidFieldsOf,
  NotAcceptableError,
  NotFoundError,
  PayloadTooLargeError,
  readableMessageOf,
  UnsupportedMediaTypeError,
} from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { MY_RECEIPTS, type ShowOwnReceipt } from '../receipts/receipts.routes.js';
import { ZReceiptId } from '../receipts/receipts.schema.js';
import {
  PAYMENT_REVIEW_OUTCOMES,
  type TPaymentsPageQuery,
  ZDummyChoice,
  ZExternalIdParam,
  ZPaymentId,
  ZPaymentsPageQuery,
  ZRefusedClaimId,
  ZResolveReview,
  ZSettleRefusedClaim,
  ZStartPayment,
  ZThanksQuery,
} from './payments.schema.js';
import { fromMinorUnits, type PaymentsService } from './payments.service.js';

// Provider events are small; anything bigger is not one.
const WEBHOOK_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Refuses, from the address alone and before the body is read, a webhook no provider here takes
 * (404). Nothing is verified, stored or counted.
 */
function refuseWebhookNotTaken(configuredProvider: string | undefined, askedProvider: string | undefined): void {
  if (!configuredProvider) throw new NotFoundError('Online payment is not enabled here.');
  // Provider names are lower case, as PAYMENT_PROVIDER takes them: /payments/webhook/DUMMY was a 400
  // "provider: is not a provider name", which read as a fault in the body, where there is no such address.
  if (askedProvider !== undefined && askedProvider !== configuredProvider) {
    throw new NotFoundError(
      `No such webhook endpoint: this site takes its payment provider’s webhooks at /payments/webhook/${configuredProvider} (provider names are lower case).`,
    );
  }
}

/**
 * Refuses, from the headers alone and before the body is read, a body that is not UTF-8 JSON as sent
 * (415). Nothing is verified, stored or counted.
 */
function refuseWebhookBodyNotTaken(req: express.Request): void {
  if (!req.is('application/json')) throw new UnsupportedMediaTypeError('Webhooks must be sent as application/json.');
  // JSON is UTF-8 (RFC 8259, 8.1), as both providers send it. Another charset was read as UTF-8 all
  // the same: a UTF-16 body then failed as "not JSON" once its signature held, or worse, parsed.
  const charset = charsetOf(req.get('content-type') ?? '');
  if (charset !== undefined && charset !== 'utf-8') {
    throw new UnsupportedMediaTypeError(
      `Webhooks must be sent as application/json in UTF-8; this one says charset=${charset.slice(0, 40)}.`,
    );
  }
  // The signature is over the bytes the provider sends, and neither provider compresses them: a gzip
  // body was inflated first and its signature checked over bytes nobody signed.
  const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') {
    throw new UnsupportedMediaTypeError(
      `Webhooks must be sent uncompressed (Content-Encoding identity): the signature is over the bytes the provider sends; this one says Content-Encoding ${encoding.slice(0, 40)}.`,
    );
  }
}

/**
 * Provider webhooks. Mounted before the session and CSRF middleware: a provider has no
 * session and proves itself with a signature over the raw body, which is kept as bytes.
 */
export function paymentWebhookRoutes(deps: { payments: PaymentsService }): Router {
  const router = Router();
  // Never inflated: a compressed body is refused above, before it is read.
  const readRaw = express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT_BYTES, inflate: false });
  // Names the limit: "The request body is too large." left the provider’s engineer to guess it.
  const rawBody: express.RequestHandler = (req, res, next) =>
    readRaw(req, res, (error?: unknown) => {
      if ((error as { type?: string } | undefined)?.type !== 'entity.too.large') return next(error);
      next(
        new PayloadTooLargeError(
          `Webhook rejected: the body is larger than 64 KiB (${WEBHOOK_BODY_LIMIT_BYTES.toLocaleString('en-US')} bytes), which no payment event is; it was not read.`,
        ),
      );
    });
  const refuse =
    (askedOf: (req: express.Request) => string | undefined): express.RequestHandler =>
    (req, _res, next) => {
      answerInJson(req);
      refuseWebhookNotTaken(deps.payments.providerName, askedOf(req));
      refuseWebhookBodyNotTaken(req);
      next();
    };
  const receive =
    (providerOf: (req: express.Request) => string | undefined): express.RequestHandler =>
    async (req, res) => {
      const providerName = providerOf(req);
      if (!providerName) throw new NotFoundError('Online payment is not enabled here.');
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const { outcome } = await deps.payments.handleWebhook(providerName, body, req.headers);
      res.json({ received: true, outcome });
    };
  // Another method (a browser's GET, an engineer checking the endpoint) at an address of no provider
  // here is the 404 a POST there is: it was the 405 saying the address takes a provider's webhooks,
  // so /payments/webhook/stripe read as the endpoint on a site whose provider is dummy. Mounted with
  // use, not as a route, so the 405 at a provider's own address still names only POST.
  router.use('/payments/webhook/:provider', (req, _res, next) => {
    if (req.method !== 'POST' && req.path === '/')
      refuseWebhookNotTaken(deps.payments.providerName, req.params.provider);
    next();
  });
  router.use('/payments/webhook', (req, _res, next) => {
    if (req.method !== 'POST' && req.path === '/') refuseWebhookNotTaken(deps.payments.providerName, undefined);
    next();
  });
  router.post(
    '/payments/webhook',
    refuse(() => undefined),
    rawBody,
    receive(() => deps.payments.providerName),
  );
  router.post(
    '/payments/webhook/:provider',
    refuse((req) => String(req.params.provider)),
    rawBody,
    receive((req) => String(req.params.provider)),
  );
  return router;
}

type AdminPayments = Awaited<ReturnType<PaymentsService['listForAdmin']>>;
type AdminPayment = AdminPayments['payments'][number];

/** Money of a payment as JSON answers write it: decimal text at the currency's minor unit, or null. */
function moneyOrNull(money: { amount: Prisma.Decimal; currency: string } | null) {
  return money && { amount: moneyJson(money.amount, money.currency), currency: money.currency };
}

/** A part of a payment's refund, `{amount, currency, refundedAt}`. */
function refundPartJson(money: { amount: Prisma.Decimal; currency: string }, at: Date | null) {
  return {
    amount: moneyJson(money.amount, money.currency),
    currency: money.currency,
    refundedAt: at?.toISOString() ?? null,
  };
}

/**
 * The provider's part of what went back of a payment, split as paid.csv splits it: what the provider refunded
 * apart from a lost dispute (`refundedApart`, its `amount_refunded`) and what the bank took back by it
 * (`takenBackByDispute` with when, its `amount_disputed_lost`). It read 1,500.00 refunded at the provider of
 * 1,000.00 refunded and 500.00 lost, with nothing saying so.
 */
function providerPartJson(payment: AdminPayment, money: { amount: Prisma.Decimal; currency: string }, at: Date | null) {
  const takenBack = payment.takenBackByDispute;
  if (!takenBack || takenBack.currency !== money.currency) {
    return {
      ...refundPartJson(money, at),
      refundedApart: moneyJson(money.amount, money.currency),
      takenBackByDispute: null,
    };
  }
  return {
    ...refundPartJson(money, at),
    refundedApart: moneyJson(money.amount.minus(takenBack.amount), money.currency),
    takenBackByDispute: {
      amount: moneyJson(takenBack.amount, takenBack.currency),
      takenBackAt: payment.disputeClosedAt?.toISOString() ?? null,
    },
  };
}

/**
 * A payment as /admin/payments shows it: due, received (before refunds) and what went back, why it
 * was held and how it was resolved, and the receipt and user it is for.
 */
function adminPaymentJson(payment: AdminPayment) {
  const team = payment.billingTeamRefund;
  return {
    id: payment.id,
    receiptId: payment.receiptId,
    receiptStatus: payment.receiptStatus,
    username: payment.username,
    provider: payment.provider,
    status: payment.status,
    amount: moneyJson(payment.amount, payment.currency),
    currency: payment.currency,
    received: moneyOrNull(payment.received),
    isReceivedDifferent: payment.isReceivedDifferent,
    hasAmountMismatch: payment.hasAmountMismatch,
    // What went back in all, as the receipt's JSON and paid.csv count it: with a refund by the billing
    // team, all the payment received (its parts below), else what the provider reported.
    refunded: moneyOrNull(team ?? payment.refunded),
    refundedAt: (team ? team.at : payment.refundedAt)?.toISOString() ?? null,
    // The provider's figure, with what of it a lost dispute took back labelled as the receipt's JSON does it.
    refundedAtProvider: team
      ? team.byProvider && providerPartJson(payment, team.byProvider, team.byProvider.at)
      : payment.refunded && providerPartJson(payment, payment.refunded, payment.refundedAt),
    refundedByBillingTeam: team && refundPartJson(team.byBillingTeam, team.at),
    // A refund the team made after one that failed at the provider: none of that money stayed.
    refundFailed: team ? null : moneyOrNull(payment.refundFailed),
    // What of `refunded` the payer's bank took back by a dispute the centre lost (no refund), or null.
    takenBackByDispute: moneyOrNull(payment.takenBackByDispute),
    holdsPaidReceipt: payment.holdsPaidReceipt,
    externalPaymentId: payment.externalPaymentId,
    reviewReason: payment.reviewReason,
    reviewOutcome: payment.reviewOutcome,
    reviewedBy: payment.reviewedBy,
    reviewedAt: payment.reviewedAt?.toISOString() ?? null,
    reviewNote: payment.reviewNote,
    createdAt: payment.createdAt.toISOString(),
    updatedAt: payment.updatedAt.toISOString(),
    receiptUrl: `/admin/receipts/${payment.receiptId}`,
  };
}

/**
 * /admin/payments as JSON: the payments held for review (the newest 200, of `needsReview`), the
 * refused refunds and disputes not yet settled, one page of every payment with the page's cursor
 * links, and the latest webhook deliveries.
 */
function adminPaymentsJson(list: AdminPayments) {
  return {
    needsReview: list.needsReview,
    heldForReview: list.heldForReview.map(adminPaymentJson),
    refusedClaimCount: list.refusedClaimCount,
    refusedClaims: list.refusedClaims.map((claim) => ({
      id: claim.id,
      paymentId: claim.paymentId,
      receiptId: claim.receiptId,
      provider: claim.provider,
      externalEventId: claim.externalEventId,
      eventType: claim.eventType,
      what: claim.what,
      claimed:
        claim.claimedMinor === null || claim.claimedCurrency === null
          ? null
          : {
              amount: moneyJson(fromMinorUnits(claim.claimedMinor, claim.claimedCurrency), claim.claimedCurrency),
              currency: claim.claimedCurrency,
            },
      reason: claim.reason,
      deliveries: claim.deliveries,
      firstReceivedAt: claim.firstReceivedAt.toISOString(),
      lastReceivedAt: claim.lastReceivedAt.toISOString(),
    })),
    payments: list.payments.map(adminPaymentJson),
    paging: {
      isFirst: list.paymentsPage.isFirst,
      newerUrl: list.paymentsPage.newerLink ?? null,
      olderUrl: list.paymentsPage.olderLink ?? null,
    },
    // The delivery's row id is left out: the page does not show it, and it is a BigInt, which JSON cannot write.
    events: list.events.map((event) => ({
      provider: event.provider,
      externalEventId: event.externalEventId,
      type: event.type,
      outcome: event.outcome,
      paymentId: event.paymentId,
      receivedAt: event.receivedAt.toISOString(),
    })),
  };
}

/** Where a script reads a receipt's status: its JSON. */
function receiptStatusAt(receiptId: number): string {
  return `The status of receipt #${receiptId} is in its JSON at /me/receipts/${receiptId}.`;
}

/** Where a payment or refused claim that cannot be shown or resolved (a bad cursor, a form posted to one not there) sends the admin. */
const PAYMENTS: BackLink = { href: '/admin/payments', text: 'Open Payments' };

/** A resolution the service refused, as the admin filled it in. */
interface RefusedResolution {
  paymentId: number;
  error: string;
  outcome: string | undefined;
  note: string;
  isMismatchAccepted: boolean;
  /** The fields the error is about (outcome, note, accept_mismatch), marked invalid on the form. */
  invalid: string[];
}

/** A settlement of a refused claim the service refused, as the admin typed it. */
interface RefusedSettle {
  claimId: number;
  error: string;
  note: string;
}

/** The payer's side (start, dummy checkout, status) and the admin's payments page with its review actions. */
export function paymentRoutes(deps: {
  payments: PaymentsService;
  guards: Guards;
  showOwnReceipt: ShowOwnReceipt;
}): Router {
  const { payments, guards, showOwnReceipt } = deps;
  const router = Router();

  // A GET must not start anything: it asks, and the button POSTs.
  router.get('/payments/receipt/:id/start', guards.requireUser, async (req, res) => {
    // A receipt (or checkout) that cannot be shown links to the researcher's receipts, as a receipt's own page does.
    offerWayBack(res, MY_RECEIPTS);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    // The page that asks a payer's browser to confirm; a script asking it for JSON got its HTML.
    if (prefersJson(req)) {
      await payments.assertOwnReceipt(sessionUserOf(req).username, id);
      throw new NotAcceptableError(
        `/payments/receipt/${id}/start is the page that asks a payer's browser to confirm, HTML only. To start the ` +
          `payment, send POST /payments/receipt/${id}/start with the X-CSRFToken header: it answers the checkout's ` +
          `address. ${receiptStatusAt(id)}`,
        { publicFields: { jsonUrl: `/me/receipts/${id}` } },
      );
    }
    // A HEAD (a link checker, `curl -I`): the page's type once the receipt is known to be the payer's.
    if (req.method === 'HEAD') {
      await payments.assertOwnReceipt(sessionUserOf(req).username, id);
      answerHeadWithoutWork(res, false);
      return;
    }
    const { receipt, isPaymentHeld, hasAmountDue, sameJobsHeldMessage } = await payments.getStatus(
      sessionUserOf(req).username,
      id,
    );
    res.render('payments/confirm', {
      title: `Pay receipt #${id}`,
      receipt,
      isPaymentHeld,
      hasAmountDue,
      sameJobsHeldMessage,
    });
  });

  router.post('/payments/receipt/:id/start', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    parseInput(ZStartPayment, req.body);
    const { username } = sessionUserOf(req);
    let started: Awaited<ReturnType<typeof payments.startPayment>>;
    try {
      started = await payments.startPayment(username, id, auditContextOf(req));
    } catch (error) {
      // Nothing to pay, already paid, held for review (409) or a provider that could not open a
      // checkout (502): the receipt page the Pay button was on, with the reason; JSON clients
      // get {error, code}. A receipt that is not there (404) has no page to go back to.
      if (!isRefusedForm(req, error, [409, 502])) throw error;
      res.status(error.status);
      await showOwnReceipt(res, { username, id, page: 1, error: `Payment not started. ${readableMessageOf(error)}` });
      return;
    }
    if (prefersJson(req)) {
      // A script or a page's fetch would follow a 303 into the provider's HTML checkout; it needs
      // the address to send its user to. A second start gives the open attempt's address again.
      res.json({
        ok: true,
        receiptId: id,
        checkoutUrl: started.redirectUrl,
        message: `Continue the payment of receipt #${id} at ${started.redirectUrl}.`,
      });
      return;
    }
    res.redirect(303, started.redirectUrl);
  });

  router.get('/payments/thanks', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const { rid } = parseInput(ZThanksQuery, req.query);
    // The page a provider sends the payer's browser back to; a script asking it for JSON got its HTML.
    // After the receipt's own 404, it is pointed at the receipt's JSON, which holds its status.
    if (prefersJson(req)) {
      await payments.assertOwnReceipt(sessionUserOf(req).username, rid);
      throw new NotAcceptableError(
        `/payments/thanks is the page a payer's browser comes back to from the checkout, HTML only. ${receiptStatusAt(rid)}`,
        { publicFields: { jsonUrl: `/me/receipts/${rid}` } },
      );
    }
    const status = await payments.getStatus(sessionUserOf(req).username, rid);
    res.set('Cache-Control', 'no-store');
    res.render('payments/thanks', {
      title: 'Payment status',
      ...status,
      // Without JavaScript only (in <noscript>): with it, payment-wait.js asks for the state and
      // loads the page again once it changes, keeping the keyboard's focus where it is meanwhile.
      refreshSeconds: status.isFinal ? undefined : 2,
      isRefreshWithoutScriptOnly: true,
    });
  });

  // What the status page's script (public/js/payment-wait.js) asks while it waits: JSON only, for the
  // receipt's owner (another user's receipt is 404). The page used to reload itself every 2 s instead.
  router.get('/payments/receipt/:id/status', guards.requireUser, async (req, res) => {
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    res.set('Cache-Control', 'no-store');
    res.json(await payments.getWaitState(sessionUserOf(req).username, id));
  });

  /** The dummy checkout page; once the payment has ended it says how, and offers no choice. */
  async function renderDummyCheckout(res: express.Response, username: string, externalId: string, error?: string) {
    const payment = await payments.getDummyCheckout(username, externalId);
    res.render('payments/dummy-checkout', {
      title: 'Dummy checkout',
      payment,
      externalId,
      amount: fromMinorUnits(payment.amountMinor, payment.currency),
      error,
    });
  }

  router.get('/payments/dummy/checkout/:externalId', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const { externalId } = parseInput(ZExternalIdParam, req.params);
    // The provider's page for the payer's browser; a script asking it for JSON got its HTML. After
    // the checkout's own 404, it is told how to choose as the buttons do, and where the status is.
    if (prefersJson(req)) {
      const { receiptId } = await payments.getDummyCheckout(sessionUserOf(req).username, externalId);
      throw new NotAcceptableError(
        "The dummy checkout is the payment provider's page for the payer's browser, HTML only. To choose as its " +
          `buttons do, send POST /payments/dummy/checkout/${encodeURIComponent(externalId)} with choice pay, fail or ` +
          `cancel and the X-CSRFToken header. ${receiptStatusAt(receiptId)}`,
        { publicFields: { jsonUrl: `/me/receipts/${receiptId}` } },
      );
    }
    await renderDummyCheckout(res, sessionUserOf(req).username, externalId);
  });

  router.post('/payments/dummy/checkout/:externalId', guards.requireUser, async (req, res) => {
    offerWayBack(res, MY_RECEIPTS);
    const { externalId } = parseInput(ZExternalIdParam, req.params);
    const { username } = sessionUserOf(req);
    let completed: Awaited<ReturnType<typeof payments.completeDummyCheckout>>;
    let choice: z.infer<typeof ZDummyChoice>['choice'];
    try {
      ({ choice } = parseInput(ZDummyChoice, req.body));
      completed = await payments.completeDummyCheckout(username, externalId, choice);
    } catch (error) {
      // A choice for a payment that has ended (409): the checkout page again, saying how it ended.
      if (!isRefusedForm(req, error, [409])) throw error;
      res.status(error.status);
      await renderDummyCheckout(res, username, externalId, readableMessageOf(error));
      return;
    }
    const { receiptId } = completed;
    if (prefersJson(req)) {
      // A browser is sent on to the status page; a script got that 303 too, to HTML (a 406 to it now).
      const reported = { pay: 'paid', fail: 'failed', cancel: 'canceled' }[choice];
      res.json({
        ok: true,
        receiptId,
        choice,
        receiptUrl: `/me/receipts/${receiptId}`,
        message: `The dummy checkout reported the payment of receipt #${receiptId} as ${reported}. ${receiptStatusAt(receiptId)}`,
      });
      return;
    }
    res.redirect(303, `/payments/thanks?rid=${receiptId}`);
  });

  /** The payments page; `refused` brings a refused resolution back beside its payment. */
  async function renderPayments(
    res: express.Response,
    refused?: RefusedResolution,
    from?: TPaymentsPageQuery,
    refusedSettle?: RefusedSettle,
  ) {
    res.render('payments/admin-payments', {
      title: 'Payments',
      ...(await payments.listForAdmin(from)),
      reviewOutcomes: PAYMENT_REVIEW_OUTCOMES,
      refused,
      refusedSettle,
    });
  }

  router.get('/admin/payments', guards.requireAdmin, async (req, res) => {
    // A refused cursor (older= and newer= together, edited by hand) leads back to the first page.
    offerWayBack(res, PAYMENTS);
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the cursor checked (400, 404), no list read.
    if (req.method === 'HEAD') {
      await payments.checkAdminPage(parseInput(ZPaymentsPageQuery, req.query));
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    // A script gets the page's lists as JSON; a bad cursor is {error, code}, as it already was.
    if (prefersJson(req)) {
      res.json(adminPaymentsJson(await payments.listForAdmin(parseInput(ZPaymentsPageQuery, req.query))));
      return;
    }
    await renderPayments(res, undefined, parseInput(ZPaymentsPageQuery, req.query));
  });

  router.post('/admin/payments/:id/resolve', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, PAYMENTS);
    const id = parseInput(ZPaymentId, req.params.id, 'payment id');
    let result: Awaited<ReturnType<typeof payments.resolveReview>>;
    try {
      // The payment's state first (resolved already, not held, not there), then the form.
      await payments.checkResolvable(id);
      const input = parseInput(ZResolveReview, req.body);
      result = await payments.resolveReview(auditContextOf(req), id, input);
    } catch (error) {
      // A refused resolution comes back as the page with the reason beside that payment and
      // the note as typed: a note of what finance did is too long to lose to a missing tick.
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      res.status(error.status);
      return renderPayments(res, {
        paymentId: id,
        error: readableMessageOf(error),
        outcome: typedIn(req.body, 'outcome'),
        note: typedIn(req.body, 'note') ?? '',
        isMismatchAccepted: typedIn(req.body, 'accept_mismatch') === 'yes',
        invalid: invalidFieldsOf(error),
      });
    }
    const { canceledPaymentIds, checkoutNotice, ...payment } = result;
    // Only an accept that canceled an open checkout has more to say.
    const canceled = canceledPaymentIds.length === 0 ? {} : { canceledPaymentIds, checkoutNotice };
    // A JSON client gets the flash's sentence as `message`, as every other change's answer has it.
    answerChange(req, res, {
      json: { payment: { ...payment, ...canceled } },
      flash: {
        type: 'success',
        message: `Payment #${id} resolved as ${result.outcome}${result.outcome === 'accepted' ? `; receipt #${result.receiptId} is paid` : ''}.${
          result.canceledPaymentIds.length === 0
            ? ''
            : ` Its open online checkout (payment ${result.canceledPaymentIds.map((open) => `#${open}`).join(', ')}) was canceled; money paid there from now on is held for review.`
        }${result.checkoutNotice ? ` ${result.checkoutNotice}` : ''}`,
      },
      location: '/admin/payments',
    });
  });

  router.post('/admin/payments/refused-claims/:id/settle', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, PAYMENTS);
    const id = parseInput(ZRefusedClaimId, req.params.id, 'refused claim id');
    let settled: Awaited<ReturnType<typeof payments.settleRefusedClaim>>;
    try {
      // The claim's state first (settled already, not there), then the form.
      await payments.checkSettleable(id);
      settled = await payments.settleRefusedClaim(auditContextOf(req), id, parseInput(ZSettleRefusedClaim, req.body));
    } catch (error) {
      // The page again with the reason beside that entry and the note as typed.
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      res.status(error.status);
      return renderPayments(res, undefined, undefined, {
        claimId: id,
        error: readableMessageOf(error),
        note: typedIn(req.body, 'note') ?? '',
      });
    }
    answerChange(req, res, {
      json: { refusedClaim: { id: settled.id, paymentId: settled.paymentId, settled: true } },
      flash: { type: 'success', message: `Refused claim #${id} (event ${settled.externalEventId}) settled.` },
      location: '/admin/payments',
    });
  });

  return router;
}
