export interface RssSample {
  atSec: number;
  totalMb: number;
}

/** The mean of the samples taken in a window (`[fromSec, toSec)` for the first, `(fromSec, toSec]` for the last). */
export interface RssWindow {
  fromSec: number;
  toSec: number;
  samples: number;
  meanMb: number;
}

export interface RssGrowth {
  /** Growth of the last window's mean over the first window's, rounded to 0.1%; null without a figure. */
  percent: number | null;
  first?: RssWindow;
  last?: RssWindow;
  /** The window length asked for; `first` and `last` are shorter when `isShortened`. */
  windowSec: number;
  /** The run after the warm-up was shorter than two windows: its two halves were compared instead. */
  isShortened: boolean;
  /** Why there is no figure, or how it was shortened. */
  note?: string;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

function assertPositiveWindow(windowSec: number) {
  if (!(windowSec > 0)) throw new Error(`the RSS window must be a positive number of seconds, got ${windowSec}`);
}

function windowOf(inside: RssSample[], fromSec: number, toSec: number): RssWindow & { exactMeanMb: number } {
  const exactMeanMb = inside.reduce((sum, sample) => sum + sample.totalMb, 0) / Math.max(1, inside.length);
  return { fromSec, toSec, samples: inside.length, meanMb: round1(exactMeanMb), exactMeanMb };
}

/**
 * RSS growth of a run, comparing window averages, not single samples: a server's total RSS
 * swings by tens of MB with V8's collection cycle, so two single samples mostly say where in
 * that cycle each fell. The first window starts at the first sample at or after `warmupSec`
 * (start-up allocations and JIT settle first) and lasts `windowSec`; the last window is the
 * final `windowSec` of the run, up to and including the last sample. The figure is the
 * growth of the last window's mean over the first's (the mean of the samples in each; the
 * sampler takes them at a steady interval).
 *
 * When the run after the warm-up is shorter than two windows, its first and second halves are
 * compared instead (`isShortened`, with a note). With fewer than two samples after the warm-up
 * there is no figure (`percent` null).
 */
export function computeRssGrowth(timeline: RssSample[], options: { warmupSec: number; windowSec: number }): RssGrowth {
  const { warmupSec, windowSec } = options;
  assertPositiveWindow(windowSec);
  const samples = timeline.filter((sample) => sample.atSec >= warmupSec).sort((a, b) => a.atSec - b.atSec);
  const start = samples[0]?.atSec;
  const end = samples.at(-1)?.atSec;
  if (samples.length < 2 || start === undefined || end === undefined || end <= start) {
    return {
      percent: null,
      windowSec,
      isShortened: false,
      note:
        timeline.length === 0
          ? 'no RSS samples'
          : `fewer than two RSS samples at or after ${warmupSec} s: no growth figure`,
    };
  }
  const span = end - start;
  const isShortened = span < 2 * windowSec;
  const length = isShortened ? span / 2 : windowSec;
  const firstEnd = start + length;
  const lastStart = end - length;
  const { exactMeanMb: firstMean, ...first } = windowOf(
    samples.filter((sample) => sample.atSec < firstEnd),
    start,
    firstEnd,
  );
  const { exactMeanMb: lastMean, ...last } = windowOf(
    samples.filter((sample) => sample.atSec > lastStart),
    lastStart,
    end,
  );
  const note = isShortened
    ? `the run after the warm-up (${round1(span)} s) is shorter than two ${windowSec} s windows: compared its halves (${round1(length)} s each)`
    : undefined;
  if (first.samples === 0 || last.samples === 0 || firstMean <= 0) {
    return { percent: null, first, last, windowSec, isShortened, note: note ?? 'a window has no samples' };
  }
  const percent = round1(((lastMean - firstMean) / firstMean) * 100);
  return { percent, first, last, windowSec, isShortened, note };
}

/**
 * The mean RSS of each consecutive window from the warm-up on (the last one may be partial),
 * rounded to 0.1 MB. Beside the growth figure it shows whether RSS climbed window after window
 * (a leak) or swung about a level (GC cycles, receipts in flight): one low first window or one
 * high last window moves the figure by several percent on a 2-core machine.
 */
export function windowMeansMb(timeline: RssSample[], options: { warmupSec: number; windowSec: number }): number[] {
  const { warmupSec, windowSec } = options;
  assertPositiveWindow(windowSec);
  const sums: { total: number; count: number }[] = [];
  for (const sample of timeline) {
    if (sample.atSec < warmupSec) continue;
    const index = Math.floor((sample.atSec - warmupSec) / windowSec);
    sums[index] ??= { total: 0, count: 0 };
    sums[index].total += sample.totalMb;
    sums[index].count += 1;
  }
  return sums.filter((window) => window !== undefined).map((window) => round1(window.total / window.count));
}

/** One line for the soak report: what is compared, and the figure. */
export function describeRssGrowth(growth: RssGrowth, limitPercent: number): string {
  const { first, last, percent } = growth;
  if (percent === null || !first || !last) return `Soak: no RSS growth figure (${growth.note ?? 'no samples'}).`;
  const span = (window: RssWindow) =>
    `${Math.round(window.fromSec)}-${Math.round(window.toSec)} s, ${window.samples} samples`;
  const sign = percent > 0 ? '+' : '';
  const lastLength = Math.round(last.toSec - last.fromSec);
  return [
    `Soak: mean RSS ${span(first)}: ${first.meanMb} MB -> mean of the last ${lastLength} s (${span(last)}): `,
    `${last.meanMb} MB = ${sign}${percent}% (target < ${limitPercent}%).`,
    growth.note ? ` Note: ${growth.note}.` : '',
  ].join('');
}
