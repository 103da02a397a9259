//! Findings: what the numbers say, ranked by severity, each with its evidence and a
//! recommendation computed from the same numbers.
//!
//! | source | severity |
//! |---|---|
//! | an error group of level `critical`, or `error` with a stack | critical |
//! | a cycle series over its target in ≥ 50 % / ≥ 10 % / ≥ 1 % / > 0 of cycles | critical / high / medium / low |
//! | a heartbeat source that never beat (when expected) or timed out | high |
//! | a halt still in force at the end / a halt that was resumed | high / medium |
//! | an error group of level `error` without a stack | medium |
//! | unreadable lines: ≥ 1 % of lines / fewer | medium / low |
//! | a warning group | low |
//! | canceled, rejected or failed orders; no fills at all | low |

use serde::Serialize;

use super::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" => Severity::Medium,
            "low" => Severity::Low,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    pub recommendation: String,
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), fmt_num)
}

/// A number without needless decimals (`1500`, `6012.3`).
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn quoted(msg: &str) -> Vec<&str> {
    msg.split('\'').skip(1).step_by(2).collect()
}

pub fn derive(r: &Report) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, title: String, evidence: String, recommendation: String| {
        out.push(Finding {
            severity,
            title,
            evidence,
            recommendation,
        })
    };

    for e in &r.errors {
        let kind = e.kind.as_deref().unwrap_or(e.level);
        let at = e.location.as_deref();
        let severity = match (e.level, e.stack.is_some()) {
            ("critical", _) | ("error", true) => Severity::Critical,
            ("error", false) => Severity::Medium,
            _ => Severity::Low,
        };
        let title = match at {
            Some(loc) => format!("{kind} at {loc}"),
            None => format!("{kind}: {}", e.template),
        };
        let times = if e.count == 1 {
            format!("once, at {}", e.first)
        } else {
            format!("{} times, first {}, last {}", e.count, e.first, e.last)
        };
        let evidence = format!("{}: `{}` — {times}", e.level, e.example);
        let none = e.example.contains("NoneType") || e.template.contains(" None");
        let recommendation = if kind == "AttributeError" && quoted(&e.example).len() >= 2 {
            let q = quoted(&e.example);
            format!(
                "`{}` has no attribute `{}`: add it, or fix the call{}; guard the call so a failure there cannot break the flow that made it",
                q[0],
                q[1],
                at.map(|l| format!(" at {l}")).unwrap_or_default()
            )
        } else if none {
            format!(
                "a path or setting is None where it is used ({} occurrence{}): initialise it before first use and validate the configuration at start-up",
                e.count,
                if e.count == 1 { "" } else { "s" }
            )
        } else if let Some(loc) = at {
            format!(
                "fix the failing code at {loc} (innermost frame of the stack); it failed {times}"
            )
        } else {
            format!("find the cause of `{}` ({times})", e.template)
        };
        push(severity, title, evidence, recommendation);
    }

    for c in &r.cycles {
        let Some(target) = c.target_ms else { continue };
        if c.overruns == 0 || c.count == 0 {
            continue;
        }
        let pct = c.overrun_pct;
        let severity = if pct >= 50.0 {
            Severity::Critical
        } else if pct >= 10.0 {
            Severity::High
        } else if pct >= 1.0 {
            Severity::Medium
        } else {
            Severity::Low
        };
        let times = c.p50_ms.map(|p| p / target).unwrap_or(0.0);
        push(
            severity,
            format!(
                "cycle `{}` overruns its {} ms target",
                c.name,
                fmt_num(target)
            ),
            format!(
                "{} of {} cycles ({}%) took longer than {} ms, {}/min; p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                c.overruns,
                c.count,
                fmt_num(pct),
                fmt_num(target),
                fmt_num(c.overruns_per_min),
                ms(c.p50_ms),
                ms(c.p95_ms),
                ms(c.p99_ms),
                ms(c.max_ms)
            ),
            format!(
                "the target is met by {}% of cycles; a target of {} ms (the p95) would be met by 95% and {} ms (the p99) by 99%; or make the cycle faster: its median is {}x the target",
                fmt_num(100.0 - pct),
                ms(c.p95_ms.map(f64::ceil)),
                ms(c.p99_ms.map(f64::ceil)),
                fmt_num((times * 10.0).round() / 10.0)
            ),
        );
    }

    for h in &r.heartbeats {
        if h.never_beat {
            push(
                Severity::High,
                format!("heartbeat `{}` never started", h.source),
                format!(
                    "no beat from `{}` in the whole session ({} s; timeout {} s from {})",
                    h.source,
                    fmt_num(r.session.duration_s),
                    fmt_num(h.timeout_s),
                    h.timeout_from
                ),
                format!(
                    "check that the beating task is started at start-up and beats at least every {} s",
                    fmt_num(h.timeout_s)
                ),
            );
        } else if h.timeouts > 0 {
            push(
                Severity::High,
                format!(
                    "heartbeat `{}` timed out {} time{}",
                    h.source,
                    h.timeouts,
                    if h.timeouts == 1 { "" } else { "s" }
                ),
                format!(
                    "{} beats; longest gap {} s > timeout {} s ({}); median interval {} s",
                    h.beats,
                    fmt_num(h.max_gap_s),
                    fmt_num(h.timeout_s),
                    h.timeout_from,
                    h.median_interval_s.map_or("-".into(), fmt_num)
                ),
                format!(
                    "find what stalls the beating thread (the gaps are {}x its median interval); if gaps this long are expected, raise the timeout above {} s",
                    h.median_interval_s
                        .filter(|m| *m > 0.0)
                        .map_or("-".into(), |m| fmt_num(
                            (h.max_gap_s / m * 10.0).round() / 10.0
                        )),
                    fmt_num(h.max_gap_s.ceil())
                ),
            );
        }
    }

    for h in &r.trading.halts {
        let why = h.reason.as_deref().unwrap_or("no reason given");
        if h.resumed {
            push(
                Severity::Medium,
                format!("trading was {} for {} s", h.to, fmt_num(h.duration_s)),
                format!(
                    "{} at {} ({}), resumed at {}{}",
                    h.to,
                    h.at,
                    why,
                    h.resumed_at.as_deref().unwrap_or("-"),
                    h.resume_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                format!("review what tripped it: {why}"),
            );
        } else {
            push(
                Severity::High,
                format!("trading is still {} at the end", h.to),
                format!(
                    "{} since {} ({} s): {}{}",
                    h.to,
                    h.at,
                    fmt_num(h.duration_s),
                    why,
                    h.source
                        .as_deref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default()
                ),
                "fix the cause, then resume with a reason (`vigil resume --reason …`)".into(),
            );
        }
    }

    let s = &r.session;
    if s.bad_lines > 0 {
        let pct = 100.0 * s.bad_lines as f64 / s.lines.max(1) as f64;
        let first = s
            .bad_line_examples
            .first()
            .map(|b| format!("; first: {}:{}: {}", b.file, b.line, b.reason))
            .unwrap_or_default();
        push(
            if pct >= 1.0 {
                Severity::Medium
            } else {
                Severity::Low
            },
            format!("{} lines could not be read", s.bad_lines),
            format!(
                "{} of {} lines ({}%){first}",
                s.bad_lines,
                s.lines,
                fmt_num((pct * 100.0).round() / 100.0)
            ),
            "the report leaves them out: fix the writer or the field mapping (`--map`)".into(),
        );
    }

    let t = &r.trading;
    let bad_orders: u64 = ["canceled", "rejected", "failed"]
        .iter()
        .filter_map(|k| t.orders_by_status.get(*k))
        .sum();
    if bad_orders > 0 {
        let parts: Vec<String> = ["canceled", "rejected", "failed"]
            .iter()
            .filter_map(|k| t.orders_by_status.get(*k).map(|n| format!("{n} {k}")))
            .collect();
        push(
            Severity::Low,
            format!("{bad_orders} of {} order events did not fill", t.orders),
            parts.join(", "),
            "check the reasons of the canceled and failed orders next to the errors above".into(),
        );
    }
    if t.fills == 0 && s.events > 0 {
        push(
            Severity::Low,
            "no trades in the session".into(),
            format!(
                "0 fills, {} order events in {} s",
                t.orders,
                fmt_num(s.duration_s)
            ),
            "if trading was expected: check the signal pipeline, guards and the trading state"
                .into(),
        );
    }
    if s.errors_other > 0 {
        push(
            Severity::Low,
            format!("{} error lines in groups beyond the limit", s.errors_other),
            format!(
                "more than {} distinct error templates",
                super::MAX_ERROR_GROUPS
            ),
            "messages with many variable parts may not be templated well; report it".into(),
        );
    }
    out.sort_by_key(|f| f.severity);
    out
}
