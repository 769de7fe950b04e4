import { describe, expect, it } from 'vitest';
import { readLineChunks } from '../../../src/modules/ingestion/line-reader.js';

async function linesOf(chunks: (string | Buffer)[]): Promise<string[]> {
  async function* stream() {
    yield* chunks;
  }
  const lines: string[] = [];
  for await (const batch of readLineChunks(stream())) lines.push(...batch);
  return lines;
}

const euro = Buffer.from('€', 'utf8'); // three bytes

describe('readLineChunks', () => {
  it.each([
    ['one chunk, ending in a newline', ['a|1\nb|2\n'], ['a|1', 'b|2']],
    ['no newline at the end', ['a|1\nb|2'], ['a|1', 'b|2']],
    ['a line split across chunks', ['a|', '1\nb', '|2\n'], ['a|1', 'b|2']],
    ['a line across many chunks without a newline', ['a', '|', '1', '2', '3\n', 'b\n'], ['a|123', 'b']],
    ['a newline alone in a chunk', ['a|1', '\n', 'b|2'], ['a|1', 'b|2']],
    ['empty lines kept', ['a\n\n', '\nb\n'], ['a', '', '', 'b']],
    ['empty chunks', ['', 'a', '', '\n', ''], ['a']],
    ['nothing', [], []],
    ['carriage returns left to the parser', ['a\r\nb\r\n'], ['a\r', 'b\r']],
    [
      'a UTF-8 character split across chunks',
      [Buffer.concat([Buffer.from('x'), euro.subarray(0, 1)]), euro.subarray(1), Buffer.from('y\nz')],
      ['x€y', 'z'],
    ],
  ])('%s', async (_name, chunks, expected) => {
    expect(await linesOf(chunks as (string | Buffer)[])).toEqual(expected);
  });

  it('joins a line of 5 MB in 64 kB chunks whole, with the lines around it', async () => {
    const long = `9|${'x'.repeat(5 * 1024 * 1024)}`;
    const text = `1|a\n${long}\n2|b\n`;
    const chunks: string[] = [];
    for (let at = 0; at < text.length; at += 65_536) chunks.push(text.slice(at, at + 65_536));
    const lines = await linesOf(chunks);
    expect(lines.map((line) => line.length)).toEqual([3, long.length, 3]);
    expect(lines[1] === long).toBe(true);
  });
});
