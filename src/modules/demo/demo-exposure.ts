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

/** Whether the dummy provider signs with its published default secret. */
function isPublishedWebhookSecretInUse(payments: Pick<AppConfig['payments'], 'provider' | 'webhookSecret'>): boolean {
  return payments.provider === 'dummy' && payments.webhookSecret === DEV_DUMMY_WEBHOOK_SECRET;
}

const WEBHOOK_SECRET_WORDS = `the default PAYMENT_WEBHOOK_SECRET (${DEV_DUMMY_WEBHOOK_SECRET}, published in docs/payments.md)`;

/**
 * The demo's logins (admin/admin, alice/alice, bob/bob) are known to anyone who has read the
 * README. HOST=0.0.0.0 (set for a container, or copied from a production env file) served them on
 * every interface without a word: anyone on the network could sign in as admin. Said once at
 * start, when the demo's logins are in the database; not refused, since showing the demo to
 * colleagues is a reason to set it. True when it warned. The dummy provider's default webhook secret
 * is as public as the logins (anyone who reaches the port can sign a webhook that marks a receipt
 * paid), so it is named too while it is in use, and alone without the demo's logins (DEMO_SEED=0 in
 * development), where it was not named at all.
 */
export function warnIfDemoSecretsExposed(
  logger: Pick<Logger, 'warn'>,
  config: Pick<AppConfig, 'host' | 'port'> & { payments: Pick<AppConfig['payments'], 'provider' | 'webhookSecret'> },
  demo: DemoSeedResult | undefined,
): boolean {
  if (isLoopback(config.host)) return false;
  const hasDemoLogins = demo !== undefined && (demo.isSeeded || demo.hasDemoLogins);
  const isSecretPublished = isPublishedWebhookSecretInUse(config.payments);
  if (!hasDemoLogins && !isSecretPublished) return false;
  const where =
    config.host === '0.0.0.0' || config.host === '::'
      ? `HOST=${config.host}, every interface of this machine`
      : `HOST=${config.host}, which other machines can reach`;
  if (!hasDemoLogins) {
    logger.warn(
      `the dummy payment provider signs with ${WEBHOOK_SECRET_WORDS} on ${where}: anyone who can reach ` +
        `port ${config.port} can sign a dummy payment webhook that marks a receipt paid. Set ` +
        'PAYMENT_WEBHOOK_SECRET to a secret of your own, or HOST=127.0.0.1 (the development default) ' +
        '(docs/operations.md, "The demo on a network")',
    );
    return true;
  }
  const webhookWarning = isSecretPublished
    ? `, and with ${WEBHOOK_SECRET_WORDS} sign a dummy payment webhook that marks a receipt paid; set ` +
      'PAYMENT_WEBHOOK_SECRET to a secret of your own'
    : '';
  logger.warn(
    `the demo's logins (admin/admin, alice/alice, bob/bob) are served on ${where}: anyone who can reach ` +
      `port ${config.port} can sign in as admin${webhookWarning}. Unless the demo is meant ` +
      'to be shown on the network, set HOST=127.0.0.1 (the development default); for real data, set ' +
      'DATABASE_URL and DEMO_SEED=0 (docs/operations.md, "The demo on a network")',
  );
  return true;
}
