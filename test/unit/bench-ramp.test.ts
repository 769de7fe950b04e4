import { describe, expect, it } from 'vitest';
import { runScenario } from '../../bench/lib/run-scenario.js';
import type { Scenario } from '../../bench/lib/scenarios.js';

interface IterationStart {
  vu: number;
  iteration: number;
  at: number;
}

/** A scenario that sends nothing and records when each iteration of each virtual user began. */
function recordingScenario(starts: IterationStart[]): Scenario {
  return {
    name: 'record',
    description: 'records iteration starts',
    probes: [],
    async createVirtualUser(context) {
      let iteration = 0;
      return async () => {
        starts.push({ vu: context.vuIndex, iteration: iteration++, at: performance.now() });
        await new Promise((resolve) => setTimeout(resolve, 20));
        return true;
      };
    },
  };
}

async function recordStarts(rampMs: number): Promise<{ starts: IterationStart[]; calledAt: number }> {
  const starts: IterationStart[] = [];
  const calledAt = performance.now();
  await runScenario({
    // Nothing listens here: the scenario never sends a request.
    baseUrl: new URL('http://127.0.0.1:9'),
    scenario: recordingScenario(starts),
    vus: 4,
    durationSec: 1,
    thinkMs: [0, 0],
    rampMs,
    users: 4,
    receiptShare: 0,
    maxIterationsPerVu: 1000,
    webhookSecret: 'x',
    currency: 'THB',
    sampleIntervalMs: 1000,
  });
  return { starts, calledAt };
}

describe('ramp-up', () => {
  it('starts every virtual user in the same tick without a ramp', async () => {
    const { starts } = await recordStarts(0);
    expect(starts.slice(0, 4).map(({ vu, iteration }) => [vu, iteration])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
  });

  it('starts virtual user i no earlier than i * ramp / vus', async () => {
    const { starts, calledAt } = await recordStarts(600);
    const firstOf = (vu: number) => starts.find((start) => start.vu === vu && start.iteration === 0)?.at ?? Number.NaN;
    // 150, 300, 450 ms after the run began; a timer may fire late, never (beyond rounding) early.
    // Measured from before the call, not from VU 0's first iteration: that one can itself start a
    // few ms after the clock on a busy machine, which made the gap look short (146.5 < 148).
    for (const vu of [1, 2, 3]) expect(firstOf(vu) - calledAt).toBeGreaterThanOrEqual(vu * 150 - 2);
    // VU 0 iterated meanwhile, alone at first.
    expect(starts.filter((start) => start.vu === 0 && start.at < firstOf(1)).length).toBeGreaterThan(1);
  });
});
