import { createHmac } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { createPayingResearchers, DUMMY_WEBHOOK_SECRET, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * What a webhook's bytes are taken as, found in a walk through the endpoint: a body opening with a
 * UTF-8 byte-order mark was refused as "not JSON" (and Stripe's package, which drops the mark before
 * hashing, took one added to a body signed without it); `charset=utf-16` was taken and read as
 * UTF-8; a gzip body was decompressed and its signature checked over what it inflated to, which no
 * provider signed; and /payments/webhook/DUMMY was a 400 "is not a provider name" where the address
 * is simply not an endpoint.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'bytes');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

async function pendingPayment(on = app) {
  const { agent, receiptId } = await payers.researcherWithReceipt(on);
  await payers.startCheckout(agent, receiptId);
  return payers.latestPaymentOf(receiptId);
}

function succeededBody(payment: { externalPaymentId: string | null }, eventId: string) {
  return JSON.stringify({
    event_id: eventId,
    event_type: 'payment.succeeded',
    external_payment_id: payment.externalPaymentId,
    amount_cents: 1000,
    currency: 'THB',
  });
}

/** Every row a webhook may write: a refused delivery must leave all of them as they were. */
async function everythingWritten() {
  return {
    payments: await db.prisma.payment.findMany({ orderBy: { id: 'asc' } }),
    receipts: await db.prisma.receipt.findMany({ select: { id: true, status: true }, orderBy: { id: 'asc' } }),
    events: await db.prisma.paymentEvent.findMany({ orderBy: { id: 'asc' } }),
    refusedClaims: await db.prisma.paymentRefusedClaim.count(),
    audits: await db.prisma.auditLog.findMany({ select: { id: true }, orderBy: { id: 'asc' } }),
  };
}

/** Sends `bytes` as they are: superagent writes a Buffer under a JSON type as JSON.stringify's {"type":"Buffer",…}. */
function sendAsIs(call: request.Test, bytes: Buffer) {
  return call.serialize((body) => body).send(bytes);
}

/** POSTs `bytes` to the dummy webhook as they are, signed over `signedBytes` (the same bytes by default). */
function deliverDummyBytes(
  bytes: Buffer,
  options: { contentType?: string; signedBytes?: Buffer; path?: string; headers?: Record<string, string> } = {},
) {
  let call = request(app)
    .post(options.path ?? '/payments/webhook/dummy')
    .set('Content-Type', options.contentType ?? 'application/json')
    .set('X-Dummy-Signature', signDummyWebhook(options.signedBytes ?? bytes, DUMMY_WEBHOOK_SECRET));
  for (const [name, value] of Object.entries(options.headers ?? {})) call = call.set(name, value);
  return sendAsIs(call, bytes);
}

describe('a body opening with a UTF-8 byte-order mark', () => {
  it('is taken from the dummy provider, signed over the bytes as sent, mark included', async () => {
    const payment = await pendingPayment();
    const body = Buffer.concat([BOM, Buffer.from(succeededBody(payment, `evt-bom-${payment.id}`))]);
    const answer = await deliverDummyBytes(body);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('succeeded');
    // Recorded as it came: the mark is dropped only to read the JSON.
    const stored = await db.prisma.paymentEvent.findFirstOrThrow({
      where: { externalEventId: `evt-bom-${payment.id}` },
    });
    expect(Buffer.from(stored.rawPayload, 'utf8').equals(body)).toBe(true);
  });

  it('is refused when the signature is over the body without the mark, and nothing is written', async () => {
    const payment = await pendingPayment();
    const json = Buffer.from(succeededBody(payment, `evt-bom-unsigned-${payment.id}`));
    const before = await everythingWritten();
    const answer = await deliverDummyBytes(Buffer.concat([BOM, json]), { signedBytes: json });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'Webhook rejected: signature does not match.', code: 400 });
    expect(await everythingWritten()).toEqual(before);
  });
});

