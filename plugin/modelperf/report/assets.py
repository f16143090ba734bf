"""The HTML report's own stylesheet and script, kept apart from the code that fills the page.

The script draws every figure of the page's JSON data with plotly.js (embedded in the page too) and
wires the filters: a chart card shows when its test, metric and model match, and each machine's
panel in it when its machine matches. It sets ``document.body.dataset.ready`` once all is drawn, so
a browser test knows when to look.
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --blue: #2563eb; --red: #dc2626;
        --green: #15803d; --orange: #ea580c; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink);
       background: var(--bg); font-size: 14px; line-height: 1.45; }
main { max-width: 1500px; margin: 0 auto; padding: 0 24px 48px; }
header.page { background: #0f172a; color: #f8fafc; padding: 20px 24px 16px; }
header.page > div { max-width: 1500px; margin: 0 auto; }
header.page h1 { margin: 0 0 4px; font-size: 22px; font-weight: 650; }
header.page p { margin: 0; color: #cbd5e1; }
header.page nav { margin-top: 10px; display: flex; gap: 18px; }
header.page nav a { color: #93c5fd; text-decoration: none; }
h2 { font-size: 18px; margin: 28px 0 10px; }
section.box h2 { margin-top: 2px; }
h4 { font-size: 13px; font-weight: 600; margin: 6px 0 0 8px; color: #374151; }
p.caption { color: var(--muted); margin: 0 0 4px; font-size: 13px; }
h3 { font-size: 15px; margin: 0; }
h3.hardware { margin: 0; font-size: 13px; color: var(--ink); }
table.latest th.num { text-align: right; }
table.latest td.num { text-align: right; }
.change { color: var(--muted); font-size: 12px; font-weight: 400; }
section.box, article.card { background: white; border: 1px solid var(--line); border-radius: 10px;
                             padding: 14px 16px; margin: 12px 0; box-shadow: 0 1px 2px rgba(15, 23, 42, 0.04); }
table { border-collapse: collapse; margin: 6px 0 10px; width: 100%; font-size: 13px; }
th { text-align: left; font-weight: 600; color: #374151; border-bottom: 2px solid var(--line); padding: 6px 10px; }
td { border-bottom: 1px solid var(--line); padding: 5px 10px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.regressed td { background: #fef2f2; color: #991b1b; font-weight: 600; }
.verdict { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px; background: #f3f4f6;
           color: #374151; }
.verdict.regressed { background: #fee2e2; color: #991b1b; }
.verdict.improved, .verdict.recorded { background: #dcfce7; color: #166534; }
.verdict.inconclusive { background: #fef3c7; color: #92400e; }
.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end;
           padding: 4px 0 10px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
.filters select { font: inherit; font-size: 13px; padding: 4px 6px; border: 1px solid #cbd5e1; border-radius: 6px;
                  background: white; color: var(--ink); max-width: 340px; }
.filters button { font: inherit; font-size: 13px; padding: 5px 12px; border: 1px solid #cbd5e1; border-radius: 6px;
                  background: white; cursor: pointer; }
.filters .hint { color: var(--muted); font-size: 12px; margin-left: auto; }
.filters label.check { flex-direction: row; align-items: center; gap: 6px; font-size: 13px; color: var(--ink);
                       padding-bottom: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 14px; margin-left: auto; font-size: 12px; color: #374151; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.mark { display: inline-block; width: 16px; height: 10px; }
.mark.line { height: 0; border-top: 2px solid var(--blue); position: relative; }
.mark.line::after { content: ""; position: absolute; left: 5px; top: -4px; width: 6px; height: 6px;
                    border-radius: 50%; background: var(--blue); }
.mark.band { background: rgba(37, 99, 235, 0.18); }
.mark.diamond { width: 9px; height: 9px; background: var(--green); transform: rotate(45deg); }
.mark.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--red); }
.mark.triangle { width: 0; height: 0; border-left: 6px solid transparent; border-right: 6px solid transparent;
                 border-bottom: 10px solid var(--orange); }
.mark.dash { height: 0; border-top: 2px dashed var(--green); }
article.card header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 4px; }
article.card h3 code { font-size: 14px; }
.metric { color: var(--blue); font-weight: 600; }
.tag { font-size: 12px; color: #374151; background: #eef2ff; border-radius: 999px; padding: 0 8px; }
.file { font-size: 12px; color: var(--muted); }
.panels { display: flex; flex-wrap: wrap; gap: 12px; }
.panel { flex: 1 1 480px; min-width: 360px; }
ul.notes { margin: 2px 0 0; padding-left: 18px; font-size: 12px; color: #374151; }
li.regressed { color: #991b1b; font-weight: 600; }
li.step { color: #9a3412; }
.empty { color: var(--muted); }
[hidden] { display: none !important; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""

SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("modelperf-data").textContent);
  var config = {displaylogo: false, responsive: true, scrollZoom: false,
                modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};
  Object.keys(data.figures).forEach(function (id) {
    var figure = data.figures[id];
    Plotly.newPlot(id, figure.data, figure.layout, config);
  });
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-test]"));
  var columns = Array.prototype.slice.call(document.querySelectorAll("#latest [data-machine]"));
  var counter = document.getElementById("shown-count");
  var shared = document.getElementById("shared-axis");
  function wanted() {
    var chosen = {};
    selects.forEach(function (s) { chosen[s.dataset.filter] = s.value; });
    return chosen;
  }
  function matches(element, chosen, names) {
    return names.every(function (name) { return !chosen[name] || element.dataset[name] === chosen[name]; });
  }
  function apply() {
    var chosen = wanted(), shown = 0;
    cards.forEach(function (card) {
      var panels = card.querySelectorAll("[data-machine]"), any = false;
      panels.forEach(function (panel) {
        var show = matches(panel, chosen, ["machine"]);
        panel.hidden = !show;
        any = any || show;
      });
      card.hidden = !(any && matches(card, chosen, ["test", "metric", "model"]));
      if (!card.hidden) {
        shown += 1;
        card.querySelectorAll(".js-plotly-plot").forEach(function (plot) {
          if (plot.offsetParent !== null) { Plotly.Plots.resize(plot); }
        });
      }
    });
    rows.forEach(function (row) { row.hidden = !matches(row, chosen, ["test", "metric", "model"]); });
    columns.forEach(function (cell) { cell.hidden = !matches(cell, chosen, ["machine"]); });
    if (counter) { counter.textContent = shown + " of " + cards.length + " charts"; }
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  if (shared) {
    shared.addEventListener("change", function () {
      Object.keys(data.figures).forEach(function (id) {
        var meta = data.figures[id].layout.meta;
        if (meta && meta.sharedRange) {
          Plotly.relayout(id, {"yaxis.range": shared.checked ? meta.sharedRange : meta.ownRange});
        }
      });
    });
  }
  var reset = document.getElementById("reset-filters");
  if (reset) {
    reset.addEventListener("click", function () {
      selects.forEach(function (s) { s.value = ""; });
      apply();
    });
  }
  apply();
  document.body.dataset.ready = "true";
})();
"""
