import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * A site's wrapper around sacct (`module load slurm; sacct "$@"`) that hangs: a bash script
 * whose real work runs in a child of its own, which records its pid in `sleepPidFile` and
 * becomes `sleep 600`. Killing only the script leaves that child running with its pipes.
 */
export function writeHangingSacctWrapper(script: string): { path: string; sleepPidFile: string } {
  const sleepPidFile = `${script}.sleep-pid`;
  writeFileSync(script, `#!/bin/bash\nsh -c 'echo $$ > "$1"; exec sleep 600' sh '${sleepPidFile}'\n`);
  chmodSync(script, 0o755);
  return { path: script, sleepPidFile };
}

/** The pid a hanging wrapper's child wrote, or undefined before it did. */
export function readSleepPid(sleepPidFile: string): number | undefined {
  if (!existsSync(sleepPidFile)) return undefined;
  const pid = Number(readFileSync(sleepPidFile, 'utf8').trim());
  return pid > 0 ? pid : undefined;
}

/** Whether a process is running (a zombie waiting for its parent is not). */
export function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Kills a wrapper's child if a test left it running (a failed test must not leave it behind). */
export function killLeftoverSleep(sleepPidFile: string): void {
  const pid = readSleepPid(sleepPidFile);
  if (pid !== undefined && isRunning(pid)) process.kill(pid, 'SIGKILL');
}

/** Waits until `check` holds; false once `guardMs` passed (a hang guard, not a timing assertion). */
export async function waitFor(check: () => boolean, guardMs: number): Promise<boolean> {
  const deadline = Date.now() + guardMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** `promise`, or a rejection saying what hung once `guardMs` passed (a hang guard, not a timing assertion). */
export async function withHangGuard<T>(promise: Promise<T>, guardMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still going after ${guardMs} ms`)), guardMs);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}
