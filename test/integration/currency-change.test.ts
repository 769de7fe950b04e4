import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDatabase } from '../../src/bootstrap.js';
import { describeRatesInOtherCurrency } from '../../src/modules/pricing/rates.service.js';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp, buildTestConfig } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  // Rates entered while CURRENCY was JPY; the app now runs with the default, THB.
  await buildTiers(db, undefined, 'JPY');
  await buildUser(db.prisma, { username: 'cfo', role: 'admin', password: 'cfo-password' });
});
afterAll(() => db?.drop());

const WARNING_OF_ALL =
  'CURRENCY is THB, but the rates in force for gov (JPY), mu (JPY), private (JPY) were entered in another currency';

describe('CURRENCY changed after rates were entered', () => {
  it('is logged as a warning at start-up, naming the tiers', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _encoding, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    await (await prepareDatabase(buildTestConfig(db.url), logger)).stop();
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringContaining(WARNING_OF_ALL) })]);
    expect(lines[0]?.msg).toContain(
      'receipts and /formula keep that currency, while the usage pages show those costs as THB',
    );
    expect(await describeRatesInOtherCurrency(db.prisma, 'JPY', new Date())).toBeUndefined();
  });

  it('is shown on the rates page until each tier is saved again in CURRENCY', async () => {
    const admin = await signInAs(buildTestApp(db), 'cfo', 'cfo-password');
    const page = await admin.get('/admin/rates').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain(
      "The rates in force for mu (JPY), gov (JPY), private (JPY) were entered in another currency than this site's, THB (CURRENCY was changed since): receipts and /formula keep their currency, while the usage pages show those costs as THB.",
    );
    await admin
      .post('/admin/rates')
      .type('form')
      .send({
        type: 'mu',
        cpu: '0.50',
        gpu: '12.00',
        mem: '0.05',
        csrf_token: await csrfTokenOf(admin, '/admin/rates'),
      })
      .expect(303);
    // The same figures, now recorded in THB: a change, not "already these".
    const saved = await admin.get('/admin/rates').set('Accept', 'text/html').expect(200);
    expect(saved.text).toContain('Rates of mu saved');
    // The audit entry says what changed: the currency, where the figures alone read as 0.5 -> 0.5.
    const audit = await db.prisma.auditLog.findFirstOrThrow({
      where: { action: 'pricing.rates.set', target: 'tier:mu' },
      orderBy: { id: 'desc' },
    });
    expect(audit.details).toMatchObject({
      previous: { cpu: '0.5', gpu: '12', mem: '0.05', currency: 'JPY' },
      next: { cpu: '0.5', gpu: '12', mem: '0.05', currency: 'THB' },
    });
    expect(saved.text).toContain('The rates in force for gov (JPY), private (JPY) were entered');
    expect(await describeRatesInOtherCurrency(db.prisma, 'THB', new Date())).toContain(
      'the rates in force for gov (JPY), private (JPY) were entered',
    );
  });
});

describe('usage CSVs after CURRENCY changed', () => {
  it('name the currency the usage page shows the costs in, not the rates', async () => {
    await buildUser(db.prisma, { username: 'yuki', password: 'yuki-password' });
    await buildJobs(db, [{ user: 'yuki', end: '2025-09-18T03:00:00Z', allocCpus: 2 }]);
    const yuki = await signInAs(buildTestApp(db), 'yuki', 'yuki-password');
    const window = 'start=2025-09-14&end=2025-09-20';
    const page = await yuki.get(`/me?${window}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Cost (THB)');
    const csv = (await yuki.get(`/me.csv?${window}`).expect(200)).text.trimEnd().split('\n');
    expect(csv[0]?.endsWith(',currency,tier_basis')).toBe(true);
    expect(csv.slice(1)).toEqual([expect.stringMatching(/^\d+,test,.*,yuki,.*,THB,current$/)]);
    const admin = await signInAs(buildTestApp(db), 'cfo', 'cfo-password');
    const all = (await admin.get(`/admin/usage.csv?${window}`).expect(200)).text.trimEnd().split('\n');
    expect(all.slice(1)).toEqual(csv.slice(1));
  });
});
