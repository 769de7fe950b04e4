import { describe, expect, it } from 'vitest';
import { formatStartupBanner } from '../../src/startup-banner.js';

const EMBEDDED_URL = 'postgresql://postgres:embedded-postgres@127.0.0.1:41234/hpc_billing';
const config = { host: '127.0.0.1', port: 8000, dataDir: '/srv/app/.data', shouldSeedDemo: true, isProduction: false };
const seeded = { isSeeded: true, sacctFile: '/srv/app/.data/demo/sacct-demo.psv', jobCount: 3000 };

describe('start-up banner', () => {
  it('shows the embedded database URL for the CLIs in development', () => {
    const banner = formatStartupBanner(config, { databaseUrl: EMBEDDED_URL, isEmbedded: true, demo: seeded });
    expect(banner.split('\n')).toEqual([
      'HPC Billing is listening on http://127.0.0.1:8000',
      '  database: embedded PostgreSQL under /srv/app/.data',
      `  for npm run ingest / user:* in another shell (new port each start): export DATABASE_URL=${EMBEDDED_URL}`,
      '  demo data: seeded now (3000 Slurm jobs from /srv/app/.data/demo/sacct-demo.psv)',
      '  demo logins: admin/admin, alice/alice, bob/bob',
    ]);
  });

  it.each([
    [
      'a configured database (its URL may hold a real password)',
      config,
      'postgresql://billing:s3cret@db:5432/billing',
      false,
    ],
    ['production', { ...config, isProduction: true, shouldSeedDemo: false }, EMBEDDED_URL, true],
  ])('never shows the database URL for %s', (_label, settings, databaseUrl, isEmbedded) => {
    const banner = formatStartupBanner(settings, { databaseUrl, isEmbedded, demo: undefined });
    expect(banner).not.toContain(databaseUrl);
    expect(banner).not.toContain('DATABASE_URL');
  });
});
