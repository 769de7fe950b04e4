import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureBenchDatabase, generateBenchData } from '../../bench/lib/bench-data.js';
import { verifyPassword } from '../../src/modules/users/password.js';
import { withDatabase } from '../support/global-setup.js';

const name = `hb_bench_test_${randomBytes(4).toString('hex')}`;
const serverUrl = inject('adminUrl');
const shape = {
  serverUrl,
  name,
  users: 4,
  jobs: 300,
  days: 90,
  soloUsers: [
    { username: 'heavy', jobs: 60, days: 30 },
    { username: 'payer', jobs: 25, days: 30 },
  ],
};

async function query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, name) });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function ensure(options: Partial<typeof shape> = {}): Promise<string[]> {
  const messages: string[] = [];
  await ensureBenchDatabase({ ...shape, ...options, onProgress: (message) => messages.push(message) });
  return messages;
}

afterAll(async () => {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('ensureBenchDatabase (the billing benches build with the COPY generator)', () => {
  it('creates the database with the generated users, the solo users and their jobs', async () => {
    const messages = await ensure();
    expect(messages[0]).toMatch(new RegExp(`^creating the database ${name}`));

    const users = await query<{ username: string; password_hash: string }>(
      'SELECT username, password_hash FROM users ORDER BY username',
    );
    expect(users.map((user) => user.username)).toEqual([
      'admin',
      'alice',
      'bench001',
      'bench002',
      'bench003',
      'bench004',
      'bob',
      'heavy',
      'payer',
    ]);
    const payer = users.find((user) => user.username === 'payer');
    expect(await verifyPassword(payer?.password_hash as string, 'payer')).toBe(true);

    const jobs = await query<{ user: string; count: number; oldest_days: number }>(
      `SELECT "user", count(*)::int AS count, extract(epoch FROM now() - min(end_at))::float / 86400 AS oldest_days
         FROM slurm_jobs GROUP BY "user"`,
    );
    const total = jobs.reduce((sum, row) => sum + row.count, 0);
    expect(total).toBe(300 + 60 + 25);
    for (const [username, count] of [
      ['heavy', 60],
      ['payer', 25],
    ] as const) {
      const row = jobs.find((job) => job.user === username);
      expect(row?.count).toBe(count);
      expect(row?.oldest_days).toBeLessThanOrEqual(30);
    }
    // Nothing of the solo users is billed: the receipt bench bills all of payer's jobs.
    const billed = await query<{ count: number }>(
      `SELECT count(*)::int AS count FROM receipt_items i JOIN slurm_jobs j ON j.id = i.slurm_job_id
        WHERE j."user" IN ('heavy', 'payer')`,
    );
    expect(billed[0]?.count).toBe(0);
    const soloReceipts = await query(`SELECT 1 FROM receipts WHERE username IN ('heavy', 'payer')`);
    expect(soloReceipts).toHaveLength(0);
    // Each item's cost is to the minor unit, as the app writes them: the shown costs add up to the total.
    const items = await query<{ items: number; sub_minor: number; mismatched: number }>(
      `SELECT (SELECT count(*)::int FROM receipt_items) AS items,
              (SELECT count(*)::int FROM receipt_items WHERE cost <> round(cost, 2)) AS sub_minor,
              (SELECT count(*)::int FROM receipts r
                WHERE r.total <> (SELECT sum(i.cost) FROM receipt_items i WHERE i.receipt_id = r.id)) AS mismatched`,
    );
    expect(items[0]?.items).toBeGreaterThan(0);
    expect(items[0]).toMatchObject({ sub_minor: 0, mismatched: 0 });
  });

  it('reuses a database that holds the same shape', async () => {
    await query(`UPDATE slurm_jobs SET name = 'kept' WHERE id = (SELECT min(id) FROM slurm_jobs)`);
    const messages = await ensure();
    expect(messages).toEqual([expect.stringMatching(new RegExp(`^reusing the database ${name}`))]);
    expect(await query(`SELECT 1 FROM slurm_jobs WHERE name = 'kept'`)).toHaveLength(1);
  });

  it('empties and rebuilds a database of another shape', async () => {
    const messages = await ensure({ soloUsers: [{ username: 'payer', jobs: 10, days: 30 }] });
    expect(messages[0]).toMatch(/^emptying and filling the database .* \(it holds \{.*"jobs":25/);
    expect(await query(`SELECT 1 FROM slurm_jobs WHERE name = 'kept'`)).toHaveLength(0);
    expect(await query(`SELECT 1 FROM users WHERE username = 'heavy'`)).toHaveLength(0);
    const payerJobs = await query<{ count: number }>(
      `SELECT count(*)::int AS count FROM slurm_jobs WHERE "user" = 'payer'`,
    );
    expect(payerJobs[0]?.count).toBe(10);
  });

  it('is rebuilt after bench:data --reset changed its data', async () => {
    await generateBenchData({ databaseUrl: withDatabase(serverUrl, name), users: 2, jobs: 50, isReset: true });
    const messages = await ensure();
    expect(messages[0]).toMatch(/\(it has no finished bench data\)/);
    expect(await query(`SELECT 1 FROM slurm_jobs`)).toHaveLength(385);
  });

  it('refuses a solo user with the name of a generated one', async () => {
    await expect(ensure({ name: `${name}_dup`, soloUsers: [{ username: 'alice', jobs: 1, days: 1 }] })).rejects.toThrow(
      /solo user alice has the name of another user/,
    );
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name}_dup WITH (FORCE)`);
    await admin.end();
  });
});
