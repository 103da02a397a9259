// Jobs and host resources (seed 004's Status Center): GET /api/system/resources for the
// snapshot, GET /api/system/task-events (SSE, the seed's event names) for live changes,
// GET /api/jobs for recently completed ones, POST /api/jobs and /api/jobs/{id}/cancel.
// Non-admins get only their own jobs and no host figures: the server filters, the page shows
// what it gets.

import { h, clock, duration, ago, num, percentChart, Ring } from "./ui.js";

const DONE_CAP = 10;      // recently completed jobs shown
const CHART_CAP = 120;    // resource samples in the chart
const TASK_EVENTS = ["initial_state", "task_queued", "task_running", "task_completed",
  "task_description_update", "heartbeat", "task_canceled", "task_paused", "task_resumed"];

const idOf = (t) => t.task_id ?? t.id;
const typeOf = (t) => t.task_type ?? t.type ?? "job";
const label = (t) => `${typeOf(t)} ${idOf(t)}`;

export class Jobs {
  constructor({ api, can, root, status, resources }) {
    this.api = api; this.can = can; this.root = root; this.status = status; this.resources = resources;
    this.running = new Map(); this.queued = new Map(); this.done = [];
    this.types = []; this.es = null; this.available = false; this.timer = null;
    this.cpu = new Ring(CHART_CAP); this.ram = new Ring(CHART_CAP); this.host = null;
  }

  async start() {
    const r = await this.api("GET", "/api/system/resources");
    if (r.status === 404) {
      this.status.textContent = "Jobs are not available on this vigil (no job queue configured).";
      this.resources.hidden = true;
      return;
    }
    if (!r.ok) { this.status.textContent = `Jobs: ${r.data?.message || r.status}`; return; }
    this.available = true;
    this.applySnapshot(r.data);
    const j = await this.api("GET", "/api/jobs");
    if (j.ok) this.applyJobs(j.data);
    const ty = await this.api("GET", "/api/jobs/types");
    if (ty.ok) this.types = (ty.data.types || []).filter((t) => t.typed);
    this.connect();
    this.timer = setInterval(() => this.renderTimes(), 1000);
    this.render();
  }

  stop() {
    if (this.es) { this.es.close(); this.es = null; }
    if (this.timer) clearInterval(this.timer);
  }

  connect() {
    const es = new EventSource("/api/system/task-events");
    this.es = es;
    const onMsg = (m) => {
      let d;
      try { d = JSON.parse(m.data); } catch { return; }
      this.onTaskEvent(d.type || m.type, d);
    };
    es.addEventListener("message", onMsg);
    for (const t of TASK_EVENTS) es.addEventListener(t, onMsg);
    es.onopen = () => { this.status.textContent = ""; this.refresh(); };
    es.onerror = () => { this.status.textContent = "Job updates: reconnecting…"; };
  }

  async refresh() {
    try {
      const r = await this.api("GET", "/api/system/resources");
      if (r.ok) this.applySnapshot(r.data);
      const j = await this.api("GET", "/api/jobs");
      if (j.ok) this.applyJobs(j.data);
      this.render();
    } catch { /* the page's connection indicator says why */ }
  }

  applySnapshot(d) {
    const q = d.queue || d;
    this.queued = new Map((q.queued_tasks || []).map((t) => [idOf(t), t]));
    const run = new Map((q.running_tasks || []).map((t) => [idOf(t), { ...this.running.get(idOf(t)), ...t }]));
    this.running = run;
    if (d.resources) this.applyResources(d.resources);
  }

  applyJobs(d) {
    const list = Array.isArray(d) ? d : (d.jobs || []);
    const finished = list.filter((j) => j.outcome || ["succeeded", "failed", "killed", "oom_killed", "timed_out",
      "canceled", "interrupted", "rejected"].includes(j.state ?? j.status));
    const end = (j) => String(j.ended_at ?? j.completed_at ?? "");
    finished.sort((a, b) => end(b).localeCompare(end(a)));
    this.done = finished.slice(0, DONE_CAP);
  }

  applyResources(res) {
    // Heartbeats may carry fewer figures than the snapshot: keep what they leave out.
    const prev = this.host || {};
    this.host = { ...prev, ...res, cpu: { ...prev.cpu, ...res.cpu }, ram: { ...prev.ram, ...res.ram } };
    if (res.cpu && Number.isFinite(res.cpu.usage_percent)) this.cpu.push(res.cpu.usage_percent);
    if (res.ram && Number.isFinite(res.ram.usage_percent)) this.ram.push(res.ram.usage_percent);
    this.renderResources();
  }

  /** A job event on the main stream (`job_state`): re-read, at most every 200 ms. */
  onEvent() {
    if (this.pending || !this.available) return;
    this.pending = setTimeout(() => { this.pending = null; this.refresh(); }, 200);
  }

