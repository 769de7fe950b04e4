import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.js';
import { SCRAPE_DATABASE_READ_LIMIT_MS } from './metrics.js';

/*
 * With WEB_CONCURRENCY > 1 each worker counts only the requests it served, and a
 * scrape lands on whichever worker the primary hands the connection to. So the
 * worker that gets GET /metrics asks the primary, which collects every worker's
 * registry over IPC and answers with the sum (prom-client's AggregatorRegistry.aggregate).
 * /metrics stays on the app's port; no second listener to expose or protect.
 *
 * The primary keeps what each worker had counted at its last answer. When a worker dies and
 * a fresh one replaces it, its counters and histograms stay in the sum: without them the sum
 * fell by the dead worker's count, which Prometheus reads as a counter reset, and rate() and
 * increase() then counted the survivors' whole history as new (a phantom burst of requests,
 * 5xx and sign-in failures on every panel). Its gauges go with it: a dead pool holds nothing.
 */

const SCRAPE_REQUEST = 'hpc-billing:metrics-scrape-request';
const SCRAPE_RESPONSE = 'hpc-billing:metrics-scrape-response';
const COLLECT_REQUEST = 'hpc-billing:metrics-collect-request';
const COLLECT_RESPONSE = 'hpc-billing:metrics-collect-response';
/** A worker says so once it answers collect requests: one asked before would never answer. */
const COLLECT_READY = 'hpc-billing:metrics-collect-ready';

/**
 * How long the primary waits for every worker's registry: longer than a worker's own database reads
 * at a scrape (SCRAPE_DATABASE_READ_LIMIT_MS, run together), with time to spare for a busy machine, and
 * still within Prometheus's 10 s scrape_timeout. It was 5 s, as prom-client's aggregator waits: with a
 * silent database and a READY_TIMEOUT_MS of 5 s or more, every worker answered, hpc_ready 0, just after
 * the primary had given up, so every scrape failed (500), up read 0 and AppDown paged instead of
 * AppNotReady.
 */
export const COLLECT_TIMEOUT_MS = SCRAPE_DATABASE_READ_LIMIT_MS + 3_000;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

interface ScrapeRequest {
  type: typeof SCRAPE_REQUEST;
  id: number;
}

type ScrapeResponse = { type: typeof SCRAPE_RESPONSE; id: number } & ({ text: string } | { error: string });

interface CollectRequest {
  type: typeof COLLECT_REQUEST;
  id: number;
}

type CollectResponse = { type: typeof COLLECT_RESPONSE; id: number } & ({ metrics: MetricsJson } | { error: string });

function isScrapeRequest(message: unknown): message is ScrapeRequest {
  return (message as ScrapeRequest | null)?.type === SCRAPE_REQUEST;
}

function isScrapeResponse(message: unknown): message is ScrapeResponse {
  return (message as ScrapeResponse | null)?.type === SCRAPE_RESPONSE;
}

function isCollectRequest(message: unknown): message is CollectRequest {
  return (message as CollectRequest | null)?.type === COLLECT_REQUEST;
}

function isCollectResponse(message: unknown): message is CollectResponse {
  return (message as CollectResponse | null)?.type === COLLECT_RESPONSE;
}

/**
 * Counters and histograms only: what a worker counted stays counted once it is gone. Its own
 * series (METRICS_PROCESS's, labelled with its `worker` number) end with it instead: a series that
 * ends is no counter reset, and kept they would pile up, frozen, one set per replaced worker.
 */
function cumulativePartOf(metrics: MetricsJson): MetricsJson {
  return metrics
    .filter((metric) => String(metric.type) === 'counter' || String(metric.type) === 'histogram')
    .map((metric) => ({ ...metric, values: metric.values.filter((value) => value.labels.worker === undefined) }))
    .filter((metric) => metric.values.length > 0);
}

