import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { createViewFormatters } from '../http/view-format.js';
import { configureAuditChain, refuseUnsealedAppend } from '../modules/audit/audit.service.js';
import { usernameReadAsNoteOf, ZNewUsername, ZRole, ZUsername } from '../modules/users/users.schema.js';
import * as usersService from '../modules/users/users.service.js';
import { AppError } from '../shared/errors.js';
import { createToolLogger } from '../shared/logger.js';
import { ZNewPassword } from '../shared/password-policy.js';
import { toolCommand } from '../shared/tool-commands.js';
import { cliAuditContext } from './cli-audit-context.js';
import { missingDatabaseUrl, runTool, USAGE_EXIT_CODE } from './run-tool.js';
import { describeArgsError } from './stray-words.js';
import { openToolDatabase } from './tool-database.js';

const USAGE = `Usage:
  npm run user:create -- --username NAME [--role admin|user] [--password-stdin]
  npm run user:passwd -- --username NAME [--password-stdin]
  npm run user:disable -- --username NAME [--enable]
  npm run user:unlock -- --username NAME     (lifts a sign-in lockout before it ends)

Compiled (npm run build; the Docker image has no tsx): npm run user:create:prod -- ... and so on, or
  node dist/src/cli/user.cli.js create|passwd|disable|unlock --username NAME ...

Without --password-stdin you are asked for a password, twice, on a terminal (empty: generate one);
with no terminal a password is generated and printed once.`;

/**
 * A mistake in how the tool was called, or in the password it was given: its message, then exit 64
 * (EX_USAGE) before anything is changed, as `npm run ingest`, `db:migrate` and `audit:verify` exit
 * for theirs (it was 2, which a script checking for 64 took for a failed run).
 */
class UsageError extends Error {}

/** One line from stdin; on a terminal after `prompt`, with what is typed kept off the screen. */
async function readLine(isFromStdin: boolean, prompt: string): Promise<string> {
  const lines = createInterface({
    input: process.stdin,
    output: isFromStdin ? undefined : process.stdout,
    terminal: !isFromStdin,
  });
  if (!isFromStdin) {
    process.stdout.write(prompt);
    // Keep what is typed off the screen.
    (lines as unknown as { _writeToOutput: (text: string) => void })._writeToOutput = () => undefined;
  }
  const line = await new Promise<string>((resolve) => lines.once('line', resolve).once('close', () => resolve('')));
  lines.close();
  if (!isFromStdin) process.stdout.write('\n');
  return line;
}

async function readPassword(isFromStdin: boolean): Promise<string | undefined> {
  if (!isFromStdin && !process.stdin.isTTY) return undefined;
  const password = await readLine(isFromStdin, 'Password (empty: generate one): ');
  if (!password) {
    // A script whose variable was unset must not leave the account on a password nobody saw.
    if (isFromStdin) {
      throw new UsageError(
        'No password arrived on stdin (--password-stdin reads one line); leave the option out to generate one.',
      );
    }
    return undefined;
  }
  const checked = ZNewPassword.safeParse(password);
  if (!checked.success) throw new UsageError(`password: ${checked.error.issues[0]?.message}`);
  // Typed unseen, a slip would leave the account (the first admin, say) on a password nobody knows.
  if (!isFromStdin && (await readLine(false, 'Repeat the password: ')) !== password) {
    throw new UsageError('The two passwords differ; nothing was changed. Run the command again.');
  }
  return password;
}

type TCommand = 'create' | 'passwd' | 'disable' | 'unlock';

/**
 * The options each command takes. One parser for all used to take any of them anywhere, so
 * `user:passwd -- --role admin` changed a password and said nothing of the role it ignored.
 */
const COMMAND_OPTIONS: Record<TCommand, string[]> = {
  create: ['username', 'role', 'password-stdin'],
  passwd: ['username', 'password-stdin'],
  disable: ['username', 'enable'],
  unlock: ['username'],
};

