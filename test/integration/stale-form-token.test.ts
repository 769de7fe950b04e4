import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
});
afterAll(() => db?.drop());

const HOST = 'billing.test';

describe('a form sent from a page loaded before this session last signed in', () => {
  it('is refused with a way back to its page, not "reload", which would only send it again', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'twotabs' });
    const agent = await signInAs(app, 'twotabs', user.password);
    // Tab B: My usage at September, its receipt form holding this session's token.
    const usage = await agent.get('/me?start=2025-09-01&end=2025-09-30').set('Accept', 'text/html').expect(200);
    const staleToken = csrfTokenIn(usage.text);
    // Tab A: the password changed, which signs this session in again with a new secret.
    await agent
      .post('/account/password')
      .set('Accept', 'text/html')
      .type('form')
      .send({
        current: user.password,
        password: 'twotabs-new-password',
        confirm: 'twotabs-new-password',
        csrf_token: await csrfTokenOf(agent),
      })
      .expect(303);

    const refused = await agent
      .post('/me/receipt?start=2025-09-01&end=2025-09-30')
      .set('Host', HOST)
      .set('Referer', `http://${HOST}/me?start=2025-09-01&end=2025-09-30`)
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: staleToken });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('The security token of this form has expired, so it was not sent');
    // Reloading this answer posts the same stale token again; the page the form was on gives a fresh one.
    expect(refused.text).not.toContain('Reload the page');
    expect(refused.text).toContain('<a href="/me?start=2025-09-01&amp;end=2025-09-30">Open that page again</a>');
    const again = await agent.get('/me?start=2025-09-01&end=2025-09-30').set('Accept', 'text/html').expect(200);
    expect(csrfTokenIn(again.text)).not.toBe(staleToken);
    expect(await db.prisma.receipt.count()).toBe(0);
  });

  it('offers no link to another site that referred the form', async () => {
    const app = buildTestApp(db);
    const user = await buildUser(db.prisma, { username: 'elsewhere' });
    const agent = await signInAs(app, 'elsewhere', user.password);
    const refused = await agent
      .post('/me/receipt')
      .set('Host', HOST)
      .set('Referer', 'http://evil.test/me')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-30', csrf_token: 'forged' });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('The security token of this form has expired, so it was not sent');
    expect(refused.text).not.toContain('>Open that page again</a>');
    expect(refused.text).not.toContain('evil.test');
  });
});
