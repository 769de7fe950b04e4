import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseTransparentHugePagesMode,
  readTransparentHugePagesMode,
  warnIfTransparentHugePagesOff,
} from '../../src/shared/transparent-huge-pages.js';

describe('transparent huge pages mode', () => {
  it.each([
    ['always [madvise] never\n', 'madvise'],
    ['[always] madvise never\n', 'always'],
    ['always madvise [never]\n', 'never'],
    ['always madvise never\n', undefined],
    ['', undefined],
    ['[sometimes] never', undefined],
  ])('reads %j as %s', (text, mode) => {
    expect(parseTransparentHugePagesMode(text)).toBe(mode);
  });

  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'hb-thp-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('reads the mode from the kernel file, and nothing where there is no file', async () => {
    const file = path.join(directory, 'enabled');
    await writeFile(file, 'always madvise [never]\n');
    expect(await readTransparentHugePagesMode(file)).toBe('never');
    expect(await readTransparentHugePagesMode(path.join(directory, 'missing'))).toBeUndefined();
  });

  it.each([
    ['never', 1],
    ['madvise', 0],
    ['always', 0],
    [undefined, 0],
  ] as const)('with %s, warns %i time(s) at start-up', (mode, warnings) => {
    const messages: unknown[][] = [];
    warnIfTransparentHugePagesOff({ warn: (...args: unknown[]) => messages.push(args) } as never, mode);
    expect(messages).toHaveLength(warnings);
    if (warnings) expect(String(messages[0]?.[1])).toMatch(/transparent huge pages are off.*madvise/);
  });
});
