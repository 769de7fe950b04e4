/**
 * How long the audit log's chain verification takes (POST /admin/audit/verify, its button on /admin/audit, and the periodic
 * check, AUDIT_VERIFY_INTERVAL_SEC) as the log grows: a scratch database is filled with
 * `--entries` sealed entries shaped like the app's (sign-ins, receipts, payments), then
 * verifyAuditChain walks them, `--runs` times. Prints entries per second and the peak RSS.
 *
 *   npm run bench:audit-verify                      # 1,000,000 entries, embedded PostgreSQL
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npm run bench:audit-verify -- --entries 200000
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { openDatabase } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrations.js';
import { configureAuditChain, verifyAuditChain } from '../src/modules/audit/audit.service.js';
import { type AuditRecord, GENESIS_HASH, hashAuditRecord } from '../src/modules/audit/audit-hash.js';
import { createLogger } from '../src/shared/logger.js';
import { toCopyLine } from './lib/copy-text.js';
import { createScratchDatabase } from './lib/scratch-database.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '2' },
  },
});
const entryCount = Number(values.entries);
const runs = Number(values.runs);
if (!Number.isInteger(entryCount) || entryCount < 1) throw new Error('--entries must be a whole number above 0');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number above 0');

const CHAIN_KEY = 'bench-only-audit-chain-key-never-use-in-production';
configureAuditChain({ chainKeys: [CHAIN_KEY], unsealedUntil: 0n });

/** The i-th entry: mostly sign-ins, as a real log is, with receipts and payments among them. */
function recordAt(index: number, ts: Date): AuditRecord {
  const user = `u${String(index % 500).padStart(3, '0')}`;
  const base = {
    ts,
    actor: user,
    ip: '10.0.0.1',
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0',
    status: 'ok',
  };
  switch (index % 10) {
    case 8:
      return {
        ...base,
        action: 'receipt.create',
        target: `receipt:${index}`,
        details: { jobCount: 1800, total: '9221.70', currency: 'THB', start: '2026-11-01', end: '2026-11-30' },
      };
    case 9:
      return {
        ...base,
        actor: 'provider:dummy',
        action: 'payment.webhook',
        target: `receipt:${index - 1}`,
        details: { eventId: `evt_${index}`, amountMinor: '922170', currency: 'THB', receipt: 'paid' },
      };
    default:
      return { ...base, action: 'auth.login', target: `user:${user}`, details: null };
  }
}

const scratch = await createScratchDatabase(process.env.DATABASE_URL);
try {
  await applyMigrations(scratch.url, createLogger('warn'));
  const fillStarted = performance.now();
  const client = new pg.Client({ connectionString: scratch.url });
  await client.connect();
  try {
    const copy = client.query(
      copyFrom(
        'COPY audit_log (ts, actor, ip, user_agent, action, target, status, details, prev_hash, hash) FROM STDIN',
      ),
    );
    const done = new Promise<void>((resolve, reject) => {
      copy.on('finish', resolve);
      copy.on('error', reject);
    });
    let prevHash = GENESIS_HASH;
    const start = Date.now() - entryCount * 30_000;
    let chunk = '';
    for (let index = 0; index < entryCount; index += 1) {
      const record = recordAt(index, new Date(start + index * 30_000));
      const hash = hashAuditRecord(prevHash, record, CHAIN_KEY);
      const { ts, actor, ip, userAgent, action, target, status, details } = record;
      const detailsText = details === null ? null : JSON.stringify(details);
      chunk += toCopyLine([ts, actor, ip, userAgent, action, target, status, detailsText, prevHash, hash]);
      prevHash = hash;
      if (chunk.length > 1 << 20) {
        if (!copy.write(chunk)) await new Promise((resolve) => copy.once('drain', resolve));
        chunk = '';
      }
    }
    copy.end(chunk);
    await done;
    await client.query('VACUUM ANALYZE audit_log');
  } finally {
    await client.end();
  }
  console.log(
    `audit log: ${entryCount.toLocaleString('en')} sealed entries written in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s`,
  );

  const db = openDatabase(scratch.url, { poolMax: 2, queryTimeoutMs: 600_000, logger: createLogger('silent') });
  try {
    console.log('| run | entries | seconds | entries/s | RSS after (MB) |');
    console.log('| ---: | ---: | ---: | ---: | ---: |');
    for (let run = 1; run <= runs; run += 1) {
      const started = performance.now();
      const verdict = await verifyAuditChain(db.prisma);
      const seconds = (performance.now() - started) / 1000;
      if (!verdict.isIntact) throw new Error(`the generated chain is broken at ${verdict.brokenAt}: ${verdict.reason}`);
      const rssMb = process.memoryUsage().rss / 2 ** 20;
      console.log(
        `| ${run} | ${verdict.count.toLocaleString('en')} | ${seconds.toFixed(2)} | ${Math.round(verdict.count / seconds).toLocaleString('en')} | ${rssMb.toFixed(0)} |`,
      );
    }
    console.log(`peak RSS of the process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  } finally {
    await db.close();
  }
} finally {
  await scratch.drop();
}