/** In the cluster primary: answers each worker's scrape request with the sum over all workers. */
export function serveClusterMetrics(logger: Logger, timeoutMs = COLLECT_TIMEOUT_MS): void {
  /** Workers that answer collect requests, with what each had counted at its last answer. */
  const ready = new Map<number, MetricsJson | undefined>();
  /** One collect at a time per worker id and request id: resolved with its metrics, or undefined once it died. */
  const pending = new Map<string, (metrics: MetricsJson | undefined, error?: string) => void>();
  // The counters and histograms of workers that died, summed: they stay part of every total.
  let retired: Promise<MetricsJson> = Promise.resolve([]);
  let nextId = 0;

  cluster.on('message', (worker, message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === COLLECT_READY) {
      ready.set(worker.id, undefined);
      return;
    }
    if (isCollectResponse(message)) {
      const waiter = pending.get(`${worker.id}:${message.id}`);
      if (!waiter) return;
      if ('metrics' in message) {
        // Kept at once (not after the whole collect): a worker that answers and then dies is
        // retired with this answer, and left out of the live ones.
        if (ready.has(worker.id)) ready.set(worker.id, message.metrics);
        waiter(message.metrics);
      } else waiter(undefined, message.error);
      return;
    }
    if (!isScrapeRequest(message)) return;
    const reply = (response: ScrapeResponse) => {
      if (worker.isConnected()) worker.send(response);
    };
    collect().then(
      (text) => reply({ type: SCRAPE_RESPONSE, id: message.id, text }),
      (error: Error) => {
        logger.warn({ err: error.message }, 'could not collect metrics from every worker');
        reply({ type: SCRAPE_RESPONSE, id: message.id, error: error.message });
      },
    );
  });

  cluster.on('exit', (worker) => {
    const last = ready.get(worker.id);
    ready.delete(worker.id);
    for (const [key, waiter] of pending) if (key.startsWith(`${worker.id}:`)) waiter(undefined);
    if (!last) return;
    const dead = cumulativePartOf(last);
    retired = retired.then((earlier) => AggregatorRegistry.aggregate([earlier, dead]).getMetricsAsJSON());
  });

  function ask(worker: Worker, id: number): Promise<MetricsJson | undefined> {
    return new Promise((resolve, reject) => {
      const key = `${worker.id}:${id}`;
      const timer = setTimeout(() => {
        pending.delete(key);
        reject(new Error(`worker ${worker.process.pid} did not send its metrics within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(key, (metrics, error) => {
        clearTimeout(timer);
        pending.delete(key);
        if (error !== undefined) reject(new Error(error));
        else resolve(metrics);
      });
      worker.send({ type: COLLECT_REQUEST, id } satisfies CollectRequest);
    });
  }

  async function collect(): Promise<string> {
    const id = nextId++;
    const workers = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker !== undefined && ready.has(worker.id) && worker.isConnected(),
    );
    const answers = await Promise.all(workers.map((worker) => ask(worker, id)));
    // A worker that died meanwhile is in `retired` now (with its answer, if it gave one).
    const live = answers.filter((metrics, index): metrics is MetricsJson => {
      const worker = workers[index] as Worker;
      return metrics !== undefined && ready.has(worker.id);
    });
    // A worker that is no longer connected but has not exited yet: what it counted still counts.
    const leaving = [...ready]
      .filter(([workerId, metrics]) => metrics && !workers.some((worker) => worker.id === workerId))
      .map(([, metrics]) => cumulativePartOf(metrics as MetricsJson));
    const registry = AggregatorRegistry.aggregate([...live, ...leaving, await retired]);
    return registry.metrics();
  }
}

/**
 * In a cluster worker: lets the primary read `registry`, and returns the scrape
 * function GET /metrics uses, which asks the primary for the sum over workers.
 */
export function joinClusterMetrics(registry: Registry, timeoutMs = 10_000): () => Promise<string> {
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (isCollectRequest(message)) {
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: COLLECT_RESPONSE, id: message.id, metrics } satisfies CollectResponse),
        (error: Error) => process.send?.({ type: COLLECT_RESPONSE, id: message.id, error: error.message }),
      );
      return;
    }
    if (!isScrapeResponse(message)) return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if ('text' in message) waiter.resolve(message.text);
    else waiter.reject(new Error(`metrics aggregation failed: ${message.error}`));
  });
  process.send?.({ type: COLLECT_READY });
  return () =>
    new Promise<string>((resolve, reject) => {
      const send = process.send?.bind(process);
      if (!send) {
        reject(new Error('not a cluster worker'));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the primary did not answer a metrics scrape within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      send({ type: SCRAPE_REQUEST, id } satisfies ScrapeRequest);
    });
}
