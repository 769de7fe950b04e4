import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const fixture = (name: string) =>
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../fixtures/stripe', name), 'utf8')) as Record<
    string,
    unknown
  >;
const SESSION_FIXTURE = fixture('checkout-session.json');
/** POST /v1/checkout/sessions/:id/expire's 200: the session, expired. */
const EXPIRED_SESSION_FIXTURE = fixture('checkout-session-expired.json');
/** Its 400 for a session the payer completed first. */
const EXPIRE_COMPLETE_ERROR_FIXTURE = fixture('checkout-session-expire-complete.json');
/** The Charge of a charge.refunded event (refunded in full; amount_refunded is every refund so far). */
const CHARGE_REFUNDED_FIXTURE = fixture('charge-refunded.json');
const DISPUTE_FIXTURE = fixture('charge-dispute-created.json');
/** The Refund of a charge.refund.updated event for a refund that failed (status "failed", with failure_reason). */
const REFUND_FAILED_FIXTURE = fixture('charge-refund-failed.json');
/** The Dispute of a charge.dispute.closed event (lost; status is "won" or "lost" once closed). */
const DISPUTE_CLOSED_FIXTURE = fixture('charge-dispute-closed.json');

export interface FakeStripe {
  url: string;
  requests: Array<{
    method: string;
    path: string;
    form: URLSearchParams;
    idempotencyKey: string | undefined;
    authorization: string | undefined;
  }>;
  /** Makes the next request answer with this status and Stripe error body. */
  failNext(status: number, message: string): void;
  /** Makes the next request get no answer at all, until the client gives up (its timeout). */
  hangNext(): void;
  /**
   * The payer finished paying this session (with the PaymentIntent `paymentIntent`, which listing
   * the sessions by it then finds): expiring it is then refused, as Stripe refuses it. A session
   * the fake never opened (another integration's) may be named too.
   */
  completeSession(id: string, paymentIntent?: string): void;
  /**
   * Runs `during` while the next request is in flight: received, and answered (as failNext and
   * hangNext had it before `during` ran) only once `during` has settled. failNext or hangNext
   * called inside it applies to the request after.
   */
  whileNextInFlight(during: () => Promise<unknown>): void;
  close(): Promise<void>;
}

/**
 * A local stand-in for api.stripe.com's Checkout Sessions endpoints (create, expire, list by
 * PaymentIntent): answers with the documented Checkout Session object, filled in from the request,
 * refuses to expire a session that is no longer open with Stripe's recorded 400, lists the session
 * a completed PaymentIntent belongs to (none for another), and replays the same answer for a
 * repeated Idempotency-Key, as Stripe does.
 */
