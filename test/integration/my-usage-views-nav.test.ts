import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's "Download CSV" and "CSV for Excel" sat inside the nav named "Views", so a screen reader
 * announced two downloads as views of the page. And the greyed "Download CSV" of a refused window was
 * a span marked aria-disabled, which a span does not carry (it has no role to disable): nothing read
 * that it could not be used. The nav holds the three views alone, the downloads are a group of their
 * own, and the greyed one says in words that it is not available.
 */
let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [{ user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' }]);
  alice = await signInAs(buildTestApp(db, { now }), 'alice', 'alice-password');
});
afterAll(() => db?.drop());

const page = async (path: string, status: number) =>
  (await alice.get(path).set('Accept', 'text/html').expect(status)).text;

/** The element opened by `opening` (a regular expression of its start tag) up to its closing tag. */
function elementOpenedBy(html: string, opening: RegExp, tag: string): string {
  const start = opening.exec(html)?.index;
  expect(start, String(opening)).toBeDefined();
  const end = html.indexOf(`</${tag}>`, start);
  return html.slice(start, end + tag.length + 3);
}

describe("My usage's views and downloads", () => {
  it('names only the three views in the nav called Views, and the downloads as a group of their own', async () => {
    const html = await page('/me?start=2025-09-14&end=2025-09-20', 200);
    const views = elementOpenedBy(html, /<nav [^>]*aria-label="Views"/, 'nav');
    expect(visibleTextOf(views)).toBe('Jobs Per day Billed');
    expect(views).not.toContain('.csv');
    const downloads = elementOpenedBy(html, /<div [^>]*role="group" aria-label="Downloads"/, 'div');
    expect(downloads).toContain('href="/me.csv?start=2025-09-14&amp;end=2025-09-20">Download CSV</a>');
    expect(visibleTextOf(downloads)).toBe('Download CSV CSV for Excel');
  });

  // The downloads are the same on every tab: every job of the window. Under Billed, whose total is of the
  // billed jobs alone, "Download CSV" gave a file whose costs added up to another sum, unbilled estimates
  // included, and nothing on the page said so.
  it('says under Billed that the CSV holds every job of the window, billed or not', async () => {
    const html = await page('/me?start=2025-09-14&end=2025-09-20&view=billed', 200);
    expect(visibleTextOf(html)).toContain(
      'The CSV downloads above hold every job of the window, billed or not: their receipt_id and ' +
        'receipt_status columns tell the billed ones apart.',
    );
    expect(html).toContain('href="/me.csv?start=2025-09-14&amp;end=2025-09-20">Download CSV</a>');
  });

  it('says in words that the CSV is not available while the window is refused, without aria-disabled', async () => {
    const html = await page('/me?start=2025-09-20&end=2025-09-01', 400);
    expect(html).not.toContain('href="/me.csv');
    expect(html).not.toContain('aria-disabled');
    const downloads = elementOpenedBy(html, /<div [^>]*role="group" aria-label="Downloads"/, 'div');
    expect(visibleTextOf(downloads)).toBe('Not available: Download CSV (needs a valid window)');
    expect(downloads).toContain('<span class="visually-hidden">Not available: </span>');
  });
});
