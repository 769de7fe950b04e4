import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A CSV opened while signed out sends the browser to sign in, then on. Sent on to the CSV itself,
 * the browser downloaded it and stayed on the sign-in form, which then read as a sign-in that had
 * not worked. With a Referer of this site it goes back to that page; a link without one (opened
 * from a bookmark, an e-mail or the download history) now goes to the page that offers the CSV,
 * at what the link asked for, whose link then downloads it.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Where the sign-in page will send the browser once signed in, for a signed-out visit to `path`. */
async function nextAfterSignIn(path: string, referer?: string): Promise<string | null> {
  const visit = request(buildTestApp(db)).get(path).set('Accept', 'text/html');
  // The site as the browser addresses it: a Referer names the page by the same host.
  if (referer) visit.set('Host', 'billing.example').set('Referer', referer);
  const response = await visit.expect(302);
  return new URL(String(response.headers.location), 'http://local.invalid').searchParams.get('next');
}

describe('a CSV link opened while signed out, from no page of this site', () => {
  it.each([
    ['/me.csv?start=2026-11-01&end=2026-11-30&bom=1', '/me?start=2026-11-01&end=2026-11-30'],
    ['/me.csv', '/me'],
    ['/me/receipts/12/items.csv?bom=1', '/me/receipts/12'],
    ['/me/receipts/twelve/items.csv', '/me/receipts'],
    [
      '/admin/usage.csv?start=2026-11-01&end=2026-11-30&user=alice&bom=1',
      '/admin/usage?start=2026-11-01&end=2026-11-30&user=alice',
    ],
    ['/admin/my.csv?start=2026-11-01&end=2026-11-30', '/admin/usage?start=2026-11-01&end=2026-11-30'],
    ['/admin/receipts/12/items.csv', '/admin/receipts/12'],
    ['/admin/audit.csv?action=receipt.create&bom=1', '/admin/audit?action=receipt.create'],
    ['/admin/paid.csv?start=2026-11-01&end=2026-11-30', '/admin/receipts'],
  ])('%s signs in to %s, the page offering it', async (csv, page) => {
    expect(await nextAfterSignIn(csv)).toBe(page);
  });

  it('still goes back to the page of this site the link was on', async () => {
    const csv = '/me.csv?start=2026-11-01&end=2026-11-30';
    expect(await nextAfterSignIn(csv, 'https://billing.example/me?view=billed')).toBe('/me?view=billed');
    // Another site's page is no way back: the page offering the CSV is.
    expect(await nextAfterSignIn(csv, 'https://elsewhere.example/me?view=billed')).toBe(
      '/me?start=2026-11-01&end=2026-11-30',
    );
  });
});
