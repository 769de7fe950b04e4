import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { builtFile } from '../support/built-app.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The audit log's actor `cli` is the user tools' (npm run user:*), `system` the start-up's (the
// bootstrap admin). An account of either name wrote its own entries under the same actor: its
// password resets, disables and unlocks read as the tools' on /admin/audit and in its Actor filter.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
});
afterAll(() => db?.drop());

const RESERVED = /^username: is the audit log's name for (the user tools|the start-up) \((cli|system)\)/;

describe('usernames the audit log gives its own actors', () => {
  it.each(['cli', 'system', ' CLI '])('are refused on /admin/users (%j), and nothing is created', async (typed) => {
    const agent = await signInAs(buildTestApp(db), 'chief', 'chief-password');
    const before = await db.prisma.user.count();
    const json = await agent
      .post('/admin/users')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(agent))
      .send({ username: typed, password: 'long-enough-password' });
    expect(json.status).toBe(400);
    expect(json.body.error).toMatch(RESERVED);
    const form = await agent
      .post('/admin/users')
      .set('Accept', 'text/html')
      .type('form')
      .send({ username: typed, role: 'admin', password: '', csrf_token: await csrfTokenOf(agent) });
    expect(form.status).toBe(400);
    expect(form.text).toContain('is the audit log&#39;s name for');
    expect(await db.prisma.user.count()).toBe(before);
  });

  it('are refused by npm run user:create, which creates nothing', async () => {
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [builtFile('src/cli/user.cli.ts'), 'create', '--username', 'cli', '--password-stdin'],
        {
          cwd: PROJECT_ROOT,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
        },
      );
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
      child.stdin.end('long-enough-password\n');
      child.on('exit', (code) => resolve({ code, output }));
    });
    expect(run.code).toBe(64);
    expect(run.output).toContain("--username is the audit log's name for the user tools (cli)");
    expect(await db.prisma.user.findUnique({ where: { username: 'cli' } })).toBeNull();
  });

  it('are refused as ADMIN_USERNAME, the bootstrap admin', () => {
    expect(() => loadConfig({ ADMIN_USERNAME: 'system', ADMIN_PASSWORD: 'long-enough-password' })).toThrow(
      /ADMIN_USERNAME: is the audit log's name for the start-up \(system\)/,
    );
  });

  it('still let the user tools reach an account made before the rule, to reset or disable it', async () => {
    if (!(await db.prisma.user.findUnique({ where: { username: 'system' } }))) {
      await buildUser(db.prisma, { username: 'system', role: 'user', password: 'old-system-password' });
    }
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [builtFile('src/cli/user.cli.ts'), 'disable', '--username', 'system'], {
        cwd: PROJECT_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
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
    expect(run.output).toContain('system is disabled');
    expect(run.code).toBe(0);
  });
});
