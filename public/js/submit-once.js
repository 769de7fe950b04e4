// Sends a form marked data-submit-once once per page: a double click sent Create receipt twice,
// and the browser showed the second answer ("No receipt created. Nothing to bill", the first had
// billed everything) in place of the receipt the first click made. The server's per-user lock
// still decides what a second send bills; this only spares the person the misleading answer.
// A page brought back by the Back button may send it again, and so may a click 10 s later (a
// request that never got an answer). An external file because the CSP allows no inline script.
const RESEND_AFTER_MS = 10_000;
for (const form of document.querySelectorAll('form[data-submit-once]')) {
  let sentAt = 0;
  form.addEventListener('submit', (event) => {
    if (event.defaultPrevented) return;
    if (Date.now() - sentAt < RESEND_AFTER_MS) {
      event.preventDefault();
      return;
    }
    sentAt = Date.now();
  });
  window.addEventListener('pageshow', () => {
    sentAt = 0;
  });
}
