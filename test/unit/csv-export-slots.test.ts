import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createExportSlots, csvExportLimitsFor } from '../../src/http/csv-exports.js';
import { ServiceUnavailableError, TooManyRequestsError } from '../../src/shared/errors.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('csvExportLimitsFor', () => {
  it('leaves at least half of the pool to everything else, and allows at least one export', () => {
    expect(csvExportLimitsFor(10).maxConcurrent).toBe(5);
    expect(csvExportLimitsFor(3).maxConcurrent).toBe(1);
    expect(csvExportLimitsFor(1).maxConcurrent).toBe(1);
    expect(csvExportLimitsFor(10)).toMatchObject({ maxPerUser: 2, stallMs: 30_000 });
  });
});

describe('createExportSlots', () => {
  const limits = { maxConcurrent: 2, maxPerUser: 2, queueWaitMs: 1000 };

  it('refuses a user a third export at once (429 with Retry-After), while others still get slots', async () => {
    const slots = createExportSlots({ ...limits, maxConcurrent: 5 });
    await slots.acquire('alice');
    await slots.acquire('alice');
    const refused = slots.acquire('alice');
    await expect(refused).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(refused).rejects.toMatchObject({ status: 429, retryAfterSec: 5 });
    await expect(slots.acquire('bob')).resolves.toBeTypeOf('function');
    expect(slots.stats()).toEqual({ running: 3, waiting: 0 });
  });

  it('queues exports over the worker limit first come first served, and refuses them after the wait (503)', async () => {
    const slots = createExportSlots(limits);
    const releaseA = await slots.acquire('a');
    await slots.acquire('b');
    const order: string[] = [];
    const c = slots.acquire('c').then((release) => {
      order.push('c');
      return release;
    });
    const d = slots.acquire('d').then(() => order.push('d'));
    expect(slots.stats()).toEqual({ running: 2, waiting: 2 });
    releaseA();
    releaseA(); // a second release changes nothing
    await c;
    expect(order).toEqual(['c']);
    expect(slots.stats()).toEqual({ running: 2, waiting: 1 });
    vi.advanceTimersByTime(1000);
    await expect(d).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(d).rejects.toMatchObject({ status: 503, retryAfterSec: 5 });
    expect(slots.stats()).toEqual({ running: 2, waiting: 0 });
    // d's place was given back: d may try again once a slot frees.
    (await c)();
    await expect(slots.acquire('d')).resolves.toBeTypeOf('function');
  });

  it('counts a waiting export against its user, and forgets it when its client leaves', async () => {
    const slots = createExportSlots({ ...limits, maxConcurrent: 1 });
    await slots.acquire('a');
    let leave: () => void = () => {};
    const first = slots.acquire('alice', (onLeave) => {
      leave = onLeave;
    });
    void slots.acquire('alice').catch(() => {});
    await expect(slots.acquire('alice')).rejects.toBeInstanceOf(TooManyRequestsError);
    expect(slots.stats()).toEqual({ running: 1, waiting: 2 });
    leave();
    await expect(first).rejects.toThrow('the client left');
    expect(slots.stats()).toEqual({ running: 1, waiting: 1 });
    // Her place is free again: a new export of hers waits instead of being refused.
    void slots.acquire('alice').catch(() => {});
    expect(slots.stats()).toEqual({ running: 1, waiting: 2 });
  });
});
