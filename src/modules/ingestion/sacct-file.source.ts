import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { CpuBasis } from '../pricing/pricing.js';
import { type AllocationsOnly, ranWithoutSteps, StepRowWatch, withoutTotalCpu } from './allocations-only.js';
import {
  type IngestWindow,
  isInWindow,
  type JobSource,
  type ReadOptions,
  SourceConfigError,
  SourceUnavailableError,
} from './job-source.js';
import { readLineChunks } from './line-reader.js';
import { findKeyColumnProblem, keyColumnsNeeded, SacctHeaderError, SacctParser } from './sacct.parser.js';
import type { SourceItem } from './slurm-job.model.js';

export interface SacctFileSourceOptions {
  path: string;
  timeZone: string;
  defaultCluster: string;
  /**
   * Set when the file is a fallback behind slurmrestd or sacct: its records must then name their jobs
   * as those sources do (JobIDRaw, and Cluster unless SLURM_CLUSTER is set), else the file is refused.
   */
  fallbackFor?: { isClusterSet: boolean };
  /** Said after "cannot be read (ENOENT)" of a file no one named (the demo's): where it comes from. */
  missingHint?: string;
  /**
   * PRICING_CPU_BASIS. Under `used` a file without step rows (sacct -X), whose every TotalCPU is 0, is
   * refused; under `allocated` it is read with TotalCPU not known (findAllocationsOnly).
   */
  cpuBasis?: CpuBasis;
}

/**
 * When the file was last written, as its fingerprint (`<size>:<mtime in ms>`, recorded in a run's notes)
 * says; null for a value that is not one. A file nothing refreshes answers every run, each a success
 * with nothing new: its age is what says that no job has come in since (slurm_ingest_file_modified_timestamp_seconds).
 */
export function fileModifiedAtOf(fingerprint: unknown): Date | null {
  const match = typeof fingerprint === 'string' ? /^\d+:(\d+)$/.exec(fingerprint) : null;
  return match ? new Date(Number(match[1])) : null;
}

/** The most of a file read to find its header row (findSetupProblem). */
const HEADER_PEEK_BYTES = 64 * 1024;

/**
 * An `sacct --parsable2` output file with a header row (FALLBACK_CSV; the demo's data):
 * read line by line, jobs outside the window left out.
 */
export function createSacctFileSource(options: SacctFileSourceOptions): JobSource {
  return {
    name: 'file',
    async fingerprint() {
      const info = await statOrConfigError(options.path, options.missingHint);
      return { value: `${info.size}:${Math.floor(info.mtimeMs)}`, modifiedAt: info.mtime };
    },
    read(window: IngestWindow, readOptions?: ReadOptions) {
      return readSacctFile(options, window, readOptions);
    },
    // A fallback file that would be refused (keyColumnProblem) is named while the source before it
    // answers, not first in the outage it is there for.
    async findSetupProblem() {
      if (!options.fallbackFor) return null;
      try {
        await statOrConfigError(options.path, options.missingHint);
        const handle = await open(options.path, 'r');
        try {
          const { buffer, bytesRead } = await handle.read(Buffer.alloc(HEADER_PEEK_BYTES), 0, HEADER_PEEK_BYTES, 0);
          const header = buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
          return keyColumnProblem(options, header)?.message ?? null;
        } finally {
          await handle.close();
        }
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    },
  };
}

/** A fallback file whose records would not be the rows slurmrestd and sacct store for its jobs. */
function keyColumnProblem(options: SacctFileSourceOptions, header: string): SourceConfigError | null {
  if (!options.fallbackFor) return null;
  const problem = findKeyColumnProblem(header, options.fallbackFor);
  return problem
    ? new SourceConfigError(`FALLBACK_CSV ${options.path} cannot stand in for slurmrestd and sacct: ${problem}`)
    : null;
}

async function statOrConfigError(path: string, missingHint?: string) {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' && missingHint ? `: ${missingHint}` : '';
    throw new SourceConfigError(`FALLBACK_CSV ${path} cannot be read (${code ?? 'error'})${hint}`);
  }
}

/**
 * sacct ends every line it prints, the last one too, with a newline; a file whose last byte is not one
 * was cut short (copied, or read, while sacct was still writing it, or a disk that filled up). Its last
 * line may be cut at a field boundary and still have every field, with a figure cut short (AveRSS
 * `1234567K` as `12`, a TotalCPU): read, that job was stored and billed short, and the window passed.
 * The whole file is refused before anything of it is written, so the run fails and the next one, once
 * the file is whole, reads it all.
 */
