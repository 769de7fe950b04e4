import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptRow } from '../support/billing-factories.js';
import { builtFile } from '../support/built-app.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// Disabling keeps a user's receipts (billing records), but a pending one stays pending: the user can
// no longer sign in to see or pay it, and the disable said nothing of it, so it waited unnoticed.
let db: TestDatabase;
let ops: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  ops = await signInAs(buildTestApp(db), 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

/** A user with two pending receipts in THB, one in EUR, and a paid and a void one that do not count. */
async function buildLeaver(username: string) {
  const user = await buildUser(db.prisma, { username, password: `${username}-password` });
  await buildReceiptRow(db, username, { total: '1200.50', currency: 'THB' });
  await buildReceiptRow(db, username, { total: '300.25', currency: 'THB' });
  await buildReceiptRow(db, username, { total: '7.10', currency: 'EUR' });
  await buildReceiptRow(db, username, { total: '99.00', currency: 'THB', status: 'paid', paidAt: new Date() });
  await buildReceiptRow(db, username, { total: '55.00', currency: 'EUR', status: 'void', voidedAt: new Date() });
  return user;
}

async function disableByForm(id: number) {
  const token = await csrfTokenOf(ops);
  return ops.post(`/admin/users/${id}/disable`).set('Accept', 'text/html').type('form').send({ csrf_token: token });
}

async function disableAsJson(id: number) {
  const token = await csrfTokenOf(ops);
  return ops.post(`/admin/users/${id}/disable`).set('Accept', 'application/json').set('X-CSRFToken', token).send({});
}

/** The flash the layout shows first thing in <main>, markup and all. */
const flashOf = (page: string) =>
  /<main class="content"[^>]*>\s*(<div class="alert \w+" role="status">[\s\S]*?<\/div>)/.exec(page)?.[1];

async function flashAfter(response: { status: number; headers: Record<string, string>; text: string }) {
  expect(response.status, response.text.slice(0, 300)).toBe(303);
  const page = await ops.get(response.headers.location as string).set('Accept', 'text/html');
  expect(page.status).toBe(200);
  return flashOf(page.text);
}

function runDisableCli(username: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [builtFile('src/cli/user.cli.ts'), 'disable', '--username', username], {
      cwd: PROJECT_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: db.url,
        LOG_LEVEL: 'warn',
        ...env,
      },
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.stdin.end();
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const PENDING_SENTENCE = (username: string) =>
  `${username} has 3 pending receipts (7.10 EUR, 1,500.75 THB), which they can no longer sign in to see or pay: void them, or mark them paid when finance settles them.`;

describe('disabling a user who has pending receipts', () => {
  it('the users page confirms the disable, then says how many, their totals, and links to them', async () => {
    const leaver = await buildLeaver('leaverpage');
    const flash = await flashAfter(await disableByForm(leaver.id));
    expect(flash).toBe(
      `<div class="alert success" role="status">leaverpage is disabled. ${PENDING_SENTENCE('leaverpage')} <a href="/admin/receipts?status=pending&amp;user=leaverpage">Open the pending receipts of leaverpage</a></div>`,
    );
    // The link lists exactly those three.
    const listed = await ops
      .get('/admin/receipts?status=pending&user=leaverpage')
      .set('Accept', 'application/json')
      .expect(200);
    expect(listed.body.count).toBe(3);
    // Nothing of the receipts changed: the admin decides.
    expect(await db.prisma.receipt.count({ where: { username: 'leaverpage', status: 'pending' } })).toBe(3);
  });

  it('a JSON client gets the same message and the count, totals and list address as data', async () => {
    const leaver = await buildLeaver('leaverjson');
    const response = await disableAsJson(leaver.id);
    expect(response.status, response.text.slice(0, 300)).toBe(200);
    expect(response.body).toEqual({
      ok: true,
      user: { id: leaver.id, username: 'leaverjson', role: 'user', isDisabled: true },
      isChanged: true,
      pendingReceipts: {
        count: 3,
        totals: [
          { currency: 'EUR', total: '7.10' },
          { currency: 'THB', total: '1500.75' },
        ],
        url: '/admin/receipts?status=pending&user=leaverjson',
      },
      message: `leaverjson is disabled. ${PENDING_SENTENCE('leaverjson')}`,
    });
  });

  it('npm run user:disable prints it after its line, with the address of the list (on PUBLIC_BASE_URL when set)', async () => {
    await buildLeaver('leavercli');
    expect(await runDisableCli('leavercli')).toEqual({
      code: 0,
      output: `leavercli is disabled.\n${PENDING_SENTENCE('leavercli')}\nThey are listed on the site at /admin/receipts?status=pending&user=leavercli\n`,
    });
    await buildLeaver('leaverclibase');
    expect(await runDisableCli('leaverclibase', { PUBLIC_BASE_URL: 'https://billing.example.edu/' })).toEqual({
      code: 0,
      output: `leaverclibase is disabled.\n${PENDING_SENTENCE('leaverclibase')}\nThey are listed at https://billing.example.edu/admin/receipts?status=pending&user=leaverclibase\n`,
    });
  });

  it('one pending receipt reads in the singular', async () => {
    const user = await buildUser(db.prisma, { username: 'leaverone', password: 'leaverone-password' });
    await buildReceiptRow(db, 'leaverone', { total: '0.50', currency: 'THB' });
    const response = await disableAsJson(user.id);
    expect(response.body.message).toBe(
      'leaverone is disabled. leaverone has 1 pending receipt (0.50 THB), which they can no longer sign in to see or pay: void it, or mark it paid when finance settles it.',
    );
  });
});

describe('disabling a user with no pending receipt', () => {
  it('says only what it said before, on the page, as JSON and from the CLI', async () => {
    const quiet = await buildUser(db.prisma, { username: 'quietpage', password: 'quietpage-password' });
    await buildReceiptRow(db, 'quietpage', { status: 'paid', paidAt: new Date() });
    expect(await flashAfter(await disableByForm(quiet.id))).toBe(
      '<div class="alert success" role="status">quietpage is disabled.</div>',
    );

    const quietJson = await buildUser(db.prisma, { username: 'quietjson', password: 'quietjson-password' });
    expect((await disableAsJson(quietJson.id)).body).toEqual({
      ok: true,
      user: { id: quietJson.id, username: 'quietjson', role: 'user', isDisabled: true },
      isChanged: true,
      message: 'quietjson is disabled.',
    });

    await buildUser(db.prisma, { username: 'quietcli', password: 'quietcli-password' });
    expect(await runDisableCli('quietcli')).toEqual({ code: 0, output: 'quietcli is disabled.\n' });
  });

  it('a second disable of a user with pending receipts changes nothing and says only that', async () => {
    const leaver = await buildLeaver('leavertwice');
    await disableAsJson(leaver.id);
    expect((await disableAsJson(leaver.id)).body.message).toBe('leavertwice is already disabled; nothing was changed.');
    expect(await runDisableCli('leavertwice')).toEqual({
      code: 0,
      output: 'leavertwice is already disabled; nothing was changed.\n',
    });
  });
});
