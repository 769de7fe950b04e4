import { isIP } from 'node:net';
import type { AppConfig } from '../../config/config.js';
import type { Logger } from '../../shared/logger.js';
import type { DemoSeedResult } from './demo.service.js';

/** Whether only this machine can reach a server listening on `host`. */
function isLoopback(host: string): boolean {
  const address = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (address === 'localhost' || address === '::1') return true;
  return isIP(address) === 4 && address.startsWith('127.');
}

/**
 * The demo's logins (admin/admin, alice/alice, bob/bob) are known to anyone who has read the
 * README. HOST=0.0.0.0 (set for a container, or copied from a production env file) served them on
 * every interface without a word: anyone on the network could sign in as admin. Said once at
 * start, when the demo's logins are in the database; not refused, since showing the demo to
 * colleagues is a reason to set it. True when it warned.
 */
export function warnIfDemoLoginsExposed(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'host' | 'port'>,
  demo: DemoSeedResult | undefined,
): boolean {
  if (!demo || !(demo.isSeeded || demo.hasDemoLogins) || isLoopback(config.host)) return false;
  const where =
    config.host === '0.0.0.0' || config.host === '::'
      ? `HOST=${config.host}, every interface of this machine`
      : `HOST=${config.host}, which other machines can reach`;
  logger.warn(
    `the demo's logins (admin/admin, alice/alice, bob/bob) are served on ${where}: anyone who can reach ` +
      `port ${config.port} can sign in as admin. Unless the demo is meant to be shown on the network, set ` +
      'HOST=127.0.0.1 (the development default); for real data, set DATABASE_URL and DEMO_SEED=0 ' +
      '(docs/operations.md, "The demo on a network")',
  );
  return true;
}
