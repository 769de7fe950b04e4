import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildUser } from '../support/factories.js';
import { refusedFormStateOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * A From after its To is a fault of the two together, but only From was marked invalid
 * (aria-invalid) and tied to the message: a screen reader on To heard nothing wrong with it, though
 * either date may be the one to correct. Both are marked now, each described by the message; the
 * focus still goes to From.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let researcher: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('reversed-admin'));
  const user = await buildUser(db.prisma, { username: 'rey' });
  researcher = await signInAs(app, 'rey', user.password);
});
afterAll(() => db?.drop());

describe('a From after its To marks both dates', () => {
  it.each([
    ['researcher', '/me?start=2026-11-10&end=2026-11-01', 'start', 'end', 'window-error'],
    ['admin', '/admin/usage?start=2026-11-10&end=2026-11-01', 'start', 'end', 'usage-filter-error'],
    ['admin', '/admin/audit?from=2026-11-10&to=2026-11-01', 'from', 'to', 'audit-filter-error'],
    ['admin', '/admin/receipts?start=2026-11-10&end=2026-11-01', 'start', 'end', 'billing-error'],
    ['admin', '/admin/paid.csv?start=2026-11-10&end=2026-11-01', 'paid-start', 'paid-end', 'paid-export-error'],
  ])('as a %s on %s', async (who, path, from, to, message) => {
    const agent = who === 'admin' ? admin : researcher;
    const page = await agent.get(path).set('Accept', 'text/html').expect(400);
    expect(page.text).toContain('is after');
    const state = refusedFormStateOf(page.text);
    expect(state.invalid).toEqual([from, to]);
    expect(state.describedBy).toEqual({ [from]: message, [to]: message });
    expect(state.autofocus).toEqual([from]);
  });

  it('a JSON client is told as before', async () => {
    const answer = await researcher.get('/me?start=2026-11-10&end=2026-11-01').set('Accept', 'application/json');
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'start (2026-11-10) is after end (2026-11-01).', code: 400 });
  });
});

describe("each window's dates are named by what they are", () => {
  /** The text of the label for the field `id`, tags dropped, as a screen reader names the field. */
  const labelOf = (html: string, id: string) =>
    new RegExp(`<label for="${id}">(.*?)</label>`, 's')
      .exec(html)?.[1]
      ?.replace(/<[^>]*>/g, '')
      .replace(/\s+/g, ' ')
      .trim();

  it.each([
    ['researcher', '/me?start=2026-11-10&end=2026-11-01', ['start', 'end'], ['Ended from', 'Ended to']],
    ['admin', '/admin/usage?start=2026-11-10&end=2026-11-01', ['start', 'end'], ['Ended from', 'Ended to']],
    ['admin', '/admin/audit?from=2026-11-10&to=2026-11-01', ['from', 'to'], ['Logged from', 'Logged to']],
    ['admin', '/admin/paid.csv?start=2026-11-10&end=2026-11-01', ['paid-start', 'paid-end'], ['Paid from', 'Paid to']],
  ])('as a %s on %s: the labels, and the refusal in their words', async (who, path, ids, labels) => {
    // A bare "To" (the start "From") was heard moving from field to field as "To, date": to what, it did not say.
    const agent = who === 'admin' ? admin : researcher;
    const page = await agent.get(path).set('Accept', 'text/html').expect(400);
    expect(ids.map((id) => labelOf(page.text, id))).toEqual(labels);
    expect(page.text).toContain(`${labels[0]} (2026-11-10) is after ${labels[1]} (2026-11-01).`);
  });
});
