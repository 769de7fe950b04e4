import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * Excel on Windows reads a CSV without a byte-order mark in the system's ANSI code page, so a job
 * or account name outside ASCII came out as mojibake. The exports' bytes stay as they were
 * (scripts read them); `bom=1` asks for the same bytes after the UTF-8 BOM, and every page that
 * links a CSV for people links that one too ("CSV for Excel").
 */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

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
  await buildJobs(db, [
    { user: 'alice', jobId: '101', name: 'การทดลอง-ñ', account: 'física', end: '2025-09-18T03:00:00Z' },
    { user: 'alice', jobId: '102', name: 'plain', end: '2025-09-19T03:00:00Z' },
  ]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  receiptId = await billJobs(alice, '2025-09-18');
});
afterAll(() => db?.drop());

/** The response body as bytes, whatever its type. */
function bytesOf(agent: Agent, path: string) {
  return agent
    .get(path)
    .buffer(true)
    .parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done(null, Buffer.concat(chunks)));
    });
}

const withBom = (path: string) => `${path}${path.includes('?') ? '&' : '?'}bom=1`;

const EXPORTS: [string, () => Agent, () => string][] = [
  ['/me.csv', () => alice, () => `/me.csv?${WINDOW}`],
  ['/admin/my.csv', () => admin, () => `/admin/my.csv?${WINDOW}`],
  ['/admin/usage.csv', () => admin, () => `/admin/usage.csv?${WINDOW}`],
  ["a researcher's receipt items", () => alice, () => `/me/receipts/${receiptId}/items.csv`],
  ["an admin's receipt items", () => admin, () => `/admin/receipts/${receiptId}/items.csv`],
  ['/admin/paid.csv', () => admin, () => `/admin/paid.csv?${WINDOW}`],
  ['/admin/audit.csv', () => admin, () => '/admin/audit.csv'],
];

describe('CSV for Excel (bom=1)', () => {
  it.each(EXPORTS)('%s: bom=1 is the UTF-8 BOM and then the same bytes; without it, no BOM', async (_, agent, path) => {
    const plain = await bytesOf(agent(), path()).expect(200);
    const excel = await bytesOf(agent(), withBom(path())).expect(200);
    const plainBytes = plain.body as Buffer;
    const excelBytes = excel.body as Buffer;
    expect(plainBytes.subarray(0, 3).equals(BOM)).toBe(false);
    expect(excelBytes.subarray(0, 3).equals(BOM)).toBe(true);
    expect(excelBytes.subarray(3).equals(plainBytes)).toBe(true);
    expect(excel.headers['content-type']).toBe(plain.headers['content-type']);
    expect(excel.headers['content-disposition']).toBe(plain.headers['content-disposition']);
  });

  it('writes non-ASCII names as UTF-8 after the BOM', async () => {
    const excel = (await bytesOf(alice, withBom(`/me.csv?${WINDOW}`)).expect(200)).body as Buffer;
    const text = excel.subarray(3).toString('utf8');
    expect(text).toContain('การทดลอง-ñ');
    expect(text).toContain('física');
  });

  it('takes an empty bom= as left out, as every empty optional field', async () => {
    const bytes = (await bytesOf(alice, `/me.csv?${WINDOW}&bom=`).expect(200)).body as Buffer;
    expect(bytes.subarray(0, 3).equals(BOM)).toBe(false);
  });

  it.each([
    ['bom=yes', 'bom: must be 1 (a byte-order mark for Excel), or left out'],
    ['bom=0', 'bom: must be 1 (a byte-order mark for Excel), or left out'],
    ['bom=1&bom=1', 'bom: must be given once'],
  ])('refuses %s with a clear 400, on every export', async (bom, message) => {
    for (const [, agent, path] of EXPORTS) {
      const refused = await agent()
        .get(`${path()}${path().includes('?') ? '&' : '?'}${bom}`)
        .set('Accept', 'application/json');
      expect(refused.status, path()).toBe(400);
      expect(refused.body.error, path()).toBe(message);
    }
  });

  it('is offered beside each CSV link for people', async () => {
    const me = (await alice.get(`/me?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    expect(me).toContain(`href="/me.csv?${WINDOW.replace('&', '&amp;')}&amp;bom=1">CSV for Excel</a>`);
    const usage = (await admin.get(`/admin/usage?${WINDOW}`).set('Accept', 'text/html').expect(200)).text;
    expect(usage).toContain(`href="/admin/usage.csv?${WINDOW.replace('&', '&amp;')}&amp;bom=1"`);
    expect(usage).toContain(`href="/admin/my.csv?${WINDOW.replace('&', '&amp;')}&amp;bom=1"`);
    const mine = (await alice.get(`/me/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    expect(mine).toContain(`href="/me/receipts/${receiptId}/items.csv?bom=1"`);
    const theirs = (await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
    expect(theirs).toContain(`href="/admin/receipts/${receiptId}/items.csv?bom=1"`);
    const billing = (await admin.get('/admin/receipts').set('Accept', 'text/html').expect(200)).text;
    expect(billing).toMatch(/<button type="submit"[^>]* name="bom" value="1"[^>]*>CSV for Excel<\/button>/);
    const audit = (await admin.get('/admin/audit').set('Accept', 'text/html').expect(200)).text;
    expect(audit).toContain('href="/admin/audit.csv?bom=1"');
  });
});
