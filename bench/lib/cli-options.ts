import os from 'node:os';
import { parseArgs } from 'node:util';
import { assertLoopbackUrl } from './loopback-guard.js';
import { findPidByPort } from './proc-sampler.js';

/** `--think-ms 1000` or `0-1000`: a random wait in that range; `0` for none. */
export function parseThinkMs(text: string): [number, number] {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`--think-ms must be N or MIN-MAX in milliseconds, got "${text}"`);
  const low = match[2] === undefined ? 0 : Number(match[1]);
  const high = Number(match[2] ?? match[1]);
  if (low > high) throw new Error(`--think-ms ${text}: the minimum is above the maximum`);
  return [low, high];
}

/** `--ramp-ms N`: a whole number of milliseconds, 0 or more. */
export function parseRampMs(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new Error(`--ramp-ms must be a whole number of milliseconds, got "${text}"`);
  return Number(text);
}

/** `KEY=VALUE` pairs of repeated `--server-env`. */
export function parseServerEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const separator = pair.indexOf('=');
    if (separator <= 0) throw new Error(`--server-env wants KEY=VALUE, got "${pair}"`);
    env[pair.slice(0, separator)] = pair.slice(separator + 1);
  }
  return env;
}

/**
 * Removes `--name VALUE` / `--name=VALUE` from `argv` (the last one wins), so a script can take
 * an option of its own before handing the rest to a strict parser such as parseLoadArgs.
 */
export function takeOption(argv: string[], name: string): { value: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let value: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (arg === `--${name}`) {
      value = argv[index + 1];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      index += 1;
    } else if (arg.startsWith(`--${name}=`)) {
      value = arg.slice(name.length + 3);
    } else {
      rest.push(arg);
    }
  }
  return { value, rest };
}

function positiveNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got "${text}"`);
  return value;
}

export interface LoadCliOptions {
  scenario: string;
  vus: number;
  durationSec: number;
  thinkMs: [number, number];
  /** Virtual users start one after another over this many ms (0: all at once). */
  rampMs: number;
  users: number;
  receiptShare: number;
  maxIterationsPerVu: number;
  /** Target an already running server (loopback only) instead of starting one. */
  baseUrl?: URL;
  serverPid?: number;
  databaseUrl?: string;
  webConcurrency: number;
  webhookSecret: string;
  currency: string;
  serverEnv: Record<string, string>;
  sampleIntervalMs: number;
  /** Start src/server.ts through tsx instead of the compiled build. */
  isFromSource: boolean;
}

/** Parses the load driver's arguments; `defaults` lets the soak run change the starting values. */
export function parseLoadArgs(argv: string[], defaults: Partial<Record<string, string>> = {}): LoadCliOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: defaults.scenario ?? 'login-browse' },
      vus: { type: 'string', default: defaults.vus ?? '20' },
      duration: { type: 'string', default: defaults.duration ?? '60' },
      'think-ms': { type: 'string', default: defaults.thinkMs ?? '0' },
      'ramp-ms': { type: 'string', default: defaults.rampMs ?? '0' },
      users: { type: 'string', default: '500' },
      'receipt-share': { type: 'string', default: '0.1' },
      'max-iterations': { type: 'string', default: '10000000' },
      'base-url': { type: 'string' },
      'server-pid': { type: 'string' },
      'database-url': { type: 'string' },
      'web-concurrency': { type: 'string', default: String(os.availableParallelism()) },
      'webhook-secret': { type: 'string' },
      currency: { type: 'string', default: 'THB' },
      'server-env': { type: 'string', multiple: true, default: [] },
      'sample-ms': { type: 'string', default: defaults.sampleMs ?? '1000' },
      source: { type: 'boolean', default: false },
    },
  });
  const receiptShare = Number(values['receipt-share']);
  if (!(receiptShare >= 0 && receiptShare <= 1)) throw new Error('--receipt-share must be between 0 and 1');
  const baseUrl = values['base-url'] ? assertLoopbackUrl(values['base-url']) : undefined;
  let serverPid = values['server-pid'] ? positiveNumber('server-pid', values['server-pid']) : undefined;
  if (baseUrl && !serverPid)
    serverPid = findPidByPort(Number(baseUrl.port || (baseUrl.protocol === 'https:' ? 443 : 80)));
  return {
    scenario: values.scenario,
    vus: Math.floor(positiveNumber('vus', values.vus)),
    durationSec: positiveNumber('duration', values.duration),
    thinkMs: parseThinkMs(values['think-ms']),
    rampMs: parseRampMs(values['ramp-ms']),
    users: Math.floor(positiveNumber('users', values.users)),
    receiptShare,
    maxIterationsPerVu: Math.floor(positiveNumber('max-iterations', values['max-iterations'])),
    baseUrl,
    serverPid,
    databaseUrl: values['database-url'] ?? process.env.DATABASE_URL,
    webConcurrency: Math.floor(positiveNumber('web-concurrency', values['web-concurrency'])),
    webhookSecret:
      values['webhook-secret'] ?? process.env.PAYMENT_WEBHOOK_SECRET ?? 'bench-webhook-secret-not-for-production',
    currency: values.currency,
    serverEnv: parseServerEnv(values['server-env']),
    sampleIntervalMs: positiveNumber('sample-ms', values['sample-ms']),
    isFromSource: values.source,
  };
}
