import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.js';

/*
 * With WEB_CONCURRENCY > 1 each worker counts only the requests it served, and a
 * scrape lands on whichever worker the primary hands the connection to. So the
 * worker that gets GET /metrics asks the primary, which collects every worker's
 * registry over IPC (prom-client's AggregatorRegistry) and answers with the sum.
 * /metrics stays on the app's port; no second listener to expose or protect.
 */

const SCRAPE_REQUEST = 'hpc-billing:metrics-scrape-request';
const SCRAPE_RESPONSE = 'hpc-billing:metrics-scrape-response';

interface ScrapeRequest {
  type: typeof SCRAPE_REQUEST;
  id: number;
}

type ScrapeResponse = { type: typeof SCRAPE_RESPONSE; id: number } & ({ text: string } | { error: string });

function isScrapeRequest(message: unknown): message is ScrapeRequest {
  return (message as ScrapeRequest | null)?.type === SCRAPE_REQUEST;
}

function isScrapeResponse(message: unknown): message is ScrapeResponse {
  return (message as ScrapeResponse | null)?.type === SCRAPE_RESPONSE;
}

/** In the cluster primary: answers each worker's scrape request with the sum over all workers. */
export function serveClusterMetrics(logger: Logger): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isScrapeRequest(message)) return;
    const reply = (response: ScrapeResponse) => {
      if (worker.isConnected()) worker.send(response);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ type: SCRAPE_RESPONSE, id: message.id, text }),
      (error: Error) => {
        logger.warn({ err: error.message }, 'could not collect metrics from every worker');
        reply({ type: SCRAPE_RESPONSE, id: message.id, error: error.message });
      },
    );
  });
}

/**
 * In a cluster worker: lets the primary read `registry`, and returns the scrape
 * function GET /metrics uses, which asks the primary for the sum over workers.
 */
export function joinClusterMetrics(registry: Registry, timeoutMs = 10_000): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs prom-client's listener that answers the primary.
  void new AggregatorRegistry();
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isScrapeResponse(message)) return;
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if ('text' in message) waiter.resolve(message.text);
    else waiter.reject(new Error(`metrics aggregation failed: ${message.error}`));
  });
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
