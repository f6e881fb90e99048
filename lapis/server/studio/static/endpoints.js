// Lapis studio, endpoint page: copy the scoring URI, check the traffic total as the user
// types (the server checks again), and draw the telemetry charts with uPlot.
(function () {
  "use strict";
  var PALETTE = ["#2457d6", "#1f7a3f", "#a25f00", "#b3261e", "#7a3fb3", "#008080", "#6b7280"];
  var REFRESH_MS = 3000;

  // --- copy ---------------------------------------------------------------------------
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("[data-copy]");
    if (!btn) return;
    var field = document.querySelector(btn.getAttribute("data-copy"));
    if (!field) return;
    function done() { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy"; }, 1500); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* selected: the user can copy */ }
    }
  });

  // --- traffic ------------------------------------------------------------------------
  function sum(form, cls) {
    var total = 0, bad = null;
    form.querySelectorAll("input.share." + cls).forEach(function (input) {
      var text = input.value.trim();
      var n = text === "" ? 0 : Number(text);
      var whole = Number.isInteger(n) && n >= 0 && n <= 100;
      input.setAttribute("aria-invalid", whole ? "false" : "true");
      if (!whole && bad === null) bad = input;
      total += whole ? n : 0;
    });
    return { total: total, bad: bad };
  }

  // The problem with the form's numbers in words, or "" when they are fine.
  function trafficProblem(form) {
    var live = sum(form, "live"), mirror = sum(form, "mirror");
    var out = form.querySelector("#traffic-total");
    if (out) out.textContent = String(live.total);
    var mout = form.querySelector("#mirror-total");
    if (mout) mout.textContent = String(mirror.total);
    var bad = live.bad || mirror.bad;
    if (bad) return "Each share must be a whole percent from 0 to 100 (" + bad.id.replace(/^(traffic|mirror)-/, "") + ").";
    if (live.total !== 100 && live.total !== 0) return "Traffic must total 100 (or 0 for none); it totals " + live.total + ".";
    if (mirror.total > 50) return "Mirror traffic must total at most 50; it totals " + mirror.total + ".";
    return "";
  }

  function showTrafficProblem(form) {
    var problem = trafficProblem(form);
    var box = form.querySelector("#traffic-error");
    if (box) box.textContent = problem;
    return problem;
  }

  document.addEventListener("input", function (ev) {
    var form = ev.target.closest && ev.target.closest("#traffic-form");
    if (form) showTrafficProblem(form);
  });
  document.addEventListener("htmx:beforeRequest", function (ev) {
    var elt = ev.detail && ev.detail.elt;
    if (elt && elt.id === "traffic-form" && showTrafficProblem(elt)) ev.preventDefault();
  });


  // --- telemetry ----------------------------------------------------------------------
  function chartOpts(width, series, yLabel) {
    return {
      width: width, height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: yLabel, size: 60 }],
      legend: { show: true },
      series: [{}].concat(series)
    };
  }

  function build(root, data) {
    var names = Object.keys(data.deployments).sort();
    var t = names.length ? data.deployments[names[0]].t : [];
    var rps = [t], lat = [t], err = [t], sRps = [], sLat = [], sErr = [];
    names.forEach(function (name, i) {
      var d = data.deployments[name], color = PALETTE[i % PALETTE.length];
      rps.push(d.rps); sRps.push({ label: name, stroke: color, width: 2 });
      lat.push(d.p50_ms); sLat.push({ label: name + " p50", stroke: color, width: 2 });
      lat.push(d.p99_ms); sLat.push({ label: name + " p99", stroke: color, width: 1, dash: [6, 4] });
      err.push(d.errors); sErr.push({ label: name, stroke: color, width: 2 });
    });
    return { key: names.join("\n"), charts: [["chart-rps", sRps, rps, "req/s"], ["chart-latency", sLat, lat, "ms"], ["chart-errors", sErr, err, "errors"]] };
  }

  function startTelemetry(root) {
    var url = root.getAttribute("data-url");
    var pick = root.querySelector("#telemetry-window");
    var empty = root.querySelector("#telemetry-empty");
    var summary = root.querySelector("#telemetry-summary");
    var plots = {}, shapeKey = null, busy = false;

    function clear() {
      Object.keys(plots).forEach(function (id) { plots[id].destroy(); });
      plots = {}; shapeKey = null;
    }

    function draw(data) {
      var recent = data.recent || {};
      var lat = recent.latency_ms || {};
      summary.textContent = (recent.requests || 0) + " requests, " + (recent.errors || 0) + " errors" +
        (lat.p50 != null ? ", p50 " + lat.p50.toFixed(1) + " ms, p99 " + lat.p99.toFixed(1) + " ms" : "");
      var names = Object.keys(data.deployments);
      empty.hidden = names.length > 0;
      if (!names.length || typeof uPlot === "undefined") { clear(); return; }
      var built = build(root, data);
      if (built.key !== shapeKey) clear();
      built.charts.forEach(function (c) {
        var el = document.getElementById(c[0]);
        if (plots[c[0]]) { plots[c[0]].setData(c[2]); return; }
        plots[c[0]] = new uPlot(chartOpts(Math.max(280, el.clientWidth), c[1], c[3]), c[2], el);
      });
      shapeKey = built.key;
    }

    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url + "?minutes=" + encodeURIComponent(pick.value), { credentials: "same-origin" })
        .then(function (r) {
          var json = (r.headers.get("content-type") || "").indexOf("application/json") === 0;
          if (!r.ok || !json) throw new Error("telemetry answered " + r.status);
          return r.json();
        })
        .then(draw)
        .catch(function (e) { summary.textContent = "Telemetry unavailable (" + e.message + ")."; })
        .then(function () { busy = false; });
    }

    pick.addEventListener("change", function () { clear(); refresh(); });
    window.addEventListener("resize", function () {
      Object.keys(plots).forEach(function (id) {
        var el = document.getElementById(id);
        plots[id].setSize({ width: Math.max(280, el.clientWidth), height: 220 });
      });
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("traffic-form");
    if (form) trafficProblem(form);
    var root = document.getElementById("telemetry");
    if (root) startTelemetry(root);
  });
})();
