import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * My usage's Per day and Billed rows had no row header: every cell was a td, so a screen reader moving
 * down a column heard a figure without the day (or job) it belongs to, and a row stacked as a card on a
 * phone had no name. Each row is headed by its day (Per day) or its job (Billed): th scope="row".
 */
let db: TestDatabase;
let alice: Agent;
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-14&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [
    { user: 'alice', jobId: '101', end: '2025-09-17T03:00:00Z' },
    { user: 'alice', jobId: '102', end: '2025-09-18T03:00:00Z' },
  ]);
  alice = await signInAs(buildTestApp(db, { now }), 'alice', 'alice-password');
  await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

/** The rows of the page's table body, each as the cells' tag, scope and text. */
async function bodyRowsOf(view: string): Promise<string[][]> {
  const html = (await alice.get(`/me?${WINDOW}&view=${view}`).set('Accept', 'text/html').expect(200)).text;
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<(td|th)((?: [a-z-]+="[^"]*")*)>/g)].map(
      (cell) => `${cell[1]}${/ scope="([^"]*)"/.exec(cell[2] ?? '')?.[0] ?? ''}`,
    ),
  );
}

describe("My usage's rows are headed", () => {
  it('Per day: each row by its day (th scope=row), its figures td', async () => {
    const rows = await bodyRowsOf('aggregate');
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const row of rows) expect(row).toEqual(['th scope="row"', 'td', 'td', 'td', 'td', 'td']);
  });

  it('Billed: each row by its job (th scope=row)', async () => {
    const rows = await bodyRowsOf('billed');
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toEqual(['td', 'td', 'td', 'th scope="row"', 'td', 'td', 'td', 'td']);
  });
});
