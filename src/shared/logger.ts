import { pino } from 'pino';

export type Logger = pino.Logger;

/** The process logger. Redaction is a second line of defence: nothing should pass secrets to it. */
export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
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
