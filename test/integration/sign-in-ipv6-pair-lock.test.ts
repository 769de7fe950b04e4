import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUser } from '../support/factories.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The (username, address) lock counted each IPv6 address on its own, while a client given a /64
 * has 2^64 of them: a guesser moving to the next address after every 4 failures was never locked
 * by it, and reached the per-username lock (the account locked from everywhere, for 15 minutes)
 * in seconds from one home connection. From one IPv4 address that lock is out of reach: the pair's
 * lock stops it first. The pair is now counted per /64, as the address's own row already was.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const clock = new Date('2026-06-01T08:00:00Z');
const lockoutApp = () => buildTestApp(db, { now: () => clock, env: { TRUST_PROXY: 'loopback' } });

describe('the sign-in lock of a username and address, for IPv6', () => {
  it('locks the /64 after AUTH_MAX_FAILS failures from any of its addresses, and only that /64', async () => {
    const user = await buildUser(db.prisma, { username: 'rover' });
    const app = lockoutApp();
    for (let guess = 1; guess <= 5; guess++) {
      await postLogin(app, 'rover', 'guess', { ip: `2001:db8:0:9::${guess}` });
    }
    const sameLine = await postLogin(app, 'rover', user.password, { ip: '2001:db8:0:9:ffff::6' });
    expect(sameLine.response.status).toBe(429);
    expect(sameLine.response.headers['retry-after']).toBe('300');
    expect(sameLine.response.text).toContain('Too many failed sign-ins. Try again in 5 min 00 s.');
    // The account is not locked from everywhere: its owner signs in from another network.
    const elsewhere = await postLogin(app, 'rover', user.password, { ip: '2001:db8:0:a::1' });
    expect(elsewhere.response.status).toBe(302);
  });

  it('still records the address itself in the audit log', async () => {
    await buildUser(db.prisma, { username: 'roamer' });
    await postLogin(lockoutApp(), 'roamer', 'guess', { ip: '2001:db8:0:b::42' });
    const failure = await db.prisma.auditLog.findFirstOrThrow({ where: { actor: 'roamer', action: 'login.failure' } });
    expect(failure.ip).toBe('2001:db8:0:b::42');
  });
});
