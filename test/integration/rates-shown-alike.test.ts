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

beforeAll(async () => {
  db = await createTestDatabase();
  // mu (the default): 0.50, 12.00, 0.05, stored as 0.5, 12, 0.05.
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'treasurer', role: 'admin', password: 'treasurer-password' });
  app = buildTestApp(db);
  admin = await signInAs(app, 'treasurer', 'treasurer-password');
  ({ agent: researcher, receiptId } = await researcherWithReceiptOf(app, db, 'rita', 2));
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