  onTaskEvent(type, d) {
    const data = d.data || {};
    if (d.resources) this.applyResources(d.resources);
    const id = idOf(data);
    switch (type) {
      case "initial_state": this.applySnapshot({ queue: data, resources: d.resources }); break;
      case "task_queued": this.queued.set(id, { ...data, queued_at: data.queued_at ?? d.timestamp }); break;
      case "task_running":
        this.queued.delete(id);
        this.running.set(id, { ...this.running.get(id), ...data, started_at: data.started_at ?? d.timestamp });
        break;
      case "task_description_update": {
        const t = this.running.get(id) || this.queued.get(id);
        if (t) Object.assign(t, data);
        break;
      }
      case "task_completed": case "task_canceled": {
        const t = { ...(this.running.get(id) || this.queued.get(id) || {}), ...data, completed_at: data.completed_at ?? d.timestamp };
        this.running.delete(id); this.queued.delete(id);
        this.done.unshift(t);
        this.done = this.done.slice(0, DONE_CAP);
        break;
      }
      case "heartbeat": return;
      default: this.refresh(); return;
    }
    this.render();
  }

  async cancel(t, button) {
    button.disabled = true;
    try {
      const r = await this.api("POST", `/api/jobs/${encodeURIComponent(idOf(t))}/cancel`);
      this.status.textContent = r.ok ? `Cancel requested for ${label(t)}.` : `Cancel refused: ${r.data?.message || r.status}`;
    } finally {
      button.disabled = false;
      this.refresh();
    }
  }

  async submit(form) {
    const type = form.querySelector("[name=type]").value;
    const params = {};
    for (const inp of form.querySelectorAll("[data-param]")) if (inp.value !== "") params[inp.dataset.param] = inp.value;
    const pr = form.querySelector("[name=priority]").value;
    const body = { type, params };
    if (pr !== "") body.priority = Number(pr);
    const out = form.querySelector(".submit-result");
    const r = await this.api("POST", "/api/jobs", body);
    out.textContent = r.ok ? `Submitted ${type} ${r.data?.task_id ?? r.data?.id ?? ""}.` : `Refused: ${r.data?.message || r.status}`;
    this.refresh();
  }

  progress(t) {
    const pct = Number(t.percent ?? t.progress);
    const attrs = { max: "100", "aria-label": `Progress of ${label(t)}` };
    if (Number.isFinite(pct)) attrs.value = String(Math.max(0, Math.min(100, pct)));
    return h("progress", attrs);
  }

  cancelButton(t) {
    if (!this.can.control()) return null;
    return h("button", { type: "button", "aria-label": `Cancel job ${idOf(t)}`, onclick: (e) => this.cancel(t, e.currentTarget) }, "Cancel");
  }

  render() {
    if (!this.available) return;
    const running = [...this.running.values()], queued = [...this.queued.values()]
      .sort((a, b) => (a.queue_position ?? 0) - (b.queue_position ?? 0));
    const est = (t) => `needs ${num(t.estimated_cpu_cores)} cores, ${num(t.estimated_ram_gb)} GB`;
    const owner = (t) => (t.user_id ? `by ${t.user_id}` : "");
    const group = (title, items, empty, row) => h("div", { class: "jobs-group" },
      h("h3", {}, `${title} (${items.length})`),
      items.length ? h("ul", {}, items.map(row)) : h("p", { class: "muted" }, empty));
    const content = [
      group("Running", running, "Nothing running.", (t) => h("li", { class: "job", "data-job": idOf(t) },
        h("div", { class: "job-head" }, h("span", { class: "name" }, label(t)),
          t.state === "paused" ? h("span", { class: "badge warn" }, "PAUSED") : h("span", { class: "badge ok" }, "RUNNING"),
          h("span", { class: "muted elapsed", "data-since": t.started_at ?? "" }, ""), h("span", { class: "muted" }, owner(t)), this.cancelButton(t)),
        this.progress(t),
        h("div", {}, t.description || "No progress reported yet."),
        t.paused_reason ? h("div", { class: "muted" }, `Paused: ${t.paused_reason}`) : null,
        h("div", { class: "muted" }, est(t)))),
      group("Queued", queued, "Nothing waiting.", (t) => h("li", { class: "job", "data-job": idOf(t) },
        h("div", { class: "job-head" }, h("span", { class: "name" }, label(t)), h("span", { class: "badge warn" }, `#${t.queue_position ?? "?"} in queue`),
          h("span", { class: "muted" }, owner(t)), this.cancelButton(t)),
        h("div", {}, t.reason || t.description || ""),
        h("div", { class: "muted" }, `${est(t)}; queued ${t.queued_at ? clock(t.queued_at) : ""}`))),
      group("Recently completed", this.done, "None yet.", (t) => {
        const outcome = t.outcome ?? t.state ?? (t.success === true ? "succeeded" : t.success === false ? "failed" : "done");
        const cls = outcome === "succeeded" ? "ok" : ["canceled", "interrupted"].includes(outcome) ? "warn" : "bad";
        const at = t.completed_at ?? t.ended_at;
        return h("li", { class: "job", "data-job": idOf(t) },
          h("div", { class: "job-head" }, h("span", { class: "name" }, label(t)), h("span", { class: `badge ${cls}` }, outcome.toUpperCase()),
            h("span", { class: "muted rel", "data-at": at ?? "" }, at ? ago(at) : ""), h("span", { class: "muted" }, owner(t))),
          t.message ? h("div", {}, t.message) : null,
          t.description ? h("div", { class: "muted" }, t.description) : null);
      }),
    ];
    if (this.can.control()) content.push(this.form());
    const keep = this.root.querySelector(".submit-form");
    this.root.replaceChildren(...content);
    if (keep && this.can.control()) this.root.querySelector(".submit-form").replaceWith(keep);
    this.renderTimes();
  }

