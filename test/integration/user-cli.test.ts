import { spawn } from 'node:child_process';
import os from 'node:os';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/bootstrap.js';
import { configureAuditChain, recordAudit, verifyAuditChain } from '../../src/modules/audit/audit.service.js';
import { createLogger } from '../../src/shared/logger.js';
import { postAuditVerify } from '../support/audit-verify.js';
import { builtFile } from '../support/built-app.js';
import { buildUser } from '../support/factories.js';
import { sessionsWaitingForLocks } from '../support/lock-waits.js';
import { runToExit } from '../support/run-to-exit.js';
import { sealedWhileAppendWaits } from '../support/sealed-meanwhile.js';
import { postLogin, signInAs } from '../support/sign-in.js';
import { PROJECT_ROOT } from '../support/spawn-server.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const IMAGE_AUDIT_KEY = 'image-audit-key-image-audit-key-0001';
const BOOTSTRAP_AUDIT_KEY = 'k'.repeat(40);
/** The user CLI from source, as `npm run user:*` runs it (through tsx): the first test's path. */
const FROM_SOURCE = [process.execPath, '--import', 'tsx', 'src/cli/user.cli.ts'];
/**
 * The same CLI compiled once for the run (test/support/built-app.ts), which the other tests run:
 * it starts in half the CPU, and what they check is the tool's behaviour, not how it is loaded.
 */
const COMPILED = () => [process.execPath, builtFile('src/cli/user.cli.ts')];

