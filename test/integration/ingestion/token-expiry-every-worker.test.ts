import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIngestionService } from '../../../src/modules/ingestion/ingestion.factory.js';
import { createMetrics, type Metrics } from '../../../src/modules/metrics/metrics.js';
import { createLogger } from '../../../src/shared/logger.js';
import { buildTestConfig } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token as `scontrol token` prints it (the signature is not checked). */
const jwtLine = (exp: number) =>
  `SLURM_JWT=${part({ alg: 'HS256', typ: 'JWT' })}.${part({ exp, sun: 'billing' })}.sig\n`;

async function tokenExpiryOf(metrics: Metrics): Promise<number[]> {
  return (await metrics.ingestTokenExpiry.get()).values.map((sample) => sample.value);
}

/**
 * slurm_ingest_token_expiry_timestamp_seconds with WEB_CONCURRENCY > 1: every worker schedules, one run
 * per interval goes through, and the others' ticks are skipped ("another process ran one this interval").
 * Seen on the lab (2 workers, 18 runs, all by worker 2): the token file renewed with a token that expires
 * sooner (scontrol token without lifespan=: 30 minutes) showed in the running worker, the other kept the
 * expiry it read at start, and the maximum the instance exports stayed 90 days ahead: SlurmrestdTokenExpiring
 * never fired, and the token expired unwarned.
 */
describe('the token expiry gauge of a worker whose scheduled runs are skipped', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'token-expiry-worker-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows the token file at each of its ticks, as the worker that runs does', async () => {
    const tokenFile = path.join(dir, 'slurm-jwt');
    const now = Math.floor(Date.now() / 1000);
    writeFileSync(tokenFile, jwtLine(now + 7_776_000));
    // The worker that runs: any run reading up to now makes the others' ticks skip this interval.
    const csv = path.join(dir, 'sacct.psv');
    copyFileSync(path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/final/sacct-steps.psv'), csv);
    const running = buildIngestionService({
      config: buildTestConfig(db.url, { FALLBACK_CSV: csv, APP_TZ: 'UTC' }),
      db,
      logger: createLogger('silent'),
      metrics: createMetrics(),
    });
    expect((await running.runOnce({ trigger: 'schedule' })).status).toBe('finished');

    const metrics = createMetrics();
    const idle = buildIngestionService({
      config: buildTestConfig(db.url, {
        SLURMRESTD_URL: 'http://127.0.0.1:9',
        SLURMRESTD_USER: 'billing',
        SLURMRESTD_TOKEN_FILE: tokenFile,
      }),
      db,
      logger: createLogger('silent'),
      metrics,
    });
    const tick = () => idle.runOnce({ trigger: 'schedule', skipIfFinishedWithinSec: 30 });
    await expect.poll(() => tokenExpiryOf(metrics), { timeout: 2000 }).toEqual([now + 7_776_000]);

    // Renewed with a token that expires in 30 minutes: the tick is skipped, and the gauge follows the file.
    writeFileSync(tokenFile, jwtLine(now + 1800));
    expect(await tick()).toEqual({ status: 'skipped', reason: 'recent' });
    await expect.poll(() => tokenExpiryOf(metrics), { timeout: 2000 }).toEqual([now + 1800]);

    // Replaced by a token that is no JWT: no series, as at start. A file that cannot be read keeps the last.
    writeFileSync(tokenFile, 'rotated-opaque-token\n');
    expect(await tick()).toEqual({ status: 'skipped', reason: 'recent' });
    await expect.poll(() => tokenExpiryOf(metrics), { timeout: 2000 }).toEqual([]);
    writeFileSync(tokenFile, jwtLine(now + 3600));
    expect(await tick()).toEqual({ status: 'skipped', reason: 'recent' });
    await expect.poll(() => tokenExpiryOf(metrics), { timeout: 2000 }).toEqual([now + 3600]);
    rmSync(tokenFile);
    expect(await tick()).toEqual({ status: 'skipped', reason: 'recent' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await tokenExpiryOf(metrics)).toEqual([now + 3600]);
  });
});
