import type { Prisma } from '@prisma/client';
import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import { type CsvExports, ZCsvExportQuery } from '../../http/csv-exports.js';
import { getDownload, receiptPageOf } from '../../http/download-page.js';
import { prefersJson } from '../../http/error-handler.js';
import { moneyJson } from '../../http/json-money.js';
import { linkTo, olderNewerLinks } from '../../http/page-links.js';
import {
  answerChange,
  answeredHeadWithoutWork,
  answerHeadWithoutWork,
  type BackLink,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import { invalidFieldsOf, readableMessageOf } from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import { PAID_WINDOW_FIELD_LABELS, type TWindowQuery, ZPaidExportQuery } from '../usage/usage.schema.js';
import { PAID_CSV_COLUMNS, type UsageService } from '../usage/usage.service.js';
import {
  describeMonthEndRun,
  MonthEndInProgressError,
  type MonthEndRunView,
  monthEndRunUrl,
} from './month-end.service.js';
import {
  backToReceipt,
  billedAgainJson,
  checkPrintPageAsked,
  describeHandMoneyOnline,
  describeMoneyNotTotal,
  describePaidByHand,
  isShortOfTotal,
  pagesAsked,
  paidWithReceiptJson,
  printableHasNoJson,
  receiptFactsJson,
  receiptPageAsked,
  receiptWithItemsJson,
  sendPrintableReceipt,
  voidedPaidByHandJson,
  voidedPaidByHandView,
} from './receipts.routes.js';
import {
  PAYMENT_METHODS,
  type TReceiptFilter,
  ZCreateReceipt,
  ZMarkPaid,
  ZMonthEndRunId,
  ZMonthEndRunPagesQuery,
  ZMonthEndRunsQuery,
  ZReceiptFilter,
  ZReceiptId,
  ZReceiptItemsCsvQuery,
  ZVoidReceipt,
} from './receipts.schema.js';
import {
  ADMIN_RECEIPTS_CSV_COLUMNS,
  type DismissedPayment,
  paidByHandRecord,
  RECEIPT_ITEMS_CSV_COLUMNS,
  type ReceiptsService,
  UnknownRunFilterError,
} from './receipts.service.js';

const REFUSALS = [400, 409];
/** A mark paid is also refused (422) for an amount received that is not the receipt's total. */
const MARK_PAID_REFUSALS = [...REFUSALS, 422];

/**
 * The mark-paid route, whose JSON keeps each number's text (app.ts mounts the lossless parser for
 * it): an amount received sent as a JSON number is judged by the digits the client wrote, never a float.
 */
export const MARK_PAID_PATH = '/admin/receipts/:id/paid';

/**
 * Where a receipt that cannot be shown or changed (not found, a bad id, a form posted to one deleted since)
 * sends the admin: the list that finds it.
 */
const BILLING: BackLink = { href: '/admin/receipts', text: 'Open Billing' };

/** Where a month-end run that cannot be shown (not found, a bad id, a page past the last) sends the admin. */
const MONTH_END_RUNS: BackLink = { href: '/admin/month-end', text: 'Open Month-end runs' };

/** What a void or a mark-paid did to the receipt's open online checkouts, for the admin's flash. */
function describeCanceledCheckouts(paymentIds: number[]): string {
  if (paymentIds.length === 0) return '';
  const payments = paymentIds.map((id) => `#${id}`).join(', ');
  return (
    ` Its open online checkout (payment ${payments}) was canceled; money paid there from now on is held for review ` +
    'on the payments page.'
  );
}

/**
 * A sentence for each online payment of a receipt paid by hand that an admin dismissed: the
 * provider took that money, which may be what the hand-recorded payment stands for.
 */
function describeDismissedPayments(payments: DismissedPayment[], fmt: ViewFormatters): string {
  return payments
    .map((payment) => {
      const took = payment.received
        ? `received ${fmt.money(payment.received.amount, payment.received.currency)} ${payment.received.currency}`
        : 'took an amount the provider did not report';
      const by = payment.reviewedBy ? ` by ${payment.reviewedBy}` : '';
      const note = payment.reviewNote ? ` ("${fmt.visibleText(payment.reviewNote)}")` : '';
      return (
        `Online payment #${payment.id} of this receipt ${took} and was dismissed${by}${note}: if its money is what ` +
        'paid this receipt, refund it at the provider or apply it elsewhere.'
      );
    })
    .join(' ');
}

/** " (1.00 THB received)": what a held payment received, when the provider said. */
function describeReceived(
  payment: { received: { amount: Prisma.Decimal; currency: string } | null; isAllGone?: boolean },
  fmt: ViewFormatters,
): string {
  return payment.received
    ? ` (${fmt.money(payment.received.amount, payment.received.currency)} ${payment.received.currency} received${
        payment.isAllGone ? ', all of it gone back to the payer since' : ''
      })`
    : '';
}

/**
 * The receipt's online payments that were held for review when it was voided: their money can no
 * longer be accepted for it, and its jobs are billed again, so the admin must settle it.
 */
function describeAlreadyHeld(
  payments: { id: number; received: { amount: Prisma.Decimal; currency: string } | null; isAllGone: boolean }[],
  fmt: ViewFormatters,
): string {
  return payments
    .map((payment) => {
      // All of its money gone back already (refunded in full, a dispute keeping it held): no second refund.
      return payment.isAllGone
        ? ` Payment #${payment.id}${describeReceived(payment, fmt)} was held for review and can no longer be accepted for this receipt; ` +
            'none of its money is left to refund or apply elsewhere: do not refund it again, and resolve it on the payments ' +
            'page once the provider has nothing more open on it.'
        : ` Payment #${payment.id}${describeReceived(payment, fmt)} was held for review and can no longer be accepted for this receipt: ` +
            'refund it or apply it elsewhere, then resolve it on the payments page.';
    })
    .join('');
}

/**
 * How often a running month-end run's page reloads itself without JavaScript (in <noscript>); with it,
 * public/js/month-end-wait.js asks for the run's JSON as often and writes its counts in place.
 */
const MONTH_END_REFRESH_SEC = 2;

/**
 * What a month-end run's page and JSON say of its result: the run's summary (receipts, total,
 * skipped users) once it has ended, then why it stopped if it did not succeed.
 */
function summaryOf(run: MonthEndRunView, fmt: ViewFormatters): string | null {
  if (run.isRunning) return null;
  const summary = describeMonthEndRun(run, (total, currency) => fmt.money(total, currency));
  return run.error ? `${run.error} So far: ${summary}` : summary;
}

/** A month-end run as JSON: the fields its page shows, dates as ISO 8601 and money as text at the currency's scale. */
function monthEndRunJson(run: MonthEndRunView, fmt: ViewFormatters) {
  return {
    id: run.id,
    url: run.url,
    outcome: run.outcome,
    before: run.before,
    startedBy: run.startedBy,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    usersTotal: run.usersTotal,
    usersDone: run.usersDone,
    receiptCount: run.receiptCount,
    noChargeCount: run.noChargeCount,
    receiptsUrl: run.receiptsUrl,
    totals: run.totals.map((total) => ({ currency: total.currency, total: moneyJson(total.total, total.currency) })),
    skipped: run.skipped,
    disabledUsersBilled: run.disabledUsersBilled.map((billed) => ({
      username: billed.username,
      receiptId: billed.receiptId,
      receiptUrl: `/admin/receipts/${billed.receiptId}`,
      total: moneyJson(billed.total, billed.currency),
      currency: billed.currency,
      status: billed.status,
    })),
    // Jobs ended by `before` that it left out because they have not finished (billed once they do), in all
    // and by user; null for a run made before runs counted them, or stopped before listing its users.
    unfinishedJobCount:
      run.unfinishedJobs === null ? null : run.unfinishedJobs.reduce((sum, user) => sum + user.count, 0),
    unfinishedJobsByUser:
      run.unfinishedJobs === null
        ? null
        : run.unfinishedJobs.map((user) => ({ username: user.username, unfinishedJobCount: user.count })),
    error: run.error,
    message: summaryOf(run, fmt),
  };
}

type AdminReceiptList = Awaited<ReturnType<ReceiptsService['listForAdmin']>>;

/** The filters of the billing list's query, without where its page starts: what its links keep. */
function filtersOf(filter: TReceiptFilter) {
  return { status: filter.status, user: filter.user, start: filter.start, end: filter.end, run: filter.run };
}

/**
 * The billing page's list as JSON: the filters applied, the page of receipts (each written as
 * /me/receipts writes it, with its user, how it was paid and, when that differs from its total,
 * what it brought in net of refunds and lost disputes, as receivedNetOfRefunds), the paging, the
 * usernames a User filter matched (null without one) and the others containing a whole name it
 * matched, and the cards' totals under the filters.
 */
function adminReceiptsJson(filter: TReceiptFilter, list: AdminReceiptList) {
  const { page: _page, older: _older, newer: _newer, ...filters } = filter;
  return {
    filters: Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== undefined && value !== '')),
    page: list.page,
    pageCount: list.pageCount,
    count: list.count,
    firstRow: list.firstRow,
    lastRow: list.lastRow,
    ...olderNewerLinks('/admin/receipts', filtersOf(filter), list),
    matchedUsers: list.matchedUsers,
    alsoContaining: list.alsoContaining,
    totals: list.totals.map((total) => ({
      status: total.status,
      currency: total.currency,
      total: moneyJson(total.total, total.currency),
      count: total.count,
    })),
    received: {
      byCurrency: list.received.byCurrency.map((row) => ({
        currency: row.currency,
        total: moneyJson(row.total, row.currency),
      })),
      unknownCount: list.received.unknownCount,
      isDifferent: list.received.isDifferent,
    },
    receipts: list.receipts.map((receipt) => ({
      ...receiptFactsJson(receipt),
      username: receipt.username,
      paymentMethod: receipt.paymentMethod,
      receivedNetOfRefunds: receipt.receivedDifferent && {
        amount: moneyJson(receipt.receivedDifferent.amount, receipt.receivedDifferent.currency),
        currency: receipt.receivedDifferent.currency,
      },
      url: `/admin/receipts/${receipt.id}`,
      heldPayment: receipt.heldPayment,
    })),
  };
}

