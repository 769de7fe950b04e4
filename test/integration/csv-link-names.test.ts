import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A page with two CSVs offered both as "CSV for Excel": a screen reader's list of links read that name
 * twice, for different files (found by the accessibility review, WCAG 2.4.4). Each CSV control of a
 * page now has a name of its own, which starts with the words shown (WCAG 2.5.3: a voice user says
 * what they see).
 */
let db: TestDatabase;
let alice: Agent;
let admin: Agent;
let receiptId: number;
const now = () => new Date('2025-09-20T05:00:00Z');
const WINDOW = 'start=2025-09-14&end=2025-09-20';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  await buildJobs(db, [{ user: 'alice', jobId: '101', end: '2025-09-18T03:00:00Z' }]);
  const app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  receiptId = await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

interface CsvControl {
  /** What the control shows. */
  text: string;
  /** What a screen reader names it: its aria-label, else its text. */
  name: string;
}

/** The page's links to a CSV and the paid receipts export's buttons, as a screen reader lists them. */
function csvControlsOf(html: string): CsvControl[] {
  const links = [...html.matchAll(/<a ([^>]*href="[^"]*\.csv[^"]*"[^>]*)>([\s\S]*?)<\/a>/g)];
  const paidExport = /<form method="get" action="\/admin\/paid\.csv[\s\S]*?<\/form>/.exec(html)?.[0] ?? '';
  const buttons = [...paidExport.matchAll(/<button ([^>]*)>([\s\S]*?)<\/button>/g)];
  return [...links, ...buttons].map((match) => {
    const text = visibleTextOf(match[2] ?? '');
    const label = / aria-label="([^"]*)"/.exec(` ${match[1]}`)?.[1];
    return { text, name: label === undefined ? text : visibleTextOf(label) };
  });
}

/** Every CSV control of the page has a name of its own, starting with what it shows. */
function expectDistinctNames(html: string, atLeast: number): CsvControl[] {
  const controls = csvControlsOf(html);
  expect(controls.length).toBeGreaterThanOrEqual(atLeast);
  const names = controls.map((control) => control.name);
  expect(new Set(names).size, names.join(' | ')).toBe(names.length);
  for (const control of controls) expect(control.name.startsWith(control.text), control.name).toBe(true);
  return controls;
}

const html = async (agent: Agent, path: string, status = 200) =>
  (await agent.get(path).set('Accept', 'text/html').expect(status)).text;

describe('the names of the CSV downloads of a page', () => {
  it('Usage across users: the jobs and my own usage, each also for Excel', async () => {
    for (const query of [WINDOW, `${WINDOW}&user=alice`]) {
      const controls = expectDistinctNames(await html(admin, `/admin/usage?${query}`), 4);
      expect(controls.map((control) => control.name)).toEqual(
        query === WINDOW
          ? [
              'Download all jobs (CSV)',
              'CSV for Excel of all jobs',
              'My own usage (CSV)',
              'CSV for Excel of my own usage',
            ]
          : [
              'Download these jobs (CSV)',
              'CSV for Excel of these jobs',
              'My own usage (CSV)',
              'CSV for Excel of my own usage',
            ],
      );
    }
  });

  it('the audit log filtered: these entries and the whole log, each also for Excel', async () => {
    const filtered = expectDistinctNames(await html(admin, '/admin/audit?action=receipt.create'), 4);
    expect(filtered.map((control) => control.name)).toEqual([
      'Download these entries (CSV)',
      'CSV for Excel of these entries',
      'the whole log (CSV)',
      'CSV for Excel of the whole log',
    ]);
    // Refused filters: the whole log's two alone, named as when beside the filtered entries.
    const refused = expectDistinctNames(await html(admin, '/admin/audit?from=2026-02-30', 400), 2);
    expect(refused.map((control) => control.name)).toEqual(['the whole log (CSV)', 'CSV for Excel of the whole log']);
    expectDistinctNames(await html(admin, '/admin/audit'), 2);
  });

  it('My usage, a receipt (the researcher’s and the admin’s) and Billing’s paid receipts export', async () => {
    expectDistinctNames(await html(alice, `/me?${WINDOW}`), 2);
    expectDistinctNames(await html(alice, `/me/receipts/${receiptId}`), 2);
    expectDistinctNames(await html(admin, `/admin/receipts/${receiptId}`), 2);
    expectDistinctNames(await html(admin, '/admin/receipts'), 2);
  });
});
