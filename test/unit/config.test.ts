import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { ZEnv } from '../../src/config/config.schema.js';
import { parseInput } from '../../src/http/validate.js';
import { ZNewPassword } from '../../src/shared/password-policy.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('starts with no configuration at all, on the demo defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      env: 'development',
      port: 8000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      timeZone: 'UTC',
      currency: 'THB',
      metrics: { isEnabled: true, hasProcessMetrics: false },
      logLevel: 'info',
      trustProxy: false,
      webConcurrency: 1,
      shouldSeedDemo: true,
    });
  });

  it('lists every bad value at once, each with its variable name', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      APP_TZ: 'Mars/Olympus',
      CURRENCY: 'XYZ1',
      METRICS_ENABLED: 'maybe',
      WEB_CONCURRENCY: '0',
      DATABASE_URL: 'mysql://localhost/x',
      LOG_LEVEL: 'loud',
    });
    const variables = problems.map((problem) => problem.split(':')[0]);
    expect(variables.sort()).toEqual(
      ['APP_TZ', 'CURRENCY', 'DATABASE_URL', 'LOG_LEVEL', 'METRICS_ENABLED', 'PORT', 'WEB_CONCURRENCY'].sort(),
    );
    expect(problems.find((problem) => problem.startsWith('APP_TZ'))).toContain('IANA time zone');
    expect(problems).toContain('METRICS_ENABLED: must be 1/0, true/false, yes/no or on/off (got "maybe")');
    expect(problems).toContain('PORT: must be a whole number from 0 to 65535, in plain digits (got "eighty")');
    expect(problems).toContain('WEB_CONCURRENCY: must be from 1 to 64 (got "0")');
  });

  it.each([
    ['APP_TZ', 'Mars/Olympus', 'APP_TZ: not an IANA time zone such as Asia/Bangkok (got "Mars/Olympus")'],
    [
      'CURRENCY',
      'thb',
      'CURRENCY: not an ISO 4217 currency code, three capital letters such as THB or EUR (got "thb")',
    ],
    [
      'CURRENCY',
      'baht',
      'CURRENCY: not an ISO 4217 currency code, three capital letters such as THB or EUR (got "baht")',
    ],
  ])('quotes a refused %s (%s), so a typo or a lower-case code shows in the list', (name, value, problem) => {
    expect(problemsOf({ [name]: value })).toEqual([problem]);
  });

  it.each([
    ['1e3', 'must be a whole number from 0 to 65535, in plain digits (got "1e3")'],
    ['0x1f90', 'must be a whole number from 0 to 65535, in plain digits (got "0x1f90")'],
    ['80.5', 'must be a whole number from 0 to 65535, in plain digits (got "80.5")'],
    ['-1', 'must be a whole number from 0 to 65535, in plain digits (got "-1")'],
    ['70000', 'must be from 0 to 65535 (got "70000")'],
  ])('reads a port of %s as a mistake: %s', (port, message) => {
    expect(problemsOf({ PORT: port })).toEqual([`PORT: ${message}`]);
  });

  it.each([
    ['', 8000],
    ['  ', 8000],
    [' 9000 ', 9000],
  ])('takes a port of %j as %d', (port, expected) => {
    expect(loadConfig({ PORT: port }).port).toBe(expected);
  });

  it.each([
    ['APP_ENV', 'prod', 'must be one of development or production (got "prod")'],
    ['LOG_LEVEL', 'verbose', 'must be one of fatal, error, warn, info, debug, trace or silent (got "verbose")'],
    ['PAYMENT_PROVIDER', 'paypal', 'must be one of none, dummy or stripe (got "paypal")'],
    ['PRICING_CPU_BASIS', 'Used', 'must be one of used or allocated (got "Used")'],
  ])('names the choices of %s=%s in plain words: %s', (name, value, message) => {
    expect(problemsOf({ [name]: value })).toEqual([`${name}: ${message}`]);
  });

  const slurmrestd = {
    SLURMRESTD_URL: 'http://slurm-head:6820',
    SLURMRESTD_USER: 'billing',
    SLURMRESTD_TOKEN: 'a.b.c',
  };

  it.each([
    ['auto', undefined],
    ['v0.0.36', 'v0.0.36'],
    ['v0.0.42', 'v0.0.42'],
    ['v0.0.43', 'v0.0.43'],
    ['v0.0.44', 'v0.0.44'],
    ['v0.0.45', 'v0.0.45'],
  ])('takes SLURMRESTD_API_VERSION=%s (Slurm 22.05 to 26.05)', (value, expected) => {
    const config = loadConfig({ ...slurmrestd, SLURMRESTD_API_VERSION: value });
    expect(config.ingestion.slurmrestd?.apiVersion).toBe(expected);
  });

  it.each([
    ['lab', 'lab'],
    ['LAB', 'lab'],
    ['Lab_2', 'lab_2'],
  ])('takes SLURM_CLUSTER=%s as %s, lower-cased as Slurm stores cluster names', (value, expected) => {
    // sacct and slurmrestd give `lab` for ClusterName=LAB; records without a cluster stored as `LAB`
    // were the same jobs twice, billable twice.
    expect(loadConfig({ SLURM_CLUSTER: value }).ingestion.cluster).toBe(expected);
  });

  it.each(['v0.0.35', 'v0.0.46', '0.0.44', 'v0.0.4'])(
    'refuses SLURMRESTD_API_VERSION=%s, naming the range',
    (value) => {
      expect(problemsOf({ ...slurmrestd, SLURMRESTD_API_VERSION: value })).toEqual([
        `SLURMRESTD_API_VERSION: must be auto or one of v0.0.36 ... v0.0.45 (got "${value}")`,
      ]);
    },
  );

  // pg reads these as another host, port or database (connect ENOTFOUND u), or fails with a bare
  // "Invalid URL" naming no setting; the password must not be echoed back.
  it.each([
    ['postgresql://billing:s3cr#t@db:5432/billing', '#'],
    ['postgresql://billing:12#x@db:5432/billing', '#'],
    ['postgresql://billing:a/b@db:5432/billing', '/'],
    ['postgresql://billing:12/b@db:5432/billing', '/'],
    ['postgresql://billing:a?b@db:5432/billing', '?'],
    ['postgresql://billing:12?b@db:5432/billing', '?'],
    ['postgresql://db:99999/billing', 'port'],
  ])('refuses DATABASE_URL %s, which the database driver cannot read as meant', (url, reason) => {
    const problems = problemsOf({ DATABASE_URL: url });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^DATABASE_URL: /);
    expect(problems[0]).toContain(reason === 'port' ? 'cannot be read' : 'percent-encoded');
    expect(problems[0]).not.toContain('billing:');
  });

  // "nonsense" (or a mysql:// URL) also got the percent-encoding advice about a user name or
  // password it does not have, as a second problem, under the one that says what is wrong.
  it.each(['nonsense', 'localhost:5432/billing', 'mysql://billing:pw@db/billing', 'db #1'])(
    'refuses DATABASE_URL %s, which is no postgresql:// URL, with one line saying so',
    (url) => {
      expect(problemsOf({ DATABASE_URL: url })).toEqual(['DATABASE_URL: must be a postgres:// or postgresql:// URL']);
    },
  );

  it.each([
    'postgresql://billing:p@ss@db:5432/billing',
    'postgresql://billing:p%23ss%2F%3F@db:5432/billing',
    'postgresql://billing:p:ss%@db/billing',
    'postgres://db/billing?sslmode=verify-full&application_name=hpc@billing',
    'postgresql:///billing?host=/var/run/postgresql',
    'postgresql://billing:pw@/billing',
    'postgresql://[::1]:5432/billing',
  ])('takes DATABASE_URL %s, which the database driver reads as meant', (url) => {
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  // A space after the URL (`DATABASE_URL=postgresql://…/billing ` in an env file) went into the database's
  // name: the tools said "Database `billing` does not exist on the database server" of one that does.
  it.each([
    'postgresql://billing@db:5432/billing ',
    ' postgresql://billing@db:5432/billing',
    'postgresql://billing@db:5432/billing\r',
  ])('takes DATABASE_URL %j without the spaces around it', (url) => {
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe('postgresql://billing@db:5432/billing');
  });

  // `docker run --env-file` passes DATABASE_URL="postgresql://…" on with its quotes, and the refusal said only
  // that it was no postgres:// URL, of a value that looked like one.
  it.each([
    ['"postgresql://billing@db:5432/billing"', '"'],
    ["'postgresql://billing@db:5432/billing'", "'"],
  ])('refuses DATABASE_URL %s, saying its quotes are part of the value', (url, quote) => {
    expect(problemsOf({ DATABASE_URL: url })).toEqual([
      `DATABASE_URL: must be a postgres:// or postgresql:// URL; it starts with a quote (${quote}), which is part of the value as given: remove the quotes around it (docker run --env-file, for one, passes them on)`,
    ]);
  });

  // Listening on "127.0.0.1 " failed the start with "getaddrinfo ENOTFOUND 127.0.0.1 ", the space unseen.
  it.each(['127.0.0.1 ', ' 0.0.0.0', '0.0.0.0 # every interface', '"::"'])(
    'refuses HOST %j, which no interface has',
    (host) => {
      expect(problemsOf({ HOST: host })).toEqual([
        `HOST: must be an address or a host name without spaces or quotes, e.g. 0.0.0.0 (got ${JSON.stringify(host)})`,
      ]);
    },
  );

  // They passed the check and the start failed later, after the database was started and migrated,
  // with "getaddrinfo ENOTFOUND 0.0.0.0:8000" and exit 1 instead of the list of problems (exit 78).
  it.each(['0.0.0.0:8000', 'http://0.0.0.0', '127.0.0.1/32', 'app..internal', '-app'])(
    'refuses HOST %j, which is no address or host name alone',
    (host) => {
      expect(problemsOf({ HOST: host })).toEqual([
        `HOST: must be an address or a host name alone, without a scheme, port or path (the port is PORT), e.g. 0.0.0.0 (got ${JSON.stringify(host)})`,
      ]);
    },
  );

  // An IPv6 address as a URL writes it: refused as "no address or host name alone", which did not
  // say that the address itself was right and only its brackets were not.
  it.each([
    ['[::1]', '::1'],
    ['[::]', '::'],
    ['[fe80::1]', 'fe80::1'],
  ])('refuses HOST %j, saying to give it without the brackets', (host, bare) => {
    expect(problemsOf({ HOST: host })).toEqual([
      `HOST: is an IPv6 address in brackets, as a URL writes it; give it without them: HOST=${bare} (got ${JSON.stringify(host)})`,
    ]);
  });

  it.each(['0.0.0.0', '::', '127.0.0.1', 'localhost', 'app.internal', 'fe80::1', 'hpc_billing_app'])(
    'listens on HOST %s',
    (host) => {
      expect(loadConfig({ HOST: host }).host).toBe(host);
    },
  );

  it('takes a choice left empty, as an .env line left blank, as unset', () => {
    const config = loadConfig({ APP_ENV: '', LOG_LEVEL: ' ', PAYMENT_PROVIDER: '', PRICING_CPU_BASIS: '' });
    expect(config).toMatchObject(loadConfig({}));
  });

  it('gives a query 30 s to answer unless DB_QUERY_TIMEOUT_MS says otherwise, from 100 ms to an hour', () => {
    expect(loadConfig({}).dbQueryTimeoutMs).toBe(30_000);
    expect(loadConfig({ DB_QUERY_TIMEOUT_MS: '5000' }).dbQueryTimeoutMs).toBe(5_000);
    expect(problemsOf({ DB_QUERY_TIMEOUT_MS: '0' })).toEqual([
      'DB_QUERY_TIMEOUT_MS: must be from 100 to 3600000 (got "0")',
    ]);
    expect(problemsOf({ DB_QUERY_TIMEOUT_MS: '30s' })).toEqual([
      'DB_QUERY_TIMEOUT_MS: must be a whole number from 100 to 3600000, in plain digits (got "30s")',
    ]);
    expect(problemsOf({ DB_QUERY_TIMEOUT_MS: '3600001' })).toEqual([
      'DB_QUERY_TIMEOUT_MS: must be from 100 to 3600000 (got "3600001")',
    ]);
  });

  // -5 is a whole number: the message names what is required instead, and quotes what was given.
  it.each([
    ['-5', 'must be a whole number from 100 to 3600000, in plain digits (got "-5")'],
    ['1.5', 'must be a whole number from 100 to 3600000, in plain digits (got "1.5")'],
    ['1e3', 'must be a whole number from 100 to 3600000, in plain digits (got "1e3")'],
    [' 5', 'must be from 100 to 3600000 (got " 5")'],
    ['3600001', 'must be from 100 to 3600000 (got "3600001")'],
    ['99999999999999999999', 'must be from 100 to 3600000 (got "99999999999999999999")'],
  ])('refuses DB_QUERY_TIMEOUT_MS=%j: %s', (value, message) => {
    expect(problemsOf({ DB_QUERY_TIMEOUT_MS: value })).toEqual([`DB_QUERY_TIMEOUT_MS: ${message}`]);
  });

  it.each([
    ['', 30_000],
    ['  ', 30_000],
    [' 500 ', 500],
    ['100', 100],
    ['3600000', 3_600_000],
  ])('takes DB_QUERY_TIMEOUT_MS=%j as %d (empty: the default)', (value, expected) => {
    expect(loadConfig({ DB_QUERY_TIMEOUT_MS: value }).dbQueryTimeoutMs).toBe(expected);
  });

  it('names the range of every numeric setting given a negative number, never just "a whole number"', () => {
    const numeric = Object.keys(ZEnv.shape).flatMap((name) => {
      try {
        loadConfig({ [name]: '-5' });
        return [];
      } catch (error) {
        const problems = (error as ConfigError).problems.filter((problem) => problem.includes('whole number'));
        return problems.map((problem) => ({ name, problem }));
      }
    });
    expect(numeric.length).toBeGreaterThanOrEqual(25);
    for (const { name, problem } of numeric) {
      expect(problem).toMatch(
        new RegExp(`^${name}: must be a whole number from \\d+ to \\d+, in plain digits \\(got "-5"\\)$`),
      );
    }
    expect(problemsOf({ AUTH_MAX_FAILS: '-5' })).toEqual([
      'AUTH_MAX_FAILS: must be a whole number from 1 to 1000, in plain digits (got "-5")',
    ]);
  });

  it('waits 60 s at start for a database it cannot reach unless DB_START_WAIT_SEC says otherwise, 0 to 1 hour', () => {
    expect(loadConfig({}).dbStartWaitSec).toBe(60);
    expect(loadConfig({ DB_START_WAIT_SEC: '0' }).dbStartWaitSec).toBe(0);
    expect(problemsOf({ DB_START_WAIT_SEC: '3601' })).toEqual([
      'DB_START_WAIT_SEC: must be from 0 to 3600 (got "3601")',
    ]);
  });

  it('gives a connection 5 s to open unless DB_CONNECT_TIMEOUT_MS says otherwise, from 100 ms to 10 minutes', () => {
    expect(loadConfig({}).dbConnectTimeoutMs).toBe(5_000);
    expect(loadConfig({ DB_CONNECT_TIMEOUT_MS: '1500' }).dbConnectTimeoutMs).toBe(1_500);
    expect(problemsOf({ DB_CONNECT_TIMEOUT_MS: '0' })).toEqual([
      'DB_CONNECT_TIMEOUT_MS: must be from 100 to 600000 (got "0")',
    ]);
    expect(problemsOf({ DB_CONNECT_TIMEOUT_MS: '5s' })).toEqual([
      'DB_CONNECT_TIMEOUT_MS: must be a whole number from 100 to 600000, in plain digits (got "5s")',
    ]);
    expect(problemsOf({ DB_CONNECT_TIMEOUT_MS: '600001' })).toEqual([
      'DB_CONNECT_TIMEOUT_MS: must be from 100 to 600000 (got "600001")',
    ]);
  });

  it('serves for SHUTDOWN_DRAIN_DELAY_MS after SIGTERM before closing: none unless set, up to 10 minutes', () => {
    expect(loadConfig({}).shutdownDrainDelayMs).toBe(0);
    expect(loadConfig({ SHUTDOWN_DRAIN_DELAY_MS: '5000' }).shutdownDrainDelayMs).toBe(5_000);
    expect(loadConfig({ SHUTDOWN_DRAIN_DELAY_MS: ' ' }).shutdownDrainDelayMs).toBe(0);
    expect(problemsOf({ SHUTDOWN_DRAIN_DELAY_MS: '5s' })).toEqual([
      'SHUTDOWN_DRAIN_DELAY_MS: must be a whole number from 0 to 600000, in plain digits (got "5s")',
    ]);
    expect(problemsOf({ SHUTDOWN_DRAIN_DELAY_MS: '-1' })).toEqual([
      'SHUTDOWN_DRAIN_DELAY_MS: must be a whole number from 0 to 600000, in plain digits (got "-1")',
    ]);
    expect(problemsOf({ SHUTDOWN_DRAIN_DELAY_MS: '600001' })).toEqual([
      'SHUTDOWN_DRAIN_DELAY_MS: must be from 0 to 600000 (got "600001")',
    ]);
  });

  it('cuts off a CSV export whose client reads nothing for 30 s, or CSV_EXPORT_STALL_MS from 100 ms to 10 minutes', () => {
    expect(loadConfig({}).csvExportStallMs).toBe(30_000);
    expect(loadConfig({ CSV_EXPORT_STALL_MS: '10000' }).csvExportStallMs).toBe(10_000);
    expect(problemsOf({ CSV_EXPORT_STALL_MS: '30s' })).toEqual([
      'CSV_EXPORT_STALL_MS: must be a whole number from 100 to 600000, in plain digits (got "30s")',
    ]);
    expect(problemsOf({ CSV_EXPORT_STALL_MS: '0' })).toEqual([
      'CSV_EXPORT_STALL_MS: must be from 100 to 600000 (got "0")',
    ]);
  });

  it('gives a client 20 s to send its headers and 60 s for its whole request, the headers never longer', () => {
    expect(loadConfig({}).http).toEqual({ headersTimeoutMs: 20_000, requestTimeoutMs: 60_000 });
    expect(loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '5000' }).http).toEqual({
      headersTimeoutMs: 5_000,
      requestTimeoutMs: 5_000,
    });
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '90000' })).toEqual([
      'HTTP_HEADERS_TIMEOUT_MS: must not be longer than HTTP_REQUEST_TIMEOUT_MS (90000 > 60000)',
    ]);
    expect(problemsOf({ HTTP_REQUEST_TIMEOUT_MS: '1000' })).toEqual([
      'HTTP_HEADERS_TIMEOUT_MS: must not be longer than HTTP_REQUEST_TIMEOUT_MS (20000 > 1000)',
    ]);
    // Malformed is named once, as malformed, with the other problems of the same start.
    expect(problemsOf({ HTTP_HEADERS_TIMEOUT_MS: '20s', HTTP_REQUEST_TIMEOUT_MS: '0', PORT: 'x' })).toEqual([
      'PORT: must be a whole number from 0 to 65535, in plain digits (got "x")',
      'HTTP_HEADERS_TIMEOUT_MS: must be a whole number from 100 to 600000, in plain digits (got "20s")',
      'HTTP_REQUEST_TIMEOUT_MS: must be from 100 to 3600000 (got "0")',
    ]);
  });

  // NODE_ENV=production, as a service unit or an image commonly sets, with APP_ENV forgotten, ran the
  // development mode on the production database: demo logins (admin/admin) seeded into an empty one,
  // sessions signed with the known development secret, the dummy provider taking fake payments.
  it('refuses NODE_ENV=production without APP_ENV, saying which to set; APP_ENV decides when it is set', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      'APP_ENV: is unset while NODE_ENV=production: set APP_ENV=production for a production instance, or ' +
        'APP_ENV=development for the demo (unset, it would run the development mode: demo logins seeded into an ' +
        'empty database, a known session secret, the dummy payment provider)',
    ]);
    expect(problemsOf({ NODE_ENV: 'production', APP_ENV: ' ', PORT: 'x' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^APP_ENV: is unset while NODE_ENV=production/)]),
    );
    expect(loadConfig({ NODE_ENV: 'production', APP_ENV: 'development' }).isProduction).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test' }).isProduction).toBe(false);
  });

  // "Leave it out" is the development advice: production refuses either left out, so following it
  // led to the next refusal.
  it.each([
    [
      'SESSION_SECRET',
      'SESSION_SECRET: is empty; set it to at least 32 characters (openssl rand -hex 32): it is required when APP_ENV=production',
    ],
    [
      'DATABASE_URL',
      'DATABASE_URL: is empty; set it to a postgres:// or postgresql:// URL: it is required when APP_ENV=production (the embedded database is for demos)',
    ],
  ])('%s= in production says to set it, not to leave it out', (name, line) => {
    const env = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      DATABASE_URL: 'postgresql://db/billing',
    };
    expect(problemsOf({ ...env, [name]: '' })).toEqual([line]);
    expect(problemsOf({ ...env, [name]: '  ' })).toEqual([line]);
  });

  // Each empty setting names itself with its own production advice, whichever else is empty or
  // malformed beside it: the schema chooses the advice, knowing APP_ENV.
  describe('SESSION_SECRET= and DATABASE_URL= in production', () => {
    const production = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      DATABASE_URL: 'postgresql://db/billing',
    };
    const emptySecret =
      'SESSION_SECRET: is empty; set it to at least 32 characters (openssl rand -hex 32): it is required when APP_ENV=production';
    const emptyUrl =
      'DATABASE_URL: is empty; set it to a postgres:// or postgresql:// URL: it is required when APP_ENV=production (the embedded database is for demos)';

    it.each([
      ['SESSION_SECRET alone', { SESSION_SECRET: '' }, [emptySecret]],
      ['DATABASE_URL alone', { DATABASE_URL: '' }, [emptyUrl]],
      ['both', { SESSION_SECRET: '', DATABASE_URL: '' }, [emptyUrl, emptySecret]],
      ['both, as spaces', { SESSION_SECRET: ' ', DATABASE_URL: '\t' }, [emptyUrl, emptySecret]],
    ])('%s empty: each line names its own setting with its own advice', (_, empty, lines) => {
      expect(problemsOf({ ...production, ...empty })).toEqual(lines);
    });

    it('both empty beside a malformed setting: the same two lines, once each, with the malformed one', () => {
      expect(problemsOf({ ...production, SESSION_SECRET: '', DATABASE_URL: '', PORT: 'x' })).toEqual([
        'PORT: must be a whole number from 0 to 65535, in plain digits (got "x")',
        emptyUrl,
        emptySecret,
      ]);
    });

    it('the schema itself gives the production advice, not only loadConfig', () => {
      const parsed = ZEnv.safeParse({ ...production, SESSION_SECRET: '', DATABASE_URL: '' });
      expect(parsed.success).toBe(false);
      const lines = parsed.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
      expect(lines).toEqual([emptyUrl, emptySecret]);
    });
  });

  it('requires a session secret, an audit key and a real database in production, and never seeds the demo there', () => {
    expect(problemsOf({ APP_ENV: 'production' })).toEqual([
      expect.stringMatching(/^SESSION_SECRET: is required when APP_ENV=production/),
      expect.stringMatching(/^AUDIT_CHAIN_KEY: is required when APP_ENV=production/),
      expect.stringMatching(/^DATABASE_URL: is required when APP_ENV=production/),
    ]);
    const config = loadConfig({
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      DATABASE_URL: 'postgresql://db/billing',
      DEMO_SEED: '1',
    });
    expect(config.shouldSeedDemo).toBe(false);
    expect(config.host).toBe('0.0.0.0');
  });

  it('reads the audit chain keys: the key seals, old keys only verify, and no key is echoed in a refusal', () => {
    const config = loadConfig({
      AUDIT_CHAIN_KEY: ' new-key-new-key-new-key-new-key-1 ',
      AUDIT_CHAIN_OLD_KEYS: 'old-key-old-key-old-key-old-key-1, ,old-key-old-key-old-key-old-key-2',
      AUDIT_CHAIN_UNSEALED_UNTIL: '1200',
    });
    expect(config.audit).toEqual({
      chainKeys: [
        'new-key-new-key-new-key-new-key-1',
        'old-key-old-key-old-key-old-key-1',
        'old-key-old-key-old-key-old-key-2',
      ],
      unsealedUntil: 1200n,
      verifyIntervalSec: 3600,
    });
    expect(loadConfig({ AUDIT_CHAIN_KEY: '' }).audit.chainKeys).toEqual([]);
    // Old keys alone seal nothing: a chain needs the current key to be sealed at all.
    expect(loadConfig({ AUDIT_CHAIN_OLD_KEYS: 'old-key-old-key-old-key-old-key-1' }).audit.chainKeys).toEqual([]);
    const problems = problemsOf({
      AUDIT_CHAIN_KEY: 'short-secret',
      AUDIT_CHAIN_OLD_KEYS: 'old-key-old-key-old-key-old-key-1,tiny-secret',
      AUDIT_VERIFY_INTERVAL_SEC: '5',
    });
    expect(problems).toEqual([
      'AUDIT_CHAIN_KEY: must be at least 32 characters (make one with openssl rand -hex 32)',
      'AUDIT_CHAIN_OLD_KEYS: each key must be at least 32 characters',
      'AUDIT_VERIFY_INTERVAL_SEC: must be from 60 to 604800 (got "5")',
    ]);
    expect(problems.join('\n')).not.toMatch(/short-secret|tiny-secret/);
  });

  it('holds ADMIN_PASSWORD to the rule and words of every other password: 11 characters refused, 12 taken', () => {
    const admin = { ADMIN_USERNAME: 'ops' };
    expect(problemsOf({ ...admin, ADMIN_PASSWORD: 'eleven-char' })).toEqual([
      'ADMIN_PASSWORD: must be at least 12 characters',
    ]);
    expect(() => parseInput(ZNewPassword, 'eleven-char', 'password')).toThrow(
      'password: must be at least 12 characters',
    );
    expect(loadConfig({ ...admin, ADMIN_PASSWORD: 'twelve-chars' }).auth.bootstrapAdmin).toEqual({
      username: 'ops',
      password: 'twelve-chars',
    });
    expect(problemsOf({ ...admin, ADMIN_PASSWORD: ' '.repeat(12) })).toEqual([
      'ADMIN_PASSWORD: must not be only spaces',
    ]);
    expect(problemsOf({ ...admin, ADMIN_PASSWORD: 'x'.repeat(1025) })).toEqual([
      'ADMIN_PASSWORD: must be at most 1024 characters',
    ]);
  });

  it('takes ADMIN_USERNAME and ADMIN_PASSWORD left empty as unset, and names one problem at a time', () => {
    expect(loadConfig({ ADMIN_USERNAME: '', ADMIN_PASSWORD: '' }).auth.bootstrapAdmin).toBeUndefined();
    expect(problemsOf({ ADMIN_USERNAME: 'ops', ADMIN_PASSWORD: '' })).toEqual([
      'ADMIN_PASSWORD: ADMIN_USERNAME and ADMIN_PASSWORD go together',
    ]);
    expect(problemsOf({ ADMIN_USERNAME: 'ops', ADMIN_PASSWORD: '   ' })).toEqual([
      'ADMIN_PASSWORD: must be at least 12 characters',
    ]);
  });

  it('takes an ADMIN_USERNAME of only spaces as unset, as the other settings that take empty as unset do', () => {
    // It was refused as "must be a lowercase login name", where AUDIT_CHAIN_KEY, TRUST_PROXY and
    // every flag, number and choice read a line of spaces as left blank.
    expect(loadConfig({ ADMIN_USERNAME: '   ' }).auth.bootstrapAdmin).toBeUndefined();
    expect(loadConfig({ ADMIN_USERNAME: ' \t ', ADMIN_PASSWORD: '' }).auth.bootstrapAdmin).toBeUndefined();
    // Unset with a password given, it is the pair's one problem, as an empty one is.
    expect(problemsOf({ ADMIN_USERNAME: '   ', ADMIN_PASSWORD: 'twelve-chars' })).toEqual([
      'ADMIN_PASSWORD: ADMIN_USERNAME and ADMIN_PASSWORD go together',
    ]);
    expect(problemsOf({ ADMIN_USERNAME: 'Ops Admin', ADMIN_PASSWORD: 'twelve-chars' })).toEqual([
      'ADMIN_USERNAME: must be a lowercase login name: a lowercase letter or _, then up to 63 lowercase letters, digits, . _ or - (got "Ops Admin")',
    ]);
  });

  // Walking a production start with several wrong settings at once, these four said what was wrong
  // but not what they were given, where the numbers, choices and flags quote it: an operator with a
  // dozen settings in a unit file had to look each one up.
  it('quotes the value it refuses for ADMIN_USERNAME, SLURMRESTD_USER, SLURM_CLUSTER and SLURMRESTD_API_VERSION', () => {
    expect(
      problemsOf({
        ADMIN_USERNAME: 'Bad',
        ADMIN_PASSWORD: 'twelve-chars',
        ...slurmrestd,
        SLURMRESTD_USER: 'bad user',
        SLURMRESTD_API_VERSION: 'v0.0.35',
        SLURM_CLUSTER: 'a b',
      }),
    ).toEqual([
      'ADMIN_USERNAME: must be a lowercase login name: a lowercase letter or _, then up to 63 lowercase letters, digits, . _ or - (got "Bad")',
      'SLURMRESTD_USER: not a user name: a letter or _, then up to 63 letters, digits, _ . or - (got "bad user")',
      'SLURMRESTD_API_VERSION: must be auto or one of v0.0.36 ... v0.0.45 (got "v0.0.35")',
      'SLURM_CLUSTER: not a cluster name: 1 to 64 letters, digits, _ . or - (got "a b")',
    ]);
  });

  it('refuses a PRICING_TIER_RULES tier no tier can be called, naming the rule and the format', () => {
    // A tier's name is lowercase letters, digits, - or _, at most 32 characters: a rule naming "Gov",
    // "gov tier" or a 33-character name could never match a tier, and its users silently stayed on the default.
    const rules = (tier: string) =>
      JSON.stringify([
        { pattern: '^gov[-_.]', tier: 'gov' },
        { pattern: '^x', tier },
      ]);
    for (const tier of ['Gov', 'gov tier', 'g'.repeat(33), '-gov', 'gov!']) {
      expect(problemsOf({ PRICING_TIER_RULES: rules(tier) })).toEqual([
        expect.stringMatching(
          /^PRICING_TIER_RULES: rule 2's tier ".*" is no tier's name: a tier's name is lowercase letters, digits/,
        ),
      ]);
    }
    for (const tier of ['gov', 'private-2', 'a_b', 'g'.repeat(32), ' gov ']) {
      expect(loadConfig({ PRICING_TIER_RULES: rules(tier) }).pricing.tierRules[1]?.tier).toBe(tier.trim());
    }
  });

  it('refuses a short session secret', () => {
    expect(problemsOf({ SESSION_SECRET: 'short' })).toEqual([
      'SESSION_SECRET: must be at least 32 characters (make one with openssl rand -hex 32)',
    ]);
  });

  it.each([
    ['a space inside', 'correct horse battery staple'],
    ['a space after it', 'f3a1c9e0b7d24e6a '],
    ['a tab before it', '\tf3a1c9e0b7d24e6a'],
    ['a character outside ASCII', 'f3a1c9e0b7d24e6aé'],
  ])('refuses a METRICS_TOKEN with %s, which no scrape could present (every scrape 401, AppDown)', (_case, token) => {
    // Prometheus sends `Authorization: Bearer <token>` with the credentials file's text trimmed, and
    // /metrics reads the token as the header's one word: such a token never matched.
    expect(problemsOf({ METRICS_TOKEN: token })).toEqual([
      expect.stringMatching(/^METRICS_TOKEN: must be printable ASCII without spaces/),
    ]);
  });

  it('takes a METRICS_TOKEN as openssl rand -hex or -base64 makes it', () => {
    expect(loadConfig({ METRICS_TOKEN: 'f3a1c9e0b7d24e6a9c0d' }).metrics.token).toBe('f3a1c9e0b7d24e6a9c0d');
    expect(loadConfig({ METRICS_TOKEN: 'q8Zk+3/xv9Lr0aQ2mT1y7w==' }).metrics.token).toBe('q8Zk+3/xv9Lr0aQ2mT1y7w==');
  });

  it('prunes the sign-in throttle every 10 minutes, or every AUTH_PRUNE_INTERVAL_SEC from 1 s to a day', () => {
    expect(loadConfig({}).auth.pruneIntervalSec).toBe(600);
    expect(loadConfig({ AUTH_PRUNE_INTERVAL_SEC: '60' }).auth.pruneIntervalSec).toBe(60);
    expect(problemsOf({ AUTH_PRUNE_INTERVAL_SEC: '0' })).toEqual([
      'AUTH_PRUNE_INTERVAL_SEC: must be from 1 to 86400 (got "0")',
    ]);
    expect(problemsOf({ AUTH_PRUNE_INTERVAL_SEC: '86401' })).toEqual([
      'AUTH_PRUNE_INTERVAL_SEC: must be from 1 to 86400 (got "86401")',
    ]);
  });

  it('prunes expired sessions every 15 minutes, or every SESSION_PRUNE_INTERVAL_SEC from 1 s to a day', () => {
    expect(loadConfig({}).auth.sessionPruneIntervalSec).toBe(900);
    expect(loadConfig({ SESSION_PRUNE_INTERVAL_SEC: '60' }).auth.sessionPruneIntervalSec).toBe(60);
    expect(problemsOf({ SESSION_PRUNE_INTERVAL_SEC: '0' })).toEqual([
      'SESSION_PRUNE_INTERVAL_SEC: must be from 1 to 86400 (got "0")',
    ]);
  });

  // A session ends SESSION_ABSOLUTE_SEC after sign-in whatever it does: an idle limit longer than that
  // was taken without a word and never ended a session.
  it('refuses a SESSION_IDLE_SEC longer than SESSION_ABSOLUTE_SEC, naming both values, with the other problems', () => {
    const idleRule =
      'SESSION_IDLE_SEC: must not be longer than SESSION_ABSOLUTE_SEC (50000 > 43200): a session ends SESSION_ABSOLUTE_SEC after sign-in, so a longer idle limit would never apply';
    expect(problemsOf({ SESSION_IDLE_SEC: '50000' })).toEqual([idleRule]);
    expect(problemsOf({ SESSION_IDLE_SEC: '7200', SESSION_ABSOLUTE_SEC: '3600' })).toEqual([
      'SESSION_IDLE_SEC: must not be longer than SESSION_ABSOLUTE_SEC (7200 > 3600): a session ends SESSION_ABSOLUTE_SEC after sign-in, so a longer idle limit would never apply',
    ]);
    // In the same list as a malformed setting of the same start.
    expect(problemsOf({ SESSION_IDLE_SEC: '50000', PORT: 'x' })).toEqual([
      'PORT: must be a whole number from 0 to 65535, in plain digits (got "x")',
      idleRule,
    ]);
    // A malformed one is named once, as malformed.
    expect(problemsOf({ SESSION_IDLE_SEC: '1h', SESSION_ABSOLUTE_SEC: '600' })).toEqual([
      'SESSION_IDLE_SEC: must be a whole number from 60 to 2592000, in plain digits (got "1h")',
    ]);
    const equal = loadConfig({ SESSION_IDLE_SEC: '3600', SESSION_ABSOLUTE_SEC: '3600' }).auth;
    expect([equal.sessionIdleSec, equal.sessionAbsoluteSec]).toEqual([3600, 3600]);
  });

  it.each([
    ['false', false],
    ['2', 2],
    ['loopback', ['loopback']],
    ['10.0.0.0/8, 127.0.0.1', ['10.0.0.0/8', '127.0.0.1']],
  ])('reads TRUST_PROXY=%s', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  // Express's `true` takes the left-most X-Forwarded-For entry, which the client writes (nginx's
  // $proxy_add_x_forwarded_for appends to it): each guess could claim a new address, past the
  // per-address and per-pair sign-in locks, and the audit log would record the address it chose.
  it('refuses TRUST_PROXY=true, which would let any client choose its own address', () => {
    expect(problemsOf({ TRUST_PROXY: 'true' })).toEqual([
      'TRUST_PROXY: true would believe any X-Forwarded-For a client sends; name the proxy (loopback, its address or CIDR) or give its hop count (1 for one proxy)',
    ]);
  });

  // A hop count above the proxies really in front believes X-Forwarded-For entries the client wrote, as
  // true does; one no site has (TRUST_PROXY=999 for "every proxy", or 1e20 written out, past what a
  // number holds exactly) started without a word, `true` under another name.
  it.each(['11', '999', '100000000000000000000'])(
    'refuses TRUST_PROXY=%s, more proxies than any site has in front: as true, a client could choose its own address',
    (value) => {
      expect(problemsOf({ TRUST_PROXY: value })).toEqual([
        `TRUST_PROXY: a hop count of ${value} believes that many X-Forwarded-For entries, more proxies than any site has in front, so a client could choose its own address, as with true: give the number of proxies in front of the app, from 1 to 10 (1 for one proxy), or name them (loopback, an address or CIDR)`,
      ]);
    },
  );

  it('takes TRUST_PROXY=10, the most proxies in front it believes', () => {
    expect(loadConfig({ TRUST_PROXY: '10' }).trustProxy).toBe(10);
  });

  it('refuses a TRUST_PROXY entry that is not an address or a known name', () => {
    expect(problemsOf({ TRUST_PROXY: 'loopback,evil.example' })).toEqual([
      'TRUST_PROXY: not a hop count (plain digits), an address, a CIDR or loopback/linklocal/uniquelocal: evil.example',
    ]);
  });

  it('names an empty TRUST_PROXY entry (a comma too many) rather than listing nothing', () => {
    // "loopback," ended the line with ": " and nothing after it: the operator could not see what was refused.
    expect(problemsOf({ TRUST_PROXY: 'loopback,' })).toEqual([
      'TRUST_PROXY: not a hop count (plain digits), an address, a CIDR or loopback/linklocal/uniquelocal: an empty entry (a comma too many, or one with nothing after it)',
    ]);
    expect(problemsOf({ TRUST_PROXY: 'loopback,,evil.example' })).toEqual([
      'TRUST_PROXY: not a hop count (plain digits), an address, a CIDR or loopback/linklocal/uniquelocal: an empty entry (a comma too many, or one with nothing after it), evil.example',
    ]);
  });

  // Each of these passed the setting's check and then stopped the start with a TypeError from Express.
  it.each(['-1', '1.5', '1e3', '2.0', '300.1.1.1', '10.0.0.0/33', '::1/129', '10.0.0.0/8/8'])(
    'refuses TRUST_PROXY=%s in the list of problems, before Express reads it',
    (value) => {
      expect(problemsOf({ TRUST_PROXY: value })).toEqual([
        `TRUST_PROXY: not a hop count (plain digits), an address, a CIDR or loopback/linklocal/uniquelocal: ${value}`,
      ]);
    },
  );

  // A range that holds every client is `true` under another name: 0.0.0.0/0 and ::/0 passed the check and
  // stopped the start with a TypeError from Express, and ::ffff:0:0/96 (every IPv4 client, as Node
  // writes an IPv4 client on a dual-stack socket) or two halves of the address space started, and let
  // each sign-in name its own address past the per-address locks.
  it.each([
    '0.0.0.0/0',
    '::/0',
    '::ffff:0:0/96',
    '::/80',
    '0.0.0.0/1, 128.0.0.0/1',
    '10.0.0.0/7',
    '::ffff:10.0.0.0/100',
    'fc00::/6',
  ])('refuses TRUST_PROXY=%s, wider than any private network: a client in it could choose its own address', (value) => {
    const wide = value.split(',').map((entry) => entry.trim());
    expect(problemsOf({ TRUST_PROXY: value })).toEqual([
      `TRUST_PROXY: wider than any private network (an IPv4 /8, an IPv6 /7), so a client inside it could choose its own address, as with true: ${wide.join(', ')}`,
    ]);
  });

  it.each([
    '10.0.0.0/8',
    '192.168.1.10',
    'fe80::1',
    'fd00::/8',
    'fc00::/7',
    '::ffff:10.0.0.1',
    '::ffff:10.0.0.0/104',
    '2001:db8::/32',
    'loopback, uniquelocal',
  ])('takes TRUST_PROXY=%s, which Express accepts', (value) => {
    const app = express();
    expect(() => app.set('trust proxy', loadConfig({ TRUST_PROXY: value }).trustProxy)).not.toThrow();
  });

  it.each([
    ['development', undefined, false],
    ['production', undefined, true],
    ['production', '', true],
    ['production', '  ', true],
    ['production', '0', false],
    ['production', 'off', false],
    ['development', '1', true],
    ['development', 'yes', true],
  ])('in %s, REQUIRE_HTTPS=%j requires HTTPS: %s', (appEnv, value, expected) => {
    const production = {
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      DATABASE_URL: 'postgresql://db/billing',
    };
    const env = { APP_ENV: appEnv, ...production, ...(value === undefined ? {} : { REQUIRE_HTTPS: value }) };
    expect(loadConfig(env).isHttpsRequired).toBe(expected);
  });

  it('refuses a REQUIRE_HTTPS that is not a flag, rather than guessing', () => {
    expect(problemsOf({ REQUIRE_HTTPS: 'maybe' })).toEqual([
      'REQUIRE_HTTPS: must be 1/0, true/false, yes/no or on/off (got "maybe")',
    ]);
  });

  // Every on/off setting, in the words of the rest of the list ("must be ... (got ...)"): the flags
  // alone said 'expected 1/0, true/false, yes/no or on/off, got "maybe"', the value unescaped.
  it.each(['METRICS_ENABLED', 'METRICS_PROCESS', 'INGEST_ENABLED', 'DEMO_SEED', 'REQUIRE_HTTPS'])(
    'refuses %s=maybe in the words every setting uses',
    (name) => {
      expect(problemsOf({ [name]: 'maybe' })).toEqual([
        `${name}: must be 1/0, true/false, yes/no or on/off (got "maybe")`,
      ]);
      expect(problemsOf({ [name]: 'y"es' })).toEqual([
        `${name}: must be 1/0, true/false, yes/no or on/off (got "y\\"es")`,
      ]);
    },
  );

  it.each([
    ['0', false],
    ['off', false],
    ['yes', true],
    ['ON', true],
  ])('reads METRICS_ENABLED=%s as %s', (value, expected) => {
    expect(loadConfig({ METRICS_ENABLED: value }).metrics.isEnabled).toBe(expected);
  });

  it('lists the problems across settings in the same start as the malformed settings', () => {
    const problems = problemsOf({
      APP_ENV: 'production',
      PORT: 'abc',
      SESSION_SECRET: 'short',
      PAYMENT_PROVIDER: 'dummy',
      LOG_LEVEL: 'loud',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PORT: /),
        expect.stringMatching(/^SESSION_SECRET: /),
        expect.stringMatching(/^LOG_LEVEL: /),
        'PAYMENT_PROVIDER: dummy is for development and demos; refused when APP_ENV=production',
        'DATABASE_URL: is required when APP_ENV=production (the embedded database is for demos)',
        expect.stringMatching(/^AUDIT_CHAIN_KEY: is required/),
      ]),
    );
    expect(problems).toHaveLength(6);
    const emptyUrl = problemsOf({
      APP_ENV: 'production',
      PORT: 'abc',
      SESSION_SECRET: 'x'.repeat(40),
      DATABASE_URL: '',
    });
    expect(emptyUrl.filter((problem) => problem.startsWith('DATABASE_URL: '))).toHaveLength(1);
  });

  it('refuses the dummy payment provider in production and Stripe without its keys', () => {
    const production = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
      DATABASE_URL: 'postgresql://db/billing',
    };
    expect(problemsOf({ ...production, PAYMENT_PROVIDER: 'dummy' })).toEqual([
      'PAYMENT_PROVIDER: dummy is for development and demos; refused when APP_ENV=production',
    ]);
    expect(problemsOf({ PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_abc' })).toEqual([
      'STRIPE_WEBHOOK_SECRET: is required when PAYMENT_PROVIDER=stripe',
    ]);
    const stripe = { PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_live_abc', STRIPE_WEBHOOK_SECRET: 'whsec_abc' };
    expect(problemsOf({ ...production, ...stripe })).toEqual([
      'PUBLIC_BASE_URL: is required when APP_ENV=production and PAYMENT_PROVIDER=stripe (where payers come back to)',
    ]);
    expect(
      loadConfig({ ...production, ...stripe, PUBLIC_BASE_URL: 'https://billing.example.edu' }).payments,
    ).toMatchObject({
      provider: 'stripe',
      publicBaseUrl: 'https://billing.example.edu',
    });
    expect(loadConfig(production).payments.provider).toBe('none');
    expect(loadConfig({}).payments.provider).toBe('dummy');
  });

  // A production start migrates the database it reaches. A URL naming none reaches the one named as its
  // user, for `postgres` the server's own maintenance database: the start created the app's tables there
  // and logged only `"database":"configured"` (found on an operator's walk through the first start).
  describe('a production DATABASE_URL that names no database', () => {
    const production = {
      APP_ENV: 'production',
      SESSION_SECRET: 'x'.repeat(40),
      AUDIT_CHAIN_KEY: 'k'.repeat(40),
    };
    const namesNone =
      "DATABASE_URL: names no database, so PostgreSQL would take the user's name (postgres: the server's own maintenance database) and the app's tables would be created there; name the app's database: postgresql://user:password@host:5432/DATABASE";

    it.each([
      'postgresql://postgres@db:5432',
      'postgresql://postgres:secret@db:5432/',
      'postgres://billing@db',
      'postgresql://billing@db:5432/?sslmode=require',
    ])('refuses %s', (url) => {
      expect(problemsOf({ ...production, DATABASE_URL: url })).toEqual([namesNone]);
    });

    it.each([
      ['postgresql://billing@db:5432/billing', {}],
      ['postgresql://billing@db:5432?database=billing', {}],
      ['postgresql://billing@db:5432', { PGDATABASE: 'billing' }],
    ])('takes %s (%j), which names one', (url, extra) => {
      expect(loadConfig({ ...production, ...extra, DATABASE_URL: url }).databaseUrl).toBe(url);
    });

    it('leaves development as it was: its banner names the database reached', () => {
      expect(loadConfig({ DATABASE_URL: 'postgresql://postgres@db:5432' }).databaseUrl).toBe(
        'postgresql://postgres@db:5432',
      );
    });
  });

  // Only the scheme, host and port of STRIPE_API_URL are used: a path (an egress proxy's prefix) was
  // dropped unsaid, any other scheme was taken for https, and no scheme at all was "Invalid URL".
  it.each([
    'stripe-egress.example.edu',
    'ftp://stripe-egress.example.edu',
    'https://stripe-egress.example.edu/stripe',
    'https://stripe-egress.example.edu?via=proxy',
  ])('refuses STRIPE_API_URL=%s, saying what it needs', (value) => {
    expect(problemsOf({ STRIPE_API_URL: value })).toEqual([
      'STRIPE_API_URL: must be an http:// or https:// address without a path, e.g. https://stripe-egress.example.edu:8443',
    ]);
  });

  it.each(['http://127.0.0.1:9', 'https://stripe-egress.example.edu:8443', 'https://stripe-egress.example.edu/'])(
    'takes STRIPE_API_URL=%s',
    (value) => {
      const stripe = {
        PAYMENT_PROVIDER: 'stripe',
        STRIPE_SECRET_KEY: 'sk_test_abc',
        STRIPE_WEBHOOK_SECRET: 'whsec_abc',
      };
      expect(loadConfig({ ...stripe, STRIPE_API_URL: value }).payments.stripe?.apiUrl).toBe(value);
    },
  );
});