/**
 * The admin's receipt page as JSON: the receipt as the researcher's JSON writes it, with what only
 * the admin's page says: who it bills and who made it, its online payment held for review (its own,
 * or one of a receipt that billed some of its jobs), the payment that paid it online or the money
 * recorded by hand (and the online payments dismissed meanwhile, and the receipt that money paid
 * once it was voided), and its open checkouts.
 */
function adminReceiptJson(shown: Awaited<ReturnType<ReceiptsService['getById']>>) {
  const { receipt, ...itemsPage } = receiptWithItemsJson(shown);
  const { sameJobsHeldPayment: sameJobs, paidOnline, paidByHand } = shown;
  return {
    receipt: {
      ...receipt,
      username: shown.receipt.username,
      createdBy: shown.receipt.createdBy,
      monthEndRunId: shown.receipt.monthEndRunId,
      voidedBy: shown.receipt.voidedBy,
      // What the page's Void and Mark paid forms send as based_on_status_changes, for a script to send the same.
      statusChanges: shown.receipt.statusChanges,
      url: `/admin/receipts/${receipt.id}`,
      itemsCsvUrl: `/admin/receipts/${receipt.id}/items.csv`,
      isPaymentHeld: shown.isPaymentHeld,
      // What it brought in when that is not its total, as the billing list's row (and this receipt's page)
      // says it: a receipt paid with a voided receipt's money part of which went back since read as paid in full.
      receivedNetOfRefunds: shown.receivedNet && {
        amount: moneyJson(shown.receivedNet.amount, shown.receivedNet.currency),
        currency: shown.receivedNet.currency,
      },
      sameJobsHeldPayment: sameJobs && {
        paymentId: sameJobs.id,
        receiptId: sameJobs.receiptId,
        amount: moneyJson(sameJobs.amount, sameJobs.currency),
        currency: sameJobs.currency,
        // The page's "Its money paid receipt #N" of that held payment (a mark paid with it is then refused):
        // only the page said it, so a script offered to mark this receipt paid with spent money.
        moneyPaidReceipt: shown.sameJobsHeldMoneyPaid && {
          id: shown.sameJobsHeldMoneyPaid.id,
          status: shown.sameJobsHeldMoneyPaid.status,
          url: `/admin/receipts/${shown.sameJobsHeldMoneyPaid.id}`,
        },
        // That receipt was voided before it was paid: its money cannot be named as Paid with the money of.
        isReceiptVoidedUnpaid: shown.sameJobsHeldVoidedUnpaid !== null,
      },
      paidOnline: paidOnline && {
        paymentId: paidOnline.id,
        provider: paidOnline.provider,
        externalPaymentId: paidOnline.externalPaymentId,
      },
      paidByHand: paidByHand && paidByHandRecord(paidByHand),
      dismissedPayments: shown.dismissedPayments.map((payment) => ({
        paymentId: payment.id,
        received: payment.received && {
          amount: moneyJson(payment.received.amount, payment.received.currency),
          currency: payment.received.currency,
        },
        reviewedBy: payment.reviewedBy,
        reviewNote: payment.reviewNote,
      })),
      openPayments: shown.openPayments.map((payment) => ({
        paymentId: payment.id,
        provider: payment.provider,
        createdAt: payment.createdAt.toISOString(),
      })),
      sameJobsVoidedPaidByHand: voidedPaidByHandJson(shown.sameJobsVoidedPaidByHand),
      billedAgainOn: billedAgainJson(shown.billedAgainOn, '/admin/receipts'),
      paidWithReceipt: paidWithReceiptJson(shown.receipt, '/admin/receipts'),
      // The page's "Its money paid receipt #N" (", voided since" by its status): without it a script
      // read paidByHand alone and could return to the payer money that had paid those jobs again.
      moneyPaidReceipt: shown.moneyPaidReceipt && {
        id: shown.moneyPaidReceipt.id,
        status: shown.moneyPaidReceipt.status,
        url: `/admin/receipts/${shown.moneyPaidReceipt.id}`,
      },
    },
    ...itemsPage,
  };
}

