// Small DOM and formatting helpers for the Status Center (no library).

const SVG = "http://www.w3.org/2000/svg";

/** h("button", {type: "button", onclick: f}, "text", child…) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

export function pad(n) {
  return String(n).padStart(2, "0");
}

/** Local wall-clock time of an RFC 3339 string or a Date, "14:03:07". */
export function clock(ts) {
  const d = ts instanceof Date ? ts : new Date(ts);
  if (Number.isNaN(d.getTime())) return "—";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "2026-12-03 14:03:07" in local time. */
export function stamp(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

/** A duration in seconds as "3d 4h", "2h 05m", "4m 09s", "12s". */
export function duration(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return "—";
  const s = Math.max(0, Math.floor(secs));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(ss)}s`;
  return `${ss}s`;
}

/** "5 s ago", "3 min ago", "2 h ago" relative to now (ms). */
export function ago(ts, now = Date.now()) {
  const t = new Date(ts).getTime();
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function num(v, digits = 2) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return "—";
  const n = Number(v);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

/**
 * A sparkline of `values` (numbers) as an SVG element, with an optional threshold line.
 * The label gives the same information in words (count, last, min, max).
 */
export function sparkline(values, threshold, label) {
  const w = 120, hgt = 28, padY = 3;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const vals = values.filter((v) => Number.isFinite(v));
  if (vals.length === 0) {
    svg.setAttribute("aria-label", `${label}: no values yet`);
    return svg;
  }
  const all = Number.isFinite(threshold) ? vals.concat([threshold]) : vals;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const y = (v) => (hgt - padY - ((v - lo) / (hi - lo)) * (hgt - 2 * padY)).toFixed(1);
  const step = vals.length > 1 ? w / (vals.length - 1) : 0;
  const pts = vals.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(" ");
  if (Number.isFinite(threshold)) {
    const ln = document.createElementNS(SVG, "line");
    ln.setAttribute("x1", "0"); ln.setAttribute("x2", String(w));
    ln.setAttribute("y1", y(threshold)); ln.setAttribute("y2", y(threshold));
    svg.append(ln);
  }
  const pl = document.createElementNS(SVG, "polyline");
  pl.setAttribute("points", vals.length === 1 ? `0,${y(vals[0])} ${w},${y(vals[0])}` : pts);
  svg.append(pl);
  const last = vals[vals.length - 1];
  svg.setAttribute("aria-label",
    `${label}: ${vals.length} recent values, last ${num(last)}, min ${num(Math.min(...vals))}, max ${num(Math.max(...vals))}`);
  return svg;
}

/** A line chart of series [{cls, values:[0..100]}] over `n` slots, 0–100 %. */
export function percentChart(series, n, label) {
  const w = 300, hgt = 100;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  for (const yv of [0, 50, 100]) {
    const ln = document.createElementNS(SVG, "line");
    const yy = String(hgt - yv * (hgt / 100));
    ln.setAttribute("class", "axis");
    ln.setAttribute("x1", "0"); ln.setAttribute("x2", String(w));
    ln.setAttribute("y1", yy); ln.setAttribute("y2", yy);
    svg.append(ln);
  }
  for (const s of series) {
    const vals = s.values;
    if (vals.length === 0) continue;
    const step = w / Math.max(1, n - 1);
    const off = n - vals.length;
    const pts = vals.map((v, i) => `${((off + i) * step).toFixed(1)},${(hgt - Math.min(100, Math.max(0, v)) * (hgt / 100)).toFixed(1)}`).join(" ");
    const pl = document.createElementNS(SVG, "polyline");
    pl.setAttribute("class", s.cls);
    pl.setAttribute("points", pts);
    svg.append(pl);
  }
  return svg;
}

/** A bounded ring of values. */
export class Ring {
  constructor(cap) { this.cap = cap; this.items = []; }
  push(v) { this.items.push(v); if (this.items.length > this.cap) this.items.splice(0, this.items.length - this.cap); }
  get length() { return this.items.length; }
}
