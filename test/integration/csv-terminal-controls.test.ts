import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { expectCsvTextSqlAsNode } from '../support/csv-copy.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Job names, accounts and partitions come from Slurm (or a hand-made sacct file) as users typed
 * them, and the CSVs wrote a terminal control in them raw: `cat me.csv` in a terminal ran an
 * ESC sequence from a job name (colours, a window title, a link), and U+009B is a CSI of its own
 * in some terminals. Every C0 control but tab, CR and LF, DEL and the C1 controls are now written
 * as their JSON escapes (\u001b), as the bidirectional controls are.
 */
const NAME = 'train\u001b[31mred\u009b2Jnet';
const NAME_ESCAPED = 'train\\u001b[31mred\\u009b2Jnet';
/** Any control character (\p{Cc}: U+0000-U+001F, U+007F-U+009F) but tab, LF and CR. */
const TERMINAL_CONTROL = /(?![\t\n\r])\p{Cc}/u;

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

/** Every control PostgreSQL text can hold (no NUL), and their neighbours, which stay. */
const TRICKY_TEXTS: string[] = [
  NAME,
  ...[...Array(0x1f).keys()].map((index) => `a${String.fromCharCode(index + 1)}b`),
  ...[...Array(0x21).keys()].map((index) => `a${String.fromCharCode(index + 0x7f)}b`),
  '\u001b=1',
  '=\u001b1',
  'x;\u009b=1',
  '\u001b;=1',
  '\u0009=1',
  'tab\there',
  'line\nbreak\r\n',
  '~\u00a0ü',
  '\\u001b',
  '\\\u001b',
  'ünï\u009bcødé\u202e',
  'plain',
];

describe('terminal controls in the CSVs written by PostgreSQL', () => {
  it('are escaped by csvTextSql exactly as escapeCsvText escapes them in Node', async () => {
    const written = await expectCsvTextSqlAsNode(db.pool, TRICKY_TEXTS);
    expect(written).not.toMatch(TERMINAL_CONTROL);
    expect(written).toContain('a\\u001fb\na\\u007fb\n');
    expect(written).toContain('tab\there\n"line\nbreak\r\n"\n~\u00a0ü\n');
  });

  it('are escaped in /me.csv and /admin/usage.csv', async () => {
    await buildJobs(db, [
      {
        user: 'alice',
        jobId: '9400',
        cluster: 'hpc\u001b]0;pwned\u0007',
        name: NAME,
        account: 'phys\u0085ics',
        partition: 'gpu\u007f',
        end: new Date(Date.UTC(2025, 8, 15, 1)),
      },
    ]);
    const window = 'start=2025-09-14&end=2025-09-19';
    for (const { agent, path } of [
      { agent: alice, path: `/me.csv?${window}` },
      { agent: admin, path: `/admin/usage.csv?${window}` },
    ]) {
      const csv = await agent.get(path).expect(200);
      expect(csv.text, path).not.toMatch(TERMINAL_CONTROL);
      const line = csv.text.split('\n').find((row) => row.startsWith('9400,'));
      expect(line, path).toContain(
        `,hpc\\u001b]0;pwned\\u0007,${NAME_ESCAPED},alice,phys\\u0085ics,gpu\\u007f,COMPLETED,`,
      );
    }
  });
});

describe('terminal controls in the CSVs written by Node', () => {
  it("are escaped in a receipt's items.csv, for its researcher and for an admin", async () => {
    await buildJobs(db, [
      { user: 'alice', jobId: '9500', cluster: 'hpc\u009b', name: NAME, end: new Date(Date.UTC(2025, 8, 16, 1)) },
    ]);
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
      expect(csv.text, path).not.toMatch(TERMINAL_CONTROL);
      const line = csv.text.split('\n').find((row) => row.includes(',9500,')) ?? '';
      expect(line, path).toContain(',9500,hpc\\u009b,');
      expect(line, path).toContain(`,THB,${NAME_ESCAPED},`);
    }
  });
});

describe('terminal controls in audit.csv', () => {
  it('are escaped in the actor, user agent, address, target and details', async () => {
    await recordAudit(db, {
      actor: `mallory${'\u001b'}[8m`,
      // A trusted proxy's X-Forwarded-For entry, read as Latin-1, may hold a C1 control.
      ip: '203.0.113.9\u009b2J',
      userAgent: 'curl\u001b]8;;https://evil.example\u0007',
      action: 'test.terminal',
      target: 'job:\u007f',
      status: 'ok',
      details: { name: NAME },
    });
    const csv = await admin.get('/admin/audit.csv?action=test.terminal').expect(200);
    expect(csv.text).not.toMatch(TERMINAL_CONTROL);
    const line = csv.text.split('\n').find((row) => row.includes('test.terminal')) ?? '';
    expect(line).toContain(',mallory\\u001b[8m,203.0.113.9\\u009b2J,curl\\u001b]8;;https://evil.example\\u0007,');
    expect(line).toContain(',job:\\u007f,');
    expect(line).toContain(NAME_ESCAPED);
  });
});
