import { describe, expect, it } from 'vitest';
import { warnIfMetricsPublic } from '../../src/modules/metrics/metrics-exposure.js';

describe('warnIfMetricsPublic', () => {
  const run = (isProduction: boolean, isEnabled: boolean, token: string | undefined) => {
    const warnings: unknown[] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args) };
    const hasWarned = warnIfMetricsPublic(logger as never, {
      isProduction,
      metrics: { isEnabled, hasProcessMetrics: false, token },
    });
    expect(warnings).toHaveLength(hasWarned ? 1 : 0);
    return hasWarned;
  };

  it.each([
    ['production, on, no token', true, true, undefined, true],
    ['production, on, a token', true, true, 'a-long-enough-token', false],
    ['production, off', true, false, undefined, false],
    ['development, on, no token', false, true, undefined, false],
  ])('%s: warns %s', (_case, isProduction, isEnabled, token, expected) => {
    expect(run(isProduction, isEnabled, token)).toBe(expected);
  });
});
