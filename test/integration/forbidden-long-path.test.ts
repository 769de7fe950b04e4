import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher opening an admin address longer than the audit log's target column (256
 * characters: /admin/receipts/ and 400 more) got "Something went wrong on our side." (500) instead
 * of My usage, and the forbidden attempt was not audited at all: its entry failed to insert. A
 * researcher probing admin addresses could leave no trace by making them long.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const longPath = `/admin/receipts/${'7'.repeat(400)}`;

const forbiddenEntries = (actor: string) =>
  db.prisma.auditLog.findMany({ where: { actor, action: 'admin.forbidden' }, select: { target: true } });

describe('a researcher opening a long admin address', () => {
  it('is sent to My usage, and the attempt is audited with the address cut to fit', async () => {
    const user = await buildUser(db.prisma, { username: 'prober' });
    const agent = await signInAs(buildTestApp(db), 'prober', user.password);
    await agent.get(longPath).set('Accept', 'text/html').expect(302).expect('Location', '/me');
    const entries = await forbiddenEntries('prober');
    expect(entries).toHaveLength(1);
    const target = entries[0]?.target ?? '';
    expect(target).toHaveLength(256);
    expect(target.startsWith('/admin/receipts/777')).toBe(true);
    expect(target.endsWith('…')).toBe(true);
  });

  it('is refused 403 as JSON, and audited', async () => {
    const user = await buildUser(db.prisma, { username: 'scripter' });
    const agent = await signInAs(buildTestApp(db), 'scripter', user.password);
    const answer = await agent.get(longPath).set('Accept', 'application/json').expect(403);
    expect(answer.body).toEqual({ error: 'Only admins can do this.', code: 403 });
    expect(await forbiddenEntries('scripter')).toHaveLength(1);
  });
});