describe('Content-Type charset', () => {
  it.each([
    'application/json; charset=utf-16',
    'application/json; charset="UTF-16LE"',
    'application/json;charset=iso-8859-1',
    'application/json; charset=',
  ])('%s is refused with 415 saying so, and nothing is written', async (contentType) => {
    const payment = await pendingPayment();
    const before = await everythingWritten();
    const answer = await deliverDummyBytes(Buffer.from(succeededBody(payment, `evt-charset-${payment.id}`)), {
      contentType,
    });
    expect(answer.status, answer.text).toBe(415);
    expect(answer.body.code).toBe(415);
    expect(answer.body.error).toMatch(/^Webhooks must be sent as application\/json in UTF-8; this one says charset=/);
    expect(Object.keys(answer.body).sort()).toEqual(['code', 'error']);
    expect(await everythingWritten()).toEqual(before);
  });

  it.each(['application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json; charset="utf-8"'])(
    '%s is taken',
    async (contentType) => {
      const payment = await pendingPayment();
      const answer = await deliverDummyBytes(Buffer.from(succeededBody(payment, `evt-utf8-${payment.id}`)), {
        contentType,
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.outcome).toBe('ok');
    },
  );
});

describe('Content-Encoding', () => {
  it('gzip is refused with 415 whichever bytes were signed, and nothing is written', async () => {
    const payment = await pendingPayment();
    const json = Buffer.from(succeededBody(payment, `evt-gzip-${payment.id}`));
    const compressed = gzipSync(json);
    const before = await everythingWritten();
    // Signed over what it inflates to (which used to be taken), and over the bytes sent.
    for (const signedBytes of [json, compressed]) {
      const answer = await deliverDummyBytes(compressed, { signedBytes, headers: { 'Content-Encoding': 'gzip' } });
      expect(answer.status, answer.text).toBe(415);
      expect(answer.body).toEqual({
        error:
          'Webhooks must be sent uncompressed (Content-Encoding identity): the signature is over the bytes the provider sends; this one says Content-Encoding gzip.',
        code: 415,
      });
    }
    expect(await everythingWritten()).toEqual(before);
  });

  it('identity is taken', async () => {
    const payment = await pendingPayment();
    const answer = await deliverDummyBytes(Buffer.from(succeededBody(payment, `evt-identity-${payment.id}`)), {
      headers: { 'Content-Encoding': 'Identity' },
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.outcome).toBe('ok');
  });
});

describe('a webhook address of no provider here', () => {
  it.each(['DUMMY', 'Dummy', 'stripe', 'paypal', 'dummy2'])(
    '/payments/webhook/%s is 404 naming the endpoint there is, and nothing is written',
    async (name) => {
      const payment = await pendingPayment();
      const before = await everythingWritten();
      const answer = await deliverDummyBytes(Buffer.from(succeededBody(payment, `evt-404-${name}-${payment.id}`)), {
        path: `/payments/webhook/${name}`,
      });
      expect(answer.status, answer.text).toBe(404);
      expect(answer.body).toEqual({
        error:
          'No such webhook endpoint: this site takes its payment provider’s webhooks at /payments/webhook/dummy (provider names are lower case).',
        code: 404,
      });
      expect(await everythingWritten()).toEqual(before);
    },
  );
});

describe('Stripe (SDK against a local fake of the API)', () => {
  const WEBHOOK_SECRET = 'whsec_bodybytessecretfortests';
  const { stripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforbodybytes',
    webhookSecret: WEBHOOK_SECRET,
  });

  /** A Stripe-Signature over exactly `bytes`, as Stripe computes it (HMAC-SHA256 of "t." and the payload). */
  function stripeSignatureOver(bytes: Buffer) {
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.`).update(bytes).digest('hex');
    return `t=${t},v1=${v1}`;
  }

  const deliverStripeBytes = (bytes: Buffer, signedBytes = bytes) => {
    const call = request(stripe.app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json; charset=utf-8')
      .set('Stripe-Signature', stripeSignatureOver(signedBytes));
    return sendAsIs(call, bytes);
  };

  it('takes a body opening with a byte-order mark, signed over the bytes as sent', async () => {
    const payment = await pendingPayment(stripe.app);
    const json = JSON.stringify(buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_bom_1', 'evt_bom_1'));
    const answer = await deliverStripeBytes(Buffer.concat([BOM, Buffer.from(json)]));
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('succeeded');
  });

  it('refuses a mark added to a body signed without it (the package drops it before hashing), writing nothing', async () => {
    const payment = await pendingPayment(stripe.app);
    const json = Buffer.from(
      JSON.stringify(buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_bom_2', 'evt_bom_2')),
    );
    const before = await everythingWritten();
    const answer = await deliverStripeBytes(Buffer.concat([BOM, json]), json);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: 'Webhook rejected: the Stripe-Signature header does not match this body signed with the webhook secret.',
      code: 400,
    });
    expect(await everythingWritten()).toEqual(before);
  });

  it('refuses a byte that is not UTF-8 in place of a signed U+FFFD (the package decodes it to that), writing nothing', async () => {
    const payment = await pendingPayment(stripe.app);
    const event = buildStripeCheckoutPaid(payment.externalPaymentId, 'pi_bad_utf8', 'evt_bad_utf8');
    const [head, tail] = JSON.stringify({ ...event, note: 'X' }).split('X') as [string, string];
    const signed = Buffer.from(`${head}\ufffd${tail}`);
    const sent = Buffer.concat([Buffer.from(head), Buffer.from([0xfe]), Buffer.from(tail)]);
    const before = await everythingWritten();
    const answer = await deliverStripeBytes(sent, signed);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(
      'Webhook rejected: the Stripe-Signature header does not match this body signed with the webhook secret.',
    );
    expect(await everythingWritten()).toEqual(before);
  });
});
