// The payment status page waits for the provider's confirmation. It reloaded itself every 2 s (a
// meta refresh), and each reload sent the keyboard's focus back to the top of the page and made a
// screen reader read it all again: its links (the receipt, back to the payment page) could not be
// reached while it waited. This asks for the payment's state instead (GET data-status-url, JSON)
// and loads the page again only once the state differs from the one the page was drawn with
// (data-wait-state). It asks less often the longer it waits (2 s, doubling up to 30 s), not at all
// while the tab is hidden (at once when it is shown again), and says how it goes in the polite
// live region it runs on. An external file because the CSP allows no inline script; without
// JavaScript the page keeps its meta refresh (in <noscript>).
(() => {
  const region = document.getElementById('payment-wait-progress');
  if (!region?.dataset.statusUrl) return;
  const statusUrl = region.dataset.statusUrl;
  const drawnState = region.dataset.waitState;
  const FIRST_DELAY_MS = 2000;
  const LONGEST_DELAY_MS = 30000;
  let delay = FIRST_DELAY_MS;
  let timer = null;
  let saidDelay = null;
  let isDone = false;
  let isChecking = false;

  function say(text) {
    if (region.textContent !== text) region.textContent = text;
  }

  function loadAgain() {
    isDone = true;
    say('The payment’s status has changed; loading it…');
    window.location.reload();
  }

  function schedule() {
    if (isDone || document.hidden) return;
    timer = window.setTimeout(check, delay);
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
        const body = await response.json();
        if (body.state !== drawnState) {
          loadAgain();
          return;
        }
      } else if (response.status >= 400 && response.status < 500 && response.status !== 429) {
        // Signed out meanwhile, or the receipt is no longer there: the page itself says what to do.
        loadAgain();
        return;
      }
    } catch {
      // The network or the server is away for a moment: ask again later, as when nothing changed.
    } finally {
      isChecking = false;
    }
    delay = Math.min(delay * 2, LONGEST_DELAY_MS);
    const seconds = Math.round(delay / 1000);
    // Said only when the wait changes, not at every check: a screen reader would repeat it for ever.
    if (saidDelay !== seconds) {
      saidDelay = seconds;
      say(`Still waiting for the payment provider to confirm; checking again in ${seconds} seconds.`);
    }
    schedule();
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
    } else if (!isDone && !isChecking && timer === null) {
      // Back to the tab: ask now, then often again, as when the page opened.
      delay = FIRST_DELAY_MS;
      check();
    }
  });

  schedule();
})();
