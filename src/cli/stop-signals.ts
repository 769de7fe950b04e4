import { constants } from 'node:os';
import { onDistinctSignals } from '../shared/distinct-signals.js';

/** What stops a tool: a Compose or Kubernetes job replaced, a deploy script's timeout, Ctrl-C, a closed terminal. */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** 128 + the signal's number, as a shell reports a process the signal killed: a script sees what it saw before. */
export const exitCodeOfSignal = (signal: string) => 128 + (constants.signals[signal as NodeJS.Signals] ?? 0);

/**
 * A stop took Node's default action: the tool died without a word, or, as a container's PID 1,
 * ignored it until the SIGKILL, and its session stayed queued for a lock until another process let
 * it go. The first signal aborts the returned signal, for the tool to stop where nothing is left half
 * done and say so; a second one exits at once, after the line `onSecondSignal` gives (on stderr).
 */
export function stopOnSignals(onSecondSignal: (signal: string) => string): AbortSignal {
  const stopping = new AbortController();
  onDistinctSignals(STOP_SIGNALS, (signal) => {
    if (!stopping.signal.aborted) {
      stopping.abort(signal);
      return;
    }
    console.error(onSecondSignal(signal));
    process.exit(exitCodeOfSignal(signal));
  });
  return stopping.signal;
}

/** A stop said in the tool's words, exiting as the signal would have (runTool's exit code). */
export class StoppedTool extends Error {
  readonly exitCode: number;
  constructor(signal: string, message: string) {
    super(message);
    this.name = 'StoppedTool';
    this.exitCode = exitCodeOfSignal(signal);
  }
}

/** runTool's exit code for a StoppedTool. */
export const exitCodeOfStop = (error: unknown) => (error instanceof StoppedTool ? error.exitCode : undefined);
