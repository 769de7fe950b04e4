import { LatencyRecorder, type LatencySummary } from './latency-recorder.js';

const MAX_FAILURE_SAMPLES = 5;

interface RouteRecord {
  latency: LatencyRecorder;
  failures: number;
  statuses: Map<string, number>;
  failureSamples: Map<string, number>;
}

export interface RouteReport extends LatencySummary {
  route: string;
  requests: number;
  failures: number;
  rps: number;
  statuses: Record<string, number>;
  /** Distinct failure messages with their counts (the first few). */
  failureSamples: Record<string, number>;
}

/** Per-route request counts, failures, status codes and latencies of one run. */
export class RouteStats {
  private readonly routes = new Map<string, RouteRecord>();

  private routeOf(route: string): RouteRecord {
    let record = this.routes.get(route);
    if (!record) {
      record = { latency: new LatencyRecorder(), failures: 0, statuses: new Map(), failureSamples: new Map() };
      this.routes.set(route, record);
    }
    return record;
  }

  /** A request that got an answer (`status`) or none (network error: status 'error'). */
  recordRequest(route: string, milliseconds: number, status: number | 'error'): void {
    const record = this.routeOf(route);
    record.latency.record(milliseconds);
    const key = String(status);
    record.statuses.set(key, (record.statuses.get(key) ?? 0) + 1);
  }

  /** Counts a failure on `route`: a wrong status, a network error, or a page missing what a browser needs. */
  recordFailure(route: string, message: string): void {
    const record = this.routeOf(route);
    record.failures += 1;
    const known = record.failureSamples.get(message);
    if (known !== undefined) record.failureSamples.set(message, known + 1);
    else if (record.failureSamples.size < MAX_FAILURE_SAMPLES) record.failureSamples.set(message, 1);
  }

  get totalFailures(): number {
    let total = 0;
    for (const record of this.routes.values()) total += record.failures;
    return total;
  }

  report(elapsedSec: number): RouteReport[] {
    return [...this.routes].map(([route, record]) => {
      const summary = record.latency.summarize();
      return {
        route,
        requests: summary.count,
        failures: record.failures,
        rps: elapsedSec > 0 ? summary.count / elapsedSec : 0,
        ...summary,
        statuses: Object.fromEntries(record.statuses),
        failureSamples: Object.fromEntries(record.failureSamples),
      };
    });
  }
}
