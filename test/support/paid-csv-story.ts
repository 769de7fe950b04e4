import { expect } from 'vitest';
import { type Agent, csrfTokenOf } from './sign-in.js';
import type { TestDatabase } from './test-database.js';

/**
 * The steps of the paid.csv stories (a receipt paid in one month, voided, refunded or accepted in a
 * later one, and the closed month's export checked again): bill, pay at the dummy checkout, read
 * the export. `database` is read when a step runs, so it may return what a beforeAll sets up.
 */
export function createPaidCsvStory(database: () => TestDatabase) {
  /** A receipt of every unbilled job the researcher has up to 2025-09-04; its id. */
  async function billEverything(agent: Agent): Promise<number> {
    const created = await agent
      .post('/me/receipt')
      .type('form')
      .send({ before: '2025-09-04', csrf_token: await csrfTokenOf(agent, '/me') });
    expect(created.status, created.text.slice(0, 200)).toBe(303);
    return Number(/^\/me\/receipts\/(\d+)#receipt$/.exec(created.headers.location ?? '')?.[1]);
  }

  /** Pays the receipt at the dummy provider's checkout (its signed success webhook). */
  async function payOnline(agent: Agent, receiptId: number) {
    const started = await agent
      .post(`/payments/receipt/${receiptId}/start`)
      .type('form')
      .send({ csrf_token: await csrfTokenOf(agent) });
    expect(started.status, started.text.slice(0, 200)).toBe(303);
    await agent
      .post(started.headers.location as string)
      .type('form')
      .send({ choice: 'pay', csrf_token: await csrfTokenOf(agent) })
      .expect(303);
    const payment = await database().prisma.payment.findFirstOrThrow({
      where: { receiptId },
      orderBy: { id: 'desc' },
    });
    expect(payment.status).toBe('succeeded');
    return payment;
  }

  /** paid.csv of a window as its header and one object per line, by column name. */
  async function paidCsv(admin: Agent, window: string) {
    const text = (await admin.get(`/admin/paid.csv?${window}`).expect(200)).text;
    const [header, ...lines] = text.trimEnd().split('\n');
    const columns = (header ?? '').split(',');
    return {
      columns,
      lines,
      rows: lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value]))),
    };
  }

  return { billEverything, payOnline, paidCsv };
}
