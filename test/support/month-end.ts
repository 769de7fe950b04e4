import { expect } from 'vitest';
import type { Agent } from './sign-in.js';

/** A month-end run's status as GET /admin/month-end/:id answers it in JSON. */
export interface MonthEndRunJson {
  id: number;
  url: string;
  outcome: 'running' | 'succeeded' | 'failed' | 'interrupted';
  before: string;
  startedBy: string;
  startedAt: string;
  finishedAt: string | null;
  usersTotal: number | null;
  usersDone: number;
  receiptCount: number;
  noChargeCount: number;
  /** The billing list filtered to the receipts the run made. */
  receiptsUrl: string;
  totals: { currency: string; total: string }[];
  skipped: { username: string; kind: string; reason: string }[];
  /** The disabled users it billed, each with the receipt it made them. */
  disabledUsersBilled: {
    username: string;
    receiptId: number;
    receiptUrl: string;
    total: string;
    currency: string;
    status: 'pending' | 'paid';
  }[];
  /** Jobs ended by `before` it left out because they have not finished; null for a run that did not count them. */
  unfinishedJobCount: number | null;
  unfinishedJobsByUser: { username: string; unfinishedJobCount: number }[] | null;
  error: string | null;
  message: string | null;
}

/** Polls a month-end run's status page (JSON) until the run has ended; its last answer. */
export async function waitForMonthEndRun(agent: Agent, url: string, timeoutMs = 20_000): Promise<MonthEndRunJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await agent.get(url).set('Accept', 'application/json');
    expect(status.status, status.text.slice(0, 300)).toBe(200);
    const run = status.body as MonthEndRunJson;
    if (run.outcome !== 'running') return run;
    if (Date.now() > deadline) throw new Error(`month-end run ${url} still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Where a browser's month-end form was sent: the run's status page. */
export function monthEndRunPathOf(started: { status: number; headers: Record<string, string>; text: string }): string {
  expect(started.status, started.text.slice(0, 300)).toBe(303);
  const location = started.headers.location as string;
  expect(location).toMatch(/^\/admin\/month-end\/\d+$/);
  return location;
}
