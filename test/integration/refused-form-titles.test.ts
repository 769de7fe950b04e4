import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { researcherWithReceiptOf, startCheckout } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A refused form comes back as its page with the reason: its <title> said the same as the empty
 * form's, so a screen reader, which announces the title as the page loads, told nothing of the
 * refusal (found by the accessibility review). The title now starts with "Error: " (GOV.UK's
 * pattern) on every page that shows a refused form's reason, and only there.
 */
let db: TestDatabase;
let app: express.Express;
let ops: Agent;
let researcher: { agent: Agent; receiptId: number };

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  app = buildTestApp(db, { env: DUMMY_PAYMENTS_ENV });
  ops = await signInAs(app, 'ops', 'ops-password-123');
  researcher = await researcherWithReceiptOf(app, db, 'kim', 20);
});
afterAll(() => db?.drop());

const titleOf = (html: string) => /<title>([^<]*)<\/title>/.exec(html)?.[1];

/** A form sent as a browser sends it, from `page`. */
async function sendForm(agent: Agent, page: string, action: string, fields: Record<string, string>) {
  return agent
    .post(action)
    .set('Accept', 'text/html')
    .type('form')
    .send({ ...fields, csrf_token: await csrfTokenOf(agent, page) });
}

const getHtml = (agent: Agent, path: string) => agent.get(path).set('Accept', 'text/html');

