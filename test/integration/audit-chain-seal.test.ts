import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditEntry,
  configureAuditChain,
  recordAudit,
  verifyAuditChain,
} from '../../src/modules/audit/audit.service.js';
import {
  createAuditChainMonitor,
  createAuditChainVerifier,
  reportChainVerdictTo,
} from '../../src/modules/audit/audit-chain.monitor.js';
import { hashAuditRecord } from '../../src/modules/audit/audit-hash.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { buildUser } from '../support/factories.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const KEY = 'audit-key-for-tests-audit-key-for-tests-01';
const OLD_KEY = 'old-audit-key-for-tests-old-audit-key-0001';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());
afterEach(async () => {
  configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
  await asSuperuser('TRUNCATE audit_log RESTART IDENTITY');
});

/** Runs `sql` as a superuser who has switched the table's triggers off for the session. */
async function asSuperuser(sql: string, values: unknown[] = []) {
  const client = await db.pool.connect();
  try {
    await client.query("SET session_replication_role = 'replica'");
    await client.query(sql, values);
  } finally {
    await client.query("SET session_replication_role = 'origin'");
    client.release();
  }
}

async function recordEntries(count: number, action = 'test.entry') {
  for (let index = 0; index < count; index++) {
    const entry: AuditEntry = { actor: 'ops', action, status: 'ok', details: { index, total: '7836.53' } };
    await recordAudit(db, entry);
  }
}

async function entries() {
  return db.prisma.auditLog.findMany({ orderBy: { id: 'asc' } });
}

/**
 * What someone who can write the table but has not the key does: change entry `id`, then recompute
 * its hash and every later one with `key` (none: the plain SHA-256 anyone can compute).
 */
async function rewriteFrom(id: bigint, details: Record<string, unknown>, key?: string) {
  let prevHash: string | undefined;
  for (const row of await entries()) {
    if (row.id < id) {
      prevHash = row.hash;
      continue;
    }
    const record = {
      ts: row.ts,
      actor: row.actor,
      ip: row.ip,
      userAgent: row.userAgent,
      action: row.action,
      target: row.target,
      status: row.status,
      details: row.id === id ? details : row.details,
    };
    const prev = prevHash ?? row.prevHash;
    const hash = hashAuditRecord(prev, record, key);
    await asSuperuser('UPDATE audit_log SET details = $2, prev_hash = $3, hash = $4 WHERE id = $1', [
      row.id,
      JSON.stringify(record.details),
      prev,
      hash,
    ]);
    prevHash = hash;
  }
}