function runCli(
  command: string[],
  args: string[],
  stdin: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const [file, ...prefix] = command as [string, ...string[]];
    const child = spawn(file, [...prefix, ...args], {
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
    child.stdin.end(stdin);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const runUserCli = (args: string[], stdin: string) => runCli(COMPILED(), args, stdin);
const runFromSource = (args: string[], stdin: string) => runCli(FROM_SOURCE, args, stdin);

describe('npm run user:*', () => {
  it('from source through tsx, creates an admin from a password on stdin, changes it, and disables the account', async () => {
    const created = await runFromSource(
      ['create', '--username', 'opsadmin', '--role', 'admin', '--password-stdin'],
      'first-password\n',
    );
    expect(created).toEqual({ code: 0, output: 'Created admin opsadmin.\n' });
    const app = buildTestApp(db);
    await signInAs(app, 'opsadmin', 'first-password');

    const changed = await runFromSource(['passwd', '--username', 'opsadmin', '--password-stdin'], 'second-password\n');
    expect(changed.code).toBe(0);
    await signInAs(app, 'opsadmin', 'second-password');

    await runFromSource(['create', '--username', 'spare', '--role', 'admin', '--password-stdin'], 'spare-password\n');
    const disabled = await runFromSource(['disable', '--username', 'opsadmin'], '');
    expect(disabled).toEqual({ code: 0, output: 'opsadmin is disabled.\n' });
    const actions = await db.prisma.auditLog.findMany({
      where: { actor: 'cli' },
      orderBy: { id: 'asc' },
      select: { action: true, target: true },
    });
    expect(actions).toEqual([
      { action: 'user.create', target: 'user:opsadmin' },
      { action: 'user.password_reset', target: 'user:opsadmin' },
      { action: 'user.create', target: 'user:spare' },
      { action: 'user.disable', target: 'user:opsadmin' },
    ]);
  }, 60_000);

  it('records whether a password was generated or chosen and the sessions ended, never the password', async () => {
    await runUserCli(['create', '--username', 'clidetails', '--password-stdin'], 'first-password\n');
    const app = buildTestApp(db);
    await signInAs(app, 'clidetails', 'first-password');
    await signInAs(app, 'clidetails', 'first-password');
    expect((await runUserCli(['passwd', '--username', 'clidetails', '--password-stdin'], 'chosen-at-cli\n')).code).toBe(
      0,
    );
    // No terminal and no --password-stdin: one is generated and printed once.
    const generated = await runUserCli(['passwd', '--username', 'clidetails'], '');
    const password = /New password: (\S+)\n$/.exec(generated.output)?.[1] ?? '';
    expect(password).not.toBe('');
    await signInAs(app, 'clidetails', password);
    expect((await runUserCli(['disable', '--username', 'clidetails'], '')).code).toBe(0);
    expect((await runUserCli(['disable', '--username', 'clidetails', '--enable'], '')).code).toBe(0);
    const entries = await db.prisma.auditLog.findMany({
      where: { target: 'user:clidetails', action: { in: ['user.password_reset', 'user.disable', 'user.enable'] } },
      orderBy: { id: 'asc' },
      select: { action: true, details: true },
    });
    expect(entries).toMatchObject([
      { action: 'user.password_reset', details: { isPasswordGenerated: false, endedSessions: 2 } },
      { action: 'user.password_reset', details: { isPasswordGenerated: true, endedSessions: 0 } },
      { action: 'user.disable', details: { endedSessions: 1 } },
      { action: 'user.enable', details: { endedSessions: 0 } },
    ]);
    const recorded = JSON.stringify(entries);
    expect(recorded).not.toContain('chosen-at-cli');
    expect(recorded).not.toContain(password);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  }, 60_000);

  it('records the OS user who ran the tool with each entry, the actor staying cli', async () => {
    const before = await db.prisma.auditLog.count();
    await runUserCli(['create', '--username', 'whoran', '--password-stdin'], 'first-password\n');
    await runUserCli(['passwd', '--username', 'whoran', '--password-stdin'], 'second-password\n');
    await runUserCli(['disable', '--username', 'whoran'], '');
    await runUserCli(['disable', '--username', 'whoran', '--enable'], '');
    const entries = await db.prisma.auditLog.findMany({
      where: { target: 'user:whoran' },
      orderBy: { id: 'asc' },
      select: { actor: true, action: true, details: true },
    });
    const osUser = os.userInfo().username;
    expect(entries).toEqual([
      { actor: 'cli', action: 'user.create', details: { role: 'user', osUser } },
      {
        actor: 'cli',
        action: 'user.password_reset',
        details: { isPasswordGenerated: false, endedSessions: 0, osUser },
      },
      { actor: 'cli', action: 'user.disable', details: { endedSessions: 0, osUser } },
      { actor: 'cli', action: 'user.enable', details: { endedSessions: 0, osUser } },
    ]);
    // Entries written before are left as they were: the chain verifies, old and new alike.
    expect(await db.prisma.auditLog.count()).toBe(before + 4);
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });

    // The audit page and audit.csv show who ran it, and filtering by the actor cli still finds it.
    await buildUser(db.prisma, { username: 'osuserchief', role: 'admin', password: 'osuserchief-password' });
    const admin = await signInAs(buildTestApp(db), 'osuserchief', 'osuserchief-password');
    const page = await admin
      .get('/admin/audit?actor=cli&target=user:whoran&action=user.disable')
      .set('Accept', 'text/html')
      .expect(200);
    expect(page.text.replace(/<wbr>/g, '').replace(/&#34;/g, '"')).toContain(
      // As jsonb keeps the keys: the shorter first.
      `{"osUser":"${osUser}","endedSessions":0}`,
    );
    const csv = await admin.get('/admin/audit.csv?actor=cli&target=user:whoran').expect(200);
    expect(csv.text).toContain(
      `,cli,,user.cli,user.create,user:whoran,ok,"{""role"":""user"",""osUser"":""${osUser}""}",`,
    );
    const verdict = await postAuditVerify(admin, 'application/json');
    expect(verdict.body.status).toBe('ok');
  }, 60_000);

  it('under sudo (SUDO_USER set, running as root) records the user who invoked it beside the OS user', async () => {
    // sudo sets SUDO_USER to who typed it; the OS user is then root, which alone says nothing of who that was.
    const isRoot = process.geteuid?.() === 0;
    const ran = await runCli(COMPILED(), ['create', '--username', 'viasudo', '--password-stdin'], 'first-password\n', {
      SUDO_USER: 'alice',
    });
    expect(ran).toEqual({ code: 0, output: 'Created user viasudo.\n' });
    const entry = await db.prisma.auditLog.findFirstOrThrow({
      where: { target: 'user:viasudo', action: 'user.create' },
      select: { actor: true, details: true },
    });
    const osUser = os.userInfo().username;
    // Not root, SUDO_USER is one left in the environment (sudo -u, su without -), not who ran this as root.
    expect(entry).toEqual({
      actor: 'cli',
      details: isRoot ? { role: 'user', osUser, sudoUser: 'alice' } : { role: 'user', osUser },
    });
    expect(await verifyAuditChain(db.prisma)).toMatchObject({ isIntact: true });
  }, 60_000);

  it('takes a password of exactly 12 characters, the shortest the rule allows', async () => {
    const created = await runUserCli(['create', '--username', 'exactly12', '--password-stdin'], 'twelve-chars\n');
    expect(created).toEqual({ code: 0, output: 'Created user exactly12.\n' });
    await signInAs(buildTestApp(db), 'exactly12', 'twelve-chars');
  }, 60_000);

  it('reads --role in any case, as --username is and as the web forms read it; another role stays refused', async () => {
    // `--role Admin` was refused ("--role must be admin or user.") while `--username Zoe` was read as zoe.
    const capital = await runUserCli(['create', '--username', 'casedadmin', '--role', 'Admin'], '');
    expect(capital.code).toBe(0);
    expect(capital.output).toMatch(/^Created admin casedadmin\. Password: /);
    const shouted = await runUserCli(['create', '--username', 'shoutedadmin', '--role', 'ADMIN'], '');
    expect(shouted.output).toMatch(/^Created admin shoutedadmin\. Password: /);
    const users = await db.prisma.user.findMany({
      where: { username: { in: ['casedadmin', 'shoutedadmin'] } },
      select: { role: true },
    });
    expect(users.map((user) => user.role)).toEqual(['admin', 'admin']);
    const other = await runUserCli(['create', '--username', 'notmade', '--role', 'Superuser'], '');
    expect(other).toEqual({ code: 64, output: '--role must be admin or user.\n' });
    expect(await db.prisma.user.count({ where: { username: 'notmade' } })).toBe(0);
  });

  it('generates a password when there is no terminal, and refuses bad input clearly', async () => {
    const generated = await runUserCli(['create', '--username', 'scripted'], '');
    expect(generated.output).toMatch(/^Created user scripted\. Password: [A-HJ-NP-Za-km-np-z2-9]{17}\n$/);
    const badName = await runUserCli(['create', '--username', 'Bad Name'], '');
    expect(badName.code).toBe(64);
    expect(badName.output).toContain('--username must start with a lowercase letter');
    // The same rule and words as ADMIN_PASSWORD and the web forms: 11 characters are one short.
    const shortPassword = await runUserCli(['create', '--username', 'shorty', '--password-stdin'], 'eleven-char\n');
    expect(shortPassword).toEqual({ code: 64, output: 'password: must be at least 12 characters\n' });
    // A script's unset variable: no password is not "generate one nobody sees".
    const emptyStdin = await runUserCli(['create', '--username', 'shorty', '--password-stdin'], '\n');
    expect(emptyStdin).toEqual({
      code: 64,
      output: 'No password arrived on stdin (--password-stdin reads one line); leave the option out to generate one.\n',
    });
    const badRole = await runUserCli(['create', '--username', 'shorty', '--role', 'superuser'], '');
    expect(badRole).toEqual({ code: 64, output: '--role must be admin or user.\n' });
    const unknown = await runUserCli(['frob', '--username', 'shorty'], '');
    expect(unknown.code).toBe(64);
    expect(unknown.output).toMatch(/^Unknown command "frob": use create, passwd, disable or unlock\.\n\nUsage:/);
    const help = await runUserCli(['--help'], '');
    expect(help.code).toBe(0);
    expect(help.output).toMatch(/^Usage:/);
    // A usage error exits 64 (EX_USAGE), as `npm run ingest`, `db:migrate` and `audit:verify` do.
    const noCommand = await runUserCli([], '');
    expect(noCommand.code).toBe(64);
    expect(noCommand.output).toMatch(/^Usage:/);
    const missing = await runUserCli(['passwd', '--username', 'ghost', '--password-stdin'], 'whatever-123\n');
    expect(missing).toEqual({ code: 1, output: 'No user named ghost.\n' });
    const before = await db.prisma.user.findUniqueOrThrow({ where: { username: 'scripted' } });
    const emptyPasswd = await runUserCli(['passwd', '--username', 'scripted', '--password-stdin'], '');
    expect(emptyPasswd.code).toBe(64);
    const shortPasswd = await runUserCli(['passwd', '--username', 'scripted', '--password-stdin'], 'eleven-char\n');
    expect(shortPasswd).toEqual({ code: 64, output: 'password: must be at least 12 characters\n' });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { username: 'scripted' } })).passwordHash).toBe(
      before.passwordHash,
    );
    expect(await db.prisma.user.count({ where: { username: { in: ['shorty', 'ghost'] } } })).toBe(0);
  }, 60_000);
});

