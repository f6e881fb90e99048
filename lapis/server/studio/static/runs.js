// Runs area: the runs table's compare picker, and the metric charts of the run and compare pages.
(function () {
  "use strict";

  // --- runs table: Compare is enabled for 2–10 picked runs -----------------------------
  function syncCompare() {
    var button = document.getElementById("compare-button");
    if (!button) return;
    var picked = document.querySelectorAll('input[name="runs"][form="compare-form"]:checked').length;
    button.disabled = picked < 2 || picked > 10;
    var hint = document.getElementById("compare-hint");
    if (hint) hint.textContent = picked ? picked + " picked (2–10)" : "Pick 2–10 runs to compare";
  }
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.name === "runs") syncCompare();
  });
  document.addEventListener("htmx:afterSwap", syncCompare);

  // --- charts: one per metric key, one line per source (run) ---------------------------
  function chartSet(container, sources, keys) {
    var state = {x: "step", smoothing: 0, log: false, keys: keys.slice()};
    var full = {};     // key -> series list at the whole range
    var shown = {};    // key -> series list currently drawn (a zoom window's, after a zoom)
    var charts = {};   // key -> {box, handle}
    var generation = 0;

    function spec(key) {
      return {title: key, xTime: state.x === "time", log: state.log, smoothing: state.smoothing,
              series: shown[key] || [], onZoom: function (lo, hi) { zoom(key, lo, hi); }};
    }
    function box(key) {
      if (charts[key]) return charts[key];
      var fig = document.createElement("figure");
      fig.className = "chart-box";
      fig.setAttribute("data-key", key);
      var el = document.createElement("div");
      el.className = "chart";
      fig.appendChild(el);
      container.appendChild(fig);
      charts[key] = {box: fig, el: el, handle: null};
      return charts[key];
    }
    function collect(results) {
      var out = {};
      state.keys.forEach(function (key) {
        out[key] = results.map(function (r, i) {
          var s = r[key];
          return {label: sources[i].label || key, x: s ? s.x : [], y: s ? s.y : [], total: s ? s.total : 0};
        });
      });
      return out;
    }
    function fetchAll(keys, range) {
      return Promise.all(sources.map(function (s) {
        return LapisCharts.fetchSeries(s.url, keys, {x: state.x, points: 1000, range: range});
      }));
    }
    function draw(key) {
      var c = box(key);
      if (c.handle) c.handle.update(spec(key));
      else c.handle = LapisCharts.chart(c.el, spec(key));
    }
    function load() {
      var mine = ++generation;
      Object.keys(charts).forEach(function (k) {
        if (state.keys.indexOf(k) < 0) {
          if (charts[k].handle) charts[k].handle.destroy();
          charts[k].box.remove();
          delete charts[k];
        }
      });
      if (!state.keys.length) { container.textContent = ""; return Promise.resolve(); }
      container.setAttribute("aria-busy", "true");
      return fetchAll(state.keys, null).then(function (results) {
        if (mine !== generation) return;
        full = collect(results);
        shown = Object.assign({}, full);
        state.keys.forEach(draw);
      }).catch(function (err) {
        LapisCharts.message(container, "Could not load the metric series: " + err.message);
        charts = {};
      }).then(function () { container.removeAttribute("aria-busy"); });
    }
    // A zoomed window of a downsampled series is fetched again at full resolution.
    function zoom(key, lo, hi) {
      var series = full[key] || [];
      var thinned = series.some(function (s) { return s.total > s.x.length; });
      if (!thinned) return;
      var mine = generation;
      fetchAll([key], [lo, hi]).then(function (results) {
        if (mine !== generation) return;
        shown[key] = results.map(function (r, i) {
          var s = r[key];
          return {label: sources[i].label || key, x: s ? s.x : [], y: s ? s.y : [], total: s ? s.total : 0};
        });
        draw(key);
      }).catch(function (err) { LapisCharts.message(charts[key].el, err.message); });
    }
    return {
      state: state,
      load: load,
      redraw: function () { state.keys.forEach(function (k) { if (shown[k]) draw(k); }); },
      resetZoom: function () {
        shown = Object.assign({}, full);
        state.keys.forEach(function (k) { if (charts[k] && charts[k].handle) draw(k); });
      },
    };
  }

  function wireControls(set) {
    var x = document.getElementById("chart-x");
    var smooth = document.getElementById("chart-smooth");
    var smoothOut = document.getElementById("chart-smooth-value");
    var log = document.getElementById("chart-log");
    var reset = document.getElementById("chart-reset");
    if (x) x.addEventListener("change", function () { set.state.x = x.value; set.load(); });
    if (smooth) smooth.addEventListener("input", function () {
      set.state.smoothing = parseFloat(smooth.value) || 0;
      if (smoothOut) smoothOut.textContent = smooth.value;
      set.redraw();
    });
    if (log) log.addEventListener("change", function () { set.state.log = log.checked; set.redraw(); });
    if (reset) reset.addEventListener("click", function () { set.resetZoom(); });
    document.querySelectorAll('#chart-controls input[name="key"]').forEach(function (box) {
      box.addEventListener("change", function () {
        set.state.keys = Array.prototype.map.call(
          document.querySelectorAll('#chart-controls input[name="key"]:checked'),
          function (b) { return b.value; });
        set.load();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncCompare();
    var cfgEl = document.getElementById("chart-config");
    if (!cfgEl || !window.LapisCharts) return;
    var cfg = JSON.parse(cfgEl.textContent);
    var container = document.getElementById("run-charts") || document.getElementById("compare-charts");
    if (!container) return;
    if (typeof uPlot === "undefined") {
      LapisCharts.message(container, "Charts need the studio's script assets (make studio-assets).");
      return;
    }
    var sources, keys;
    if (cfg.runs) {  // compare page
      sources = cfg.runs.map(function (r) {
        return {url: cfg.seriesUrl.replace("{run}", encodeURIComponent(r.id)), label: r.name};
      });
      keys = cfg.keys;
      document.querySelectorAll(".swatch[data-series]").forEach(function (el) {
        el.style.background = LapisCharts.color(parseInt(el.getAttribute("data-series"), 10));
      });
    } else {
      sources = [{url: cfg.seriesUrl, label: null}];
      keys = cfg.selected;
    }
    var set = chartSet(container, sources, keys);
    wireControls(set);
    set.load();
    window.LapisRunCharts = set;  // for tests and the console
  });

  // A running run's page: its live part is swapped in every few seconds (htmx); the
  // charts follow, picking up metric keys logged since the page loaded.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var target = ev.detail && ev.detail.target;
    if (!target || target.id !== "run-live" || !window.LapisRunCharts) return;
    var live = document.getElementById("run-live");
    var set = window.LapisRunCharts;
    var keys = live && live.getAttribute("data-keys");
    if (keys) {
      JSON.parse(keys).forEach(function (k) {
        if (set.state.keys.indexOf(k) < 0 && set.state.keys.length < 50) set.state.keys.push(k);
      });
    }
    set.load();
  });

  // Compare page: "only differences" hides equal rows without a reload.
  document.addEventListener("change", function (ev) {
    if (ev.target && ev.target.id === "only-diff") {
      var table = document.getElementById("diff-table");
      if (table) table.classList.toggle("only-diff", ev.target.checked);
    }
  });
})();
