import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { cellsLabelled } from '../support/html.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Per day's charts name each bar's day and value in its tooltip. The table under them writes the
 * hours to the six decimals they are priced at, but the tooltips still rounded them to two: a day of
 * 21 CPU-seconds read "0.01 core-h" over the bar and 0.005833 in the table below it, and a day of
 * 15 GPU-seconds (0.05 THB at 12 THB an hour) read "0.00 GPU-h", as if it had used no GPU at all.
 */
let db: TestDatabase;
let alice: Agent;
const WINDOW = 'start=2025-09-01&end=2025-09-02';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildJobs(db, [
    { user: 'alice', end: '2025-09-01T05:00:00Z', totalCpuSec: '21' },
    // 15 s with one GPU: 0.004167 GPU-hours.
    { user: 'alice', end: '2025-09-02T05:00:00Z', totalCpuSec: '5000', allocGpus: 1, elapsedSec: 15 },
  ]);
  const app = buildTestApp(db, { now: () => new Date('2025-09-20T05:00:00Z') });
  alice = await signInAs(app, 'alice', 'alice-password');
});
afterAll(() => db?.drop());

/** Each bar's tooltip of the chart titled `title`, by day: "2025-09-01" -> "0.005833 core-h". */
function tooltipsOf(html: string, title: string): Map<string, string> {
  const svg = new RegExp(`<svg [^>]*aria-label="${title}"[^>]*>([\\s\\S]*?)</svg>`).exec(html)?.[1] ?? '';
  return new Map(
    [...svg.matchAll(/<rect [^>]*><title>(\d{4}-\d\d-\d\d): ([^<]*)<\/title><\/rect>/g)].map((match) => [
      match[1] as string,
      match[2] as string,
    ]),
  );
}

describe("Per day's chart tooltips", () => {
  it('give each day the hours the table under the chart gives it', async () => {
    const page = await alice.get(`/me?${WINDOW}&view=aggregate`).set('Accept', 'text/html').expect(200);
    // The table lists the days newest first, then the total.
    const cpu = cellsLabelled(page.text, 'CPU h');
    const gpu = cellsLabelled(page.text, 'GPU h');
    expect(cpu.slice(0, 2)).toEqual(['1.388889', '0.005833']);
    expect(gpu.slice(0, 2)).toEqual(['0.004167', '0.000000']);

    const cpuTips = tooltipsOf(page.text, 'CPU core-hours per day');
    expect(cpuTips.get('2025-09-01')).toBe('0.005833 core-h');
    expect(cpuTips.get('2025-09-02')).toBe('1.388889 core-h');
    const gpuTips = tooltipsOf(page.text, 'GPU-hours per day');
    expect(gpuTips.get('2025-09-02')).toBe('0.004167 GPU-h');
    expect(gpuTips.get('2025-09-01')).toBe('0.000000 GPU-h');
  });
});
