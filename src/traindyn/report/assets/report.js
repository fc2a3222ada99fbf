/* traindyn report: draws every .td-plot from the JSON payload in #td-data with plotly.js.
 *
 * The payload schema is documented in traindyn/report/data.py. A plot finds its run
 * through the closest [data-run] ancestor and what to show through the selects of its
 * closest .td-scope. window.tdReady resolves when every visible plot is drawn; it is
 * replaced by a new Promise whenever a select changes or the live view redraws.
 */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("td-data").textContent);
  var CONFIG = JSON.parse(document.getElementById("td-config").textContent);
  var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var PLOT_CONFIG = { displaylogo: false, responsive: true };
  var BASE_LAYOUT = { margin: { l: 70, r: 20, t: 36, b: 44 }, font: { size: 12 },
                      paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
                      legend: { font: { size: 11 } } };

  function colour(i) { return COLOURS[i % COLOURS.length]; }
  function rgba(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }
  function layout(extra) {
    var out = JSON.parse(JSON.stringify(BASE_LAYOUT));
    Object.keys(extra).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }

  function runOf(el) {
    var holder = el.closest("[data-run]");
    if (DATA.kind === "run") { return DATA; }
    if (!holder) { return null; }
    var id = holder.getAttribute("data-run");
    if (DATA.kind === "compare") { return DATA[id]; }
    return DATA.runs[id];
  }
  function choice(el, css) {
    var scope = el.closest(".td-scope");
    var select = scope ? scope.querySelector("select." + css) : null;
    return select ? select.value : null;
  }

  /* ---- figures: each returns {data, layout} or null when there is nothing to draw ---- */

  function heatmap(el) {
    var run = runOf(el), metric = choice(el, "td-metric");
    var m = run && run.metrics[metric];
    if (!m) { return null; }
    return {
      data: [{ type: "heatmap", x: m.steps, y: m.layers, z: m.z, colorscale: "Viridis",
               colorbar: { title: { text: metric, side: "right" } }, hoverongaps: false,
               hovertemplate: "%{y}<br>step %{x}<br>" + metric + " %{z}<extra></extra>" }],
      layout: layout({ title: { text: run.id + ": " + metric + " by layer" },
                       xaxis: { title: { text: "step" } },
                       yaxis: { autorange: "reversed", automargin: true, type: "category" } })
    };
  }

  function matches(name, keys) {
    for (var i = 0; i < keys.length; i++) { if (name.indexOf(keys[i]) !== -1) { return true; } }
    return false;
  }

  function scalarPanels(run) {
    var panels = [], used = {};
    Object.keys(run.scalar_panels).forEach(function (panel) {
      var names = Object.keys(run.scalars).filter(function (n) {
        return !used[n] && matches(n, run.scalar_panels[panel]);
      });
      names.forEach(function (n) { used[n] = true; });
      if (names.length) { panels.push({ name: panel, names: names }); }
    });
    return panels;
  }

  function yRange(runs, metric) {
    var lo = Infinity, hi = -Infinity;
    runs.forEach(function (run) {
      var m = run.metrics[metric];
      if (!m) { return; }
      m.z.forEach(function (row) {
        row.forEach(function (v) { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
      });
    });
    if (!isFinite(lo)) { return null; }
    var pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
    return [lo - pad, hi + pad];
  }

  function trajectories(el) {
    var run = runOf(el), metric = choice(el, "td-metric");
    var m = run && run.metrics[metric];
    if (!m) { return null; }
    var panels = scalarPanels(run);
    var gap = 0.04, metricShare = panels.length ? 0.5 : 1.0;
    var each = panels.length ? (1 - metricShare - gap * panels.length) / panels.length : 0;
    var top = [1 - metricShare, 1];
    var data = [], shapes = [], annotations = [];
    var lay = layout({ title: { text: run.id + ": " + metric + " by layer" },
                       showlegend: true, hovermode: "x unified",
                       xaxis: { title: { text: "step" }, anchor: panels.length ? "y" + (panels.length + 1) : "y" },
                       yaxis: { domain: top, title: { text: metric } } });
    m.layers.forEach(function (layer, i) {
      data.push({ type: "scatter", mode: "lines", x: m.steps, y: m.z[i], name: layer,
                  line: { color: colour(i), width: 1.6 }, legendgroup: layer });
    });
    panels.forEach(function (panel, j) {
      var axis = "y" + (j + 2), hi = 1 - metricShare - gap * (j + 1) - each * j;
      lay["yaxis" + (j + 2)] = { domain: [hi - each, hi], title: { text: panel.name } };
      panel.names.forEach(function (name, k) {
        var s = run.scalars[name];
        data.push({ type: "scatter", mode: "lines", x: s.steps, y: s.values, name: name,
                    yaxis: axis, line: { color: ["#222222", "#888888", "#b07aa1"][k % 3],
                    width: 1.2, dash: k ? "dot" : "solid" } });
      });
    });
    var layerIndex = {};
    m.layers.forEach(function (layer, i) { layerIndex[layer] = i; });
    var named = {};
    (run.chance[metric] || []).forEach(function (band) {
      var i = layerIndex[band.layer];
      if (i === undefined) { return; }
      var group = "chance: " + band.control;
      data.push({ type: "scatter", mode: "lines", x: band.steps, y: band.lo, hoverinfo: "skip",
                  line: { width: 0.6, color: rgba(colour(i), 0.5), dash: "dot" },
                  showlegend: false, legendgroup: group });
      data.push({ type: "scatter", mode: "lines", x: band.steps, y: band.hi, name: group,
                  fill: "tonexty", fillcolor: rgba(colour(i), 0.08), legendgroup: group,
                  line: { width: 0.6, color: rgba(colour(i), 0.5), dash: "dot" },
                  showlegend: !named[group], hoverinfo: "skip" });
      named[group] = true;
    });
    var surviving = run.events.filter(function (e) {
      return e.metric === metric && layerIndex[e.layer] !== undefined;
    });
    surviving.forEach(function (e) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: e.step, x1: e.step,
                    y0: 0, y1: 1, line: { color: colour(layerIndex[e.layer]), width: 1.3,
                    dash: "dash" } });
    });
    var crit = run.critical;
    crit.metric.map(function (m, k) {
      return { metric: m, layer: crit.layer[k], start: crit.start[k], end: crit.end[k] };
    }).filter(function (c) {
      return c.metric === metric && layerIndex[c.layer] !== undefined;
    }).forEach(function (c) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: c.start, x1: c.end,
                    y0: top[0], y1: top[1], line: { width: 0 }, layer: "below",
                    fillcolor: rgba(colour(layerIndex[c.layer]), 0.10) });
    });
    run.phases.forEach(function (p, i) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: p.start, x1: p.end, y0: 0,
                    y1: 1, line: { width: 0 }, layer: "below",
                    fillcolor: i % 2 ? "rgba(0,0,0,0.0)" : "rgba(0,0,0,0.045)" });
      annotations.push({ xref: "x", yref: "paper", x: (p.start + p.end) / 2, y: 1,
                         yanchor: "bottom", text: p.name, showarrow: false,
                         font: { size: 11, color: "#5b6475" } });
    });
    lay.shapes = shapes;
    lay.annotations = annotations;
    lay.title.text += " (" + surviving.length + " surviving event" +
                      (surviving.length === 1 ? "" : "s") + ")";
    if (DATA.kind === "compare") {
      var range = yRange([DATA.a, DATA.b], metric);
      if (range) { lay.yaxis.range = range; }
    }
    return { data: data, layout: lay };
  }

  function eventTypes(el) {
    var run = runOf(el);
    if (!run || !run.events.length) { return null; }
    var byType = {};
    run.events.forEach(function (e) {
      var key = e.type === null || e.type < 0 ? "untyped" : "type " + e.type;
      (byType[key] = byType[key] || []).push(e);
    });
    var data = Object.keys(byType).sort().map(function (key, i) {
      var rows = byType[key];
      return { type: "scatter", mode: "markers", name: key,
               x: rows.map(function (e) { return e.step; }),
               y: rows.map(function (e) { return e.layer; }),
               text: rows.map(function (e) {
                 return e.metric + " " + e.shape + ", ratio to floor " + e.snr + ", q " + e.q_value;
               }),
               marker: { size: 9, color: key === "untyped" ? "#9e9e9e" : colour(i),
                         symbol: rows.map(function (e) {
                           return e.shape === "slope_change" ? "triangle-up" : "circle";
                         }) },
               hovertemplate: "%{y} at step %{x}<br>%{text}<extra>" + key + "</extra>" };
    });
    return { data: data, layout: layout({
      title: { text: run.events.length + " surviving events by jump type (circle: step, triangle: slope change)" },
      xaxis: { title: { text: "step" } },
      yaxis: { type: "category", automargin: true, autorange: "reversed" } }) };
  }

  function convergence(el) {
    var run = runOf(el);
    var metrics = run ? Object.keys(run.convergence) : [];
    if (!metrics.length) { return null; }
    var data = metrics.map(function (metric, i) {
      var c = run.convergence[metric];
      return { type: "scatter", mode: "lines+markers", name: metric, x: c.layers, y: c.step,
               line: { color: colour(i) }, connectgaps: false };
    });
    return { data: data, layout: layout({
      title: { text: "Stabilisation step by layer (gaps: never stabilised)" },
      xaxis: { type: "category", title: { text: "layer (input to output)" } },
      yaxis: { title: { text: "step" }, rangemode: "tozero" } }) };
  }

  function temporal(el) {
    var run = runOf(el), metric = choice(el, "td-metric");
    var t = run && run.temporal[metric];
    if (!t) { return null; }
    var data = t.windows.map(function (w, j) {
      return { type: "bar", orientation: "h", name: w, y: t.layers,
               x: t.share.map(function (row) { return row[j]; }),
               marker: { color: ["#4c78a8", "#f58518", "#54a24b", "#b279a2"][j % 4] },
               hovertemplate: "%{y}: %{x:.0%} of the change " + w + "<extra></extra>" };
    });
    return { data: data, layout: layout({
      title: { text: metric + ": share of change above noise, by window" }, barmode: "stack",
      xaxis: { tickformat: ".0%", range: [0, 1] },
      yaxis: { type: "category", automargin: true, autorange: "reversed" } }) };
  }

  function cka(el) {
    var run = runOf(el), index = parseInt(el.getAttribute("data-index"), 10);
    var c = run && run.cka[index];
    if (!c) { return null; }
    return { data: [{ type: "heatmap", x: c.labels, y: c.labels, z: c.z, zmin: 0, zmax: 1,
                      colorscale: "Viridis", texttemplate: c.labels.length <= 12 ? "%{z:.2f}" : "",
                      colorbar: { title: { text: "CKA" } } }],
             layout: layout({ title: { text: c.title },
                              xaxis: { type: "category" },
                              yaxis: { type: "category", autorange: "reversed", automargin: true } }) };
  }

  function byArch() {
    var t = DATA.by_arch;
    if (!t || !t.columns) { return null; }
    var n = t.columns.length, data = [], lay = layout({ title: { text: "Architectures compared (mean over runs)" },
                                                      showlegend: false,
                                                      grid: { rows: 1, columns: n, pattern: "independent" } });
    t.columns.forEach(function (column, i) {
      var suffix = i ? String(i + 1) : "";
      data.push({ type: "bar", x: t.index, y: t.values[i], name: column, xaxis: "x" + suffix,
                  yaxis: "y" + suffix, marker: { color: colour(i) } });
      lay["yaxis" + suffix] = { title: { text: column.replace(/_/g, " ") }, rangemode: "tozero" };
      lay["xaxis" + suffix] = { tickangle: -30 };
    });
    return { data: data, layout: lay };
  }

  function pooledTemporal() {
    var t = DATA.temporal;
    if (!t || !t.columns) { return null; }
    var data = t.columns.map(function (w, j) {
      return { type: "bar", orientation: "h", name: w, y: t.index, x: t.values[j],
               marker: { color: ["#4c78a8", "#f58518", "#54a24b", "#b279a2"][j % 4] } };
    });
    return { data: data, layout: layout({
      title: { text: "Share of change above noise, by window (all runs; * = every metric)" },
      barmode: "stack", xaxis: { tickformat: ".0%", range: [0, 1] },
      yaxis: { type: "category", automargin: true, autorange: "reversed" } }) };
  }

  function bands(el) {
    var group = choice(el, "td-group"), metric = choice(el, "td-metric");
    var g = DATA.bands && DATA.bands[group];
    var b = g && g.metrics[metric];
    if (!b) { return null; }
    var data = [];
    b.layers.forEach(function (layer, i) {
      data.push({ type: "scatter", mode: "lines", x: b.steps, y: b.min[i], line: { width: 0 },
                  showlegend: false, hoverinfo: "skip", legendgroup: layer });
      data.push({ type: "scatter", mode: "lines", x: b.steps, y: b.max[i], line: { width: 0 },
                  fill: "tonexty", fillcolor: rgba(colour(i), 0.18), showlegend: false,
                  hoverinfo: "skip", legendgroup: layer });
      data.push({ type: "scatter", mode: "lines", x: b.steps, y: b.mean[i], name: layer,
                  line: { color: colour(i), width: 1.6 }, legendgroup: layer });
    });
    return { data: data, layout: layout({
      title: { text: group + ": " + metric + ", mean and range over " + b.n + " seeds" },
      xaxis: { title: { text: "step" } }, yaxis: { title: { text: metric } } }) };
  }

  var FIGURES = { "heatmap": heatmap, "trajectories": trajectories, "event-types": eventTypes,
                  "convergence": convergence, "temporal": temporal, "cka": cka,
                  "by-arch": byArch, "pooled-temporal": pooledTemporal, "bands": bands };

  function visible(el) { return el.offsetParent !== null; }

  function draw(el) {
    var make = FIGURES[el.getAttribute("data-plot")];
    var figure = make ? make(el) : null;
    el.setAttribute("data-metric", choice(el, "td-metric") || "");
    if (!figure) {
      if (el.classList.contains("js-plotly-plot")) { Plotly.purge(el); }
      el.classList.add("td-none");
      el.textContent = "Nothing to draw here yet.";
      el.setAttribute("data-drawn", "empty");
      return Promise.resolve();
    }
    if (el.classList.contains("td-none")) { el.classList.remove("td-none"); el.textContent = ""; }
    return Plotly.react(el, figure.data, figure.layout, PLOT_CONFIG).then(function () {
      el.setAttribute("data-drawn", "plot");
    });
  }

  function drawAll(root) {
    var plots = Array.prototype.filter.call(root.querySelectorAll(".td-plot"), visible);
    window.tdReady = Promise.all(plots.map(draw)).then(function () { return plots.length; });
    return window.tdReady;
  }

  /* ---- controls ---- */

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLSelectElement)) { return; }
    if (target.classList.contains("td-run")) {
      document.querySelectorAll(".td-run-block").forEach(function (block) {
        block.hidden = block.getAttribute("data-run") !== target.value;
      });
      drawAll(document.querySelector('.td-run-block[data-run="' + CSS.escape(target.value) + '"]'));
      return;
    }
    var scope = target.closest(".td-scope");
    if (scope) { drawAll(scope); }
  });

  /* ---- live view: poll for a fresh payload and redraw when its token changes ---- */

  function syncMetricOptions() {
    if (DATA.kind !== "run") { return; }
    document.querySelectorAll("select.td-metric").forEach(function (select) {
      Object.keys(DATA.metrics).forEach(function (metric) {
        if (!Array.prototype.some.call(select.options, function (o) { return o.value === metric; })) {
          select.add(new Option(metric, metric));
        }
      });
    });
  }

  function liveStatus(note) {
    var el = document.querySelector(".td-live");
    el.hidden = false;
    var n = DATA.downsample ? DATA.downsample.n_samples : 0;
    el.textContent = "Live: " + DATA.status + (DATA.stale ? " (writer gone)" : "") + ", " + n +
                     " samples, checked " + new Date().toLocaleTimeString() + (note ? " - " + note : "");
    el.setAttribute("data-token", DATA.token);
    el.setAttribute("data-samples", String(n));
  }

  function poll() {
    var live = CONFIG.live;
    fetch(live.url, { cache: "no-store" }).then(function (response) {
      if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
      return response.json();
    }).then(function (fresh) {
      if (fresh.token !== DATA.token) {
        DATA = fresh;
        syncMetricOptions();
        drawAll(document);
      }
      liveStatus("");
      if (DATA.status === "running" && !DATA.stale) { setTimeout(poll, live.interval_ms); }
    }).catch(function (error) {
      liveStatus("cannot reach the server (" + error.message + "); retrying");
      setTimeout(poll, live.interval_ms * 4);
    });
  }

  drawAll(document);
  if (CONFIG.live) {
    liveStatus("");
    if (DATA.status === "running") { setTimeout(poll, CONFIG.live.interval_ms); }
  }
})();
