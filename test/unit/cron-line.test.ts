import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_TIER_RULES } from '../../src/config/config.schema.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

/** The crontab line docs/ingestion.md gives under "From cron", without its schedule. */
function documentedCronCommand(): string {
  const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/ingestion.md'), 'utf8');
  const section = guide.slice(guide.indexOf('## From cron'));
  const line = /^\*\/5 \* \* \* \* (.+)$/m.exec(section)?.[1];
  if (!line) throw new Error('no crontab line under "From cron" in docs/ingestion.md');
  return line;
}

describe('the crontab line of docs/ingestion.md, "From cron"', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cron-line-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the ingest tool the settings of the env file as written there, JSON and URL queries included', () => {
    // The line read the env file with `set -a && . /etc/hpc-billing/env`, as shell code: the double
    // quotes of PRICING_TIER_RULES's JSON (written as .env.example and README write it) were taken
    // away, so every cron run stopped with exit 78 on rules that are no JSON, and a DATABASE_URL with
    // `&` in its query (sslmode=verify-full&sslrootcert=...) ran in the background and reached the
    // tool empty. The server, reading the same file as a systemd EnvironmentFile, ran fine meanwhile.
    const settings = {
      APP_ENV: 'production',
      DATABASE_URL: 'postgresql://billing:pw@db:5432/billing?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem',
      PRICING_TIER_RULES: DEFAULT_TIER_RULES,
      SLURMRESTD_URL: 'https://slurm.example.edu:6820',
    };
    const envFile = path.join(dir, 'env');
    writeFileSync(
      envFile,
      `${Object.entries(settings)
        .map(([name, value]) => `${name}=${value}`)
        .join('\n')}\n`,
    );
    // A stand-in for the tool that writes what it was given.
    const tool = path.join(dir, 'print-env.mjs');
    writeFileSync(
      tool,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(path.join(dir, 'seen.json'))}, JSON.stringify(process.env));\n`,
    );
    const command = documentedCronCommand()
      .replace('cd /srv/hpc-billing', `cd ${JSON.stringify(dir)}`)
      .replace('/etc/hpc-billing/env', envFile)
      // The compiled tool, run by npm (ingest:prod) or node.
      .replace(/npm run --silent ingest:prod/, `node ${tool}`)
      .replace('dist/src/cli/ingest.cli.js', tool)
      .replace('/var/log/hpc-billing-ingest.log', path.join(dir, 'ingest.log'));
    expect(command).toContain(tool);
    // cron runs the line with /bin/sh and hardly any environment.
    execFileSync('/bin/sh', ['-c', command], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    const seen = JSON.parse(readFileSync(path.join(dir, 'seen.json'), 'utf8')) as Record<string, string>;
    expect(Object.fromEntries(Object.keys(settings).map((name) => [name, seen[name]]))).toEqual(settings);
  });
});
