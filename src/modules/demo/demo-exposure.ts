import { isIP } from 'node:net';
import { type AppConfig, DEV_DUMMY_WEBHOOK_SECRET } from '../../config/config.js';
import type { Logger } from '../../shared/logger.js';
import type { DemoSeedResult } from './demo.service.js';

/** Whether only this machine can reach a server listening on `host`. */
function isLoopback(host: string): boolean {
  const address = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (address === 'localhost' || address === '::1') return true;
  return isIP(address) === 4 && address.startsWith('127.');
}

/** The part of the warning about the dummy provider's published webhook secret; '' when not in use. */
function webhookWarningOf(payments: Pick<AppConfig['payments'], 'provider' | 'webhookSecret'>): string {
  if (payments.provider !== 'dummy' || payments.webhookSecret !== DEV_DUMMY_WEBHOOK_SECRET) return '';
  return (
    `, and with the default PAYMENT_WEBHOOK_SECRET (${DEV_DUMMY_WEBHOOK_SECRET}, published in ` +
    'docs/payments.md) sign a dummy payment webhook that marks a receipt paid; set PAYMENT_WEBHOOK_SECRET ' +
    'to a secret of your own'
  );
}

/**
 * The demo's logins (admin/admin, alice/alice, bob/bob) are known to anyone who has read the
 * README. HOST=0.0.0.0 (set for a container, or copied from a production env file) served them on
 * every interface without a word: anyone on the network could sign in as admin. Said once at
 * start, when the demo's logins are in the database; not refused, since showing the demo to
 * colleagues is a reason to set it. True when it warned. The dummy provider's default webhook secret
 * is as public as the logins (anyone who reaches the port can sign a webhook that marks a receipt
 * paid), and the warning named only the logins, so it names the secret too while it is in use.
 */
export function warnIfDemoLoginsExposed(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'host' | 'port'> & { payments: Pick<AppConfig['payments'], 'provider' | 'webhookSecret'> },
  demo: DemoSeedResult | undefined,
): boolean {
  if (!demo || !(demo.isSeeded || demo.hasDemoLogins) || isLoopback(config.host)) return false;
  const where =
    config.host === '0.0.0.0' || config.host === '::'
      ? `HOST=${config.host}, every interface of this machine`
      : `HOST=${config.host}, which other machines can reach`;
  logger.warn(
    `the demo's logins (admin/admin, alice/alice, bob/bob) are served on ${where}: anyone who can reach ` +
      `port ${config.port} can sign in as admin${webhookWarningOf(config.payments)}. Unless the demo is meant ` +
      'to be shown on the network, set HOST=127.0.0.1 (the development default); for real data, set ' +
      'DATABASE_URL and DEMO_SEED=0 (docs/operations.md, "The demo on a network")',
  );
  return true;
}
