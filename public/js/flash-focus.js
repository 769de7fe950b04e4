// A flash (what a change did, told on the page its redirect opens) is in the page as it loads: a
// status region is announced when it changes, not when it arrives with the page, so a screen reader
// read "Password changed." only if its user went looking, and the keyboard's focus stayed at the
// page's top. As a refused form's reason does, the flash takes the focus once the page has loaded
// (and scrolled to a fragment), and a screen reader reads it. A page whose form has a field marked
// autofocus (the sign-in page) keeps the focus there, as does a person who has moved it already.
// Loaded by views/partials/flash.ejs right after the flash it focuses, by admin-users.ejs after a generated
// password's message (shown in the form's answer, not as a flash), and by the payment status page
// (views/payments/thanks.ejs) right after its outcome; without JavaScript the flash is still the page's first content.
const flash = document.currentScript?.previousElementSibling;
window.addEventListener('load', () => {
  if (!flash || document.querySelector('[autofocus]')) return;
  if (document.activeElement !== document.body && document.activeElement !== null) return;
  flash.setAttribute('tabindex', '-1');
  flash.focus();
});
