/**
 * `npm run bench:ingest [-- --rows 1000000]`: writes an sacct --parsable2 file of about
 * that many rows (jobs and their steps) to a temp dir, ingests it into a fresh database
 * through the file source and prints rows/s and peak RSS; then an incremental run with
 * nothing new, and a full re-scan of the unchanged file for a narrow window.
 * Uses DATABASE_URL (must be allowed to CREATE DATABASE) or an embedded PostgreSQL.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DEFAULT_DB_QUERY_TIMEOUT_MS } from '../src/config/config.schema.js';
import { openDatabase } from '../src/db/database.js';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { applyMigrations } from '../src/db/migrations.js';
import { formatSlurmCpuTime, formatSlurmDuration } from '../src/modules/demo/demo-jobs.js';
import { createIngestionService } from '../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../src/modules/metrics/metrics.js';
import { createLogger } from '../src/shared/logger.js';

const HEADER =
  'JobID|JobIDRaw|Cluster|User|JobName|Account|Partition|QOS|State|ExitCode|Submit|Start|End|Elapsed|ElapsedRaw|TotalCPU|CPUTimeRAW|ReqTRES|AllocTRES|AveRSS|MaxRSS|NodeList|AllocNodes|TimelimitRaw';

/** Streams about `rows` rows to `file` without keeping them; returns the rows written. */
async function writeSacctFile(file: string, rows: number, now: Date): Promise<number> {
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const write = async (line: string) => {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  };
  await write(HEADER);
  let written = 0;
  const spanMs = 365 * 86_400_000;
  for (let job = 1; written < rows; job++) {
    const cpus = [1, 2, 4, 8, 16][Math.floor(random() * 5)] as number;
    const elapsed = 10 + Math.floor(random() * 20_000);
    const end = new Date(now.getTime() - Math.floor(random() * spanMs));
    const start = new Date(end.getTime() - elapsed * 1000);
    const fmt = (date: Date) => date.toISOString().slice(0, 19);
    const tres = `billing=${cpus},cpu=${cpus},mem=${cpus * 2048}M,node=1`;
    const srun = Math.floor(random() * 3);
    const steps = ['batch', 'extern', ...Array.from({ length: srun }, (_, index) => String(index))];
    const cpuUsed = steps.map((step) => (step === 'extern' ? 0 : Math.round(elapsed * cpus * random() * 1000) / 1000));
    const common = `demo|u${job % 500}|job${job % 37}|acct${job % 20}|compute|normal|COMPLETED|0:0|${fmt(start)}|${fmt(start)}|${fmt(end)}`;
    const total = cpuUsed.reduce((sum, value) => sum + value, 0);
    await write(
      `${job}|${job}|${common.replace(/^demo\|/, 'demo|')}|${formatSlurmDuration(elapsed)}|${elapsed}|${formatSlurmCpuTime(total)}|${elapsed * cpus}|${tres}|${tres}|||cn01|1|600`,
    );
    written += 1;
    for (const [index, step] of steps.entries()) {
      const rss = 1000 + Math.floor(random() * 4_000_000);
      await write(
        `${job}.${step}|${job}.${step}|demo||${step}|acct${job % 20}|||COMPLETED|0:0|${fmt(start)}|${fmt(start)}|${fmt(end)}|${formatSlurmDuration(elapsed)}|${elapsed}|${formatSlurmCpuTime(cpuUsed[index] as number)}|${elapsed * cpus}||cpu=${cpus}|${rss}K|${rss + 100}K|cn01|1|`,
      );
      written += 1;
    }
  }
  out.end();
  await once(out, 'finish');
  return written;
}

async function main() {
  const { values } = parseArgs({
    options: { rows: { type: 'string', default: '1000000' }, generate: { type: 'string' }, now: { type: 'string' } },
  });
  const rows = Number(values.rows);
  if (values.generate) {
    console.log(await writeSacctFile(values.generate, rows, new Date(values.now ?? Date.now())));
    return;
  }
  const logger = createLogger('warn');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ingest-bench-'));
  // A bench script is not src/: it reads its database the way the test setup does.
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres(path.join(dir, 'pg'), logger);
    adminUrl = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const name = `bench_ingest_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    await applyMigrations(url.toString(), logger);
    const file = path.join(dir, 'sacct-bench.psv');
    let started = Date.now();
    // Generated in a child process so this process's peak RSS is the ingestion's alone.
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--generate', file, '--rows', String(rows)],
      { encoding: 'utf8' },
    );
    if (child.status !== 0) throw new Error(`generating the file failed: ${child.stderr}`);
    const written = Number(child.stdout.trim());
    const now = new Date();
    console.log(`generated ${written} rows in ${((Date.now() - started) / 1000).toFixed(1)} s: ${file}`);

    const db = openDatabase(url.toString(), { poolMax: 4, queryTimeoutMs: DEFAULT_DB_QUERY_TIMEOUT_MS, logger });
    const source = createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: 'demo' });
    const service = createIngestionService({
      db,
      sources: [source],
      unconfigured: {},
      logger,
      metrics: createMetrics(),
      overlapSec: 900,
      initialLookbackSec: 86_400,
    });
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    started = Date.now();
    const full = await service.runOnce({ trigger: 'backfill', window: { start: new Date(0), end: now } });
    const fullSec = (Date.now() - started) / 1000;
    clearInterval(sampler);
    if (full.status !== 'finished') throw new Error('the run was skipped');
    console.log(
      `full ingest: ${written} rows (${full.run.seen} jobs, ${full.run.inserted} inserted, ${full.run.skipped} skipped) in ${fullSec.toFixed(2)} s = ${Math.round(written / fullSec)} rows/s; peak RSS ${(peakRss / 1024 ** 2).toFixed(0)} MiB (sampled), maxRSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
    );

    started = Date.now();
    const incremental = await service.runOnce({ trigger: 'schedule' });
    const incrementalMs = Date.now() - started;
    if (incremental.status !== 'finished') throw new Error('the run was skipped');
    console.log(
      `incremental run, nothing new: ${incrementalMs} ms (${incremental.run.inserted} inserted, ${incremental.run.updated} updated; ${incremental.run.sourceNotes.file})`,
    );

    // Touch the file: the shortcut no longer applies and the whole file is scanned for the window.
    await utimes(file, new Date(), new Date());
    started = Date.now();
    const rescan = await service.runOnce({ trigger: 'schedule' });
    if (rescan.status !== 'finished') throw new Error('the run was skipped');
    console.log(
      `incremental run after touching the file (full scan, narrow window): ${Date.now() - started} ms (${rescan.run.seen} jobs in window)`,
    );
    await db.close();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    await stopEmbedded?.();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
