//! The report as Markdown (the default format), in seed 002's order: the session, findings
//! ranked by severity, errors, cycles, heartbeats, trading, configuration, unreadable lines.

use std::fmt::Write;

use vigil_core::report::Report;
use vigil_core::report::findings::fmt_num;

fn n(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), fmt_num)
}

/// Markdown table cells: no pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let s = &r.session;
    let title = s
        .session_id
        .clone()
        .or_else(|| s.inputs.first().cloned())
        .unwrap_or_else(|| "session".into());
    let _ = writeln!(o, "# Session report: {title}\n");
    let _ = writeln!(o, "- **Start:** {}", s.start.as_deref().unwrap_or("-"));
    let _ = writeln!(o, "- **End:** {}", s.end.as_deref().unwrap_or("-"));
    let _ = writeln!(
        o,
        "- **Duration:** {} s ({} min)",
        fmt_num(s.duration_s),
        fmt_num((s.duration_s / 6.0).round() / 10.0)
    );
    if let Some(run) = &s.run_id {
        let _ = writeln!(o, "- **Run ID:** {run}");
    }
    let _ = writeln!(
        o,
        "- **Events:** {} from {} lines ({} blank, {} outside --since/--until)",
        s.events, s.lines, s.blank_lines, s.filtered
    );
    let _ = writeln!(o, "- **Bad lines:** {}", s.bad_lines);
    let _ = writeln!(o, "- **Inputs:** {}\n", s.inputs.join(", "));

    let _ = writeln!(o, "## Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(o, "Nothing to report.\n");
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            o,
            "### {}. {}: {}\n\n- **Evidence:** {}\n- **Recommendation:** {}\n",
            i + 1,
            f.severity.as_str().to_uppercase(),
            f.title,
            f.evidence,
            f.recommendation
        );
    }

    let _ = writeln!(o, "## Errors and warnings\n");
    if r.errors.is_empty() {
        let _ = writeln!(o, "None.\n");
    } else {
        let _ = writeln!(
            o,
            "| level | kind | template | count | first | last | location |\n|---|---|---|---:|---|---|---|"
        );
        for e in &r.errors {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                e.level,
                cell(e.kind.as_deref().unwrap_or("-")),
                cell(&e.template),
                e.count,
                e.first,
                e.last,
                cell(e.location.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(o);
        for e in r.errors.iter().filter(|e| e.stack.is_some()).take(20) {
            let _ = writeln!(
                o,
                "**{}** at `{}` ({}, first {}):\n\n```\n{}\n```\n",
                e.kind.as_deref().unwrap_or(e.level),
                e.location.as_deref().unwrap_or("-"),
                e.example,
                e.first,
                e.stack.as_deref().unwrap_or("").trim_end()
            );
        }
    }

    let _ = writeln!(o, "## Loop cycles\n");
    if r.cycles.is_empty() {
        let _ = writeln!(o, "No cycle events.\n");
    } else {
        let _ = writeln!(
            o,
            "| cycle | target ms | count | overruns | overruns/min | mean ms | min ms | max ms | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for c in &r.cycles {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} ({}%) | {} | {} | {} | {} | {} | {} | {}{} |",
                cell(&c.name),
                n(c.target_ms),
                c.count,
                c.overruns,
                fmt_num(c.overrun_pct),
                fmt_num(c.overruns_per_min),
                n(c.mean_ms),
                n(c.min_ms),
                n(c.max_ms),
                n(c.p50_ms),
                n(c.p95_ms),
                n(c.p99_ms),
                if c.exact { "" } else { " (sketch)" }
            );
        }
        for c in &r.cycles {
            let _ = writeln!(
                o,
                "\n**{}** — duration distribution:\n\n| bucket | count | share |\n|---|---:|---:|",
                cell(&c.name)
            );
            let mut lo: Option<f64> = None;
            for b in &c.buckets {
                let label = match (lo, b.le_ms) {
                    (None, Some(hi)) => format!("≤ {} ms", fmt_num(hi)),
                    (Some(l), Some(hi)) => format!("{}–{} ms", fmt_num(l), fmt_num(hi)),
                    (Some(l), None) => format!("> {} ms", fmt_num(l)),
                    (None, None) => "all".into(),
                };
                lo = b.le_ms;
                if b.count == 0 {
                    continue;
                }
                let share = 100.0 * b.count as f64 / c.count.max(1) as f64;
                let _ = writeln!(
                    o,
                    "| {label} | {} | {}% |",
                    b.count,
                    fmt_num((share * 10.0).round() / 10.0)
                );
            }
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Heartbeats\n");
    if r.heartbeats.is_empty() {
        let _ = writeln!(o, "No heartbeat events.\n");
    } else {
        let _ = writeln!(
            o,
            "| source | beats | timeouts | timeout s (from) | longest gap s | median interval s | first | last |\n|---|---:|---:|---|---:|---:|---|---|"
        );
        for h in &r.heartbeats {
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                cell(&h.source),
                if h.never_beat {
                    " — **never beat**"
                } else {
                    ""
                },
                h.beats,
                h.timeouts,
                fmt_num(h.timeout_s),
                h.timeout_from,
                fmt_num(h.max_gap_s),
                n(h.median_interval_s),
                h.first.as_deref().unwrap_or("-"),
                h.last.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(o);
    }

    let t = &r.trading;
    let _ = writeln!(o, "## Trading activity\n");
    let statuses: Vec<String> = t
        .orders_by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let _ = writeln!(
        o,
        "- **Orders:** {}{}",
        t.orders,
        if statuses.is_empty() {
            String::new()
        } else {
            format!(" ({})", statuses.join(", "))
        }
    );
    let _ = writeln!(o, "- **Fills:** {}", t.fills);
    let _ = writeln!(o, "- **Realized PnL:** {}", fmt_num(t.realized_pnl));
    let pos: Vec<String> = t
        .positions
        .iter()
        .map(|(k, v)| format!("{k} {}", fmt_num(*v)))
        .collect();
    let _ = writeln!(
        o,
        "- **Positions at the end:** {}",
        if pos.is_empty() {
            "none".into()
        } else {
            pos.join(", ")
        }
    );
    let _ = writeln!(o, "- **Halts:** {}\n", t.halts.len());
    if !t.halts.is_empty() {
        let _ = writeln!(
            o,
            "| state | at | reason | source | resumed at | resume reason | duration s |\n|---|---|---|---|---|---|---:|"
        );
        for h in &t.halts {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {}{} |",
                h.to,
                h.at,
                cell(h.reason.as_deref().unwrap_or("-")),
                cell(h.source.as_deref().unwrap_or("-")),
                h.resumed_at.as_deref().unwrap_or("-"),
                cell(h.resume_reason.as_deref().unwrap_or("-")),
                fmt_num(h.duration_s),
                if h.resumed { "" } else { " (still halted)" }
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Configuration snapshot\n");
    match &r.config {
        None => {
            let _ = writeln!(o, "The log carries none.\n");
        }
        Some(c) => {
            for (k, v) in c {
                let _ = writeln!(o, "- `{k}`: `{v}`");
            }
            let _ = writeln!(o);
        }
    }

    if s.bad_lines > 0 {
        let _ = writeln!(
            o,
            "## Unreadable lines\n\n{} line(s) could not be read; the first {}:\n",
            s.bad_lines,
            s.bad_line_examples.len()
        );
        for b in &s.bad_line_examples {
            let _ = writeln!(o, "- `{}:{}: {}`", b.file, b.line, cell(&b.reason));
        }
        let _ = writeln!(o);
    }
    o
}
