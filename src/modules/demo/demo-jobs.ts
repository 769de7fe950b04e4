import { sumStepMemGbHours } from '../ingestion/slurm-job.model.js';
import { formatLocalTimestamp } from '../ingestion/slurm-time.parser.js';
/**
 * Deterministic demo Slurm jobs: a few thousand jobs with steps for a few dozen
 * users over the last 90 days, written as `sacct --parsable2` output (the same
 * columns `../shared/slurm/capture.sh` asks a real Slurm for).
 */

import path from 'node:path';

export interface DemoStep {
  /** `batch`, `extern` or an srun step number. */
  stepId: string;
  name: string;
  elapsedSec: number;
  totalCpuSec: number;
  aveRssKb: number;
  maxRssKb: number;
}

export interface DemoJob {
  jobId: number;
  user: string;
  account: string;
  partition: string;
  qos: string;
  name: string;
  state: 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMEOUT' | 'OUT_OF_MEMORY';
  exitCode: string;
  submit: Date;
  start: Date;
  end: Date;
  elapsedSec: number;
  allocCpus: number;
  allocMemMb: number;
  allocGpus: number;
  allocNodes: number;
  nodeList: string;
  timelimitMin: number;
  steps: DemoStep[];
}

export const DEMO_CLUSTER = 'demo';

/** Path of the generated sacct file the demo's file source reads (pure, so config can use it). */
export function demoSacctFilePath(dataDir: string): string {
  return path.join(dataDir, 'demo', 'sacct-demo.psv');
}

const GIVEN_NAMES = [
  'carol',
  'dave',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'mallory',
  'niaj',
  'olivia',
  'peggy',
  'rupert',
  'sybil',
  'trent',
  'ursula',
  'victor',
  'walter',
  'xena',
  'yusuf',
  'zoe',
  'arun',
  'bao',
  'chai',
  'dara',
  'emi',
  'farid',
  'gita',
  'hana',
  'isra',
];

/** alice and bob (the demo logins) plus thirty more researchers. */
export const DEMO_RESEARCHERS = ['alice', 'bob', ...GIVEN_NAMES];

/** The research accounts jobs are charged to. */
export const JOB_ACCOUNTS = ['physics', 'chemistry', 'biology', 'climate', 'materials'];
const JOB_NAMES = ['md-run', 'train', 'postproc', 'sweep', 'assemble', 'qe-scf', 'cfd', 'render', 'align', 'sim'];

/** A small deterministic PRNG (mulberry32) so every generated database is the same. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface JobShape {
  jobId: number;
  user: string;
  /** Called where the account is drawn, so the random sequence stays stable. */
  accountOf: (user: string, pick: <T>(items: readonly T[]) => T) => string;
  /** Jobs end between `now - spanMs` and `now`. */
  now: Date;
  spanMs: number;
}

/**
 * One finished job with its batch, extern and srun steps, drawn from `random`: about
 * 20% on GPUs, mostly COMPLETED with FAILED, CANCELLED, TIMEOUT and OUT_OF_MEMORY.
 * Shared by the demo seed and the benchmark data generator.
 */
