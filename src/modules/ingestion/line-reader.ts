import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into lines, a chunk's worth at a time. Much cheaper than
 * readline's per-line async iteration when a file has a million lines.
 */
export async function* readLineChunks(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of stream) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    if (lines.length > 0) yield lines;
  }
  const last = rest + decoder.end();
  if (last !== '') yield [last];
}
