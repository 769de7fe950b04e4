import { Prisma } from '@prisma/client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { researcherWithReceiptOf } from '../support/receipt-steps.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * The same rate read "0.5" on a receipt, My usage and the admin's Rates history, and "0.50" in
 * /formula and every JSON answer: a researcher comparing their receipt with the price list asked
 * which was right. Pages now write a rate as JSON does, with at least the currency's decimals and
 * every digit stored (0.50, 12.00, 0.123456).
 */
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let admin: Agent;
let researcher: Agent;
let receiptId: number;
let yen: { agent: Agent; receiptId: number };

beforeAll(async () => {
  db = await createTestDatabase();
  // mu (the default): 0.50, 12.00, 0.05, stored as 0.5, 12, 0.05.
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'treasurer', role: 'admin', password: 'treasurer-password' });
  // yen: rates of four digits and more, in a currency without decimals; yen-* users are on it.
  await buildTiers(db, [{ name: 'yen', cpu: '1500', gpu: '12345.5', mem: '2' }], 'JPY');
  app = buildTestApp(db, { env: { PRICING_TIER_RULES: '[{"pattern":"^yen-","tier":"yen"}]' } });
  admin = await signInAs(app, 'treasurer', 'treasurer-password');
  ({ agent: researcher, receiptId } = await researcherWithReceiptOf(app, db, 'rita', 2));
  yen = await researcherWithReceiptOf(app, db, 'yen-ken', 2);
  // A rate finer than the currency's minor unit keeps every digit.
  const gov = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'gov' } });
  await db.prisma.pricingRate.updateMany({
    where: { tierId: gov.id },
    data: { cpuPerHour: new Prisma.Decimal('0.123456') },
  });
});
afterAll(() => db?.drop());

const text = async (agent: Agent | ReturnType<typeof request>, path: string) =>
  visibleTextOf((await agent.get(path).set('Accept', 'text/html').expect(200)).text);

describe('a rate on the pages', () => {
  it('reads as /formula writes it on the price list', async () => {
    const formula = (await request(app).get('/formula').expect(200)).body.rates;
    expect(formula).toEqual({ cpu: '0.50', gpu: '12.00', mem: '0.05' });
    const list = await text(request(app), '/rates');
    expect(list).toContain('0.50 12.00 0.05 THB');
    expect(list).toContain('0.123456 18.00 0.08 THB');
  });

  it("reads the same on the admin's Rates history", async () => {
    expect(await text(admin, '/admin/rates')).toMatch(/\(current\) 0\.50 12\.00 0\.05 THB/);
  });

  it('reads the same on My usage and on a receipt, printed or not', async () => {
    expect(await text(researcher, '/me')).toContain(
      'rates: CPU 0.50 THB per core-hour, GPU 12.00 THB per GPU-hour, memory 0.05 THB per GB-hour.',
    );
    for (const path of [
      `/me/receipts/${receiptId}`,
      `/me/receipts/${receiptId}/print`,
      `/admin/receipts/${receiptId}`,
    ]) {
      const agent = path.startsWith('/admin') ? admin : researcher;
      expect(await text(agent, path)).toContain('Rates per hour CPU core 0.50 · GPU 12.00 · memory GB 0.05 THB');
    }
  });
});

/**
 * A rate of 1500 read "1500" on the pages beside totals of "1,500": the pages wrote a rate without the
 * thousands separators money has there. They group a rate's digits as they do a total's; /formula, the
 * JSON answers and the CSVs, read by programs, keep them ungrouped.
 */
describe('a rate of four digits and more on the pages', () => {
  it('is grouped by thousands on the price list and the Rates history, and not in /formula', async () => {
    expect((await request(app).get('/formula?type=yen').expect(200)).body.rates).toEqual({
      cpu: '1500',
      gpu: '12345.5',
      mem: '2',
    });
    expect(await text(request(app), '/rates')).toContain('1,500 12,345.5 2 JPY');
    expect(await text(admin, '/admin/rates')).toMatch(/\(current\) 1,500 12,345\.5 2 JPY/);
  });

  it('is grouped on My usage and on a receipt, printed or not, beside its total, and not in its JSON', async () => {
    expect(await text(yen.agent, '/me')).toContain(
      'rates: CPU 1,500 JPY per core-hour, GPU 12,345.5 JPY per GPU-hour, memory 2 JPY per GB-hour.',
    );
    for (const path of [
      `/me/receipts/${yen.receiptId}`,
      `/me/receipts/${yen.receiptId}/print`,
      `/admin/receipts/${yen.receiptId}`,
    ]) {
      const agent = path.startsWith('/admin') ? admin : yen.agent;
      const page = await text(agent, path);
      expect(page).toContain('Rates per hour CPU core 1,500 · GPU 12,345.5 · memory GB 2 JPY');
      expect(page).toContain('3,000');
    }
    const json = await yen.agent.get(`/me/receipts/${yen.receiptId}`).set('Accept', 'application/json').expect(200);
    expect(JSON.stringify(json.body)).toContain('"1500"');
    expect(JSON.stringify(json.body)).not.toContain('1,500');
  });
});
