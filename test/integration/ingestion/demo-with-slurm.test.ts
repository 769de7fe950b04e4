import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { buildIngestionService, buildSources } from '../../../src/modules/ingestion/ingestion.factory.js';
import { createIngestionService } from '../../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
// The recorded jobs of the demo's stand-in file end on 2026-11-23 around 15:45 UTC.
const NOW = new Date('2026-11-23T16:00:00Z');

// An operator trying the app against a real Slurm, as docs/ingestion.md shows: `npm start` in
// development (so with the demo) plus SLURMRESTD_URL. The demo's file is there in DATA_DIR.
describe('the demo with a real Slurm configured', () => {
  let db: TestDatabase;
  let dataDir: string;
  let server: http.Server;
  let slurmrestdUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'demo-with-slurm-'));
    mkdirSync(path.join(dataDir, 'demo'));
    copyFileSync(path.join(FIXTURES, '22.05/final/sacct-steps-extra.psv'), path.join(dataDir, 'demo/sacct-demo.psv'));
    // slurmrestd 22.05 refusing the token: what the lab answered to a wrong JWT.
    server = http.createServer((req, res) => {
      const body = req.url?.startsWith('/openapi/v3')
        ? fixture('22.05/openapi-v3-paths.json')
        : fixture('22.05/rest-dbv0.0.38-auth-error.json');
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    slurmrestdUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a run slurmrestd fails is failed and reads nothing from the demo file, so its window is read again', async () => {
    const config = loadConfig({
      DATA_DIR: dataDir,
      SLURMRESTD_URL: slurmrestdUrl,
      SLURMRESTD_USER: 'billing',
      SLURMRESTD_TOKEN: 'not.a.valid-token',
    });
    const ingestion = buildIngestionService({
      config,
      db,
      logger: createLogger('silent'),
      metrics: createMetrics(),
      now: () => NOW,
    });
    const result = await ingestion.runOnce({ trigger: 'schedule' });
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    expect(result.run).toMatchObject({ outcome: 'failed', source: null, seen: 0, inserted: 0 });
    expect(result.run.error).toMatch(/^slurmrestd: slurmrestd rejected the token \(error 1007/);
    expect(result.run.sourceNotes.file).toBe('not configured (FALLBACK_CSV unset)');
    const rows = await db.pool.query<{ count: string }>('SELECT count(*) FROM slurm_jobs');
    expect(rows.rows[0]?.count).toBe('0');

    // The next run starts where this one did: nothing was passed over.
    const next = await ingestion.runOnce({ trigger: 'schedule' });
    if (next.status !== 'finished') throw new Error(`expected a finished run, got ${next.status}`);
    expect(next.run.window.start).toEqual(result.run.window.start);
  });

  it("the demo's seed does not set where slurmrestd's first run starts: it reads INGEST_LOOKBACK_DAYS back", async () => {
    // What `npm start` does first on an empty DATA_DIR: the demo's file, read up to now, as run 'seed'.
    const seeded = await createIngestionService({
      db,
      sources: [
        createSacctFileSource({
          path: path.join(dataDir, 'demo/sacct-demo.psv'),
          timeZone: 'UTC',
          defaultCluster: 'demo',
        }),
      ],
      unconfigured: {},
      logger: createLogger('silent'),
      metrics: createMetrics(),
      overlapSec: 0,
      initialLookbackSec: 0,
    }).runOnce({ trigger: 'seed', window: { start: new Date(0), end: NOW } });
    expect(seeded).toMatchObject({ status: 'finished', run: { outcome: 'success' } });

    const config = loadConfig({
      DATA_DIR: dataDir,
      SLURMRESTD_URL: slurmrestdUrl,
      SLURMRESTD_USER: 'billing',
      SLURMRESTD_TOKEN: 'not.a.valid-token',
    });
    const service = (env: typeof config) =>
      buildIngestionService({
        config: env,
        db,
        logger: createLogger('silent'),
        metrics: createMetrics(),
        now: () => NOW,
      });
    const first = await service(config).runOnce({ trigger: 'schedule' });
    if (first.status !== 'finished') throw new Error(`expected a finished run, got ${first.status}`);
    expect(first.run.window.start).toEqual(new Date(NOW.getTime() - 7 * 86_400_000));

    // The demo alone goes on from its seed, as before.
    const demo = await service(loadConfig({ DATA_DIR: dataDir })).runOnce({ trigger: 'schedule' });
    if (demo.status !== 'finished') throw new Error(`expected a finished run, got ${demo.status}`);
    expect(demo.run.window.start).toEqual(new Date(NOW.getTime() - 900_000));
  });

  it.each<[string, string[], Record<string, string>]>([
    ['SACCT_PATH', ['sacct'], { SACCT_PATH: '/usr/bin/sacct' }],
    [
      'SLURMRESTD_URL',
      ['slurmrestd'],
      { SLURMRESTD_URL: 'http://127.0.0.1:6820', SLURMRESTD_USER: 'billing', SLURMRESTD_TOKEN: 'a.b.c' },
    ],
    ['neither (the demo alone)', ['file'], {}],
    ['FALLBACK_CSV set', ['sacct', 'file'], { SACCT_PATH: '/usr/bin/sacct', FALLBACK_CSV: '/srv/sacct.psv' }],
  ])('with %s, the runs read %j', (_label, names, env) => {
    const { sources } = buildSources(loadConfig({ DATA_DIR: dataDir, ...env }));
    expect(sources.map((source) => source.name)).toEqual(names);
  });
});
