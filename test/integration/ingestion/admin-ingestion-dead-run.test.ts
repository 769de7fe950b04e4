import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryAcquireIngestLock } from '../../../src/modules/ingestion/ingestion.repository.js';
import { buildUser } from '../../support/factories.js';
import { type Agent, signInAs } from '../../support/sign-in.js';
import { buildTestApp } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

/**
 * A run whose process died (kill -9, the OOM killer, a host lost) stays `running` in its row. A
 * resilience walk killed the worker running Run now: /admin/ingestion then said "A run is in progress",
 * its Run now button disabled, until the next run marked the row failed; with INGEST_ENABLED=0 (cron)
 * that is the next cron run, hours away. A run holds the ingestion lock while it runs, so a row left
 * running with the lock free is a dead run.
 */

let db: TestDatabase;
let admin: Agent;
let app: ReturnType<typeof buildTestApp>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = buildTestApp(db, { env: { INGEST_ENABLED: '0' } });
  const user = await buildUser(db.prisma, { username: 'ops', role: 'admin' });
  admin = await signInAs(app, user.username, user.password);
});
afterAll(() => db?.drop());

/** The row a process that died mid-run leaves: started, never finished. */
async function runLeftRunning(): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>(
    `INSERT INTO ingestion_runs (trigger, source, window_start, window_end, outcome)
     VALUES ('manual', 'file', now() - interval '15 minutes', now(), 'running') RETURNING id`,
  );
  return rows[0]?.id as number;
}

const outcomeOf = async (id: number) =>
  (await db.pool.query<{ outcome: string }>('SELECT outcome FROM ingestion_runs WHERE id = $1', [id])).rows[0]?.outcome;

describe('/admin/ingestion after the process running a run died', () => {
  it('shows that run failed, interrupted, and offers Run now, instead of a run in progress', async () => {
    const id = await runLeftRunning();
    const page = await admin.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).not.toContain('A run is in progress');
    expect(page.text).toContain('interrupted: the process stopped before the run finished');
    const json = await admin.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(json.body.isRunning).toBe(false);
    expect(json.body.runs[0]).toMatchObject({ runId: id, outcome: 'failed' });
    expect(await outcomeOf(id)).toBe('failed');
  });

  it('still shows a run in progress while a process holds the ingestion lock, leaving its row alone', async () => {
    const id = await runLeftRunning();
    const release = await tryAcquireIngestLock(db.pool);
    expect(release).toBeDefined();
    try {
      const json = await admin.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
      expect(json.body.isRunning).toBe(true);
      expect(await outcomeOf(id)).toBe('running');
    } finally {
      await release?.();
    }
    await db.pool.query(`UPDATE ingestion_runs SET outcome = 'success', finished_at = now() WHERE id = $1`, [id]);
  });
});
