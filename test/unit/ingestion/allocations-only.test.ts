import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_HELD_JOBS, StepRowWatch } from '../../../src/modules/ingestion/allocations-only.js';
import { parseSacctText } from '../../../src/modules/ingestion/sacct.parser.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
const itemsOf = (name: string) =>
  parseSacctText(readFileSync(path.join(FIXTURES, name), 'utf8'), { timeZone: 'UTC', defaultCluster: 'lab' });
const refuse = () => new Error('refused');

/** Passes every record through the watch, one a line, as the sacct source does. */
function watched(items: SourceItem[], watch: StepRowWatch): SourceItem[] {
  return [...items.flatMap((item) => watch.pass([item])), ...watch.end()];
}
const totalCpuOf = (items: SourceItem[]) => items.map((item) => (item.kind === 'job' ? item.job.totalCpuSec : 'skip'));

describe('StepRowWatch over the lab real sacct output', () => {
  it.each(['used', 'allocated'] as const)('passes output with step rows on unchanged under the %s basis', (basis) => {
    const items = itemsOf('final/sacct-steps-extra.psv');
    expect(watched(items, new StepRowWatch(basis, refuse))).toEqual(items);
  });

  it('refuses -X output (job rows alone) under the used basis, naming the jobs that ran', () => {
    let found: unknown;
    const watch = new StepRowWatch('used', (what) => {
      found = what;
      return new Error('refused');
    });
    expect(() => watched(itemsOf('final/sacct-X.psv'), watch)).toThrow('refused');
    expect(found).toEqual({ ranWithoutSteps: 12, firstJob: '1', isCountCut: false });
  });

  it('passes -X output on under the allocated basis with TotalCPU not known', () => {
    const items = itemsOf('final/sacct-X.psv');
    const out = watched(items, new StepRowWatch('allocated', refuse));
    expect(out).toHaveLength(items.length);
    expect(totalCpuOf(out).every((value) => value === null)).toBe(true);
  });

  it(`holds at most ${MAX_HELD_JOBS} jobs that ran: past them the output is taken for -X's`, () => {
    const [first] = itemsOf('final/sacct-X.psv') as [SourceItem];
    const many = Array.from({ length: MAX_HELD_JOBS + 5 }, () => first);
    const used = new StepRowWatch('used', refuse);
    expect(() => many.flatMap((item) => used.pass([item]))).toThrow('refused');

    const allocated = new StepRowWatch('allocated', refuse);
    const out = many.flatMap((item) => allocated.pass([item]));
    // Released at the cut, and every record after it passed on at once.
    expect(out).toHaveLength(many.length);
    expect(totalCpuOf(out).every((value) => value === null)).toBe(true);
  });

  it('does not hold records of jobs that never ran past the same bound', () => {
    const pending = itemsOf('cancelled-pending/sacct.psv').filter(
      (item) => item.kind === 'job' && item.job.startAt === null,
    );
    expect(pending.length).toBeGreaterThan(0);
    const many = Array.from({ length: MAX_HELD_JOBS }, (_, index) => pending[index % pending.length] as SourceItem);
    const watch = new StepRowWatch('used', refuse);
    expect(many.flatMap((item) => watch.pass([item]))).toHaveLength(MAX_HELD_JOBS);
    expect(watch.end()).toEqual([]);
  });
});

/**
 * The sacct source reads a window's jobs that started before it again by id (readEarlierSteps), and that
 * output may hold jobs without a step alone: recorded on the lab (22.05/salloc-before-window), job 20 is an
 * `salloc ... sleep 50` in which nothing ran (no step), read again by id after a window whose read had
 * job 21's batch step. The re-read is watched as its window's output decided.
 */
describe('StepRowWatch.forReread: the watch of a re-read by id', () => {
  const CASE = 'salloc-before-window';

  it.each(['used', 'allocated'] as const)(
    'passes on a re-read of a job without steps alone when its window had step rows (%s basis)',
    (basis) => {
      const window = new StepRowWatch(basis, refuse);
      watched(itemsOf(`${CASE}/sacct.psv`), window);
      const reread = itemsOf(`${CASE}/sacct-jobs.psv`);
      const watch = window.forReread();
      // Watched as an output of its own, job 20 alone was refused as -X's under the used basis, and every
      // run after it too (a failed run does not move the window, so job 20 was read again alone each time).
      const out = watch ? watched(reread, watch) : reread;
      expect(out).toEqual(reread);
      expect(totalCpuOf(out)).toEqual([0]);
    },
  );

  it('keeps the re-read of an -X window without TotalCPU under the allocated basis', () => {
    const window = new StepRowWatch('allocated', refuse);
    watched(itemsOf('final/sacct-X.psv'), window);
    const watch = window.forReread();
    expect(watch).toBeDefined();
    const out = watched(itemsOf('final/sacct-X.psv').slice(0, 2), watch as StepRowWatch);
    expect(totalCpuOf(out)).toEqual([null, null]);
  });

  it('watches the re-read anew when no job of its window ran', () => {
    const window = new StepRowWatch('used', refuse);
    watched([], window);
    const watch = window.forReread();
    expect(() => watched(itemsOf(`${CASE}/sacct-jobs.psv`), watch as StepRowWatch)).toThrow('refused');
  });
});

/**
 * An output whose only job that ran has no step (22.05/salloc-alone: job 20, an salloc without srun, alone in
 * its window) is printed as -X output is: the watch names that job, for the sacct source to ask sacct about
 * its batch step, and passes the records on as read when sacct prints no job row for it.
 */
describe('StepRowWatch.firstRanWithoutSteps and endAsRead', () => {
  it('name the job to ask about, and pass the records on as read, TotalCPU 0 kept', () => {
    const items = itemsOf('salloc-alone/sacct.psv');
    const watch = new StepRowWatch('used', refuse);
    expect(items.flatMap((item) => watch.pass([item]))).toEqual([]);
    expect(watch.firstRanWithoutSteps()).toMatchObject({ jobId: '20', stepCount: 0, totalCpuSec: 0 });
    expect(watch.endAsRead()).toEqual(items);
    expect(watch.forReread()).toBeUndefined();
  });

  it.each([
    ['output with step rows', 'final/sacct-steps-extra.psv'],
    ['output whose jobs never ran', 'held-cancelled/sacct-j1.psv'],
  ])('name no job for %s', (_label, file) => {
    const watch = new StepRowWatch('used', refuse);
    for (const item of itemsOf(file)) watch.pass([item]);
    expect(watch.firstRanWithoutSteps()).toBeNull();
  });
});