  form() {
    const types = this.types;
    if (types.length === 0) return h("p", { class: "muted submit-form" }, "No job type with a parameter template is configured, so there is nothing to submit from here.");
    const paramsBox = h("div", { class: "params" });
    const sel = h("select", { name: "type", id: "job-type" }, types.map((t) => h("option", { value: t.name }, t.name)));
    const fill = () => {
      const t = types.find((x) => x.name === sel.value) || {};
      paramsBox.replaceChildren(...(t.params || []).map((p) => {
        const id = `job-param-${p.name}`;
        const input = p.enum || p.choices
          ? h("select", { id, "data-param": p.name }, (p.enum || p.choices).map((c) => h("option", { value: c, selected: c === p.default }, c)))
          : h("input", { id, "data-param": p.name, value: p.default ?? "", pattern: p.pattern ?? undefined, maxlength: p.max_len ?? undefined });
        return h("label", { for: id }, p.name, input);
      }));
    };
    sel.addEventListener("change", fill);
    fill();
    const form = h("form", { class: "submit-form", "aria-label": "Submit a job" },
      h("label", { for: "job-type" }, "Job type", sel), paramsBox,
      h("label", { for: "job-priority" }, "Priority (higher runs first)", h("input", { id: "job-priority", name: "priority", type: "number", step: "1" })),
      h("button", { type: "submit", class: "primary" }, "Submit job"),
      h("p", { class: "submit-result", role: "status" }));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(form); });
    return form;
  }

  renderTimes() {
    for (const el of this.root.querySelectorAll(".elapsed")) {
      const s = el.dataset.since;
      el.textContent = s ? `running for ${duration((Date.now() - new Date(s).getTime()) / 1000)}` : "";
    }
    for (const el of this.root.querySelectorAll(".rel")) if (el.dataset.at) el.textContent = ago(el.dataset.at);
  }

  renderResources() {
    if (!this.can.admin() || !this.host) return;
    const r = this.host, c = r.cpu || {}, m = r.ram || {};
    const box = this.resources.querySelector("#resources-content");
    const fig = (k, v) => h("div", {}, h("dt", {}, k), h("dd", {}, v));
    box.replaceChildren(
      h("dl", { class: "res-figs" },
        fig("CPU cores", `${num(c.available_cores, 1)} of ${num(c.total_cores, 0)} available`),
        fig("CPU used", `${num(c.usage_percent, 1)} %`),
        fig("RAM", `${num(m.available_gb, 1)} of ${num(m.total_gb, 1)} GB available`),
        fig("RAM used", `${num(m.usage_percent, 1)} %`),
        fig("Minimum kept free", `${num(c.min_threshold_cores, 1)} cores, ${num(m.min_threshold_gb, 1)} GB`),
        fig("Buffer", `${num(r.buffer_percent, 0)} %${r.dev_mode ? " (dev mode)" : ""}`),
        r.reserved ? fig("Reserved by jobs", `${num(r.reserved.cpu_cores, 1)} cores, ${num(r.reserved.ram_gb, 1)} GB (${r.reserved.jobs ?? 0} jobs)`) : null),
      percentChart([{ cls: "cpu", values: this.cpu.items }, { cls: "ram", values: this.ram.items }], CHART_CAP,
        `CPU (solid) and RAM (dashed) use over the last ${this.cpu.length} samples, 0 to 100 %; now CPU ${num(c.usage_percent, 1)} %, RAM ${num(m.usage_percent, 1)} %`),
      h("p", { class: "muted" }, "Solid line: CPU use. Dashed line: RAM use."));
  }
}
