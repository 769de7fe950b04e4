import ejs from 'ejs';

/**
 * Every name a view reads from its locals: app.locals, res.locals, the data of each
 * res.render and of each include. Views are compiled without `with (locals)`: a with-block
 * makes every name lookup in the template a dynamic scope search, and /me (50 rows, 700
 * lookups) rendered in 375 us with it and 240 us without (docs/performance-history.md). Instead
 * these names are declared at the top of every view, undefined where a render does not
 * supply them, so `typeof title === 'string'` works as before.
 *
 * A render whose data has a name missing here fails with an error saying to add it (see
 * createViewEngine), so a new local cannot silently read as undefined.
 */
export const VIEW_LOCALS = [
  // app.locals and res.locals (src/app.ts: currentUser, currentPath; src/http/csrf.ts, src/http/session.ts, offerWayBack in src/http/route-helpers.ts)
  'appName',
  'currency',
  'earlierTargets',
  'actorMatch',
  'fmt',
  'refusedForm',
  'onlinePayment',
  'findUnmetMinimumCharge',
  'findUnpayableStep',
  'costStep',
  'minPasswordLength',
  'dateRange',
  'excelCsvLink',
  'csrfToken',
  'currentUser',
  'currentPath',
  'flash',
  'backLink',
  // res.render data
  'actions',
  'amount',
  'billedAgainOn',
  'billingTeamRefund',
  'billingTeamTakenBack',
  'cpuBasis',
  'csvLink',
  'csvLabel',
  'dataThrough',
  'dismissedPaymentsText',
  'entries',
  'error',
  'errorLink',
  'events',
  'externalId',
  'filter',
  'firstPageLink',
  'keptSort',
  'form',
  'generated',
  'refusedChange',
  'refusedUser',
  'chosenTier',
  'freshness',
  'hasAmountDue',
  'heldForReview',
  'heldElsewhere',
  'heldHere',
  'heldPayment',
  'hours',
  'ingested',
  'invalidFields',
  'isAdminView',
  'isFinal',
  'isPaymentHeld',
  'isReceivedAllReturned',
  'isRunning',
  'clusterText',
  'isStartAbandoned',
  'isTypedWrong',
  'isUnkeyed',
  'anchorCommand',
  'chainBreak',
  'itemPager',
  'items',
  'itemsCsvLink',
  'link',
  'list',
  'matched',
  'listedAt',
  'message',
  'monthEnd',
  'moneyPaidReceipt',
  'myCsvLink',
  'needsReview',
  'newTier',
  'next',
  'nextPageUrl',
  'newestPageUrl',
  'olderThan',
  'noRunYet',
  'noTiersMessage',
  'notice',
  'openPayments',
  'page',
  'paidByHandText',
  'handMoneyOnline',
  'handMoneyOnlineText',
  'handMoneyOnlineVoidText',
  'paidExport',
  'paidOnline',
  'paidWith',
  'receivedNet',
  'payment',
  'paymentMethods',
  'paymentMoney',
  'payments',
  'paymentsPage',
  'printLink',
  'query',
  'receipt',
  'receiptAction',
  'receiptBefore',
  'receiptLink',
  'refreshSeconds',
  'isRefreshWithoutScriptOnly',
  'waitState',
  'refundedPayments',
  'refused',
  'refusedClaimCount',
  'refusedClaims',
  'refusedSettle',
  'refusedReceipt',
  'requestId',
  'reviewOutcomes',
  'result',
  'ruleTiers',
  'run',
  'runs',
  'sameJobsHeldMessage',
  'sameJobsHeldPayment',
  'sameJobsHeldMoneyPaid',
  'sameJobsHeldMoneyNote',
  'sameJobsHeldCanTopUp',
  'sameJobsHeldVoidedUnpaid',
  'sameJobsVoidedPaidByHand',
  'search',
  'sections',
  'status',
  'statusText',
  'streamedRows',
  'tierEdit',
  'tierNames',
  'tierRates',
  'tiers',
  'timeZone',
  'title',
  'today',
  'username',
  'users',
  'userFilters',
  'verdict',
  'verifiedAt',
  // include data (views/partials/pager.ejs, views/payments/held-notice.ejs, views/partials/header.ejs,
  // views/partials/user-search.ejs, views/partials/user-filter-matches.ejs, views/partials/scroll-box.ejs,
  // views/partials/flash.ejs)
  'pager',
  'at',
  'searchPath',
  'heldPayments',
  'isFlashInPage',
  'hasFormError',
  'typedName',
  'userFilterMatch',
  'nameKind',
  'linkToName',
  'caption',
  'flashId',
] as const;

// What Express itself adds to the data of every render.
const EXPRESS_RENDER_KEYS = new Set(['settings', '_locals', 'cache']);

type RenderCallback = (error: Error | null, html?: string) => void;

/**
 * The `ejs` view engine for Express, compiling views without `with` (see VIEW_LOCALS).
 * In production (`isProduction`) templates are compiled once and without line tracking:
 * EJS's compileDebug sets a line counter before every template line so that an error can
 * name it, which costs every render; development keeps it.
 */
export function createViewEngine(options: { isProduction: boolean }) {
  const known = new Set<string>(VIEW_LOCALS);
  const compileOptions: ejs.Options = {
    _with: false,
    destructuredLocals: [...VIEW_LOCALS],
    compileDebug: !options.isProduction,
  };
  return (file: string, renderData: object, callback: RenderCallback): void => {
    const data = renderData as Record<string, unknown>;
    const unknown = Object.keys(data).filter((name) => !known.has(name) && !EXPRESS_RENDER_KEYS.has(name));
    if (unknown.length > 0) {
      callback(new Error(`View data ${unknown.join(', ')} is not declared: add it to VIEW_LOCALS in view-engine.ts.`));
      return;
    }
    const settings = data.settings as { views?: string; 'view cache'?: boolean } | undefined;
    ejs.renderFile(
      file,
      data,
      {
        ...compileOptions,
        cache: settings?.['view cache'] === true,
        // Views include partials by absolute path under `root` (`include('/partials/header')`):
        // EJS resolves that by joining, where a relative path is looked up on disk with a
        // stat on every include of every render, cached template or not.
        root: settings?.views,
        views: settings?.views ? [settings.views] : [],
      },
      (error: Error | null, html?: string) => callback(error, html),
    );
  };
}
