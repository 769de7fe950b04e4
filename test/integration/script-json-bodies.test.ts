import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * What a finance or researcher script meets when its JSON body is not what the route reads: each is
 * refused with `{error, code}` naming what to change, and nothing is written. Before, a body that was
 * not UTF-8 was stored with U+FFFD in place of its bytes, Run now ran over its default window whatever
 * window the script sent, and a mark paid read `"new_money": null` as left out, where every other
 * field refuses null.
 */

const CAPTURE = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv');

let db: TestDatabase;
let admin: Agent;
let alice: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const app = buildTestApp(db, {
    env: { FALLBACK_CSV: CAPTURE, INGEST_LOOKBACK_DAYS: '1', APP_TZ: 'UTC' },
    metrics: createMetrics(),
  });
  const researcher = await buildUser(db.prisma, { username: 'alice' });
  alice = await signInAs(app, researcher.username, researcher.password);
  const boss = await buildUser(db.prisma, { username: 'boss', role: 'admin' });
  admin = await signInAs(app, boss.username, boss.password);
});
afterAll(() => db?.drop());

/** POSTs these bytes exactly, labelled as JSON. */
async function postBytes(agent: Agent, route: string, bytes: Buffer) {
  return agent
    .post(route)
    .set('Accept', 'application/json')
    .set('Content-Type', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .serialize((body) => body)
    .send(bytes);
}

async function postJson(agent: Agent, route: string, body: object) {
  return agent
    .post(route)
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(agent))
    .send(body);
}

/** `{"<field>":"caf<0xE9> ..."}`: Latin-1 (Windows-1252) text, as a script on a non-UTF-8 locale writes it. */
function latin1Body(fields: string): Buffer {
  return Buffer.from(fields, 'latin1');
}

const receiptState = (id: number) =>
  db.prisma.receipt.findUniqueOrThrow({
    where: { id },
    select: { status: true, voidReason: true, txRef: true, paidAt: true, paymentMethod: true },
  });

describe('a JSON body that is not UTF-8', () => {
  let receiptId: number;
  beforeEach(async () => {
    receiptId = (await buildReceiptRow(db, 'alice')).id;
  });

  it('is refused naming its first bad byte, and a void stores nothing', async () => {
    const response = await postBytes(
      admin,
      `/admin/receipts/${receiptId}/void`,
      latin1Body('{"reason":"café refund"}'),
    );
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error:
        'The request body is not valid UTF-8: byte 0xE9 at offset 14 (counting from 0) begins no valid UTF-8 character. Send JSON as UTF-8 (RFC 8259, 8.1).',
      code: 400,
    });
    expect(await receiptState(receiptId)).toMatchObject({ status: 'pending', voidReason: null });
    expect(await db.prisma.auditLog.count({ where: { action: 'receipt.void' } })).toBe(0);
  });

  it('is refused on the routes that keep JSON numbers as written too: a mark paid stores nothing', async () => {
    const response = await postBytes(
      admin,
      `/admin/receipts/${receiptId}/paid`,
      latin1Body('{"method":"bank_transfer","amount_received":0.50,"tx_ref":"Überweisung 7"}'),
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(/^The request body is not valid UTF-8: byte 0xDC at offset 59 /);
    expect(await receiptState(receiptId)).toEqual({
      status: 'pending',
      voidReason: null,
      txRef: null,
      paidAt: null,
      paymentMethod: null,
    });
  });

  it('takes the same text sent as UTF-8, a U+FFFD written as its own bytes included', async () => {
    const response = await postBytes(
      admin,
      `/admin/receipts/${receiptId}/void`,
      Buffer.from('{"reason":"café refund \uFFFD"}', 'utf8'),
    );
    expect(response.status, response.text).toBe(200);
    expect(await receiptState(receiptId)).toMatchObject({ status: 'void', voidReason: 'café refund \uFFFD' });
  });
});

describe('Run now sent fields it does not read', () => {
  it('refuses a window, naming the fields, and runs nothing', async () => {
    const runsBefore = await db.prisma.ingestionRun.count();
    const response = await postJson(admin, '/admin/ingestion/run', { from: '2026-11-01', to: '2026-11-07' });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'input: has unknown fields: from, to', code: 400 });
    expect(await db.prisma.ingestionRun.count()).toBe(runsBefore);
    expect(await db.prisma.auditLog.count({ where: { action: 'ingestion.run_now' } })).toBe(0);
  });

  it('still runs when sent no fields, or only the CSRF token as the page form sends it', async () => {
    const bare = await postJson(admin, '/admin/ingestion/run', {});
    expect(bare.status, bare.text).toBe(200);
    expect(bare.body).toMatchObject({ ok: true, status: 'finished' });
    const form = await admin
      .post('/admin/ingestion/run')
      .set('Accept', 'text/html')
      .type('form')
      .send({ csrf_token: await csrfTokenOf(admin) });
    expect(form.status).toBe(303);
  });
});

describe('a mark paid with "new_money": null', () => {
  it('is refused as null, as every other field is, and marks nothing', async () => {
    const receipt = await buildReceiptRow(db, 'alice');
    const response = await postJson(admin, `/admin/receipts/${receipt.id}/paid`, {
      method: 'cash',
      amount_received: '0.50',
      new_money: null,
    });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: 'new_money: cannot be null (leave it out, or give a value)', code: 400 });
    expect(await receiptState(receipt.id)).toMatchObject({ status: 'pending', paidAt: null, paymentMethod: null });
  });
});

describe('a JSON number past what JavaScript holds where a date goes', () => {
  it('is told so, not that it "got null", and creates no receipt', async () => {
    const receiptsBefore = await db.prisma.receipt.count();
    const response = await postBytes(alice, '/me/receipt', Buffer.from('{"before":1e400}'));
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'before: must be a date as YYYY-MM-DD (got a number too large to read)',
      code: 400,
    });
    expect(await db.prisma.receipt.count()).toBe(receiptsBefore);
  });
});
