import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into lines, a chunk's worth at a time. Much cheaper than
 * readline's per-line async iteration when a file has a million lines.
 */
export async function* readLineChunks(stream: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  // The start of a line that has not ended yet, in the pieces it came in: joined once, when its
  // end comes. Joining and splitting it again at every chunk cost its length at every chunk, so a
  // line of 30 MB took 60 s of CPU, most of it while a server worker's requests waited.
  let open: string[] = [];
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (!text.includes('\n')) {
      if (text !== '') open.push(text);
      continue;
    }
    const lines = text.split('\n');
    const rest = lines.pop() ?? '';
    if (open.length > 0) {
      open.push(lines[0] ?? '');
      lines[0] = open.join('');
    }
    open = rest === '' ? [] : [rest];
    yield lines;
  }
  const last = open.join('') + decoder.end();
  if (last !== '') yield [last];
}
