import { Prisma } from '@prisma/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// A tier with rates scheduled for later (inserted with SQL, docs/pricing.md "Scheduled rates"):
// rates set from the page before then are replaced by the scheduled ones when their time comes.
// The page said only "Rates of mu saved; they apply from now.", and the admin who lowered a price
// for good saw it go up again on the scheduled day.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
let ops: Agent;
const SCHEDULED_AT = new Date('2099-01-01T00:00:00Z');

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  const mu = await db.prisma.pricingTier.findUniqueOrThrow({ where: { name: 'mu' } });
  await db.prisma.pricingRate.create({
    data: {
      tierId: mu.id,
      cpuPerHour: new Prisma.Decimal('0.9'),
      gpuPerHour: new Prisma.Decimal('20'),
      memPerHour: new Prisma.Decimal('0.09'),
      currency: 'THB',
      effectiveFrom: SCHEDULED_AT,
      createdBy: 'ops (SQL)',
    },
  });
  await buildUser(db.prisma, { username: 'ops', role: 'admin', password: 'ops-password-123' });
  app = buildTestApp(db, { env: { PRICING_CACHE_CHECK_MS: '0' } });
  ops = await signInAs(app, 'ops', 'ops-password-123');
});
afterAll(() => db?.drop());

const UNTIL =
  'Rates of mu saved; they apply from now until 2099-01-01 00:00, when the rates scheduled then by ops (SQL) take ' +
  'over (CPU core-hour 0.90, GPU-hour 20.00, Memory GB-hour 0.09): delete that scheduled row to keep these.';

describe('rates set before rates scheduled for later', () => {
  it('say until when they apply and what takes over, on the page and in JSON', async () => {
    const token = await csrfTokenOf(ops);
    await ops
      .post('/admin/rates')
      .type('form')
      .send({ type: 'mu', cpu: '0.4', gpu: '12', mem: '0.05', csrf_token: token })
      .expect(303);
    const page = (await ops.get('/admin/rates').set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(UNTIL);

    const json = await ops
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', token)
      .send({ type: 'mu', cpu: '0.3', gpu: '12', mem: '0.05' });
    expect(json.status).toBe(200);
    expect(json.body.message).toBe(UNTIL);
    expect(json.body.updated).toMatchObject({
      isChanged: true,
      scheduled: { cpu: '0.90', gpu: '20.00', mem: '0.09', currency: 'THB', effectiveFrom: SCHEDULED_AT.toISOString() },
    });
  });

  it('say nothing of the kind for a tier with none scheduled', async () => {
    const json = await ops
      .post('/formula')
      .set('Accept', 'application/json')
      .set('X-CSRFToken', await csrfTokenOf(ops))
      .send({ type: 'gov', cpu: '0.7', gpu: '18', mem: '0.08' });
    expect(json.body.message).toBe('Rates of gov saved; they apply from now.');
    expect(json.body.updated.scheduled).toBeNull();
  });
});
