import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { setUpBillingApp } from '../support/billing-app.js';
import { amountDueOf, buildJobs } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import type { buildTestApp } from '../support/test-app.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A right-to-left override (U+202E) in a void's reason made the audit log show the rest of that
 * entry's details backwards: {"releasedJobs":76, …} read `67:"sboJdesaeler"`, a mark paid's
 * "paidOn":"2026-12-04" read `40-21-6202`. The log is where finance checks what was done; the page
 * now writes such a character as its JSON escape (\u202e), and the one-line fields refuse it.
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('books'));
});
afterAll(() => db?.drop());

const RLO = '\u202e';
const ISOLATE = '\u2066';

describe('bidirectional controls', () => {
  it('are shown on the audit log as escapes, so they cannot turn the figures after them around', async () => {
    await recordAudit(db, {
      actor: `mallory${RLO}nimda`,
      ip: null,
      userAgent: null,
      action: 'test.bidi',
      status: 'ok',
      details: { reason: `dup${RLO}licate`, releasedJobs: 76, note: `a${ISOLATE}b` },
    });
    const page = await admin.get('/admin/audit?action=test.bidi').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain(RLO);
    expect(page.text).not.toContain(ISOLATE);
    expect(page.text).toContain('mallory\\u202enimda');
    const shown = (/<code>(.*?)<\/code>/s.exec(page.text)?.[1] ?? '').replaceAll('<wbr>', '').replaceAll('&#34;', '"');
    expect(shown).toContain('"reason":"dup\\u202elicate"');
    expect(shown).toContain('"note":"a\\u2066b"');
    // The details are still the JSON recorded: the escape reads back as the same text.
    expect(JSON.parse(shown)).toEqual({
      note: `a${ISOLATE}b`,
      reason: `dup${RLO}licate`,
      releasedJobs: 76,
    });
  });

  // The actor filter's line naming the actors a part of a name matched, and the links to the others
  // containing a whole name, showed a failed sign-in's actor as typed: "“mallory” is part of 3 actors:
  // …" read backwards from the override on, though the table below wrote it as its escape.
  it('are shown as escapes in the actors a filter matched, and in the links to the others', async () => {
    for (const actor of [`mallory2`, `mallory2${RLO}z`]) {
      await recordAudit(db, { actor, ip: null, userAgent: null, action: 'test.bidi', status: 'ok', details: {} });
    }
    const part = await admin.get('/admin/audit?actor=mallory').set('Accept', 'text/html').expect(200);
    const matches = /<p class="muted" id="user-matches">([^<]*)<\/p>/.exec(part.text)?.[1] ?? '';
    expect(matches).toContain('mallory\\u202enimda');
    expect(matches).toContain('mallory2\\u202ez');
    expect(part.text).not.toContain(RLO);
    const whole = await admin.get('/admin/audit?actor=mallory2').set('Accept', 'text/html').expect(200);
    const also = /<p class="muted" id="user-also">(.*?)<\/p>/s.exec(whole.text)?.[1] ?? '';
    expect(also).toContain('>mallory2\\u202ez</a>');
    expect(whole.text).not.toContain(RLO);
  });

  it("in a tier's description are refused, and no tier is added", async () => {
    const answer = await admin
      .post('/admin/rates/tiers')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send({ name: 'partners', description: `Partners ${RLO}0.50 off`, cpu: '1', gpu: '1', mem: '1' });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(
      'description: must be one line of text, without line breaks, tabs or other control characters',
    );
    expect(await db.prisma.pricingTier.count({ where: { name: 'partners' } })).toBe(0);
  });

  it.each([
    ['a void reason', 'void', { reason: `duplicate${RLO} of 12` }, 'reason'],
    ['a reference', 'paid', { method: 'bank_transfer', tx_ref: `KB${ISOLATE}77` }, 'tx_ref'],
  ])('in %s are refused, and nothing changes', async (_what, action, body, field) => {
    const user = await buildUser(db.prisma, { username: `bidi${action}` });
    await buildJobs(db, [
      { user: user.username, end: '2026-01-10T10:00:00Z', totalCpuSec: '3600', stepMemGbHours: '0' },
    ]);
    const agent = await signInAs(app, user.username, user.password);
    const created = await agent
      .post('/me/receipt')
      .type('form')
      .send({ before: '2026-01-31', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const id = Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
    const answer = await admin
      .post(`/admin/receipts/${id}/${action}`)
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(admin))
      .send(action === 'paid' ? { ...body, amount_received: await amountDueOf(db, id) } : body);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe(
      `${field}: must be one line of text, without line breaks, tabs or other control characters`,
    );
    expect((await db.prisma.receipt.findUniqueOrThrow({ where: { id } })).status).toBe('pending');
  });
});
