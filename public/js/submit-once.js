// Sends a form marked data-submit-once once per page: a double click sent it twice (Create receipt,
// Void, Mark paid, ...), and the browser showed the second answer ("No receipt created. Nothing to
// bill", "Not voided. ...") in place of what the first click did. The server still decides what a
// second send does; this only spares the person the misleading answer and the second effect.
// A page brought back by the Back button may send it again, and so may a click 10 s later (a
// request that never got an answer). An external file because the CSP allows no inline script;
// loaded once, in the layout's head, for every page.
//
// Two listeners on window, so that the order in which the page's scripts ran does not matter:
// - capturing, before the form's own listeners: a send within 10 s of the last is stopped there, so
//   confirm.js does not ask again about a send that will not happen;
// - bubbling, after them: a send is counted only if nothing stopped it, so a confirm() answered
//   no does not block the real send that follows.
const RESEND_AFTER_MS = 10_000;
let sentAtOf = new WeakMap();

const submitOnceFormOf = (event) =>
  event.target instanceof HTMLFormElement && event.target.hasAttribute('data-submit-once') ? event.target : null;

window.addEventListener(
  'submit',
  (event) => {
    const form = submitOnceFormOf(event);
    if (!form) return;
    if (Date.now() - (sentAtOf.get(form) ?? 0) < RESEND_AFTER_MS) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  },
  true,
);

window.addEventListener('submit', (event) => {
  const form = submitOnceFormOf(event);
  if (!form || event.defaultPrevented) return;
  sentAtOf.set(form, Date.now());
});

// Only a page brought back from the back-forward cache: the first load's pageshow comes with its
// load event, which a click made while images were still loading precedes.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) sentAtOf = new WeakMap();
});