describe('the title of a page showing a refused form', () => {
  it.each([
    ['a rates form', '/admin/rates', { type: 'gov', cpu: '-3', gpu: '18', mem: '0.08' }, 400, 'Edit rates'],
    [
      'a rates form of a tier that has no card',
      '/admin/rates',
      { type: 'gold', cpu: '1', gpu: '1', mem: '1' },
      400,
      'Edit rates',
    ],
    ['a new tier', '/admin/rates/tiers', { name: 'gov', cpu: '9', gpu: '9', mem: '9' }, 409, 'Edit rates'],
    ['a rename', '/admin/rates/tiers/edit', { type: 'gov', name: 'private', description: '' }, 409, 'Edit rates'],
    ['a default tier', '/admin/rates/default', { type: 'gold' }, 400, 'Edit rates'],
  ])('%s on Edit rates', async (_name, action, fields, status, title) => {
    const page = await sendForm(ops, '/admin/rates', action, fields);
    expect(page.status).toBe(status);
    expect(titleOf(page.text)).toBe(`Error: ${title} · HPC Billing`);
  });

  it('a tier override on Tier overrides', async () => {
    const page = await sendForm(ops, '/admin/tiers', '/admin/tiers', { username: 'kim', tier: 'gold' });
    expect(page.status).toBeGreaterThanOrEqual(400);
    expect(titleOf(page.text)).toBe('Error: Tier overrides · HPC Billing');
  });

  it('a new user and a change refused on Users', async () => {
    const created = await sendForm(ops, '/admin/users', '/admin/users', { username: '9 bad', role: 'user' });
    expect(created.status).toBe(400);
    expect(titleOf(created.text)).toBe('Error: Users · HPC Billing');
    // Demoting the last admin: refused, with the reason at the top of the page.
    const { id } = await db.prisma.user.findUniqueOrThrow({ where: { username: 'ops' }, select: { id: true } });
    const demoted = await sendForm(ops, '/admin/users', `/admin/users/${id}/role`, { role: 'user' });
    expect(demoted.status).toBe(409);
    expect(titleOf(demoted.text)).toBe('Error: Users · HPC Billing');
  });

  it("a void without a reason and a mark paid without an amount on a receipt's page", async () => {
    const page = `/admin/receipts/${researcher.receiptId}`;
    const voided = await sendForm(ops, page, `${page}/void`, { reason: '' });
    expect(voided.status).toBe(400);
    expect(titleOf(voided.text)).toBe(`Error: Receipt #${researcher.receiptId} · HPC Billing`);
    const marked = await sendForm(ops, page, `${page}/paid`, { method: 'bank_transfer', amount_received: 'x' });
    expect(marked.status).toBe(400);
    expect(titleOf(marked.text)).toBe(`Error: Receipt #${researcher.receiptId} · HPC Billing`);
  });

  it('the filters of Billing, its paid receipts export, Usage across users and the audit log', async () => {
    for (const [path, title] of [
      ['/admin/receipts?start=not-a-day', 'Billing'],
      ['/admin/paid.csv?start=not-a-day', 'Billing'],
      ['/admin/usage?start=not-a-day', 'Usage across users'],
      ['/admin/audit?from=not-a-day', 'Audit log'],
    ] as const) {
      const page = await getHtml(ops, path);
      expect(page.status, path).toBe(400);
      expect(titleOf(page.text), path).toBe(`Error: ${title} · HPC Billing`);
    }
  });

  it("a researcher's window and receipt on My usage, and their password on Your account", async () => {
    const window = await getHtml(researcher.agent, '/me?start=not-a-day');
    expect(window.status).toBe(400);
    expect(titleOf(window.text)).toBe('Error: My usage · HPC Billing');
    // Nothing left to bill: every job is on the receipt already.
    const receipt = await sendForm(researcher.agent, '/me', '/me/receipt', { before: '2026-01-31' });
    expect(receipt.status).toBe(422);
    expect(titleOf(receipt.text)).toBe('Error: My usage · HPC Billing');
    const password = await sendForm(researcher.agent, '/account', '/account/password', {
      current_password: 'wrong',
      new_password: 'x',
      confirm_password: 'y',
    });
    expect(password.status).toBe(400);
    expect(titleOf(password.text)).toBe('Error: Your account · HPC Billing');
  });

  it('a wrong password on Sign in', async () => {
    const { response } = await postLogin(app, 'ops', 'not-the-password');
    expect(response.status).toBe(401);
    expect(titleOf(response.text)).toBe('Error: Sign in · HPC Billing');
  });

  it('a choice on the dummy checkout of a payment that has ended, and a resolution of a payment not held', async () => {
    const checkout = await startCheckout(researcher.agent, researcher.receiptId);
    expect((await sendForm(researcher.agent, checkout, checkout, { choice: 'pay' })).status).toBe(303);
    const again = await sendForm(researcher.agent, checkout, checkout, { choice: 'pay' });
    expect(again.status).toBe(409);
    expect(titleOf(again.text)).toBe('Error: Dummy checkout · HPC Billing');
    const payment = await db.prisma.payment.findFirstOrThrow({ where: { receiptId: researcher.receiptId } });
    const resolved = await sendForm(ops, '/admin/payments', `/admin/payments/${payment.id}/resolve`, {
      outcome: 'refunded',
      note: 'refunded in the dashboard',
    });
    expect(resolved.status).toBe(409);
    expect(titleOf(resolved.text)).toBe('Error: Payments · HPC Billing');
  });

  it('an error told after a redirect: the sign-in page of a user whose account was disabled', async () => {
    const lee = await buildUser(db.prisma, { username: 'lee', password: 'lee-password' });
    const agent = await signInAs(app, 'lee', 'lee-password');
    expect((await sendForm(ops, '/admin/users', `/admin/users/${lee.id}/disable`, {})).status).toBe(303);
    // Lee's next page: the session ended, and the sign-in page says why.
    const next = await getHtml(agent, '/me');
    const signIn = await getHtml(agent, next.headers.location ?? '/login').expect(200);
    expect(signIn.text).toContain('<div class="alert error" role="status" id="login-flash">');
    expect(titleOf(signIn.text)).toBe('Error: Sign in · HPC Billing');
  });

  it('says nothing of an error on the same pages before a form is sent', async () => {
    for (const [path, title] of [
      ['/admin/rates', 'Edit rates'],
      ['/admin/tiers', 'Tier overrides'],
      ['/admin/users', 'Users'],
      ['/admin/receipts', 'Billing'],
      ['/admin/usage', 'Usage across users'],
      ['/admin/audit', 'Audit log'],
      ['/admin/payments', 'Payments'],
    ] as const) {
      const page = await getHtml(ops, path).expect(200);
      expect(titleOf(page.text), path).toBe(`${title} · HPC Billing`);
    }
    expect(titleOf((await getHtml(researcher.agent, '/me').expect(200)).text)).toBe('My usage · HPC Billing');
    expect(titleOf((await getHtml(researcher.agent, '/account').expect(200)).text)).toBe('Your account · HPC Billing');
  });
});
