import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Admin → Users' Created column is a day in APP_TZ, as every other date on the site is. It was the
 * UTC day: in Bangkok an account made at 03:00 on 2 March read as made on 1 March.
 */
let db: TestDatabase;
let agent: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  // 2026-03-02 03:00 in Bangkok (UTC+7), still 1 March in UTC.
  await db.prisma.user.create({
    data: { username: 'early', passwordHash: 'x', createdAt: new Date('2026-03-01T20:00:00Z') },
  });
  agent = await signInAs(buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } }), 'chief', 'chief-password');
});
afterAll(() => db?.drop());

describe('/admin/users', () => {
  it("shows when a user was created as the day in the site's time zone", async () => {
    const page = await agent.get('/admin/users?q=early').set('Accept', 'text/html').expect(200);
    expect(/<td data-label="Created">([^<]*)<\/td>/.exec(page.text)?.[1]).toBe('2026-03-02');
  });
});