describe('npm run user:* with a username in capitals', () => {
  // Eight runs of the tool: on a machine busy with other tests, through tsx, more than a minute.
  it('reads it in lower case, as sign-in does, and says so; a name that is bad in lower case too is still refused', async () => {
    // Sign-in reads a typed username in lower case (docs/security.md), so BOB and bob are one
    // account there; the tools refused BOB with "must start with a lowercase letter", as if it
    // could be some other account's name.
    const note = '--username BOB read as bob: usernames are lower case, as sign-in reads them.\n';
    const created = await runUserCli(['create', '--username', 'BOB', '--password-stdin'], 'bob-password-123\n');
    expect(created).toEqual({ code: 0, output: `${note}Created user bob.\n` });
    expect(await db.prisma.user.count({ where: { username: { in: ['BOB', 'Bob'] } } })).toBe(0);
    const app = buildTestApp(db);
    await signInAs(app, 'BOB', 'bob-password-123');

    const changed = await runUserCli(['passwd', '--username', 'BOB', '--password-stdin'], 'bob-password-456\n');
    expect(changed).toEqual({ code: 0, output: `${note}Password of bob changed.\n` });
    await signInAs(app, 'bob', 'bob-password-456');
    const unlocked = await runUserCli(['unlock', '--username', 'BOB'], '');
    expect(unlocked).toEqual({ code: 0, output: `${note}Sign-in of bob was not locked.\n` });
    const disabled = await runUserCli(['disable', '--username', 'BOB'], '');
    expect(disabled).toEqual({ code: 0, output: `${note}bob is disabled.\n` });
    expect((await db.prisma.user.findUniqueOrThrow({ where: { username: 'bob' } })).isDisabled).toBe(true);

    // A second BOB is the same bob, refused as taken, and nothing changes.
    const again = await runUserCli(['create', '--username', 'Bob'], '');
    expect(again.code).toBe(1);
    expect(again.output).toMatch(/^--username Bob read as bob: .*\n.*bob/);
    expect(await db.prisma.user.count({ where: { username: 'bob' } })).toBe(1);
    const badName = await runUserCli(['create', '--username', 'BAD NAME'], '');
    expect(badName.code).toBe(64);
    expect(badName.output).toMatch(/^--username must start with a lowercase letter/);
    expect(await db.prisma.user.count({ where: { username: { in: ['bad name', 'BAD NAME'] } } })).toBe(0);
  }, 180_000);
});

