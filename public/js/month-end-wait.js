// A month-end run's page while the run goes on. It reloaded itself every 2 s (a meta refresh), and
// each reload sent the keyboard's focus and the scroll position back to the top of the page and
// made a screen reader read it all again: its links (back to billing, all month-end runs) could not
// be reached while the run went on. This asks for the run's JSON instead (GET data-status-url with
// Accept: application/json, the run's own address), writes its counts into the page in place (the
// data-run elements: users done, receipts, of them no charge, total, users skipped), and loads the
// page once, when the run has ended, for its summary, which then takes the focus (month-end-ended.js).
// It asks every 2 s, not at all while the tab is hidden (at once when it is shown again). An external file because the CSP allows no inline
// script; without JavaScript the page keeps its meta refresh (in <noscript>).
(() => {
  const status = document.getElementById('month-end-run-status');
  if (!status?.dataset.statusUrl) return;
  const statusUrl = status.dataset.statusUrl;
  const DELAY_MS = 2000;
  const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  let timer = null;
  let isDone = false;
  let isChecking = false;

  const field = (name) => document.querySelector(`[data-run="${name}"]`);

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  /** "1234.50" as the page prints money: grouped by thousands, at the currency's scale as sent. */
  function money(text) {
    const [whole, fraction] = String(text).split('.');
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return fraction === undefined ? grouped : `${grouped}.${fraction}`;
  }

  function show(run) {
    const total = run.usersTotal;
    // The live region is changed only when its words do: a screen reader says each change once.
    setText(
      field('progress'),
      total === null
        ? 'repairing the billing queue and listing the users to bill.'
        : `${COUNT.format(run.usersDone)} of ${COUNT.format(total)} users done.`,
    );
    const users = field('users');
    if (users) {
      const text = `${COUNT.format(run.usersDone)} of ${total === null ? '…' : COUNT.format(total)} done`;
      let bar = users.querySelector('progress');
      if (total !== null) {
        if (!bar) {
          bar = document.createElement('progress');
          users.textContent = '';
          users.append(bar, document.createTextNode(''));
        }
        bar.max = Math.max(total, 1);
        bar.value = total === 0 ? 1 : run.usersDone;
        const label = bar.nextSibling;
        if (label && label.nodeType === Node.TEXT_NODE && label.textContent !== ` ${text}`)
          label.textContent = ` ${text}`;
      } else {
        setText(users, text);
      }
    }
    setText(field('receipts'), COUNT.format(run.receiptCount));
    setText(
      field('no-charge'),
      run.noChargeCount > 0 ? ` (${COUNT.format(run.noChargeCount)} of 0.00, settled as no charge)` : '',
    );
    setText(field('skipped'), COUNT.format(run.skipped.length));
    setText(
      field('totals'),
      run.totals.length === 0
        ? 'nothing billed'
        : run.totals.map((sum) => `${money(sum.total)} ${sum.currency}`).join(', '),
    );
  }

  function loadAgain() {
    isDone = true;
    window.location.reload();
  }

  /** The run has ended: the page loaded again shows its summary, which takes the focus (month-end-ended.js). */
  function showEnded() {
    // The mark is this history entry's, kept by the reload: not the page of a run opened after it ended.
    const state = window.history.state && typeof window.history.state === 'object' ? window.history.state : {};
    window.history.replaceState({ ...state, monthEndRunEnded: true }, '');
    loadAgain();
  }

  function schedule() {
    if (isDone || document.hidden) return;
    timer = window.setTimeout(check, DELAY_MS);
  }

  async function check() {
    timer = null;
    if (isDone || isChecking || document.hidden) return;
    isChecking = true;
    try {
      const response = await fetch(statusUrl, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (response.ok) {
        const run = await response.json();
        if (run.outcome !== 'running') {
          // Ended: its page then shows the summary, the skipped users and the receipts it made.
          showEnded();
          return;
        }
        show(run);
      } else if (response.status >= 400 && response.status < 500 && response.status !== 429) {
        // Signed out meanwhile, or no longer an admin: the page itself says what to do.
        loadAgain();
        return;
      }
    } catch {
      // The network or the server is away for a moment: ask again later, as when nothing changed.
    } finally {
      isChecking = false;
    }
    schedule();
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
    } else if (!isDone && !isChecking && timer === null) {
      check();
    }
  });

  schedule();
})();
