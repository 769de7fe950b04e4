import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers, type JobSpec } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * What a grant office reads off a receipt of thousands of jobs: the CPU, GPU and memory hours it
 * bills in all, beside its total. The receipt said its total and rates alone, so the hours of a paged
 * receipt could only be had by adding up its CSV.
 */
let db: TestDatabase;
const now = () => new Date('2025-09-20T05:00:00Z');
let app: ReturnType<typeof buildTestApp>;
let alice: Agent;
let admin: Agent;
let id: number;
let sums: { cpu: Prisma.Decimal; gpu: Prisma.Decimal; mem: Prisma.Decimal; cost: Prisma.Decimal };
let total: string;

// 1,200 jobs, three pages of 500, with CPUs, GPUs, memory and run times that differ job to job.
const JOBS: JobSpec[] = Array.from({ length: 1_200 }, (_, index) => ({
  user: 'alice',
  jobId: String(50_000 + index),
  end: new Date(Date.UTC(2025, 8, 1) + index * 60_000),
  elapsedSec: 60 + ((index * 37) % 7_200),
  allocCpus: 1 + (index % 32),
  allocGpus: index % 5 === 0 ? 1 + (index % 4) : 0,
  allocMemMb: 1_024 * (1 + (index % 16)),
}));

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'alice', password: 'alice-password' });
  await buildUser(db.prisma, { username: 'boss', role: 'admin', password: 'boss-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now });
  alice = await signInAs(app, 'alice', 'alice-password');
  admin = await signInAs(app, 'boss', 'boss-password');
  await buildJobs(db, JOBS);
  const created = await alice
    .post('/me/receipt')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(alice, '/me'))
    .send({ before: '2025-09-15' });
  expect(created.status, created.text.slice(0, 200)).toBe(201);
  id = created.body.receipt.id;
  total = created.body.receipt.total;
  expect(created.body.receipt.jobCount).toBe(1_200);
  // The sums of the items CSV's lines, in exact decimals.
  const lines = (await alice.get(`/me/receipts/${id}/items.csv`).expect(200)).text.trimEnd().split('\n').slice(1);
  expect(lines).toHaveLength(1_200);
  const zero = new Prisma.Decimal(0);
  sums = { cpu: zero, gpu: zero, mem: zero, cost: zero };
  for (const line of lines) {
    const [, , , cpu, gpu, mem, cost] = line.split(',');
    sums = {
      cpu: sums.cpu.plus(cpu as string),
      gpu: sums.gpu.plus(gpu as string),
      mem: sums.mem.plus(mem as string),
      cost: sums.cost.plus(cost as string),
    };
  }
});
afterAll(() => db?.drop());

/** The receipt's "Hours billed" fact. */
const hoursBilledOf = (html: string) => /<dt>Hours billed<\/dt><dd class="receipt-hours">([^<]*)<\/dd>/.exec(html)?.[1];

const grouped = (value: Prisma.Decimal) => {
  const [whole, fraction] = value.toFixed(6).split('.');
  return `${(whole as string).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
};

describe("a receipt's hours billed", () => {
  it('are the CPU, GPU and memory hours of every page of its jobs, beside the total that adds up their costs', async () => {
    expect(sums.cost.toFixed(2)).toBe(total);
    expect(sums.gpu.greaterThan(0)).toBe(true);
    const expected = `CPU core ${grouped(sums.cpu)} h · GPU ${grouped(sums.gpu)} h · memory GB ${grouped(sums.mem)} h`;
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}?page=2`],
      [alice, `/me/receipts/${id}/print`],
      [admin, `/admin/receipts/${id}?page=3`],
      [admin, `/admin/receipts/${id}/print`],
    ] as const) {
      const page = await agent.get(path).set('Accept', 'text/html').expect(200);
      expect(hoursBilledOf(page.text), path).toBe(expected);
    }
  });

  it('is in the JSON too, as decimal strings to six places', async () => {
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}`],
      [admin, `/admin/receipts/${id}`],
    ] as const) {
      const json = await agent.get(path).set('Accept', 'application/json').expect(200);
      expect(json.body.receipt.hours, path).toEqual({
        cpu: sums.cpu.toFixed(6),
        gpu: sums.gpu.toFixed(6),
        mem: sums.mem.toFixed(6),
      });
    }
  });
});

describe("a receipt's period", () => {
  it('starts when its first job ended, on every page, the printout and the JSON', async () => {
    // The first of the 1,200 jobs ended 2025-09-01 00:00 UTC, 07:00 in Bangkok.
    const expected =
      '<dt>Jobs ended from</dt><dd><span><span class="nowrap">2025-09-01</span> <span class="nowrap">07:00</span></span> (its first job, Asia/Bangkok)</dd>';
    for (const [agent, path] of [
      [alice, `/me/receipts/${id}?page=3`],
      [alice, `/me/receipts/${id}/print`],
      [admin, `/admin/receipts/${id}?page=2`],
    ] as const) {
      const page = await agent.get(path).set('Accept', 'text/html').expect(200);
      expect(page.text, path).toContain(expected);
    }
    const json = await alice.get(`/me/receipts/${id}`).set('Accept', 'application/json').expect(200);
    expect(json.body.receipt.firstJobEndedAt).toBe('2025-09-01T00:00:00.000Z');
  });
});
