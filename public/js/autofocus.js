// A refused form comes back at its form's fragment (/me/receipt#create-receipt), and a browser
// opening a page at a fragment skips autofocus, or clears the focus once it scrolls there: the
// keyboard's focus stayed at the page's top, far from the reason and the field to fix. Once the
// page has loaded (and scrolled), this moves it to the element marked autofocus (the first field
// the reason is about), unless the person has moved the focus already. An external file because
// the CSP allows no inline script; without JavaScript the fragment still scrolls there.
window.addEventListener('load', () => {
  const target = document.querySelector('[autofocus]');
  if (target && (document.activeElement === document.body || document.activeElement === null)) target.focus();
});
