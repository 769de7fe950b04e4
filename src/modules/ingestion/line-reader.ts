import { StringDecoder } from 'node:string_decoder';

/**
 * The longest line kept whole. sacct's longest real lines (a job's TRES and node list) are
 * kilobytes, and a 60 MB line has been seen only in a damaged file; a file with no newline at
 * all (FALLBACK_CSV pointed at an archive) would otherwise be held whole, until the worker ran
 * out of memory.
 */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;
/** What is kept of a longer line: its start, which names the job it belongs to. */
const CUT_LINE_HEAD_CHARS = 64 * 1024;
/** Ends a line the reader cut short; sacct never prints a NUL. */
export const CUT_LINE_MARK = '\u0000[cut]';

export interface LineReaderOptions {
  /** Lines longer than this come out as their first 64 kB followed by CUT_LINE_MARK. */
  maxLineChars?: number;
}

/**
 * Splits a byte stream into lines, a chunk's worth at a time. Much cheaper than
 * readline's per-line async iteration when a file has a million lines.
 */
export async function* readLineChunks(
  stream: AsyncIterable<Buffer | string>,
  options: LineReaderOptions = {},
): AsyncGenerator<string[]> {
  const maxLineChars = options.maxLineChars ?? MAX_LINE_CHARS;
  const headChars = Math.min(CUT_LINE_HEAD_CHARS, maxLineChars);
  const decoder = new StringDecoder('utf8');
  // The start of a line that has not ended yet, in the pieces it came in: joined once, when its
  // end comes. Joining and splitting it again at every chunk cost its length at every chunk, so a
  // line of 30 MB took 60 s of CPU, most of it while a server worker's requests waited.
  let open: string[] = [];
  let openChars = 0;
  // Set once the open line passed maxLineChars: only its head is kept, the rest is dropped.
  let cutHead: string | null = null;
  const keep = (piece: string) => {
    if (cutHead !== null) return;
    open.push(piece);
    openChars += piece.length;
    if (openChars > maxLineChars) {
      cutHead = open.join('').slice(0, headChars);
      open = [];
    }
  };
  const endOpenLine = (): string => {
    const line = cutHead === null ? open.join('') : cutHead + CUT_LINE_MARK;
    open = [];
    openChars = 0;
    cutHead = null;
    return line;
  };
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (!text.includes('\n')) {
      if (text !== '') keep(text);
      continue;
    }
    const lines = text.split('\n');
    const rest = lines.pop() ?? '';
    if (open.length > 0 || cutHead !== null) {
      keep(lines[0] ?? '');
      lines[0] = endOpenLine();
    }
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index] as string;
      if (line.length > maxLineChars) lines[index] = line.slice(0, headChars) + CUT_LINE_MARK;
    }
    if (rest !== '') keep(rest);
    yield lines;
  }
  keep(decoder.end());
  if (open.length > 0 || cutHead !== null) {
    const last = endOpenLine();
    if (last !== '') yield [last];
  }
}
