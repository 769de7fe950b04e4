import { pino } from 'pino';

export type Logger = pino.Logger;

/** The process logger. Redaction is a second line of defence: nothing should pass secrets to it. */
export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
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
