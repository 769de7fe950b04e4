import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError, SourceUnavailableError } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource, type SacctSourceOptions } from '../../../src/modules/ingestion/sacct.source.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';

const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
const WINDOW = { start: new Date('2026-11-23T15:40:43Z'), end: new Date('2026-11-23T15:47:01Z') };
let dir: string;

/** The fake sacct under a name that picks its behaviour (see the script's header). */
function fakeSacct(mode: string): string {
  const link = path.join(dir, `sacct-${mode}`);
  symlinkSync(FAKE_SACCT, link);
  return link;
}

const options = (sacctPath: string, overrides: Partial<SacctSourceOptions> = {}): SacctSourceOptions => ({
  sacctPath,
  timeZone: 'Asia/Bangkok',
  cluster: undefined,
  defaultCluster: 'lab',
  timeoutMs: 5000,
  ...overrides,
});

async function collect(iterable: AsyncIterable<SourceItem>): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const argsOf = (sacctPath: string): string[][] =>
  readFileSync(`${sacctPath}.args`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fake-sacct-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sacct source with a fake sacct executable', () => {
  it('streams the captured output as jobs, with fixed arguments and no shell', async () => {
    const sacct = fakeSacct('ok');
    const items = await collect(createSacctSource(options(sacct, { cluster: 'lab' })).read(WINDOW));
    expect(items.filter((item) => item.kind === 'job')).toHaveLength(12);
    const [args] = argsOf(sacct);
    expect(args).toEqual([
      '--parsable2',
      '--noconvert',
      expect.stringMatching(/^--format=JobID,JobIDRaw,Cluster,User,/),
      '--state=BF,CA,CD,DL,F,NF,OOM,PR,TO',
      // The window in the cluster's zone (Asia/Bangkok, UTC+7).
      '--starttime=2026-11-23T22:40:43',
      '--endtime=2026-11-23T22:47:01',
      '--allusers',
      '--clusters=lab',
    ]);
  });

  it('asks for one validated user, and refuses a name that could be an option', async () => {
    const sacct = fakeSacct('ok-user');
    await expect(collect(createSacctSource(options(sacct)).read(WINDOW, { user: '-x;rm' }))).rejects.toThrow(
      SourceConfigError,
    );
  });

  it('reports a non-zero exit with the end of stderr', async () => {
    const sacct = fakeSacct('fail');
    await expect(collect(createSacctSource(options(sacct)).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError(
        'sacct exited with 1: sacct: error: Problem talking to the database: Connection refused',
      ),
    );
  });

  it('kills a hung sacct after the timeout', async () => {
    const sacct = fakeSacct('hang');
    await expect(collect(createSacctSource(options(sacct, { timeoutMs: 300 })).read(WINDOW))).rejects.toThrow(
      new SourceUnavailableError('sacct did not finish within 300 ms; killed'),
    );
  });

  it('calls a missing binary a configuration error', async () => {
    await expect(collect(createSacctSource(options(path.join(dir, 'no-such-sacct'))).read(WINDOW))).rejects.toThrow(
      /SACCT_PATH .*no-such-sacct cannot be run \(ENOENT\)/,
    );
  });
});
