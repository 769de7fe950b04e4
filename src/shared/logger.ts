import { pino } from 'pino';

export type Logger = pino.Logger;

/** The process logger. Redaction is a second line of defence: nothing should pass secrets to it. */
export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}

/** pino's default destination (sonic-boom) when it writes asynchronously, as far as flushLogs uses it. */
interface AsyncDestination {
  sync: false;
  destroyed: boolean;
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

function isAsyncDestination(stream: unknown): stream is AsyncDestination {
  if (typeof stream !== 'object' || stream === null) return false;
  const candidate = stream as Partial<Record<keyof AsyncDestination, unknown>>;
  return candidate.sync === false && candidate.destroyed === false && typeof candidate.once === 'function';
}

/** How long an exit waits for the log's writes: a stdout pipe nobody reads must not hold the process. */
const FLUSH_LOGS_MAX_WAIT_MS = 2_000;

/**
 * Resolves once every line logged so far is written, so that an exit now loses none and writes
 * them in order. The process logger writes asynchronously, on libuv's threads (shared with argon2
 * and the file system, so a write can wait there), and pino's `flush` does not wait for a write
 * under way: the exit handler then wrote the lines logged after it first, and the one under way
 * came after the last line ("stopped") or not at all. An empty write queues behind whatever is
 * under way, and the stream says 'drain' when all of it is written.
 */
export function flushLogs(logger: Logger, maxWaitMs = FLUSH_LOGS_MAX_WAIT_MS): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!isAsyncDestination(stream)) return new Promise((resolve) => logger.flush(() => resolve()));
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stream.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, maxWaitMs);
    stream.once('drain', done);
    stream.write('');
  });
}

/**
 * LOG_LEVEL as a tool whose stdout line is its result logs at: `info` reads as `warn`, since an
 * info line per migration, day or seeded run would only repeat that result on stderr; warnings
 * and errors still come, and `debug` or `trace` show everything (docs/operations.md, "Logs").
 */
export function resultToolLogLevel(level: string): string {
  return level === 'info' ? 'warn' : level;
}

/**
 * The logger of a command-line tool: the same lines on stderr, because a tool's stdout carries
 * its result, which a script or cron's mail reads. Written synchronously so that no line is lost
 * when a failed tool exits at once.
 */
export function createToolLogger(level: string): Logger {
  return pino(loggerOptions(level), pino.destination({ dest: 2, sync: true }));
}

function loggerOptions(level: string): pino.LoggerOptions {
  return {
    level,
    base: { pid: process.pid },
    redact: {
      paths: [
        'password',
        '*.password',
        'sessionId',
        '*.sessionId',
        'secret',
        '*.secret',
        'token',
        '*.token',
        'headers.cookie',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
}
