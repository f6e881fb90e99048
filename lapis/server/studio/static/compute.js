// Lapis studio, compute create form: mark the name field invalid while the
// server's as-you-type check (the API's own rules) reports a broken rule.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSettle", function () {
    var check = document.getElementById("name-check");
    var input = document.getElementById("name");
    if (!check || !input) return;
    var valid = check.getAttribute("data-valid");
    if (valid) input.setAttribute("aria-invalid", valid === "false" ? "true" : "false");
    else input.removeAttribute("aria-invalid");
  });
})();
