import type { PrismaClient } from '@prisma/client';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildReceiptRow, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The keyset pager's "rows X–Y of N" (src/shared/list-place.ts): the page's rows and its counts were
 * read by queries run side by side, each on its own connection and so its own snapshot, and a receipt
 * (or run) committed between them was counted but not shown: "Receipts 1–3 of 4" with no Older link.
 * The app here runs over a client whose list reads let a test commit a row after the page's rows were
 * read and before its count is: a page whose rows and counts come from one snapshot does not see it.
 * The receipts' lists read their page in one statement over the pg pool (listReceipts): there a row
 * commits as soon as that statement has answered, before anything else of the request reads the table.
 */
let db: TestDatabase;
let admin: Agent;
let alice: Agent;

/** Run once, by the next count of `model` after its rows were read: what commits in between. */
const between: { receipt?: () => Promise<unknown>; monthEndRun?: () => Promise<unknown> } = {};

/** The test database's client, whose receipts' and runs' count runs `between`'s work first, once the rows were read. */
function clientCommittingBetweenRowsAndCount(prisma: PrismaClient) {
  const rowsRead: Partial<Record<'receipt' | 'monthEndRun', Promise<void>>> = {};
  const hooks = (model: 'receipt' | 'monthEndRun') => ({
    async findMany({ args, query }: { args: unknown; query: (args: unknown) => Promise<unknown> }) {
      const read = query(args);
      rowsRead[model] = read.then(
        () => undefined,
        () => undefined,
      );
      return read;
    },
    async count({ args, query }: { args: unknown; query: (args: unknown) => Promise<unknown> }) {
      const work = between[model];
      if (work) {
        between[model] = undefined;
        await rowsRead[model];
        await work();
      }
      return query(args);
    },
  });
  return prisma.$extends({ query: { receipt: hooks('receipt'), monthEndRun: hooks('monthEndRun') } });
}

/**
 * The test database's pool, which runs `between.receipt` once a statement reading a page of receipts
 * (`FROM receipts r`, listReceipts' alias) has answered, before it hands the answer back: a second
 * statement of the page (its count read apart from its rows) would see that receipt.
 */
function poolCommittingAfterReceiptsPage(pool: pg.Pool): pg.Pool {
  const query = async (...args: Parameters<pg.Pool['query']>) => {
    const result = await (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
    const [config] = args as unknown[];
    const text = typeof config === 'string' ? config : (config as { text?: string } | undefined)?.text;
    const work = between.receipt;
    if (work && text && /\bFROM receipts r\b/.test(text)) {
      between.receipt = undefined;
      await work();
    }
    return result;
  };
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') return query;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  const prisma = clientCommittingBetweenRowsAndCount(db.prisma) as unknown as PrismaClient;
  const app = buildTestApp({ ...db, prisma, pool: poolCommittingAfterReceiptsPage(db.pool) });
  admin = await signInAs(app, 'boss', 'boss-password');
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

beforeEach(async () => {
  between.receipt = undefined;
  between.monthEndRun = undefined;
  await db.prisma.receipt.deleteMany();
  await db.prisma.monthEndRun.deleteMany();
  for (let index = 0; index < 3; index++) await buildReceiptRow(db, 'alice');
});

const json = (agent: Agent, path: string) => agent.get(path).set('Accept', 'application/json').expect(200);

describe("a keyset page's rows and its counts come from one snapshot", () => {
  it('/admin/receipts: a receipt committed between the rows and the count is in neither', async () => {
    between.receipt = () => buildReceiptRow(db, 'alice');
    const page = await json(admin, '/admin/receipts');
    expect(between.receipt).toBeUndefined();
    expect(page.body.receipts).toHaveLength(3);
    expect(page.body).toMatchObject({ count: 3, firstRow: 1, lastRow: 3, olderUrl: null });
    expect(await db.prisma.receipt.count()).toBe(4);
    // The next look shows it.
    expect((await json(admin, '/admin/receipts')).body).toMatchObject({ count: 4, lastRow: 4 });
  });

  it('My receipts: a receipt committed between the rows and the count is in neither', async () => {
    between.receipt = () => buildReceiptRow(db, 'alice');
    const page = await json(alice, '/me/receipts');
    expect(between.receipt).toBeUndefined();
    expect(page.body.receipts).toHaveLength(3);
    expect(page.body).toMatchObject({ count: 3, firstRow: 1, lastRow: 3, olderUrl: null });
  });

  it('the month-end runs: a run committed between the rows and the count is in neither', async () => {
    const ended = {
      billedThrough: new Date('2025-08-31T00:00:00Z'),
      startedBy: 'boss',
      startedAt: new Date('2025-09-20T04:30:00Z'),
      finishedAt: new Date('2025-09-20T04:31:00Z'),
      outcome: 'succeeded' as const,
      usersTotal: 0,
    };
    await db.prisma.monthEndRun.create({ data: ended });
    between.monthEndRun = () => db.prisma.monthEndRun.create({ data: ended });
    const page = await json(admin, '/admin/month-end');
    expect(between.monthEndRun).toBeUndefined();
    expect(page.body.runs).toHaveLength(1);
    expect(page.body).toMatchObject({ count: 1, firstRow: 1, lastRow: 1, olderUrl: null });
  });
});
