import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSessionStore } from '../../src/modules/auth/session.store.js';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let store: PostgresSessionStore;
beforeAll(async () => {
  db = await createTestDatabase();
  store = new PostgresSessionStore(db.pool);
});
afterAll(() => db?.drop());

const inAnHour = () => new Date(Date.now() + 3_600_000);

function getSession(sid: string) {
  return new Promise<Record<string, unknown> | null | undefined>((resolve, reject) =>
    store.get(sid, (error, data) => (error ? reject(error) : resolve(data as Record<string, unknown> | null))),
  );
}

function setSession(sid: string, data: Record<string, unknown>) {
  return new Promise<void>((resolve, reject) =>
    store.set(sid, data as never, (error) => (error ? reject(error) : resolve())),
  );
}

async function storedJsonOf(sid: string) {
  const { rows } = await db.pool.query<{ sess: Record<string, unknown> }>(`SELECT sess FROM "session" WHERE sid = $1`, [
    sid,
  ]);
  return rows[0]?.sess;
}

describe('PostgresSessionStore', () => {
  it('reads the signed-in user with the session row, and never stores that copy', async () => {
    const user = await buildUser(db.prisma, { username: 'store-reader' });
    await setSession('sid-reader', { cookie: { expires: inAnHour() }, passport: { user: user.id } });

    const loaded = await getSession('sid-reader');
    expect(loaded?.loadedUser).toEqual({ id: user.id, username: 'store-reader', role: 'user', isDisabled: false });

    // Saving the session as express-session would (with what was loaded) keeps the row free of it.
    await setSession('sid-reader', { ...loaded, lastSeenAt: 1 });
    const stored = await storedJsonOf('sid-reader');
    expect(stored).toMatchObject({ passport: { user: user.id }, lastSeenAt: 1 });
    expect(stored).not.toHaveProperty('loadedUser');
  });

  it('reports a disabled user as disabled on the next read', async () => {
    const user = await buildUser(db.prisma, { username: 'store-disabled' });
    await setSession('sid-disabled', { cookie: { expires: inAnHour() }, passport: { user: user.id } });
    await db.pool.query('UPDATE users SET is_disabled = true WHERE id = $1', [user.id]);
    expect((await getSession('sid-disabled'))?.loadedUser).toMatchObject({ id: user.id, isDisabled: true });
  });

  it('answers an expired, unknown or anonymous session without error', async () => {
    await setSession('sid-expired', { cookie: { expires: new Date(Date.now() - 1_000) } });
    expect(await getSession('sid-expired')).toBeNull();
    expect(await getSession('no-such-sid')).toBeNull();

    await setSession('sid-anonymous', { cookie: { expires: inAnHour() }, csrfSecret: 'x' });
    const anonymous = await getSession('sid-anonymous');
    expect(anonymous).toMatchObject({ csrfSecret: 'x' });
    expect(anonymous).not.toHaveProperty('loadedUser');
  });

  it('ignores a passport id that is not a user id instead of failing the request', async () => {
    for (const [sid, value] of [
      ['sid-text', 'abc'],
      ['sid-huge', 99_999_999_999],
      ['sid-negative', -1],
      ['sid-missing', 424_242],
    ] as const) {
      await setSession(sid, { cookie: { expires: inAnHour() }, passport: { user: value } });
      const loaded = await getSession(sid);
      expect(loaded).toMatchObject({ passport: { user: value } });
      expect(loaded).not.toHaveProperty('loadedUser');
    }
  });

  it('destroys a session', async () => {
    await setSession('sid-keep', { cookie: { expires: inAnHour() } });
    await setSession('sid-gone', { cookie: { expires: inAnHour() } });
    await new Promise<void>((resolve, reject) =>
      store.destroy('sid-gone', (error) => (error ? reject(error) : resolve())),
    );
    expect(await storedJsonOf('sid-gone')).toBeUndefined();
    expect(await storedJsonOf('sid-keep')).toBeDefined();
  });

  it('keeps a signed-in browser signed in across requests, and stops a user disabled behind its back', async () => {
    const app = buildTestApp(db);
    await buildUser(db.prisma, { username: 'store-browser', password: 'store-browser-pw' });
    const agent = await signInAs(app, 'store-browser', 'store-browser-pw');
    await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    await agent.get('/me/receipts').set('Accept', 'text/html').expect(200);
    await db.pool.query(`UPDATE users SET is_disabled = true WHERE username = 'store-browser'`);
    const after = await agent.get('/me/receipts').set('Accept', 'text/html').expect(302);
    expect(after.headers.location).toMatch(/^\/login/);
  });
});
