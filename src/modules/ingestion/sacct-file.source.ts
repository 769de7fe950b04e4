import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type IngestWindow, isInWindow, type JobSource, type ReadOptions, SourceConfigError } from './job-source.js';
import { readLineChunks } from './line-reader.js';
import { SacctParser } from './sacct.parser.js';
import type { SourceItem } from './slurm-job.model.js';

export interface SacctFileSourceOptions {
  path: string;
  timeZone: string;
  defaultCluster: string;
}

/**
 * An `sacct --parsable2` output file with a header row (FALLBACK_CSV; the demo's data):
 * read line by line, jobs outside the window left out.
 */
export function createSacctFileSource(options: SacctFileSourceOptions): JobSource {
  return {
    name: 'file',
    async fingerprint() {
      const info = await statOrConfigError(options.path);
      return { value: `${info.size}:${Math.floor(info.mtimeMs)}`, modifiedAt: info.mtime };
    },
    read(window: IngestWindow, readOptions?: ReadOptions) {
      return readSacctFile(options, window, readOptions);
    },
  };
}

async function statOrConfigError(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceConfigError(`FALLBACK_CSV ${path} cannot be read (${code ?? 'error'})`);
  }
}

async function* readSacctFile(
  options: SacctFileSourceOptions,
  window: IngestWindow,
  readOptions: ReadOptions | undefined,
): AsyncGenerator<SourceItem> {
  await statOrConfigError(options.path);
  const parser = new SacctParser({ timeZone: options.timeZone, defaultCluster: options.defaultCluster });
  const input = createReadStream(options.path, { highWaterMark: 1 << 20 });
  const keep = (item: SourceItem) =>
    item.kind === 'skip' ||
    (isInWindow(item.job, window) && (readOptions?.user === undefined || item.job.user === readOptions.user));
  let lineNumber = 0;
  try {
    for await (const lines of readLineChunks(input)) {
      for (const line of lines) {
        lineNumber += 1;
        for (const item of parser.pushLine(line, lineNumber)) if (keep(item)) yield item;
      }
    }
    for (const item of parser.end()) if (keep(item)) yield item;
  } finally {
    input.destroy();
  }
}
