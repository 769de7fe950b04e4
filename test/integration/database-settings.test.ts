import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('database connections', () => {
  it('plan with an SSD page cost, whatever the server default, for Prisma and raw pg alike', async () => {
    const { rows } = await db.pool.query<{ random_page_cost: string }>('SHOW random_page_cost');
    expect(rows[0]?.random_page_cost).toBe('1.1');
    const viaPrisma = await db.prisma.$queryRaw<{ random_page_cost: string }[]>`SHOW random_page_cost`;
    expect(viaPrisma[0]?.random_page_cost).toBe('1.1');
  });
});
