// vigil Status Center: one live page over the REST API and the SSE event stream.
//
// Data flow: a snapshot over REST (state, checks, programs, the last events), then
// GET /api/events/stream?since=<last seq> (EventSource; the browser resumes with
// Last-Event-ID). Every event is applied once, in seq order; a gap in seq (an event type the
// page has no listener for, or a lost frame) is filled from GET /api/events?since=. When the
// stream cannot connect at all the page polls GET /api/events every 2 s and says so.

import { h, $, clock, stamp, duration, ago, num, sparkline, Ring } from "./ui.js";
import { Jobs } from "./jobs.js";

const LOG_CAP = 500;          // event log entries kept in memory
const SPARK_CAP = 60;         // values per check sparkline
const PING_S = 5;             // server ping interval asked for
const STALE_MS = 15000;       // no frame for this long while "connected" = stale
const POLL_MS = 2000;         // the fallback's period (seed 004)
const FAILS_BEFORE_POLL = 3;  // stream failures in a row before polling starts
const CHECK_SAMPLE_MS = 5000; // checks re-read for their sparklines

// Event types with a listener on the stream; anything else arrives through the gap fill.
const TYPES = [
  "daemon_started", "daemon_stopped", "supervisor_state", "process_state", "recovered",
  "config_reloaded", "process_log", "process_communication", "trading_state", "check",
  "command", "halt_action", "alert_sent", "alert_failed", "fill", "order", "position", "equity",
  "api_error", "log", "metric", "tick", "heartbeat", "cycle",
  "job_state",
];

const S = {
  me: null,          // {name, role, csrf_token, expires_at, auth_enabled}
  lastSeq: 0,
  received: 0,
  log: [],           // [{seq, ts, type, text, sev}]
  logTypes: new Set(),
  logPaused: false,
  state: null,       // last /api/state
  checks: new Map(), // id -> check
  sparks: new Map(), // id -> Ring of values
  programs: [],
  es: null,
  conn: "connecting",
  lastFrameAt: 0,    // Date.now() of the last event or ping
  lastEventTs: null, // ts of the last event
  fails: 0,
  polling: null,
  filling: false,
  buffered: [],
  timers: [],
  running: false,
  logFollow: null,   // {name, abort, paused}
  jobs: null,
};

const can = {
  halt: () => ["admin", "operator"].includes(S.me?.role),
  resume: () => S.me?.role === "admin",
  control: () => ["admin", "operator"].includes(S.me?.role),
  admin: () => S.me?.role === "admin",
};

// ---------------------------------------------------------------- HTTP

class Expired extends Error {}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && S.me?.csrf_token) headers["X-CSRF-Token"] = S.me.csrf_token;
  const r = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await r.text();
  if (text) { try { data = JSON.parse(text); } catch { data = { message: text }; } }
  if (r.status === 401 && S.running && path !== "/api/auth/login") {
    sessionExpired();
    throw new Expired("session expired");
  }
  return { status: r.status, ok: r.ok, data };
}

// ---------------------------------------------------------------- login / session

function showLogin(message) {
  $("app").hidden = true;
  $("who").hidden = true;
  $("login-view").hidden = false;
  const m = $("login-message");
  m.hidden = !message;
  m.textContent = message || "";
  setConn("offline");
  document.title = "Log in · vigil Status Center";
  $("login-user").focus();
}

async function boot() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  let r;
  try {
    r = await api("GET", "/api/auth/me");
  } catch {
    showLogin("vigil is not reachable. Retrying…");
    setTimeout(boot, 3000);
    return;
  }
  if (r.status === 200) start(r.data);
  else showLogin();
}

