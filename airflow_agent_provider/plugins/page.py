"""The Operations page: one self-contained HTML document that reads the JSON endpoints next to it.

Why self-contained: the page is shown inside the Airflow UI (an iframe under ``/plugin/agent-provider``)
and must work in air-gapped deployments, so it loads nothing from elsewhere. Inline script and
style carry a per-response nonce that the Content-Security-Policy header names; every value from
the store is put into the page with ``textContent``, never as HTML, so a DAG or model name cannot
inject markup. URLs are relative, so the page works under any Airflow ``base_url``. The page itself holds no data and
is served only to a signed-in user; every number comes from the JSON endpoints, which check the
user's permissions (fetch sends the Airflow UI's ``_token`` cookie: same origin).
"""

from __future__ import annotations

import secrets

TITLE = "LLM Agents: costs & limits"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style nonce="__NONCE__">
  :root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --ok: #15803d; --bad: #b91c1c; --warn: #b45309; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2rem 1.6rem; max-width: 72rem; }
  h1 { font-size: 1.35rem; margin: 0 0 .8rem; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  section { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; margin-bottom: .9rem; }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
  label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
  input { font: inherit; padding: .3rem .45rem; min-width: 16rem; border: 1px solid var(--line); border-radius: 4px; }
  button { font: inherit; padding: .32rem .9rem; border-radius: 4px; border: 1px solid var(--line); cursor: pointer; }
  table { border-collapse: collapse; width: 100%; margin: .3rem 0 .6rem; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  tfoot td { font-weight: 600; }
  [hidden] { display: none !important; }
  .muted { color: var(--muted); }
  .ok { color: var(--ok); font-weight: 600; }
  .bad { color: var(--bad); font-weight: 600; }
  .warn { color: var(--warn); font-weight: 600; }
  .error { color: var(--bad); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .2rem 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>__TITLE__</h1>

<section id="store">
  <h2>Shared store</h2>
  <dl>
    <dt>Kind</dt><dd id="store-kind">&hellip;</dd>
    <dt>URL</dt><dd id="store-url">&hellip;</dd>
    <dt>Health</dt><dd id="store-health">&hellip;</dd>
    <dt>Store time (UTC)</dt><dd id="store-time">&hellip;</dd>
  </dl>
</section>

<section>
  <form id="run-form">
    <label>DAG id <input id="dag_id" name="dag_id" maxlength="250" required autocomplete="off"></label>
    <label>Run id <input id="run_id" name="run_id" maxlength="250" autocomplete="off" placeholder="optional: spend only"></label>
    <button type="submit">Show</button>
  </form>
  <p id="run-message" class="muted">Enter a DAG id (and a run id for its cost table).</p>

  <div id="spend" hidden>
    <h2>Workflow spend</h2>
    <table>
      <thead><tr><th>Period</th><th>Scope</th><th class="num">Spent (USD)</th><th class="num">Reserved (USD)</th><th class="num">Calls</th></tr></thead>
      <tbody id="spend-rows"></tbody>
    </table>
  </div>

  <div id="costs" hidden>
    <h2>Run cost per agent</h2>
    <table>
      <thead><tr><th>Agent</th><th class="num">Calls</th><th class="num">Input tokens</th><th class="num">Output tokens</th>
        <th class="num">Cached input</th><th class="num">Cost (USD)</th><th class="num">Unknown-cost calls</th></tr></thead>
      <tbody id="agent-rows"></tbody>
      <tfoot id="agent-total"></tfoot>
    </table>
    <h2>Run cost per module</h2>
    <table>
      <thead><tr><th>Module</th><th class="num">Calls</th><th class="num">Input tokens</th><th class="num">Output tokens</th>
        <th class="num">Cached input</th><th class="num">Cost (USD)</th><th class="num">Unknown-cost calls</th></tr></thead>
      <tbody id="module-rows"></tbody>
    </table>
    <p id="reserved" class="muted"></p>
    <h2>Models used by the run</h2>
    <table>
      <thead><tr><th>Model</th><th class="num">Calls</th><th class="num">Cost (USD)</th><th>Circuit breaker</th><th>Rate-limit pauses</th></tr></thead>
      <tbody id="model-rows"></tbody>
    </table>
  </div>
</section>

<section>
  <h2>Limit or breaker key</h2>
  <form id="key-form">
    <label>Key <input id="key" name="key" maxlength="200" required autocomplete="off" placeholder="openai/gpt-5-mini"></label>
    <button type="submit">Look up</button>
  </form>
  <dl id="key-result" hidden>
    <dt>Rate limit</dt><dd id="key-pause"></dd>
    <dt>Circuit breaker</dt><dd id="key-breaker"></dd>
  </dl>
  <p id="key-message" class="error"></p>
</section>

<script nonce="__NONCE__">
"use strict";
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const usd = (v) => (v === null || v === undefined) ? "-" : Number(v).toFixed(6);
const int = (v) => Number(v || 0).toLocaleString("en-US");

async function getJson(path) {
  const response = await fetch(new URL(path, location.origin + base), {headers: {Accept: "application/json"}});
  let body = null;
  try { body = await response.json(); } catch (e) { body = {detail: response.statusText}; }
  // The API answers with Airflow's own 401/403: say what they mean rather than "Forbidden".
  if (response.status === 401) body = {detail: "Not signed in to Airflow, or the session has expired: sign in again and reload this page."};
  if (response.status === 403) body = {detail: "Your Airflow user is not allowed to read this (" + path.split("/").slice(0, 3).join("/") + ")."};
  return {status: response.status, ok: response.ok, body: body};
}

function text(el, value, cls) {
  el.textContent = value;
  el.className = cls || "";
}

function row(tbody, cells, numeric) {
  const tr = document.createElement("tr");
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    if (value instanceof Node) { td.appendChild(value); } else { td.textContent = String(value); }
    if (numeric.includes(i)) td.className = "num";
    tr.appendChild(td);
  });
  tbody.appendChild(tr);
}

function span(value, cls) {
  const el = document.createElement("span");
  text(el, value, cls);
  return el;
}

function totalsCells(name, t) {
  const unknown = t.unknown_cost_calls ? span(int(t.unknown_cost_calls), "warn") : "0";
  // A group whose every call had no known price has an unknown cost, not $0.
  const cost = t.calls && t.unknown_cost_calls === t.calls ? span("unknown", "warn") : usd(t.usd);
  return [name, int(t.calls), int(t.input_tokens), int(t.output_tokens), int(t.cached_input_tokens), cost, unknown];
}

async function loadStore() {
  const r = await getJson("api/store");
  text($("store-kind"), r.body.kind || "unknown");
  text($("store-url"), r.body.url === null ? "hidden (needs configuration read permission)" : (r.body.url || "unknown"));
  if (r.ok) {
    text($("store-health"), "healthy (" + r.body.latency_ms + " ms)", "ok");
    text($("store-time"), r.body.store_time_iso);
  } else {
    text($("store-health"), r.body.detail || ("HTTP " + r.status), "bad");
    text($("store-time"), "-");
  }
}

async function loadSpend(dagId) {
  const r = await getJson("api/workflows/" + enc(dagId) + "/spend");
  if (!r.ok) { throw new Error(r.body.detail || ("HTTP " + r.status)); }
  const tbody = $("spend-rows");
  tbody.replaceChildren();
  for (const [label, s] of [["Today " + r.body.day.period, r.body.day], ["This month " + r.body.month.period, r.body.month]]) {
    row(tbody, [label, s.scope, usd(s.spent_usd), usd(s.reserved_usd), int(s.calls)], [2, 3, 4]);
  }
  $("spend").hidden = false;
}

async function loadRun(dagId, runId) {
  const r = await getJson("api/runs/" + enc(dagId) + "/" + enc(runId) + "/snapshot");
  $("costs").hidden = true;
  if (r.status === 404) { return "No spend recorded for this run yet."; }
  if (!r.ok) { throw new Error(r.body.detail || ("HTTP " + r.status)); }
  const s = r.body;
  const agents = $("agent-rows"), modules = $("module-rows"), models = $("model-rows"), total = $("agent-total");
  [agents, modules, models, total].forEach((el) => el.replaceChildren());
  const nums = [1, 2, 3, 4, 5, 6];
  for (const [name, t] of Object.entries(s.costs.agents)) row(agents, totalsCells(name, t), nums);
  for (const [name, t] of Object.entries(s.costs.modules)) row(modules, totalsCells(name, t), nums);
  row(total, totalsCells("Total", s.costs.total), nums);
  for (const m of s.models) {
    const cls = m.breaker === "closed" ? "ok" : (m.breaker === "open" ? "bad" : "warn");
    const pauses = m.limits.filter((p) => p.paused).map((p) => p.key + " until " + p.paused_until_iso);
    const cost = m.calls && m.unknown_cost_calls === m.calls ? span("unknown", "warn") : usd(m.usd);
    row(models, [m.key, int(m.calls), cost, span(m.breaker, cls), pauses.length ? span(pauses.join("; "), "warn") : "none"], [1, 2]);
  }
  text($("reserved"), s.run_scope.reserved_usd
    ? "Reserved by calls still running: $" + usd(s.run_scope.reserved_usd) : "No call of this run is running.", "muted");
  $("costs").hidden = false;
  return "Run " + runId + " of " + dagId + " (store time " + s.store_time_iso + ").";
}

async function show(event) {
  if (event) event.preventDefault();
  const dagId = $("dag_id").value.trim(), runId = $("run_id").value.trim();
  if (!dagId) return;
  const query = new URLSearchParams({dag_id: dagId});
  if (runId) query.set("run_id", runId);
  history.replaceState(null, "", "?" + query.toString());
  text($("run-message"), "Loading...", "muted");
  try {
    await loadSpend(dagId);
    text($("run-message"), runId ? await loadRun(dagId, runId) : "Enter a run id for its cost table.", "muted");
  } catch (err) {
    $("spend").hidden = true;
    $("costs").hidden = true;
    text($("run-message"), err.message, "error");
  }
}

async function lookupKey(event) {
  if (event) event.preventDefault();
  const key = $("key").value.trim();
  const path = key.split("/").map(enc).join("/");
  text($("key-message"), "");
  const [limit, breaker] = await Promise.all([getJson("api/limits/" + path), getJson("api/breakers/" + path)]);
  if (!limit.ok || !breaker.ok) {
    $("key-result").hidden = true;
    text($("key-message"), (limit.ok ? breaker : limit).body.detail || "error", "error");
    return;
  }
  text($("key-pause"), limit.body.paused ? "paused until " + limit.body.paused_until_iso + " (" + limit.body.resume_in_s + " s)" : "not paused",
       limit.body.paused ? "warn" : "ok");
  text($("key-breaker"), breaker.body.state, breaker.body.state === "closed" ? "ok" : (breaker.body.state === "open" ? "bad" : "warn"));
  $("key-result").hidden = false;
}

$("run-form").addEventListener("submit", show);
$("key-form").addEventListener("submit", lookupKey);
const initial = new URLSearchParams(location.search);
$("dag_id").value = initial.get("dag_id") || "";
$("run_id").value = initial.get("run_id") || "";
loadStore();
$("key").value = initial.get("key") || "";
if ($("dag_id").value) show();
if ($("key").value) lookupKey();
</script>
</body>
</html>
"""


def render_page() -> tuple[str, str]:
    """The page and the nonce its inline script and style carry (for the CSP header)."""
    nonce = secrets.token_urlsafe(16)
    return _PAGE.replace("__TITLE__", TITLE).replace("__NONCE__", nonce), nonce
