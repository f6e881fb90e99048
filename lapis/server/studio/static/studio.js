// Lapis studio: small behaviours on top of server-rendered pages and htmx.
(function () {
  "use strict";
  // Links the mlflow client prints (<url>/#/experiments/<id>/runs/<run>, MLflow's UI
  // routes) open the studio's page for that run or experiment — when the page loads
  // with one, and when only the fragment changes (the same page, another link).
  function followMlflowLink() {
    var m = /^#\/experiments\/([0-9]+)(?:\/runs\/([0-9A-Za-z]+))?/.exec(location.hash);
    if (!m) return false;
    location.replace(m[2] ? "/runs/" + m[2] : "/experiments/" + m[1]);
    return true;
  }
  window.addEventListener("hashchange", followMlflowLink);
  if (followMlflowLink()) return;
  // Theme: follow the system unless the user chose; remember the choice.
  var saved = localStorage.getItem("lapis-theme");
  if (saved) document.documentElement.setAttribute("data-theme", saved);
  function toggleTheme() {
    var root = document.documentElement;
    var dark = root.getAttribute("data-theme") === "dark" ||
      (!root.getAttribute("data-theme") && matchMedia("(prefers-color-scheme: dark)").matches);
    var next = dark ? "light" : "dark";
    root.setAttribute("data-theme", next);
    localStorage.setItem("lapis-theme", next);
  }
  // Times arrive as UTC ISO text; show them in the browser's time zone.
  function localTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.getElementById("theme-toggle");
    if (btn) btn.addEventListener("click", toggleTheme);
    localTimes(document);
  });
  // Every htmx request carries the CSRF token (double submit, see session.py).
  document.addEventListener("htmx:configRequest", function (ev) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) ev.detail.headers["X-CSRF-Token"] = meta.content;
  });
  document.addEventListener("htmx:afterSwap", function (ev) { localTimes(ev.target); });
  // htmx does not swap 4xx/5xx answers; the server's error fragments (web.error_page)
  // carry HX-Retarget: #messages, so let those through to be shown.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var xhr = ev.detail && ev.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
      ev.detail.shouldSwap = true;
      ev.detail.isError = false;
    }
  });
  // A failed htmx request that the server did not explain (network down, proxy error).
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("messages");
    if (box) box.innerHTML = '<div class="flash bad" role="alert">The server did not answer; check that it is running and retry.</div>';
  });
  window.LapisStudio = { localTimes: localTimes };
})();
