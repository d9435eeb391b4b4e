"""
The Operations page: one HTML document (three views) that reads the JSON endpoints next to it.

Why a page and not a React bundle: Airflow 3.3 shows a plugin's ``external_views`` in an iframe
(nav entry, a tab on every DAG and every DAG run) with ``{DAG_ID}``/``{RUN_ID}`` put into the URL
with ``encodeURIComponent``, so a plain page gets the same places in the UI as a ``react_apps``
bundle without a build step. It follows the Airflow UI's colour mode (the parent document's
``dark`` class, or the UI's ``theme`` entry in local storage, or the system setting) and uses
Airflow's state colours.

The views, chosen by the query string (so deep links work from inside and outside Airflow):
``?`` (fleet overview), ``?view=dag&dag_id=...`` (a workflow), ``?view=run&dag_id=...&run_id=...``
(a run). Charts are drawn by Chart.js (MIT, vendored in ``static/`` with its licence, served by
the app): the page loads nothing from elsewhere, so it works air-gapped. Inline script and style
carry a per-response nonce the Content-Security-Policy names; every value from the store goes
into the page with ``textContent``, never as HTML, so a DAG or model name cannot inject markup.
URLs are relative (``api/...``, ``../dags/...``), so the page works under any Airflow ``base_url``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

TITLE = "LLM Agents: costs & limits"
CHART_JS = Path(__file__).with_name("static") / "chart.umd.min.js"

_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style nonce="__NONCE__">
  :root { color-scheme: light; --bg: #ffffff; --panel: #f8fafc; --fg: #18181b; --muted: #64748b; --line: #e2e8f0;
          --accent: #0d6efd; --ok: #15803d; --okbg: #dcfce7; --warn: #b45309; --warnbg: #fef3c7; --bad: #b91c1c;
          --badbg: #fee2e2; --run: #0e7490; --runbg: #cffafe; --bar: #3b82f6; --track: #e2e8f0; }
  :root.dark { color-scheme: dark; --bg: #09090b; --panel: #18181b; --fg: #f4f4f5; --muted: #a1a1aa; --line: #27272a;
          --accent: #60a5fa; --ok: #4ade80; --okbg: #14532d; --warn: #fbbf24; --warnbg: #78350f; --bad: #f87171;
          --badbg: #7f1d1d; --run: #67e8f9; --runbg: #164e63; --bar: #60a5fa; --track: #3f3f46; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 Inter, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 16px 20px;
         background: var(--bg); color: var(--fg); }
  a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; margin-bottom: 12px; }
  h1 { font-size: 1.25rem; font-weight: 600; margin: 0; }
  h2 { font-size: 1rem; font-weight: 600; margin: 0 0 8px; }
  nav.crumbs { color: var(--muted); font-size: .85rem; }
  nav.crumbs a, nav.crumbs span { margin-right: 4px; }
  .spacer { flex: 1; }
  .card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; min-width: 0; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 12px; }
  .grid > .card { margin-bottom: 0; }
  .mt { margin-top: 12px; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; font-size: .875rem; }
  th { text-align: left; font-weight: 600; color: var(--muted); font-size: .75rem; text-transform: uppercase; letter-spacing: .03em; }
  th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.wrap { max-width: 28rem; overflow-wrap: anywhere; }
  td.nowrap, td.name { white-space: nowrap; }
  [hidden] { display: none !important; }
  .muted { color: var(--muted); }
  .chip { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: .75rem; font-weight: 600; white-space: nowrap;
          background: var(--track); color: var(--fg); }
  .chip.success, .chip.ok, .chip.closed { background: var(--okbg); color: var(--ok); }
  .chip.partial, .chip.warn, .chip.half_open, .chip.skipped { background: var(--warnbg); color: var(--warn); }
  .chip.failed, .chip.over, .chip.open, .chip.upstream_failed, .chip.unhealthy { background: var(--badbg); color: var(--bad); }
  .chip.running, .chip.live { background: var(--runbg); color: var(--run); }
  .meter { display: flex; align-items: center; gap: 6px; min-width: 9rem; }
  .meter .track { flex: 1; height: 8px; border-radius: 4px; background: var(--track); overflow: hidden; min-width: 4rem; }
  .meter .fill { height: 100%; background: var(--ok); }
  .meter .fill.warn { background: var(--warn); } .meter .fill.over { background: var(--bad); }
  .meter .pct { font-variant-numeric: tabular-nums; font-size: .8rem; min-width: 3.2rem; text-align: right; }
  .kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
  .kpi { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 10rem; }
  .kpi .label { color: var(--muted); font-size: .75rem; text-transform: uppercase; letter-spacing: .03em; }
  .kpi .value { font-size: 1.2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  .chart { position: relative; height: 240px; }
  .notice { border: 1px dashed var(--line); border-radius: 8px; padding: 16px; margin-bottom: 12px; }
  .notice.error { border-color: var(--bad); color: var(--bad); }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; }
</style>
</head>
<body>
<header>
  <h1 id="title">__TITLE__</h1>
  <nav class="crumbs" id="crumbs"></nav>
  <span class="spacer"></span>
  <span id="live" class="chip live" hidden>live &middot; refreshing</span>
  <span id="store-health" class="chip" title="Shared store">store &hellip;</span>
</header>
<div id="message" class="notice" hidden></div>

<main id="overview" hidden>
  <div class="kpis" id="fleet-kpis"></div>
  <div class="card scroll"><h2>Workflows: spend against budgets</h2>
    <table id="workflows"><thead><tr><th>Workflow</th><th class="num">Today spent</th><th class="num">Reserved</th><th class="num">Daily limit</th><th>Today</th>
      <th class="num">Month spent</th><th class="num">Monthly limit</th><th>Month</th><th>Last run</th></tr></thead><tbody></tbody></table></div>
  <div class="card"><h2>Daily spend, last 30 days</h2><div class="chart"><canvas id="daily-chart" aria-label="Daily spend"></canvas></div></div>
  <div class="card scroll"><h2>Recent runs</h2>
    <table id="runs"><thead><tr><th>Workflow</th><th>Run</th><th>State</th><th>Outcome</th><th class="num">Cost</th><th class="num">Duration</th><th>Ended</th></tr></thead><tbody></tbody></table></div>
  <div class="grid mt">
    <div class="card scroll"><h2>Most expensive agents</h2>
      <table id="top-agents"><thead><tr><th>Agent</th><th>Workflow</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th></tr></thead><tbody></tbody></table></div>
    <div class="card scroll"><h2>Most expensive models</h2>
      <table id="top-models"><thead><tr><th>Model</th><th class="num">Runs</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th></tr></thead><tbody></tbody></table></div>
  </div>
  <div class="card scroll mt"><h2>Rate limits: current use</h2>
    <table id="limits"><thead><tr><th>Key</th><th>Tier</th><th class="num">Used / limit</th><th>Use</th><th class="num">Leases held</th><th>Pause</th><th>Breaker</th></tr></thead><tbody></tbody></table></div>
  <div class="grid">
    <div class="card"><h2>Open breakers</h2><ul id="breakers"></ul></div>
    <div class="card"><h2>Active pauses</h2><ul id="pauses"></ul></div>
  </div>
</main>

<main id="dag-view" hidden>
  <div class="kpis" id="dag-kpis"></div>
  <div class="card scroll"><h2>Budgets</h2>
    <table id="dag-budgets"><thead><tr><th>Budget</th><th class="num">Spent</th><th class="num">Reserved</th><th class="num">Limit</th><th>Use</th></tr></thead><tbody></tbody></table></div>
  <div class="card"><h2>Daily spend, last 30 days</h2><div class="chart"><canvas id="dag-daily-chart" aria-label="Daily spend of the workflow"></canvas></div></div>
  <div class="card scroll"><h2>Runs</h2>
    <table id="dag-runs"><thead><tr><th>Run</th><th>State</th><th>Outcome</th><th class="num">Cost</th><th class="num">Duration</th><th>Ended</th></tr></thead><tbody></tbody></table></div>
  <div class="card scroll"><h2>Most expensive agents</h2>
    <table id="dag-agents"><thead><tr><th>Agent</th><th class="num">Runs</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th></tr></thead><tbody></tbody></table></div>
</main>

<main id="run-view" hidden>
  <div class="kpis" id="run-kpis"></div>
  <div class="card"><h2>Cost per agent</h2><div class="chart" id="run-chart-box"><canvas id="run-chart" aria-label="Cost per agent"></canvas></div></div>
  <div class="card scroll"><h2>Agents</h2>
    <table id="run-agents"><thead><tr><th>Agent</th><th>Status</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th><th class="num">Reserved</th>
      <th>Answered by</th><th>Fallbacks</th><th class="num">Duration</th><th>Reason</th></tr></thead><tbody></tbody></table></div>
  <div class="card scroll"><h2>Modules against their budgets</h2>
    <table id="run-modules"><thead><tr><th>Module</th><th class="num">Calls</th><th class="num">Spent</th><th class="num">Reserved</th><th class="num">Budget</th><th>Use</th></tr></thead><tbody></tbody></table></div>
</main>

<script nonce="__NONCE__" src="static/chart.umd.min.js"></script>
<script nonce="__NONCE__">
(function () {
  "use strict";
  var REFRESH_MS = 5000;
  var charts = {};
  var timer = null;
  var query = new URLSearchParams(location.search);
  var view = query.get("view") || "overview";
  var dagId = query.get("dag_id");
  var runId = query.get("run_id");

  // -- theme: follow the Airflow UI (parent's "dark" class, its local-storage "theme", or the system) ---------
  function isDark() {
    try {
      if (window.parent !== window && window.parent.document.documentElement.classList.contains("dark")) return true;
      if (window.parent !== window && window.parent.document.documentElement.classList.contains("light")) return false;
    } catch (e) { /* not same-origin: fall through */ }
    var stored = null;
    try { stored = localStorage.getItem("theme"); } catch (e) { stored = null; }
    if (stored === "dark" || stored === "light") return stored === "dark";
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function applyTheme() {
    var dark = isDark();
    if (document.documentElement.classList.contains("dark") === dark) return;
    document.documentElement.classList.toggle("dark", dark);
    Object.keys(charts).forEach(function (k) { styleChart(charts[k]); charts[k].update(); });
  }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function styleChart(chart) {
    var fg = cssVar("--muted"), line = cssVar("--line");
    ["x", "y"].forEach(function (axis) {
      var s = chart.options.scales[axis]; s.ticks.color = fg; s.grid.color = line; s.border = { color: line };
    });
    chart.data.datasets.forEach(function (d) { d.backgroundColor = cssVar("--bar"); });
  }
  applyTheme();
  try {
    new MutationObserver(applyTheme).observe(window.parent.document.documentElement, { attributes: true, attributeFilter: ["class"] });
  } catch (e) { /* standalone page */ }
  window.addEventListener("storage", applyTheme);
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);

  // -- formatting -------------------------------------------------------------------------------------------------
  function money(v) {
    if (v === null || v === undefined) return "unknown";
    var a = Math.abs(v);
    var digits = a === 0 || a >= 1 ? 2 : a >= 0.01 ? 4 : 6;
    return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: digits }).format(v);
  }
  function limitText(v) { return v === null || v === undefined ? "no limit" : money(v); }
  function int(v) { return v === null || v === undefined ? "\u2014" : new Intl.NumberFormat("en-US").format(v); }
  function duration(s) {
    if (s === null || s === undefined) return "\u2014";
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60), r = Math.round(s % 60);
    if (m < 60) return m + " min " + r + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function when(iso) { return iso ? iso.replace("T", " ").replace("+00:00", " UTC") : "\u2014"; }
  function windowName(s) { return s === 60 ? "minute" : s === 3600 ? "hour" : s === 86400 ? "day" : s + " s"; }

  // -- DOM helpers (text only, never HTML) -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function td(content, cls) {
    var cell = el("td", cls ? { cls: cls } : {});
    if (content instanceof Node) cell.appendChild(content); else cell.textContent = content === null || content === undefined ? "\u2014" : String(content);
    return cell;
  }
  function chip(text, kind) { return el("span", { cls: "chip " + (kind || text || ""), text: text || "\u2014" }); }
  function meter(pct, level, used) {
    if (pct === null || pct === undefined) return el("span", { cls: "muted", text: "no limit" });
    var shown = pct === 0 && used > 0 ? "<0.1%" : pct.toFixed(1) + "%";  // spent something, less than 0.05 %
    var fill = el("div", { cls: "fill " + level });
    fill.style.width = Math.min(pct, 100) + "%";
    return el("div", { cls: "meter", title: pct + "% used" }, [el("div", { cls: "track" }, [fill]), el("span", { cls: "pct " + level, text: shown })]);
  }
  function fill(tableId, rows, emptyText, columns) {
    var body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren();
    if (!rows.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: String(columns), cls: "muted", text: emptyText })]));
      return;
    }
    rows.forEach(function (cells) { body.appendChild(el("tr", {}, cells)); });
  }
  function selfLink(params, text) {
    var q = new URLSearchParams(params);
    return el("a", { href: "?" + q.toString(), text: text });
  }
  function airflowUrl(parts) {
    return new URL("../" + parts.map(encodeURIComponent).join("/"), location.href).toString();
  }
  function airflowLink(parts, text) { return el("a", { href: airflowUrl(parts), target: "_top", text: text }); }
  function kpi(container, label, value, extra) {
    var box = el("div", { cls: "kpi" }, [el("div", { cls: "label", text: label }), el("div", { cls: "value", text: value })]);
    if (extra) box.appendChild(extra);
    container.appendChild(box);
  }
  function crumbs(items) {
    var nav = document.getElementById("crumbs");
    nav.replaceChildren();
    items.forEach(function (item, i) {
      if (i) nav.appendChild(el("span", { text: "/" }));
      nav.appendChild(item.params ? selfLink(item.params, item.text) : el("span", { text: item.text }));
    });
  }
  function show(id) {
    ["overview", "dag-view", "run-view"].forEach(function (v) { document.getElementById(v).hidden = v !== id; });
  }
  function message(text, isError, code) {
    var box = document.getElementById("message");
    box.replaceChildren(document.createTextNode(text));
    if (code) { box.appendChild(document.createTextNode(" ")); box.appendChild(el("code", { text: code })); }
    box.className = "notice" + (isError ? " error" : "");
    box.hidden = false;
  }
  function barChart(id, labels, values, horizontal, label) {
    if (typeof Chart === "undefined") return;
    var canvas = document.getElementById(id);
    if (charts[id]) { charts[id].destroy(); }
    var chart = new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, borderRadius: 3, maxBarThickness: 28 }] },
      options: {
        indexAxis: horizontal ? "y" : "x", responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) { return money(horizontal ? c.parsed.x : c.parsed.y); } } } },
        scales: { x: { ticks: {}, grid: {} }, y: { ticks: {}, grid: {} } }
      }
    });
    var valueAxis = chart.options.scales[horizontal ? "x" : "y"];
    valueAxis.beginAtZero = true;
    valueAxis.ticks.callback = function (v) { return money(v); };
    styleChart(chart);
    chart.update();
    charts[id] = chart;
  }

  // -- data -----------------------------------------------------------------------------------------------------------
  function getJson(path) {
    return fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { status: r.status, body: body }; });
    });
  }
  function failed(answer) {
    if (answer.status === 200) return false;
    if (answer.status === 401) message("Your Airflow session has expired: sign in to Airflow again, then reload this page.", true);
    else if (answer.status === 403) message("Your Airflow user may not see this: " + (answer.body.detail || "forbidden"), true);
    else message(answer.body.detail || ("The API answered " + answer.status), true);
    return true;
  }
  function loadStore() {
    getJson("api/store").then(function (a) {
      var node = document.getElementById("store-health");
      if (a.status === 200) {
        node.className = "chip ok";
        node.textContent = a.body.kind + " store \u00b7 healthy \u00b7 " + a.body.latency_ms.toFixed(1) + " ms";
      } else if (a.status === 403) {
        node.className = "chip"; node.textContent = "store: not visible to you";
      } else {
        node.className = "chip unhealthy"; node.textContent = "store unavailable";
        node.title = a.body.detail || "";
      }
    });
  }
  function runRows(runs, withDag) {
    return runs.map(function (r) {
      var cells = withDag ? [td(selfLink({ view: "dag", dag_id: r.dag_id }, r.dag_id), "name")] : [];
      return cells.concat([
        td(selfLink({ view: "run", dag_id: r.dag_id, run_id: r.run_id }, r.run_id), "name"),
        td(chip(r.state, r.state === "no result yet" ? "" : r.state)),
        td(r.outcome ? chip(r.outcome) : el("span", { cls: "muted", text: "\u2014" })),
        td(money(r.cost_usd) + (r.cost_complete ? "" : " + unknown"), "num"),
        td(duration(r.duration_s), "num"),
        td(when(r.ended_at_iso), "nowrap")
      ]);
    });
  }

  function renderOverview(d) {
    show("overview");
    crumbs([{ text: "Fleet overview" }]);
    var kpis = document.getElementById("fleet-kpis");
    kpis.replaceChildren();
    var today = d.workflows.reduce(function (s, w) { return s + (w.today.spent_usd || 0); }, 0);
    var month = d.workflows.reduce(function (s, w) { return s + (w.month.spent_usd || 0); }, 0);
    var reserved = d.workflows.reduce(function (s, w) { return s + (w.today.reserved_usd || 0); }, 0);
    kpi(kpis, "Spent today", money(today));
    kpi(kpis, "Spent this month", money(month));
    kpi(kpis, "Reserved now", money(reserved));
    kpi(kpis, "Workflows", int(d.workflows.length));
    kpi(kpis, "Open breakers", int(d.breakers_open.length));
    if (d.empty) {
      message("No agent runs in the store yet. Run a workflow (trigger it in Airflow, or `airflow dags test <dag_id>`): " +
              "each model call is charged to the ledger and each run's workflow_result task records its summary here.", false);
    }
    fill("workflows", d.workflows.map(function (w) {
      var last = w.last_run;
      return [
        td(selfLink({ view: "dag", dag_id: w.dag_id }, w.dag_id), "name"),
        td(money(w.today.spent_usd), "num"), td(money(w.today.reserved_usd), "num"), td(limitText(w.today.limit_usd), "num"),
        td(meter(w.today.pct, w.today.level, w.today.spent_usd + w.today.reserved_usd)),
        td(money(w.month.spent_usd), "num"), td(limitText(w.month.limit_usd), "num"), td(meter(w.month.pct, w.month.level, w.month.spent_usd + w.month.reserved_usd)),
        td(last ? chip(last.outcome || last.state) : el("span", { cls: "muted", text: w.budgets.known ? "\u2014" : "no result recorded yet" }))
      ];
    }), "No workflow has spent anything yet.", 9);
    barChart("daily-chart", d.daily.map(function (p) { return p.day.slice(5); }), d.daily.map(function (p) { return p.spent_usd; }), false, "Spent");
    fill("runs", runRows(d.runs, true), "No runs yet.", 7);
    fill("top-agents", d.top_agents.map(function (a) {
      return [td(a.agent, "name"), td(selfLink({ view: "dag", dag_id: a.dag_id }, a.dag_id), "name"), td(int(a.calls), "num"),
              td(int(a.input_tokens) + " / " + int(a.output_tokens), "num"),
              td(money(a.cost_usd) + (a.unknown_cost_calls ? " + " + a.unknown_cost_calls + " unpriced" : ""), "num")];
    }), "No charged calls yet.", 5);
    fill("top-models", d.top_models.map(function (m) {
      return [td(m.model, "wrap"), td(int(m.runs), "num"), td(int(m.calls), "num"), td(int(m.input_tokens) + " / " + int(m.output_tokens), "num"),
              td(money(m.cost_usd) + (m.unknown_cost_calls ? " + " + m.unknown_cost_calls + " unpriced" : ""), "num")];
    }), "No charged calls yet.", 5);
    renderLimits("limits", d.limits);
    var breakers = document.getElementById("breakers");
    breakers.replaceChildren();
    d.breakers_open.forEach(function (b) { breakers.appendChild(el("li", {}, [el("code", { text: b.key }), " ", chip(b.state)])); });
    if (!d.breakers_open.length) breakers.appendChild(el("li", { cls: "muted", text: "None: every breaker of the models in use is closed." }));
    var pauses = document.getElementById("pauses");
    pauses.replaceChildren();
    d.pauses.forEach(function (p) { pauses.appendChild(el("li", {}, [el("code", { text: p.key }), " until " + when(p.paused_until_iso) + " (" + duration(p.resume_in_s) + " left)"])); });
    if (!d.pauses.length) pauses.appendChild(el("li", { cls: "muted", text: "None: no provider asked to wait." }));
  }

  function renderLimits(tableId, limits) {
    var rows = [];
    limits.forEach(function (l) {
      var tiers = l.tiers.length ? l.tiers : [null];
      tiers.forEach(function (t, i) {
        rows.push([
          td(i === 0 ? el("code", { text: l.key }) : ""),
          td(t ? t.unit + " per " + windowName(t.window_s) : "no window limit", "nowrap"),
          td(t ? int(t.used) + " / " + int(t.limit) : "\u2014", "num"),
          td(t ? meter(t.pct, t.level, t.used) : ""),
          td(i === 0 ? (l.max_concurrent ? int(l.leases_held) + " / " + int(l.max_concurrent) : int(l.leases_held)) : "", "num"),
          td(i === 0 ? (l.paused ? chip("paused " + duration(l.resume_in_s), "warn") : chip("not paused", "ok")) : ""),
          td(i === 0 ? chip(l.breaker) : "")
        ]);
      });
    });
    fill(tableId, rows, "No workflow configures a rate limit (rate_limits in its file).", 7);
  }

  function renderDag(d) {
    show("dag-view");
    crumbs([{ text: "Fleet overview", params: { view: "overview" } }, { text: d.dag_id }]);
    var kpis = document.getElementById("dag-kpis");
    kpis.replaceChildren();
    kpi(kpis, "Spent today", money(d.today.spent_usd));
    kpi(kpis, "Spent this month", money(d.month.spent_usd));
    kpi(kpis, "Run budget", limitText(d.budgets.run));
    kpi(kpis, "Runs shown", int(d.runs.length));
    if (!d.budgets.known) message("No run of this workflow has finished yet, so its budgets are not known here.", false);
    var budgetRows = [
      [td("Today (" + d.today.period + ")"), td(money(d.today.spent_usd), "num"), td(money(d.today.reserved_usd), "num"), td(limitText(d.today.limit_usd), "num"), td(meter(d.today.pct, d.today.level, d.today.spent_usd + d.today.reserved_usd))],
      [td("This month (" + d.month.period + ")"), td(money(d.month.spent_usd), "num"), td(money(d.month.reserved_usd), "num"), td(limitText(d.month.limit_usd), "num"), td(meter(d.month.pct, d.month.level, d.month.spent_usd + d.month.reserved_usd))]
    ];
    Object.keys(d.budgets.modules).forEach(function (m) {
      budgetRows.push([td("Module " + m + ", per run"), td("\u2014", "num"), td("\u2014", "num"), td(limitText(d.budgets.modules[m]), "num"), td(el("span", { cls: "muted", text: "see each run" }))]);
    });
    fill("dag-budgets", budgetRows, "", 5);
    barChart("dag-daily-chart", d.daily.map(function (p) { return p.day.slice(5); }), d.daily.map(function (p) { return p.spent_usd; }), false, "Spent");
    fill("dag-runs", runRows(d.runs, false), "No runs yet.", 6);
    fill("dag-agents", d.top_agents.map(function (a) {
      return [td(a.agent, "wrap"), td(int(a.runs), "num"), td(int(a.calls), "num"), td(int(a.input_tokens) + " / " + int(a.output_tokens), "num"), td(money(a.cost_usd), "num")];
    }), "No charged calls yet.", 5);
  }

  function renderRun(d) {
    show("run-view");
    crumbs([{ text: "Fleet overview", params: { view: "overview" } }, { text: d.dag_id, params: { view: "dag", dag_id: d.dag_id } }, { text: d.run_id }]);
    var kpis = document.getElementById("run-kpis");
    kpis.replaceChildren();
    kpi(kpis, "Cost", money(d.total.usd) + (d.total.unknown_cost_calls ? " + " + d.total.unknown_cost_calls + " unpriced" : ""));
    kpi(kpis, "Run budget", limitText(d.run_budget.limit_usd), meter(d.run_budget.pct, d.run_budget.level, d.run_budget.spent_usd + d.run_budget.reserved_usd));
    kpi(kpis, "Reserved now", money(d.run_budget.reserved_usd));
    kpi(kpis, "Calls", int(d.total.calls));
    kpi(kpis, "Tokens in / out", int(d.total.input_tokens) + " / " + int(d.total.output_tokens));
    kpi(kpis, "State", d.run.state, d.run.outcome ? chip(d.run.outcome) : null);
    kpi(kpis, "Duration", duration(d.run.duration_s));
    var open = el("div", { cls: "kpi" }, [el("div", { cls: "label", text: "In Airflow" }), airflowLink(["dags", d.dag_id, "runs", d.run_id], "Open the run")]);
    kpis.appendChild(open);
    var box = document.getElementById("run-chart-box");
    box.style.height = Math.max(160, 34 * d.agents.length + 40) + "px";
    barChart("run-chart", d.agents.map(function (a) { return a.agent; }), d.agents.map(function (a) { return a.cost_usd; }), true, "Cost");
    fill("run-agents", d.agents.map(function (a) {
      var name = a.task_id ? airflowLink(["dags", d.dag_id, "runs", d.run_id, "tasks", a.task_id].concat(a.mapped ? ["mapped"] : []), a.agent) : el("span", { text: a.agent });
      return [
        td(name, "name"), td(a.status ? chip(a.status) : el("span", { cls: "muted", text: "\u2014" })),
        td(int(a.calls), "num"), td(int(a.input_tokens) + " / " + int(a.output_tokens), "num"),
        td(money(a.cost_usd) + (a.unknown_cost_calls ? " + " + a.unknown_cost_calls + " unpriced" : ""), "num"),
        td(money(a.reserved_usd), "num"), td(a.answered_by, "name"),
        td(a.fallbacks_used.length ? a.fallbacks_used.join(", ") : "none", "wrap"), td(duration(a.duration_s), "num"), td(a.reason, "wrap")
      ];
    }), "No agent of this run has been charged yet.", 10);
    fill("run-modules", d.modules.map(function (m) {
      return [td(m.module), td(int(m.calls), "num"), td(money(m.spent_usd), "num"), td(money(m.reserved_usd), "num"), td(limitText(m.limit_usd), "num"), td(meter(m.pct, m.level, m.spent_usd + m.reserved_usd))];
    }), "No module spend.", 6);
    var live = d.live || d.run_budget.reserved_usd > 0;
    document.getElementById("live").hidden = !live;
    schedule(live);
  }

  function schedule(again) {
    if (timer) clearTimeout(timer);
    timer = again ? setTimeout(load, REFRESH_MS) : null;
  }

  function load() {
    var path;
    if (view === "run") {
      if (!dagId || !runId) { message("A run view needs ?view=run&dag_id=...&run_id=... in its address.", true); return; }
      path = "api/runs/" + encodeURIComponent(dagId) + "/" + encodeURIComponent(runId);
    } else if (view === "dag") {
      if (!dagId) { message("A workflow view needs ?view=dag&dag_id=... in its address.", true); return; }
      path = "api/workflows/" + encodeURIComponent(dagId);
    } else {
      path = "api/overview";
    }
    document.getElementById("message").hidden = true;
    getJson(path).then(function (a) {
      if (failed(a)) { show(null); schedule(a.status === 404 && a.body.unknown === "run"); return; }
      if (view === "run") renderRun(a.body); else if (view === "dag") renderDag(a.body); else renderOverview(a.body);
      document.body.setAttribute("data-loaded", view);
    }).catch(function (e) { message("Could not reach the API: " + e, true); });
    loadStore();
  }
  load();
})();
</script>
</body>
</html>
"""


def render_page() -> tuple[str, str]:
    """The page and the nonce its inline script and style carry (for the CSP header)."""
    nonce = secrets.token_urlsafe(16)
    return _PAGE.replace("__TITLE__", TITLE).replace("__NONCE__", nonce), nonce


__all__ = ["CHART_JS", "TITLE", "render_page"]
