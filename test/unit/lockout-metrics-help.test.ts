import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';

/** The `# HELP` line of `name`, as a scrape shows it. */
async function helpOf(name: string): Promise<string> {
  const text = await createMetrics().registry.metrics();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`# HELP ${name} `));
  if (!line) throw new Error(`no HELP line for ${name}`);
  return line.slice(`# HELP ${name} `.length);
}

// One wrong password can lock the (username, address) pair, the username and the address at once:
// auth_lockout_start_total counts it once, auth_lockout_end_total each lock as it ends. Both HELP
// lines said "Lockouts", so a reader of the scrape (or Grafana's metric browser) took ends above
// starts for a bug.
describe('the HELP of the lockout counters says what each counts', () => {
  it('auth_lockout_start_total counts wrong passwords that started a lock, once each', async () => {
    const help = await helpOf('auth_lockout_start_total');
    expect(help).toMatch(/wrong passwords?/i);
    expect(help).toMatch(/once each/i);
  });

  it('auth_lockout_end_total counts each lock that ended', async () => {
    const help = await helpOf('auth_lockout_end_total');
    expect(help).toMatch(/each lock/i);
    expect(help).toMatch(/more than auth_lockout_start_total/);
  });
});