export function generateJob(random: () => number, shape: JobShape): DemoJob {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const { user } = shape;
  const isGpu = random() < 0.2;
  const allocCpus = pick([1, 2, 4, 8, 16, 32]);
  const allocNodes = allocCpus >= 32 && random() < 0.5 ? 2 : 1;
  const allocGpus = isGpu ? pick([1, 2, 4]) : 0;
  const timelimitMin = pick([30, 60, 240, 720, 1440]);
  const roll = random();
  const state: DemoJob['state'] =
    roll < 0.8
      ? 'COMPLETED'
      : roll < 0.9
        ? 'FAILED'
        : roll < 0.96
          ? 'CANCELLED'
          : roll < 0.99
            ? 'TIMEOUT'
            : 'OUT_OF_MEMORY';
  const elapsedSec =
    state === 'TIMEOUT' ? timelimitMin * 60 : Math.max(5, Math.floor(random() * random() * timelimitMin * 60));
  const end = new Date(shape.now.getTime() - Math.floor(random() * shape.spanMs));
  end.setUTCMilliseconds(0);
  const start = new Date(end.getTime() - elapsedSec * 1000);
  const submit = new Date(start.getTime() - Math.floor(random() * 3600) * 1000);
  const efficiency = 0.3 + random() * 0.7;
  const allocMemMb = allocCpus * pick([1024, 2048, 4096]);
  const batchCpu = Math.min(elapsedSec, 2 + random() * 10);
  const steps: DemoStep[] = [
    {
      stepId: 'batch',
      name: 'batch',
      elapsedSec,
      totalCpuSec: round3(batchCpu),
      aveRssKb: 4000 + Math.floor(random() * 20_000),
      maxRssKb: 0,
    },
    { stepId: 'extern', name: 'extern', elapsedSec, totalCpuSec: 0, aveRssKb: 0, maxRssKb: 0 },
  ];
  const srunSteps = random() < 0.6 ? 1 + Math.floor(random() * 3) : 0;
  let offset = 0;
  for (let step = 0; step < srunSteps; step++) {
    const stepElapsed = Math.max(1, Math.floor((elapsedSec - offset) / (srunSteps - step)));
    offset += stepElapsed;
    const rssKb = Math.floor(allocMemMb * 1024 * (0.1 + random() * 0.8));
    steps.push({
      stepId: String(step),
      name: pick(['python', 'mpirun', 'bash', 'julia']),
      elapsedSec: stepElapsed,
      totalCpuSec: round3(stepElapsed * allocCpus * efficiency),
      aveRssKb: rssKb,
      maxRssKb: Math.floor(rssKb * (1 + random() * 0.3)),
    });
  }
  for (const step of steps) step.maxRssKb = Math.max(step.maxRssKb, step.aveRssKb);
  return {
    jobId: shape.jobId,
    user,
    account: shape.accountOf(user, pick),
    partition: isGpu ? 'gpu' : pick(['compute', 'compute', 'long']),
    qos: pick(['normal', 'normal', 'high']),
    name: pick(JOB_NAMES),
    state,
    exitCode: state === 'COMPLETED' ? '0:0' : state === 'FAILED' ? '1:0' : state === 'CANCELLED' ? '0:15' : '0:0',
    submit,
    start,
    end,
    elapsedSec,
    allocCpus,
    allocMemMb,
    allocGpus,
    allocNodes,
    nodeList:
      allocNodes === 2
        ? 'cn[01-02]'
        : isGpu
          ? `gpu0${1 + Math.floor(random() * 4)}`
          : `cn0${1 + Math.floor(random() * 8)}`,
    timelimitMin,
    steps,
  };
}

