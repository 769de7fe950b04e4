import type { Prisma } from '@prisma/client';
import type pg from 'pg';
import { ConfigError } from '../../config/config.js';
import type { Database, Db } from '../../db/database.js';
import { escapeCsvText, formatCsvLines } from '../../http/csv-format.js';
import { fieldLabelsOf } from '../../http/field-labels.js';
import { moneyJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import { formatDecimalText } from '../../http/view-format.js';
import { ReversedWindowError, StartAfterTodayError, UnsealedAuditAppendError } from '../../shared/errors.js';
import { endOfLocalDay, formatLocalDateTime, startOfLocalDay, toLocalDate } from '../../shared/local-date.js';
import { toolCommand } from '../../shared/tool-commands.js';
import { type UserFilterMatch, userFilterMatchOf } from '../../shared/user-filter.js';
import { revealControls } from '../../shared/visible-text.js';
import { fromMinorUnits } from '../payments/payment-money.js';
import { minorUnitDigits } from '../pricing/pricing.js';
import * as auditRepository from './audit.repository.js';
import { type TAuditCsvQuery, type TAuditQuery, ZAuditQuery } from './audit.schema.js';
import { type AuditRecord, GENESIS_HASH, hashAuditRecord } from './audit-hash.js';
import { targetsMatching } from './audit-target.js';

export interface AuditEntry {
  actor: string;
  action: string;
  /** `partial`: a run that wrote some of what it read and left some out (an ingestion Run now). */
  status: 'ok' | 'partial' | 'failed' | 'denied';
  target?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown> | null;
  /** More of who acted than the actor says, written into the details: a CLI's OS user (`osUser`). */
  actorDetails?: Record<string, unknown>;
}

/** Who did something and from where, as routes (and the CLIs) know it. */
export interface AuditContext {
  actor: string;
  ip: string | null;
  userAgent: string | null;
  /** More of who acted, for every entry made with this context: a CLI's OS user (src/cli/cli-audit-context.ts). */
  actorDetails?: Record<string, unknown>;
}

/**
 * Appends one entry to the hash chain inside the caller's transaction, so the entry
 * exists exactly when the change it records does. Appends are serialized by an
 * advisory lock held until the transaction ends: the chain never forks. Throws
 * UnsealedAuditAppendError, failing the caller's transaction, when this process has no key and
 * the newest entry is sealed (refuseUnsealedAfter).
 */
export async function appendAudit(tx: auditRepository.Tx, entry: AuditEntry, now = new Date()): Promise<void> {
  await appendAuditEntries(tx, [{ entry, now }]);
}

// audit_log.target is varchar(256).
const MAX_TARGET_LENGTH = 256;

/**
 * A target that fits its column, cut with "…" when longer. A forbidden attempt's target is the
 * path asked for, as long as the client made it: a longer one failed the insert, answering a
 * researcher at an admin address 500 and leaving the attempt unaudited.
 */
function fittedTarget(target: string | null | undefined): string | null {
  if (target === undefined || target === null) return null;
  return target.length > MAX_TARGET_LENGTH ? `${target.slice(0, MAX_TARGET_LENGTH - 1)}…` : target;
}

function toAuditRecord(entry: AuditEntry, now: Date): AuditRecord {
  return {
    ts: now,
    actor: entry.actor,
    ip: entry.ip ?? null,
    userAgent: entry.userAgent?.slice(0, 512) ?? null,
    action: entry.action,
    target: fittedTarget(entry.target),
    status: entry.status,
    details: entry.actorDetails ? { ...entry.details, ...entry.actorDetails } : (entry.details ?? null),
  };
}

/** How this process seals and checks the chain (AUDIT_CHAIN_KEY, AUDIT_CHAIN_OLD_KEYS, AUDIT_CHAIN_UNSEALED_UNTIL). */
export interface AuditChainSettings {
  /** The key that seals new entries first, then keys that sealed older ones; none: entries are unsealed. */
  chainKeys: readonly string[];
  /** Entries up to this id may be unsealed: they were written before the chain had a key. */
  unsealedUntil: bigint;
}

// Set once at start-up from the configuration: every append, wherever it happens, seals with the
// same key, and threading a key through each service's transaction would change nothing else.
let chainSettings: AuditChainSettings = { chainKeys: [], unsealedUntil: 0n };

/** Takes the configuration's audit chain settings (`config.audit`); the app, the start-up and the CLIs call it first. */
export function configureAuditChain(settings: AuditChainSettings): void {
  chainSettings = settings;
}

/**
 * Throws UnsealedAuditAppendError when this process, without a key, would append after `head`, a
 * sealed entry (or a changed one): refuseUnsealedAppend's rule, checked again at every append, under
 * the chain's lock, since the start-up check cannot see an entry another instance with the key seals
 * later (a rolling restart). `head.entry` is read only by a process without a key (isHeadEntryRead).
 */
function refuseUnsealedAfter(head: auditRepository.ChainHead | undefined): void {
  if (hasChainKey() || head?.entry === undefined) return;
  if (sealOfOrNone(head.entry, []) !== 'unsealed') throw new UnsealedAuditAppendError(head.entry.id);
}

/** Whether an append reads the head's whole entry: only one without a key checks it (refuseUnsealedAfter). */
function isHeadEntryRead(): boolean {
  return !hasChainKey();
}

/**
 * The entries as rows of the chain that continues from `head`, in order; refused (nothing written)
 * when they would be unsealed after a sealed head.
 */
function chainEntries(head: auditRepository.ChainHead | undefined, entries: { entry: AuditEntry; now: Date }[]) {
  refuseUnsealedAfter(head);
  let prevHash = head?.hash ?? GENESIS_HASH;
  const [sealingKey] = chainSettings.chainKeys;
  return entries.map(({ entry, now }): auditRepository.ChainedEntry => {
    const record = toAuditRecord(entry, now);
    const row = { record, prevHash, hash: hashAuditRecord(prevHash, record, sealingKey) };
    prevHash = row.hash;
    return row;
  });
}

/** Appends entries in order under one take of the chain lock. */
async function appendAuditEntries(tx: auditRepository.Tx, entries: { entry: AuditEntry; now: Date }[]) {
  const head = await auditRepository.lockChainHead(tx, isHeadEntryRead());
  await auditRepository.insertEntries(tx, chainEntries(head, entries));
}

interface QueuedEntry {
  entry: AuditEntry;
  now: Date;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface AppendQueue {
  waiting: QueuedEntry[];
  isFlushing: boolean;
}

// Entries appended together share one transaction: at most this many.
const MAX_GROUP = 100;
const queues = new WeakMap<Database, AppendQueue>();

async function commitGroup(db: Database, group: QueuedEntry[]) {
  await auditRepository.appendEntriesAlone(db.pool, (head) => chainEntries(head, group), isHeadEntryRead());
  for (const item of group) item.resolve();
}

async function flushQueue(db: Database, queue: AppendQueue) {
  queue.isFlushing = true;
  try {
    while (queue.waiting.length > 0) {
      const group = queue.waiting.splice(0, MAX_GROUP);
      try {
        await commitGroup(db, group);
      } catch (error) {
        // Refused for the log's head, not for an entry: each would be refused alone too.
        if (group.length === 1 || error instanceof UnsealedAuditAppendError) {
          for (const item of group) item.reject(error);
          continue;
        }
        // One failing entry must not take the others down: each gets its own answer.
        for (const item of group) await commitGroup(db, [item]).catch(item.reject);
      }
    }
  } finally {
    queue.isFlushing = false;
  }
}

/**
 * Appends one entry in a transaction of its own (for events that change nothing else)
 * and resolves once it is committed. Entries recorded while an earlier append is
 * committing wait and are then written together, in one transaction under one take of
 * the chain lock (group commit). Every sign-in appends an entry, and with one lock for
 * the whole chain, appends one by one capped sign-ins near 14/s on the 2-core machine:
 * 66 of 72 sampled active queries were waiting for the lock. Rejects with
 * UnsealedAuditAppendError, writing nothing, when this process has no key and the newest entry is
 * sealed.
 */
export function recordAudit(db: Database, entry: AuditEntry, now = new Date()): Promise<void> {
  let queue = queues.get(db);
  if (!queue) {
    queue = { waiting: [], isFlushing: false };
    queues.set(db, queue);
  }
  const committed = new Promise<void>((resolve, reject) => queue.waiting.push({ entry, now, resolve, reject }));
  if (!queue.isFlushing) void flushQueue(db, queue);
  return committed;
}

/** The newest entry a verification found intact; a later one must still find it as it was. */
export interface ChainCheckpoint {
  id: bigint;
  hash: string;
  /**
   * Where it comes from, as a broken verdict names it: this process's last intact verification
   * (the default), or an anchor kept outside the database (`npm run audit:verify -- --anchor`).
   */
  source?: 'last-verification' | 'anchor';
}

export type ChainVerdict =
  | {
      isIntact: true;
      count: number;
      /** The newest entry, when there is one. */
      head?: ChainCheckpoint;
      /** Whether the newest entry is sealed with a key (AUDIT_CHAIN_KEY). */
      isSealed: boolean;
      /**
       * Whether that key is one of AUDIT_CHAIN_OLD_KEYS: right after a change of key, until the
       * next entry is written with the new one.
       */
      isSealedWithOldKey: boolean;
    }
  | {
      isIntact: false;
      count: number;
      brokenAt: bigint;
      reason: string;
      /**
       * The entry before `brokenAt` that the reason names as replaced (rewritten with its hash
       * recomputed: no key, or before AUDIT_CHAIN_UNSEALED_UNTIL): not intact either.
       */
      replacedId?: bigint;
    };

/**
 * How the newest entry of an intact chain is sealed, in the words of `npm run audit:verify` and
 * /admin/audit/verify alike (one source: the page said "AUDIT_CHAIN_KEY is not set" after a first
 * key). Right after a change of key the newest entry is still sealed with the old one, and right
 * after a first key it is unsealed (AUDIT_CHAIN_UNSEALED_UNTIL): the next entry written is sealed
 * with AUDIT_CHAIN_KEY. Undefined for an empty log. Read with this process's settings, as the
 * verification that made the verdict was.
 */
export function describeChainSeal(verdict: Extract<ChainVerdict, { isIntact: true }>): string | undefined {
  if (verdict.count === 0) return undefined;
  if (verdict.isSealedWithOldKey) {
    return 'The newest entry is sealed with a key of AUDIT_CHAIN_OLD_KEYS; the entries written from now on are sealed with AUDIT_CHAIN_KEY.';
  }
  if (verdict.isSealed) return 'The newest entry is sealed with AUDIT_CHAIN_KEY.';
  if (hasChainKey()) {
    return 'The newest entries were written before AUDIT_CHAIN_KEY was set (AUDIT_CHAIN_UNSEALED_UNTIL) and are not sealed; the entries written from now on are.';
  }
  return 'The newest entries are not sealed with a key (AUDIT_CHAIN_KEY is not set): whoever can write to the database could rewrite the log so that it still verifies.';
}

/**
 * The newest entry of an intact chain as `ID:HASH`, and the command that checks a later log against
 * it (`npm run audit:verify -- --anchor ID:HASH`, as this copy names its tools): deleting the newest
 * entries leaves a chain that still verifies, which only an anchor kept outside the database shows
 * once no process remembers them. Undefined for an empty log.
 */
export function chainAnchorOf(
  verdict: Extract<ChainVerdict, { isIntact: true }>,
): { id: bigint; hash: string; anchor: string; command: string } | undefined {
  if (!verdict.head) return undefined;
  const { id, hash } = verdict.head;
  const anchor = `${id}:${hash}`;
  return { id, hash, anchor, command: toolCommand('audit:verify', `--anchor ${anchor}`) };
}

/**
 * The entry before which every entry of a broken chain is intact, in the words "Entries before #N
 * are intact." of /admin/audit/verify and `npm run audit:verify`: the broken one, or the one before
 * it that the reason names as replaced (it was said intact, though the sentence before said it was
 * replaced). Undefined when no entry before it is left to call intact.
 */
export function intactBeforeOf(verdict: Extract<ChainVerdict, { isIntact: false }>): bigint | undefined {
  const intactCount = verdict.count - (verdict.replacedId === undefined ? 1 : 2);
  return intactCount > 0 ? (verdict.replacedId ?? verdict.brokenAt) : undefined;
}

/** Whether this process seals new entries (AUDIT_CHAIN_KEY is set). */
export function hasChainKey(): boolean {
  return chainSettings.chainKeys.length > 0;
}

function toRecord(entry: auditRepository.StoredAuditEntry): AuditRecord {
  const { ts, actor, ip, userAgent, action, target, status, details } = entry;
  return { ts, actor, ip, userAgent, action, target, status, details };
}

/** How an entry's hash was made: with one of `keys`, without a key, or neither (it was changed). */
function sealOf(entry: auditRepository.StoredAuditEntry, keys: readonly string[]): 'sealed' | 'unsealed' | 'none' {
  const record = toRecord(entry);
  if (keys.some((key) => hashAuditRecord(entry.prevHash, record, key) === entry.hash)) return 'sealed';
  return hashAuditRecord(entry.prevHash, record) === entry.hash ? 'unsealed' : 'none';
}

const CHANGED = 'the entry was changed after it was written';

/** sealOf, or 'none' for an entry no hash can be computed of. */
function sealOfOrNone(entry: auditRepository.StoredAuditEntry, keys: readonly string[]): ReturnType<typeof sealOf> {
  try {
    return sealOf(entry, keys);
  } catch {
    return 'none';
  }
}

/**
 * Throws ConfigError (exit 78) when this process must not append to `db`'s log: without AUDIT_CHAIN_KEY
 * it writes unsealed entries, and one after a sealed entry breaks the chain for good ("not sealed
 * with AUDIT_CHAIN_KEY, though #N before it is"), which AuditChainBroken pages as a rewrite. A user
 * tool run from a shell with DATABASE_URL alone (no APP_ENV, so no key required) wrote one. Read
 * once, before a tool or the server's start changes anything: the newest entry's hash is its plain SHA-256, or the log is
 * empty, when appending without a key is what the log already is.
 */
export async function refuseUnsealedAppend(db: Db): Promise<void> {
  const newest = await sealedNewestEntryBlockingUnsealed(db);
  if (newest !== undefined) throw unsealedAppendConfigError(newest.id);
}

/**
 * refuseUnsealedAppend's ConfigError (exit 78) for a process without a key refused an entry after
 * #`newestEntryId`: at its start, or at an append (UnsealedAuditAppendError) when another instance
 * sealed the log after that check. `outcome` says what became of the tool's work: nothing was changed,
 * unless the entry was written after the work it records (`npm run ingest`'s run).
 */
export function unsealedAppendConfigError(newestEntryId: bigint, outcome = 'so nothing was changed'): ConfigError {
  return new ConfigError([
    `AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#${newestEntryId}) is sealed with a key (or was changed): ` +
      `an entry written without the key would break its hash chain for good (AuditChainBroken), ${outcome}; ` +
      'set AUDIT_CHAIN_KEY (and AUDIT_CHAIN_OLD_KEYS, AUDIT_CHAIN_UNSEALED_UNTIL) as the instance has them (npm run audit:verify with them tells a change from a missing key)',
  ]);
}

/** The newest entry when this process has no key and it is not unsealed (refuseUnsealedAfter's rule), else undefined. */
async function sealedNewestEntryBlockingUnsealed(db: Db): Promise<auditRepository.StoredAuditEntry | undefined> {
  if (hasChainKey()) return undefined;
  const newest = await auditRepository.findNewestEntry(db);
  return newest && sealOfOrNone(newest, []) !== 'unsealed' ? newest : undefined;
}

/**
 * Throws UnsealedAuditAppendError (503) when this process could not append to `db`'s log now, as
 * refuseUnsealedAfter would at the append: for an action whose entry is written after it, outside
 * its transactions (Run now's run), checked before it starts, so that it is not done without its entry.
 * Read without the chain's lock: the append still checks, for a first sealed entry written in between.
 */
export async function refuseUnsealedAppendNow(db: Db): Promise<void> {
  const newest = await sealedNewestEntryBlockingUnsealed(db);
  if (newest !== undefined) throw new UnsealedAuditAppendError(newest.id);
}

/**
 * The id of the newest entry when this process could not append after it (no key, and it is sealed
 * or changed: refuseUnsealedAfter's rule), else undefined, read within `timeoutMs` for /readyz: such
 * an instance refuses every request that writes an entry (a sign-in among them), and a load balancer
 * must send them to the instances that have the key. A process with a key reads nothing.
 */
export async function findEntryRefusingAppendsWithin(pool: pg.Pool, timeoutMs: number): Promise<bigint | undefined> {
  if (hasChainKey()) return undefined;
  const newest = await auditRepository.findNewestEntryWithin(pool, timeoutMs);
  return newest && sealOfOrNone(newest, []) !== 'unsealed' ? newest.id : undefined;
}

/**
 * What the log's page and CSV write for an entry's time that JavaScript cannot hold ('infinity', a
 * year past 275760): only a change behind the app's back makes one, and the verification names it.
 * Formatted, it threw "Invalid time value" and the page, its JSON and the CSV answered 500, so the
 * log could not be read while it held such an entry.
 */
export const NOT_A_VALID_TIME = 'not a valid time';

/**
 * An entry's time in `timeZone` as the app writes times ("2025-09-20 12:00"), or NOT_A_VALID_TIME:
 * for a message that names who changed something and when, as the audit log recorded it.
 */
export function formatAuditTime(ts: Date, timeZone: string): string {
  return Number.isNaN(ts.getTime()) ? NOT_A_VALID_TIME : formatLocalDateTime(ts, timeZone);
}

/** An entry's time as ISO 8601, or undefined when it is no valid time (NOT_A_VALID_TIME). */
export function auditTimeIso(ts: Date): string | undefined {
  return Number.isNaN(ts.getTime()) ? undefined : ts.toISOString();
}

/**
 * Walks the whole chain in id order and reports the first entry that does not fit. With keys,
 * every entry after AUDIT_CHAIN_UNSEALED_UNTIL must be sealed with one of them: whoever rewrites
 * the table without the key can only write unsealed hashes. `checkpoint`, the head an earlier
 * verification found, must still be there as it was: deleting the newest entries leaves a chain
 * that is intact but shorter, which nothing inside the table can tell.
 */
export async function verifyAuditChain(db: Db, checkpoint?: ChainCheckpoint): Promise<ChainVerdict> {
  const { chainKeys: keys, unsealedUntil } = chainSettings;
  let expectedPrev = GENESIS_HASH;
  let count = 0;
  let head: ChainCheckpoint | undefined;
  let headEntry: auditRepository.StoredAuditEntry | undefined;
  let isHeadSealed = false;
  // The first sealed entry: no unsealed one may follow it, whatever AUDIT_CHAIN_UNSEALED_UNTIL says.
  let firstSealedId: bigint | undefined;
  let hasMetCheckpoint = checkpoint === undefined;
  for await (const batch of auditRepository.iterateEntries(db, 'asc')) {
    for (const entry of batch) {
      count += 1;
      if (!hasMetCheckpoint && checkpoint && entry.id >= checkpoint.id) {
        if (entry.id !== checkpoint.id) return checkpointGone(count, checkpoint, head?.id);
        if (entry.hash !== checkpoint.hash) {
          return {
            isIntact: false,
            count,
            brokenAt: entry.id,
            reason:
              checkpoint.source === 'anchor'
                ? `the entry is not the anchor given (--anchor): it was rewritten since, or the anchor is another log's (its hash is ${entry.hash})`
                : 'the entry was rewritten since the last verification',
          };
        }
        hasMetCheckpoint = true;
      }
      let seal: ReturnType<typeof sealOf>;
      try {
        seal = sealOf(entry, keys);
      } catch (error) {
        // A value the app never writes (a ts past the year 275760, beyond JavaScript's dates) that
        // the hash cannot be computed of: the entry was changed. Thrown, it failed every
        // verification, and the periodic one only warned it "could not verify" while audit_chain_ok
        // stayed 1 and AuditChainBroken silent.
        const cause = error instanceof Error ? error.message : String(error);
        return {
          isIntact: false,
          count,
          brokenAt: entry.id,
          reason: `${CHANGED}: it holds a value no hash can be computed of (${cause})`,
        };
      }
      const sealProblem =
        seal === 'none'
          ? await describeUnmatchedEntry(db, entry, keys)
          : sealProblemOf(seal, entry.id, keys, unsealedUntil, firstSealedId);
      if (entry.prevHash !== expectedPrev) {
        // An entry that still matches its own hash was not changed: what it was chained to is missing.
        if (sealProblem !== undefined) return { isIntact: false, count, brokenAt: entry.id, reason: sealProblem };
        const copyOfId = await auditRepository.findOtherEntryIdWithHash(db, entry.hash, entry.id);
        const followedId = await auditRepository.findEntryIdByHash(db, entry.prevHash);
        const reason = describeMissingLink(entry.id, head?.id, followedId, copyOfId);
        // The entry right before it matches its own hash, yet is not the one this entry followed:
        // it was rewritten with its hash recomputed, so it is not intact either.
        const replacedId =
          followedId === undefined && copyOfId === undefined && head?.id === entry.id - 1n ? head.id : undefined;
        return {
          isIntact: false,
          count,
          brokenAt: entry.id,
          reason,
          ...(replacedId === undefined ? {} : { replacedId }),
        };
      }
      if (sealProblem !== undefined) return { isIntact: false, count, brokenAt: entry.id, reason: sealProblem };
      expectedPrev = entry.hash;
      head = { id: entry.id, hash: entry.hash };
      headEntry = entry;
      isHeadSealed = seal === 'sealed';
      if (isHeadSealed) firstSealedId ??= entry.id;
    }
  }
  if (!hasMetCheckpoint && checkpoint) return checkpointGone(count, checkpoint, head?.id);
  if (!head || !headEntry) return { isIntact: true, count, isSealed: false, isSealedWithOldKey: false };
  // Once, for the newest entry: sealOf tries every key and says only that one of them fits.
  const isSealedWithOldKey = isHeadSealed && sealOf(headEntry, keys.slice(0, 1)) !== 'sealed';
  return { isIntact: true, count, head, isSealed: isHeadSealed, isSealedWithOldKey };
}

/** What a hash cannot tell of an entry that does not match it. */
const WHICH_FIELD =
  'the hash does not say which of its time, actor, address, user agent, action, target, status or details differ: compare it with a backup';

/**
 * Why an entry does not match its hash with any key this instance has, or without one, told by the
 * entry after it: one that still follows its hash shows the entry was written so and changed since;
 * none, or one that follows another hash, leaves a row added by hand as likely as a changed one. They
 * were all "changed after it was written", and nothing said what the hash cannot tell.
 */
async function describeUnmatchedEntry(
  db: Db,
  entry: auditRepository.StoredAuditEntry,
  keys: readonly string[],
): Promise<string> {
  const otherKey =
    keys.length > 0
      ? 'or it was sealed with a key this instance does not have'
      : 'or it was sealed with an AUDIT_CHAIN_KEY this instance does not have';
  // The newest entry does not match either: every entry is likely to fail so, which a key this
  // instance does not have explains, and a change of two entries far apart rarely does. Said as a
  // change first, a key left out of the configuration read as a security incident.
  const newest = await auditRepository.findNewestEntry(db);
  if (newest !== undefined && newest.id !== entry.id && sealOfOrNone(newest, keys) === 'none') {
    return `${CHANGED}, or, more likely, it was sealed with a key this instance does not have: neither it nor the newest entry (#${newest.id}) matches its hash ${keys.length > 0 ? 'with AUDIT_CHAIN_KEY or AUDIT_CHAIN_OLD_KEYS' : 'without a key (AUDIT_CHAIN_KEY is not set)'}; check the instance's keys before looking for a change (${WHICH_FIELD})`;
  }
  const next = await auditRepository.findEntryAfter(db, entry.id);
  if (next === undefined) {
    return `${CHANGED}, or added behind the app's back: it does not match its hash, and no entry follows it (${WHICH_FIELD}; ${otherKey})`;
  }
  if (next.prevHash === entry.hash) {
    return `${CHANGED}: what it holds no longer matches its hash, which the entry after it (#${next.id}) still follows (${WHICH_FIELD}; ${otherKey})`;
  }
  return `${CHANGED}, its hash too, or added behind the app's back: it does not match its hash, and the entry after it (#${next.id}) does not follow it (${WHICH_FIELD}; ${otherKey})`;
}

/**
 * Why an entry's own hash is not to be trusted, or undefined when it holds (an entry that matches no
 * hash is describeUnmatchedEntry's). `firstSealedId`: the first sealed entry before it, if any.
 */
function sealProblemOf(
  seal: 'sealed' | 'unsealed' | 'none',
  id: bigint,
  keys: readonly string[],
  unsealedUntil: bigint,
  firstSealedId: bigint | undefined,
): string | undefined {
  if (seal === 'none') return CHANGED;
  // The unsealed entries AUDIT_CHAIN_UNSEALED_UNTIL takes were written before the log had a key, so
  // all before the first sealed one. Set past them, the setting (which is not the key, and sits
  // beside it) let a rewrite without the key from any later entry verify as intact.
  if (seal === 'unsealed' && keys.length > 0 && firstSealedId !== undefined) {
    return `the entry is not sealed with AUDIT_CHAIN_KEY, though #${firstSealedId} before it is: it was rewritten without the key (AUDIT_CHAIN_UNSEALED_UNTIL takes only entries written before the log had a key, and none comes after a sealed one)`;
  }
  if (seal === 'unsealed' && keys.length > 0 && id > unsealedUntil) {
    return 'the entry is not sealed with AUDIT_CHAIN_KEY: it was rewritten without the key, or written before the key was set (then set AUDIT_CHAIN_UNSEALED_UNTIL, docs/security.md)';
  }
  return undefined;
}

/**
 * Why an intact entry does not follow the one before it (`previousId`, none for the first), given
 * where the entry it was chained after is now (`followedId`: the entry whose hash is its prev_hash,
 * none when no entry has it) and another entry with its own hash (`copyOfId`: one of the two is a
 * copy). Said as "prev_hash does not match the previous entry", a deleted entry
 * read as a change to the intact one after it, and the operator looked for the tampering in the
 * wrong entry; and an entry given another id was said to be deleted while it was still there.
 */
function describeMissingLink(
  id: bigint,
  previousId: bigint | undefined,
  followedId: bigint | undefined,
  copyOfId?: bigint,
): string {
  // Ids are never reused, so the entry it followed had an id between the two; a rolled-back
  // append leaves gaps too, so the exact id is not known when the gap is wider than one.
  const idsBetween = (from: bigint, to: bigint) => (from === to ? `#${from}` : `an id from #${from} to #${to}`);
  // The hash covers the record, not its id: some entry still has the hash this one followed, so
  // nothing was deleted, but ids were changed. Which entry was given another id, this one or the
  // one it followed, the chain cannot tell.
  const moved = 'entries were moved (their ids changed)';
  // The same entry is in the log twice (the unique index on hash refuses that until it is dropped):
  // which of the two is the copy the chain cannot tell, since a copy fits where the original stood.
  const copy =
    copyOfId === undefined
      ? undefined
      : `#${copyOfId} holds the same entry and hash, so one of the two is a copy of the other: an entry was inserted again (replayed)`;
  if (previousId === undefined) {
    if (copy !== undefined) return `the entry is as it was written, but it is not the first entry: ${copy}`;
    if (followedId !== undefined) {
      return `the entry is as it was written, but it was chained after #${followedId}, an entry that is not before it: ${moved}`;
    }
    return id > 1n
      ? `the entry is as it was written, but it was chained after an entry that is gone: the entry before it (${idsBetween(1n, id - 1n)}) was deleted`
      : 'the entry is as it was written, but it was chained after an entry that is gone: entries before it were deleted';
  }
  const before = id > previousId + 1n ? 'the entry now before it' : 'the entry before it';
  const notAfter = `the entry is as it was written, but it was not chained after #${previousId}, ${before}`;
  if (copy !== undefined) return `${notAfter}: ${copy}`;
  if (followedId !== undefined) return `${notAfter}: it was chained after #${followedId}, so ${moved}`;
  if (id > previousId + 1n) {
    return `${notAfter}: the entry it followed (${idsBetween(previousId + 1n, id - 1n)}) was deleted`;
  }
  return `${notAfter}: the entry it followed is gone: #${previousId} was replaced, or it was deleted and another entry given its id`;
}

/**
 * The remembered newest entry is not there: the entries after the newest intact one (`lastIntactId`)
 * up to it went. Said as a range, as describeMissingLink does, since "entries were deleted" under
 * "Entries before #6 are intact" let a reader think #5 was still there.
 */
function checkpointGone(count: number, checkpoint: ChainCheckpoint, lastIntactId: bigint | undefined): ChainVerdict {
  const from = (lastIntactId ?? 0n) + 1n;
  const range = from === checkpoint.id ? `#${from}` : `#${from} to #${checkpoint.id}`;
  const which = lastIntactId === undefined ? 'the entries up to it' : `the entries after #${lastIntactId} up to it`;
  const entry = checkpoint.source === 'anchor' ? 'the anchor given (--anchor)' : 'the newest at the last verification';
  return {
    isIntact: false,
    count,
    brokenAt: checkpoint.id,
    reason: `the entry, ${entry}, is gone: ${which} (${range}) were deleted`,
  };
}

/** The columns of /admin/audit.csv, in order: its header. */
export const AUDIT_CSV_COLUMNS = [
  'id',
  'ts',
  'actor',
  'ip',
  'user_agent',
  'action',
  'target',
  'status',
  'details',
  'prev_hash',
  'hash',
] as const;

/**
 * One audit entry as a CSV record. The actor of a failed sign-in, the address (behind a trusted
 * proxy, an X-Forwarded-For entry, whose bytes Node reads as Latin-1: a C1 control can arrive), the
 * user agent and what a target or the details name come from outside (escapeCsvText: inert for a
 * spreadsheet, and their bidirectional and terminal controls written as escapes, as the audit page
 * writes them); the action and status are the application's own.
 */
function auditCsvRecord(entry: auditRepository.StoredAuditEntry): string[] {
  return [
    String(entry.id),
    auditTimeIso(entry.ts) ?? NOT_A_VALID_TIME,
    escapeCsvText(entry.actor),
    escapeCsvText(entry.ip ?? ''),
    escapeCsvText(entry.userAgent ?? ''),
    entry.action,
    escapeCsvText(entry.target ?? ''),
    entry.status,
    // A control is only inside a JSON string there, where its escape is the same text.
    escapeCsvText(entry.details ? JSON.stringify(entry.details) : ''),
    entry.prevHash,
    entry.hash,
  ];
}

/** The entries under `filter`, oldest first, as CSV text (no header) in batches. */
async function* streamAuditCsv(db: Db, filter: auditRepository.AuditFilter): AsyncGenerator<string> {
  for await (const batch of auditRepository.iterateEntries(db, 'asc', 1000, filter)) {
    yield formatCsvLines(batch.map(auditCsvRecord), AUDIT_CSV_COLUMNS);
  }
}

// A tier renamed more often than this in one history is not followed further back.
const MAX_TIER_RENAMES = 100;

/**
 * The spans of a tier's entries under its earlier names, for a filter by `tier:<name>`: a rename
 * writes the new name from then on, and the log is never rewritten, so the tier's creation, its
 * earlier rates and the rename itself stay under the old name. Follows the renames of the tier that
 * got `name` last back in time, each earlier name only from where this tier got it up to the
 * rename away from it (that entry included), so a tier given an old name later is not its history.
 * Entries written under `name` itself are all found, as the log writes them.
 */
export async function tierNameSpans(db: Db, target: string): Promise<auditRepository.TargetSpan[]> {
  if (!target.startsWith('tier:')) return [];
  const spans: auditRepository.TargetSpan[] = [];
  let naming = await auditRepository.findTierNaming(db, target.slice('tier:'.length));
  for (let step = 0; step < MAX_TIER_RENAMES && naming?.previousName; step++) {
    const renamedAt = naming.id;
    const previousName: string = naming.previousName;
    naming = await auditRepository.findTierNaming(db, previousName, renamedAt);
    spans.push({ target: `tier:${previousName}`, fromId: naming?.id, upToId: renamedAt });
  }
  return spans;
}

/** A whole number of minor units as the log records it ("922170", or "-5" as a provider may send). */
const MINOR_UNITS = /^-?\d{1,30}$/;
const CURRENCY_CODE = /^[A-Z]{3}$/;

/** An amount an entry's details keep in minor units, with the currency it is in. */
export interface AuditAmount {
  /** The details' key, e.g. `receivedMinor`. */
  field: string;
  /** As recorded: "930000". */
  minor: string;
  amount: Prisma.Decimal;
  currency: string;
}

/**
 * The amounts an entry's details keep in minor units. Payments record their money so (`amountMinor`,
 * `receivedMinor`, `refundedTotalMinor`), receipts record theirs as decimals (`total`), and read
 * side by side on the audit page "922170" was taken for 922,170 THB. An `xMinor` is in `xCurrency`
 * when the entry has one, else in `currency`; one without a currency code is left as recorded.
 * The details themselves are shown unchanged: the hash chain covers them.
 */
export function findAuditAmounts(details: unknown): AuditAmount[] {
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return [];
  const fields = details as Record<string, unknown>;
  const found: AuditAmount[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (!key.endsWith('Minor') || typeof value !== 'string' || !MINOR_UNITS.test(value)) continue;
    const currency = fields[`${key.slice(0, -'Minor'.length)}Currency`] ?? fields.currency;
    if (typeof currency !== 'string' || !CURRENCY_CODE.test(currency)) continue;
    found.push({ field: key, minor: value, amount: fromMinorUnits(BigInt(value), currency), currency });
  }
  return found;
}

/** The amounts of an entry's details (findAuditAmounts) as the pages write money: "receivedMinor 930000 = 9,300.00 THB". */
export function describeAuditAmounts(details: unknown): string[] {
  return findAuditAmounts(details).map(({ field, minor, amount, currency }) => {
    const digits = minorUnitDigits(currency);
    const text = amount.toFixed(digits);
    return `${field} ${minor} = ${formatDecimalText(text, digits) ?? text} ${currency}`;
  });
}

/**
 * An entry's details as one line of JSON, in pieces that each end at a comma, for the audit page to
 * offer a line break between them (<wbr>). Without one the JSON has nowhere to break, and a narrow
 * column cut it in the middle of keys and values ("scope":"ad / min"). The text is unchanged, so a
 * copy of it is the JSON as recorded; a comma inside a value is a fair place to break too.
 */
export function splitAuditDetails(details: unknown): string[] {
  if (details === null || details === undefined) return [];
  // A bidirectional control appears only inside a JSON string, where its escape is the same text.
  return revealControls(JSON.stringify(details)).split(/(?<=,)/);
}

/** The longest login name useradd accepts: an actor's piece up to this long is kept whole. */
const LONGEST_LOGIN_NAME = 32;

/**
 * An entry's actor in the pieces the audit page may break it between: after "provider:" (a payment
 * provider's actor) and after the separators of a login name ("_", "-", ".", "@"), never inside a
 * word. Left to the table, the Actor column was squeezed until its names broke mid-word
 * ("provider:stri / pe"). A piece longer than any login name (what someone typed at a failed
 * sign-in) is not kept whole: on one line it would push the table past the screen.
 */
export function splitAuditActor(actor: string): { text: string; isKeptWhole: boolean }[] {
  // What someone typed at a failed sign-in: a right-to-left override there turned the name around.
  return revealControls(actor)
    .split(/(?<=[:_.@-])/)
    .map((text) => ({ text, isKeptWhole: text.length <= LONGEST_LOGIN_NAME }));
}

/**
 * The actors the Actor filter means among the log's, by the billing page's rule (userFilterMatchOf):
 * part of a name in any case is every actor containing it ("ali" for alice, "provider" for
 * provider:stripe); a whole one, in any case, that actor alone: `cli` is the user tools' entries, not
 * clive's, which are offered. Undefined without a filter.
 */
async function actorMatchOf(db: Db, actor: string | undefined): Promise<UserFilterMatch | undefined> {
  if (!actor) return undefined;
  return userFilterMatchOf(actor, await auditRepository.findActorsContaining(db, actor));
}

/**
 * The filters of /admin/audit and its CSV (an actor as actorMatchOf matched it, a `tier:` target followed
 * through its renames), from/to as local days.
 */
async function auditFilterOf(
  db: Db,
  query: TAuditCsvQuery,
  timeZone: string,
  actorMatch: UserFilterMatch | undefined,
): Promise<auditRepository.AuditFilter> {
  return {
    actors: actorMatch?.usernames,
    action: query.action,
    targets: query.target ? targetsMatching(query.target) : undefined,
    targetSpans: query.target ? await tierNameSpans(db, query.target) : undefined,
    from: query.from ? startOfLocalDay(query.from, timeZone) : undefined,
    to: query.to ? endOfLocalDay(query.to, timeZone) : undefined,
  };
}

/**
 * Refuses (400) a From after To, and a From alone after today in `timeZone` (it listed no entry, "No
 * entries match.", when none can have been logged yet), named by the page's labels (by the keys to a
 * script), as usage, the admin's receipts and paid.csv word them. A window with both ends is not
 * refused for being after today, as theirs is not.
 */
function refuseWindow(query: TAuditCsvQuery, timeZone: string, now: Date): void {
  const labels = fieldLabelsOf(ZAuditQuery);
  if (query.from && query.to && query.from > query.to) {
    throw new ReversedWindowError(query.from, query.to, { fields: ['from', 'to'], labels });
  }
  const today = toLocalDate(now, timeZone);
  if (query.from && !query.to && query.from > today) {
    throw new StartAfterTodayError(query.from, today, labels.from, 'from');
  }
}

/**
 * What /admin/audit refuses in a query its schema passed, a From after To or alone after today
 * (400), for a HEAD (a link checker, `curl -I`): it read and rendered a page of entries, the actions and the targets' renames
 * to send nothing. Reads nothing; a cursor older than the first entry is a page of none, not refused.
 */
export function checkAuditLogQuery(query: TAuditQuery, timeZone: string, now: Date): void {
  refuseWindow(query, timeZone, now);
}

/**
 * /admin/audit.csv's export of `query`: its columns, and `open` for its rows, the entries under the
 * query's filters, oldest first, as CSV text (no header) in batches. A From after To or alone after
 * today is refused here, when the export is asked for: before it takes a slot, and for its HEAD too. The filters' own reads
 * (a `tier:` target's renames) are done before `open` returns, so that their failure is an error
 * answer, not a download cut short.
 */
export function auditCsvExport(
  db: Db,
  query: TAuditCsvQuery,
  timeZone: string,
  now: Date,
): { columns: readonly string[]; open: () => Promise<AsyncIterable<string>> } {
  refuseWindow(query, timeZone, now);
  return {
    columns: AUDIT_CSV_COLUMNS,
    open: async () => streamAuditCsv(db, await auditFilterOf(db, query, timeZone, await actorMatchOf(db, query.actor))),
  };
}

const AUDIT_PAGE_SIZE = 50;

/** The page's filters, in the order of its form and its links. */
export const AUDIT_FILTER_NAMES = ['actor', 'action', 'target', 'from', 'to'] as const;
export type AuditFilterName = (typeof AUDIT_FILTER_NAMES)[number];

/**
 * The CSV of the entries a page lists: its filters, not its "older entries" cursor. Without a
 * filter it is the whole log; refused filters (undefined) get none, since the export refuses them too.
 */
function csvLinkOf(query: TAuditCsvQuery | undefined) {
  if (!query) return undefined;
  const { actor, action, target, from, to } = query;
  return linkTo('/admin/audit.csv', { actor, action, target, from, to }, {});
}

/**
 * One entry of /admin/audit: as stored, with what the page shows of it (its time in the zone, the
 * actor, details and IP in the pieces a line may break between, the amounts as money) and the
 * amounts as its JSON writes them (money at the currency's scale).
 */
export interface AuditLogRow extends auditRepository.StoredAuditEntry {
  when: string;
  actorParts: { text: string; isKeptWhole: boolean }[];
  detailsParts: string[];
  ipParts: string[];
  detailsAmounts: string[];
  amounts: { field: string; minor: string; amount: string; currency: string }[];
}

/** Everything /admin/audit shows, for its page and its JSON alike (auditLogPage). */
export interface AuditLogPage {
  /** What the form shows: the query, or the filters as typed when they were refused. */
  query: TAuditQuery | Record<AuditFilterName, string | undefined>;
  /** The filters given (none empty), as the JSON names them. */
  filters: Partial<Record<AuditFilterName, string>>;
  actions: string[];
  entries: AuditLogRow[];
  /** What the Actor filter matched (userFilterMatchOf's rule), undefined without one: the page names them. */
  actorMatch: UserFilterMatch | undefined;
  /** Said on the page: entries under other targets than the one typed would otherwise puzzle. */
  earlierTargets: { target: string; fromId: string | null; upToId: string | null }[];
  nextPageUrl: string | undefined;
  newestPageUrl: string | undefined;
  olderThan: string | undefined;
  csvLink: string | undefined;
}

function auditLogRow(entry: auditRepository.StoredAuditEntry, timeZone: string): AuditLogRow {
  return {
    ...entry,
    when: formatAuditTime(entry.ts, timeZone),
    actorParts: splitAuditActor(entry.actor),
    detailsParts: splitAuditDetails(entry.details),
    // An IPv6 address, 39 characters on one line, left the details a third of the table.
    ipParts: entry.ip ? entry.ip.split(/(?<=:)/) : [],
    detailsAmounts: describeAuditAmounts(entry.details),
    amounts: findAuditAmounts(entry.details).map((found) => ({
      field: found.field,
      minor: found.minor,
      amount: moneyJson(found.amount, found.currency),
      currency: found.currency,
    })),
  };
}

/**
 * /admin/audit's view: a page of the entries under `query` (50, newest first, older than its
 * cursor), the actions to filter by, and its links; a From after To or alone after today is refused
 * (400). Refused filters (`typed`: as they were typed) search nothing: the page then shows them in its form, with
 * the actions, and no entries.
 */
export async function auditLogPage(
  db: Db,
  asked: { query: TAuditQuery } | { typed: Record<AuditFilterName, string | undefined> },
  timeZone: string,
  now: Date,
): Promise<AuditLogPage> {
  if (!('query' in asked)) {
    return {
      query: asked.typed,
      filters: {},
      actorMatch: undefined,
      actions: await auditRepository.listDistinctActions(db),
      entries: [],
      earlierTargets: [],
      nextPageUrl: undefined,
      newestPageUrl: undefined,
      olderThan: undefined,
      csvLink: csvLinkOf(undefined),
    };
  }
  const { query } = asked;
  refuseWindow(query, timeZone, now);
  const actorMatch = await actorMatchOf(db, query.actor);
  const filter = await auditFilterOf(db, query, timeZone, actorMatch);
  const entries = await auditRepository.findPage(db, filter, AUDIT_PAGE_SIZE + 1, query.before);
  const hasMore = entries.length > AUDIT_PAGE_SIZE;
  const shown = entries.slice(0, AUDIT_PAGE_SIZE);
  const filters = Object.fromEntries(AUDIT_FILTER_NAMES.flatMap((name) => (query[name] ? [[name, query[name]]] : [])));
  const nextQuery = new URLSearchParams({
    ...filters,
    ...(hasMore ? { before: String(shown[shown.length - 1]?.id) } : {}),
  });
  return {
    query,
    filters,
    actorMatch,
    actions: await auditRepository.listDistinctActions(db),
    entries: shown.map((entry) => auditLogRow(entry, timeZone)),
    earlierTargets: (filter.targetSpans ?? []).map((span) => ({
      target: span.target,
      fromId: span.fromId === undefined ? null : String(span.fromId),
      upToId: span.upToId === undefined ? null : String(span.upToId),
    })),
    nextPageUrl: hasMore ? `/admin/audit?${nextQuery}` : undefined,
    // An older page (the last one, or one past it) leads back to the newest entries under the same
    // filters: the Filter button was its only way there, and past the oldest it said "No entries match".
    newestPageUrl: query.before
      ? linkTo('/admin/audit', Object.fromEntries(AUDIT_FILTER_NAMES.map((name) => [name, query[name]])), {})
      : undefined,
    olderThan: query.before === undefined ? undefined : String(query.before),
    csvLink: csvLinkOf(query),
  };
}
