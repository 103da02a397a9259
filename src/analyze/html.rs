//! The report as one self-contained HTML file: inline CSS and inline SVG charts (the
//! cycle-duration distribution per cycle, a timeline of overruns, errors, warnings,
//! heartbeat gaps and halts), no script and nothing fetched.

use std::fmt::Write;

use vigil_core::report::findings::fmt_num;
use vigil_core::report::{Report, scan::parse_time_str};

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn n(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), fmt_num)
}

fn table(o: &mut String, head: &[&str], rows: Vec<Vec<String>>) {
    o.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>\n");
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2430;padding:0 1em}\
h1{font-size:1.6em}h2{border-bottom:1px solid #d7dce3;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #d7dce3;padding:3px 7px;text-align:left;vertical-align:top}\
th{background:#f2f4f7}pre{background:#f6f8fa;padding:.7em;overflow:auto;font-size:12px}\
.sev{font-weight:700;padding:1px 6px;border-radius:3px;color:#fff}.critical{background:#b3261e}.high{background:#d9730d}\
.medium{background:#b28600}.low{background:#5b6b7f}.finding{border-left:4px solid #d7dce3;padding:.2em .9em;margin:.8em 0}\
svg text{font:11px system-ui,sans-serif;fill:#39424e}";

/// Bars of one cycle's bucket counts.
fn distribution_svg(o: &mut String, c: &vigil_core::report::CycleStats) {
    let w = 640.0;
    let h = 160.0;
    let k = c.buckets.len().max(1) as f64;
    let max = c.buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let bw = (w - 40.0) / k;
    let _ = write!(
        o,
        "<svg class=\"dist\" role=\"img\" aria-label=\"duration distribution of {}\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">",
        esc(&c.name),
        h + 40.0,
        h + 40.0
    );
    let mut lo: Option<f64> = None;
    for (i, b) in c.buckets.iter().enumerate() {
        let bh = (b.count as f64 / max) * h;
        let x = 30.0 + i as f64 * bw;
        let over = match (c.target_ms, lo) {
            (Some(t), Some(l)) => l >= t,
            _ => false,
        };
        let label = match b.le_ms {
            Some(e) => format!("≤{}", fmt_num(e)),
            None => format!(">{}", lo.map_or("".into(), fmt_num)),
        };
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} ms: {}</title></rect>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            h - bh + 10.0,
            bw - 4.0,
            if over { "#d9730d" } else { "#4a79c4" },
            esc(&label),
            b.count,
            x + bw / 2.0 - 2.0,
            (h - bh + 6.0).max(10.0),
            b.count,
            x + bw / 2.0 - 2.0,
            h + 26.0,
            esc(&label)
        );
        lo = b.le_ms;
    }
    o.push_str("</svg>\n");
}

/// Time → x within the session.
struct Axis {
    t0: f64,
    span: f64,
    x0: f64,
    w: f64,
}
impl Axis {
    fn x(&self, ms: f64) -> f64 {
        self.x0 + ((ms - self.t0) / self.span).clamp(0.0, 1.0) * self.w
    }
}

fn ms_of(s: &str) -> f64 {
    parse_time_str(s).map_or(0.0, |v| v as f64)
}

type BinValue = fn(&vigil_core::report::TimelineBin) -> u64;

fn timeline_svg(o: &mut String, r: &Report) {
    let (Some(start), Some(end)) = (&r.session.start, &r.session.end) else {
        return;
    };
    let t0 = ms_of(start);
    let span = (ms_of(end) - t0).max(1.0);
    let ax = Axis {
        t0,
        span,
        x0: 110.0,
        w: 860.0,
    };
    let rows = ["overruns", "errors", "warnings", "heartbeat gaps", "halts"];
    let rh = 28.0;
    let h = rh * rows.len() as f64 + 30.0;
    let _ = write!(
        o,
        "<svg class=\"timeline\" role=\"img\" aria-label=\"timeline\" width=\"990\" height=\"{h}\" viewBox=\"0 0 990 {h}\">"
    );
    for (i, name) in rows.iter().enumerate() {
        let y = i as f64 * rh;
        let _ = write!(
            o,
            "<text x=\"0\" y=\"{:.1}\">{name}</text><line x1=\"110\" x2=\"970\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e7ec\"/>",
            y + 17.0,
            y + rh,
            y + rh
        );
    }
    let bin_w = (60_000.0 / span * ax.w).max(1.0);
    let maxes = |f: fn(&vigil_core::report::TimelineBin) -> u64| {
        r.timeline.bins.iter().map(f).max().unwrap_or(0).max(1) as f64
    };
    let series: [(usize, BinValue, &str); 3] = [
        (0, |b| b.overruns, "#d9730d"),
        (1, |b| b.errors, "#b3261e"),
        (2, |b| b.warnings, "#b28600"),
    ];
    for (row, f, color) in series {
        let max = maxes(f);
        for b in &r.timeline.bins {
            let v = f(b);
            if v == 0 {
                continue;
            }
            let bh = (v as f64 / max) * (rh - 6.0);
            let x = ax.x(ms_of(&b.t));
            let bw = bin_w.min(ax.x0 + ax.w - x).max(1.0);
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{}: {v}</title></rect>",
                row as f64 * rh + rh - bh,
                esc(&b.t)
            );
        }
    }
    for g in &r.timeline.heartbeat_gaps {
        let x1 = ax.x(ms_of(&g.start));
        let x2 = ax.x(ms_of(&g.start) + g.gap_s * 1000.0);
        let _ = write!(
            o,
            "<rect x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"#7b4fb5\"><title>{} silent {} s from {}</title></rect>",
            3.0 * rh + 10.0,
            (x2 - x1).max(1.0),
            esc(&g.source),
            fmt_num(g.gap_s),
            esc(&g.start)
        );
    }
    for hlt in &r.trading.halts {
        let a = ms_of(&hlt.at);
        let x1 = ax.x(a);
        let x2 = ax.x(a + hlt.duration_s * 1000.0);
        let _ = write!(
            o,
            "<rect x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#b3261e\" opacity=\".75\"><title>{} {} s: {}</title></rect>",
            4.0 * rh + 8.0,
            (x2 - x1).max(1.0),
            esc(&hlt.to),
            fmt_num(hlt.duration_s),
            esc(hlt.reason.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"110\" y=\"{:.1}\">{}</text><text x=\"970\" y=\"{:.1}\" text-anchor=\"end\">{}</text></svg>",
        h - 6.0,
        esc(start),
        h - 6.0,
        esc(end)
    );
}

pub fn render(r: &Report) -> String {
    let s = &r.session;
    let title = s
        .session_id
        .clone()
        .or_else(|| s.inputs.first().cloned())
        .unwrap_or_else(|| "session".into());
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Session report: {}</title><style>{CSS}</style></head><body>\n<h1>Session report: {}</h1>",
        esc(&title),
        esc(&title)
    );
    table(
        &mut o,
        &[
            "start",
            "end",
            "duration s",
            "run id",
            "events",
            "lines",
            "bad lines",
        ],
        vec![vec![
            s.start.clone().unwrap_or_default(),
            s.end.clone().unwrap_or_default(),
            fmt_num(s.duration_s),
            s.run_id.clone().unwrap_or_else(|| "-".into()),
            s.events.to_string(),
            s.lines.to_string(),
            s.bad_lines.to_string(),
        ]],
    );

    o.push_str("<h2>Timeline</h2>\n");
    timeline_svg(&mut o, r);

    o.push_str("<h2>Findings</h2>\n");
    if r.findings.is_empty() {
        o.push_str("<p>Nothing to report.</p>\n");
    }
    for (i, f) in r.findings.iter().enumerate() {
        let sev = f.severity.as_str();
        let _ = writeln!(
            o,
            "<div class=\"finding\"><h3>{}. <span class=\"sev {sev}\">{}</span> {}</h3><p><b>Evidence:</b> {}</p><p><b>Recommendation:</b> {}</p></div>",
            i + 1,
            sev.to_uppercase(),
            esc(&f.title),
            esc(&f.evidence),
            esc(&f.recommendation)
        );
    }

    o.push_str("<h2>Errors and warnings</h2>\n");
    table(
        &mut o,
        &[
            "level", "kind", "template", "count", "first", "last", "location",
        ],
        r.errors
            .iter()
            .map(|e| {
                vec![
                    e.level.to_owned(),
                    e.kind.clone().unwrap_or_else(|| "-".into()),
                    e.template.clone(),
                    e.count.to_string(),
                    e.first.clone(),
                    e.last.clone(),
                    e.location.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
    );
    for e in r.errors.iter().filter(|e| e.stack.is_some()).take(20) {
        let _ = writeln!(
            o,
            "<p><b>{}</b> at <code>{}</code>: {}</p><pre>{}</pre>",
            esc(e.kind.as_deref().unwrap_or(e.level)),
            esc(e.location.as_deref().unwrap_or("-")),
            esc(&e.example),
            esc(e.stack.as_deref().unwrap_or(""))
        );
    }

    o.push_str("<h2>Loop cycles</h2>\n");
    table(
        &mut o,
        &[
            "cycle",
            "target ms",
            "count",
            "overruns",
            "overruns/min",
            "mean ms",
            "min ms",
            "max ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
        ],
        r.cycles
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    n(c.target_ms),
                    c.count.to_string(),
                    format!("{} ({}%)", c.overruns, fmt_num(c.overrun_pct)),
                    fmt_num(c.overruns_per_min),
                    n(c.mean_ms),
                    n(c.min_ms),
                    n(c.max_ms),
                    n(c.p50_ms),
                    n(c.p95_ms),
                    n(c.p99_ms),
                ]
            })
            .collect(),
    );
    for c in &r.cycles {
        let _ = writeln!(o, "<h3>{}: duration distribution (ms)</h3>", esc(&c.name));
        distribution_svg(&mut o, c);
    }

    o.push_str("<h2>Heartbeats</h2>\n");
    table(
        &mut o,
        &[
            "source",
            "beats",
            "timeouts",
            "timeout s",
            "longest gap s",
            "never beat",
        ],
        r.heartbeats
            .iter()
            .map(|h| {
                vec![
                    h.source.clone(),
                    h.beats.to_string(),
                    h.timeouts.to_string(),
                    format!("{} ({})", fmt_num(h.timeout_s), h.timeout_from),
                    fmt_num(h.max_gap_s),
                    if h.never_beat {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ]
            })
            .collect(),
    );

    let t = &r.trading;
    o.push_str("<h2>Trading activity</h2>\n");
    let statuses: Vec<String> = t
        .orders_by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    table(
        &mut o,
        &[
            "orders",
            "by status",
            "fills",
            "realized PnL",
            "positions at the end",
        ],
        vec![vec![
            t.orders.to_string(),
            statuses.join(", "),
            t.fills.to_string(),
            fmt_num(t.realized_pnl),
            t.positions
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt_num(*v)))
                .collect::<Vec<_>>()
                .join(", "),
        ]],
    );
    if !t.halts.is_empty() {
        table(
            &mut o,
            &["state", "at", "reason", "resumed at", "duration s"],
            t.halts
                .iter()
                .map(|h| {
                    vec![
                        h.to.clone(),
                        h.at.clone(),
                        h.reason.clone().unwrap_or_default(),
                        h.resumed_at
                            .clone()
                            .unwrap_or_else(|| "still halted".into()),
                        fmt_num(h.duration_s),
                    ]
                })
                .collect(),
        );
    }

    o.push_str("<h2>Configuration snapshot</h2>\n");
    match &r.config {
        None => o.push_str("<p>The log carries none.</p>\n"),
        Some(c) => table(
            &mut o,
            &["key", "value"],
            c.iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect(),
        ),
    }
    if s.bad_lines > 0 {
        let _ = write!(
            o,
            "<h2>Unreadable lines</h2><p>{} line(s) could not be read; the first ones:</p><pre>",
            s.bad_lines
        );
        for b in &s.bad_line_examples {
            let _ = writeln!(
                o,
                "{}",
                esc(&format!("{}:{}: {}", b.file, b.line, b.reason))
            );
        }
        o.push_str("</pre>\n");
    }
    o.push_str("</body></html>\n");
    o
}
