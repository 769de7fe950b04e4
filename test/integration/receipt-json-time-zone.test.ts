import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJobs, buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { waitForMonthEndRun } from '../support/month-end.js';
import { billJobs } from '../support/receipt-steps.js';
import { type Agent, csrfTokenOf, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A receipt's `before` (the day its jobs ended up to), the receipt filters' `start`/`end` and a
 * month-end run's `before` are days of APP_TZ. My usage, Usage across users, the audit log and the
 * ingestion page name that zone in their JSON (`timeZone`); the receipts' and month-end runs' JSON did
 * not, so a script reading `"before":"2026-01-31"` could not tell which midnight ended it.
 */
let db: TestDatabase;
let admin: Agent;
let researcher: Agent;
let receiptId: number;
let runUrl: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'chief', role: 'admin', password: 'chief-password' });
  await buildUser(db.prisma, { username: 'rae', password: 'rae-password' });
  await buildUser(db.prisma, { username: 'sol', password: 'sol-password' });
  await buildJobs(db, [
    { user: 'rae', end: '2026-01-10T10:00:00Z' },
    { user: 'sol', end: '2026-01-11T10:00:00Z' },
  ]);
  const app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' } });
  admin = await signInAs(app, 'chief', 'chief-password');
  researcher = await signInAs(app, 'rae', 'rae-password');
  receiptId = await billJobs(researcher, '2026-01-31');
  const started = await admin
    .post('/admin/month-end')
    .set('Accept', 'application/json')
    .set('X-CSRFToken', await csrfTokenOf(admin))
    .send({ before: '2026-01-31' });
  expect(started.status, started.text).toBe(202);
  runUrl = started.body.statusUrl;
  await waitForMonthEndRun(admin, runUrl);
});
afterAll(() => db?.drop());

describe('the JSON of receipts and month-end runs names the zone of its days', () => {
  it.each([
    ['/me/receipts', () => researcher],
    ['/me/receipts/:id', () => researcher],
    ['/admin/receipts', () => admin],
    ['/admin/receipts/:id', () => admin],
    ['/admin/month-end', () => admin],
    ['/admin/month-end/:id', () => admin],
  ])('%s has timeZone', async (route, agentOf) => {
    const path = route === '/admin/month-end/:id' ? runUrl : route.replace(':id', String(receiptId));
    const answer = await agentOf().get(path).set('Accept', 'application/json').expect(200);
    expect(answer.body.timeZone).toBe('Asia/Bangkok');
  });
});