describe('npm run user:* command lines', () => {
  it('prints the usage for --help after the command, as `npm run user:create -- --help` passes it', async () => {
    for (const command of ['create', 'passwd', 'disable', 'unlock']) {
      const help = await runUserCli([command, '--help'], '');
      expect(help.output).not.toContain('Unknown option');
      expect(help.code).toBe(0);
      expect(help.output).toMatch(/^Usage:/);
    }
  });

  it('refuses an option its command does not take instead of ignoring it, and changes nothing', async () => {
    await buildUser(db.prisma, { username: 'roleless', role: 'user' });
    const before = await db.prisma.user.findUniqueOrThrow({ where: { username: 'roleless' } });
    const passwd = await runUserCli(['passwd', '--username', 'roleless', '--role', 'admin'], '');
    expect(passwd.code).toBe(64);
    expect(passwd.output).toMatch(/^user:passwd does not take --role \(it takes --username, --password-stdin\)/);
    const unlock = await runUserCli(['unlock', '--username', 'roleless', '--enable'], '');
    expect(unlock.code).toBe(64);
    expect(unlock.output).toMatch(/^user:unlock does not take --enable/);
    const after = await db.prisma.user.findUniqueOrThrow({ where: { username: 'roleless' } });
    expect([after.role, after.passwordHash]).toEqual([before.role, before.passwordHash]);
  }, 60_000);

  it('says a stray word is what npm passes on without "--" after the script, naming the fix, and creates no one', async () => {
    // `npm run user:create --username strayops --role admin` (no `--`): npm keeps --username and --role
    // for itself and passes `strayops admin`, which the tool refused as "Unexpected argument 'strayops'.
    // This command does not take positional arguments", naming neither the cause nor the fix.
    const asNpmScript = { npm_lifecycle_event: 'user:create:prod' };
    const created = await runCli(COMPILED(), ['create', 'strayops', 'admin'], '', asNpmScript);
    expect(created.code).toBe(64);
    expect(created.output).toContain("Unexpected argument 'strayops'");
    expect(created.output).toContain(
      'Was it run without "--" after the script\'s name? npm keeps the options before "--" for itself and passes on only the words after them: npm run user:create:prod -- --username NAME --role admin',
    );
    // A word after a `--` that reached the tool, or typed to the compiled tool itself (node dist/…, no
    // npm), is another mistake: no advice to add one.
    const afterDashes = await runCli(COMPILED(), ['create', '--', '--username', 'strayops'], '', asNpmScript);
    expect(afterDashes.code).toBe(64);
    expect(afterDashes.output).not.toContain('Was it run without "--"');
    const withoutNpm = await runUserCli(['create', 'strayops'], '');
    expect(withoutNpm.code).toBe(64);
    expect(withoutNpm.output).toContain("Unexpected argument 'strayops'");
    expect(withoutNpm.output).not.toContain('Was it run without "--"');
    expect(await db.prisma.user.findUnique({ where: { username: 'strayops' } })).toBeNull();
  }, 60_000);

  // README has the tools need DATABASE_URL; an operator's shell with it alone (no APP_ENV, so no key
  // is required) wrote an unsealed entry after the instance's sealed ones: the chain was broken for
  // good ("not sealed with AUDIT_CHAIN_KEY, though #N before it is"), AuditChainBroken paged a
  // security incident, and the runbook forbids repairing it.
  it('refuses to change anything without AUDIT_CHAIN_KEY when the log is sealed (exit 78), leaving the chain intact', async () => {
    const sealed = await createTestDatabase();
    try {
      await buildUser(sealed.prisma, { username: 'sealeduser', role: 'user' });
      configureAuditChain({ chainKeys: [IMAGE_AUDIT_KEY], unsealedUntil: 0n });
      await recordAudit(sealed, { actor: 'ops', action: 'test.sealed', status: 'ok', details: {} });
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });

      const refused = await runCli(COMPILED(), ['disable', '--username', 'sealeduser'], '', {
        DATABASE_URL: sealed.url,
      });
      expect(refused.code).toBe(78);
      expect(refused.output).toContain("AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#");
      expect(refused.output).not.toContain('sealeduser is disabled.');
      expect(await sealed.prisma.user.findUniqueOrThrow({ where: { username: 'sealeduser' } })).toMatchObject({
        isDisabled: false,
      });
      expect(await sealed.prisma.auditLog.count()).toBe(1);

      // With the instance's key the same command works, sealed as the entries before it.
      const done = await runCli(COMPILED(), ['disable', '--username', 'sealeduser'], '', {
        DATABASE_URL: sealed.url,
        AUDIT_CHAIN_KEY: IMAGE_AUDIT_KEY,
      });
      expect(done).toEqual({ code: 0, output: 'sealeduser is disabled.\n' });
      configureAuditChain({ chainKeys: [IMAGE_AUDIT_KEY], unsealedUntil: 0n });
      expect((await verifyAuditChain(sealed.prisma)).isIntact).toBe(true);
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await sealed.drop();
    }
  }, 60_000);

  // The check at the start reads the log once; another instance given the key may seal it before the
  // tool's append (a rolling restart). Refused there, the tool exited 1 with the server's words ("restart
  // this one"), which a script read as a failed run rather than a setting to fix.
  it('refused at its append because the log was sealed meanwhile, exits 78 as the check at the start does, changing nothing', async () => {
    const late = await createTestDatabase();
    try {
      await buildUser(late.prisma, { username: 'lateuser', role: 'user' });
      const { result: refused, sealedId } = await sealedWhileAppendWaits(late.pool, IMAGE_AUDIT_KEY, () =>
        runCli(COMPILED(), ['disable', '--username', 'lateuser'], '', { DATABASE_URL: late.url }),
      );
      expect(refused.code, refused.output).toBe(78);
      expect(refused.output).toContain(
        `AUDIT_CHAIN_KEY: is not set, but the audit log's newest entry (#${sealedId}) is sealed with a key (or was changed)`,
      );
      expect(refused.output).not.toContain('lateuser is disabled.');
      expect(await late.prisma.user.findUniqueOrThrow({ where: { username: 'lateuser' } })).toMatchObject({
        isDisabled: false,
      });
      expect(await late.prisma.auditLog.count()).toBe(1);
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await late.drop();
    }
  }, 60_000);

  it('refuses an option given twice instead of acting on the last one, and changes nothing', async () => {
    // `disable --username twicea --username twiceb` disabled twiceb alone and said only that, and
    // `create --username x --role admin --role user` made a user: the last value won unsaid.
    await buildUser(db.prisma, { username: 'twicea', role: 'user' });
    await buildUser(db.prisma, { username: 'twiceb', role: 'user' });
    const disable = await runUserCli(['disable', '--username', 'twicea', '--username=twiceb'], '');
    expect(disable).toEqual({
      code: 64,
      output: expect.stringMatching(/^--username: given 2 times \(twicea, twiceb\); give it once\n/),
    });
    const create = await runUserCli(['create', '--username', 'twicec', '--role', 'admin', '--role', 'user'], '');
    expect(create).toEqual({
      code: 64,
      output: expect.stringMatching(/^--role: given 2 times \(admin, user\); give it once\n/),
    });
    // A flag given twice is the same mistake (a script's options pasted twice), refused as docs/security.md says.
    const enable = await runUserCli(['disable', '--username', 'twicea', '--enable', '--enable'], '');
    expect(enable).toEqual({ code: 64, output: expect.stringMatching(/^--enable: given 2 times; give it once\n/) });
    const users = await db.prisma.user.findMany({
      where: { username: { startsWith: 'twice' } },
      orderBy: { username: 'asc' },
      select: { username: true, isDisabled: true },
    });
    expect(users).toEqual([
      { username: 'twicea', isDisabled: false },
      { username: 'twiceb', isDisabled: false },
    ]);
  }, 60_000);
});

