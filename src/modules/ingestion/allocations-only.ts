/**
 * sacct prints a job's CPU time (TotalCPU) on its steps' rows, and its job row carries their sum; with
 * `-X` (`--allocations`: job rows alone) it reads no steps and prints TotalCPU 0 for every job (seen on the
 * lab, final/sacct-X.psv). Such output is told by a job that ran with no step row in an output that has
 * not one: real sacct output without -X prints each job's rows (`batch`, `extern`, srun steps) right
 * under it, so the first job that ran shows it at once.
 */
import type { CpuBasis } from '../pricing/pricing.js';
import type { NormalizedJob, SourceItem } from './slurm-job.model.js';

/** A job as sacct -X prints every one: it ran, with no step row, and TotalCPU 0. */
export function ranWithoutSteps(job: NormalizedJob): boolean {
  return job.stepCount === 0 && job.startAt !== null && job.elapsedSec > 0 && job.totalCpuSec === 0;
}

/** What an output without step rows held: its jobs that ran, and the first of them. */
export interface AllocationsOnly {
  ranWithoutSteps: number;
  firstJob: string;
  /** Counted up to MAX_HELD_JOBS only: the read stopped there. */
  isCountCut: boolean;
}

/**
 * The most jobs that ran without a step row held back while no step row has been seen: no real sacct
 * output without -X has this many in a row (each job's batch step follows its row), so past it the
 * output is taken for -X's without reading, or holding, the rest.
 */
export const MAX_HELD_JOBS = 1000;

/**
 * Under PRICING_CPU_BASIS=allocated an -X output is read, but its TotalCPU 0 is no figure: stored as
 * one, a later switch to the used basis billed those jobs no CPU time. It is stored as not known
 * (null), which the used basis prices from CPUTimeRAW (docs/pricing.md) and which keeps a TotalCPU
 * another source stored (ingestion.repository.ts, KEPT_WHEN_UNKNOWN).
 */
export function withoutTotalCpu(item: SourceItem): SourceItem {
  if (item.kind !== 'job' || item.job.stepCount > 0 || item.job.totalCpuSec === null) return item;
  return { ...item, job: { ...item.job, totalCpuSec: null } };
}

/**
 * Watches one sacct output as it streams. Until a step row is seen, the records are held back (at most
 * MAX_HELD_JOBS jobs that ran, or MAX_HELD_JOBS records while none of them ran); once one is, they are passed on and every later record costs one flag
 * test. An output that ends (or reaches MAX_HELD_JOBS) with jobs that ran and no step row is -X's:
 * under the used basis `refuse` is thrown before any of it is passed on, under the allocated basis its
 * jobs are passed on without their TotalCPU (withoutTotalCpu).
 */
export class StepRowWatch {
  private isDecided = false;
  private isAllocationsOnly = false;
  private hasSeenStepRow = false;
  /** Read as it is although it has no step row: SACCT_PATH prints step rows (endAsRead). */
  private isReadAsIs = false;
  /** The first job that ran without a step row, which the sacct source asks sacct about (firstRanWithoutSteps). */
  private firstRan: NormalizedJob | null = null;
  private held: SourceItem[] = [];
  private found: AllocationsOnly = { ranWithoutSteps: 0, firstJob: '', isCountCut: false };

  constructor(
    private readonly cpuBasis: CpuBasis,
    private readonly refuse: (found: AllocationsOnly) => Error,
  ) {}

  /** The records to pass on now, of those the parser gave for a line. */
  pass(items: SourceItem[]): SourceItem[] {
    if (this.isDecided) return this.isAllocationsOnly ? items.map(withoutTotalCpu) : items;
    for (const item of items) {
      if (item.kind !== 'job') continue;
      if (item.job.stepCount > 0) {
        this.isDecided = true;
        this.hasSeenStepRow = true;
        const out = this.held.length > 0 ? [...this.held, ...items] : items;
        this.held = [];
        return out;
      }
      if (ranWithoutSteps(item.job)) {
        this.found.ranWithoutSteps += 1;
        this.found.firstJob ||= item.job.jobKey;
        this.firstRan ??= item.job;
      }
    }
    for (const item of items) this.held.push(item);
    if (this.found.ranWithoutSteps >= MAX_HELD_JOBS) {
      this.found.isCountCut = true;
      return this.decideAllocationsOnly();
    }
    // None of them ran (cancelled while pending): their TotalCPU of 0 is right whatever the output, and
    // holding them would cost memory for nothing.
    if (this.found.ranWithoutSteps === 0 && this.held.length >= MAX_HELD_JOBS) {
      const out = this.held;
      this.held = [];
      return out;
    }
    return [];
  }

  /** The records still held back once the output has ended; throws when it is -X's under the used basis. */
  end(): SourceItem[] {
    if (this.isDecided) return [];
    if (this.found.ranWithoutSteps === 0) {
      this.isDecided = true;
      const out = this.held;
      this.held = [];
      return out;
    }
    return this.decideAllocationsOnly();
  }

  /**
   * The watch for reading this output's jobs again by id (sacct.source.ts, readEarlierSteps), once this
   * output has ended: none when it had step rows, as the re-read is run with the same SACCT_PATH and the
   * same columns, so it is not -X's either, and its jobs may all be without a step (an `salloc` in which
   * nothing ran, started before the window: read again alone, it was refused as -X output under the used
   * basis, and as the re-read is of the jobs that started before the window, which a failed run does not
   * move, every run after it was refused too). One that is decided as -X's when this output was (its jobs
   * are passed on without their TotalCPU, under the allocated basis), a new one otherwise.
   */
  forReread(): StepRowWatch | undefined {
    if (this.hasSeenStepRow || this.isReadAsIs) return undefined;
    const watch = new StepRowWatch(this.cpuBasis, this.refuse);
    if (this.isAllocationsOnly) {
      watch.isDecided = true;
      watch.isAllocationsOnly = true;
    }
    return watch;
  }

  /**
   * Once the output has ended, before `end`: the first job that ran without a step row when the output
   * ends as -X's would (jobs that ran, not one step row), else null. Such an output is -X's, or one whose
   * jobs that ran are all allocations in which nothing ran (an `salloc` without srun): sacct prints them
   * alike, so the sacct source asks sacct about this job (sacct.source.ts, printsAllocationRows) and then
   * calls `end` (-X's) or `endAsRead` (not).
   */
  firstRanWithoutSteps(): NormalizedJob | null {
    return this.isDecided || this.found.ranWithoutSteps === 0 || this.found.isCountCut ? null : this.firstRan;
  }

  /** Once the output has ended: the records held back, as read (its jobs have no step row: not -X's). */
  endAsRead(): SourceItem[] {
    this.isDecided = true;
    this.isReadAsIs = true;
    const out = this.held;
    this.held = [];
    return out;
  }

  private decideAllocationsOnly(): SourceItem[] {
    this.isDecided = true;
    this.isAllocationsOnly = true;
    const out = this.held;
    this.held = [];
    if (this.cpuBasis === 'used') throw this.refuse(this.found);
    return out.map(withoutTotalCpu);
  }
}
