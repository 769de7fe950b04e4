import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Receipts made while CURRENCY was THB (two decimals); the site now runs with JPY (none). The usage
// pages show every cost as JPY: a billed job's receipt item (0.50 THB) is shown as 1 on its row and
// in the CSV, so the totals must add up those figures, not the items' own 0.50s (1.50 -> 2 where the
// rows read 1 + 1 + 1).
let db: TestDatabase;
const window = 'start=2025-09-14&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'kenji', password: 'kenji-password' });
  await buildUser(db.prisma, { username: 'cfo', role: 'admin', password: 'cfo-password' });
  // One core-hour each at 0.50 THB, no memory: 0.50 THB a job.
  await buildJobs(
    db,
    [1, 2, 3].map((day) => ({
      user: 'kenji',
      end: `2025-09-1${4 + day}T03:00:00Z`,
      allocCpus: 1,
      elapsedSec: 3600,
      allocMemMb: 0,
    })),
  );
  const thb = await signInAs(buildTestApp(db), 'kenji', 'kenji-password');
  await thb
    .post('/me/receipt')
    .set('Accept', 'text/html')
    .type('form')
    .send({ before: '2025-09-20', csrf_token: await csrfTokenOf(thb, '/me') })
    .expect(303);
  const items = await db.prisma.receiptItem.findMany({ select: { cost: true } });
  expect(items.map((item) => item.cost.toFixed(2))).toEqual(['0.50', '0.50', '0.50']);
});
afterAll(() => db?.drop());

/** The cost column of a usage CSV's rows, as numbers of the currency's unit. */
function csvCosts(text: string): string[] {
  const [header, ...rows] = text.trimEnd().split('\n');
  const column = header?.split(',').indexOf('cost') ?? -1;
  return rows.map((row) => row.split(',')[column] ?? '');
}

describe('usage totals after CURRENCY changed to a currency with fewer decimals', () => {
  it('My usage adds up the costs as its rows and the CSV show them', async () => {
    const kenji = await signInAs(buildTestApp(db, { env: { CURRENCY: 'JPY' } }), 'kenji', 'kenji-password');
    const csv = csvCosts((await kenji.get(`/me.csv?${window}`).expect(200)).text);
    expect(csv).toEqual(['1', '1', '1']);
    const detail = await kenji.get(`/me?${window}`).set('Accept', 'application/json').expect(200);
    expect(detail.body.jobs.map((job: { cost: string }) => job.cost)).toEqual(['1', '1', '1']);
    const aggregate = await kenji.get(`/me?${window}&view=aggregate`).set('Accept', 'application/json').expect(200);
    expect(aggregate.body.currency).toBe('JPY');
    expect(aggregate.body.totals.cost).toBe('3');
    expect(aggregate.body.days.map((day: { cost: string }) => day.cost)).toEqual(['0', '0', '0', '1', '1', '1', '0']);
    const page = await kenji.get(`/me?${window}&view=aggregate`).set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/<td data-label="Cost \(JPY\)" class="num">3<\/td>/);
  });

  it('Usage across users adds them up the same way, billed and in total', async () => {
    const cfo = await signInAs(buildTestApp(db, { env: { CURRENCY: 'JPY' } }), 'cfo', 'cfo-password');
    const csv = csvCosts((await cfo.get(`/admin/usage.csv?${window}`).expect(200)).text);
    expect(csv).toEqual(['1', '1', '1']);
    const page = await cfo.get(`/admin/usage?${window}`).set('Accept', 'text/html').expect(200);
    const footer = /<tfoot>([\s\S]*?)<\/tfoot>/.exec(page.text)?.[1] ?? '';
    // A phone shows each cell with its label: the cost's names the currency, as the header does.
    expect(footer).toContain('<td data-label="Cost (JPY)" class="num">3</td>');
    expect(page.text).not.toContain('data-label="Cost"');
    expect(footer).toContain('<td data-label="Of which billed" class="num">3</td>');
  });
});
