import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * HEAD of a CSV export (a link checker, a download manager asking the size first, `curl -I`) ran the
 * whole export: a slot, the COPY or every batch of rows, all streamed to nothing. HEAD now answers
 * the status and headers a GET would (Content-Type, Content-Disposition with the file's name) and
 * runs no export query. That is shown on the database itself: with the table an export reads
 * renamed away, its GET fails, while its HEAD still answers as before.
 */
let db: TestDatabase;
let alice: Agent;
let admin: Agent;
let bob: Agent;
let receiptId: number;
const metrics = createMetrics();
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-14&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' },
    { user: 'alice', jobId: '102', end: '2025-09-19T03:00:00Z' },
    { user: 'boss', jobId: '103', end: '2025-09-19T04:00:00Z' },
  ]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now, metrics });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  bob = await signInAs(app, 'bob', 'bob-password');
  receiptId = await billJobs(alice, '2025-09-18');
  // The receipt is paid, so that the paid CSV has a row to read.
  await db.pool.query(`UPDATE receipts SET status = 'paid', paid_at = '2025-09-19T03:00:00Z' WHERE id = $1`, [
    receiptId,
  ]);
});
afterAll(() => db?.drop());

/**
 * Runs `body` with `name` (a table, or `table.column`) renamed away: any query that reads it fails
 * meanwhile.
 */
async function withoutName<T>(name: string, body: () => Promise<T>): Promise<T> {
  const [table, column] = name.split('.') as [string, string | undefined];
  const rename = (from: string, to: string) =>
    column
      ? db.pool.query(`ALTER TABLE ${table} RENAME COLUMN ${from} TO ${to}`)
      : db.pool.query(`ALTER TABLE ${from} RENAME TO ${to}`);
  const from = column ?? table;
  const to = `${from}_away`;
  await rename(from, to);
  try {
    return await body();
  } finally {
    await rename(to, from);
  }
}

const EXPORTS: [string, () => Agent, () => string, string, string][] = [
  ['/me.csv', () => alice, () => `/me.csv?${WINDOW}`, 'slurm_jobs', 'my_usage'],
  ['/admin/my.csv', () => admin, () => `/admin/my.csv?${WINDOW}`, 'slurm_jobs', 'my_usage'],
  ['/admin/usage.csv', () => admin, () => `/admin/usage.csv?${WINDOW}`, 'slurm_jobs', 'user_usage'],
  [
    "a researcher's receipt items",
    () => alice,
    () => `/me/receipts/${receiptId}/items.csv`,
    // The receipt's own row (and its count of items) is read first, to answer 404 for another's.
    'receipt_items.mem_gb_hours',
    'receipt_items',
  ],
  [
    "an admin's receipt items",
    () => admin,
    () => `/admin/receipts/${receiptId}/items.csv`,
    // The receipt's own row (and its count of items) is read first, to answer 404 for another's.
    'receipt_items.mem_gb_hours',
    'receipt_items',
  ],
  ['/admin/paid.csv', () => admin, () => `/admin/paid.csv?${WINDOW}`, 'receipts', 'admin_paid'],
  ['/admin/receipts.csv', () => admin, () => '/admin/receipts.csv', 'receipts', 'admin_receipts'],
  ['/admin/audit.csv', () => admin, () => '/admin/audit.csv', 'audit_log', 'audit'],
];

describe('HEAD of a CSV export', () => {
  it.each(EXPORTS)(
    '%s: the same status and headers as its GET, without running the export query',
    async (_, agent, path, name, kind) => {
      const got = await agent().get(path()).expect(200);
      expect(got.text.split('\n').length).toBeGreaterThan(2);
      await withoutName(name, async () => {
        const downloads = await metricValue(metrics, 'csv_download_total', { kind });
        const head = await agent().head(path());
        expect(head.status).toBe(200);
        for (const header of ['content-type', 'content-disposition', 'cache-control']) {
          expect(head.headers[header]).toBe(got.headers[header]);
        }
        expect(head.text ?? '').toBe('');
        // A HEAD is not a download.
        expect(await metricValue(metrics, 'csv_download_total', { kind })).toBe(downloads);
        // The control: the export's GET does read what was renamed away.
        const failed = await agent().get(path());
        expect(failed.status).not.toBe(200);
      });
    },
  );

  it('the CSV for Excel (bom=1) has the same headers', async () => {
    const got = await alice.get(`/me.csv?${WINDOW}&bom=1`).expect(200);
    const head = await alice.head(`/me.csv?${WINDOW}&bom=1`).expect(200);
    expect(head.headers['content-disposition']).toBe(got.headers['content-disposition']);
    expect(head.headers['content-disposition']).toBe('attachment; filename="usage-alice-2025-09-14-2025-09-20.csv"');
  });

  it('the window as a GET would resolve it names the file, with no dates given too', async () => {
    const got = await alice.get('/me.csv').expect(200);
    const head = await alice.head('/me.csv').expect(200);
    expect(head.headers['content-disposition']).toBe(got.headers['content-disposition']);
    expect(head.headers['content-disposition']).toBe('attachment; filename="usage-alice-2025-09-14-2025-09-20.csv"');
  });

  it.each([
    ['dates the wrong way round', () => alice, '/me.csv?start=2025-09-20&end=2025-09-14', 400],
    ['a bom other than 1', () => admin, `/admin/usage.csv?${WINDOW}&bom=2`, 400],
    ['a paid window the wrong way round', () => admin, '/admin/paid.csv?start=2025-09-20&end=2025-09-14', 400],
    ['a receipt that is not there', () => admin, '/admin/receipts/999999/items.csv', 404],
    ['an unknown audit filter date', () => admin, '/admin/audit.csv?from=yesterday', 400],
    ['an audit window the wrong way round', () => admin, '/admin/audit.csv?from=2026-03-05&to=2026-03-01', 400],
  ] as const)('is refused as its GET is: %s', async (_, agent, path, status) => {
    const got = await agent().get(path).set('Accept', 'application/json');
    expect(got.status).toBe(status);
    const head = await agent().head(path).set('Accept', 'application/json');
    expect(head.status).toBe(status);
  });

  it("another user's receipt stays a 404", async () => {
    await bob.get(`/me/receipts/${receiptId}/items.csv`).expect(404);
    await bob.head(`/me/receipts/${receiptId}/items.csv`).expect(404);
  });
});
