import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTiers } from '../support/billing-factories.js';
import { countQueriesDuring } from '../support/count-queries.js';
import { buildUser } from '../support/factories.js';
import { visibleTextOf } from '../support/html.js';
import { createPaidCsvStory } from '../support/paid-csv-story.js';
import { signInAs } from '../support/sign-in.js';
import { buildTestApp } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createVoidedMoneyStory } from '../support/voided-money-story.js';

// A finance review read stayingOfVoidedMoney (every load of /admin/receipts) as one findMoneySource per
// receipt paid with a voided receipt's money, a few statements each, walking each one's chain. It is not:
// the calls start together and Prisma batches findUnique calls of one shape made in the same tick into one
// `WHERE id IN (...)`, one per step of the chains. Measured: 23 statements for one such receipt and for
// five (chains of two); with the source read by findFirst instead (not batched), 35 against 19 for chains
// of one. This keeps it so.
let db: TestDatabase;
let app: ReturnType<typeof buildTestApp>;
const MANY = ['manya', 'manyb', 'manyc', 'manyd', 'manye'];

beforeAll(async () => {
  db = await createTestDatabase();
  await buildTiers(db);
  for (const username of ['solo', ...MANY, 'plain', 'topup']) {
    await buildUser(db.prisma, { username, password: `${username}-password` });
  }
  await buildUser(db.prisma, { username: 'finance', role: 'admin', password: 'finance-password' });
  app = buildTestApp(db, { env: { APP_TZ: 'Asia/Bangkok' }, now: () => new Date('2025-09-05T03:00:00Z') });
});
afterAll(() => db?.drop());

const signIn = (username: string) => signInAs(app, username, `${username}-password`);
const { billEverything } = createPaidCsvStory(() => db);
const { post, billedAgainAfterHandPaidVoid } = createVoidedMoneyStory(() => db, signIn);

/**
 * A receipt paid by hand, voided, its job billed again and that receipt paid with the voided one's
 * money, voided in turn and its job billed a third time, paid with that money: a chain of two.
 */
async function paidWithVoidedMoney(username: string) {
  const { admin, researcher, first, again } = await billedAgainAfterHandPaidVoid(username, 'mu', 'mu');
  const markPaidWith = async (receiptId: number, moneyOf: number) => {
    const marked = await post(admin, `/admin/receipts/${receiptId}/paid`, {
      method: 'bank_transfer',
      amount_received: '0.50',
      paid_with_receipt: String(moneyOf),
    });
    expect(marked.status, marked.text).toBe(200);
  };
  await markPaidWith(again, first);
  const voided = await post(admin, `/admin/receipts/${again}/void`, { reason: 'billed twice' });
  expect(voided.status, voided.text).toBe(200);
  const third = await billEverything(researcher);
  await markPaidWith(third, again);
  return third;
}

describe('/admin/receipts with receipts paid with the money of voided receipts', () => {
  it('sends as many queries for five of them as for one', async () => {
    await paidWithVoidedMoney('solo');
    for (const username of MANY) await paidWithVoidedMoney(username);
    const admin = await signIn('finance');

    const read = async (user: string) => {
      let body: { count: number; receipts: { status: string }[] } = { count: 0, receipts: [] };
      const queries = await countQueriesDuring(db.pool, async () => {
        body = (await admin.get(`/admin/receipts?user=${user}`).set('Accept', 'application/json').expect(200)).body;
      });
      return { queries, paid: body.receipts.filter((receipt) => receipt.status === 'paid').length };
    };
    const one = await read('solo');
    const five = await read('many');
    expect(one.paid).toBe(1);
    expect(five.paid).toBe(5);
    expect(five.queries).toBe(one.queries);
  });
});

