import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { request } from 'undici';
import { findFreePort } from '../../src/db/embedded-postgres.js';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '../..');

export interface AppServer {
  baseUrl: string;
  pid: number;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface AppServerOptions {
  databaseUrl: string;
  webConcurrency: number;
  webhookSecret: string;
  /** Extra variables (`--server-env KEY=VALUE`), e.g. what a new feature requires. */
  extraEnv?: Record<string, string>;
  /** Run src/server.ts through tsx instead of the compiled build (`--source`). */
  isFromSource?: boolean;
  readyTimeoutMs?: number;
}

let builtEntry: string | undefined;

/**
 * One audit key for every benchmark run: the apps of later runs append to the chain the
 * earlier ones sealed, and a key drawn per run made each later app report the chain broken
 * at #1. A benchmark's database is a throwaway that `bench:data` filled, so a key written
 * here protects nothing a real site relies on.
 */
export const BENCH_AUDIT_CHAIN_KEY = 'bench-only-audit-chain-key-never-use-in-production';

/**
 * Compiles the app as the Dockerfile does (`npm run build`) once per run and returns the
 * entry point: production runs the compiled build, without tsx's loader thread and
 * esbuild helper process, which took CPU and ~25 MB of RSS per worker from the figures.
 */
function buildOnce(): string {
  if (!builtEntry) {
    const built = spawnSync(path.join(PROJECT_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    if (built.status !== 0) {
      throw new Error(`npm run build failed (exit ${built.status}):\n${built.stdout}${built.stderr}`);
    }
    builtEntry = path.join(PROJECT_ROOT, 'dist/src/server.js');
  }
  return builtEntry;
}

async function isReady(baseUrl: string): Promise<boolean> {
  try {
    const response = await request(`${baseUrl}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

/**
 * Starts the app as production runs it (APP_ENV=production, one worker per core,
 * LOG_LEVEL=warn) on a free loopback port and waits until /readyz answers 200.
 * TRUST_PROXY=loopback lets the harness say it is behind TLS (X-Forwarded-Proto), so
 * the Secure session cookie is issued as it is behind the real proxy.
 */
export async function startAppServer(options: AppServerOptions): Promise<AppServer> {
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const entry = options.isFromSource ? ['--import', 'tsx', 'src/server.ts'] : [buildOnce()];
  const child: ChildProcess = spawn(process.execPath, entry, {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      APP_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: options.databaseUrl,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      AUDIT_CHAIN_KEY: BENCH_AUDIT_CHAIN_KEY,
      WEB_CONCURRENCY: String(options.webConcurrency),
      LOG_LEVEL: 'warn',
      TRUST_PROXY: 'loopback',
      PAYMENT_WEBHOOK_SECRET: options.webhookSecret,
      ...options.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const stop = async () => {
    if (exitCode !== undefined) return exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  while (!(await isReady(baseUrl))) {
    if (exitCode !== undefined) throw new Error(`the app exited with ${exitCode} before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the app was not ready within ${options.readyTimeoutMs ?? 90_000} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { baseUrl, pid: child.pid as number, stop };
}