/** The billing list's filters as typed in `query` (a link's, or a download's address), for links back to it. */
function typedFiltersOf(query: unknown) {
  return Object.fromEntries(
    (['status', 'user', 'start', 'end', 'run'] as const).map((name) => [name, typedIn(query, name)]),
  );
}

/** Admin billing: receipts across users, mark paid, void, month-end run, paid CSV. */
export function adminBillingRoutes(deps: {
  receipts: ReceiptsService;
  usage: UsageService;
  csvExports: CsvExports;
  guards: Guards;
}) {
  const { receipts, usage, csvExports, guards } = deps;
  const router = express.Router();

  type BillingPage = {
    filter: Partial<Record<'status' | 'user' | 'start' | 'end' | 'run', string | number>>;
    result?: Awaited<ReturnType<typeof receipts.listForAdmin>>;
    /** The list's filters as applied (parsed), which its Older and Newer links keep. */
    applied?: TReceiptFilter;
    error?: string;
    /** A link after the error: the running month-end run's page, when a second one is refused. */
    errorLink?: { href: string; text: string };
    /** The fields `error` is about (a filter's, or the month-end form's `before`), marked invalid. */
    invalid?: string[];
    form?: { before: string };
    /** A refused paid receipts export: its reason, the dates as picked and those it is about, shown in its form. */
    paidExport?: { error: string; start: string; end: string; invalid: string[] };
  };

  async function renderBilling(res: express.Response, page: BillingPage) {
    const { filter, result } = page;
    res.render('admin/billing', {
      title: 'Billing',
      result,
      filter,
      error: page.error,
      errorLink: page.errorLink,
      invalidFields: page.invalid ?? [],
      form: page.form,
      paidExport: page.paidExport,
      // The run under way (its page follows it) and the last one's outcome.
      monthEnd: await receipts.findMonthEndRuns(),
      // The month-end form's latest day, as on /me's receipt form: a later one is refused.
      today: receipts.today(),
      ingested: await receipts.findIngestedThrough(),
      pager: result && {
        ...result,
        ...olderNewerLinks('/admin/receipts', filtersOf(page.applied ?? { page: 1 }), result),
      },
      // The list's receipts at its filters as applied, every page of them (a list refused has none).
      csvLink: result && page.applied && linkTo('/admin/receipts.csv', filtersOf(page.applied), {}),
      link: (changes: Record<string, unknown>) =>
        linkTo(
          '/admin/receipts',
          { status: filter.status, user: filter.user, start: filter.start, end: filter.end, run: filter.run },
          changes,
        ),
    });
  }

  router.get('/admin/receipts', guards.requireAdmin, async (req, res) => {
    // A HEAD (a link checker, `curl -I`): its GET's status and type, refused as its GET is (a filter 400,
    // a run not there or a page past the last 404), the receipts counted for a later page, none read or summed.
    // Refused, it gets the page its GET shows.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () =>
      receipts.checkAdminListPage(parseInput(ZReceiptFilter, req.query)),
    );
    if (isHeadAnswered) return;
    // A script gets the list as JSON, and a refused filter (or run, or page) as {error, code}.
    if (prefersJson(req)) {
      const filter = parseInput(ZReceiptFilter, req.query);
      res.json({
        timeZone: (req.app.locals.fmt as ViewFormatters).timeZone,
        ...adminReceiptsJson(filter, await receipts.listForAdmin(filter)),
      });
      return;
    }
    const typedFilter = Object.fromEntries(
      (['status', 'user', 'start', 'end', 'run'] as const).map((name) => [name, typedIn(req.query, name)]),
    );
    // A page past the last is the one refusal shown as an error page (an old bookmark, filters that now match
    // fewer receipts): it leads to page 1 at the filters typed, where it offered only the start page.
    offerWayBack(
      res,
      Object.values(typedFilter).some((value) => value)
        ? { href: linkTo('/admin/receipts', typedFilter, {}), text: 'Go to page 1' }
        : BILLING,
    );
    let filter: TReceiptFilter;
    let result: Awaited<ReturnType<typeof receipts.listForAdmin>>;
    try {
      filter = parseInput(ZReceiptFilter, req.query);
      result = await receipts.listForAdmin(filter);
    } catch (error) {
      // A bad filter comes back as the page with the message and what was typed, as /admin/usage does;
      // so does a run that does not exist (404), with "Show every receipt" rather than an error page.
      if (
        !isRefusedForm(req, error, REFUSALS) &&
        !(isRefusedForm(req, error, [404]) && error instanceof UnknownRunFilterError)
      ) {
        throw error;
      }
      const filter = typedFilter;
      res.status(error.status);
      if (error instanceof UnknownRunFilterError) {
        // No run to name or link back to: the list without it is the way out.
        await renderBilling(res, {
          filter: { ...filter, run: undefined },
          error: readableMessageOf(error),
          errorLink: { href: '/admin/receipts', text: 'Show every receipt' },
        });
        return;
      }
      await renderBilling(res, { filter, error: readableMessageOf(error), invalid: invalidFieldsOf(error) });
      return;
    }
    await renderBilling(res, { filter, result, applied: filter });
  });

  /** The admin's receipt page; after a refused mark-paid or void, with the reason and what was typed. */
  async function renderReceipt(
    res: express.Response,
    id: number,
    page: number,
    refused?: { error: string; form: Record<string, string | undefined>; invalid?: string[] },
  ) {
    const { paidByHand, dismissedPayments, sameJobsVoidedPaidByHand, moneyOfSources, ...shown } =
      await receipts.getById(id, page);
    const fmt = res.app.locals.fmt as ViewFormatters;
    res.render('receipts/show', {
      title: `Receipt #${id}`,
      ...shown,
      sameJobsVoidedPaidByHand: voidedPaidByHandView(sameJobsVoidedPaidByHand, fmt, shown.receipt, moneyOfSources),
      sameJobsHeldMoneyNote:
        shown.sameJobsHeldPayment &&
        describeMoneyNotTotal(
          moneyOfSources.get(shown.sameJobsHeldPayment.receiptId) ?? null,
          shown.receipt,
          fmt,
          shown.sameJobsHeldPayment.receiptId,
        ),
      sameJobsHeldCanTopUp:
        shown.sameJobsHeldPayment !== null &&
        isShortOfTotal(moneyOfSources.get(shown.sameJobsHeldPayment.receiptId) ?? null, shown.receipt),
      paidByHandText: paidByHand && describePaidByHand(paidByHand, fmt),
      // Where the part of it that came in online is; null when none did (the app then holds none of it).
      handMoneyOnlineText: paidByHand && describeHandMoneyOnline(paidByHand, fmt, true),
      handMoneyOnlineVoidText: paidByHand && describeHandMoneyOnline(paidByHand, fmt),
      handMoneyOnline: paidByHand?.onlinePayment ?? null,
      dismissedPaymentsText: describeDismissedPayments(dismissedPayments, fmt),
      isAdminView: true,
      paymentMethods: PAYMENT_METHODS,
      // The mark-paid form's "Paid on": today by default, and its latest day.
      today: receipts.today(),
      link: (changes: Record<string, unknown>) => linkTo(`/admin/receipts/${id}`, {}, changes),
      itemsCsvLink: `/admin/receipts/${id}/items.csv`,
      printLink: `/admin/receipts/${id}/print`,
      error: refused?.error,
      form: refused?.form,
      invalidFields: refused?.invalid ?? [],
    });
  }

  router.get('/admin/receipts/:id', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, BILLING);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    const page = await receiptPageAsked(req, res, `/admin/receipts/${id}`, () => receipts.assertFound(id));
    // A HEAD (a link checker, `curl -I`): the status and type of its GET from the receipt's row alone;
    // refused, the error page its GET shows, with its way back.
    const isHeadAnswered = await answeredHeadWithoutWork(req, res, () => receipts.checkReceiptPage(id, page));
    if (isHeadAnswered) return;
    if (page > 1) {
      // A page past the last (an old link) leads to the receipt's page 1, once the receipt is known to be there.
      await receipts.assertFound(id);
      offerWayBack(res, { href: `/admin/receipts/${id}`, text: 'Go to page 1' });
    }
    if (prefersJson(req)) {
      res.json({
        timeZone: (req.app.locals.fmt as ViewFormatters).timeZone,
        ...adminReceiptJson(await receipts.getById(id, page)),
      });
      return;
    }
    await renderReceipt(res, id, page);
  });

  router.get('/admin/receipts/:id/print', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, BILLING);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    await checkPrintPageAsked(req, res, `/admin/receipts/${id}`, {
      assertFound: () => receipts.assertFound(id),
      checkPage: (page) => receipts.checkReceiptPage(id, page),
    });
    if (prefersJson(req)) {
      await receipts.assertFound(id);
      throw printableHasNoJson(id, `/admin/receipts/${id}`);
    }
    if (req.method === 'HEAD') {
      await receipts.assertFound(id);
      answerHeadWithoutWork(res, false);
      return;
    }
    await sendPrintableReceipt(res, await receipts.getPrintable(id), `/admin/receipts/${id}`, true);
  });

  getDownload(
    router,
    '/admin/receipts/:id/items.csv',
    (address) => receiptPageOf('/admin/receipts', address.params.id),
    guards.requireAdmin,
    async (req, res) => {
      offerWayBack(res, BILLING);
      const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
      // Found first, so that a refusal of the export itself leads back to the receipt, which is there.
      await receipts.assertFound(id);
      offerWayBack(res, backToReceipt(`/admin/receipts/${id}`, id));
      parseInput(ZReceiptItemsCsvQuery, req.query);
      await csvExports.send(req, res, {
        kind: 'receipt_items',
        username: sessionUserOf(req).username,
        filename: `receipt-${id}-items.csv`,
        columns: RECEIPT_ITEMS_CSV_COLUMNS,
        async open() {
          return (await receipts.streamItemsCsv(id)).chunks;
        },
      });
    },
  );

  router.post(MARK_PAID_PATH, guards.requireAdmin, async (req, res) => {
    offerWayBack(res, BILLING);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    let result: Awaited<ReturnType<typeof receipts.markPaid>>;
    try {
      const input = parseInput(ZMarkPaid, req.body);
      result = await receipts.markPaid(auditContextOf(req), id, input);
    } catch (error) {
      if (!isRefusedForm(req, error, MARK_PAID_REFUSALS)) throw error;
      res.status(error.status);
      await renderReceipt(res, id, 1, {
        error: `Not marked paid. ${readableMessageOf(error)}`,
        form: {
          method: typedIn(req.body, 'method'),
          amount_received: typedIn(req.body, 'amount_received'),
          tx_ref: typedIn(req.body, 'tx_ref'),
          paid_on: typedIn(req.body, 'paid_on'),
          paid_with_receipt: typedIn(req.body, 'paid_with_receipt'),
          new_money: typedIn(req.body, 'new_money'),
        },
        invalid: invalidFieldsOf(error),
      });
      return;
    }
    const {
      heldPayments,
      amountReceived,
      paidWithReceiptMoney,
      paidWithMoneyCameInOn: _lines,
      newMoney,
      ...marked
    } = result;
    const fmt = req.app.locals.fmt as ViewFormatters;
    const held = heldPayments
      .map((payment) =>
        payment.isAllGone
          ? // All of its money gone back already (refunded in full, a dispute keeping it held): no second refund.
            ` Payment #${payment.id}${describeReceived(payment, fmt)} of this receipt is held for review and can no ` +
            'longer be accepted for it; none of its money is left to refund: do not refund it again, and resolve it ' +
            'on the payments page once the provider has nothing more open on it.'
          : ` Payment #${payment.id}${describeReceived(payment, fmt)} of this receipt is held for review and can no ` +
            'longer be accepted for it: resolve it as dismissed on the payments page if its money is what paid this ' +
            'receipt, otherwise refund it.',
      )
      .join('');
    // A JSON client gets the flash's sentence as `message`, as every other change's answer has it.
    answerChange(req, res, {
      json: {
        receipt: {
          ...marked,
          // Named as every receipt JSON names it; `method` stays for scripts written against this answer before.
          paymentMethod: marked.method,
          amountReceived: moneyJson(amountReceived, marked.currency),
          // The part of the total the voided receipt's money paid, and the new money received for the rest.
          paidWithReceiptMoney: paidWithReceiptMoney && moneyJson(paidWithReceiptMoney, marked.currency),
          newMoney: newMoney && moneyJson(newMoney, marked.currency),
          heldPaymentIds: heldPayments.map((payment) => payment.id),
        },
      },
      flash: {
        type: 'success',
        message: `Receipt #${id} marked paid on ${result.paidOn} (${fmt.paymentMethod(result.method)}), ${fmt.money(
          amountReceived,
          result.currency,
        )} ${result.currency}${describeMoneyOfMarkPaid(result, fmt)}${describeCanceledCheckouts(
          result.canceledPaymentIds,
        )}${held}${result.checkoutNotice ? ` ${result.checkoutNotice}` : ''}`,
      },
      location: `/admin/receipts/${id}`,
    });
  });

  /** The flash's words for where the money came from, after the amount: new, a voided receipt's, or both. */
  function describeMoneyOfMarkPaid(
    result: {
      paidWithReceiptId: number | null;
      paidWithReceiptMoney: Prisma.Decimal | null;
      paidWithMoneyCameInOn: readonly number[];
      newMoney: Prisma.Decimal | null;
      currency: string;
      txRef: string | null;
    },
    fmt: ViewFormatters,
  ): string {
    const source = result.paidWithReceiptId;
    if (source === null) return ' received.';
    // That money is on the paid.csv lines of the receipts it came in on: the voided receipt's alone, or,
    // when that one was itself paid with a voided receipt's money, the first receipt's and each topped up.
    // "on receipt #N's line" sent finance to a line carrying only N's new money.
    const lines = result.paidWithMoneyCameInOn;
    const isOwnLine = lines.length <= 1 && (lines[0] ?? source) === source;
    const where = isOwnLine ? null : `the lines of receipts ${listReceipts(lines)}`;
    if (result.newMoney === null || result.paidWithReceiptMoney === null) {
      return (
        ` paid with the money of receipt #${source}, voided: no new money, so paid.csv counts that money once, ` +
        `${where === null ? `on receipt #${source}'s line` : `where it came in: on ${where}`}.`
      );
    }
    const newMoney = `${fmt.money(result.newMoney, result.currency)} ${result.currency}`;
    const theirs = `${fmt.money(result.paidWithReceiptMoney, result.currency)} ${result.currency}`;
    return (
      `: ${theirs} the money of receipt #${source}, voided, and ${newMoney} new money received (ref ${result.txRef}); ` +
      `paid.csv counts only the new ${newMoney} on this receipt's line, the rest on ${where ?? `receipt #${source}'s`}.`
    );
  }

  /** `#3 and #4`, `#2, #3 and #4`. */
  function listReceipts(ids: readonly number[]): string {
    const named = ids.map((id) => `#${id}`);
    return named.length <= 1 ? named.join('') : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
  }

  router.post('/admin/receipts/:id/void', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, BILLING);
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    let result: Awaited<ReturnType<typeof receipts.voidReceipt>>;
    try {
      const input = parseInput(ZVoidReceipt, req.body);
      result = await receipts.voidReceipt(auditContextOf(req), id, input);
    } catch (error) {
      if (!isRefusedForm(req, error, REFUSALS)) throw error;
      res.status(error.status);
      await renderReceipt(res, id, 1, {
        error: `Not voided. ${readableMessageOf(error)}`,
        form: { reason: typedIn(req.body, 'reason') },
        invalid: invalidFieldsOf(error),
      });
      return;
    }
    const { paidByHand, dismissedPayments, alreadyHeldPayments, ...voided } = result;
    const fmt = req.app.locals.fmt as ViewFormatters;
    const jobs = result.releasedJobs === 1 ? 'its job' : `its ${result.releasedJobs} jobs`;
    // Paid by hand, nothing is held: the admin is told what money the void concerns, not left to assume none.
    // Part or all of it a voided receipt's money that came in online: that payment is named, not "none".
    const online = paidByHand && describeHandMoneyOnline(paidByHand, fmt);
    const byHand = paidByHand
      ? ` It was paid by hand: ${describePaidByHand(paidByHand, fmt)}. ${online ?? 'The app holds none of this money: return it to the payer or apply it elsewhere.'}` +
        `${dismissedPayments.length > 0 ? ` ${describeDismissedPayments(dismissedPayments, fmt)}` : ''}`
      : '';
    // A JSON client gets the flash's sentence as `message`, as every other change's answer has it.
    answerChange(req, res, {
      json: {
        receipt: {
          ...voided,
          alreadyHeldPaymentIds: alreadyHeldPayments.map((payment) => payment.id),
          paidByHand: paidByHand && paidByHandRecord(paidByHand),
          dismissedPaymentIds: dismissedPayments.map((payment) => payment.id),
        },
      },
      flash: {
        type: 'success',
        message: `Receipt #${id} voided; ${jobs} can be billed again.${
          result.heldPaymentId === null
            ? ''
            : ` Payment #${result.heldPaymentId} is held for review: refund it or apply it elsewhere, then resolve it on the payments page.`
        }${describeAlreadyHeld(alreadyHeldPayments, fmt)}${byHand}${describeCanceledCheckouts(result.canceledPaymentIds)}${result.checkoutNotice ? ` ${result.checkoutNotice}` : ''}`,
      },
      location: `/admin/receipts/${id}`,
    });
  });

  router.post('/admin/month-end', guards.requireAdmin, async (req, res) => {
    let started: Awaited<ReturnType<typeof receipts.startMonthEnd>>;
    try {
      const input = parseInput(ZCreateReceipt, req.body);
      started = await receipts.startMonthEnd(auditContextOf(req), input.before);
    } catch (error) {
      // Back to the billing page it was started from, with the reason and the date as typed; a
      // JSON client gets the error handler's answer, with the running run's id and status URL.
      if (!isRefusedForm(req, error, REFUSALS)) throw error;
      const runningUrl =
        error instanceof MonthEndInProgressError && error.runId !== undefined ? monthEndRunUrl(error.runId) : undefined;
      const listed = await receipts.listForAdmin({ page: 1 });
      res.status(error.status);
      await renderBilling(res, {
        filter: {},
        result: listed,
        error: `Month-end run not started. ${readableMessageOf(error)}`,
        errorLink: runningUrl ? { href: runningUrl, text: 'See its progress' } : undefined,
        invalid: invalidFieldsOf(error),
        form: { before: typedIn(req.body, 'before') ?? '' },
      });
      return;
    }
    // The run goes on after this answer; its page shows its progress and, at the end, its summary.
    const url = monthEndRunUrl(started.runId);
    if (prefersJson(req)) {
      res.location(url);
      res.status(202).json({
        ok: true,
        runId: started.runId,
        statusUrl: url,
        message: `Month-end run #${started.runId} started; its progress is at ${url}.`,
      });
      return;
    }
    res.redirect(303, url);
  });

  // Every run, newest first: the billing page links only the last one, and a run's receipts are found from its page.
  router.get('/admin/month-end', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, MONTH_END_RUNS);
    const query = parseInput(ZMonthEndRunsQuery, req.query);
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the runs counted for a later page
    // (404 past the last), or the run an Older or Newer link names looked up, but none read or settled.
    if (req.method === 'HEAD') {
      await receipts.checkMonthEndRunsPage(query);
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    const { older, newer, ...list } = await receipts.listMonthEndRuns(query);
    const links = olderNewerLinks('/admin/month-end', {}, { older, newer });
    if (prefersJson(req)) {
      const fmt = req.app.locals.fmt as ViewFormatters;
      res.json({ timeZone: fmt.timeZone, ...list, ...links, runs: list.runs.map((run) => monthEndRunJson(run, fmt)) });
      return;
    }
    res.render('admin/month-end-runs', { title: 'Month-end runs', list, pager: { ...list, ...links } });
  });

  router.get('/admin/month-end/:id', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, MONTH_END_RUNS);
    const id = parseInput(ZMonthEndRunId, req.params.id, 'month-end run id');
    // `?page=` of its table of disabled users billed and `?skipped_page=` of its users skipped, as a receipt's
    // page of jobs: refused or past the last, it leads to the run's page 1 once the run is known to be there.
    // Its JSON lists them all whatever the pages.
    const runUrl = monthEndRunUrl(id);
    const asked = await pagesAsked(req, res, runUrl, () => receipts.assertMonthEndRunFound(id), ZMonthEndRunPagesQuery);
    const pages = { disabledBilled: asked.page, skipped: asked.skipped_page };
    if (pages.disabledBilled > 1 || pages.skipped > 1) {
      await receipts.assertMonthEndRunFound(id);
      offerWayBack(res, { href: runUrl, text: 'Go to page 1' });
    }
    // A HEAD (a link checker; the run's page refreshes itself): the run looked up, not settled or summed up.
    if (req.method === 'HEAD') {
      await receipts.assertMonthEndRunFound(id, pages);
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    const run = await receipts.getMonthEndRun(id, pages);
    const fmt = req.app.locals.fmt as ViewFormatters;
    if (prefersJson(req)) {
      res.json({ timeZone: fmt.timeZone, ...monthEndRunJson(run, fmt) });
      return;
    }
    res.render('admin/month-end-run', {
      title: `Month-end run #${id}`,
      run,
      // Each table's pager keeps the other's page (page 1 left out of the address): `link({ page })` pages the
      // disabled users billed, `link({ skipped_page })` the users skipped.
      link: (changes: Record<string, unknown>) =>
        linkTo(
          runUrl,
          {
            page: pages.disabledBilled > 1 ? pages.disabledBilled : undefined,
            skipped_page: pages.skipped > 1 ? pages.skipped : undefined,
          },
          changes,
        ),
      message: summaryOf(run, fmt),
      refreshSeconds: run.isRunning ? MONTH_END_REFRESH_SEC : undefined,
      // Without JavaScript only (in <noscript>): with it, month-end-wait.js follows the run in place,
      // keeping the keyboard's focus and the scroll position where they are.
      isRefreshWithoutScriptOnly: true,
    });
  });

  // The billing list's receipts at its filters, every page of them (a page or place asked for is not read).
  getDownload(
    router,
    '/admin/receipts.csv',
    (address) => linkTo('/admin/receipts', typedFiltersOf(address.query), {}),
    guards.requireAdmin,
    async (req, res) => {
      // Refused, back to the list at the filters typed, which says the same beside them.
      offerWayBack(res, { href: linkTo('/admin/receipts', typedFiltersOf(req.query), {}), text: 'Back to Billing' });
      const filter = parseInput(ZReceiptFilter, req.query);
      // The export's own refusals (a reversed window, a run not there) before the answer starts.
      const { chunks } = await receipts.streamAdminCsv(filter);
      await csvExports.send(req, res, {
        kind: 'admin_receipts',
        username: sessionUserOf(req).username,
        filename: `receipts-${receipts.today()}.csv`,
        columns: ADMIN_RECEIPTS_CSV_COLUMNS,
        async open() {
          return chunks;
        },
      });
    },
  );

  getDownload(
    router,
    '/admin/paid.csv',
    () => BILLING.href,
    guards.requireAdmin,
    async (req, res) => {
      let query: TWindowQuery;
      let window: { start: string; end: string };
      try {
        query = parseInput(ZPaidExportQuery, req.query);
        // Checked here as the export will, so that a browser gets its form back rather than an error page:
        // the window (named by the form's labels), and the form's CSV for Excel (`bom`), which csvExports.send reads again.
        window = usage.resolveWindow(query, { labels: PAID_WINDOW_FIELD_LABELS });
        parseInput(ZCsvExportQuery, req.query);
      } catch (error) {
        // The billing page's form, with the reason in it and the dates as picked; scripts get the JSON 400.
        if (!isRefusedForm(req, error, [400])) throw error;
        res.status(error.status);
        await renderBilling(res, {
          filter: {},
          result: await receipts.listForAdmin({ page: 1 }),
          paidExport: {
            error: `Paid receipts not exported. ${readableMessageOf(error)}`,
            start: typedIn(req.query, 'start') ?? '',
            end: typedIn(req.query, 'end') ?? '',
            invalid: invalidFieldsOf(error),
          },
        });
        return;
      }
      await csvExports.send(req, res, {
        kind: 'admin_paid',
        username: sessionUserOf(req).username,
        filename: `paid-${window.start}-${window.end}.csv`,
        columns: PAID_CSV_COLUMNS,
        async open() {
          // The dates the file is named for, as resolved above.
          return (await usage.streamPaidCsv({ ...query, start: window.start, end: window.end })).chunks;
        },
      });
    },
  );

  return router;
}
