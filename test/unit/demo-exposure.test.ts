import { describe, expect, it } from 'vitest';
import type { DemoSeedResult } from '../../src/modules/demo/demo.service.js';
import { warnIfDemoLoginsExposed } from '../../src/modules/demo/demo-exposure.js';

describe('warnIfDemoLoginsExposed', () => {
  const run = (host: string, demo: DemoSeedResult | undefined) => {
    const warnings: string[] = [];
    const hasWarned = warnIfDemoLoginsExposed(
      { warn: (message: string) => warnings.push(message) } as never,
      { host, port: 3102 },
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

  it('warns too for a demo seeded on an earlier start, whose logins are still there', () => {
    expect(run('0.0.0.0', { isSeeded: false, hasDemoLogins: true })).toContain('admin/admin');
  });

  it.each([
    ['loopback', '127.0.0.1', seeded],
    ['loopback IPv6', '::1', seeded],
    ['localhost', 'localhost', seeded],
    ['no demo (production, DEMO_SEED=0)', '0.0.0.0', undefined],
    ["a database of someone else's users, no demo login", '0.0.0.0', { isSeeded: false, hasDemoLogins: false }],
  ] as const)('is quiet for %s', (_case, host, demo) => {
    expect(run(host, demo)).toBe('');
  });
});
