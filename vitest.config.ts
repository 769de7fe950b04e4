import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    // A worker keeps the modules it has loaded from one test file to the next. Loading them again for
    // each of 430 files (Prisma's client, express, playwright, the app) was about a sixth of the suite's
    // CPU: on 43 files, 165.7 s isolated against 124.8 s shared (import 47.6 -> 8.6 s). Each file still
    // gets its own database and builds its own app; module state is set by the app each test builds
    // (configureAuditChain, the argon2 threads), and a file that mocks a module resets the modules
    // around it (legacy-hash-refusal).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // expect.poll waits for a state (a log line, a status, a row); its default of 1 s gave up on a
    // loaded machine before a scheduled run or a signal's handler had come round (database-read-only's
    // ingestion warning, in a run beside 7 other suites). Only a state that never comes waits this long.
    expect: { poll: { timeout: 30_000 } },
    // Each file gets its own database, so files run in parallel safely.
    fileParallelism: true,
    // Vitest's default (one fewer than the cores) ran the files one at a time on a 2-core machine,
    // though most of a file's time is spent waiting on PostgreSQL, child processes and Chromium:
    // at least two at once.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
