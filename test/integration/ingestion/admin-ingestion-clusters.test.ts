import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tryAcquireIngestLock } from '../../../src/modules/ingestion/ingestion.repository.js';
import { buildUser } from '../../support/factories.js';
import { visibleTextOf } from '../../support/html.js';
import { type Agent, signInAs } from '../../support/sign-in.js';
import { buildTestApp } from '../../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

// Two instances on one database, one per cluster: this one reads alpha (SLURM_CLUSTER=alpha), another
// beta. Its /admin/ingestion lists both's runs; its freshness, "in progress" and Run now are alpha's.

let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  const app = buildTestApp(db, { env: { INGEST_ENABLED: '0', SLURM_CLUSTER: 'alpha', APP_TZ: 'UTC' } });
  const user = await buildUser(db.prisma, { username: 'ops', role: 'admin' });
  admin = await signInAs(app, user.username, user.password);
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.pool.query('TRUNCATE ingestion_runs RESTART IDENTITY');
});

/** A run of `cluster` as its instance records it; its id. */
async function run(cluster: string | null, outcome: string, windowEnd: string): Promise<number> {
  const { rows } = await db.pool.query<{ id: number }>(
    `INSERT INTO ingestion_runs (trigger, cluster, source, window_start, window_end, outcome, finished_at)
     VALUES ('schedule', $1, 'sacct', $3::timestamptz - interval '10 minutes', $3, $2::"IngestionOutcome",
             CASE WHEN $2 = 'running' THEN NULL ELSE $3::timestamptz END)
     RETURNING id`,
    [cluster, outcome, windowEnd],
  );
  return rows[0]?.id as number;
}

const outcomeOf = async (id: number) =>
  (await db.pool.query<{ outcome: string }>('SELECT outcome FROM ingestion_runs WHERE id = $1', [id])).rows[0]?.outcome;

describe('/admin/ingestion of an instance sharing its database with another cluster', () => {
  it("names no cluster while the runs are of one, and each run's once another appears, with whose the figures are", async () => {
    await run('alpha', 'success', '2026-11-23T14:00:00Z');
    const alone = await admin.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(alone.text).not.toContain('>Cluster</th>');
    expect(alone.text).not.toContain('This instance reads cluster');

    await run('beta', 'success', '2026-11-23T15:00:00Z');
    const page = await admin.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<th scope="col">Cluster</th>');
    expect(page.text).toMatch(/<td[^>]*>schedule<\/td>\s*<td[^>]*class="run-cluster">beta<\/td>/);
    expect(page.text).toMatch(/<td[^>]*>schedule<\/td>\s*<td[^>]*class="run-cluster">alpha<\/td>/);
    // Alpha's data, not beta's newer mark.
    expect(visibleTextOf(page.text)).toContain('Data complete through 2026-11-23 14:00 (UTC)');
    expect(visibleTextOf(page.text)).toContain('for cluster alpha');
    expect(visibleTextOf(page.text)).toContain(
      'This instance reads cluster alpha: the figures above and Run now are its; the runs below are every cluster',
    );
    const json = await admin.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(json.body.cluster).toBe('alpha');
    expect(json.body.dataThrough).toBe('2026-11-23T14:00:00.000Z');
    expect(json.body.runs.map((entry: { cluster: string }) => entry.cluster)).toEqual(['beta', 'alpha']);
  });

  it("a run of the other cluster in progress leaves Run now to this one's, and is not taken for a dead run", async () => {
    await run('alpha', 'success', '2026-11-23T14:00:00Z');
    const betaRun = await run('beta', 'running', '2026-11-23T15:00:00Z');
    const release = await tryAcquireIngestLock(db.pool, 'beta');
    expect(release).toBeDefined();
    try {
      const page = await admin.get('/admin/ingestion').set('Accept', 'text/html').expect(200);
      expect(page.text).not.toContain('A run is in progress');
      expect(page.text).toContain('>Run now</button>');
      expect(await outcomeOf(betaRun)).toBe('running');
    } finally {
      await release?.();
    }
    // Beta's process died (its lock free): its run is shown failed, whichever instance's page is looked at.
    const json = await admin.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
    expect(json.body.runs[0]).toMatchObject({ runId: betaRun, cluster: 'beta', outcome: 'failed' });
    expect(await outcomeOf(betaRun)).toBe('failed');
  });

  it("a run of this instance's cluster in progress disables Run now", async () => {
    const alphaRun = await run('alpha', 'running', '2026-11-23T15:00:00Z');
    await run('beta', 'success', '2026-11-23T15:00:00Z');
    const release = await tryAcquireIngestLock(db.pool, 'alpha');
    try {
      const json = await admin.get('/admin/ingestion').set('Accept', 'application/json').expect(200);
      expect(json.body.isRunning).toBe(true);
      expect(await outcomeOf(alphaRun)).toBe('running');
    } finally {
      await release?.();
    }
  });
});
