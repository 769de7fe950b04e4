import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { type Database, openDatabase } from '../../src/db/database.js';
import { startIngestionScheduler } from '../../src/modules/ingestion/ingestion.scheduler.js';
import { createIngestionService } from '../../src/modules/ingestion/ingestion.service.js';
import { createSacctFileSource } from '../../src/modules/ingestion/sacct-file.source.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildUser } from '../support/factories.js';
import { postLogin } from '../support/sign-in.js';
import { buildTestConfig, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A database that answers and has every table but only reads: a standby after a failover that left
// DATABASE_URL (or its DNS name) on the old primary, or a database set read-only for maintenance.
// /readyz said ready and hpc_ready read 1, while signing in (and every page writing) was a 500
// "unhandled error" with "cannot execute … in a read-only transaction".

const READ_ONLY = 'the database only reads (a standby, or set read-only): point DATABASE_URL at the primary';

const databases: TestDatabase[] = [];
const opened: Database[] = [];
afterAll(async () => {
  await Promise.all(opened.splice(0).map((database) => database.close()));
  await Promise.all(databases.splice(0).map((database) => database.drop()));
});

describe('a database that only reads', () => {
  it('is not ready (503 saying so, hpc_ready 0), and a write is the 503 database-unavailable answer, not a 500', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const user = await buildUser(db.prisma, { username: 'read-only-user' });
    // Every new connection's transactions only read, as on a hot standby.
    await db.pool.query(`ALTER DATABASE ${db.name} SET default_transaction_read_only = on`);
    const logged: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          logged.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          done();
        },
      }),
    );
    const config = buildTestConfig(db.url, {});
    const database = openDatabase(db.url, { poolMax: 2, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
    opened.push(database);
    const metrics = createMetrics();
    const app = createApp({ config, db: database, logger, metrics });

    const ready = await request(app).get('/readyz').expect(503);
    expect(ready.body).toEqual({ status: 'error', error: READ_ONLY });
    expect(await metricValue(metrics, 'hpc_ready')).toBe(0);
    expect(logged.find((entry) => entry.msg === 'not ready')).toMatchObject({
      level: 40,
      err: `database at ${new URL(db.url).host} only reads (transaction_read_only is on: a standby, or default_transaction_read_only set): point DATABASE_URL at the primary`,
    });

    const { response } = await postLogin(app, user.username, user.password);
    expect(response.status).toBe(503);
    expect(response.text).toContain('The database is unavailable right now. Try again in a moment.');
    expect(logged.find((entry) => entry.level === 50)).toMatchObject({ msg: `database unavailable: ${READ_ONLY}` });
    expect(logged.map((entry) => entry.msg)).not.toContain('unhandled error');

    // Writable again (the failover finished, DATABASE_URL corrected): ready at the next check.
    await db.pool.query(`ALTER DATABASE ${db.name} RESET default_transaction_read_only`);
    await database.close();
    opened.pop();
    const writable = openDatabase(db.url, { poolMax: 2, queryTimeoutMs: config.dbQueryTimeoutMs, logger });
    opened.push(writable);
    const again = createApp({ config, db: writable, logger, metrics: createMetrics() });
    await request(again).get('/readyz').expect(200);
  });

  it('the scheduled ingestion says its run was not started and why (a warning), not that ingestion crashed', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    await db.pool.query(`ALTER DATABASE ${db.name} SET default_transaction_read_only = on`);
    const database = openDatabase(db.url, { poolMax: 2, queryTimeoutMs: 30_000, logger: pino({ level: 'silent' }) });
    opened.push(database);
    const lines: Array<{ level: number; msg: string; err?: unknown }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const capture = path.resolve(import.meta.dirname, '../fixtures/slurm/22.05/final/sacct-steps-extra.psv');
    const service = createIngestionService({
      db: database,
      sources: [createSacctFileSource({ path: capture, timeZone: 'UTC', defaultCluster: 'lab' })],
      unconfigured: {},
      logger,
      metrics: createMetrics(),
      overlapSec: 900,
      initialLookbackSec: 86_400,
    });
    const stop = startIngestionScheduler({ service, intervalSec: 3600, logger, initialDelayMs: 0 });
    await expect.poll(() => lines.some((line) => line.msg.startsWith('ingestion run '))).toBe(true);
    await stop();

    expect(lines.filter((line) => line.msg.startsWith('ingestion run '))).toEqual([
      expect.objectContaining({
        level: 40,
        msg: `ingestion run not started: ${READ_ONLY}; the next interval tries again`,
        err: expect.stringMatching(/read-only transaction/),
      }),
    ]);
  });
});
