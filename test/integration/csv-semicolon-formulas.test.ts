import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amountDueOf, buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenIn, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Excel in many European locales opens a .csv split on `;` (its list separator), and a tab may
 * split a line too. The CSVs put a `'` before a text cell from outside that starts a formula, but
 * wrote `x;=1+1;y` as it was, and such a spreadsheet read a cell `=1+1`: anyone could plant one
 * (a failed sign-in's username or User-Agent in audit.csv, a Slurm job name or account in /me.csv,
 * /admin/usage.csv and a receipt's items.csv, a payment reference in paid.csv). A `;` or a tab
 * followed by a formula's first character now gets the same `'` after it.
 */
const PLANTED = 'x;=1+1;y';
const PLANTED_ESCAPED = "x;'=1+1;y";
const TABBED = 'x\t=1+1\ty';
const TABBED_ESCAPED = "x\t'=1+1\ty";
const STATE = 'X;=1+1\u202e';
const STATE_ESCAPED = "X;'=1+1\\u202e";
const ARRAY_KEY = '7005_[1;=1+1\u202e]';
const ARRAY_KEY_ESCAPED = "7005_[1;'=1+1\\u202e]";

let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;
// 2025-09-20 12:00 in Bangkok, after every job below ended.
const now = () => new Date('2025-09-20T05:00:00Z');
const window = 'start=2025-09-14&end=2025-09-19';

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  await buildJobs(db, [
    { user: 'alice', jobId: '7001', name: PLANTED, account: '-acct;@x', end: new Date('2025-09-15T01:00:00Z') },
    { user: 'alice', jobId: '7002', name: TABBED, partition: 'gpu\t+1', end: new Date('2025-09-15T02:00:00Z') },
    { user: 'alice', jobId: '7003', name: 'a;b', account: 'phys;ics', end: new Date('2025-09-15T03:00:00Z') },
    // A hand-made sacct file (FALLBACK_CSV): ingestion keeps a state's first word, upper-cased, and
    // stores one it does not know as not terminal; a pending array's id keeps what its [] holds.
    { user: 'alice', jobId: '7004', state: STATE, isTerminal: false, end: new Date('2025-09-15T04:00:00Z') },
    { user: 'alice', jobId: ARRAY_KEY, end: new Date('2025-09-15T05:00:00Z') },
  ]);
});
afterAll(() => db?.drop());

/** `text` matched literally in a RegExp. */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The line of a CSV holding `needle`. */
function lineWith(csv: string, needle: string): string {
  return csv.split('\n').find((line) => line.includes(needle)) ?? '';
}

describe('a formula after a ; or a tab inside a text cell', () => {
  it('is escaped in /me.csv and /admin/usage.csv, and a ; before anything else is not', async () => {
    for (const { agent, path } of [
      // One user's window: through the session's function.
      { agent: alice, path: `/me.csv?${window}` },
      // Across users, and filtered by an account: a plain COPY.
      { agent: admin, path: `/admin/usage.csv?${window}` },
      { agent: admin, path: `/admin/usage.csv?${window}&user=alice&account=${encodeURIComponent('-acct;@x')}` },
    ]) {
      const csv = (await agent.get(path).expect(200)).text;
      expect(lineWith(csv, '7001,'), path).toContain(`,${PLANTED_ESCAPED},alice,'-acct;'@x,`);
      if (path.includes('account=')) continue;
      expect(lineWith(csv, '7002,'), path).toContain(`,${TABBED_ESCAPED},alice,`);
      expect(lineWith(csv, '7002,'), path).toContain(",gpu\t'+1,COMPLETED,");
      expect(lineWith(csv, '7003,'), path).toContain(',a;b,alice,phys;ics,');
      expect(lineWith(csv, '7004,'), path).toContain(`,compute,${STATE_ESCAPED},`);
      expect(csv, path).toMatch(new RegExp(`^${escapeRegExp(ARRAY_KEY_ESCAPED)},test,job,`, 'm'));
      expect(csv, path).not.toMatch(/[;\t][=+\-@]/);
      expect(csv, path).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
    }
  });

  it("is escaped in a receipt's items.csv, for its researcher and for an admin", async () => {
    const created = await alice
      .post('/me/receipt')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-09-19', csrf_token: await csrfTokenOf(alice, '/me') })
      .expect(303);
    const receiptPath = (created.headers.location as string).replace(/#.*$/, '');
    const receiptId = Number(receiptPath.split('/').at(-1));
    for (const { agent, path } of [
      { agent: alice, path: `${receiptPath}/items.csv` },
      { agent: admin, path: `/admin/receipts/${receiptId}/items.csv` },
    ]) {
      const csv = (await agent.get(path).expect(200)).text;
      expect(lineWith(csv, ',7001,'), path).toContain(`,${PLANTED_ESCAPED},`);
      expect(lineWith(csv, ',7002,'), path).toContain(`,${TABBED_ESCAPED},`);
      expect(lineWith(csv, ',7003,'), path).toContain(',a;b,');
      expect(csv, path).toContain(`,${ARRAY_KEY_ESCAPED},test,`);
      expect(csv, path).not.toMatch(/[;\t][=+\-@]/);
      expect(csv, path).not.toMatch(/[\u202a-\u202e\u2066-\u2069]/);
    }

    // paid.csv: a payment reference typed by an admin.
    await admin
      .post(`/admin/receipts/${receiptId}/paid`)
      .type('form')
      .send({
        method: 'bank_transfer',
        amount_received: await amountDueOf(db, receiptId),
        tx_ref: 'KB;=1+1;77',
        csrf_token: await csrfTokenOf(admin),
      })
      .expect(303);
    const paid = (await admin.get('/admin/paid.csv?start=2025-09-01&end=2025-09-30').expect(200)).text;
    expect(lineWith(paid, 'KB;'), paid).toContain(",KB;'=1+1;77,");
    expect(paid).not.toMatch(/[;\t][=+\-@]/);
  });

  it("is escaped in audit.csv: a failed sign-in's username and User-Agent", async () => {
    const agent = request.agent(app);
    const token = csrfTokenIn((await agent.get('/login').set('Accept', 'text/html')).text);
    await agent
      .post('/login')
      .set('Accept', 'text/html')
      .set('User-Agent', 'ua;=1+1;x')
      .type('form')
      .send({ username: PLANTED, password: 'wrong-password', csrf_token: token });
    const csv = (await admin.get('/admin/audit.csv?from=2000-01-01').expect(200)).text;
    const line = lineWith(csv, 'ua;');
    expect(line, csv).toContain(PLANTED_ESCAPED);
    expect(line).toContain(",ua;'=1+1;x,");
    expect(csv).not.toMatch(/[;\t][=+\-@]/);
  });
});
