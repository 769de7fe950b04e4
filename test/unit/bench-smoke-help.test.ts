import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { runToExit } from '../support/run-to-exit.js';

// A database nothing listens on: the old bench:smoke took --help for a run and tried to reach it.
const UNREACHABLE = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nowhere' };

const runSmoke = (args: string[]) =>
  runToExit(process.execPath, ['--import', 'tsx', 'bench/smoke.bench.ts', ...args], {
    cwd: PROJECT_ROOT,
    env: UNREACHABLE,
    giveUpMs: 60_000,
  });

// `npm run bench:smoke -- --help` ignored the option and started a whole smoke run (a scratch
// database, the app, every scenario) instead of saying what the command does.
describe('npm run bench:smoke command line', () => {
  it('prints its usage for --help and exits 0, having started nothing', async () => {
    for (const flag of ['--help', '-h']) {
      const result = await runSmoke([flag]);
      expect(result.code, result.output).toBe(0);
      expect(result.output).toMatch(/^Usage: npm run bench:smoke\b/);
      expect(result.output).not.toContain('bench:smoke failed');
    }
  }, 120_000);

  it('refuses an argument it does not take with the usage, exit 64', async () => {
    const result = await runSmoke(['--vus', '5']);
    expect(result.code, result.output).toBe(64);
    expect(result.output).toMatch(/^bench:smoke takes no arguments but --help \(got '--vus 5'\)\n\nUsage:/);
  }, 120_000);
});
