// The dashboard: one EventSource on /_warmline/events (built by the emulator from its
// log lines and runtime snapshots). Everything on the page is derived from those events.

import { coldWarmChart, latencyChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const calls = new Map(); // connectionId -> {id, connectAt, connectMs, cold, open, turns: []}
const reports = []; // {t, ms, initMs, kind, function}
let snapshot = null;
let dirty = true;

const fmtMs = (ms) => (ms == null ? "–" : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`);
const fmtAge = (s) => (s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function callFor(id) {
  let c = calls.get(id);
  if (!c) {
    c = { id, connectAt: null, connectMs: null, cold: false, open: true, channel: null, turns: [] };
    calls.set(id, c);
  }
  return c;
}

function onStep(ev) {
  if (ev.step === "connect" && ev.connectionId) {
    const c = callFor(ev.connectionId);
    c.connectMs = ev.durationMs ?? null;
    c.connectAt = ev.ts - (ev.durationMs || 0) / 1000;
    c.cold = c.cold || Boolean(ev.cold);
  } else if (ev.step === "message" && ev.connectionId) {
    const c = callFor(ev.connectionId);
    if (ev.channel) c.channel = ev.channel;
    const start = ev.ts - (ev.durationMs || 0) / 1000;
    if (c.connectAt == null) c.connectAt = start;
    c.turns.push({
      route: ev.route || "?",
      turn: ev.turn,
      intent: ev.intent,
      cold: Boolean(ev.cold),
      start,
      firstMs: ev.firstSendMs ?? null,
      lastMs: ev.sends ? ev.durationMs : null,
      durationMs: ev.durationMs,
    });
  } else if (ev.step === "disconnect" && ev.connectionId) {
    callFor(ev.connectionId).open = false;
  }
}

function onReport(ev) {
  const kind = ev.warmup ? "warmup" : ev.initMs != null ? "cold" : "warm";
  reports.push({ t: ev.ts, ms: ev.durationMs, initMs: ev.initMs, kind, function: ev.function });
  if (reports.length > 500) reports.shift();
}

function renderCalls() {
  const list = $("call-list");
  $("calls-count").textContent = String(calls.size);
  if (!calls.size) return;
  list.replaceChildren();
  const open = new Set((snapshot?.connections || []).map((c) => c.id));
  for (const c of [...calls.values()].reverse()) {
    const art = document.createElement("article");
    art.className = "call";
    art.dataset.connection = c.id;
    const h = document.createElement("h3");
    const live = open.has(c.id);
    h.textContent = `${c.channel === "chat" ? "Browser" : "Call"} ${c.id}`;
    const tag = document.createElement("span");
    tag.className = `badge ${live ? "live" : "closed"}`;
    tag.textContent = live ? "live" : "ended";
    h.append(" ", tag);
    if (c.cold) {
      const cold = document.createElement("span");
      cold.className = "badge cold";
      cold.textContent = "cold start";
      h.append(" ", cold);
    }
    art.append(h);
    const table = document.createElement("table");
    table.className = "turns";
    table.innerHTML =
      "<thead><tr><th scope='col'>Step</th><th scope='col'>At</th><th scope='col'>Intent</th>" +
      "<th scope='col'>First token</th><th scope='col'>Last token</th><th scope='col'>Timeline</th></tr></thead>";
    const body = document.createElement("tbody");
    const rows = [{ route: "connect", start: c.connectAt, firstMs: null, lastMs: null, durationMs: c.connectMs, cold: c.cold }, ...c.turns];
    const maxMs = Math.max(1, ...rows.map((r) => r.durationMs || r.lastMs || 0));
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.className = r.cold ? "cold" : "";
      const at = r.start != null && c.connectAt != null ? `+${((r.start - c.connectAt) * 1000).toFixed(0)} ms` : "–";
      tr.append(cell(r.route + (r.cold ? " (cold)" : "")), cell(at), cell(r.intent || ""),
        cell(fmtMs(r.firstMs)), cell(fmtMs(r.lastMs)));
      const bar = cell("", "bar-cell");
      const track = document.createElement("div");
      track.className = "track";
      const total = document.createElement("div");
      total.className = `seg total ${r.cold ? "cold" : ""}`;
      total.style.width = `${(100 * (r.durationMs || r.lastMs || 0)) / maxMs}%`;
      track.append(total);
      if (r.firstMs != null) {
        const first = document.createElement("div");
        first.className = "seg first";
        first.style.width = `${(100 * r.firstMs) / maxMs}%`;
        track.append(first);
      }
      bar.append(track);
      tr.append(bar);
      body.append(tr);
    }
    table.append(body);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    wrap.append(table);
    art.append(wrap);
    list.append(art);
  }
}

function renderEnvs() {
  const body = $("envs").querySelector("tbody");
  body.replaceChildren();
  if (!snapshot) return;
  for (const e of snapshot.envs) {
    const tr = document.createElement("tr");
    tr.dataset.env = e.id;
    const idle = e.state === "idle" ? snapshot.idleReclaimS - (snapshot.now - e.lastUsedAt) : null;
    const warmth = e.invocations <= 1 && e.state !== "idle" ? "cold" : "warm";
    tr.append(
      cell(e.function),
      cell(e.id.slice(0, 8), "mono"),
      cell(`${e.state} · ${warmth}`, `state ${warmth}`),
      cell(fmtMs(e.initMs)),
      cell(fmtAge(snapshot.now - e.createdAt)),
      cell(String(e.invocations)),
      cell(idle == null ? "busy" : fmtAge(Math.max(0, idle))),
    );
    body.append(tr);
  }
  if (!snapshot.envs.length) {
    const tr = document.createElement("tr");
    const td = cell("No environments: the next invocation is a cold start.", "empty");
    td.colSpan = 7;
    tr.append(td);
    body.append(tr);
  }
}

function renderInvocations() {
  const body = $("invocations").querySelector("tbody");
  body.replaceChildren();
  for (const r of reports.slice(-12).reverse()) {
    const tr = document.createElement("tr");
    tr.className = `inv ${r.kind}`;
    const label = r.kind === "warmup" ? "warm-up ping" : r.kind;
    const kind = cell("", "kind");
    const dot = document.createElement("span");
    dot.className = `dot ${r.kind}`;
    kind.append(dot, label);
    tr.append(cell(clock(r.t)), cell(r.function), kind, cell(fmtMs(r.ms)), cell(fmtMs(r.initMs)));
    body.append(tr);
  }
}

function renderCharts() {
  // What the caller waited for: a cold invocation's Init Duration comes first.
  latencyChart($("latency-chart"), reports.map((r) => ({ ...r, ms: r.ms + (r.initMs || 0) })));
  const groups = [
    { label: "cold", kind: "cold", values: reports.filter((r) => r.kind === "cold").map((r) => r.ms + (r.initMs || 0)) },
    { label: "warm", kind: "warm", values: reports.filter((r) => r.kind === "warm").map((r) => r.ms) },
    { label: "warm-up", kind: "warmup", values: reports.filter((r) => r.kind === "warmup").map((r) => r.ms) },
  ];
  coldWarmChart($("coldwarm-chart"), groups);
}

function render() {
  if (!dirty) return;
  dirty = false;
  renderCalls();
  renderEnvs();
  renderInvocations();
  renderCharts();
}

const source = new EventSource("/_warmline/events");
source.addEventListener("open", () => {
  $("status").textContent = "live";
  $("status").dataset.kind = "open";
});
source.addEventListener("error", () => {
  // A refused stream (401/403 off loopback without the control token) is not retried by
  // the browser: say what opens it instead of "reconnecting" forever.
  const refused = source.readyState === EventSource.CLOSED;
  $("status").textContent = refused
    ? "not allowed: open the dashboard URL that warmline dev printed (…?token=)"
    : "reconnecting…";
  $("status").dataset.kind = "closed";
  // The emulator replays its history on reconnect: start from a clean slate.
  calls.clear();
  reports.length = 0;
});
source.addEventListener("message", (msg) => {
  const ev = JSON.parse(msg.data);
  if (ev.kind === "step") onStep(ev);
  else if (ev.kind === "report") onReport(ev);
  else if (ev.kind === "snapshot") snapshot = ev;
  dirty = true;
  requestAnimationFrame(render);
});
