/**
 * RSS growth in percent between the first sample at or after `warmupSec` (start-up
 * allocations and JIT settle first) and the last sample; 0 without two samples.
 */
export function computeRssGrowthPercent(timeline: { atSec: number; totalMb: number }[], warmupSec: number): number {
  const baseline = timeline.find((sample) => sample.atSec >= warmupSec);
  const last = timeline.at(-1);
  if (!baseline || !last || baseline === last || baseline.totalMb <= 0) return 0;
  return Math.round(((last.totalMb - baseline.totalMb) / baseline.totalMb) * 1000) / 10;
}
