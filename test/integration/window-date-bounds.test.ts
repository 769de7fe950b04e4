import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * The From/To fields of the window forms had no min or max, so a browser let a date the app
 * refuses (it reads 1900-01-01 to 2999-12-31) be sent, to come back refused, where it could have
 * said so at the field first.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
beforeAll(async () => {
  ({ db, app, admin } = await setUpBillingApp('bounds-admin'));
});
afterAll(() => db?.drop());

/** Each date input of a page whose name is one of `names`, as its whole tag. */
function dateInputsNamed(html: string, names: string[]): string[] {
  return [...html.matchAll(/<input\b[^>]*type="date"[^>]*>/g)]
    .map((match) => match[0])
    .filter((tag) => names.some((name) => tag.includes(` name="${name}"`)));
}

function expectBounded(tags: string[], count: number) {
  expect(tags).toHaveLength(count);
  for (const tag of tags) {
    expect(tag).toContain('min="1900-01-01"');
    expect(tag).toContain('max="2999-12-31"');
  }
}

describe('the From and To fields take only the dates the app reads', () => {
  it('on My usage', async () => {
    const user = await buildUser(db.prisma, {});
    const agent = await signInAs(app, user.username, user.password);
    const page = await agent.get('/me').set('Accept', 'text/html').expect(200);
    expectBounded(dateInputsNamed(page.text, ['start', 'end']), 2);
  });

  it('on Usage across users, Billing (created and paid) and the audit log', async () => {
    const usage = await admin.get('/admin/usage').set('Accept', 'text/html').expect(200);
    expectBounded(dateInputsNamed(usage.text, ['start', 'end']), 2);
    const billing = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    expectBounded(dateInputsNamed(billing.text, ['start', 'end']), 4);
    const audit = await admin.get('/admin/audit').set('Accept', 'text/html').expect(200);
    expectBounded(dateInputsNamed(audit.text, ['from', 'to']), 2);
  });

  it('the "Jobs ended up to" fields of a receipt and a month-end run, up to today, from the first date', async () => {
    const user = await buildUser(db.prisma, {});
    const agent = await signInAs(app, user.username, user.password);
    const me = await agent.get('/me').set('Accept', 'text/html').expect(200);
    const billing = await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200);
    for (const page of [me.text, billing.text]) {
      const [before, ...others] = dateInputsNamed(page, ['before']);
      expect(others).toEqual([]);
      expect(before).toContain('min="1900-01-01"');
      expect(before).toMatch(/ max="\d{4}-\d{2}-\d{2}"/);
    }
  });
});