/** Generates `count` finished jobs ending between `now - days` and `now`. */
export function generateDemoJobs(options: { count: number; now: Date; days: number; seed?: number }): DemoJob[] {
  const random = createRandom(options.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const spanMs = options.days * 86_400_000;
  const jobs: DemoJob[] = [];
  for (let index = 0; index < options.count; index++) {
    const user = index % 7 === 0 ? 'alice' : index % 11 === 0 ? 'bob' : pick(DEMO_RESEARCHERS);
    jobs.push(
      generateJob(random, {
        jobId: 1000 + index,
        user,
        accountOf: (name, pickFrom) =>
          name === 'alice' ? 'physics' : name === 'bob' ? 'chemistry' : pickFrom(JOB_ACCOUNTS),
        now: options.now,
        spanMs,
      }),
    );
  }
  return jobs.sort((a, b) => a.end.getTime() - b.end.getTime());
}

/**
 * The sums a slurm_jobs row stores besides the steps: used CPU, memory GB-hours (decimal text, summed
 * exactly as ingestion sums a job's steps, so a generated row holds what ingesting its sacct line would),
 * peak RSS, TRES text.
 */
export function summarizeJob(job: DemoJob): {
  totalCpuSec: number;
  stepMemGbHours: string;
  maxRssBytes: number;
  tres: string;
} {
  let totalCpuSec = 0;
  let maxRssKb = 0;
  for (const step of job.steps) {
    totalCpuSec += step.totalCpuSec;
    maxRssKb = Math.max(maxRssKb, step.maxRssKb);
  }
  const stepMemGbHours = sumStepMemGbHours(
    job.steps.map((step) => ({ id: step.stepId, aveRssBytes: step.aveRssKb * 1024, elapsedSec: step.elapsedSec })),
  );
  const gres = job.allocGpus > 0 ? `,gres/gpu=${job.allocGpus}` : '';
  const tres = `billing=${job.allocCpus},cpu=${job.allocCpus}${gres},mem=${job.allocMemMb}M,node=${job.allocNodes}`;
  return { totalCpuSec, stepMemGbHours, maxRssBytes: maxRssKb * 1024, tres };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Columns of the sacct file, as `sacct --parsable2 --format=...` prints them. */
export const SACCT_DEMO_COLUMNS = [
  'JobID',
  'JobIDRaw',
  'Cluster',
  'User',
  'JobName',
  'Account',
  'Partition',
  'QOS',
  'State',
  'ExitCode',
  'Submit',
  'Start',
  'End',
  'Elapsed',
  'ElapsedRaw',
  'TotalCPU',
  'CPUTimeRAW',
  'ReqTRES',
  'AllocTRES',
  'AveRSS',
  'MaxRSS',
  'NodeList',
  'AllocNodes',
  'TimelimitRaw',
] as const;

/** `[D-]HH:MM:SS` as sacct prints Elapsed. */
export function formatSlurmDuration(totalSeconds: number): string {
  const seconds = Math.floor(totalSeconds);
  const days = Math.floor(seconds / 86_400);
  const hh = String(Math.floor((seconds % 86_400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, '0');
  const ss = String(seconds % 60).padStart(2, '0');
  return days > 0 ? `${days}-${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

/** TotalCPU as sacct prints it: `MM:SS.mmm` under an hour, `[D-]HH:MM:SS` above. */
export function formatSlurmCpuTime(totalSeconds: number): string {
  if (totalSeconds >= 3600) return formatSlurmDuration(totalSeconds);
  const minutes = String(Math.floor(totalSeconds / 60)).padStart(2, '0');
  const seconds = (totalSeconds % 60).toFixed(3).padStart(6, '0');
  return `${minutes}:${seconds}`;
}

/** Renders jobs (allocation row, then its steps) as an sacct --parsable2 file with a header row. */
export function renderSacctFile(jobs: DemoJob[], timeZone: string): string {
  const lines: string[] = [SACCT_DEMO_COLUMNS.join('|')];
  for (const job of jobs) {
    const gres = job.allocGpus > 0 ? `,gres/gpu=${job.allocGpus}` : '';
    const tres = `billing=${job.allocCpus},cpu=${job.allocCpus}${gres},mem=${job.allocMemMb}M,node=${job.allocNodes}`;
    const jobTotalCpu = job.steps.reduce((sum, step) => sum + step.totalCpuSec, 0);
    const submit = formatLocalTimestamp(job.submit, timeZone);
    const start = formatLocalTimestamp(job.start, timeZone);
    const end = formatLocalTimestamp(job.end, timeZone);
    const row: Record<(typeof SACCT_DEMO_COLUMNS)[number], string> = {
      JobID: String(job.jobId),
      JobIDRaw: String(job.jobId),
      Cluster: DEMO_CLUSTER,
      User: job.user,
      JobName: job.name,
      Account: job.account,
      Partition: job.partition,
      QOS: job.qos,
      State: job.state === 'CANCELLED' ? `CANCELLED by 0` : job.state,
      ExitCode: job.exitCode,
      Submit: submit,
      Start: start,
      End: end,
      Elapsed: formatSlurmDuration(job.elapsedSec),
      ElapsedRaw: String(job.elapsedSec),
      TotalCPU: formatSlurmCpuTime(jobTotalCpu),
      CPUTimeRAW: String(job.elapsedSec * job.allocCpus),
      ReqTRES: tres,
      AllocTRES: tres,
      AveRSS: '',
      MaxRSS: '',
      NodeList: job.nodeList,
      AllocNodes: String(job.allocNodes),
      TimelimitRaw: String(job.timelimitMin),
    };
    lines.push(SACCT_DEMO_COLUMNS.map((column) => row[column]).join('|'));
    for (const step of job.steps) {
      const stepRow = {
        ...row,
        JobID: `${job.jobId}.${step.stepId}`,
        JobIDRaw: `${job.jobId}.${step.stepId}`,
        User: '',
        JobName: step.name,
        Partition: '',
        QOS: '',
        State: job.state === 'CANCELLED' ? 'CANCELLED' : job.state,
        Elapsed: formatSlurmDuration(step.elapsedSec),
        ElapsedRaw: String(step.elapsedSec),
        TotalCPU: formatSlurmCpuTime(step.totalCpuSec),
        CPUTimeRAW: String(step.elapsedSec * job.allocCpus),
        ReqTRES: '',
        AveRSS: step.aveRssKb > 0 ? `${step.aveRssKb}K` : '',
        MaxRSS: step.maxRssKb > 0 ? `${step.maxRssKb}K` : '',
        TimelimitRaw: '',
      };
      lines.push(SACCT_DEMO_COLUMNS.map((column) => stepRow[column]).join('|'));
    }
  }
  return `${lines.join('\n')}\n`;
}
