import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function runLogger(exitWay: 'flush-logs' | 'logger-flush') {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'test/support/log-behind-busy-threadpool.ts', exitWay], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const messages = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  return { status: run.status, messages, stderr: run.stderr };
}

// The server's last line ("stopped") came before a request line logged earlier, or without it: the
// log's writes are asynchronous (libuv's threads, shared with argon2 and the file system), and
// pino's flush with its default minLength of 0 does not wait for a write still under way, so the
// exit handler wrote the later lines at once, ahead of it. CI met it under load.
describe('flushLogs before an exit', () => {
  it('writes every line logged, in order, though a write was still waiting for a thread', () => {
    const run = runLogger('flush-logs');
    expect(run.status, run.stderr).toBe(0);
    expect(run.messages).toEqual(['first', 'last']);
  });

  it('is needed: pino flush alone lets the exit write the later line first (what this guards against)', () => {
    const run = runLogger('logger-flush');
    expect(run.status, run.stderr).toBe(0);
    expect(run.messages).not.toEqual(['first', 'last']);
  });
});
