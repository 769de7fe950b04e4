import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { warnAboutUnusableSourcePaths } from '../../../src/modules/ingestion/source-paths.js';

// A SACCT_PATH or FALLBACK_CSV naming a file that is not there (a typo, a mount not up yet) showed
// only later, as ingestion runs failing with a configuration error. The start says so once, and
// goes on: the mount may come later, and each run checks again.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'source-paths-'));
  await writeFile(path.join(dir, 'sacct'), '#!/bin/sh\nexit 0\n');
  await chmod(path.join(dir, 'sacct'), 0o755);
  await writeFile(path.join(dir, 'not-executable'), '#!/bin/sh\nexit 0\n');
  await chmod(path.join(dir, 'not-executable'), 0o644);
  await writeFile(path.join(dir, 'jobs.txt'), 'JobID|User\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function warningsFor(env: Record<string, string>) {
  const config = loadConfig({
    DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none',
    LOG_LEVEL: 'silent',
    DEMO_SEED: '0',
    ...env,
  });
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) };
  await warnAboutUnusableSourcePaths(logger as never, config);
  return warnings;
}

describe('warnAboutUnusableSourcePaths, at start-up', () => {
  it('warns once, naming SACCT_PATH and its path, when there is no such file', async () => {
    const missing = path.join(dir, 'mnt', 'slurm', 'bin', 'sacct');
    const warnings = await warningsFor({ SACCT_PATH: missing });
    expect(warnings).toEqual([
      {
        fields: { setting: 'SACCT_PATH', path: missing, code: 'ENOENT' },
        message: expect.stringContaining(`SACCT_PATH ${missing} cannot be run (ENOENT)`),
      },
    ]);
    expect(warnings[0]?.message).toMatch(/every ingestion run .* will fail there/);
    expect(warnings[0]?.message).toMatch(/starts? all the same|start(s|ed) anyway/);
  });

  it('warns when SACCT_PATH is a file that cannot be executed', async () => {
    const file = path.join(dir, 'not-executable');
    const warnings = await warningsFor({ SACCT_PATH: file });
    expect(warnings.map((warning) => warning.fields)).toEqual([{ setting: 'SACCT_PATH', path: file, code: 'EACCES' }]);
    expect(warnings[0]?.message).toContain(`SACCT_PATH ${file} cannot be run (EACCES)`);
  });

  it('warns when SACCT_PATH is a directory (the bin directory, not sacct in it)', async () => {
    const warnings = await warningsFor({ SACCT_PATH: dir });
    expect(warnings.map((warning) => warning.fields)).toEqual([{ setting: 'SACCT_PATH', path: dir, code: 'EISDIR' }]);
  });

  it('warns once, naming FALLBACK_CSV and its path, when there is no such file', async () => {
    const missing = path.join(dir, 'mnt', 'sacct-jobs.txt');
    const warnings = await warningsFor({ FALLBACK_CSV: missing });
    expect(warnings).toEqual([
      {
        fields: { setting: 'FALLBACK_CSV', path: missing, code: 'ENOENT' },
        message: expect.stringContaining(`FALLBACK_CSV ${missing} cannot be read (ENOENT)`),
      },
    ]);
    expect(warnings[0]?.message).toMatch(/every ingestion run .* will fail there/);
  });

  it('warns for each of the two when both are missing', async () => {
    const warnings = await warningsFor({
      SACCT_PATH: path.join(dir, 'no-sacct'),
      FALLBACK_CSV: path.join(dir, 'no.txt'),
    });
    expect(warnings.map((warning) => warning.fields.setting)).toEqual(['SACCT_PATH', 'FALLBACK_CSV']);
  });

  it('says nothing when both are there, or neither is set', async () => {
    expect(
      await warningsFor({ SACCT_PATH: path.join(dir, 'sacct'), FALLBACK_CSV: path.join(dir, 'jobs.txt') }),
    ).toEqual([]);
    expect(await warningsFor({})).toEqual([]);
  });
});

describe('warnAboutUnusableSourcePaths, the files slurmrestd reads', () => {
  // SLURMRESTD_TOKEN_FILE and SLURMRESTD_CA_FILE were not checked at start at all: a typo, a mount
  // missing, or a token file of root's mode 600 mounted into the image (its user node, uid 1000,
  // cannot read it) showed only as every run failing, on the ingestion page.
  const rest = { SLURMRESTD_URL: 'http://slurm-head:6820', SLURMRESTD_USER: 'billing' };

  it('warns once, naming SLURMRESTD_TOKEN_FILE and its path, when there is no such file', async () => {
    const missing = path.join(dir, 'secrets', 'slurm-jwt');
    const warnings = await warningsFor({ ...rest, SLURMRESTD_TOKEN_FILE: missing });
    expect(warnings).toEqual([
      {
        fields: { setting: 'SLURMRESTD_TOKEN_FILE', path: missing, code: 'ENOENT' },
        message: expect.stringContaining(`SLURMRESTD_TOKEN_FILE ${missing} cannot be read (ENOENT)`),
      },
    ]);
    expect(warnings[0]?.message).toMatch(/every ingestion run that reaches slurmrestd will fail there/);
    expect(warnings[0]?.message).toMatch(/starts all the same/);
  });

  it('warns when SLURMRESTD_CA_FILE is a directory, and says nothing of files that can be read', async () => {
    const token = path.join(dir, 'jobs.txt');
    expect(await warningsFor({ ...rest, SLURMRESTD_TOKEN_FILE: token, SLURMRESTD_CA_FILE: token })).toEqual([]);
    const warnings = await warningsFor({ ...rest, SLURMRESTD_TOKEN_FILE: token, SLURMRESTD_CA_FILE: dir });
    expect(warnings.map((warning) => warning.fields)).toEqual([
      { setting: 'SLURMRESTD_CA_FILE', path: dir, code: 'EISDIR' },
    ]);
  });

  it('says the token file is not read when SLURMRESTD_TOKEN is set too, and does not check it, as the runs do not read it', async () => {
    // SLURMRESTD_TOKEN wins (the runs send it and never read the file), which nothing said: an admin who
    // moved to the file, the old variable left in the unit's environment, renewed the file and every run
    // still sent the old token, failing once it expired (tried on the lab with npm run ingest).
    const tokenFile = path.join(dir, 'no-such-token');
    const warnings = await warningsFor({
      ...rest,
      SLURMRESTD_TOKEN: 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln',
      SLURMRESTD_TOKEN_FILE: tokenFile,
    });
    expect(warnings).toEqual([
      {
        fields: { setting: 'SLURMRESTD_TOKEN_FILE', path: tokenFile },
        message:
          `SLURMRESTD_TOKEN and SLURMRESTD_TOKEN_FILE are both set: every run sends SLURMRESTD_TOKEN and never reads ${tokenFile}, ` +
          'so renewing the file changes nothing. Unset SLURMRESTD_TOKEN to use the file (re-read on every request), or unset SLURMRESTD_TOKEN_FILE',
      },
    ]);
  });
});