// The row of a receipt paid with a voided receipt's money said only "bank transfer", as if new money had
// come in; its page names that receipt ("with the money of receipt #N (voided)"). The row names it too,
// from the row's own column: no query more, however many such rows (the test above counts them).
describe('the /admin/receipts row of a receipt paid with the money of a voided receipt', () => {
  it('names that voided receipt, as its page does', async () => {
    const admin = await signIn('finance');
    const rowsOf = async (user: string) =>
      (await admin.get(`/admin/receipts?user=${user}`).set('Accept', 'text/html').expect(200)).text.split('<tr');
    const paidCell = (rows: string[], receiptId: number) =>
      visibleTextOf(
        /<td data-label="Paid">([\s\S]*?)<\/td>/.exec(
          rows.find((row) => row.includes(`aria-label="Receipt #${receiptId}"`)) ?? '',
        )?.[1] ?? '',
      );
    const [third, again] = await db.prisma.receipt.findMany({
      where: { username: 'solo', paidWithReceiptId: { not: null } },
      orderBy: { id: 'desc' },
    });
    if (!third || !again) throw new Error('the story of solo has two receipts paid with voided money');
    const rows = await rowsOf('solo');
    // Paid, and voided after it was paid: each names the receipt whose money paid it.
    expect(paidCell(rows, third.id)).toMatch(
      new RegExp(`^[\\d-]+ · bank transfer · with the money of receipt #${again.id} \\(voided\\)$`),
    );
    expect(paidCell(rows, again.id)).toMatch(
      new RegExp(
        `^voided [\\d-]+ was paid [\\d-]+ · bank transfer · with the money of receipt #${again.paidWithReceiptId} \\(voided\\)$`,
      ),
    );
    expect(rows.find((row) => row.includes(`aria-label="Receipt #${third.id}"`))).toContain(
      `<a href="/admin/receipts/${again.id}">#${again.id}</a>`,
    );
  });
});

// A receipt paid with a voided receipt's money plus new money for the rest (a top-up): its row named
// the voided receipt alone, so the new money that came in for it was nowhere on the list; its page
// says both parts. The row says them too, from its own total and new_money_received: no query more.
describe("the /admin/receipts row of a receipt paid with a voided receipt's money plus new money", () => {
  /** A receipt billed at gov after one at mu was paid by hand and voided, paid with that money (and `newMoney`). */
  async function paidWith(username: string, newMoney?: string) {
    const { admin, first, again } = await billedAgainAfterHandPaidVoid(username, 'mu', newMoney ? 'gov' : 'mu');
    const marked = await post(admin, `/admin/receipts/${again}/paid`, {
      method: 'bank_transfer',
      amount_received: newMoney ? '0.80' : '0.50',
      paid_with_receipt: String(first),
      ...(newMoney ? { new_money: newMoney, tx_ref: 'BT-TOPUP' } : {}),
    });
    expect(marked.status, marked.text).toBe(200);
    return { first, again };
  }

  it('says both parts, as its page does, with no query more than a row paid with that money alone', async () => {
    const plain = await paidWith('plain');
    const topUp = await paidWith('topup', '0.30');
    const admin = await signIn('finance');
    const paidCellOf = async (user: string, receiptId: number) => {
      const rows = (await admin.get(`/admin/receipts?user=${user}`).set('Accept', 'text/html').expect(200)).text;
      const row = rows.split('<tr').find((html) => html.includes(`aria-label="Receipt #${receiptId}"`)) ?? '';
      return visibleTextOf(/<td data-label="Paid">([\s\S]*?)<\/td>/.exec(row)?.[1] ?? '');
    };
    expect(await paidCellOf('topup', topUp.again)).toMatch(
      new RegExp(
        `^[\\d-]+ · bank transfer · with the money of receipt #${topUp.first} \\(voided\\), 0\\.50 THB, and 0\\.30 THB new money, ref BT-TOPUP$`,
      ),
    );
    // Paid with that money alone, the row is as it was.
    expect(await paidCellOf('plain', plain.again)).toMatch(
      new RegExp(`^[\\d-]+ · bank transfer · with the money of receipt #${plain.first} \\(voided\\)$`),
    );

    const queriesOf = (user: string) =>
      countQueriesDuring(db.pool, () =>
        admin.get(`/admin/receipts?user=${user}`).set('Accept', 'text/html').expect(200),
      );
    expect(await queriesOf('topup')).toBe(await queriesOf('plain'));

    // Voided in turn, its row says how it was paid under "was paid", both parts still.
    expect((await post(admin, `/admin/receipts/${topUp.again}/void`, { reason: 'billed twice' })).status).toBe(200);
    expect(await paidCellOf('topup', topUp.again)).toMatch(
      new RegExp(
        `^voided [\\d-]+ was paid [\\d-]+ · bank transfer · with the money of receipt #${topUp.first} \\(voided\\), 0\\.50 THB, and 0\\.30 THB new money, ref BT-TOPUP$`,
      ),
    );
  });
});
