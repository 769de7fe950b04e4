import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher looking at 1-10 September sorted by cost asked for a receipt of jobs up to a day
 * with nothing to bill: the reason came back on /me showing the default last 7 days, another
 * window and sort than the one they had been reading.
 */
let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = '/me?start=2025-09-01&end=2025-09-10&view=detail&sort=cost&dir=asc';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [
    { user: 'alice', jobId: '301', name: 'early', end: '2025-09-03T03:00:00Z', totalCpuSec: '7200' },
    { user: 'alice', jobId: '302', name: 'late', end: '2025-09-19T03:00:00Z', totalCpuSec: '3600' },
  ]);
  alice = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now }), 'alice', 'alice-password');
});
afterAll(() => db?.drop());

/** Posts the page's own "Create receipt" form, to the address its action names, as a browser does. */
async function submitReceiptFormOf(pagePath: string, before: string, pageStatus = 200) {
  const page = await alice.get(pagePath).set('Accept', 'text/html');
  expect(page.status, page.text.slice(0, 500)).toBe(pageStatus);
  const action = /<form method="post" action="([^"#]*)#create-receipt"/.exec(page.text)?.[1];
  expect(action).toBeDefined();
  return alice
    .post((action as string).replaceAll('&amp;', '&'))
    .set('Accept', 'text/html')
    .type('form')
    .send({ before, csrf_token: csrfTokenIn(page.text) });
}

const inputValue = (html: string, id: string) => new RegExp(`id="${id}"[^>]*value="([^"]*)"`).exec(html)?.[1];

describe('a refused "Create receipt" on /me', () => {
  it.each([
    ['nothing to bill', '2025-08-01', 422, /Nothing to bill/],
    ['a date that is not one', '2025-02-30', 400, /is not a real calendar date/],
  ])(
    '(%s) comes back to the window and sort it was sent from, with nothing billed',
    async (_, before, status, reason) => {
      const answer = await submitReceiptFormOf(WINDOW, before);
      expect(answer.status).toBe(status);
      expect(answer.text).toMatch(reason);
      expect(inputValue(answer.text, 'start')).toBe('2025-09-01');
      expect(inputValue(answer.text, 'end')).toBe('2025-09-10');
      expect(inputValue(answer.text, 'before')).toBe(before);
      expect(answer.text).toContain('2025-09-01 to 2025-09-10');
      // The job of the window is listed, the one after it is not.
      expect(answer.text).toContain('>early<');
      expect(answer.text).not.toContain('>late<');
      expect(await db.prisma.receipt.count()).toBe(0);
    },
  );

  it.each([
    // A page past the last of the window (a link kept from before a receipt or a new window).
    ['a page past the last', `${WINDOW}&page=9`, 404, 'detail', 'cost'],
    // A refused view: the window shows again, as the page's tabs keep it, without what was refused.
    ['a view that is not one', '/me?start=2025-09-01&end=2025-09-10&view=Jobs', 400, 'detail', undefined],
  ])('sent from %s, comes back to that window, not to the last 7 days', async (_, path, pageStatus, view, sort) => {
    // The form under the refusal posted to /me/receipt alone: the reason came back beside the
    // default window, another window than the one the researcher had asked for.
    const answer = await submitReceiptFormOf(path, '2025-08-01', pageStatus);
    expect(answer.status).toBe(422);
    expect(answer.text).toMatch(/Nothing to bill/);
    expect(inputValue(answer.text, 'start')).toBe('2025-09-01');
    expect(inputValue(answer.text, 'end')).toBe('2025-09-10');
    expect(answer.text).toContain('2025-09-01 to 2025-09-10');
    expect(answer.text).toContain(`<input type="hidden" name="view" value="${view}">`);
    expect(/<input type="hidden" name="sort" value="([^"]*)">/.exec(answer.text)?.[1]).toBe(sort);
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('a receipt that is created still opens the receipt', async () => {
    const answer = await submitReceiptFormOf(WINDOW, '2025-09-10');
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toMatch(/^\/me\/receipts\/\d+#receipt$/);
    expect(await db.prisma.receiptItem.count()).toBe(1);
  });
});

describe('the "Create receipt" form under a window', () => {
  it('bills up to the last day shown, not up to today, when sent as it comes', async () => {
    // Reading September 1-10 at month-end and pressing Create receipt billed the job of the
    // 19th too: the form's day was today, whatever window the page showed above it.
    const page = await alice.get('/me?start=2025-09-01&end=2025-09-10').set('Accept', 'text/html');
    const prefilled = inputValue(page.text, 'before') as string;
    await submitReceiptFormOf('/me?start=2025-09-01&end=2025-09-10', prefilled);
    const items = await db.prisma.receiptItem.findMany({ select: { jobKey: true } });
    expect(items.map((item) => item.jobKey)).not.toContain('302');
    expect(prefilled).toBe('2025-09-10');
  });

  it.each([
    ['the default window', '/me'],
    ['a window that ends after today', '/me?start=2025-09-15&end=2025-09-30'],
    ['a window that ends today', '/me?start=2025-09-15&end=2025-09-20'],
  ])('is today for %s', async (_, path) => {
    const page = await alice.get(path).set('Accept', 'text/html');
    expect(page.status).toBe(200);
    expect(inputValue(page.text, 'before')).toBe('2025-09-20');
  });
});
