import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Usage across users and the audit log greyed a CSV that refused filters would not export with a span
 * marked aria-disabled, which a span does not carry (it has no role to disable): a screen reader read the
 * greyed words as any other text, nothing saying they could not be used. My usage says it in words
 * ("Not available: ", visually hidden); these two pages now do the same.
 */
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

const refusedPage = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(400)).text;

/** The paragraph that holds `text`, from its opening tag to its closing one. */
function paragraphWith(html: string, text: string): string {
  const at = html.indexOf(text);
  expect(at, text).toBeGreaterThan(-1);
  return html.slice(html.lastIndexOf('<p', at), html.indexOf('</p>', at) + 4);
}

const NOT_AVAILABLE = '<span class="visually-hidden">Not available: </span>';

describe('a CSV that refused filters would not export', () => {
  it('is read as not available on Usage across users, both the filtered CSV and my own', async () => {
    const html = await refusedPage('/admin/usage?start=2026-11-30&end=2026-11-01');
    expect(html).not.toContain('aria-disabled');
    const downloads = paragraphWith(html, 'needs a valid window and filters');
    expect(downloads.split(NOT_AVAILABLE)).toHaveLength(3);
    expect(visibleTextOf(downloads)).toBe(
      'Not available: Download all jobs (CSV): needs a valid window and filters · ' +
        'Not available: My own usage (CSV): needs a valid window',
    );
  });

  it('is read as not available on the audit log, the whole log still offered', async () => {
    const html = await refusedPage('/admin/audit?from=2026-02-30');
    expect(html).not.toContain('aria-disabled');
    const downloads = paragraphWith(html, 'needs valid filters');
    expect(downloads.split(NOT_AVAILABLE)).toHaveLength(2);
    expect(visibleTextOf(downloads)).toContain(
      'Not available: Download these entries (CSV): needs valid filters. Download the whole log (CSV) (CSV for Excel)',
    );
  });
});