describe('npm run user:unlock', () => {
  it('lifts a sign-in lockout at once, audited with the CLI as actor, and refuses an unknown user', async () => {
    const app = buildTestApp(db);
    await runUserCli(['create', '--username', 'lockedcli', '--password-stdin'], 'lockedcli-password\n');
    for (let attempt = 1; attempt <= 5; attempt++) await postLogin(app, 'lockedcli', `wrong-guess-${attempt}`);
    const locked = await postLogin(app, 'lockedcli', 'lockedcli-password');
    expect(locked.response.text).toContain('Too many failed sign-ins.');

    const unlocked = await runUserCli(['unlock', '--username', 'lockedcli'], '');
    expect(unlocked).toEqual({ code: 0, output: 'Sign-in of lockedcli unlocked.\n' });
    expect(await db.prisma.authThrottle.count({ where: { username: 'lockedcli' } })).toBe(0);
    await signInAs(app, 'lockedcli', 'lockedcli-password');
    const entry = await db.prisma.auditLog.findFirstOrThrow({ where: { action: 'user.unlock_sign_in' } });
    expect(entry).toMatchObject({ actor: 'cli', target: 'user:lockedcli', status: 'ok' });

    expect(await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:lockedcli' } })).toBe(
      1,
    );

    // Nothing locked, nothing lifted: said so, and no second audit entry.
    const again = await runUserCli(['unlock', '--username', 'lockedcli'], '');
    expect(again).toEqual({ code: 0, output: 'Sign-in of lockedcli was not locked.\n' });
    expect(await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:lockedcli' } })).toBe(
      1,
    );
    const missing = await runUserCli(['unlock', '--username', 'ghost'], '');
    expect(missing).toEqual({ code: 1, output: 'No user named ghost.\n' });
    expect(await db.prisma.auditLog.count({ where: { action: 'user.unlock_sign_in', target: 'user:ghost' } })).toBe(0);
  }, 60_000);
});

