import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../../src/config/config.js';
import { warnAboutPlainHttp } from '../../src/http/plain-http.js';

describe('warnAboutPlainHttp', () => {
  const run = (config: Pick<AppConfig, 'isProduction' | 'isHttpsRequired' | 'trustProxy'>) => {
    const warnings: string[] = [];
    const hasWarned = warnAboutPlainHttp({ warn: (message: string) => warnings.push(message) } as never, config);
    expect(warnings).toHaveLength(hasWarned ? 1 : 0);
    return warnings[0] ?? '';
  };

  it.each([
    ['production behind a trusted proxy', { isProduction: true, isHttpsRequired: true, trustProxy: ['loopback'] }, ''],
    ['development', { isProduction: false, isHttpsRequired: false, trustProxy: false }, ''],
    [
      'production with no proxy trusted (nobody can sign in)',
      { isProduction: true, isHttpsRequired: true, trustProxy: false },
      'no one can sign in until it runs behind a TLS proxy named in TRUST_PROXY',
    ],
    [
      'production with REQUIRE_HTTPS=0',
      { isProduction: true, isHttpsRequired: false, trustProxy: false },
      'REQUIRE_HTTPS=0 in production: cookies lack Secure',
    ],
  ])('%s', (_case, config, expected) => {
    const warning = run(config);
    if (expected) expect(warning).toContain(expected);
    else expect(warning).toBe('');
  });
});