export async function startFakeStripe(secretKey: string): Promise<FakeStripe> {
  const requests: FakeStripe['requests'] = [];
  const byIdempotencyKey = new Map<string, string>();
  const statusOf = new Map<string, 'open' | 'complete' | 'expired'>();
  const sessionOfIntent = new Map<string, Record<string, unknown>>();
  let failure: { status: number; message: string } | undefined;
  let isHangingNext = false;
  let inFlight: (() => Promise<unknown>) | undefined;
  const hung = new Set<http.ServerResponse>();
  let counter = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'Request-Id': `req_fake_${++counter}` });
        res.end(JSON.stringify(payload));
      };
      if (req.headers.authorization !== `Bearer ${secretKey}`) {
        return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } });
      }
      const expiring = /^\/v1\/checkout\/sessions\/([A-Za-z0-9_]+)\/expire$/.exec(req.url ?? '');
      const [pathname = '', query = ''] = (req.url ?? '').split('?', 2);
      const isListing = req.method === 'GET' && pathname === '/v1/checkout/sessions';
      if (!isListing && (req.method !== 'POST' || (req.url !== '/v1/checkout/sessions' && !expiring))) {
        return send(404, {
          error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${req.url}).` },
        });
      }
      const form = new URLSearchParams(isListing ? query : body);
      const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        form,
        idempotencyKey,
        authorization: req.headers.authorization,
      });
      if (isHangingNext) {
        isHangingNext = false;
        hung.add(res);
        return;
      }
      // Taken now, so a failNext called inside a whileNextInFlight hook is for the request after.
      const failing = failure;
      failure = undefined;
      const answer = () => {
        if (failing) {
          const { status, message } = failing;
          return send(status, { error: { type: status >= 500 ? 'api_error' : 'invalid_request_error', message } });
        }
        if (isListing) {
          const session = sessionOfIntent.get(form.get('payment_intent') ?? '');
          return send(200, { object: 'list', data: session ? [session] : [], has_more: false, url: pathname });
        }
        const replay = idempotencyKey ? byIdempotencyKey.get(idempotencyKey) : undefined;
        if (replay) {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' });
          return res.end(replay);
        }
        if (expiring?.[1]) {
          const id = expiring[1];
          const status = statusOf.get(id);
          if (status === undefined) {
            return send(404, {
              error: {
                code: 'resource_missing',
                param: 'session',
                type: 'invalid_request_error',
                message: `No such checkout.session: '${id}'`,
              },
            });
          }
          if (status === 'complete') return send(400, EXPIRE_COMPLETE_ERROR_FIXTURE);
          if (status === 'expired') {
            const error = EXPIRE_COMPLETE_ERROR_FIXTURE.error as Record<string, unknown>;
            return send(400, {
              error: { ...error, message: String(error.message).replace('`complete`', '`expired`') },
            });
          }
          statusOf.set(id, 'expired');
          const text = JSON.stringify({ ...EXPIRED_SESSION_FIXTURE, id });
          if (idempotencyKey) byIdempotencyKey.set(idempotencyKey, text);
          res.writeHead(200, { 'Content-Type': 'application/json' });
          return res.end(text);
        }
        const id = `cs_test_fake${String(++counter).padStart(6, '0')}`;
        const amount = Number(form.get('line_items[0][price_data][unit_amount]'));
        const metadata: Record<string, string> = {};
        for (const [key, value] of form) {
          const match = /^metadata\[(.+)\]$/.exec(key);
          if (match?.[1]) metadata[match[1]] = value;
        }
        const session = {
          ...SESSION_FIXTURE,
          id,
          amount_subtotal: amount,
          amount_total: amount,
          currency: form.get('line_items[0][price_data][currency]'),
          client_reference_id: form.get('client_reference_id'),
          metadata,
          success_url: form.get('success_url'),
          cancel_url: form.get('cancel_url'),
          url: `https://checkout.stripe.com/c/pay/${id}`,
        };
        const text = JSON.stringify(session);
        statusOf.set(id, 'open');
        if (idempotencyKey) byIdempotencyKey.set(idempotencyKey, text);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(text);
      };
      const during = inFlight;
      inFlight = undefined;
      if (!during) return answer();
      // What the hook did is for the test to check; the request is answered either way.
      during().then(answer, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(status, message) {
      failure = { status, message };
    },
    hangNext() {
      isHangingNext = true;
    },
    completeSession(id, paymentIntent) {
      statusOf.set(id, 'complete');
      if (paymentIntent) {
        sessionOfIntent.set(paymentIntent, {
          ...SESSION_FIXTURE,
          id,
          payment_intent: paymentIntent,
          payment_status: 'paid',
          status: 'complete',
          url: null,
        });
      }
    },
    whileNextInFlight(during) {
      inFlight = during;
    },
    close: () => {
      for (const res of hung) res.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A Stripe event around a Checkout Session, as Stripe posts it to a webhook endpoint. */
export function buildStripeEvent(type: string, session: Record<string, unknown>, id = `evt_test_${Date.now()}`) {
  return {
    id,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    data: { object: { ...SESSION_FIXTURE, ...session } },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/**
 * Stripe's checkout.session.completed for Checkout Session `sessionId` paid in full (10.00 THB, the
 * dummy-payments researchers' receipt), naming the PaymentIntent later refunds and disputes name.
 */
export function buildStripeCheckoutPaid(
  sessionId: string | null,
  paymentIntent: string,
  id = `evt_test_${Date.now()}`,
) {
  return buildStripeEvent(
    'checkout.session.completed',
    {
      id: sessionId,
      amount_total: 1000,
      currency: 'thb',
      payment_status: 'paid',
      status: 'complete',
      payment_intent: paymentIntent,
    },
    id,
  );
}

/** Stripe's charge.refunded event around a Charge (the recorded one, with `charge`'s fields over it). */
export function buildStripeChargeRefunded(charge: Record<string, unknown>, id = `evt_test_${Date.now()}`) {
  return {
    ...buildStripeEvent('charge.refunded', {}, id),
    data: { object: { ...CHARGE_REFUNDED_FIXTURE, ...charge }, previous_attributes: { amount_refunded: 0 } },
  };
}

/**
 * Stripe's charge.dispute.created event around a Dispute (the fixture, kept to the Dispute's
 * documented fields, with `dispute`'s fields over it).
 */
export function buildStripeDisputeCreated(dispute: Record<string, unknown>, id = `evt_test_${Date.now()}`) {
  return {
    ...buildStripeEvent('charge.dispute.created', {}, id),
    data: { object: { ...DISPUTE_FIXTURE, ...dispute } },
  };
}

/**
 * Stripe's charge.dispute.closed event around a Dispute (the fixture, lost, kept to the Dispute's
 * documented fields, with `dispute`'s fields over it).
 */
export function buildStripeDisputeClosed(dispute: Record<string, unknown>, id = `evt_test_${Date.now()}`) {
  return {
    ...buildStripeEvent('charge.dispute.closed', {}, id),
    data: { object: { ...DISPUTE_CLOSED_FIXTURE, ...dispute } },
  };
}

/**
 * Stripe's charge.refund.updated event around a Refund (the fixture, failed, kept to the Refund's
 * documented fields, with `refund`'s fields over it): what changed is in previous_attributes.
 */
export function buildStripeRefundUpdated(refund: Record<string, unknown>, id = `evt_test_${Date.now()}`) {
  return {
    ...buildStripeEvent('charge.refund.updated', {}, id),
    data: {
      object: { ...REFUND_FAILED_FIXTURE, ...refund },
      previous_attributes: { status: 'succeeded', failure_reason: null, failure_balance_transaction: null },
    },
  };
}
