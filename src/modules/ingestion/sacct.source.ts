import { spawn } from 'node:child_process';
import {
  type IngestWindow,
  type JobSource,
  type ReadOptions,
  SourceConfigError,
  SourceUnavailableError,
  validateUsername,
} from './job-source.js';
import { readLineChunks } from './line-reader.js';
import { SACCT_FORMAT, SacctParser } from './sacct.parser.js';
import type { SourceItem } from './slurm-job.model.js';
import { formatLocalTimestamp, SACCT_TERMINAL_STATE_LIST } from './slurm-time.parser.js';

export interface SacctSourceOptions {
  sacctPath: string;
  timeZone: string;
  /** Passed as `--clusters` when set; also the cluster of rows without one. */
  cluster: string | undefined;
  defaultCluster: string;
  timeoutMs: number;
}

/** The arguments sacct gets for a window: fixed columns, terminal states only, times in the cluster's zone. */
export function buildSacctArgs(options: SacctSourceOptions, window: IngestWindow, readOptions?: ReadOptions): string[] {
  const args = [
    '--parsable2',
    '--noconvert',
    `--format=${SACCT_FORMAT.join(',')}`,
    `--state=${SACCT_TERMINAL_STATE_LIST}`,
    `--starttime=${formatLocalTimestamp(window.start, options.timeZone)}`,
    `--endtime=${formatLocalTimestamp(window.end, options.timeZone)}`,
  ];
  if (readOptions?.user !== undefined) args.push(`--user=${validateUsername(readOptions.user)}`);
  else args.push('--allusers');
  if (options.cluster) args.push(`--clusters=${options.cluster}`);
  return args;
}

/** Runs sacct (never through a shell) and streams its output through the sacct parser. */
export function createSacctSource(options: SacctSourceOptions): JobSource {
  return {
    name: 'sacct',
    read: (window, readOptions) => runSacct(options, window, readOptions),
  };
}

async function* runSacct(
  options: SacctSourceOptions,
  window: IngestWindow,
  readOptions: ReadOptions | undefined,
): AsyncGenerator<SourceItem> {
  const args = buildSacctArgs(options, window, readOptions);
  // spawn rather than execFile: execFile buffers all of stdout (maxBuffer) before its
  // callback, and a month of accounting can be hundreds of megabytes. No shell either way.
  const child = spawn(options.sacctPath, args, { shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  let isTimedOut = false;
  const timer = setTimeout(() => {
    isTimedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const parser = new SacctParser({ timeZone: options.timeZone, defaultCluster: options.defaultCluster });
  let lineNumber = 0;
  try {
    for await (const lines of readLineChunks(child.stdout)) {
      for (const line of lines) {
        lineNumber += 1;
        yield* parser.pushLine(line, lineNumber);
      }
    }
    const result = await exited;
    if (result.error) {
      const code = (result.error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        throw new SourceConfigError(`SACCT_PATH ${options.sacctPath} cannot be run (${code})`);
      }
      throw new SourceUnavailableError(`sacct could not start: ${result.error.message}`);
    }
    if (isTimedOut) throw new SourceUnavailableError(`sacct did not finish within ${options.timeoutMs} ms; killed`);
    if (result.code !== 0) {
      const detail = stderr.trim().split('\n').slice(-3).join(' / ');
      throw new SourceUnavailableError(
        `sacct exited with ${result.code ?? result.signal}${detail ? `: ${detail.slice(0, 300)}` : ''}`,
      );
    }
    yield* parser.end();
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
