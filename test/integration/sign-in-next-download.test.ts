import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * /login?next= a CSV, typed by hand or kept from an old address: sent on to the CSV itself once
 * signed in, the browser downloaded it and stayed on the sign-in form, which read as a sign-in that
 * had not worked. It goes to the page offering the CSV, at what the CSV's address asked for, as a
 * signed-out CSV link without a Referer does (signed-out-download-way-back).
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('signing in with a download as next', () => {
  it.each([
    ['/me.csv?start=2026-11-01&end=2026-11-30&bom=1', '/me?start=2026-11-01&end=2026-11-30'],
    ['/me.csv', '/me'],
    ['/me/receipts/12/items.csv?bom=1', '/me/receipts/12'],
    ['/me/receipts/twelve/items.csv', '/me/receipts'],
    ['/me/receipts/12/print', '/me/receipts/12/print'],
    ['/me?start=2026-11-01', '/me?start=2026-11-01'],
  ])('next=%s lands on %s', async (next, page) => {
    const user = await buildUser(db.prisma, {});
    const { response } = await postLogin(buildTestApp(db), user.username, user.password, { next });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe(page);
  });

  it.each([
    [
      '/admin/usage.csv?start=2026-11-01&end=2026-11-30&user=alice&bom=1',
      '/admin/usage?start=2026-11-01&end=2026-11-30&user=alice',
    ],
    ['/admin/my.csv?start=2026-11-01&end=2026-11-30', '/admin/usage?start=2026-11-01&end=2026-11-30'],
    ['/admin/receipts/12/items.csv', '/admin/receipts/12'],
    ['/admin/audit.csv?action=receipt.create&bom=1', '/admin/audit?action=receipt.create'],
    ['/admin/paid.csv?start=2026-11-01&end=2026-11-30', '/admin/receipts'],
  ])('an admin with next=%s lands on %s', async (next, page) => {
    const admin = await buildUser(db.prisma, { role: 'admin' });
    const { response } = await postLogin(buildTestApp(db), admin.username, admin.password, { next });
    expect(response.headers.location).toBe(page);
  });

  it('already signed in, /login?next= a CSV goes to its page too', async () => {
    const user = await buildUser(db.prisma, {});
    const { agent } = await postLogin(buildTestApp(db), user.username, user.password);
    const again = await agent.get('/login?next=%2Fme.csv%3Fstart%3D2026-11-01').set('Accept', 'text/html');
    expect(again.status).toBe(302);
    expect(again.headers.location).toBe('/me?start=2026-11-01');
  });

  it('a script signing in with a CSV as next still goes to the CSV, which it asked for', async () => {
    const user = await buildUser(db.prisma, {});
    const agent = request.agent(buildTestApp(db));
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    const answer = await agent
      .post('/login')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ username: user.username, password: user.password, next: '/me.csv' });
    expect(answer.headers.location).toBe('/me.csv');
  });
});