async function refuseCutShortFile(path: string, size: number): Promise<void> {
  if (size === 0) return;
  const last = Buffer.alloc(1);
  try {
    const handle = await open(path, 'r');
    try {
      await handle.read(last, 0, 1, size - 1);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceConfigError(`FALLBACK_CSV ${path} cannot be read (${code ?? 'error'})`);
  }
  if (last[0] === 0x0a) return;
  throw new SourceUnavailableError(
    `FALLBACK_CSV ${path} does not end with a newline, as sacct output does: its last line may be cut short ` +
      '(the file copied or read while still being written), so none of it was read. ' +
      'The next run reads it once it is whole (if it is whole, add the missing newline at its end)',
  );
}

function parserFor(options: SacctFileSourceOptions): SacctParser {
  return new SacctParser({
    timeZone: options.timeZone,
    defaultCluster: options.defaultCluster,
    // A later header row (`cat a.psv b.psv`) without them has the lines under it skipped, not stored twice.
    ...(options.fallbackFor ? { requiredColumns: keyColumnsNeeded(options.fallbackFor) } : {}),
  });
}

/**
 * sacct prints a job's CPU time (TotalCPU) on its steps' rows; its job row carries their sum, and with
 * `-X` (`--allocations`: job rows alone) sacct reads no steps and prints TotalCPU 0 for every job (seen on
 * the lab, final/sacct-X.psv). Under PRICING_CPU_BASIS=used, where a TotalCPU of 0 is a real zero, every
 * job of such a file was billed 0 CPU-hours, and the run said success. A file with jobs that ran, a
 * TotalCPU column and not one step row is refused before any of it is read: the run fails saying so (the
 * CLI, the run's record, /admin/ingestion), the window does not move, and the file read after it is
 * exported without -X is billed in full. Under `allocated` it is read, its TotalCPU stored as not known
 * (allocations-only.ts, withoutTotalCpu). The file is read to its first job with a step row: at once for
 * sacct output with steps, the whole file only for one without. Null when the file has step rows.
 */
async function findAllocationsOnly(options: SacctFileSourceOptions, size: number): Promise<AllocationsOnly | null> {
  if (options.cpuBasis === undefined || size === 0) return null;
  const parser = parserFor(options);
  const input = createReadStream(options.path, { highWaterMark: 1 << 20, start: 0, end: size - 1 });
  const found: AllocationsOnly = { ranWithoutSteps: 0, firstJob: '', isCountCut: false };
  const hasSteps = (items: SourceItem[]) => {
    for (const item of items) {
      if (item.kind !== 'job') continue;
      if (item.job.stepCount > 0) return true;
      if (ranWithoutSteps(item.job)) {
        found.ranWithoutSteps += 1;
        found.firstJob ||= item.job.jobKey;
      }
    }
    return false;
  };
  try {
    let lineNumber = 0;
    for await (const lines of readLineChunks(input)) {
      for (const line of lines) {
        lineNumber += 1;
        if (hasSteps(parser.pushLine(line, lineNumber))) return null;
      }
    }
    if (hasSteps(parser.end())) return null;
  } catch {
    // Not sacct output, or unreadable: the read itself says so.
    return null;
  } finally {
    input.destroy();
  }
  if (found.ranWithoutSteps === 0) return null;
  if (options.cpuBasis === 'used') {
    throw new SourceConfigError(
      `FALLBACK_CSV ${options.path} has no step rows (sacct -X / --allocations output?): sacct prints TotalCPU 0 ` +
        `for every job there, so under PRICING_CPU_BASIS=used its ${found.ranWithoutSteps} job(s) that ran (first: job ${found.firstJob}) ` +
        'would be billed 0 CPU-hours. None of it was read. Export it again without -X ' +
        '(sacct --parsable2 --duplicates --allusers --starttime ... --endtime ..., which prints each job with its steps), ' +
        'or bill allocated CPU time (PRICING_CPU_BASIS=allocated)',
    );
  }
  return found;
}

/**
 * A file of several sacct outputs joined, each under its header row (`cat a.psv b.psv`, or a cron job that
 * appends each export to FALLBACK_CSV), may have step rows in one and none in another: an export made with
 * -X appended to one made without. findAllocationsOnly, which stops at the file's first step row, passed such
 * a file, and the jobs of the -X part were stored with TotalCPU 0, billed 0 CPU-hours under the used basis,
 * run after run as exports were appended. Each output after the first is watched as it streams
 * (StepRowWatch, as the sacct source watches each sacct run): refused under `used`, read with TotalCPU not
 * known under `allocated`. A record belongs to the output its job's row is in (its `line`): the job open
 * at a header row that repeats the first is only given at the next job row.
 */
function createOutputWatches(options: SacctFileSourceOptions, cpuBasis: CpuBasis) {
  const watchFrom = (start: number) => ({
    start,
    watch: new StepRowWatch(cpuBasis, (found) => appendedAllocationsOnlyError(options.path, start, found)),
  });
  let current = watchFrom(1);
  let previous: ReturnType<typeof watchFrom> | null = null;
  return {
    /** The records to pass on now, of those the parser gave for a line; `headerLine` is its lastHeaderLine. */
    pass(items: SourceItem[], headerLine: number): SourceItem[] {
      if (headerLine > current.start) {
        // Records of a job before the header row may still come (the job open there).
        const out = previous ? previous.watch.end() : [];
        previous = current;
        current = watchFrom(headerLine);
        return [...out, ...this.pass(items, headerLine)];
      }
      if (previous === null) return current.watch.pass(items);
      const out: SourceItem[] = [];
      for (const item of items) {
        if (previous !== null && item.line < current.start) {
          out.push(...previous.watch.pass([item]));
          continue;
        }
        if (previous !== null) {
          out.push(...previous.watch.end());
          previous = null;
        }
        out.push(...current.watch.pass([item]));
      }
      return out;
    },
    /** What is still held at the end of the file; throws for an output without step rows under `used`. */
    end(): SourceItem[] {
      const out = previous ? previous.watch.end() : [];
      previous = null;
      return [...out, ...current.watch.end()];
    },
  };
}

function appendedAllocationsOnlyError(path: string, line: number, found: AllocationsOnly): SourceConfigError {
  const count = `${found.isCountCut ? 'at least ' : ''}${found.ranWithoutSteps}`;
  return new SourceConfigError(
    `FALLBACK_CSV ${path} has no step rows in the sacct output from line ${line} (an export made with sacct -X / ` +
      `--allocations joined or appended to it?): sacct prints TotalCPU 0 for every job there, so under ` +
      `PRICING_CPU_BASIS=used its ${count} job(s) that ran (first: job ${found.firstJob}) would be billed 0 ` +
      'CPU-hours. None of them was stored. Export that part again without -X, or bill allocated CPU time ' +
      '(PRICING_CPU_BASIS=allocated)',
  );
}

async function* readSacctFile(
  options: SacctFileSourceOptions,
  window: IngestWindow,
  readOptions: ReadOptions | undefined,
): AsyncGenerator<SourceItem> {
  const { size } = await statOrConfigError(options.path, options.missingHint);
  await refuseCutShortFile(options.path, size);
  const isAllocationsOnly = (await findAllocationsOnly(options, size)) !== null;
  const parser = parserFor(options);
  const watches = options.cpuBasis && !isAllocationsOnly ? createOutputWatches(options, options.cpuBasis) : undefined;
  // Only the bytes checked above: a line an sacct or a copy appends meanwhile is for the next run.
  const input = createReadStream(options.path, { highWaterMark: 1 << 20, start: 0, end: Math.max(0, size - 1) });
  const keep = (item: SourceItem) =>
    item.kind === 'skip' ||
    (isInWindow(item.job, window) && (readOptions?.user === undefined || item.job.user === readOptions.user));
  let lineNumber = 0;
  try {
    for await (const lines of readLineChunks(input)) {
      for (const line of lines) {
        lineNumber += 1;
        if (lineNumber === 1) {
          const problem = keyColumnProblem(options, line);
          if (problem) throw problem;
        }
        const items = parser.pushLine(line, lineNumber);
        for (const item of watches ? watches.pass(items, parser.lastHeaderLine) : items) {
          if (keep(item)) yield isAllocationsOnly ? withoutTotalCpu(item) : item;
        }
      }
    }
    const last = parser.end();
    for (const item of watches ? [...watches.pass(last, parser.lastHeaderLine), ...watches.end()] : last) {
      if (keep(item)) yield isAllocationsOnly ? withoutTotalCpu(item) : item;
    }
  } catch (error) {
    // Its first line tells: a file that is not sacct output with its header row is the wrong file
    // (a setting to fix), not a source that may answer next time.
    if (error instanceof SacctHeaderError) {
      throw new SourceConfigError(
        error.isHeaderRow
          ? `FALLBACK_CSV ${options.path} cannot be read: ${error.message}`
          : `FALLBACK_CSV ${options.path} is not sacct --parsable2 output: ${error.message}`,
      );
    }
    throw error;
  } finally {
    input.destroy();
  }
}