describe('a chain sealed with AUDIT_CHAIN_KEY', () => {
  it('verifies, and reports a rewrite whose hashes were recomputed without the key', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(6);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 6, isSealed: true });

    const victim = (await entries())[3];
    if (!victim) throw new Error('no fourth entry');
    // The walkthrough's rewrite: a receipt total changed, every later hash recomputed in plain SHA-256.
    await rewriteFrom(victim.id, { index: 3, total: '0.01' });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: victim.id,
      reason: expect.stringContaining('not sealed with AUDIT_CHAIN_KEY'),
    });

    // A guessed key fares no better.
    await rewriteFrom(victim.id, { index: 3, total: '0.01' }, 'a-guess-a-guess-a-guess-a-guess-a-guess');
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: victim.id,
      reason: expect.stringContaining('changed after it was written'),
    });
  });

  it('is not what an unkeyed verification accepts, and says why', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(2);
    const [first] = await entries();
    configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: first?.id,
      reason: expect.stringContaining(
        'more likely, it was sealed with a key this instance does not have: neither it nor the newest entry',
      ),
    });
  });

  // A key left out of the configuration (or mistyped) fails every entry, and the verdict led with
  // "the entry was changed after it was written": read as a security incident, not a setting to check.
  it('says a key this instance does not have is the likely cause when the newest entry does not match either', async () => {
    configureAuditChain({ chainKeys: [OLD_KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [first, , , fourth] = await entries();
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: first?.id,
      reason:
        'the entry was changed after it was written, or, more likely, it was sealed with a key this instance does not have: ' +
        `neither it nor the newest entry (#${fourth?.id}) matches its hash with AUDIT_CHAIN_KEY or AUDIT_CHAIN_OLD_KEYS; ` +
        "check the instance's keys before looking for a change (the hash does not say which of its time, actor, address, " +
        'user agent, action, target, status or details differ: compare it with a backup)',
    });
    // With the right key only the changed entry fails: no such hint.
    configureAuditChain({ chainKeys: [OLD_KEY], unsealedUntil: 0n });
    await asSuperuser(`UPDATE audit_log SET actor = 'mallory' WHERE id = $1`, [first?.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: first?.id,
      reason: expect.not.stringContaining('more likely'),
    });
  });

  it('takes unsealed entries only up to AUDIT_CHAIN_UNSEALED_UNTIL, and old keys after a change of key', async () => {
    await recordEntries(3, 'test.before-the-key');
    const lastUnsealed = (await entries()).at(-1)?.id ?? 0n;
    configureAuditChain({ chainKeys: [OLD_KEY], unsealedUntil: 0n });
    await recordEntries(2, 'test.old-key');
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: 1n,
      reason: expect.stringContaining('AUDIT_CHAIN_UNSEALED_UNTIL'),
    });
    configureAuditChain({ chainKeys: [OLD_KEY], unsealedUntil: lastUnsealed });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 5, isSealed: true });

    // A new key seals from now on; the old one still verifies what it sealed.
    configureAuditChain({ chainKeys: [KEY, OLD_KEY], unsealedUntil: lastUnsealed });
    await recordEntries(2, 'test.new-key');
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 7, isSealed: true });
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: lastUnsealed });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: false, brokenAt: lastUnsealed + 1n });

    // Written again without any key after sealed ones: a downgrade, whatever the setting says of older entries.
    configureAuditChain({ chainKeys: [KEY, OLD_KEY], unsealedUntil: lastUnsealed });
    const [firstSealed] = (await entries()).filter((row) => row.id > lastUnsealed);
    if (!firstSealed) throw new Error('no sealed entry');
    await rewriteFrom(firstSealed.id, { index: 0, total: '0.01' });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: false, brokenAt: firstSealed.id });
  });

  // AUDIT_CHAIN_UNSEALED_UNTIL is a plain setting beside the key: set past the sealed entries (a
  // typo, or by whoever can change the app's settings but not read its key), it let a rewrite
  // without the key verify as intact, from any entry after the first sealed one.
  it('refuses an unsealed entry after a sealed one, whatever AUDIT_CHAIN_UNSEALED_UNTIL says', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(6);
    const [first, , , fourth] = await entries();
    if (!first || !fourth) throw new Error('too few entries');
    await rewriteFrom(fourth.id, { index: 3, total: '0.01' });
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 1_000_000n });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: fourth.id,
      reason: `the entry is not sealed with AUDIT_CHAIN_KEY, though #${first.id} before it is: it was rewritten without the key (AUDIT_CHAIN_UNSEALED_UNTIL takes only entries written before the log had a key, and none comes after a sealed one)`,
    });
  });

  it('still takes the unsealed entries before the first sealed one up to AUDIT_CHAIN_UNSEALED_UNTIL, set past it', async () => {
    await recordEntries(2, 'test.before-the-key');
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 1_000_000n });
    await recordEntries(2, 'test.sealed');
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 4, isSealed: true });
  });
});

