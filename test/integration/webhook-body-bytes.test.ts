import { createHmac } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDummyWebhook } from '../../src/modules/payments/dummy.provider.js';
import { createPayingResearchers, DUMMY_WEBHOOK_SECRET, setUpDummyPayments } from '../support/dummy-payments.js';
import { buildStripeCheckoutPaid } from '../support/fake-stripe.js';
import { useStripeApp } from '../support/stripe-webhooks.js';
import { type buildTestApp, metricValue } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * What a webhook's bytes are taken as, found in a walk through the endpoint: a body opening with a
 * UTF-8 byte-order mark was refused as "not JSON" (and Stripe's package, which drops the mark before
 * hashing, took one added to a body signed without it); `charset=utf-16` was taken and read as
 * UTF-8; a gzip body was decompressed and its signature checked over what it inflated to, which no
 * provider signed; and /payments/webhook/DUMMY was a 400 "is not a provider name" where the address
 * is simply not an endpoint. A body whose bytes are not UTF-8 was taken by the dummy provider, that text
 * stored as U+FFFD; from Stripe, signed over those very bytes, it was refused as "does not match",
 * which sent Stripe's operator to the secret.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
beforeAll(async () => {
  ({ db, app } = await setUpDummyPayments());
});
afterAll(() => db?.drop());

const payers = createPayingResearchers(() => ({ db, app }), 'bytes');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const pendingPayment = (on = app) => payers.pendingPayment(on);

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

  // An engineer checking the endpoint in a browser was told GET /payments/webhook/stripe "answers POST
  // only … It takes the signed webhooks a payment provider posts", on a site whose provider is dummy,
  // where a POST there is this 404: the address read as the right one.
  it.each(['DUMMY', 'stripe', 'dummy2'])('opened in a browser, /payments/webhook/%s is the same 404', async (name) => {
    for (const accept of ['application/json', 'text/html']) {
      const answer = await request(app).get(`/payments/webhook/${name}`).set('Accept', accept);
      expect(answer.status, answer.text).toBe(404);
      expect(answer.headers.allow).toBeUndefined();
      expect(answer.text).toContain(
        'No such webhook endpoint: this site takes its payment provider’s webhooks at /payments/webhook/dummy (provider names are lower case).',
      );
    }
    const dummy = await request(app).get('/payments/webhook/dummy').set('Accept', 'application/json');
    expect(dummy.status).toBe(405);
    expect(dummy.headers.allow).toBe('POST');
  });
});

// Java's HttpURLConnection sends this Accept unless told otherwise. A delivery refused from its headers
// (415 for its type, charset or encoding; 404 for the address) was answered as an HTML page to such a
// client, where every other answer of the webhook is JSON {error, code}.
const JAVA_DEFAULT_ACCEPT = 'text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2';

describe('a webhook refused from its headers, to a client that accepts HTML', () => {
  it.each([
    ['text/plain', {}, 415, 'Webhooks must be sent as application/json.'],
    [
      'application/json; charset=utf-16',
      {},
      415,
      'Webhooks must be sent as application/json in UTF-8; this one says charset=utf-16.',
    ],
    [
      'text/plain',
      { path: '/payments/webhook/DUMMY' },
      404,
      'No such webhook endpoint: this site takes its payment provider’s webhooks at /payments/webhook/dummy (provider names are lower case).',
    ],
  ] as const)(
    '%s %j is answered in JSON, {error, code}, and nothing is written',
    async (contentType, where, status, error) => {
      const payment = await pendingPayment();
      const before = await everythingWritten();
      const answer = await deliverDummyBytes(Buffer.from(succeededBody(payment, `evt-accept-html-${payment.id}`)), {
        contentType,
        ...where,
        headers: { Accept: JAVA_DEFAULT_ACCEPT },
      });
      expect(answer.status, answer.text).toBe(status);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ error, code: status });
      expect(await everythingWritten()).toEqual(before);
    },
  );
});

