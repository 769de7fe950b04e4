/**
 * A job resized while it ran (scontrol update JobId=2 NumNodes=1, from 2 nodes), as Slurm's accounting
 * keeps it: slurmdbd closes the record it had with the state RESIZING and End the resize time, and the
 * job goes on as a new record of the same JobID whose Submit and Start are that resize time (the lab, a
 * single node without permit_job_expansion, cannot resize a job: "Node count specification invalid").
 * Built from the lab's job 2 (reused-id-before: alice, 03:13:52-03:13:54, steps 2.0 and 2.1), resized
 * at 03:13:53 after its step 2.0, as sacct --parsable2 --duplicates prints it and as slurmrestd answers it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const CAPTURE = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/reused-id-before');

export const RESIZED_WINDOW = { start: new Date('2026-12-04T03:13:00Z'), end: new Date('2026-12-04T03:15:00Z') };
export const RESIZED_AT = new Date('2026-12-04T03:13:53Z');

const HEADER =
  'JobID|JobIDRaw|Cluster|User|JobName|Account|Partition|QOS|State|ExitCode|Submit|Start|End|Elapsed|ElapsedRaw|TotalCPU|CPUTimeRAW|ReqTRES|AllocTRES|ReqCPUS|AllocCPUS|ReqMem|AveRSS|MaxRSS|ConsumedEnergyRaw|NodeList|AllocNodes|TimelimitRaw';

/** sacct's output of the window: the record the resize closed, then the record after it. */
export const RESIZED_SACCT = `${[
  HEADER,
  '2|2|lab|alice|resized|physics|debug|normal|RESIZING|0:0|2026-12-04T03:13:48|2026-12-04T03:13:52|2026-12-04T03:13:53|00:00:01|1|00:00.008|2|billing=2,cpu=2,mem=200M,node=2|billing=2,cpu=2,mem=200M,node=2|2|2|200M|||0|vm[1-2]|2|UNLIMITED',
  '2.0|2.0|lab||sleep|physics|||COMPLETED|0:0|2026-12-04T03:13:52|2026-12-04T03:13:52|2026-12-04T03:13:53|00:00:01|1|00:00.008|2||cpu=2,mem=200M,node=2|2|2||||0|vm[1-2]|2|',
  '2|2|lab|alice|resized|physics|debug|normal|COMPLETED|0:0|2026-12-04T03:13:53|2026-12-04T03:13:53|2026-12-04T03:13:54|00:00:01|1|00:00.009|1|billing=1,cpu=1,mem=100M,node=1|billing=1,cpu=1,mem=100M,node=1|1|1|100M|||0|vm1|1|UNLIMITED',
  '2.1|2.1|lab||sleep|physics|||COMPLETED|0:0|2026-12-04T03:13:53|2026-12-04T03:13:53|2026-12-04T03:13:54|00:00:01|1|00:00.009|1||cpu=1,mem=100M,node=1|1|1||||0|vm1|1|',
].join('\n')}\n`;

type Json = Record<string, unknown>;

/** slurmrestd v0.0.38's answer for the window (`stateArrays`: v0.0.39+'s state arrays, base first). */
export function resizedRestAnswer(options: { stateArrays?: boolean } = {}): { jobs: Json[] } {
  const body = JSON.parse(readFileSync(path.join(CAPTURE, 'rest-dbv0.0.38-jobs.json'), 'utf8')) as { jobs: Json[] };
  const job2 = body.jobs.find((job) => job.job_id === 2) as Json;
  const steps = job2.steps as Json[];
  const stepOf = (id: number) => steps.find((step) => (step.step as Json).id === id) as Json;
  const tres = (cpus: number, memMb: number, nodes: number) => [
    { type: 'cpu', name: null, id: 1, count: cpus },
    { type: 'mem', name: null, id: 2, count: memMb },
    { type: 'node', name: null, id: 4, count: nodes },
    { type: 'billing', name: null, id: 5, count: cpus },
  ];
  const part = (
    state: string,
    time: { submission: number; start: number; end: number },
    size: [number, number, number],
    step: Json,
  ): Json => {
    const record = structuredClone(job2);
    const current = options.stateArrays ? (state === 'RESIZING' ? ['PENDING', 'RESIZING'] : [state]) : state;
    record.name = 'resized';
    record.state = { current, reason: 'None' };
    record.time = { ...(job2.time as Json), ...time, eligible: time.submission, elapsed: time.end - time.start };
    record.tres = { allocated: tres(...size), requested: tres(...size) };
    record.required = { CPUs: size[0], memory: size[1] };
    record.allocation_nodes = size[2];
    record.steps = [structuredClone(step)];
    return record;
  };
  const at = (iso: string) => Date.parse(iso) / 1000;
  return {
    jobs: [
      part(
        'RESIZING',
        { submission: at('2026-12-04T03:13:48Z'), start: at('2026-12-04T03:13:52Z'), end: at('2026-12-04T03:13:53Z') },
        [2, 200, 2],
        stepOf(0),
      ),
      part(
        'COMPLETED',
        { submission: at('2026-12-04T03:13:53Z'), start: at('2026-12-04T03:13:53Z'), end: at('2026-12-04T03:13:54Z') },
        [1, 100, 1],
        stepOf(1),
      ),
    ],
  };
}
