// Logs two lines while the one libuv thread is busy (UV_THREADPOOL_SIZE=1 and a long pbkdf2), so
// the first line's asynchronous write waits in the pool's queue, then exits as the server does:
// `flush-logs` (the app's way) or `logger-flush` (pino's flush, the old way).
import { pbkdf2 } from 'node:crypto';
import { createLogger, flushLogs } from '../../src/shared/logger.js';

const logger = createLogger('info');
pbkdf2('password', 'salt', 400_000, 64, 'sha512', () => {});
logger.info('first');
logger.info('last');
if (process.argv[2] === 'logger-flush') {
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
} else {
  await flushLogs(logger);
}
process.exit(0);