/** The refusal of a signed body that is not UTF-8, naming the first byte that is not. */
function notUtf8(byte: number, offset: number) {
  const hex = byte.toString(16).toUpperCase().padStart(2, '0');
  return {
    error: `Webhook rejected: body is not valid UTF-8: byte 0x${hex} at offset ${offset} (counting from 0) begins no valid UTF-8 character; JSON is sent as UTF-8 (RFC 8259, 8.1).`,
    code: 400,
  };
}

/**
 * `json` with `bad` in place of the X in its text, and the offset of `bad`'s first byte. Characters
 * of two, three and four bytes come before it, so the offset counts bytes, not characters.
 */
function withBytesInText(json: string, bad: number[]) {
  const [head, tail] = json.replace('X', 'é€😀X').split('X') as [string, string];
  return {
    bytes: Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]),
    offset: Buffer.byteLength(head),
  };
}

/**
 * A dummy success event carrying `note` as its `dispute_reason`: free text of the dummy events, which a
 * success does not read (a field they do not have is refused).
 */
function succeededBodyWithNote(payment: { externalPaymentId: string | null }, eventId: string, note: string) {
  return JSON.stringify({ ...JSON.parse(succeededBody(payment, eventId)), dispute_reason: note });
}

describe('a body that is not UTF-8, from the dummy provider', () => {
  it.each([
    ['a byte no UTF-8 has (FE)', [0xfe]],
    ['a continuation byte alone (80)', [0x80]],
    ['a character cut short (E2 82, then the closing quote)', [0xe2, 0x82]],
    ['an overlong "/" (C0 AF)', [0xc0, 0xaf]],
    ['a UTF-16 surrogate written as UTF-8 (ED A0 80)', [0xed, 0xa0, 0x80]],
  ])(
    '%s, signed over those bytes, is refused with 400 naming its offset, and nothing is written',
    async (_label, bad) => {
      const payment = await pendingPayment();
      const eventId = `evt-not-utf8-${payment.id}`;
      const { bytes, offset } = withBytesInText(succeededBodyWithNote(payment, eventId, 'X'), bad);
      const before = await everythingWritten();
      const answer = await deliverDummyBytes(bytes);
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body).toEqual(notUtf8(bad[0] as number, offset));
      expect(await everythingWritten()).toEqual(before);
      expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('pending');
    },
  );

  it('is refused when it ends in a character cut short, naming where that character begins', async () => {
    const payment = await pendingPayment();
    const json = Buffer.from(succeededBody(payment, `evt-cut-short-${payment.id}`));
    const before = await everythingWritten();
    const answer = await deliverDummyBytes(Buffer.concat([json, Buffer.from([0xf0, 0x9f, 0x98])]));
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body).toEqual(notUtf8(0xf0, json.length));
    expect(await everythingWritten()).toEqual(before);
  });

  it('is refused for its signature first when the signature is over other bytes', async () => {
    const payment = await pendingPayment();
    const json = succeededBodyWithNote(payment, `evt-not-utf8-unsigned-${payment.id}`, 'X');
    const { bytes } = withBytesInText(json, [0xfe]);
    const before = await everythingWritten();
    const answer = await deliverDummyBytes(bytes, { signedBytes: withBytesInText(json, []).bytes });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'Webhook rejected: signature does not match.', code: 400 });
    expect(await everythingWritten()).toEqual(before);
  });

  it('takes a U+FFFD written as UTF-8 (EF BF BD), with other characters of several bytes, and records it as sent', async () => {
    const payment = await pendingPayment();
    const eventId = `evt-replacement-char-${payment.id}`;
    const body = Buffer.from(succeededBodyWithNote(payment, eventId, 'é€😀\ufffd'));
    const answer = await deliverDummyBytes(body);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ received: true, outcome: 'ok' });
    const stored = await db.prisma.paymentEvent.findFirstOrThrow({ where: { externalEventId: eventId } });
    expect(Buffer.from(stored.rawPayload, 'utf8').equals(body)).toBe(true);
  });
});