describe('an entry deleted or moved within the chain', () => {
  // Every check reads the verdict an admin and the log line get: which entry, and what happened to it.
  it('is named as deleted, not as a change to the intact entry after it', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(5);
    const [, second, third] = await entries();
    if (!second || !third) throw new Error('too few entries');
    await asSuperuser('DELETE FROM audit_log WHERE id = $1', [second.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: third.id,
      reason: `the entry is as it was written, but it was not chained after #${second.id - 1n}, the entry now before it: the entry it followed (#${second.id}) was deleted`,
    });
  });

  it('names the range of ids the deleted entry was in, and a deleted first entry', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(6);
    const [first, second, third, fourth, fifth] = await entries();
    if (!first || !second || !third || !fourth || !fifth) throw new Error('too few entries');
    await asSuperuser('DELETE FROM audit_log WHERE id IN ($1, $2)', [third.id, fourth.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: fifth.id,
      reason: expect.stringContaining(`(an id from #${third.id} to #${fourth.id}) was deleted`),
    });
    await asSuperuser('DELETE FROM audit_log WHERE id = $1', [first.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: second.id,
      reason: `the entry is as it was written, but it was chained after an entry that is gone: the entry before it (#${first.id}) was deleted`,
    });
  });

  it('is named as moved when two entries swap places', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [first, second, third] = await entries();
    if (!first || !second || !third) throw new Error('too few entries');
    const aside = 1_000_000n;
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [second.id, aside]);
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [third.id, second.id]);
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [aside, third.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: second.id,
      reason: `the entry is as it was written, but it was not chained after #${first.id}, the entry before it: it was chained after #${third.id}, so entries were moved (their ids changed)`,
    });
  });

  // Said as "the entry it followed (#N) was deleted", the operator looked for a deletion, and
  // restored a backup, when the entry was still there under another id.
  it('is named as moved, not deleted, when an entry is given an id after the others', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [first, second, third] = await entries();
    if (!first || !second || !third) throw new Error('too few entries');
    const far = 1_000_000n;
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [second.id, far]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: third.id,
      reason: `the entry is as it was written, but it was not chained after #${first.id}, the entry now before it: it was chained after #${far}, so entries were moved (their ids changed)`,
    });
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [first.id, far + 1n]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: third.id,
      reason: `the entry is as it was written, but it was chained after #${far}, an entry that is not before it: entries were moved (their ids changed)`,
    });
  });

  it('says an entry was replaced, or deleted and its id given to another, when nothing has the hash it followed', async () => {
    await recordEntries(3);
    const [first, second, third] = await entries();
    if (!first || !second || !third) throw new Error('too few entries');
    // Without a key: the replaced entry matches its own plain hash, so only the link after it shows.
    const { ts, actor, ip, userAgent, action, target, status } = second;
    const record = { ts, actor, ip, userAgent, action, target, status, details: { index: 1, total: '0.01' } };
    const hash = hashAuditRecord(second.prevHash, record);
    await asSuperuser('UPDATE audit_log SET details = $2, hash = $3 WHERE id = $1', [
      second.id,
      JSON.stringify(record.details),
      hash,
    ]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: third.id,
      reason: `the entry is as it was written, but it was not chained after #${second.id}, the entry before it: the entry it followed is gone: #${second.id} was replaced, or it was deleted and another entry given its id`,
    });
  });

  // The unique index on hash refuses a copy of an entry; whoever can drop it can insert one. Said as
  // "entries were moved (their ids changed)", the operator looked for an id change, and none was made.
  it('is named as a copy of an older entry when one is inserted again (replayed)', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [first, second, , fourth] = await entries();
    if (!first || !second || !fourth) throw new Error('too few entries');
    const replay = `INSERT INTO audit_log (id, ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash)
      SELECT $2, ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash FROM audit_log WHERE id = $1`;
    try {
      await asSuperuser('DROP INDEX audit_log_hash_key');
      await asSuperuser(replay, [second.id, fourth.id + 10n]);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({
        isIntact: false,
        brokenAt: fourth.id + 10n,
        reason: `the entry is as it was written, but it was not chained after #${fourth.id}, the entry now before it: #${second.id} holds the same entry and hash, so one of the two is a copy of the other: an entry was inserted again (replayed)`,
      });
      // A copy put before the first entry: named from where the walk starts.
      await asSuperuser(replay, [second.id, 0n]);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({
        isIntact: false,
        brokenAt: 0n,
        reason: `the entry is as it was written, but it is not the first entry: #${second.id} holds the same entry and hash, so one of the two is a copy of the other: an entry was inserted again (replayed)`,
      });
      await asSuperuser('DELETE FROM audit_log WHERE id = 0');
      // A copy of the first entry put before it fits where it stands: the original is then named.
      await asSuperuser('DELETE FROM audit_log WHERE id = $1', [fourth.id + 10n]);
      await asSuperuser(replay, [first.id, 0n]);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({
        isIntact: false,
        brokenAt: first.id,
        reason: `the entry is as it was written, but it was not chained after #0, the entry before it: #0 holds the same entry and hash, so one of the two is a copy of the other: an entry was inserted again (replayed)`,
      });
    } finally {
      await asSuperuser('DELETE FROM audit_log WHERE id = 0 OR id > $1', [fourth.id]);
      await asSuperuser('CREATE UNIQUE INDEX audit_log_hash_key ON audit_log (hash)');
    }
  });

  it('names a moved first entry as moved', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const [first, second] = await entries();
    if (!first || !second) throw new Error('too few entries');
    const far = 1_000_000n;
    await asSuperuser('UPDATE audit_log SET id = $2 WHERE id = $1', [first.id, far]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      isIntact: false,
      brokenAt: second.id,
      reason: `the entry is as it was written, but it was chained after #${far}, an entry that is not before it: entries were moved (their ids changed)`,
    });
  });

  // The chain cannot tell which of the two was given another id, so neither is named as the one moved.
  it('is named as moved when the newest entry is given an id before the others', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [, , third, fourth] = await entries();
    if (!third || !fourth) throw new Error('too few entries');
    await asSuperuser('UPDATE audit_log SET id = 0 WHERE id = $1', [fourth.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: 0n,
      reason: `the entry is as it was written, but it was chained after #${third.id}, an entry that is not before it: entries were moved (their ids changed)`,
    });
  });

  // A changed entry and a row inserted by hand were both "changed after it was written", and nothing
  // said what the hash can and cannot tell: an auditor looked for the field it had found changed.
  it('says whether the entry after a changed one still follows it, and what the hash cannot tell', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const [, second, third] = await entries();
    if (!second || !third) throw new Error('too few entries');
    const which =
      'the hash does not say which of its time, actor, address, user agent, action, target, status or details differ: compare it with a backup';
    await asSuperuser(`UPDATE audit_log SET details = '{"index":1,"total":"0.01"}' WHERE id = $1`, [second.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: second.id,
      reason: `the entry was changed after it was written: what it holds no longer matches its hash, which the entry after it (#${third.id}) still follows (${which}; or it was sealed with a key this instance does not have)`,
    });
    await asSuperuser(`UPDATE audit_log SET hash = repeat('b', 64) WHERE id = $1`, [second.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: second.id,
      reason: `the entry was changed after it was written, its hash too, or added behind the app's back: it does not match its hash, and the entry after it (#${third.id}) does not follow it (${which}; or it was sealed with a key this instance does not have)`,
    });
  });

  it("names a row added at the end behind the app's back as such", async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const [, , third] = await entries();
    if (!third) throw new Error('too few entries');
    await asSuperuser(
      `INSERT INTO audit_log (ts, actor, action, target, status, details, prev_hash, hash)
       VALUES (now(), 'admin', 'receipt.void', 'receipt:2', 'ok', '{"reason":"forged"}', $1, repeat('c', 64))`,
      [third.hash],
    );
    const forged = (await entries()).at(-1);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: forged?.id,
      reason:
        "the entry was changed after it was written, or added behind the app's back: it does not match its hash, and no entry follows it " +
        '(the hash does not say which of its time, actor, address, user agent, action, target, status or details differ: compare it with a backup; ' +
        'or it was sealed with a key this instance does not have)',
    });
  });

  it('is still a change when the entry itself no longer matches its hash', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const [, second] = await entries();
    if (!second) throw new Error('too few entries');
    await asSuperuser(`UPDATE audit_log SET prev_hash = repeat('a', 64) WHERE id = $1`, [second.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({
      brokenAt: second.id,
      reason: expect.stringMatching(/^the entry was changed after it was written/),
    });
  });
});

