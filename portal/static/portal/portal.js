/* Behaviour of the portal's pages, kept out of the HTML: the Content-Security-Policy runs
   no inline handlers (portal/security_headers.py). */
"use strict";

// A <select data-submit-on-change> sends its form as soon as it changes (the language and
// the approvals status selectors).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-submit-on-change]");
  if (field && field.form) {
    field.form.submit();
  }
});
