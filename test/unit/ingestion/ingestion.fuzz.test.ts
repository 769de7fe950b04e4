import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../../../src/modules/demo/demo-jobs.js';
import { parseSacctText, SacctParser } from '../../../src/modules/ingestion/sacct.parser.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { parseSlurmRestJobsResponse } from '../../../src/modules/ingestion/slurm-rest.parser.js';
import {
  createLocalTimeConverter,
  parseDurationSec,
  parseMemory,
  parseTres,
  SlurmParseError,
} from '../../../src/modules/ingestion/slurm-time.parser.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm');
const sacctText = readFileSync(path.join(FIXTURES, '22.05/final/sacct-steps-extra.psv'), 'utf8');
const restBody = readFileSync(path.join(FIXTURES, '22.05/final/rest-dbv0.0.38-jobs.json'), 'utf8');
const options = { timeZone: 'Asia/Bangkok', defaultCluster: 'x' };

const ALPHABET = '0123456789:-.|_+=,KMGTncx \tTZ/[]abcUNLIMITED\u00e9\u0000\ufffd';
function randomText(random: () => number, maxLength: number): string {
  const length = Math.floor(random() * maxLength);
  let text = '';
  for (let index = 0; index < length; index++) {
    text +=
      random() < 0.8
        ? ALPHABET[Math.floor(random() * ALPHABET.length)]
        : String.fromCharCode(Math.floor(random() * 0x2fff));
  }
  return text;
}

function assertWellFormed(items: SourceItem[]) {
  for (const item of items) {
    if (item.kind === 'skip') {
      expect(item.line).toBeGreaterThan(0);
      expect(item.reason.length).toBeGreaterThan(0);
      continue;
    }
    const { job } = item;
    expect(job.jobId).toMatch(/^\d+|^\d+_/);
    expect(Number.isFinite(job.elapsedSec) && job.elapsedSec >= 0).toBe(true);
    expect(Number.isFinite(job.allocCpus) && job.allocCpus >= 0).toBe(true);
    expect(job.totalCpuSec === null || Number.isFinite(job.totalCpuSec)).toBe(true);
    for (const date of [job.submitAt, job.startAt, job.endAt]) {
      expect(date === null || !Number.isNaN(date.getTime())).toBe(true);
    }
  }
}

describe('value parsers on random text', () => {
  it('either parse or throw SlurmParseError, never anything else (seed 1..2000)', () => {
    const toUtc = createLocalTimeConverter('Europe/Berlin');
    for (let seed = 1; seed <= 2000; seed++) {
      const random = createRandom(seed);
      const text = randomText(random, 24);
      for (const parse of [parseDurationSec, (value: string) => parseMemory(value), toUtc, parseTres]) {
        try {
          const value = parse(text);
          if (typeof value === 'number')
            expect(Number.isNaN(value), `seed ${seed}: ${JSON.stringify(text)}`).toBe(false);
        } catch (error) {
          expect(error, `seed ${seed}: ${JSON.stringify(text)}`).toBeInstanceOf(SlurmParseError);
        }
      }
    }
  });
});

describe('sacct parser on damaged input', () => {
  const [header, ...rows] = sacctText.trimEnd().split('\n');

  it('random lines after a real header become skips or jobs, never an exception (seed 1..300)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = createRandom(seed);
      const lines = [header as string];
      for (let index = 0; index < 20; index++) {
        // Mix real rows, random bytes and rows with one field replaced.
        const roll = random();
        const real = rows[Math.floor(random() * rows.length)] as string;
        if (roll < 0.3) lines.push(real);
        else if (roll < 0.6) lines.push(randomText(random, 200));
        else {
          const fields = real.split('|');
          fields[Math.floor(random() * fields.length)] = randomText(random, 12).replaceAll('|', '');
          lines.push(fields.join('|'));
        }
      }
      const items = parseSacctText(lines.join('\n'), options);
      assertWellFormed(items);
    }
  });

  it('every row cut at every length is a job or a counted skip (truncated lines)', () => {
    for (const [index, row] of rows.entries()) {
      for (let cut = 0; cut <= row.length; cut += 3) {
        const parser = new SacctParser(options);
        parser.pushLine(header as string, 1);
        const items = [...parser.pushLine(row.slice(0, cut), 2), ...parser.end()];
        assertWellFormed(items);
        // A cut row either still reads (cut inside the last field) or is one skip at line 2.
        if (items.some((item) => item.kind === 'skip')) {
          expect(items, `row ${index} cut at ${cut}`).toEqual([expect.objectContaining({ kind: 'skip', line: 2 })]);
        }
      }
    }
  });

  it('a file cut in the middle of a line keeps every complete job before it', () => {
    const cutAt = sacctText.indexOf('bob|6_3');
    const items = parseSacctText(sacctText.slice(0, cutAt + 20), options);
    expect(items.filter((item) => item.kind === 'job').map((item) => item.kind === 'job' && item.job.jobKey)).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '7',
      '9',
      '6_1',
      '6_2',
    ]);
    expect(items.filter((item) => item.kind === 'skip')).toHaveLength(1);
  });
});

describe('slurmrestd parser on damaged JSON', () => {
  it('random mutations of real records give skips or jobs, never an exception (seed 1..300)', () => {
    const body = JSON.parse(restBody) as { jobs: unknown[] };
    const mutate = (value: unknown, random: () => number): unknown => {
      if (Array.isArray(value)) return value.map((entry) => mutate(entry, random));
      if (typeof value === 'object' && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, mutate(entry, random)]));
      }
      if (random() > 0.03) return value;
      const replacements = [null, -1, 'x', {}, [], true, 1e308, { set: true, number: 'n' }];
      return replacements[Math.floor(random() * replacements.length)];
    };
    for (let seed = 1; seed <= 300; seed++) {
      const random = createRandom(seed);
      const response = parseSlurmRestJobsResponse(
        { jobs: mutate(body.jobs, random) },
        { version: 'v0.0.38', defaultCluster: 'x' },
      );
      expect(response.items).toHaveLength(body.jobs.length);
      assertWellFormed(response.items);
    }
  });
});