// PUBLIC_BASE_URL is where Stripe sends payers back (`${PUBLIC_BASE_URL}/payments/thanks?rid=…`). A query
// or a fragment passed the check and made those addresses nonsense (https://billing.example.edu?x=1/payments/…),
// found only when a payer came back to a page that is not there; the common trailing slash was refused
// as "a path", a message naming something the address did not have.
describe('PUBLIC_BASE_URL', () => {
  it.each([
    'billing.example.edu',
    'ftp://billing.example.edu',
    'https://billing.example.edu/billing',
    'https://billing.example.edu?from=stripe',
    'https://billing.example.edu/?from=stripe',
    'https://billing.example.edu#top',
    'https://billing.example.edu:8443/#top',
  ])('refuses %s, quoting it and saying what it needs', (value) => {
    expect(problemsOf({ PUBLIC_BASE_URL: value })).toEqual([
      `PUBLIC_BASE_URL: must be the site's http:// or https:// address alone, without a path, query or fragment, e.g. https://billing.example.edu (got "${value}")`,
    ]);
  });

  it.each([
    ['https://billing.example.edu', 'https://billing.example.edu'],
    ['https://billing.example.edu/', 'https://billing.example.edu'],
    ['http://billing.example.edu:8443/', 'http://billing.example.edu:8443'],
  ])('takes %s as %s, so the addresses built on it have one slash', (value, publicBaseUrl) => {
    expect(loadConfig({ PUBLIC_BASE_URL: value }).payments.publicBaseUrl).toBe(publicBaseUrl);
  });
});

