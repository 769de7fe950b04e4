import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpBillingApp } from '../support/billing-app.js';
import { buildJobs, buildReceiptRow } from '../support/billing-factories.js';
import { DUMMY_PAYMENTS_ENV } from '../support/dummy-payments.js';
import { buildUser } from '../support/factories.js';
import { monthEndRunPathOf, waitForMonthEndRun } from '../support/month-end.js';
import { type Agent, csrfTokenOf } from '../support/sign-in.js';
import type { TestDatabase } from '../support/test-database.js';

/**
 * Links whose visible text is a bare number ("#12") read just "#12" to a screen reader listing the
 * page's links, with nothing to say what they open (WCAG 2.4.4). Each is named for what it opens
 * ("Receipt #12", "Month-end run #4"), a name that holds the visible text (2.5.3), which is unchanged.
 */
let db: TestDatabase;
let admin: Agent;
beforeAll(async () => {
  ({ db, admin } = await setUpBillingApp('linknames-admin', { env: DUMMY_PAYMENTS_ENV }));
});
afterAll(() => db?.drop());

const html = (path: string) => admin.get(path).set('Accept', 'text/html').expect(200);

describe('links that read a bare "#N" are named for what they open', () => {
  it('the admin payments page\'s row names its receipt link "Receipt #N"', async () => {
    const researcher = await buildUser(db.prisma, {});
    const receipt = await buildReceiptRow(db, researcher.username);
    await db.prisma.payment.create({
      data: {
        receiptId: receipt.id,
        provider: 'dummy',
        status: 'failed',
        amountMinor: 50,
        currency: 'THB',
        externalPaymentId: 'link-names-1',
        idempotencyKey: 'link-names-1',
      },
    });
    const page = await html('/admin/payments');
    expect(page.text).toContain(
      `<td data-label="Receipt"><span><a href="/admin/receipts/${receipt.id}" aria-label="Receipt #${receipt.id}">#${receipt.id}</a> (pending)</span></td>`,
    );
  });

  it('the month-end run page, the billing page\'s "Last run" and the list of runs name theirs', async () => {
    await buildUser(db.prisma, { username: 'gone', isDisabled: true });
    await buildJobs(db, [{ user: 'gone', end: '2025-08-21T03:00:00Z', elapsedSec: 3600, allocCpus: 2 }]);
    const started = await admin
      .post('/admin/month-end')
      .set('Accept', 'text/html')
      .type('form')
      .send({ before: '2025-08-31', csrf_token: await csrfTokenOf(admin, '/admin/receipts') });
    const path = monthEndRunPathOf(started);
    const run = await waitForMonthEndRun(admin, path);
    expect(run.disabledUsersBilled).toHaveLength(1);
    const receiptId = run.disabledUsersBilled[0]?.receiptId;
    const runId = run.id;

    // The run's page: the receipt of each disabled user it billed.
    expect((await html(path)).text).toContain(
      `<td><a href="/admin/receipts/${receiptId}" aria-label="Receipt #${receiptId}">#${receiptId}</a></td>`,
    );
    // The billing page's "Last run: #N".
    expect((await html('/admin/receipts')).text).toContain(
      `Last run: <a href="${path}" aria-label="Month-end run #${runId}">#${runId}</a> up to 2025-08-31`,
    );
    // The list of runs.
    expect((await html('/admin/month-end')).text).toContain(
      `<td data-label="Run"><a href="${path}" aria-label="Month-end run #${runId}">#${runId}</a></td>`,
    );
  });
});