describe('the newest entry of the last verification', () => {
  it('must still be there: deleting the newest entries is reported by the process that saw them', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(5);
    const monitor = createAuditChainMonitor({ db: db.prisma });
    expect(await monitor.verify()).toMatchObject({ isIntact: true, count: 5 });
    await recordEntries(1);
    expect(await monitor.verify()).toMatchObject({ isIntact: true, count: 6 });

    const all = await entries();
    const newest = all.at(-1);
    const left = all.at(-3);
    if (!newest || !left) throw new Error('no entries');
    // Both newest entries go: what is left is a shorter chain whose every hash is right.
    await asSuperuser('DELETE FROM audit_log WHERE id >= $1', [newest.id - 1n]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 4 });
    // Named as a deletion in the middle is: which entries went, not only the one remembered (the page
    // then said "Entries before #6 are intact" of a log whose #5 was gone as well).
    const gone = `the entry, the newest at the last verification, is gone: the entries after #${left.id} up to it (#${left.id + 1n} to #${newest.id}) were deleted`;
    expect(await monitor.verify()).toMatchObject({ isIntact: false, brokenAt: newest.id, reason: gone });
    // Appending more does not hide it.
    await recordEntries(3);
    expect(await monitor.verify()).toMatchObject({ isIntact: false, brokenAt: newest.id, reason: gone });
  });

  // An admin's verification and the periodic one can overlap: the one that started first (and read
  // fewer entries) finished last and put its older newest entry back as the one to find, so the
  // entries after it could go unreported.
  it('is the newest any verification found, whichever finished last', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    let releaseSlow: () => void = () => {};
    const slowRead = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    let isSlowing = true;
    // The first verification's last read (no entry after those it read) waits until the second has finished.
    const auditLog = new Proxy(db.prisma.auditLog, {
      get(target, property, receiver) {
        if (property !== 'findMany') return Reflect.get(target, property, receiver);
        return async (...args: Parameters<typeof target.findMany>) => {
          const rows = await target.findMany(...args);
          if (isSlowing && rows.length === 0) await slowRead;
          return rows;
        };
      },
    });
    const slowDb = new Proxy(db.prisma, {
      get: (target, property, receiver) =>
        property === 'auditLog' ? auditLog : Reflect.get(target, property, receiver),
    });
    const monitor = createAuditChainMonitor({ db: slowDb });
    const first = monitor.verify();
    await new Promise((resolve) => setTimeout(resolve, 200));
    isSlowing = false;
    await recordEntries(2);
    expect(await monitor.verify()).toMatchObject({ isIntact: true, count: 5 });
    releaseSlow();
    expect(await first).toMatchObject({ isIntact: true, count: 3 });

    const all = await entries();
    const newest = all.at(-1);
    if (!newest) throw new Error('no entries');
    await asSuperuser('DELETE FROM audit_log WHERE id >= $1', [newest.id - 1n]);
    const after = await monitor.verify();
    expect(after).toMatchObject({ isIntact: false, brokenAt: newest.id });
  });

  it('must still be as it was', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const monitor = createAuditChainMonitor({ db: db.prisma });
    await monitor.verify();
    const newest = (await entries()).at(-1);
    if (!newest) throw new Error('no entries');
    // Replaced by a correctly sealed entry (someone with the key, or a restore): not the entry that was seen.
    await asSuperuser('DELETE FROM audit_log WHERE id = $1', [newest.id]);
    await recordEntries(1);
    await asSuperuser('UPDATE audit_log SET id = $1 WHERE id = (SELECT max(id) FROM audit_log)', [newest.id]);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true, count: 3 });
    expect(await monitor.verify()).toMatchObject({
      isIntact: false,
      brokenAt: newest.id,
      reason: expect.stringContaining('rewritten since the last verification'),
    });
  });
});

