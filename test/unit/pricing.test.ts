import { Prisma } from '@prisma/client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import {
  classifyTier,
  computeResourceHours,
  type JobUsage,
  minorUnitDigits,
  parseTierRules,
  priceHours,
  priceJob,
  type Rates,
  resolveEffectiveTier,
  roundMoney,
  sumCosts,
} from '../../src/modules/pricing/pricing.js';

const D = (value: string | number) => new Prisma.Decimal(value);

function job(overrides: Partial<JobUsage> = {}): JobUsage {
  return {
    elapsedSec: 3600,
    allocCpus: 4,
    allocMemMb: '8192',
    allocGpus: 0,
    reqGpus: 0,
    cpuTimeSec: null,
    totalCpuSec: null,
    stepMemGbHours: null,
    ...overrides,
  };
}

const THB: Rates = { cpu: D('0.50'), gpu: D('12.00'), mem: D('0.05'), currency: 'THB' };

describe('computeResourceHours', () => {
  it.each([
    ['used: sum of step TotalCPU wins', job({ totalCpuSec: '5400', cpuTimeSec: 14_400n }), 'used', '1.5'],
    ['used: TotalCPU of 0 is a real zero', job({ totalCpuSec: '0', cpuTimeSec: 14_400n }), 'used', '0'],
    ['used: CPUTimeRAW when TotalCPU is missing', job({ cpuTimeSec: 7200n }), 'used', '2'],
    ['used: allocated CPUs x elapsed when both are missing', job({ allocCpus: 8, elapsedSec: 1800 }), 'used', '4'],
    ['allocated: ignores TotalCPU', job({ totalCpuSec: '60', cpuTimeSec: 60n }), 'allocated', '4'],
    ['rounds half-up to 6 decimals', job({ totalCpuSec: '0.0018' }), 'used', '0.000001'],
    ['rounds below half down', job({ totalCpuSec: '0.0017' }), 'used', '0'],
    ['a fraction of a second', job({ totalCpuSec: '1.5' }), 'used', '0.000417'],
  ] as const)('CPU core-hours, %s', (_case, input, basis, expected) => {
    expect(computeResourceHours(input, basis).cpuHours.toFixed()).toBe(expected);
  });

  it.each([
    ['sum over steps of AveRSS x elapsed', job({ stepMemGbHours: '3.25' }), '3.25'],
    ['allocated memory (GB) x elapsed when steps have none', job({ allocMemMb: '2048', elapsedSec: 5400 }), '3'],
    ['fractional megabytes', job({ allocMemMb: '1.5', elapsedSec: 3600 }), '0.001465'],
    ['a zero elapsed job', job({ elapsedSec: 0 }), '0'],
  ] as const)('memory GB-hours, %s', (_case, input, expected) => {
    expect(computeResourceHours(input, 'used').memGbHours.toFixed()).toBe(expected);
  });

  it.each([
    ['allocated gres/gpu x elapsed', job({ allocGpus: 2, reqGpus: 4, elapsedSec: 5400 }), '3'],
    ['requested GPUs when none were allocated', job({ allocGpus: 0, reqGpus: 4, elapsedSec: 900 }), '1'],
    ['no GPUs at all', job(), '0'],
  ] as const)('GPU-hours, %s', (_case, input, expected) => {
    expect(computeResourceHours(input, 'used').gpuHours.toFixed()).toBe(expected);
  });
});

describe('pricing a job', () => {
  it.each([
    // cpu 1.5 h x 0.50 + mem 8 GB-h x 0.05 = 0.75 + 0.40
    ['CPU and memory', job({ totalCpuSec: '5400' }), THB, '1.15'],
    // gpu 1 h x 12 + cpu 4 h x 0.5 + mem 8 x 0.05
    ['with a GPU', job({ allocGpus: 1 }), THB, '14.4'],
    // 0.000417 h x 0.5 = 0.0002085 -> 0.00
    ['a tiny job rounds to zero', job({ totalCpuSec: '1.5', allocMemMb: '0' }), THB, '0'],
    // 0.01 h x 0.5 = 0.005 -> half-up 0.01
    ['exactly half a minor unit rounds up', job({ totalCpuSec: '36', allocMemMb: '0' }), THB, '0.01'],
    // JPY has no minor unit: 1.5 h x 1 = 1.5 -> 2
    [
      'JPY rounds to whole yen',
      job({ totalCpuSec: '5400', allocMemMb: '0' }),
      { ...THB, cpu: D(1), currency: 'JPY' },
      '2',
    ],
    // KWD has three decimals: 1 h x 0.0125 = 0.0125 -> 0.013
    [
      'KWD keeps three decimals',
      job({ totalCpuSec: '3600', allocMemMb: '0' }),
      { ...THB, cpu: D('0.0125'), currency: 'KWD' },
      '0.013',
    ],
  ] as const)('%s', (_case, input, rates, expected) => {
    expect(priceJob(input, rates, 'used').cost.toFixed()).toBe(expected);
  });

  it('keeps every digit of a large product before rounding', () => {
    const hours = { cpuHours: D('123456789.123456'), gpuHours: D(0), memGbHours: D(0) };
    const cost = priceHours(hours, { ...THB, cpu: D('987654.654321') });
    // Checked with Python's decimal at 60 digits: 121932672385307.528... -> .53
    expect(cost.toFixed()).toBe('121932672385307.53');
  });

  it('a receipt total is the sum of the rounded items, not the rounded sum', () => {
    // Three items of 0.005 each: rounded items are 0.01 each.
    const items = [D('0.005'), D('0.005'), D('0.005')].map((raw) => roundMoney(raw, 'THB'));
    expect(sumCosts(items).toFixed()).toBe('0.03');
    expect(roundMoney('0.015', 'THB').toFixed()).toBe('0.02');
  });

  it.each([
    ['THB', 2],
    ['EUR', 2],
    ['JPY', 0],
    ['KWD', 3],
  ])('the minor unit of %s has %i digits', (currency, digits) => {
    expect(minorUnitDigits(currency)).toBe(digits);
  });
});

