import { describe, expect, it } from 'vitest';
import { DEV_DUMMY_WEBHOOK_SECRET } from '../../src/config/config.js';
import type { DemoSeedResult } from '../../src/modules/demo/demo.service.js';
import { warnIfDemoSecretsExposed } from '../../src/modules/demo/demo-exposure.js';

describe('warnIfDemoSecretsExposed', () => {
  const defaultDummy = { provider: 'dummy', webhookSecret: DEV_DUMMY_WEBHOOK_SECRET } as const;
  const run = (
    host: string,
    demo: DemoSeedResult | undefined,
    payments: { provider: 'none' | 'dummy' | 'stripe'; webhookSecret: string } = defaultDummy,
  ) => {
    const warnings: string[] = [];
    const hasWarned = warnIfDemoSecretsExposed(
      { warn: (message: string) => warnings.push(message) } as never,
      { host, port: 3102, payments },
      demo,
    );
    expect(warnings).toHaveLength(hasWarned ? 1 : 0);
    return warnings[0] ?? '';
  };
  const seeded: DemoSeedResult = { isSeeded: true, jobCount: 10 };

  it.each(['0.0.0.0', '::', '192.168.1.20', 'billing.example.org'])(
    'says the demo logins admin/admin answer on HOST=%s, which other machines reach',
    (host) => {
      const warning = run(host, seeded);
      expect(warning).toContain(`HOST=${host}`);
      expect(warning).toContain('admin/admin');
      expect(warning).toContain('HOST=127.0.0.1');
    },
  );

  it('names every interface for 0.0.0.0 and ::', () => {
    expect(run('0.0.0.0', seeded)).toContain('every interface');
    expect(run('::', seeded)).toContain('every interface');
  });

  // The dummy provider signs with a secret printed in the README and docs/payments.md: anyone who
  // reached the demo could post a webhook that marks a receipt paid, and the warning named only the logins.
  it('names the default webhook secret of the dummy provider, which anyone can sign a webhook with', () => {
    const warning = run('0.0.0.0', seeded);
    expect(warning).toContain('PAYMENT_WEBHOOK_SECRET');
    expect(warning).toContain(DEV_DUMMY_WEBHOOK_SECRET);
  });

  it.each([
    ['a secret of its own', { provider: 'dummy', webhookSecret: 'a-secret-of-this-machine-only' }],
    ['no payment provider', { provider: 'none', webhookSecret: DEV_DUMMY_WEBHOOK_SECRET }],
  ] as const)('says nothing of webhooks with %s', (_case, payments) => {
    const warning = run('0.0.0.0', seeded, payments);
    expect(warning).toContain('admin/admin');
    expect(warning).not.toContain('PAYMENT_WEBHOOK_SECRET');
  });

  it('warns too for a demo seeded on an earlier start, whose logins are still there', () => {
    expect(run('0.0.0.0', { isSeeded: false, hasDemoLogins: true })).toContain('admin/admin');
  });

  it.each([
    ['loopback', '127.0.0.1', seeded],
    ['loopback IPv6', '::1', seeded],
    ['localhost', 'localhost', seeded],
    ['no demo (production, DEMO_SEED=0)', '0.0.0.0', undefined],
    ["a database of someone else's users, no demo login", '0.0.0.0', { isSeeded: false, hasDemoLogins: false }],
  ] as const)('is quiet for %s, webhooks signed with a secret of its own', (_case, host, demo) => {
    expect(run(host, demo, { provider: 'dummy', webhookSecret: 'a-secret-of-this-machine-only' })).toBe('');
    expect(run(host, demo, { provider: 'none', webhookSecret: DEV_DUMMY_WEBHOOK_SECRET })).toBe('');
  });

  // Development with DEMO_SEED=0 on HOST=0.0.0.0: no demo login to warn of, and the dummy provider still
  // took webhooks signed with the published secret without a word.
  it.each([
    ['no demo (DEMO_SEED=0)', undefined],
    ["a database of someone else's users", { isSeeded: false, hasDemoLogins: false }],
  ] as const)('names the published webhook secret alone with %s', (_case, demo) => {
    const warning = run('0.0.0.0', demo);
    expect(warning).toContain(
      `the dummy payment provider signs with the default PAYMENT_WEBHOOK_SECRET (${DEV_DUMMY_WEBHOOK_SECRET}`,
    );
    expect(warning).toContain('HOST=0.0.0.0, every interface of this machine');
    expect(warning).toContain('Set PAYMENT_WEBHOOK_SECRET to a secret of your own');
    expect(warning).not.toContain('admin/admin');
    expect(run('127.0.0.1', demo)).toBe('');
  });
});
