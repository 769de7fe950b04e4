/**
 * Against a real Slurm 22.05: when SLURM_LAB=1 and ../shared/slurm can start the
 * single-node lab (root, apt, a cgroup fs), submits a few short jobs, waits for their
 * accounting, reads them through slurmrestd and through sacct, and checks that both
 * give the same jobs with the same hours. Skipped, with the reason, otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import type { JobSource } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import type { NormalizedJob, SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { createSlurmRestSource } from '../../../src/modules/ingestion/slurm-rest.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const SLURM_DIR = path.resolve(import.meta.dirname, '../../../../shared/slurm');
const LAB_DIR = process.env.SLURM_LAB_DIR ?? '/tmp/slurmlab';
const TOKEN_FILE = path.join(LAB_DIR, 'jwt/token.env');
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

function whyLabCannotRun(): string | null {
  if (process.env.SLURM_LAB !== '1') return 'SLURM_LAB is not 1';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(path.join(SLURM_DIR, 'start-slurm-lab.sh'))) return `${SLURM_DIR}/start-slurm-lab.sh not found`;
  if (!existsSync('/usr/bin/apt-get')) return 'apt-get not found';
  if (!existsSync('/sys/fs/cgroup')) return 'no cgroup filesystem at /sys/fs/cgroup';
  return null;
}

const reason = whyLabCannotRun();
if (reason) console.warn(`Real Slurm ingestion test skipped: ${reason}.`);

const as = (user: string, args: string[]) =>
  execFileSync('runuser', ['-u', user, '--', 'bash', '-c', 'cd ~ && "$@"', '_', ...args], { encoding: 'utf8' }).trim();

async function collect(iterable: AsyncIterable<SourceItem>): Promise<NormalizedJob[]> {
  const jobs: NormalizedJob[] = [];
  for await (const item of iterable) if (item.kind === 'job') jobs.push(item.job);
  return jobs;
}

const hours = (job: NormalizedJob) => ({
  jobId: job.jobId,
  jobKey: job.jobKey,
  user: job.user,
  account: job.account,
  state: job.state,
  startAt: job.startAt?.toISOString(),
  endAt: job.endAt?.toISOString(),
  elapsedSec: job.elapsedSec,
  allocCpus: job.allocCpus,
  allocMemMb: job.allocMemMb,
  allocGpus: job.allocGpus,
  coreHours: (job.allocCpus * job.elapsedSec) / 3600,
  gpuHours: (job.allocGpus * job.elapsedSec) / 3600,
  totalCpuSec: job.totalCpuSec,
  stepCount: job.stepCount,
});

describe.skipIf(reason !== null)('real Slurm 22.05: slurmrestd and sacct agree', () => {
  let labError: string | null = null;
  let wasRunning = false;
  let submitted: string[] = [];
  let window: { start: Date; end: Date };
  let db: TestDatabase;

  beforeAll(async () => {
    wasRunning = existsSync(TOKEN_FILE) && spawnSync('scontrol', ['ping'], { encoding: 'utf8' }).stdout?.includes('UP');
    const started = spawnSync('bash', [path.join(SLURM_DIR, 'start-slurm-lab.sh')], {
      encoding: 'utf8',
      timeout: 240_000,
    });
    if (started.status !== 0) {
      const otherMariadb = spawnSync('pgrep', ['-x', 'mariadbd'], { encoding: 'utf8' }).stdout.trim();
      labError = `the lab did not start: ${(started.stderr || started.stdout).trim().split('\n').slice(-3).join(' / ')}${
        otherMariadb
          ? ` (a mariadbd the lab did not start is running, pid ${otherMariadb}: start-stop-daemon refuses a second one)`
          : ''
      }`;
      console.warn(`Real Slurm ingestion test skipped: ${labError}`);
      return;
    }
    db = await createTestDatabase();
    const begin = new Date(Date.now() - 120_000);
    submitted = [
      as('alice', [
        'sbatch',
        '--parsable',
        '-A',
        'physics',
        '-J',
        'lab-single',
        '-c',
        '1',
        '--mem=100M',
        '--wrap',
        'sleep 3',
      ]),
      as('bob', [
        'sbatch',
        '--parsable',
        '-A',
        'chemistry',
        '-J',
        'lab-steps',
        '-c',
        '2',
        '--mem=200M',
        '--wrap',
        'srun -n 1 -c 2 bash -c "timeout 3 sh -c \\"while :; do :; done\\"; true"',
      ]),
      as('bob', [
        'sbatch',
        '--parsable',
        '-A',
        'physics',
        '-J',
        'lab-array',
        '--array=1-2',
        '--mem=100M',
        '--wrap',
        'sleep 2',
      ]),
    ].map((id) => id.split(';')[0] as string);
    // Wait until every submitted job (and array task) is finished in accounting.
    const deadline = Date.now() + 180_000;
    for (;;) {
      const states = execFileSync('sacct', ['-X', '-n', '-P', '-o', 'State', '-j', submitted.join(',')], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .filter(Boolean);
      const isDone = states.length >= 4 && states.every((state) => /^(COMPLETED|FAILED|CANCELLED|TIMEOUT)/.test(state));
      if (isDone) break;
      if (Date.now() > deadline) throw new Error(`jobs did not finish: ${states.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    // slurmdbd receives the end records asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    window = { start: begin, end: new Date(Date.now() + 60_000) };
  }, 300_000);

  afterAll(async () => {
    await db?.drop();
    // Stop what this test started, also after a half-finished start.
    if (!wasRunning) spawnSync('bash', [path.join(SLURM_DIR, 'stop-slurm-lab.sh')], { timeout: 120_000 });
  }, 180_000);

  it('finds the same jobs with the same hours through slurmrestd and through sacct, and stores them', async (context) => {
    if (labError) context.skip();
    const token = Object.fromEntries(
      readFileSync(TOKEN_FILE, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(/=(.*)/s).slice(0, 2)),
    ) as Record<string, string>;
    const rest = createSlurmRestSource({
      url: token.SLURM_REST_URL as string,
      user: token.SLURM_USER_NAME as string,
      token: undefined,
      tokenFile: TOKEN_FILE,
      apiVersion: undefined,
      caFile: undefined,
      timeZone: TIME_ZONE,
      defaultCluster: 'lab',
      timeoutMs: 20_000,
      maxAttempts: 3,
      retryBaseMs: 500,
    });
    const sacct = createSacctSource({
      sacctPath: 'sacct',
      timeZone: TIME_ZONE,
      cluster: undefined,
      defaultCluster: 'lab',
      timeoutMs: 60_000,
    });
    const ours = (job: NormalizedJob) => submitted.some((id) => job.jobKey === id || job.jobKey.startsWith(`${id}_`));
    const viaRest = (await collect(rest.read(window))).filter(ours);
    const viaSacct = (await collect(sacct.read(window))).filter(ours);
    expect(viaRest.length).toBe(4);
    const byKey = (jobs: NormalizedJob[]) => jobs.map(hours).sort((a, b) => a.jobKey.localeCompare(b.jobKey));
    expect(byKey(viaRest)).toEqual(byKey(viaSacct));
    const withSteps = viaRest.find((job) => job.name === 'lab-steps');
    expect(withSteps?.stepCount).toBeGreaterThanOrEqual(2);
    expect(withSteps?.totalCpuSec).toBeGreaterThan(1);

    // Both ways through the service into the database: the second source changes no hours.
    const service = (source: JobSource) =>
      createIngestionService({
        db,
        sources: [source],
        unconfigured: {},
        logger: createLogger('silent'),
        metrics: createMetrics(),
        overlapSec: 0,
        initialLookbackSec: 3600,
      });
    const first = await service(rest).runOnce({ trigger: 'manual', window });
    expect(first).toMatchObject({ status: 'finished', run: { outcome: 'success', source: 'slurmrestd' } });
    const stored = async () =>
      (
        await db.pool.query(
          `SELECT job_key, elapsed_sec, alloc_cpus, total_cpu_sec::text FROM slurm_jobs WHERE job_key = ANY($1) OR split_part(job_key, '_', 1) = ANY($1) ORDER BY job_key`,
          [submitted],
        )
      ).rows;
    const afterRest = await stored();
    expect(afterRest).toHaveLength(4);
    const second = await service(sacct).runOnce({ trigger: 'manual', window });
    expect(second).toMatchObject({ status: 'finished', run: { outcome: 'success', source: 'sacct' } });
    expect(await stored()).toEqual(afterRest);
  }, 120_000);
});
