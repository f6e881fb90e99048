/* LapisCharts: a small shared helper on top of uPlot for the studio's line charts.
 *
 * Series come already downsampled by the server (GET /ui/runs/{id}/metric-series
 * keeps every bucket's min and max), so a chart never holds more than a few
 * thousand points. Labels are set by uPlot with textContent: user text stays text.
 *
 * API (global `LapisCharts`, usable once DOMContentLoaded has fired):
 *
 *   LapisCharts.fetchSeries(url, keys, opts) -> Promise<{key: {x: [], y: [], total}}>
 *       url: the run's metric-series route; keys: metric keys;
 *       opts: {x: "step"|"time", points: 1000, range: [lo, hi] | null}.
 *       Rejects with an Error whose message is the server's.
 *   LapisCharts.chart(el, spec) -> handle
 *       el: an empty container element (the chart fills its width).
 *       spec: {title: "acc", xTime: false, log: false, smoothing: 0..0.99,
 *              series: [{label: "run a", x: [...], y: [...]}, ...],
 *              onZoom: function (lo, hi) {}   // optional: after a drag-zoom, x in data units
 *       handle.update(spec)   redraw with new data/options (same container)
 *       handle.resetZoom()    back to the whole x range (double-click does it too)
 *       handle.destroy()
 *       handle.plot           the uPlot instance
 *   LapisCharts.ema(ys, weight) -> smoothed copy (TensorBoard's debiased EMA; nulls kept)
 *   LapisCharts.color(i) -> the i-th series colour
 *   LapisCharts.message(el, text) -> shows text (an error, "no data") in place of a chart
 *
 * Time axes take x in epoch milliseconds (as the server sends it) and convert.
 */
(function () {
  "use strict";
  var COLORS = ["#2457d6", "#d0452b", "#1f7a3f", "#a25f00", "#7b3fb8", "#00838f",
                "#c2185b", "#5d6677", "#6d8b00", "#8d6e63"];

  function color(i) { return COLORS[i % COLORS.length]; }

  function ema(ys, weight) {
    if (!weight) return ys.slice();
    var out = new Array(ys.length), last = 0, n = 0;
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (y == null || !isFinite(y)) { out[i] = y; continue; }
      last = last * weight + (1 - weight) * y;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  function fetchSeries(url, keys, opts) {
    opts = opts || {};
    var q = "keys=" + keys.map(encodeURIComponent).join(",") +
      "&x=" + encodeURIComponent(opts.x || "step") + "&points=" + (opts.points || 1000);
    if (opts.range) q += "&lo=" + Math.floor(opts.range[0]) + "&hi=" + Math.ceil(opts.range[1]);
    return fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + q, {credentials: "same-origin"})
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/signin") >= 0) {
          throw new Error("your session has ended; reload the page to sign in again");
        }
        return r.json().catch(function () { return {error: "HTTP " + r.status}; })
          .then(function (body) {
            if (!r.ok || body.error) throw new Error(body.error || ("HTTP " + r.status));
            return body.series;
          });
      });
  }

  function message(el, text) {
    el.textContent = "";
    var p = document.createElement("p");
    p.className = "chart-message muted";
    p.textContent = text;
    el.appendChild(p);
  }

  // [x, y1, y2, …] with one shared, sorted x (uPlot's layout); gaps are null.
  function align(series, xTime, log, smoothing) {
    var tables = series.map(function (s) {
      var xs = xTime ? s.x.map(function (v) { return v / 1000; }) : s.x.slice();
      var ys = ema(s.y, smoothing);
      if (log) ys = ys.map(function (v) { return v != null && v > 0 ? v : null; });
      return [xs, ys];
    });
    if (tables.length === 1) return [tables[0][0], tables[0][1]];
    return uPlot.join(tables);
  }

  function options(el, spec) {
    var css = getComputedStyle(document.documentElement);
    var fg = css.getPropertyValue("--muted").trim() || "#5d6677";
    var grid = css.getPropertyValue("--line").trim() || "#dde1e8";
    var axis = {stroke: fg, grid: {stroke: grid, width: 1}, ticks: {stroke: grid}};
    return {
      title: spec.title || "",
      width: Math.max(280, el.clientWidth || 600),
      height: spec.height || 260,
      scales: {x: {time: !!spec.xTime}, y: {distr: spec.log ? 3 : 1}},
      axes: [Object.assign({}, axis), Object.assign({size: 60}, axis)],
      cursor: {drag: {x: true, y: false, setScale: true}},
      series: [{label: spec.xTime ? "time" : "step"}].concat(spec.series.map(function (s, i) {
        return {label: s.label, stroke: color(i), width: 1.5, spanGaps: true,
                points: {show: s.x.length < 60}};
      })),
      hooks: {
        setSelect: [function (u) {
          if (!spec.onZoom || u.select.width < 2) return;
          var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
          if (spec.xTime) { lo *= 1000; hi *= 1000; }
          spec.onZoom(lo, hi);
        }],
      },
    };
  }

  function chart(el, spec) {
    var plot = null, ro = null, current = spec;
    function draw(s) {
      current = s;
      if (plot) { plot.destroy(); plot = null; }
      el.textContent = "";
      var nonEmpty = s.series.filter(function (x) { return x.x.length; });
      if (!nonEmpty.length) { message(el, "No points to draw."); return; }
      s = Object.assign({}, s, {series: s.series});
      plot = new uPlot(options(el, s), align(s.series, s.xTime, s.log, s.smoothing || 0), el);
    }
    draw(spec);
    if (window.ResizeObserver) {
      ro = new ResizeObserver(function () {
        if (plot) plot.setSize({width: Math.max(280, el.clientWidth), height: current.height || 260});
      });
      ro.observe(el);
    }
    return {
      get plot() { return plot; },
      update: function (s) { draw(s); },
      resetZoom: function () { if (plot) plot.setData(plot.data, true); },
      destroy: function () { if (ro) ro.disconnect(); if (plot) plot.destroy(); plot = null; },
    };
  }

  window.LapisCharts = {chart: chart, fetchSeries: fetchSeries, ema: ema, color: color,
                        message: message};
})();
