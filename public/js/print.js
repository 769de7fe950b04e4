// A print button for receipts; an external file because the CSP allows no inline script. The
// button comes hidden and is shown here, in place of the line that says to use the browser's own
// Print: without JavaScript the button would do nothing.
for (const button of document.querySelectorAll('[data-print]')) {
  button.addEventListener('click', () => window.print());
  button.hidden = false;
}
for (const hint of document.querySelectorAll('[data-print-hint]')) {
  hint.hidden = true;
}
// The printable full receipt opens the print dialog by itself, once every row has arrived.
if (document.querySelector('[data-print-on-load]')) {
  window.addEventListener('load', () => window.print());
}
