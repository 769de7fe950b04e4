import { describe, expect, it } from 'vitest';
import { CUT_LINE_MARK, readLineChunks } from '../../../src/modules/ingestion/line-reader.js';

async function linesOf(chunks: Iterable<string | Buffer>, maxLineChars?: number): Promise<string[]> {
  async function* stream() {
    yield* chunks;
  }
  const lines: string[] = [];
  for await (const batch of readLineChunks(stream(), { maxLineChars })) lines.push(...batch);
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

  describe('a line longer than it keeps', () => {
    const cut = (head: string) => `${head}${CUT_LINE_MARK}`;
    it.each([
      ['across chunks', ['1|a\n9|', 'xxxx', 'xxxx', 'xxxx\n2|b\n'], ['1|a', cut('9|xxxxxxxx'), '2|b']],
      ['inside one chunk', ['1|a\n9|xxxxxxxxxxxx\n2|b\n'], ['1|a', cut('9|xxxxxxxx'), '2|b']],
      ['at the end, without a newline', ['1|a\n9|xxxx', 'xxxxxxxx'], ['1|a', cut('9|xxxxxxxx')]],
      ['exactly as long as it keeps', ['1|a\n9|xxxxxxxx\n'], ['1|a', '9|xxxxxxxx']],
    ])(
      '%s: comes out as its start and the cut mark, with the lines around it whole',
      async (_name, chunks, expected) => {
        expect(await linesOf(chunks, 10)).toEqual(expected);
      },
    );

    it('keeps only the start of a stream without a newline (an archive given as the sacct file)', async () => {
      function* megabytes() {
        for (let index = 0; index < 64; index++) yield 'z'.repeat(1024 * 1024);
      }
      const lines = await linesOf(megabytes(), 4 * 1024 * 1024);
      expect(lines).toHaveLength(1);
      expect(lines[0]?.endsWith(CUT_LINE_MARK)).toBe(true);
      expect(lines[0]?.length).toBeLessThanOrEqual(64 * 1024 + CUT_LINE_MARK.length);
    });
  });
});