function parseOptions(command: TCommand, args: string[]) {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: {
      username: { type: 'string' },
      role: { type: 'string', default: 'user' },
      'password-stdin': { type: 'boolean', default: false },
      enable: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const allowed = COMMAND_OPTIONS[command];
  const given = args.filter((arg) => arg.startsWith('--')).map((arg) => arg.slice(2).split('=')[0] as string);
  const stray = given.find((name) => name !== 'help' && !allowed.includes(name));
  if (stray) {
    throw new UsageError(
      `user:${command} does not take --${stray} (it takes ${allowed.map((name) => `--${name}`).join(', ')}).\n\n${USAGE}`,
    );
  }
  // parseArgs keeps the last of a repeated option: `disable --username alice --username bob`
  // disabled bob alone and said only that, as `ingest --from` once read a month fewer.
  // A flag given twice (`--enable --enable`) is refused too, as docs/security.md says of any option:
  // it said "already enabled" and exited 0 over what was likely a pasted or doubled command line.
  for (const name of allowed) {
    const given = tokens.flatMap((token) => (token.kind === 'option' && token.name === name ? [token.value] : []));
    if (given.length > 1) {
      const values = given.every((value) => value === undefined) ? '' : ` (${given.join(', ')})`;
      throw new UsageError(`--${name}: given ${given.length} times${values}; give it once\n\n${USAGE}`);
    }
  }
  return values;
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (!command) throw new UsageError(USAGE);
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    process.exit(0);
  }
  if (!(command in COMMAND_OPTIONS)) {
    throw new UsageError(`Unknown command "${command}": use create, passwd, disable or unlock.\n\n${USAGE}`);
  }
  let values: ReturnType<typeof parseOptions>;
  try {
    values = parseOptions(command as TCommand, rest);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const knownOptions = [...COMMAND_OPTIONS[command as TCommand], 'help'];
    throw new UsageError(
      `${describeArgsError(error, `user:${command as TCommand}`, rest, { knownOptions })}\n\n${USAGE}`,
    );
  }
  // `npm run user:create -- --help` puts the command first.
  if (values.help) {
    console.log(USAGE);
    return;
  }
  // ZUsername reads BOB as bob, as sign-in does: said, rather than refused as if it were some other name.
  const typedUsername = values.username ?? '';
  // A new user's name may not be an actor of the log's own (cli, system); an existing account's is found as it is.
  const username = (command === 'create' ? ZNewUsername : ZUsername).safeParse(typedUsername);
  if (!username.success) throw new UsageError(`--username ${username.error.issues[0]?.message}\n\n${USAGE}`);
  const readAs = usernameReadAsNoteOf(typedUsername, username.data);
  if (readAs) console.log(`--username ${readAs}`);
  const role = ZRole.safeParse(values.role);
  if (!role.success) throw new UsageError('--role must be admin or user.');
  const config = loadConfig();
  configureAuditChain(config.audit);
  // Who ran it, for each entry's details: the OS user, and under sudo who invoked it (config.sudoUser).
  const cliContext = cliAuditContext('user.cli', { sudoUser: config.sudoUser });
  if (!config.databaseUrl) throw missingDatabaseUrl('(the user tools work on a configured database)');
  const db = openToolDatabase(config.databaseUrl, config, { poolMax: 2, logger: createToolLogger('warn') });
  try {
    // Before a password is asked for: every command appends to the log, in the change's transaction.
    await refuseUnsealedAppend(db.prisma);
    if (command === 'create') {
      const password = await readPassword(values['password-stdin'] ?? false);
      const { generatedPassword } = await usersService.createUser(
        db.prisma,
        { username: username.data, role: role.data, password },
        cliContext,
      );
      console.log(
        `Created ${role.data} ${username.data}.${generatedPassword ? ` Password: ${generatedPassword}` : ''}`,
      );
    } else {
      const user = await usersService.findUserByUsername(db.prisma, username.data);
      if (!user) throw new AppError(404, `No user named ${username.data}.`);
      if (command === 'passwd') {
        const password = await readPassword(values['password-stdin'] ?? false);
        const { generatedPassword, lockedUntil } = await usersService.resetPassword(
          db.prisma,
          user.id,
          password,
          cliContext,
        );
        const unlocked = lockedUntil ? ' Its sign-in lock was lifted.' : '';
        console.log(
          `Password of ${user.username} changed.${unlocked}${generatedPassword ? ` New password: ${generatedPassword}` : ''}`,
        );
        // Set all the same (an account made ready before it is enabled), but said: the password signs no one in yet.
        if (user.isDisabled) {
          console.log(
            `${user.username} is disabled: they cannot sign in with it until it is enabled (${toolCommand('user:disable', `--username ${user.username} --enable`)}).`,
          );
        }
      } else if (command === 'unlock') {
        const { lockedUntil } = await usersService.unlockSignIn(db.prisma, user.id, cliContext, new Date());
        console.log(`Sign-in of ${user.username} ${lockedUntil ? 'unlocked' : 'was not locked'}.`);
      } else {
        const { isChanged, pendingReceipts } = await usersService.setDisabled(
          db.prisma,
          user.id,
          !values.enable,
          cliContext,
        );
        const state = values.enable ? 'enabled' : 'disabled';
        // As the users page says it: a run that found the account so already changed nothing and audited nothing.
        console.log(
          isChanged ? `${user.username} is ${state}.` : `${user.username} is already ${state}; nothing was changed.`,
        );
        if (pendingReceipts) {
          // As the users page says it, with the address of the list an admin opens to void or mark them paid.
          const money = createViewFormatters({ timeZone: config.timeZone, currency: config.currency }).money;
          const path = usersService.pendingReceiptsPathOf(user.username);
          console.log(usersService.describePendingReceipts(user.username, pendingReceipts, money));
          console.log(
            config.publicBaseUrl
              ? `They are listed at ${config.publicBaseUrl}${path}`
              : `They are listed on the site at ${path}`,
          );
        }
      }
    }
  } finally {
    await db.close();
  }
}

runTool(main, (error) => (error instanceof UsageError ? USAGE_EXIT_CODE : undefined));
