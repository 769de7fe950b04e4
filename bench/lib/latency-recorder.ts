/** Samples kept exactly up to this many; beyond it a uniform reservoir keeps memory bounded. */
const DEFAULT_CAPACITY = 2_000_000;

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The nearest-rank percentile of ascending `sorted` values: the smallest value with at
 * least p% of the values at or below it (p=50 of [1,2,3,4] is 2). 0 for no values.
 */
export function nearestRankPercentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  if (p <= 0) return sorted[0] as number;
  const rank = Math.min(sorted.length, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/**
 * Latencies (ms) of one route. Exact while under `capacity` samples (a 60 s run at
 * 15,000 req/s is 900,000), then reservoir sampling (Algorithm R) so a long soak stays
 * in bounded memory; count, max and mean stay exact either way.
 */
export class LatencyRecorder {
  private samples: Float64Array;
  private size = 0;
  private seen = 0;
  private sum = 0;
  private maximum = 0;
  // A fixed-seed generator: which samples the reservoir keeps should not vary by run.
  private seed = 0x9e3779b9;

  constructor(private readonly capacity = DEFAULT_CAPACITY) {
    this.samples = new Float64Array(Math.min(capacity, 1024));
  }

  record(milliseconds: number): void {
    this.seen += 1;
    this.sum += milliseconds;
    if (milliseconds > this.maximum) this.maximum = milliseconds;
    if (this.size < this.capacity) {
      if (this.size === this.samples.length) this.grow();
      this.samples[this.size++] = milliseconds;
      return;
    }
    const slot = Math.floor(this.nextRandom() * this.seen);
    if (slot < this.capacity) this.samples[slot] = milliseconds;
  }

  get count(): number {
    return this.seen;
  }

  summarize(): LatencySummary {
    const sorted = this.samples.slice(0, this.size).sort();
    return {
      count: this.seen,
      p50: nearestRankPercentile(sorted, 50),
      p95: nearestRankPercentile(sorted, 95),
      p99: nearestRankPercentile(sorted, 99),
      max: this.maximum,
      mean: this.seen === 0 ? 0 : this.sum / this.seen,
    };
  }

  private grow() {
    const next = new Float64Array(Math.min(this.capacity, this.samples.length * 2));
    next.set(this.samples);
    this.samples = next;
  }

  private nextRandom(): number {
    // xorshift32
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 4_294_967_296;
  }
}