describe('npm run user:disable on an account already in that state', () => {
  it('says nothing was changed, as the users page does, and audits nothing', async () => {
    await runUserCli(['create', '--username', 'twicedisabled', '--password-stdin'], 'twicedisabled-pw\n');
    const entries = () => db.prisma.auditLog.count({ where: { target: 'user:twicedisabled', actor: 'cli' } });
    expect(await runUserCli(['disable', '--username', 'twicedisabled'], '')).toEqual({
      code: 0,
      output: 'twicedisabled is disabled.\n',
    });
    const afterDisable = await entries();
    // It said "twicedisabled is disabled." again, as if this run had disabled it.
    expect(await runUserCli(['disable', '--username', 'twicedisabled'], '')).toEqual({
      code: 0,
      output: 'twicedisabled is already disabled; nothing was changed.\n',
    });
    expect(await runUserCli(['disable', '--username', 'twicedisabled', '--enable'], '')).toEqual({
      code: 0,
      output: 'twicedisabled is enabled.\n',
    });
    expect(await runUserCli(['disable', '--username', 'twicedisabled', '--enable'], '')).toEqual({
      code: 0,
      output: 'twicedisabled is already enabled; nothing was changed.\n',
    });
    expect(await entries()).toBe(afterDisable + 1);
  }, 60_000);
});

