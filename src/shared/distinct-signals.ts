/**
 * A signal this soon after the last one acted on is that one delivered again, not a person's second
 * Ctrl-C: a terminal's Ctrl-C reaches every process of the foreground group, and npm passes it on to
 * the script it runs as well, so the app gets one keypress twice within milliseconds. (A cluster
 * primary tells its workers by message, not by a signal, which a loaded machine could deliver later.)
 */
export const REPEATED_SIGNAL_MS = 500;

/**
 * Calls `handle` on each of `signals`, except one that arrives within REPEATED_SIGNAL_MS of the
 * last it was called for. A listener replaces Node's default exit for each of them.
 */
export function onDistinctSignals<S extends NodeJS.Signals>(
  signals: readonly S[],
  handle: (signal: S) => void,
  now: () => number = () => performance.now(),
): void {
  let lastHandledAt = Number.NEGATIVE_INFINITY;
  for (const signal of signals) {
    process.on(signal, () => {
      const at = now();
      if (at - lastHandledAt < REPEATED_SIGNAL_MS) return;
      lastHandledAt = at;
      handle(signal);
    });
  }
}
