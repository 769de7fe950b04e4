import { describe, expect, it } from 'vitest';
import { describeConfiguredDatabase, formatStartupBanner, startupLogLine } from '../../src/startup-banner.js';

const EMBEDDED_URL = 'postgresql://postgres:embedded-postgres@127.0.0.1:41234/hpc_billing';
const config = {
  host: '127.0.0.1',
  port: 8000,
  publicBaseUrl: undefined,
  dataDir: '/srv/app/.data',
  shouldSeedDemo: true,
  isProduction: false,
  isHttpsRequired: false,
  trustProxy: false as boolean | number | string[],
  webConcurrency: 1,
};
// Production as deployed: HTTPS required, behind a TLS proxy the app trusts.
const production = { ...config, isProduction: true, shouldSeedDemo: false, isHttpsRequired: true, trustProxy: 1 };
const seeded = { isSeeded: true, sacctFile: '/srv/app/.data/demo/sacct-demo.psv', jobCount: 3000 };

describe('start-up banner', () => {
  it('shows the embedded database URL for the CLIs in development', () => {
    const banner = formatStartupBanner(config, { databaseUrl: EMBEDDED_URL, isEmbedded: true, demo: seeded });
    expect(banner.split('\n')).toEqual([
      'HPC Billing is listening on http://127.0.0.1:8000',
      '  workers: 1 process (WEB_CONCURRENCY)',
      '  database: embedded PostgreSQL under /srv/app/.data',
      `  for npm run ingest / user:* / audit:verify / db:* in another shell (same port at each start while free): export DATABASE_URL=${EMBEDDED_URL} DATA_DIR=/srv/app/.data`,
      '  demo data: seeded now (3000 Slurm jobs from /srv/app/.data/demo/sacct-demo.psv)',
      '  demo logins: admin/admin, alice/alice, bob/bob',
    ]);
  });

  // Pasted for another checkout, or after `DATA_DIR=... npm start`, the line without DATA_DIR sent
  // `npm run ingest` looking for the demo's sacct file under that shell's ./.data (ENOENT).
  it.each([
    ['/tmp/demo-data', 'DATA_DIR=/tmp/demo-data'],
    ['/srv/my app/.data', "DATA_DIR='/srv/my app/.data'"],
    ["/srv/bob's/.data", "DATA_DIR='/srv/bob'\\''s/.data'"],
  ])('names the data directory %s in the line to paste, quoted for the shell', (dataDir, assignment) => {
    const banner = formatStartupBanner(
      { ...config, dataDir },
      { databaseUrl: EMBEDDED_URL, isEmbedded: true, demo: seeded },
    );
    expect(banner.split('\n')[3]).toBe(
      `  for npm run ingest / user:* / audit:verify / db:* in another shell (same port at each start while free): export DATABASE_URL=${EMBEDDED_URL} ${assignment}`,
    );
  });

  it("offers no demo logins for a database whose users are not the demo's", () => {
    const banner = formatStartupBanner(config, {
      databaseUrl: 'postgresql://billing@db:5432/billing',
      isEmbedded: false,
      demo: { isSeeded: false, hasDemoLogins: false },
    });
    expect(banner.split('\n').slice(2)).toEqual([
      '  database: billing on db:5432',
      "  demo data: not seeded: the database already has users, none of them the demo's (DEMO_SEED seeds only an empty database; DEMO_SEED=0 turns it off)",
    ]);
    expect(banner).not.toContain('admin/admin');
  });

  it('names the configured database it seeded, and says when the URL named none', () => {
    // DATABASE_URL=postgresql://postgres@127.0.0.1:5432 (no /DATABASE) reached the server's own
    // maintenance database, postgres, and the banner said only "demo data: seeded now".
    const seededInto = (databaseUrl: string) =>
      formatStartupBanner(config, { databaseUrl, isEmbedded: false, demo: seeded }).split('\n')[2];
    expect(seededInto('postgresql://postgres@127.0.0.1:5432')).toBe(
      "  database: postgres on 127.0.0.1:5432 (the URL names no database, so PostgreSQL took its user's name; name one: postgresql://…/DATABASE)",
    );
    expect(seededInto('postgresql://billing:s3cret@db.example.org/hpc_billing?sslmode=require')).toBe(
      '  database: hpc_billing on db.example.org:5432',
    );
    expect(seededInto('postgresql://billing@/billing?host=/run/postgresql')).toBe(
      '  database: billing on the socket in /run/postgresql',
    );
    expect(describeConfiguredDatabase('postgresql://bil%40ling:p%2Fw@[::1]:6432/my%20db')).toBe('my db on [::1]:6432');
  });

  it('offers the demo logins as first seeded when the database kept the demo', () => {
    const banner = formatStartupBanner(config, {
      databaseUrl: EMBEDDED_URL,
      isEmbedded: true,
      demo: { isSeeded: false, hasDemoLogins: true },
    });
    expect(banner.split('\n').slice(-2)).toEqual([
      '  demo data: kept from an earlier start',
      '  demo logins as first seeded (unless changed since): admin/admin, alice/alice, bob/bob',
    ]);
  });

  it('says when it finished the jobs of a seed an earlier start was stopped in, or could not', () => {
    const demoLine = (unfinishedSeed: { sacctFile: string; jobCount?: number; isFileMissing: boolean }) =>
      formatStartupBanner(config, {
        databaseUrl: EMBEDDED_URL,
        isEmbedded: true,
        demo: { isSeeded: false, hasDemoLogins: true, unfinishedSeed },
      })
        .split('\n')
        .at(-2);
    expect(demoLine({ sacctFile: '/srv/demo/sacct-demo.psv', jobCount: 3000, isFileMissing: false })).toBe(
      '  demo data: kept from an earlier start whose seed was stopped; its Slurm jobs finished now (3000 from /srv/demo/sacct-demo.psv)',
    );
    expect(demoLine({ sacctFile: '/srv/demo/sacct-demo.psv', isFileMissing: true })).toBe(
      '  demo data: kept from an earlier start whose seed was stopped before all its Slurm jobs were in; their file /srv/demo/sacct-demo.psv is gone',
    );
  });

  it.each([
    [
      '0.0.0.0',
      'HPC Billing is listening on port 8000 of every interface (0.0.0.0; http://localhost:8000 from this machine)',
    ],
    ['::', 'HPC Billing is listening on port 8000 of every interface (::; http://localhost:8000 from this machine)'],
    ['10.1.2.3', 'HPC Billing is listening on http://10.1.2.3:8000'],
  ])('says what listening on %s means', (host, firstLine) => {
    const banner = formatStartupBanner(
      { ...production, host },
      { databaseUrl: '', isEmbedded: false, demo: undefined },
    );
    expect(banner.split('\n')).toEqual([firstLine, '  workers: 1 process (WEB_CONCURRENCY)']);
  });

  it.each([
    [1, '  workers: 1 process (WEB_CONCURRENCY)'],
    [4, '  workers: 4 processes (WEB_CONCURRENCY)'],
  ])('says how many worker processes serve with WEB_CONCURRENCY=%i', (webConcurrency, line) => {
    const banner = formatStartupBanner(
      { ...config, webConcurrency },
      { databaseUrl: EMBEDDED_URL, isEmbedded: true, demo: seeded },
    );
    expect(banner.split('\n')[1]).toBe(line);
  });

  it('shows the public address when PUBLIC_BASE_URL is set', () => {
    const behindProxy = { ...config, host: '0.0.0.0', publicBaseUrl: 'https://billing.example.edu' };
    const banner = formatStartupBanner(behindProxy, { databaseUrl: '', isEmbedded: false, demo: undefined });
    expect(banner.split('\n').slice(0, 2)).toEqual([
      'HPC Billing is listening on port 8000 of every interface (0.0.0.0; http://localhost:8000 from this machine)',
      '  public address: https://billing.example.edu',
    ]);
    expect(banner.split('\n')[2]).toBe('  workers: 1 process (WEB_CONCURRENCY)');
  });

  it.each([
    [
      'a configured database (its URL may hold a real password)',
      config,
      'postgresql://billing:s3cret@db:5432/billing',
      false,
    ],
    ['production', production, EMBEDDED_URL, true],
  ])('never shows the database URL for %s', (_label, settings, databaseUrl, isEmbedded) => {
    const banner = formatStartupBanner(settings, { databaseUrl, isEmbedded, demo: undefined });
    expect(banner).not.toContain(databaseUrl);
    expect(banner).not.toContain('DATABASE_URL');
  });

  it('says that sign-in needs HTTPS when it is required and no proxy is trusted to say so', () => {
    const direct = { ...production, host: '0.0.0.0', trustProxy: false };
    const banner = formatStartupBanner(direct, { databaseUrl: '', isEmbedded: false, demo: undefined });
    expect(banner.split('\n')).toEqual([
      'HPC Billing is listening on port 8000 of every interface (0.0.0.0; http://localhost:8000 from this machine)',
      '  workers: 1 process (WEB_CONCURRENCY)',
      '  sign-in needs HTTPS: serve it through a TLS proxy named in TRUST_PROXY (REQUIRE_HTTPS=0 for a trial over plain HTTP)',
    ]);
  });

  // The development banner names the database reached; the production line said only "configured", so
  // an operator could not tell from the log which database (or which server) a start had migrated.
  it('is one log line in production: the first line as its message, the facts as fields, no database URL', () => {
    const line = startupLogLine(
      { ...production, host: '0.0.0.0', publicBaseUrl: 'https://billing.example.edu', webConcurrency: 4 },
      { isEmbedded: false, databaseUrl: 'postgresql://billing:s3cret-pw@db.example.edu:5433/billing' },
    );
    expect(JSON.stringify(line)).not.toContain('s3cret-pw');
    expect(line).toEqual({
      message:
        'HPC Billing is listening on port 8000 of every interface (0.0.0.0; http://localhost:8000 from this machine)',
      fields: {
        host: '0.0.0.0',
        port: 8000,
        publicBaseUrl: 'https://billing.example.edu',
        workers: 4,
        database: 'configured',
        databaseAt: 'billing on db.example.edu:5433',
      },
    });
    const embedded = startupLogLine({ ...production, webConcurrency: 1 }, { isEmbedded: true, databaseUrl: '' });
    expect(embedded.fields).not.toHaveProperty('publicBaseUrl');
    expect(embedded.fields).not.toHaveProperty('databaseAt');
  });
});