describe('npm run user:disable and the last active admin', () => {
  // The refusal names the disabled admin who could be enabled instead: leaver, once disabled.
  const LAST_ADMIN = {
    code: 1,
    output: 'This is the last active admin; make another admin first, or enable the disabled admin leaver.\n',
  };

  it('is refused, also when an admin disables the only other admin at the same moment', async () => {
    // The earlier tests' admins are made users, not disabled: each disabled admin would be named too.
    await db.pool.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
    await buildUser(db.prisma, { username: 'keeper', role: 'admin' });
    const other = await buildUser(db.prisma, { username: 'leaver', role: 'admin' });
    // An admin's request disabling `leaver`, caught after its lock and change, before its commit.
    const request = new pg.Client({ connectionString: db.url });
    await request.connect();
    try {
      await request.query('BEGIN');
      await request.query(
        `SELECT id FROM users WHERE id = $1 OR (role = 'admin' AND NOT is_disabled) ORDER BY id FOR NO KEY UPDATE`,
        [other.id],
      );
      await request.query('UPDATE users SET is_disabled = true WHERE id = $1', [other.id]);
      const disabling = runUserCli(['disable', '--username', 'keeper'], '');
      expect(await sessionsWaitingForLocks(db.pool, 30_000), 'the CLI never waited for the request').toBe(1);
      await request.query('COMMIT');
      expect(await disabling).toEqual(LAST_ADMIN);
    } finally {
      await request.end();
    }
    expect(await runUserCli(['disable', '--username', 'keeper'], '')).toEqual(LAST_ADMIN);
    const admins = await db.prisma.user.findMany({ where: { role: 'admin', isDisabled: false } });
    expect(admins.map((admin) => admin.username)).toEqual(['keeper']);
  }, 60_000);
});