describe('tiers', () => {
  const rules = parseTierRules(
    JSON.stringify([
      { pattern: '^gov[-_.]', tier: 'gov' },
      { pattern: '^(ext|ind)[-_.]', tier: 'private' },
      { pattern: 'bot$', tier: 'ghost' },
    ]),
  );
  const knownTiers = new Set(['mu', 'gov', 'private']);

  it.each([
    ['gov_somchai', 'gov'],
    ['GOV-anan', 'gov'],
    ['ext.acme', 'private'],
    ['government', undefined],
    ['alice', undefined],
  ])('classifies %s as %s', (username, tier) => {
    expect(classifyTier(username, rules)).toBe(tier);
  });

  it.each([
    [
      'override wins over the classifier',
      'gov_a',
      'private',
      { tier: 'private', source: 'override', naturalTier: 'gov' },
    ],
    ['classifier when no override', 'gov_a', undefined, { tier: 'gov', source: 'rule', naturalTier: 'gov' }],
    ['default tier when no rule matches', 'alice', undefined, { tier: 'mu', source: 'default', naturalTier: 'mu' }],
    [
      'a rule for an unknown tier is skipped',
      'buildbot',
      undefined,
      { tier: 'mu', source: 'default', naturalTier: 'mu' },
    ],
    [
      'an override to a tier that no longer exists is ignored',
      'alice',
      'gone',
      { tier: 'mu', source: 'default', naturalTier: 'mu' },
    ],
  ] as const)('%s', (_case, username, override, expected) => {
    expect(resolveEffectiveTier({ username, override, rules, knownTiers, defaultTier: 'mu' })).toEqual(expected);
  });

  it.each([
    ['not json', 'must be a JSON list'],
    ['{"pattern":"a","tier":"b"}', 'must be a JSON list'],
    ['[{"pattern":"a"}]', 'rule 1 needs'],
    ['[{"pattern":"(","tier":"gov"}]', 'not a valid regular expression'],
  ])('refuses PRICING_TIER_RULES=%s', (text, message) => {
    expect(() => parseTierRules(text)).toThrow(message);
  });

  it('quotes a PRICING_TIER_RULES that is no JSON, and says when a shell took its double quotes', () => {
    // `set -a && . /etc/hpc-billing/env` reads [{"pattern":"^gov[-_.]","tier":"gov"}] as the line below:
    // the refusal showed neither the value nor why it no longer was JSON.
    expect(() => parseTierRules('[{pattern:^gov[-_.],tier:gov}]')).toThrow(
      `must be a JSON list like [{"pattern":"^gov_","tier":"gov"}] (got "[{pattern:^gov[-_.],tier:gov}]"): its double quotes are gone, as a shell removes them from a value not in single quotes; in a shell write PRICING_TIER_RULES='[{"pattern":"^gov_","tier":"gov"}]', and load an env file with node --env-file, systemd's EnvironmentFile or Compose, which keep them (not with ". file")`,
    );
    expect(() => parseTierRules('[{"pattern":"a","tier":"b"},]')).toThrow(
      /^must be a JSON list like \[\{"pattern":"\^gov_","tier":"gov"\}\] \(got "\[\{\\"pattern\\":\\"a\\",\\"tier\\":\\"b\\"\},\]"\)$/,
    );
  });

  // The default rules as docs/pricing.md, docs/operations.md and the README state them: the
  // prefix must be followed by -, _ or ., so a name that merely starts with it stays on the default.
  it.each([
    ['govlab', undefined],
    ['gov-lab', 'gov'],
    ['gov_x', 'gov'],
    ['gov.x', 'gov'],
    ['GOV_x', 'gov'],
    ['government', undefined],
    ['ext_corp', 'private'],
    ['extlab', undefined],
    ['ind.x', 'private'],
    ['ind-x', 'private'],
    ['indigo', undefined],
    ['x-gov_y', undefined],
  ])('the default rules put %s on %s', (username, tier) => {
    expect(classifyTier(username, loadConfig({}).pricing.tierRules)).toBe(tier);
  });

  it('ships default rules and reports bad ones at start-up', () => {
    const config = loadConfig({});
    expect(config.pricing.cpuBasis).toBe('used');
    expect(classifyTier('gov_x', config.pricing.tierRules)).toBe('gov');
    expect(() => loadConfig({ PRICING_TIER_RULES: '[{"pattern":"(","tier":"gov"}]' })).toThrow(
      /PRICING_TIER_RULES: rule 1/,
    );
    expect(() => loadConfig({ PRICING_CPU_BASIS: 'wall' })).toThrow(/PRICING_CPU_BASIS/);
  });
});
