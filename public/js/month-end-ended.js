// The summary of a month-end run that ended while its page watched it (month-end-wait.js loads the
// page again then, having marked that history entry's state). That reload left the keyboard's focus
// at the page's top, and the summary was a status region already on the page as it loaded, which a
// screen reader does not announce: it said nothing of the run's end or of what it did. As a flash
// does (flash-focus.js), the summary takes the focus once the page has loaded, unless the person has
// moved it already. Only then: the page of a run that ended before it was opened (or loaded again
// by hand, or reached by Back) is the run's record, not news, and keeps the focus where it is; the
// mark is cleared at once. Loaded by views/admin/month-end-run.ejs right after the summary it
// focuses; an external file because the CSP allows no inline script. Without JavaScript the summary
// is still the page's first content.
(() => {
  const summary = document.currentScript?.previousElementSibling;
  const state = window.history.state;
  if (!state || typeof state !== 'object' || !state.monthEndRunEnded) return;
  const { monthEndRunEnded: _seen, ...kept } = state;
  window.history.replaceState(Object.keys(kept).length > 0 ? kept : null, '');
  window.addEventListener('load', () => {
    if (!summary) return;
    if (document.activeElement !== document.body && document.activeElement !== null) return;
    summary.setAttribute('tabindex', '-1');
    summary.focus();
  });
})();
