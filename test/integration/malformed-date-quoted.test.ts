import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDummyPaymentsApp } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, csrfTokenIn, signInAs } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/** A page's text as read, with EJS's escape of a double quote (visibleTextOf leaves &#34; as it is). */
const shownOn = (html: string) => visibleTextOf(html).replaceAll('&#34;', '"');

/**
 * A date in the wrong format (2026/09/01, 01-09-2026, tomorrow) was refused with "From: must be a
 * date as YYYY-MM-DD", naming nothing typed: on a CSV's error page, or to a script, the reader had
 * to find which of the dates sent was wrong. The reason now quotes it back, as a day that does not
 * exist is named (557b975): quoted as JSON writes a string, at most 32 characters, and escaped on
 * the page as any text is.
 */
let db: TestDatabase;
let app: express.Express;
let admin: Agent;
let researcher: Agent;

beforeAll(async () => {
  ({ db, app, admin } = await setUpDummyPaymentsApp('quoter'));
  await buildUser(db.prisma, { username: 'typist', password: 'typist-password' });
  researcher = await signInAs(app, 'typist', 'typist-password');
});
afterAll(() => db?.drop());

type Who = 'researcher' | 'admin';
// [who, address, what a JSON client reads, what a page shows]
const MALFORMED: [Who, string, string, string][] = [
  [
    'researcher',
    '/me?start=2026/09/01',
    'start: must be a date as YYYY-MM-DD (got "2026/09/01")',
    'Ended from: must be a date as YYYY-MM-DD (got "2026/09/01")',
  ],
  [
    'researcher',
    '/me.csv?end=01-09-2026',
    'end: must be a date as YYYY-MM-DD (got "01-09-2026")',
    'Ended to: must be a date as YYYY-MM-DD (got "01-09-2026")',
  ],
  [
    'admin',
    '/admin/usage?start=tomorrow',
    'start: must be a date as YYYY-MM-DD (got "tomorrow")',
    'Ended from: must be a date as YYYY-MM-DD (got "tomorrow")',
  ],
  [
    'admin',
    '/admin/paid.csv?start=2026.09.01',
    'start: must be a date as YYYY-MM-DD (got "2026.09.01")',
    'Paid from: must be a date as YYYY-MM-DD (got "2026.09.01")',
  ],
  [
    'admin',
    '/admin/receipts?end=9/1/2026',
    'end: must be a date as YYYY-MM-DD (got "9/1/2026")',
    'Created to: must be a date as YYYY-MM-DD (got "9/1/2026")',
  ],
  [
    'admin',
    '/admin/audit?to=yesterday',
    'to: must be a date as YYYY-MM-DD (got "yesterday")',
    'Logged to: must be a date as YYYY-MM-DD (got "yesterday")',
  ],
];

describe('a date in the wrong format', () => {
  it.each(MALFORMED)('%s: %s is quoted back to a JSON client', async (who, path, sent) => {
    const json = await (who === 'admin' ? admin : researcher).get(path).set('Accept', 'application/json');
    expect(json.status).toBe(400);
    expect(json.body).toEqual({ error: sent, code: 400 });
  });

  it.each(MALFORMED)('%s: %s is quoted back on the page', async (who, path, _, shown) => {
    const page = await (who === 'admin' ? admin : researcher).get(path).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(shownOn(page.text)).toContain(shown);
  });

  it('is quoted back by the receipt form', async () => {
    const form = await researcher.get('/me').set('Accept', 'text/html');
    const refused = await researcher
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '15/09/2025', csrf_token: csrfTokenIn(form.text) });
    expect(refused.status).toBe(400);
    expect(shownOn(refused.text)).toContain(
      'Jobs ended up to and including: must be a date as YYYY-MM-DD (got "15/09/2025")',
    );
  });

  it('is escaped on the page and cut short', async () => {
    const typed = `<img src=x onerror=alert(1)>${'9'.repeat(200)}`;
    const page = await researcher.get(`/me?start=${encodeURIComponent(typed)}`).set('Accept', 'text/html');
    expect(page.status).toBe(400);
    expect(page.text).not.toContain('<img src=x');
    expect(shownOn(page.text)).toContain(
      `Ended from: must be a date as YYYY-MM-DD (got "<img src=x onerror=alert(1)>${'9'.repeat(4)}…")`,
    );
    const json = await researcher.get(`/me?start=${encodeURIComponent(typed)}`).set('Accept', 'application/json');
    expect(json.body.error).toBe(
      `start: must be a date as YYYY-MM-DD (got "<img src=x onerror=alert(1)>${'9'.repeat(4)}…")`,
    );
  });
});
