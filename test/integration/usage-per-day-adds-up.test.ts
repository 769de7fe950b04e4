import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A researcher adding up Per day's column of CPU hours got 174.10 under a Total of 174.09: each
 * day and the total were rounded to two decimals on their own, from hours priced to six. The
 * hours are shown as they are priced (as on Jobs, a receipt and the CSV), so the days add up to
 * the total, here and on Admin → Usage.
 */
let db: TestDatabase;
let alice: Agent;
let boss: Agent;
const WINDOW = 'start=2025-09-01&end=2025-09-03';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'bob', password: 'bob-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  // 21 CPU-seconds are 0.005833 core-hours: 0.01 each when rounded alone, 0.02 together.
  await buildJobs(db, [
    { user: 'alice', end: '2025-09-01T05:00:00Z', totalCpuSec: '21' },
    { user: 'alice', end: '2025-09-02T05:00:00Z', totalCpuSec: '21' },
    { user: 'alice', end: '2025-09-03T05:00:00Z', totalCpuSec: '21' },
    { user: 'bob', end: '2025-09-02T06:00:00Z', totalCpuSec: '21' },
  ]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
  boss = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** The cells of a column as numbers, and its total (the last cell, in the table's foot). */
function columnOf(html: string, label: string) {
  const cells = cellsLabelled(html, label).map((text) => Number(text.replaceAll(',', '')));
  return { rows: cells.slice(0, -1), total: cells.at(-1) as number };
}
const sumOf = (values: number[]) => values.reduce((sum, value) => sum + value * 1e6, 0) / 1e6;

describe("Per day's hours", () => {
  it('add up to the total under them, as the CSV rows do', async () => {
    const page = await alice.get(`/me?${WINDOW}&view=aggregate`).set('Accept', 'text/html').expect(200);
    const cpu = columnOf(page.text, 'CPU h');
    expect(cpu.rows).toHaveLength(3);
    expect(cpu.rows).toEqual([0.005833, 0.005833, 0.005833]);
    expect(sumOf(cpu.rows)).toBe(cpu.total);
  });

  it("add up on Admin → Usage's users too", async () => {
    const page = await boss.get(`/admin/usage?${WINDOW}`).set('Accept', 'text/html').expect(200);
    const cpu = columnOf(page.text, 'CPU h');
    expect(cpu.rows).toHaveLength(2);
    expect(sumOf(cpu.rows)).toBe(cpu.total);
  });
});
