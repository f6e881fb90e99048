// Lapis studio, job page: follow the job's log over server-sent events.
// Lines are appended as text (never HTML); the view stays at the bottom unless
// the user scrolled up, and the stream closes on the server's `end` event.
(function () {
  "use strict";
  function follow(pre) {
    var state = document.getElementById("log-state");
    var counter = document.getElementById("log-lines");
    var lines = 0;
    var stick = true;
    var ended = false;
    pre.addEventListener("scroll", function () {
      stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    });
    var source = new EventSource(pre.getAttribute("data-stream"));
    source.addEventListener("open", function () {
      if (!ended) state.textContent = "following";
    });
    source.addEventListener("log", function (ev) {
      pre.appendChild(document.createTextNode(ev.data + "\n"));
      lines += ev.data.split("\n").length;
      counter.setAttribute("data-lines", String(lines));
      counter.textContent = lines + (lines === 1 ? " line" : " lines");
      if (stick) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", function (ev) {
      ended = true;
      source.close();
      pre.setAttribute("data-ended", ev.data);
      state.textContent = "job " + ev.data + "; log complete";
      if (!lines) pre.textContent = "(this job wrote no output)";
    });
    source.addEventListener("error", function () {
      // The browser reconnects by itself, resuming from the last event id.
      if (!ended) state.textContent = "reconnecting…";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var pre = document.getElementById("job-log");
    if (pre && window.EventSource) follow(pre);
  });
})();
