// A print button for receipts; an external file because the CSP allows no inline script.
for (const button of document.querySelectorAll('[data-print]')) {
  button.addEventListener('click', () => window.print());
}
// The printable full receipt opens the print dialog by itself, once every row has arrived.
if (document.querySelector('[data-print-on-load]')) {
  window.addEventListener('load', () => window.print());
}
