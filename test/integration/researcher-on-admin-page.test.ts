import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { postLogin, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher who opens an admin page (a link from the billing office to /admin/receipts/7, an old
 * bookmark, a sign-in whose `next` was one) is sent to My usage, as before; but it opened with no
 * word of why, as if the link had been to My usage all along.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const alertsIn = (html: string) =>
  [...html.matchAll(/<div class="alert [^"]*" role="status">([^<]*)<\/div>/g)].map((m) => m[1]);

describe('a researcher opening an admin page', () => {
  it('lands on My usage told that the page is for administrators, once', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'wanderer' });
    const agent = await signInAs(app, 'wanderer', user.password);

    await agent.get('/admin/receipts/7').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const me = await agent.get('/me').set('Accept', 'text/html').expect(200);
    expect(alertsIn(me.text)).toEqual([
      'The page /admin/receipts/7 is for administrators only, and wanderer is not one: here is My usage instead.',
    ]);
    // Told once, not again on the next page.
    expect(alertsIn((await agent.get('/me').set('Accept', 'text/html')).text)).toEqual([]);
  });

  it('says so also after a sign-in whose next page was an admin page', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'bookmarker' });
    const { agent, response } = await postLogin(app, 'bookmarker', user.password, { next: '/admin/usage?user=x' });
    expect(response.headers.location).toBe('/admin/usage?user=x');
    await agent.get('/admin/usage?user=x').set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const me = await agent.get('/me').set('Accept', 'text/html').expect(200);
    expect(alertsIn(me.text)).toEqual([
      'The page /admin/usage is for administrators only, and bookmarker is not one: here is My usage instead.',
    ]);
  });

  // Only a page the app serves is named: /admin/receipts/<text> printed up to 80 characters of a link
  // sender's text in the warning (content spoofing); the redirect to My usage is as before.
  it.each([
    '/admin/receipts/Your-account-is-locked.-Call-the-helpdesk-at-555-0100',
    `/admin/receipts/${'7'.repeat(60)}`,
  ])('is not told text of the link at %s, only that the page is for administrators', async (path) => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma);
    const agent = await signInAs(app, user.username, user.password);
    await agent.get(path).set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const me = await agent.get('/me').set('Accept', 'text/html').expect(200);
    expect(alertsIn(me.text)).toEqual([
      `The page you opened is for administrators only, and ${user.username} is not one: here is My usage instead.`,
    ]);
  });
});