// PORT=0 lets the system pick the port when the app listens, after the configuration is read: the
// default PUBLIC_BASE_URL was http://localhost:0, so Stripe sent payers back to port 0.
describe('PORT=0', () => {
  it('is refused without PUBLIC_BASE_URL, saying why and what to set', () => {
    expect(problemsOf({ PORT: '0' })).toEqual([
      'PUBLIC_BASE_URL: is required when PORT=0 (the port is picked when the app listens, so http://localhost:PORT, where payers come back to, is not known yet); set it to the address the app is reached at, or set PORT',
    ]);
  });

  it('is taken with PUBLIC_BASE_URL, which payers come back to', () => {
    const config = loadConfig({ PORT: '0', PUBLIC_BASE_URL: 'https://billing.example.edu' });
    expect(config.port).toBe(0);
    expect(config.payments.publicBaseUrl).toBe('https://billing.example.edu');
  });
});

describe('a setting given as an empty string', () => {
  it.each([
    [
      'SLURM_CLUSTER',
      "SLURM_CLUSTER: is empty; set it to the cluster's name as Slurm's accounting knows it (sacctmgr show cluster), or leave it out to take it from the records",
    ],
    [
      'SESSION_SECRET',
      'SESSION_SECRET: is empty; set it to at least 32 characters (openssl rand -hex 32), or leave it out for a development-only secret (production requires one)',
    ],
    [
      'SLURMRESTD_URL',
      "SLURMRESTD_URL: is empty; set it to slurmrestd's http:// or https:// URL (e.g. http://slurm-head:6820), or leave it out to not use slurmrestd",
    ],
  ])('%s= stops the start with a line saying it is empty and what it needs', (name, line) => {
    expect(problemsOf({ [name]: '' })).toEqual([line]);
    expect(problemsOf({ [name]: '   ' })).toEqual([line]);
  });

  // Every setting that accepts empty takes it as if it were left out: flags, numbers and choices
  // their default, and a few on purpose as unset (an .env template with the line left blank:
  // AUDIT_CHAIN_KEY, ADMIN_USERNAME...). Text settings are refused.

  it.each([
    ['INGEST_ENABLED', (config: ReturnType<typeof loadConfig>) => config.ingestion.isEnabled],
    ['METRICS_ENABLED', (config: ReturnType<typeof loadConfig>) => config.metrics.isEnabled],
  ])('%s= (a blank line in an env file) keeps the flag on, its default', (name, read) => {
    expect(read(loadConfig({ [name]: '' }))).toBe(true);
    expect(read(loadConfig({ [name]: ' ' }))).toBe(true);
    expect(read(loadConfig({ [name]: '0' }))).toBe(false);
  });

  it.each(Object.keys(ZEnv.shape))('%s= is as if left out, or one readable line', (name) => {
    let config: ReturnType<typeof loadConfig> | undefined;
    let problems: string[] = [];
    try {
      config = loadConfig({ [name]: '' });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    if (config) {
      expect(config).toEqual(loadConfig({}));
      return;
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: is empty; set it to .+, or leave it out .+`));
    expect(problems[0]).not.toMatch(/Too small|Invalid|expected string|received/i);
  });
});

// A DATA_DIR that is a file passed the configuration and failed the start further on with Node's
// own words ("EEXIST: file already exists, mkdir …"), naming no setting.
describe('a DATA_DIR that cannot be a directory', () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'hpc-billing-config-'));
  const file = path.join(scratch, 'notes.txt');
  writeFileSync(file, 'not a directory\n');
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('is refused in the list when it is a file', () => {
    expect(problemsOf({ DATA_DIR: file, PORT: 'eighty' })).toEqual([
      expect.stringMatching(/^PORT: /),
      `DATA_DIR: ${file} is a file, not a directory; set DATA_DIR to a directory (it is created if missing)`,
    ]);
  });

  it('is refused in the list when a folder on its way is a file', () => {
    const inside = path.join(file, 'data');
    expect(problemsOf({ DATA_DIR: inside })).toEqual([
      `DATA_DIR: ${inside} cannot be created: ${file} is a file, not a directory`,
    ]);
  });

  it('is taken when it does not exist yet, or is a directory', () => {
    expect(loadConfig({ DATA_DIR: path.join(scratch, 'new', 'data') }).dataDir).toBe(path.join(scratch, 'new', 'data'));
    expect(loadConfig({ DATA_DIR: scratch }).dataDir).toBe(scratch);
  });
});
