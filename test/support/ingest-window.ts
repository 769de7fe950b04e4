import { readFileSync } from 'node:fs';
import type { Database } from '../../src/db/database.js';
import { createIngestionService, type IngestionDeps } from '../../src/modules/ingestion/ingestion.service.js';
import type { IngestWindow, JobSource } from '../../src/modules/ingestion/job-source.js';
import { createSacctFileSource } from '../../src/modules/ingestion/sacct-file.source.js';
import { parseSlurmRestJobsResponse } from '../../src/modules/ingestion/slurm-rest.parser.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { createLogger } from '../../src/shared/logger.js';

/** What a test may set beside the defaults below: any of the service's deps, and runOnce's force. */
export type IngestWindowOptions = Partial<Omit<IngestionDeps, 'db' | 'sources'>> & { force?: boolean };

/**
 * The ingestion service most ingestion tests run: no overlap (so the window asked is the window
 * read), an hour's first look-back, no unconfigured sources, a silent log and fresh metrics, unless
 * `deps` says otherwise.
 */
export function ingestionService(
  db: Database,
  sources: JobSource | JobSource[],
  deps: Partial<Omit<IngestionDeps, 'db' | 'sources'>> = {},
) {
  return createIngestionService({
    db,
    sources: Array.isArray(sources) ? sources : [sources],
    unconfigured: {},
    logger: createLogger('silent'),
    metrics: createMetrics(),
    overlapSec: 0,
    initialLookbackSec: 3600,
    ...deps,
  });
}

/** One manual run of ingestionService over exactly `window`: runOnce's answer, finished or skipped. */
export function ingestWindow(
  db: Database,
  sources: JobSource | JobSource[],
  window: IngestWindow,
  { force, ...deps }: IngestWindowOptions = {},
) {
  return ingestionService(db, sources, deps).runOnce({
    trigger: 'manual',
    window,
    ...(force === undefined ? {} : { force }),
  });
}

/** As ingestWindow, for a run that must finish (not be skipped): its summary. */
export async function ingestWindowFinished(
  db: Database,
  sources: JobSource | JobSource[],
  window: IngestWindow,
  options: IngestWindowOptions = {},
) {
  const result = await ingestWindow(db, sources, window, options);
  if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
  return result.run;
}

/** The file source over a sacct capture (`sacct -P` output) of the lab cluster, its times in UTC. */
export function labFileSource(file: string): JobSource {
  return createSacctFileSource({ path: file, timeZone: 'UTC', defaultCluster: 'lab' });
}

/**
 * A slurmrestd stand-in answering each read with the lab's recorded /jobs answer in `file` (read
 * at each read, so a test may change it between runs), parsed as `version`.
 */
export function labRestSource(file: string, version = 'v0.0.38'): JobSource {
  return {
    name: 'slurmrestd',
    async *read() {
      const body = JSON.parse(readFileSync(file, 'utf8'));
      yield* parseSlurmRestJobsResponse(body, { version, defaultCluster: 'lab' }).items;
    },
  };
}
