// Asks before sending a form marked data-confirm (disabling a user, changing a role, resetting a
// password): one misplaced click on a table of users should not lock someone out. An external
// file because the CSP allows no inline script; without JavaScript the forms work as before.
for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