describe('ADMIN_USERNAME / ADMIN_PASSWORD', () => {
  it('creates the first admin at start-up once, and leaves it alone afterwards', async () => {
    const env = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: BOOTSTRAP_AUDIT_KEY,
      ADMIN_USERNAME: 'bootadmin',
      ADMIN_PASSWORD: 'bootstrap-password',
    };
    const config = buildTestConfig(db.url, env);
    await (await prepareDatabase(config, createLogger('silent'))).stop();
    await (await prepareDatabase(config, createLogger('silent'))).stop();
    expect(await db.prisma.user.count({ where: { username: 'bootadmin', role: 'admin' } })).toBe(1);
    expect(await db.prisma.slurmJob.count()).toBe(0);
    // With the key the start-up sealed its entry with: an app without it is refused the sign-in's entry.
    try {
      await signInAs(
        buildTestApp(db, { env: { AUDIT_CHAIN_KEY: BOOTSTRAP_AUDIT_KEY } }),
        'bootadmin',
        'bootstrap-password',
      );
    } finally {
      // The next files in this worker share the module's settings (vitest's isolate: false).
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
    }
  });
});

describe('the compiled user CLI (the Docker image has no tsx)', () => {
  it('creates an admin with node dist/src/cli/user.cli.js and changes the password with npm run user:passwd:prod', async () => {
    const build = await runToExit(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
      cwd: PROJECT_ROOT,
    });
    expect(build, 'npm run build').toMatchObject({ code: 0 });
    // A database of its own: the tests above wrote unsealed entries after the start-up test's sealed ones,
    // which the chain check rightly calls broken (a production database, always keyed, never has that).
    const imageDb = await createTestDatabase();
    // The container's environment: production, so its configuration is checked as the app's is.
    const image = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: IMAGE_AUDIT_KEY,
      DATABASE_URL: imageDb.url,
    };
    const compiled = [process.execPath, 'dist/src/cli/user.cli.js'];
    const created = await runCli(
      compiled,
      ['create', '--username', 'imageadmin', '--role', 'admin', '--password-stdin'],
      'image-password-1\n',
      image,
    );
    expect(created).toEqual({ code: 0, output: 'Created admin imageadmin.\n' });
    const changed = await runCli(
      ['npm', 'run', '--silent', 'user:passwd:prod', '--'],
      ['--username', 'imageadmin', '--password-stdin'],
      'image-password-2\n',
      image,
    );
    expect(changed).toEqual({ code: 0, output: 'Password of imageadmin changed.\n' });
    try {
      // The CLI sealed its entries with the image's key: they verify with it, and only with it.
      configureAuditChain({ chainKeys: [IMAGE_AUDIT_KEY], unsealedUntil: 0n });
      expect(await verifyAuditChain(imageDb.prisma)).toMatchObject({ isIntact: true, isSealed: true, count: 2 });
      configureAuditChain({ chainKeys: ['another-key-another-key-another-key'], unsealedUntil: 0n });
      expect(await verifyAuditChain(imageDb.prisma)).toMatchObject({ isIntact: false });
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
    }
    try {
      // With the image's key: an app without it is refused the sign-in's entry after the CLI's sealed ones.
      await signInAs(
        buildTestApp(imageDb, { env: { AUDIT_CHAIN_KEY: IMAGE_AUDIT_KEY } }),
        'imageadmin',
        'image-password-2',
      );
    } finally {
      configureAuditChain({ chainKeys: [], unsealedUntil: 0n });
      await imageDb.drop();
    }
  }, 120_000);
});

describe('npm run user:passwd for a disabled account', () => {
  it('sets the password and says the account cannot sign in with it until it is enabled', async () => {
    // A user admin's walk: the operator reset a password for someone who then met "Your account has been
    // disabled"; the tool had said only "Password of … changed.", as for an account that could use it.
    // A database of its own: the tests above leave theirs with a sealed audit log.
    const own = await createTestDatabase();
    try {
      const user = await buildUser(own.prisma, { username: 'offboarded', isDisabled: true });
      const before = await own.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
      const changed = await runCli(
        COMPILED(),
        ['passwd', '--username', 'offboarded', '--password-stdin'],
        'offboarded-pw-1\n',
        { DATABASE_URL: own.url },
      );
      expect(changed).toEqual({
        code: 0,
        output:
          'Password of offboarded changed.\n' +
          'offboarded is disabled: they cannot sign in with it until it is enabled (npm run user:disable:prod -- --username offboarded --enable).\n',
      });
      const after = await own.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
      expect(after.passwordHash).not.toBe(before.passwordHash);
      expect(after.isDisabled).toBe(true);
    } finally {
      await own.drop();
    }
  }, 60_000);
});
