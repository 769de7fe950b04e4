import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

export interface CollectingChild {
  child: ChildProcessWithoutNullStreams;
  /** All it has printed so far, stdout and stderr interleaved as they came. */
  output(): string;
  /** What it has printed on stdout alone. */
  stdout(): string;
  /** What it has printed on stderr alone. */
  stderr(): string;
  /** Its exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

/** Starts a command with exactly `env` (plus PATH and HOME), collecting all it prints. */
export function spawnCollecting(
  command: string,
  args: string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    /** Leads a process group of its own, as a shell starts a foreground command: `process.kill(-pid, 'SIGINT')` is a Ctrl-C. */
    hasOwnProcessGroup?: boolean;
  },
): CollectingChild {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.hasOwnProcessGroup ?? false,
  });
  child.stdin.end();
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * Runs a command to its end with exactly `env` (plus PATH and HOME); its exit code and all it
 * printed. With `giveUpMs`, a command still running then gets SIGTERM, and `hasExitedItself`
 * says whether it ended before that.
 */
export async function runToExit(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; giveUpMs?: number },
): Promise<{ code: number | null; output: string; hasExitedItself?: boolean }> {
  const { child, output, exited } = spawnCollecting(command, args, options);
  let isGivenUp = false;
  const timer =
    options.giveUpMs === undefined
      ? undefined
      : setTimeout(() => {
          isGivenUp = true;
          child.kill('SIGTERM');
        }, options.giveUpMs);
  const code = await exited;
  clearTimeout(timer);
  return options.giveUpMs === undefined
    ? { code, output: output() }
    : { code, output: output(), hasExitedItself: !isGivenUp };
}
