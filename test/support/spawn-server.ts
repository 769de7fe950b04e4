import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { builtFile } from './built-app.js';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

/** A production start's settings for a spawned server (add PORT and DATABASE_URL), with info logs and no ingestion. */
export const PRODUCTION_ENV = {
  APP_ENV: 'production',
  HOST: '127.0.0.1',
  SESSION_SECRET: 's'.repeat(40),
  AUDIT_CHAIN_KEY: 'k'.repeat(40),
  LOG_LEVEL: 'info',
  INGEST_ENABLED: '0',
};

export interface RunningServer {
  process: ChildProcess;
  output(): string;
  /** What it wrote to stdout alone (output() interleaves stderr). */
  stdout(): string;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /**
   * Starts the server as the leader of a process group of its own, as a shell starts a
   * foreground command: `process.kill(-pid, 'SIGINT')` is then what Ctrl-C in its terminal sends.
   */
  hasOwnProcessGroup?: boolean;
  /**
   * Runs src/server.ts through tsx, as `npm start` does, in place of the build compiled once for
   * the run: for the tests that are about that path (a fresh checkout's `npm start`).
   */
  isFromSource?: boolean;
}

/**
 * Starts the server (compiled, `node src/server.js` of the run's build, unless `isFromSource`) in a
 * child process with exactly the given environment (plus PATH and HOME), and waits for its
 * "listening" line.
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 90_000,
  options: SpawnOptions = {},
): Promise<RunningServer> {
  const entry = options.isFromSource ? ['--import', 'tsx', 'src/server.ts'] : [builtFile('src/server.ts')];
  const child = spawn(process.execPath, entry, {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.hasOwnProcessGroup ?? false,
  });
  let output = '';
  let stdout = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const check = () => {
      if (/is listening on (http|port \d+ of every interface)/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    process: child,
    output: () => output,
    stdout: () => stdout,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