describe('Stripe (SDK against a local fake of the API)', () => {
  const WEBHOOK_SECRET = 'whsec_bodybytessecretfortests';
  const { stripe } = useStripeApp(() => db, {
    secretKey: 'sk_test_fakekeyforbodybytes',
    webhookSecret: WEBHOOK_SECRET,
  });

  /** A Stripe-Signature over exactly `bytes`, as Stripe computes it (HMAC-SHA256 of "t." and the payload). */
  function stripeSignatureOver(bytes: Buffer, options: { secondsAgo?: number; secret?: string } = {}) {
    const t = Math.floor(Date.now() / 1000) - (options.secondsAgo ?? 0);
    const v1 = createHmac('sha256', options.secret ?? WEBHOOK_SECRET)
      .update(`${t}.`)
      .update(bytes)
      .digest('hex');
    return `t=${t},v1=${v1}`;
  }

  const deliverStripeBytes = (bytes: Buffer, signedBytes = bytes, signature = stripeSignatureOver(signedBytes)) => {
    const call = request(stripe.app)
      .post('/payments/webhook/stripe')
      .set('Content-Type', 'application/json; charset=utf-8')
      .set('Stripe-Signature', signature);
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
  /** payments_webhook_events_total of Stripe deliveries refused before their event was read. */
  const refusedCounts = async () => ({
    badSignature: await metricValue(stripe.metrics, 'payments_webhook_events_total', {
      provider: 'stripe',
      event: 'other',
      outcome: 'bad_signature',
    }),
    error: await metricValue(stripe.metrics, 'payments_webhook_events_total', {
      provider: 'stripe',
      event: 'other',
      outcome: 'error',
    }),
  });

  /** A checkout.session.completed for `payment` whose text has the bytes `bad` in it, and their offset. */
  async function stripeBodyWithBytes(bad: number[], ids: string) {
    const payment = await pendingPayment(stripe.app);
    const event = buildStripeCheckoutPaid(payment.externalPaymentId, `pi_${ids}`, `evt_${ids}`);
    return { payment, ...withBytesInText(JSON.stringify({ ...event, note: 'X' }), bad) };
  }

  it('refuses a body signed over bytes that are not UTF-8 as not UTF-8, naming the offset, not as a bad signature', async () => {
    const { payment, bytes, offset } = await stripeBodyWithBytes([0xfe], 'signed_not_utf8');
    const before = await everythingWritten();
    const counted = await refusedCounts();
    const answer = await deliverStripeBytes(bytes);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body).toEqual(notUtf8(0xfe, offset));
    expect(await everythingWritten()).toEqual(before);
    expect((await db.prisma.payment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe('pending');
    // The secret is right: an alert on bad signatures must not send anyone to rotate it.
    expect(await refusedCounts()).toEqual({ badSignature: counted.badSignature, error: counted.error + 1 });
  });

  it.each([
    [
      'another secret',
      { secret: 'whsec_anothersecret' },
      'Webhook rejected: the Stripe-Signature header does not match this body signed with the webhook secret.',
    ],
    [
      'a timestamp past the tolerance',
      { secondsAgo: 1_000 },
      'Webhook rejected: the Stripe-Signature timestamp is more than 300 s from now.',
    ],
  ])('refuses a body that is not UTF-8 signed with %s for its signature first', async (_label, signing, message) => {
    const { bytes } = await stripeBodyWithBytes([0xe2, 0x82], 'not_utf8_badly_signed');
    const before = await everythingWritten();
    const answer = await deliverStripeBytes(bytes, bytes, stripeSignatureOver(bytes, signing));
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: message, code: 400 });
    expect(await everythingWritten()).toEqual(before);
  });
});