describe('the periodic verification', () => {
  it('sets audit_chain_ok and logs a broken chain without anyone opening the page', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(4);
    const metrics = createMetrics();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const monitor = createAuditChainMonitor({ db: db.prisma, onVerdict: reportChainVerdictTo(metrics), logger });
    const verifier = createAuditChainVerifier({ monitor, logger, intervalSec: 3600 });
    try {
      await verifier.runOnce();
      expect(await metricValue(metrics, 'audit_chain_ok')).toBe(1);
      expect(await metricValue(metrics, 'audit_chain_last_verified_timestamp_seconds')).toBeGreaterThan(
        Date.now() / 1000 - 60,
      );
      // The newest entry, id and hash: what a later `npm run audit:verify -- --anchor` checks against, so
      // that the log lines kept outside the database can show the newest entries deleted (a count cannot).
      const newest = (await entries()).at(-1);
      expect(lines.at(-1)).toMatchObject({
        msg: 'the audit log hash chain is intact',
        entries: 4,
        isSealed: true,
        anchor: `${newest?.id}:${newest?.hash}`,
      });

      const victim = (await entries())[1];
      if (!victim) throw new Error('no second entry');
      await asSuperuser(`UPDATE audit_log SET actor = 'mallory' WHERE id = $1`, [victim.id]);
      await verifier.runOnce();
      expect(await metricValue(metrics, 'audit_chain_ok')).toBe(0);
      expect(lines.at(-1)).toMatchObject({
        msg: 'the audit log hash chain is broken',
        level: 50,
        brokenAt: String(victim.id),
      });
    } finally {
      await verifier.stop();
    }
  });

  // A process that has verified nothing has no verdict: audit_chain_ok read 1 ("intact") from its
  // start until its first verification, so a restart with a chain already broken resolved
  // AuditChainBroken at the first scrape and fired it again once the start-up verification finished.
  it('exports no audit_chain_ok until a verification has finished, so a restart does not read a broken chain as intact', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const victim = (await entries())[1];
    if (!victim) throw new Error('no second entry');
    await asSuperuser(`UPDATE audit_log SET actor = 'mallory' WHERE id = $1`, [victim.id]);
    // The process that starts after the break.
    const metrics = createMetrics();
    const logger = pino({ level: 'silent' });
    const monitor = createAuditChainMonitor({ db: db.prisma, onVerdict: reportChainVerdictTo(metrics), logger });
    const verifier = createAuditChainVerifier({ monitor, logger, intervalSec: 3600 });
    try {
      const before = await metrics.registry.metrics();
      expect(before).toContain('# TYPE audit_chain_ok gauge');
      expect(before).not.toMatch(/^audit_chain_ok /m);
      await verifier.runOnce();
      expect(await metrics.registry.metrics()).toMatch(/^audit_chain_ok 0$/m);
    } finally {
      await verifier.stop();
    }
  });

  // A superuser who set an entry's ts beyond the dates JavaScript holds (year 275760) made every
  // verification throw (RangeError: Invalid time value): the periodic check only logged the warning
  // "could not verify the audit log hash chain", audit_chain_ok stayed 1 and AuditChainBroken never fired.
  it('reports an entry changed to a time no hash can be computed of as a break, not a failure to verify', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(3);
    const metrics = createMetrics();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const monitor = createAuditChainMonitor({ db: db.prisma, onVerdict: reportChainVerdictTo(metrics), logger });
    const verifier = createAuditChainVerifier({ monitor, logger, intervalSec: 3600 });
    try {
      await verifier.runOnce();
      expect(await metricValue(metrics, 'audit_chain_ok')).toBe(1);
      const victim = (await entries())[1];
      if (!victim) throw new Error('no second entry');
      await asSuperuser(`UPDATE audit_log SET ts = '290000-01-01' WHERE id = $1`, [victim.id]);
      await verifier.runOnce();
      expect(lines.at(-1)).toMatchObject({ msg: 'the audit log hash chain is broken', brokenAt: String(victim.id) });
      expect(await metricValue(metrics, 'audit_chain_ok')).toBe(0);
      expect(await verifyAuditChain(db.prisma)).toMatchObject({
        isIntact: false,
        brokenAt: victim.id,
        reason: expect.stringMatching(
          /^the entry was changed after it was written: it holds a value no hash can be computed of/,
        ),
      });
    } finally {
      await verifier.stop();
    }
  });
  // A verification that throws (here: the table is gone; in life a lock, a timeout, an error of the
  // database) has no verdict: audit_chain_ok keeps its last value, and the timestamp must stay where
  // the last finished verification left it, so that AuditChainUnverified (prometheus/alerts.yml),
  // which reads it, fires once those failures have lasted 3 hours.
  it('leaves audit_chain_ok and its timestamp as they were when a verification fails, and warns why', async () => {
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: 0n });
    await recordEntries(2);
    const metrics = createMetrics();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const monitor = createAuditChainMonitor({ db: db.prisma, onVerdict: reportChainVerdictTo(metrics), logger });
    const verifier = createAuditChainVerifier({ monitor, logger, intervalSec: 3600 });
    try {
      await verifier.runOnce();
      const verifiedAt = await metricValue(metrics, 'audit_chain_last_verified_timestamp_seconds');
      expect(verifiedAt).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await asSuperuser('ALTER TABLE audit_log RENAME TO audit_log_away');
      try {
        await verifier.runOnce();
      } finally {
        await asSuperuser('ALTER TABLE audit_log_away RENAME TO audit_log');
      }
      expect(lines.at(-1)).toMatchObject({ msg: 'could not verify the audit log hash chain', level: 40 });
      expect(await metricValue(metrics, 'audit_chain_last_verified_timestamp_seconds')).toBe(verifiedAt);
      expect(await metricValue(metrics, 'audit_chain_ok')).toBe(1);
      expect(monitor.lastVerdict()?.verdict).toMatchObject({ isIntact: true, count: 2 });
    } finally {
      await verifier.stop();
    }
  });
});

