import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenIn, signInOverHttp } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/*
 * A browser follows a redirect as soon as its headers arrive. express-session writes a changed
 * session as the response ends, after sending the headers, so the next page could read the session
 * before that write: a sign-in landed on /login again, a change's confirmation went missing. Here
 * every write to the session table is slowed down, and the next page is asked for the moment the
 * redirect's headers arrive (fetch resolves then, before the body), as Chromium does.
 */
let db: TestDatabase;
let server: Server;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  server = buildTestApp(db).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

/** Makes every write of a session row take `seconds` longer, until the returned function is called. */
async function slowSessionWrites(seconds: number): Promise<() => Promise<void>> {
  await db.pool.query(`
    CREATE FUNCTION slow_session_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(${seconds}); RETURN NEW; END $$;
    CREATE TRIGGER slow_session_write BEFORE INSERT OR UPDATE ON "session"
      FOR EACH ROW EXECUTE FUNCTION slow_session_write();`);
  return async () => {
    await db.pool.query('DROP TRIGGER slow_session_write ON "session"; DROP FUNCTION slow_session_write();');
  };
}

/** The `name=value` pairs a response sets. */
const cookiesOf = (response: Response) => response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]);

describe('a redirect that changed the session', () => {
  it("is answered once the session is written: the next page shows the change's confirmation", async () => {
    const cookie = await signInOverHttp(base, 'boss');
    const form = await fetch(`${base}/admin/rates`, { headers: { accept: 'text/html', cookie } });
    const token = csrfTokenIn(await form.text());
    const restore = await slowSessionWrites(0.4);
    try {
      const saved = await fetch(`${base}/admin/rates`, {
        method: 'POST',
        redirect: 'manual',
        headers: { accept: 'text/html', cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ type: 'gov', cpu: '0.9', gpu: '18', mem: '0.08', csrf_token: token }),
      });
      expect(saved.status).toBe(303);
      // Followed at once, before the body has been read.
      const next = await fetch(new URL(saved.headers.get('location') as string, base), {
        headers: { accept: 'text/html', cookie },
      });
      expect(await next.text()).toContain('Rates of gov saved; they apply from now.');
      await saved.text();
    } finally {
      await restore();
    }
  });

  it('signs in: the page the sign-in leads to finds the new session', async () => {
    const visit = await fetch(`${base}/login`, { headers: { accept: 'text/html' } });
    const token = csrfTokenIn(await visit.text());
    const restore = await slowSessionWrites(0.4);
    try {
      const signedIn = await fetch(`${base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          accept: 'text/html',
          cookie: cookiesOf(visit).join('; '),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ username: 'boss', password: 'boss-password', csrf_token: token }),
      });
      expect(signedIn.status).toBe(302);
      expect(signedIn.headers.get('location')).toBe('/admin');
      const landed = await fetch(`${base}/admin`, {
        redirect: 'manual',
        headers: { accept: 'text/html', cookie: cookiesOf(signedIn).join('; ') },
      });
      expect(landed.status, landed.headers.get('location') ?? '').toBe(200);
      await signedIn.text();
    } finally {
      await restore();
    }
  });
});
