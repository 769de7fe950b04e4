import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/modules/audit/audit.service.js';
import { buildTiers } from '../support/billing-factories.js';
import { buildUser } from '../support/factories.js';
import { type Agent, signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// The audit log's Actor filter and the billing page's User filter matched a whole name: part of one ("fin"
// for finance) found nothing and said only "No entries match.", which reads as "never happened". Both now
// match part of one in any case (admin-receipts-user-filter, audit-actor-filter), and an empty answer
// still says what it looked for.
let db: TestDatabase;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  admin = await signInAs(buildTestApp(db), 'finance', 'finance-password');
});
afterAll(() => db?.drop());

const page = async (path: string) => (await admin.get(path).set('Accept', 'text/html').expect(200)).text;

describe('a filter that matches whole names, given part of one', () => {
  it('says what the billing page looked for (part of a name there, in any case)', async () => {
    expect(await page('/admin/receipts?user=ali')).toContain(
      'No receipts match. No receipt is for a username containing “ali” (in any case).',
    );
    // Without a user filter, nothing to explain.
    expect(await page('/admin/receipts?status=void')).toContain('No receipts match.</td>');
  });

  it('says what the audit log’s Actor filter looked for (part of a name there too, in any case)', async () => {
    await recordAudit(db, { actor: 'finance', ip: null, userAgent: null, action: 'test.hint', status: 'ok' });
    expect(await page('/admin/audit?actor=zed')).toContain(
      'No entries match. No entry is by an actor containing “zed” (in any case).',
    );
    expect(await page('/admin/audit?actor=fin')).toContain('<td data-label="Action">test.hint</td>');
    expect(await page('/admin/audit?actor=finance')).toContain('<td data-label="Action">test.hint</td>');
    // An action no entry has is still shown as the one chosen, not as "any" while it filters.
    const unknownAction = await page('/admin/audit?action=nothing.such');
    expect(unknownAction).toContain('No entries match.</td>');
    expect(unknownAction).toContain('<option value="nothing.such" selected>nothing.such</option>');
    expect(unknownAction).not.toMatch(/<option value="" selected/);
  });
});