describe('/admin/audit/verify', () => {
  it('says when the chain is not sealed, and not when it is', async () => {
    await buildUser(db.prisma, { username: 'sealer', role: 'admin', password: 'sealer-password' });
    const unsealedApp = buildTestApp(db);
    const unsealed = await signInAs(unsealedApp, 'sealer', 'sealer-password');
    const warned = await postAuditVerify(unsealed, 'text/html');
    expect(warned.text).toContain('AUDIT_CHAIN_KEY is not set');
    const json = await postAuditVerify(unsealed, 'application/json');
    expect(json.body).toMatchObject({ status: 'ok', isSealed: false });

    // The same log once the key is set: the entries so far were written before it.
    const lastUnsealed = (await entries()).at(-1)?.id ?? 0n;
    const sealedApp = buildTestApp(db, {
      env: { AUDIT_CHAIN_KEY: KEY, AUDIT_CHAIN_UNSEALED_UNTIL: String(lastUnsealed) },
    });
    const sealed = await signInAs(sealedApp, 'sealer', 'sealer-password');
    const page = await postAuditVerify(sealed, 'text/html');
    expect(page.text).toContain('entries are intact and chained');
    expect(page.text).not.toContain('AUDIT_CHAIN_KEY is not set');
  });

  // The page said "AUDIT_CHAIN_KEY is not set" of entries written before a first key
  // (AUDIT_CHAIN_UNSEALED_UNTIL), and did not say an old key sealed the newest entry right after a
  // change of key: it now words the seal as `npm run audit:verify` does, from the same function.
  it('says, as npm run audit:verify does, that entries predate a first key, and which key sealed the newest entry', async () => {
    await buildUser(db.prisma, { username: 'keyless', role: 'admin', password: 'keyless-password' });
    const before = await signInAs(buildTestApp(db), 'keyless', 'keyless-password');
    const lastUnsealed = (await entries()).at(-1)?.id ?? 0n;
    // The restarted process with its first key, before it writes anything (viewing the page writes nothing).
    configureAuditChain({ chainKeys: [KEY], unsealedUntil: lastUnsealed });
    const firstKey = await postAuditVerify(before, 'text/html');
    const predating =
      'The newest entries were written before AUDIT_CHAIN_KEY was set (AUDIT_CHAIN_UNSEALED_UNTIL) and are not sealed; the entries written from now on are.';
    expect(firstKey.text).toContain(predating);
    expect(firstKey.text).not.toContain('AUDIT_CHAIN_KEY is not set');
    const firstKeyJson = await postAuditVerify(before, 'application/json');
    expect(firstKeyJson.body).toMatchObject({
      status: 'ok',
      isSealed: false,
      isSealedWithOldKey: false,
      seal: predating,
    });

    // Sealed with OLD_KEY, then the key changes: the newest entry is still sealed with the old one.
    const oldKeyApp = buildTestApp(db, {
      env: { AUDIT_CHAIN_KEY: OLD_KEY, AUDIT_CHAIN_UNSEALED_UNTIL: String(lastUnsealed) },
    });
    const sealedOld = await signInAs(oldKeyApp, 'keyless', 'keyless-password');
    configureAuditChain({ chainKeys: [KEY, OLD_KEY], unsealedUntil: lastUnsealed });
    const changed = await postAuditVerify(sealedOld, 'text/html');
    const oldKey =
      'The newest entry is sealed with a key of AUDIT_CHAIN_OLD_KEYS; the entries written from now on are sealed with AUDIT_CHAIN_KEY.';
    expect(changed.text).toContain(oldKey);
    const changedJson = await postAuditVerify(sealedOld, 'application/json');
    expect(changedJson.body).toMatchObject({ status: 'ok', isSealed: true, isSealedWithOldKey: true, seal: oldKey });
  });
});
