import { Prisma } from '@prisma/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryPrepared } from '../../src/db/prepared-query.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('queryPrepared', () => {
  it('prepares each text once per connection under one name and binds the values', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const statement = (value: number) => Prisma.sql`SELECT ${value}::int + 1 AS next, ${'x'}::text AS tag`;
      const results = await Promise.all([1, 2, 3, 4, 5, 6].map((value) => queryPrepared(pool, statement(value))));
      expect(results.map((rows) => rows[0]?.next)).toEqual([2, 3, 4, 5, 6, 7]);
      const prepared = await queryPrepared<{ name: string; statement: string }>(
        pool,
        Prisma.sql`SELECT name, statement FROM pg_prepared_statements WHERE statement = ${statement(1).text}`,
      );
      expect(prepared).toHaveLength(1);
      expect(prepared[0]?.name).toMatch(/^hb_[0-9a-f]{20}$/);
    } finally {
      await pool.end();
    }
  });

  it('gives different texts different names, so a connection never confuses them', async () => {
    const first = await queryPrepared<{ v: string }>(db.pool, Prisma.sql`SELECT ${'a'}::text AS v`);
    const second = await queryPrepared<{ v: string }>(db.pool, Prisma.sql`SELECT ${'b'}::text || 'z' AS v`);
    expect([first[0]?.v, second[0]?.v]).toEqual(['a', 'bz']);
  });

  it('reports a bad statement as an error and leaves the connection usable', async () => {
    await expect(queryPrepared(db.pool, Prisma.sql`SELECT ${1}::int / 0 AS boom`)).rejects.toThrow(/division by zero/);
    const rows = await queryPrepared<{ ok: number }>(db.pool, Prisma.sql`SELECT ${7}::int AS ok`);
    expect(rows[0]?.ok).toBe(7);
  });
});