async function onLogin(ev) {
  ev.preventDefault();
  const user = $("login-user").value.trim(), pass = $("login-pass").value;
  const err = $("login-error");
  err.hidden = true;
  if (!user || !pass) {
    err.textContent = "Enter your user name and password.";
    err.hidden = false;
    return;
  }
  const btn = ev.submitter || $("login-form").querySelector("button");
  btn.disabled = true;
  try {
    const r = await api("POST", "/api/auth/login", { username: user, password: pass });
    if (r.status !== 200) {
      err.textContent = r.data?.message || `login failed (${r.status})`;
      err.hidden = false;
      $("login-pass").select();
      return;
    }
    $("login-pass").value = "";
    const me = await api("GET", "/api/auth/me");
    if (me.status === 200) start(me.data);
  } catch (e) {
    err.textContent = `vigil is not reachable: ${e.message}`;
    err.hidden = false;
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  stop();
  try { await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" }); } catch { /* gone anyway */ }
  S.me = null;
  showLogin("You are logged out.");
}

function sessionExpired() {
  if (!S.running) return;
  stop();
  S.me = null;
  showLogin("Your session expired. Log in again to continue.");
}

/** Ask the server whether the session is still valid (on stream errors and at expiry). */
async function checkSession() {
  if (!S.me?.auth_enabled) return true;
  try {
    const r = await fetch("/api/auth/me", { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { sessionExpired(); return false; }
  } catch { /* unreachable: the connection indicator says so */ }
  return true;
}

// ---------------------------------------------------------------- start / stop

async function start(me) {
  S.me = me;
  S.running = true;
  $("login-view").hidden = true;
  $("app").hidden = false;
  $("who").hidden = !me.auth_enabled;
  $("who-text").textContent = `${me.name} (${me.role})`;
  applyRole();
  if (me.expires_at) {
    const ms = new Date(me.expires_at).getTime() - Date.now() + 1000;
    if (ms > 0 && ms < 2 ** 31) S.timers.push(setTimeout(checkSession, ms));
  }
  try {
    await loadSnapshot();
  } catch (e) {
    if (e instanceof Expired) return;
    setConn("reconnecting");
  }
  connect();
  S.timers.push(setInterval(tick, 1000));
  S.timers.push(setInterval(sampleChecks, CHECK_SAMPLE_MS));
  S.jobs = new Jobs({ api, can, root: $("jobs-content"), status: $("jobs-status"), resources: $("resources") });
  S.jobs.start().catch(() => {});
}

function stop() {
  S.running = false;
  if (S.es) { S.es.close(); S.es = null; }
  stopPolling();
  for (const t of S.timers) { clearTimeout(t); clearInterval(t); }
  S.timers = [];
  closeLog();
  if (S.jobs) { S.jobs.stop(); S.jobs = null; }
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
}

/** Controls a role may not use are removed, not just disabled (the server refuses anyway). */
function applyRole() {
  $("halt-open").hidden = !can.halt();
  $("resume-open").hidden = true;
  if (!can.halt()) $("halt-dialog")?.remove();
  if (!can.resume()) $("resume-dialog")?.remove();
  $("resources").hidden = !can.admin();
}

async function loadSnapshot() {
  const [st, ck, pr, ev] = await Promise.all([
    api("GET", "/api/state"), api("GET", "/api/checks"), api("GET", "/api/programs"),
    api("GET", `/api/events?last=${LOG_CAP}`),
  ]);
  if (st.ok) applyState(st.data, false);
  if (ck.ok) applyChecks(ck.data.checks || []);
  if (pr.ok) { S.programs = pr.data.programs || []; renderPrograms(); }
  if (ev.ok) {
    for (const e of ev.data.events || []) addToLog(e);
    S.lastSeq = Math.max(S.lastSeq, ev.data.last_seq || 0);
    renderLog(true);
  }
}

// ---------------------------------------------------------------- the stream

function connect() {
  if (!S.running) return;
  if (S.es) S.es.close();
  const es = new EventSource(`/api/events/stream?since=${S.lastSeq}&ping=${PING_S}`);
  S.es = es;
  let opened = false;
  es.onopen = () => {
    opened = true;
    S.fails = 0;
    S.lastFrameAt = Date.now();
    stopPolling();
    setConn("live");
    // Whatever changed while we were away: programs and state are re-read once.
    refreshSoon("programs"); refreshSoon("state"); refreshSoon("checks");
  };
  es.onerror = () => {
    if (S.es !== es) return;
    if (!opened || es.readyState === EventSource.CLOSED) S.fails++;
    opened = false;
    if (S.fails >= FAILS_BEFORE_POLL) startPolling();
    setConn(S.polling ? "polling" : "reconnecting");
    checkSession();
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. a non-200 answer): retry ourselves, from our last seq.
      es.close();
      S.es = null;
      const delay = Math.min(10000, 1000 * 2 ** Math.min(4, S.fails));
      S.timers.push(setTimeout(connect, delay));
    }
  };
  for (const t of TYPES) es.addEventListener(t, onFrame);
  es.addEventListener("message", onFrame);
  es.addEventListener("ping", () => { S.lastFrameAt = Date.now(); if (S.conn === "stale") setConn("live"); });
}

function onFrame(msg) {
  S.lastFrameAt = Date.now();
  if (S.conn !== "live" && S.es?.readyState === EventSource.OPEN) setConn("live");
  let e;
  try { e = JSON.parse(msg.data); } catch { return; }
  if (!e.seq && msg.lastEventId) e.seq = Number(msg.lastEventId);
  receive([e]);
}

/** Apply events in seq order, once each; fill gaps from the store. */
function receive(events) {
  if (S.filling) { S.buffered.push(...events); return; }
  for (const e of events) {
    if (!(e.seq > S.lastSeq)) continue;
    if (e.seq > S.lastSeq + 1) {
      S.buffered.push(e);
      fillGap();
      continue;
    }
    apply(e);
  }
}

async function fillGap() {
  if (S.filling) return;
  S.filling = true;
  try {
    for (let i = 0; i < 20; i++) {
      const r = await api("GET", `/api/events?since=${S.lastSeq}&limit=1000`);
      if (!r.ok) break;
      const evs = r.data.events || [];
      for (const e of evs) if (e.seq > S.lastSeq) apply(e);
      if (evs.length < 1000) break;
    }
  } catch { /* the stream or the poll will try again */ }
  S.filling = false;
  const rest = S.buffered.sort((a, b) => a.seq - b.seq);
  S.buffered = [];
  // What the store did not have yet is applied in order (nothing is skipped silently).
  for (const e of rest) if (e.seq > S.lastSeq) apply(e);
}

function apply(e) {
  S.lastSeq = e.seq;
  S.received++;
  S.lastEventTs = e.ts;
  addToLog(e);
  renderLog(false);
  switch (e.type) {
    case "trading_state": applyTransition(e); refreshSoon("state"); refreshSoon("checks"); break;
    case "check": applyCheckEvent(e); break;
    case "process_state": case "recovered": case "config_reloaded": case "supervisor_state":
      refreshSoon("programs"); break;
    case "daemon_started":
      refreshSoon("programs"); refreshSoon("state"); refreshSoon("checks"); break;
    default:
      if (e.type?.startsWith("job_") && S.jobs) S.jobs.onEvent(e);
  }
}

function startPolling() {
  if (S.polling || !S.running) return;
  const poll = async () => {
    try {
      const r = await api("GET", `/api/events?since=${S.lastSeq}&limit=1000`);
      if (r.ok) {
        S.lastFrameAt = Date.now();
        receive(r.data.events || []);
        if (S.conn !== "live") setConn("polling");
        refreshSoon("programs");
      }
    } catch {
      if (S.conn !== "live") setConn("reconnecting");
    }
  };
  S.polling = setInterval(poll, POLL_MS);
  poll();
}

function stopPolling() {
  if (S.polling) { clearInterval(S.polling); S.polling = null; }
}

function setConn(kind) {
  S.conn = kind;
  const el = $("conn");
  el.dataset.conn = kind;
  const last = S.lastEventTs ? clock(S.lastEventTs) : null;
  const since = S.lastFrameAt ? clock(new Date(S.lastFrameAt)) : "—";
  const text = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: `Reconnecting…${last ? ` (last event ${last})` : ""}`,
    stale: `Stale: nothing received since ${since}`,
    polling: `Polling every 2 s (live stream unavailable)${last ? `, last event ${last}` : ""}`,
    offline: "Not connected",
  }[kind];
  $("conn-text").textContent = text;
  // The banner never looks confirmed while the page is not receiving.
  const unconfirmed = !["live", "polling"].includes(kind) && S.running;
  const note = $("state-unconfirmed");
  note.hidden = !unconfirmed;
  note.textContent = unconfirmed ? `Not live: this state was last confirmed at ${since}. It may have changed.` : "";
  $("trading").dataset.live = unconfirmed ? "no" : "yes";
}

/** Once a second: uptimes, relative times, staleness. */
function tick() {
  if (S.conn === "live" && S.es && Date.now() - S.lastFrameAt > STALE_MS) setConn("stale");
  renderUptimes();
  renderSince();
}

const pending = new Map();
function refreshSoon(what) {
  if (pending.has(what)) return;
  pending.set(what, setTimeout(async () => {
    pending.delete(what);
    if (!S.running) return;
    try {
      if (what === "programs") {
        const r = await api("GET", "/api/programs");
        if (r.ok) { S.programs = r.data.programs || []; renderPrograms(); }
      } else if (what === "state") {
        const r = await api("GET", "/api/state");
        if (r.ok) applyState(r.data, false);
      } else if (what === "checks") {
        const r = await api("GET", "/api/checks");
        if (r.ok) applyChecks(r.data.checks || []);
      }
    } catch { /* next event or poll */ }
  }, 80));
}

// ---------------------------------------------------------------- trading state

const SYMBOL = { ACTIVE: "✓", REDUCING: "▼", HALTED: "■", UNKNOWN: "?" };
const MEANING = {
  ACTIVE: "Trading normally: no halt in force.",
  REDUCING: "Reduce only: positions may only shrink; no new positions.",
  HALTED: "No new orders. Only an admin can resume.",
};

function applyState(s, announce) {
  const prev = S.state?.state;
  S.state = s;
  const t = s.last_transition || {};
  renderBanner(s.state, {
    reason: t.reason, source: t.source, actor: t.actor, since: s.since || t.at,
  }, s.holding || [], announce && prev !== s.state);
  renderChecks();
}

/** A trading_state event: the banner changes at once; holding is re-read right after. */
function applyTransition(e) {
  const prev = S.state?.state;
  S.state = { ...(S.state || {}), state: e.to, since: e.at || e.ts, last_transition: e,
    holding: e.to === "ACTIVE" ? [] : (S.state?.holding || []) };
  renderBanner(e.to, { reason: e.reason, source: e.source, actor: e.actor, since: e.at || e.ts },
    S.state.holding, prev !== e.to);
}

function renderBanner(state, f, holding, announce) {
  const st = state || "UNKNOWN";
  const b = $("trading");
  b.dataset.state = st;
  $("state-word").textContent = st;
  $("state-symbol").textContent = SYMBOL[st] || "?";
  $("state-reason").textContent = st === "ACTIVE" && !f.reason ? "—" : (f.reason || "—");
  $("state-source").textContent = f.source || "—";
  $("state-actor").textContent = f.actor || "—";
  b.dataset.since = f.since || "";
  $("state-meaning").textContent = MEANING[st] || "State not known yet.";
  $("facts").hidden = st === "ACTIVE" && !f.reason && !f.since;
  renderSince();
  const box = $("holding-box"), ul = $("holding");
  ul.replaceChildren(...holding.map((x) => h("li", {}, h("strong", {}, x.source), ": ", x.reason,
    x.since ? ` (since ${clock(x.since)})` : "")));
  box.hidden = holding.length === 0;
  document.title = `${st} · vigil Status Center`;
  $("halt-open").hidden = !can.halt() || st === "HALTED";
  $("resume-open").hidden = !can.resume() || st === "ACTIVE";
  if (announce) {
    const msg = `Trading is ${st}${f.reason ? `: ${f.reason}` : ""}. ${MEANING[st] || ""}`;
    if (st === "HALTED") $("state-alert").textContent = msg;
    else $("state-live").textContent = msg;
  }
}

function renderSince() {
  const since = $("trading").dataset.since;
  $("state-since").textContent = since ? `${stamp(since)} (${ago(since)})` : "—";
}

// ---------------------------------------------------------------- dialogs

let returnFocus = null;

function openDialog(id, trigger) {
  const d = $(id);
  if (!d) return null;
  returnFocus = trigger;
  d.querySelector("form").reset();
  for (const e of d.querySelectorAll(".field-error")) e.hidden = true;
  for (const t of d.querySelectorAll("textarea")) t.removeAttribute("aria-invalid");
  d.showModal();
  d.querySelector("textarea")?.focus();
  return d;
}

function closeDialog(d) {
  if (d.open) d.close();
}

function restoreFocus() {
  const t = returnFocus;
  returnFocus = null;
  if (t && !t.hidden && t.isConnected) { t.focus(); return; }
  const other = [$("halt-open"), $("resume-open")].find((b) => b && !b.hidden);
  (other || $("main")).focus();
}

function fieldError(input, errEl, text) {
  errEl.textContent = text;
  errEl.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

function wireDialogs() {
  for (const d of document.querySelectorAll("dialog")) {
    d.addEventListener("close", restoreFocus);
    for (const c of d.querySelectorAll("[data-close]")) c.addEventListener("click", () => closeDialog(d));
  }
  $("halt-open").addEventListener("click", (e) => openDialog("halt-dialog", e.currentTarget));
  $("resume-open").addEventListener("click", (e) => {
    const d = openDialog("resume-dialog", e.currentTarget);
    if (d) { $("resume-refused").hidden = true; $("force-step1").hidden = false; $("force-step2").hidden = true; }
  });
  $("halt-form")?.addEventListener("submit", onHalt);
  $("resume-form")?.addEventListener("submit", (ev) => { ev.preventDefault(); doResume(false); });
  $("force-open")?.addEventListener("click", () => {
    $("force-step1").hidden = true; $("force-step2").hidden = false; $("force-confirm").focus();
  });
  $("force-back")?.addEventListener("click", () => {
    $("force-step2").hidden = true; $("force-step1").hidden = false; $("force-open").focus();
  });
  $("force-confirm")?.addEventListener("click", () => doResume(true));
}

async function onHalt(ev) {
  ev.preventDefault();
  const reason = $("halt-reason").value.trim();
  const err = $("halt-error");
  if (!reason) return fieldError($("halt-reason"), err, "A reason is required: say why trading must stop.");
  const reduce = $("halt-form").querySelector("input[name=mode]:checked")?.value === "reduce";
  const btn = $("halt-confirm");
  btn.disabled = true;
  try {
    const r = await api("POST", "/api/trading/halt", { reason, reduce_only: reduce });
    if (!r.ok) return fieldError($("halt-reason"), err, `Refused by vigil: ${r.data?.message || r.status}`);
    if (r.data?.transition) applyTransition({ ...r.data.transition });
    closeDialog($("halt-dialog"));
  } catch (e) {
    if (!(e instanceof Expired)) fieldError($("halt-reason"), err, `vigil is not reachable: ${e.message}`);
  } finally {
    btn.disabled = false;
  }
}

async function doResume(force) {
  const reason = $("resume-reason").value.trim();
  const err = $("resume-error");
  err.hidden = true;
  if (!reason) return fieldError($("resume-reason"), err, "A reason is required: say why it is safe to trade again.");
  try {
    const r = await api("POST", "/api/trading/resume", { reason, force });
    if (r.ok) {
      if (r.data?.transition) applyTransition({ ...r.data.transition });
      closeDialog($("resume-dialog"));
      return;
    }
    if (r.status === 409 && r.data?.error === "conditions_hold") {
      $("resume-refused-text").textContent = String(r.data.message || "").replace(/^refused:\s*/i, "");
      $("resume-holding").replaceChildren(...(r.data.holding || []).map((x) =>
        h("li", {}, h("strong", {}, x.source), ": ", x.reason)));
      $("resume-refused").hidden = false;
      $("force-step1").hidden = false;
      $("force-step2").hidden = true;
      $("force-open").focus();
      return;
    }
    fieldError($("resume-reason"), err, `Refused by vigil: ${r.data?.message || r.status}`);
  } catch (e) {
    if (!(e instanceof Expired)) fieldError($("resume-reason"), err, `vigil is not reachable: ${e.message}`);
  }
}

// ---------------------------------------------------------------- programs

const PSTATE = {
  RUNNING: "ok", STARTING: "warn", BACKOFF: "bad", STOPPING: "warn", STOPPED: "", EXITED: "warn",
  FATAL: "bad", UNKNOWN: "",
};

function lastExit(p) {
  if (p.spawnerr) return `spawn error: ${p.spawnerr}`;
  const e = p.last_exit;
  if (!e) return "—";
  const what = e.kind === "signal" ? `killed by signal ${e.value}` : `exit code ${e.value}`;
  return p.stop ? `${what} at ${clock(p.stop)}` : what;
}

function uptimeOf(p) {
  if (p.state !== "RUNNING" || !p.start) return null;
  return (Date.now() - new Date(p.start).getTime()) / 1000;
}

function renderPrograms() {
  const body = $("programs-body");
  const focused = document.activeElement?.dataset?.key;
  const rows = S.programs.map((p) => {
    const cls = PSTATE[p.state] ?? "";
    const actions = h("td", { class: "actions", "data-label": "Actions" });
    const btn = (label, action) => h("button", {
      type: "button", "aria-label": `${label} ${p.name}`, "data-key": `${action}:${p.name}`,
      onclick: (e) => programAction(p.name, action, e.currentTarget),
    }, label);
    if (can.control()) {
      if (["RUNNING", "STARTING", "BACKOFF"].includes(p.state)) actions.append(btn("Stop", "stop"), btn("Restart", "restart"));
      else actions.append(btn("Start", "start"));
    }
    actions.append(h("button", {
      type: "button", "aria-label": `Show log of ${p.name}`, "data-key": `log:${p.name}`,
      onclick: () => openLog(p.name),
    }, "Log"));
    return h("tr", { "data-name": p.name },
      h("th", { scope: "row", "data-label": "Name" }, p.name, p.critical ? h("span", { class: "badge hold" }, "critical") : null),
      h("td", { "data-label": "State" }, h("span", { class: `badge ${cls}` }, p.state)),
      h("td", { class: "num", "data-label": "PID" }, p.pid ? String(p.pid) : "—"),
      h("td", { class: "num uptime", "data-label": "Uptime" }, duration(uptimeOf(p))),
      h("td", { class: "num", "data-label": "Restarts" }, String(p.restarts ?? 0)),
      h("td", { class: "num", "data-label": "Failures in a row" }, String(p.consecutive_failures ?? 0)),
      h("td", { class: "msg", "data-label": "Last exit or error" }, lastExit(p)),
      actions);
  });
  body.replaceChildren(...rows);
  if (focused) body.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function renderUptimes() {
  const rows = $("programs-body").children;
  for (const tr of rows) {
    const p = S.programs.find((x) => x.name === tr.dataset.name);
    const cell = tr.querySelector(".uptime");
    if (p && cell) cell.textContent = duration(uptimeOf(p));
  }
}

async function programAction(name, action, button) {
  const out = $("programs-result");
  button.disabled = true;
  out.textContent = `${action} ${name}…`;
  try {
    const r = await api("POST", `/api/programs/${encodeURIComponent(name)}/${action}`);
    if (r.ok) out.textContent = `${name}: ${action} done.`;
    else {
      const res = (r.data?.results || []).filter((x) => !x.ok).map((x) => `${x.name}: ${x.fault || ""} ${x.message || ""}`.trim());
      out.textContent = `${name}: ${action} refused: ${res.join("; ") || r.data?.message || r.status}`;
    }
  } catch (e) {
    if (!(e instanceof Expired)) out.textContent = `${name}: ${action} failed: ${e.message}`;
  } finally {
    button.disabled = false;
    refreshSoon("programs");
  }
}

// ---------------------------------------------------------------- program log (live follow)

const LOG_LINES_CAP = 2000;

function closeLog() {
  if (S.logFollow) { S.logFollow.abort.abort(); S.logFollow = null; }
  $("logview").hidden = true;
}

async function openLog(name, channel) {
  const wasOpen = S.logFollow?.name;
  if (S.logFollow) S.logFollow.abort.abort();
  const ch = channel || (wasOpen === name ? $("logview-channel").value : "stdout");
  $("logview-channel").value = ch;
  const abort = new AbortController();
  const follow = { name, abort, paused: false, lines: [] };
  S.logFollow = follow;
  $("logview").hidden = false;
  $("logview-title").textContent = `Log of ${name} (${ch})`;
  $("logview-pause").setAttribute("aria-pressed", "false");
  $("logview-pause").textContent = "Pause following";
  const pre = $("logview-text");
  pre.textContent = "";
  $("logview-status").textContent = "Following live…";
  if (!wasOpen) pre.focus();
  let rest = "";
  try {
    const r = await fetch(`/api/programs/${encodeURIComponent(name)}/log?channel=${ch}&lines=200&follow=true`,
      { credentials: "same-origin", signal: abort.signal });
    if (r.status === 401) return sessionExpired();
    if (!r.ok) { $("logview-status").textContent = `Cannot read the log: ${r.status}`; return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = rest + dec.decode(value, { stream: true });
      const parts = text.split("\n");
      rest = parts.pop();
      follow.lines.push(...parts);
      if (follow.lines.length > LOG_LINES_CAP) follow.lines.splice(0, follow.lines.length - LOG_LINES_CAP);
      pre.textContent = follow.lines.join("\n") + (rest ? `\n${rest}` : "");
      if (!follow.paused) pre.scrollTop = pre.scrollHeight;
    }
    $("logview-status").textContent = "The log stream ended (program or daemon stopped). Open it again to resume.";
  } catch (e) {
    if (e.name !== "AbortError") $("logview-status").textContent = `The log stream broke: ${e.message}`;
  }
}

function wireLog() {
  $("logview-close").addEventListener("click", () => {
    const name = S.logFollow?.name;
    closeLog();
    $("programs-body").querySelector(`[data-key="log:${CSS.escape(name || "")}"]`)?.focus();
  });
  $("logview-channel").addEventListener("change", () => { if (S.logFollow) openLog(S.logFollow.name, $("logview-channel").value); });
  $("logview-pause").addEventListener("click", (e) => {
    if (!S.logFollow) return;
    S.logFollow.paused = !S.logFollow.paused;
    e.currentTarget.setAttribute("aria-pressed", String(S.logFollow.paused));
    e.currentTarget.textContent = S.logFollow.paused ? "Follow again" : "Pause following";
  });
}

// ---------------------------------------------------------------- checks

const CSTATUS = { ok: "ok", warn: "warn", critical: "bad", unknown: "", stale: "" };

function applyChecks(list) {
  for (const c of list) {
    S.checks.set(c.id, c);
    pushSpark(c.id, c.value);
  }
  renderChecks();
}

function applyCheckEvent(e) {
  const c = S.checks.get(e.name) || { id: e.name };
  Object.assign(c, { status: e.status, value: e.value, threshold: e.threshold, message: e.message,
    kind: e.kind ?? c.kind, action: e.action ?? c.action, source: e.source ?? c.source });
  S.checks.set(e.name, c);
  pushSpark(e.name, e.value);
  renderChecks();
}

function pushSpark(id, v) {
  if (!S.sparks.has(id)) S.sparks.set(id, new Ring(SPARK_CAP));
  if (v !== null && v !== undefined && Number.isFinite(Number(v))) S.sparks.get(id).push(Number(v));
}

async function sampleChecks() {
  if (!S.running || document.hidden) return;
  try {
    const r = await api("GET", "/api/checks");
    if (r.ok) applyChecks(r.data.checks || []);
  } catch { /* stream state says why */ }
}

/** Values as people read them: milliseconds as seconds for time-based checks, % where it is one. */
function fmtValue(c, v) {
  if (v === null || v === undefined) return "—";
  if (c.kind === "freshness" || c.kind === "heartbeat") return `${num(v / 1000, 1)} s`;
  if (["drawdown", "host", "cycles"].includes(c.kind)) return `${num(v, 1)} %`;
  return num(v);
}

function renderChecks() {
  const holding = new Set((S.state?.holding || []).map((x) => x.source));
  const body = $("checks-body");
  const rows = [...S.checks.values()].sort((a, b) => a.id.localeCompare(b.id)).map((c) => {
    const holds = holding.has(c.source);
    const values = S.sparks.get(c.id)?.items || [];
    return h("tr", { class: holds ? "holds" : "", "data-id": c.id },
      h("th", { scope: "row", "data-label": "Name" }, c.id, c.subject ? h("span", { class: "muted" }, ` (${c.subject})`) : null),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${CSTATUS[c.status] ?? ""}` }, (c.status || "unknown").toUpperCase()),
        holds ? h("span", { class: "badge bad hold" }, "HOLDING HALT") : null),
      h("td", { class: "num", "data-label": "Value" }, fmtValue(c, c.value)),
      h("td", { class: "num", "data-label": "Threshold" }, fmtValue(c, c.threshold)),
      h("td", { "data-label": "Action" }, c.action || "—"),
      h("td", { class: "msg", "data-label": "Message" }, c.message || "—"),
      h("td", { "data-label": "Recent values" }, sparkline(values, c.threshold === null ? NaN : Number(c.threshold), `${c.id} recent values`)));
  });
  body.replaceChildren(...rows);
}

// ---------------------------------------------------------------- event log

function summary(e) {
  switch (e.type) {
    case "process_state": {
      let s = `${e.process || e.program}: ${e.from} → ${e.to}`;
      if (e.pid) s += ` (pid ${e.pid})`;
      if (e.to === "EXITED") s += `, exit ${e.exit_status}${e.expected === false ? ", not expected" : ""}`;
      if (e.reason) s += `: ${e.reason}`;
      return s;
    }
    case "trading_state": return `${e.from} → ${e.to}: ${e.reason || ""} (${e.source || "?"}, by ${e.actor || "?"})`;
    case "check": return `${e.name}: ${e.previous || "?"} → ${e.status}: ${e.message || ""}`;
    case "daemon_started": case "daemon_stopped": return `vigil ${e.version || ""} pid ${e.pid || "?"}`;
    case "supervisor_state": return e.state;
    case "command": return `${e.command || e.name || ""} ${e.pair || ""} ${e.side || ""} ${e.qty ?? ""}`.trim();
    default: {
      const skip = new Set(["seq", "ts", "type", "received"]);
      return Object.entries(e).filter(([k]) => !skip.has(k))
        .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    }
  }
}

function severity(e) {
  if (e.type === "trading_state") return e.to === "HALTED" ? "bad" : e.to === "REDUCING" ? "warn" : "";
  if (e.type === "check") return e.status === "critical" ? "bad" : e.status === "warn" ? "warn" : "";
  if (e.type === "process_state") return ["FATAL", "BACKOFF"].includes(e.to) ? "bad" : e.to === "EXITED" ? "warn" : "";
  if (e.type === "api_error" || e.type === "alert_failed") return "bad";
  return "";
}

let freshLog = [];      // entries added since the last render
let logTimer = null;

function addToLog(e) {
  if (S.log.length && e.seq <= S.log[S.log.length - 1].seq) return;
  const x = { seq: e.seq, ts: e.ts, type: e.type, text: summary(e), sev: severity(e) };
  S.log.push(x);
  freshLog.push(x);
  if (S.log.length > LOG_CAP * 2) S.log.splice(0, S.log.length - LOG_CAP);
  if (freshLog.length > LOG_CAP) freshLog.splice(0, freshLog.length - LOG_CAP);
  if (!S.logTypes.has(e.type)) {
    S.logTypes.add(e.type);
    const sel = $("log-filter");
    const opts = [...S.logTypes].sort().map((t) => h("option", { value: t }, t));
    const cur = sel.value;
    sel.replaceChildren(h("option", { value: "" }, "all types"), ...opts);
    sel.value = cur;
  }
}

function logItem(x) {
  return h("li", { class: x.sev, "data-seq": x.seq, "data-type": x.type },
    h("span", { class: "t" }, clock(x.ts)), h("span", { class: "seq" }, `#${x.seq}`),
    h("span", { class: "ty" }, x.type), h("span", { class: "tx" }, x.text));
}

/** Render the log at most every 100 ms, whatever the event rate (bursts cost one layout). */
function renderLog(full) {
  if (full) { renderLogNow(true); return; }
  if (!logTimer) logTimer = setTimeout(() => { logTimer = null; renderLogNow(false); }, 100);
}

function renderLogNow(full) {
  if (S.log.length > LOG_CAP) S.log.splice(0, S.log.length - LOG_CAP);
  const ol = $("log-list"), box = $("log");
  const filter = $("log-filter").value;
  const show = (x) => !filter || x.type === filter;
  if (full) {
    ol.replaceChildren(...S.log.filter(show).map(logItem));
  } else {
    const frag = document.createDocumentFragment();
    for (const x of freshLog) if (show(x)) frag.append(logItem(x));
    ol.append(frag);
    // Bounded: the DOM never holds more than the buffer.
    const oldest = S.log[0]?.seq ?? 0;
    while (ol.firstElementChild && Number(ol.firstElementChild.dataset.seq) < oldest) ol.firstElementChild.remove();
  }
  freshLog = [];
  $("log-count").textContent = `${ol.childElementCount} shown; the last ${LOG_CAP} are kept`;
  if (!S.logPaused) box.scrollTop = box.scrollHeight;
}

function setLogPaused(p) {
  S.logPaused = p;
  const b = $("log-pause");
  b.setAttribute("aria-pressed", String(p));
  b.textContent = p ? "Scrolling paused: follow again" : "Pause scrolling";
  if (!p) $("log").scrollTop = $("log").scrollHeight;
}

function wireEventLog() {
  $("log-filter").addEventListener("change", () => renderLog(true));
  $("log-pause").addEventListener("click", () => setLogPaused(!S.logPaused));
  let lastTop = 0;
  $("log").addEventListener("scroll", (e) => {
    const ol = e.currentTarget;
    const atBottom = ol.scrollTop + ol.clientHeight >= ol.scrollHeight - 8;
    if (ol.scrollTop < lastTop && !atBottom && !S.logPaused) setLogPaused(true);
    lastTop = ol.scrollTop;
  });
}

// ---------------------------------------------------------------- go

wireDialogs();
wireLog();
wireEventLog();
boot();

// For the browser tests and the benchmark: what the page has applied, in order.
window.vigilPage = {
  seqs: () => S.log.slice(-LOG_CAP).map((x) => x.seq),
  lastSeq: () => S.lastSeq,
  conn: () => S.conn,
  received: () => S.received,
};
