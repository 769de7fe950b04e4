import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revealControls } from '../../src/shared/visible-text.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { expectCsvTextSqlAsNode } from '../support/csv-copy.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A bidirectional embedding, override or isolate (U+202A-U+202E, U+2066-U+2069) turns the text
 * after it around until the line ends. Job names, accounts and partitions come from Slurm, as
 * users and their admins typed them, and the usage CSVs (written by PostgreSQL) and a receipt's items.csv wrote them raw: opened in an editor, a right-to-left override in a job name showed the
 * rest of its line, the cost included, backwards. They are written as their JSON escape (\u202e),
 * as revealControls writes them in paid.csv, audit.csv and on the pages.
 */
const CONTROLS = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];
const BIDI = /[\u202a-\u202e\u2066-\u2069]/u;

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;
// 2025-09-20 12:00 in Bangkok, after every job below ended.
const now = () => new Date('2025-09-20T05:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
});
afterAll(() => db?.drop());

/** The texts the database and Node must write alike: every control, where a formula check looks too. */
const TRICKY_TEXTS: string[] = [
  ...CONTROLS.map((control) => `run${control}01`),
  ...CONTROLS.map((control) => `${control}start`),
  ...CONTROLS.map((control) => `end${control}`),
  CONTROLS.join(''),
  '\u202e',
  '\u202e\u202e',
  '\u2069\u202a',
  'a\u202eb\u2066c\u2069d\u202ce',
  '=\u202e1+2',
  '+\u2066x',
  '-\u202ay',
  '@\u2069',
  '\t\u202e',
  '\r\u202e',
  '\u202e=1',
  '\u2066@SUM(1)',
  '=HYPERLINK("\u202ehttp://x")',
  'a,\u202e"b"',
  'line\u202e\nbreak',
  // An escape's text already there stays as it is; a backslash before a control is kept.
  '\\u202e',
  '\\\u202e',
  'ünï\u202ecødé',
  'งาน\u2067ทดสอบ',
  '😀\u202e😀',
  // Neighbours that are not embeddings, overrides or isolates stay.
  '\u2029\u202f\u2065\u206a\u200e\u200f\u061c',
  // With a formula after a `;` or a tab (escaped there too), a control before or after either.
  'x;\u202e=1',
  '\u202e;=1',
  ';=\u202e1',
  '=\u202e;+1',
  '\t\u2066@x;-1',
  'a\u202e;b',
  'plain',
  '',
];

describe('bidirectional controls in the CSVs written by PostgreSQL', () => {
  it('are escaped by csvTextSql exactly as escapeCsvText escapes them in Node', async () => {
    const written = await expectCsvTextSqlAsNode(db.pool, TRICKY_TEXTS);
    expect(written).not.toMatch(BIDI);
    expect(written).not.toMatch(/[;\t][=+\-@]/);
  });

  it('are escaped in /me.csv, /admin/my.csv and /admin/usage.csv', async () => {
    const jobs = CONTROLS.map((control, index) => ({
      user: 'alice',
      jobId: String(9100 + index),
      cluster: `hpc${control}`,
      name: `train${control}-net 2.50`,
      account: `phys${control}ics`,
      partition: `gpu${control}`,
      end: new Date(Date.UTC(2025, 8, 15, index)),
    }));
    const bossJob = { ...jobs[4], user: 'boss', jobId: '9200' } as (typeof jobs)[number];
    await buildJobs(db, [...jobs, bossJob]);
    const window = 'start=2025-09-14&end=2025-09-19';
    const exports = [
      // One user's window: through the session's function.
      { agent: alice, path: `/me.csv?${window}`, jobs },
      { agent: admin, path: `/admin/my.csv?${window}`, jobs: [bossJob] },
      // Across users, and filtered by an account: a plain COPY.
      { agent: admin, path: `/admin/usage.csv?${window}`, jobs: [...jobs, bossJob] },
      {
        agent: admin,
        path: `/admin/usage.csv?${window}&account=${encodeURIComponent(bossJob.account)}`,
        jobs: [jobs[4], bossJob],
      },
    ];
    for (const { agent, path, jobs: listed } of exports) {
      const csv = await agent.get(path).expect(200);
      expect(csv.text, path).not.toMatch(BIDI);
      const lines = csv.text.trimEnd().split('\n');
      expect(lines, path).toHaveLength(listed.length + 1);
      for (const job of listed) {
        const line = lines.find((row) => row.startsWith(`${job?.jobId},`));
        expect(line, `${path} ${job?.jobId}`).toContain(
          `,${revealControls(job?.cluster ?? '')},${revealControls(job?.name ?? '')},${job?.user},${revealControls(job?.account ?? '')},` +
            `${revealControls(job?.partition ?? '')},COMPLETED,`,
        );
      }
    }
  });

  it("are escaped in a receipt's items.csv, for its researcher and for an admin", async () => {
    const jobs = CONTROLS.map((control, index) => ({
      user: 'alice',
      jobId: String(9300 + index),
      cluster: `hpc${control}`,
      name: `train${control}-net 2.50`,
      end: new Date(Date.UTC(2025, 8, 16, index)),
    }));
    await buildJobs(db, jobs);
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-19', csrf_token: await csrfTokenOf(alice, '/me') })
      .expect(303);
    const receiptPath = (created.headers.location as string).replace(/#.*$/, '');
    const receiptId = receiptPath.split('/').at(-1);
    for (const { agent, path } of [
      { agent: alice, path: `${receiptPath}/items.csv` },
      { agent: admin, path: `/admin/receipts/${receiptId}/items.csv` },
    ]) {
      const csv = await agent.get(path).expect(200);
      expect(csv.text, path).not.toMatch(BIDI);
      for (const job of jobs) {
        const line = csv.text.split('\n').find((row) => row.includes(`,${job.jobId},`)) ?? '';
        expect(line, `${path} ${job.jobId}`).toContain(`,${job.jobId},${revealControls(job.cluster)},`);
        expect(line, `${path} ${job.jobId}`).toContain(`,THB,${revealControls(job.name)},`);
      }
    }
  });
});
