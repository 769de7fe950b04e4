import { pino } from 'pino';

export type Logger = pino.Logger;

/** The process logger. Redaction is a second line of defence: nothing should pass secrets to it. */
export function createLogger(level: string): Logger {
  return pino({
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
  });
}
