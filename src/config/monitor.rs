//! The monitor's tables of vigil.toml: `[rules.ID]`, `[checks.ID]`, `[halt]`, `[alerts.ID]`,
//! `[ingest]` and `[events]`. Their types are read by the monitor (which re-exports them as
//! its `config` module); they are parsed here, by [`super::load`], from the same spanned
//! TOML tree and into the same error sink ([`Ctx`]) as the rest of the file, so the file is
//! read once and every problem is reported with the others as `FILE:LINE:COL: key: message`.
//! Reference: docs/config.md.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use vigil_core::rules::Action;
use vigil_core::trading::PositionBehaviour;

use super::load::{Ctx, Sec, did_you_mean, entries, found, int_of};
use super::{ConfigErrors, Signal};

/// A risk rule or health check, by kind, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Drawdown {
        warn_pct: Option<f64>,
        critical_pct: f64,
    },
    DailyLoss {
        basis_pnl: bool,
        warn: Option<f64>,
        critical: f64,
        reset_utc: String,
    },
    ConsecutiveLosses {
        warn: Option<f64>,
        critical: f64,
        pair: Option<String>,
    },
    ApiErrors {
        window_s: f64,
        warn_count: Option<u32>,
        critical_count: u32,
        critical_codes: Vec<String>,
        venue: Option<String>,
    },
    Volatility {
        window_s: f64,
        warn_pct: Option<f64>,
        critical_pct: f64,
        confirm_s: f64,
        pairs: Vec<String>,
    },
    Freshness {
        pairs: Vec<String>,
        threshold_s: f64,
        warn_s: Option<f64>,
        grace_s: f64,
    },
    Heartbeat {
        sources: Vec<String>,
        period_s: f64,
        grace_s: f64,
    },
    Cycles {
        name: Option<String>,
        window_s: f64,
        target_ms: Option<f64>,
        warn_overrun_pct: Option<f64>,
        critical_overrun_pct: f64,
        min_samples: usize,
    },
    Host {
        metric: HostMetric,
        warn_pct: Option<f64>,
        critical_pct: f64,
        sustain_s: f64,
        interval_s: f64,
    },
    Http {
        url: String,
        interval_s: f64,
        timeout_s: f64,
        failures: u32,
        expect_status: u16,
    },
    Kraken {
        base_url: String,
        interval_s: f64,
        timeout_s: f64,
        failures: u32,
        api_key_env: Option<String>,
        api_secret_env: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMetric {
    Cpu,
    Ram,
}

impl HostMetric {
    pub fn metric_name(self) -> &'static str {
        match self {
            HostMetric::Cpu => "host.cpu_pct",
            HostMetric::Ram => "host.ram_pct",
        }
    }
}

/// One configured rule (`rules.ID`) or check (`checks.ID`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub id: String,
    /// `rules` or `checks`.
    pub section: &'static str,
    pub kind: Kind,
    pub action: Action,
    pub auto_resume_after_s: Option<f64>,
    /// Only events with this `source` feed the rule.
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HaltConfig {
    pub position_behavior: PositionBehaviour,
    /// Program groups stopped on HALT (after the position commands are issued).
    pub stop_groups: Vec<String>,
    /// Program groups signalled on HALT and on REDUCING.
    pub signal_groups: Vec<(String, Signal)>,
    pub webhook: Option<String>,
    pub webhook_retries: u32,
    /// A command run on every transition (argv), with VIGIL_* variables in its environment.
    pub command: Option<Vec<String>>,
}

impl Default for HaltConfig {
    fn default() -> Self {
        HaltConfig {
            position_behavior: PositionBehaviour::Maintain,
            stop_groups: Vec::new(),
            signal_groups: Vec::new(),
            webhook: None,
            webhook_retries: 5,
            command: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    Webhook,
    Alertmanager,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertSink {
    pub id: String,
    pub kind: SinkKind,
    pub url: String,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// JSONL files to follow (rotation and truncation handled).
    pub files: Vec<PathBuf>,
    /// Listen on `data_dir/vigil.sock` (default true).
    pub socket: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            files: Vec::new(),
            socket: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MonitorConfig {
    pub rules: Vec<RuleDef>,
    pub halt: HaltConfig,
    pub alerts: Vec<AlertSink>,
    pub ingest: IngestConfig,
    /// `[events]`: retention of the event history.
    pub retention: crate::store::retention::Retention,
}

/// Read the monitor's tables out of a vigil.toml document (`doc`, its top-level table);
/// relative `[ingest] files` resolve against `here`. Problems go to `cx`.
pub(super) fn parse(cx: &mut Ctx, doc: &DeTable<'_>, here: &Path) -> MonitorConfig {
    let mut out = MonitorConfig::default();
    for section in ["rules", "checks"] {
        let Some(v) = doc.get(section) else { continue };
        let what = format!("a table of tables ([{section}.ID] sections)");
        let Some(t) = cx.table(section.to_string(), v, &what) else {
            continue;
        };
        for (id, def) in entries(t) {
            let id: &str = id.get_ref();
            let path = format!("{section}.{id}");
            let Some(table) = cx.table(path.clone(), def, &format!("a table ([{path}])")) else {
                continue;
            };
            let sec = Sec {
                table,
                path,
                at: def.span().start,
            };
            if let Some(r) = parse_rule(cx, section_name(section), id, sec) {
                out.rules.push(r);
            }
        }
    }
    if let Some(sec) = top_table(cx, doc, "halt") {
        out.halt = parse_halt(cx, sec);
    }
    if let Some(v) = doc.get("alerts")
        && let Some(t) = cx.table(
            "alerts".into(),
            v,
            "a table of tables ([alerts.ID] sections)",
        )
    {
        for (id, def) in entries(t) {
            let id: &str = id.get_ref();
            let path = format!("alerts.{id}");
            let Some(table) = cx.table(path.clone(), def, &format!("a table ([{path}])")) else {
                continue;
            };
            let mut f = Fields::new(cx, table, path, def.span().start);
            let kind = match f.str("kind").as_deref() {
                None | Some("webhook") => SinkKind::Webhook,
                Some("alertmanager") => SinkKind::Alertmanager,
                Some(other) => {
                    f.bad(
                        "kind",
                        format!("expected webhook or alertmanager, found {other:?}"),
                    );
                    SinkKind::Webhook
                }
            };
            let url = f.req_str("url").unwrap_or_default();
            let send_resolved = f.bool("send_resolved").unwrap_or(true);
            f.finish(&["kind", "url", "send_resolved"]);
            out.alerts.push(AlertSink {
                id: id.to_string(),
                kind,
                url,
                send_resolved,
            });
        }
    }
    if let Some(sec) = top_table(cx, doc, "ingest") {
        let mut f = Fields { cx, sec };
        out.ingest.files = f
            .strs("files")
            .unwrap_or_default()
            .into_iter()
            .map(|p| super::resolve(here, Path::new(&p)))
            .collect();
        out.ingest.socket = f.bool("socket").unwrap_or(true);
        f.finish(&["files", "socket"]);
    }
    if let Some(sec) = top_table(cx, doc, "events") {
        let mut f = Fields { cx, sec };
        if let Some(days) = f.pos("max_age_days") {
            out.retention.max_age = std::time::Duration::try_from_secs_f64(days * 86_400.0)
                .unwrap_or(std::time::Duration::MAX);
        }
        match f.uint("max_size_mb") {
            Some(0) => f.bad(
                "max_size_mb",
                "expected a positive integer (MiB), found 0".into(),
            ),
            Some(mb) => out.retention.max_bytes = mb.saturating_mul(1024 * 1024),
            None => {}
        }
        f.finish(&["max_age_days", "max_size_mb"]);
    }
    out
}

/// The monitor's tables of a vigil.toml text, on their own (nothing is read from disk and
/// nothing else is validated): for tests and the fuzzers. The daemon and `check-config` get
/// them from [`super::load`], in the one pass over the file.
pub fn parse_text(path: &Path, text: &str) -> Result<MonitorConfig, ConfigErrors> {
    let mut cx = Ctx::new();
    cx.add_file(path.to_path_buf(), text.to_string(), true);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        let at = e.span().map_or(0, |s| s.start);
        cx.at(at, "", format!("TOML syntax error: {}", e.message()));
    }
    let here = path.parent().unwrap_or(Path::new("."));
    let cfg = parse(&mut cx, doc.get_ref(), here);
    if cx.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(cx.finish())
    }
}

fn section_name(section: &str) -> &'static str {
    if section == "rules" {
        "rules"
    } else {
        "checks"
    }
}

/// A top-level table of the monitor (`[halt]`, `[ingest]`, `[events]`), or a type error.
fn top_table<'a, 'i>(cx: &mut Ctx, doc: &'a DeTable<'i>, name: &str) -> Option<Sec<'a, 'i>> {
    let v = doc.get(name)?;
    let table = cx.table(name.to_string(), v, &format!("a table ([{name}])"))?;
    Some(Sec {
        table,
        path: name.to_string(),
        at: v.span().start,
    })
}

/// Typed access to one table's keys, errors into the load's [`Ctx`]. A missing key is
/// located at the table's header, a bad value at its key (`key = …`).
struct Fields<'c, 'a, 'i> {
    cx: &'c mut Ctx,
    sec: Sec<'a, 'i>,
}

impl<'c, 'a, 'i> Fields<'c, 'a, 'i> {
    fn new(cx: &'c mut Ctx, table: &'a DeTable<'i>, path: String, at: usize) -> Self {
        Fields {
            cx,
            sec: Sec { table, path, at },
        }
    }

    fn value(&self, k: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.sec.get(k)
    }

    /// Where the key `k` is written, else the header.
    fn key_at(&self, k: &str) -> usize {
        entries(self.sec.table)
            .into_iter()
            .find(|(name, _)| AsRef::<str>::as_ref(name.get_ref()) == k)
            .map_or(self.sec.at, |(name, _)| name.span().start)
    }

    fn bad(&mut self, k: &str, message: String) {
        let at = self.key_at(k);
        self.cx.at(at, self.sec.key(k), message);
    }

    fn expected(&mut self, k: &str, what: &str, v: &DeValue<'_>) {
        self.bad(k, format!("expected {what}, found {}", found(v)));
    }

    fn missing(&mut self, k: &str) {
        self.cx.missing(&self.sec, k);
    }

    fn num(&mut self, k: &str) -> Option<f64> {
        let v = self.value(k)?;
        self.cx.number(&self.sec.key(k), v)
    }

    fn pos(&mut self, k: &str) -> Option<f64> {
        let v = self.num(k)?;
        if v <= 0.0 {
            self.bad(k, format!("expected a positive number, found {v}"));
            return None;
        }
        Some(v)
    }

    fn req_pos(&mut self, k: &str) -> Option<f64> {
        if self.value(k).is_none() {
            self.missing(k);
            return None;
        }
        self.pos(k)
    }

    fn uint(&mut self, k: &str) -> Option<u64> {
        let v = self.value(k)?.get_ref();
        match int_of(v).and_then(|i| u64::try_from(i).ok()) {
            Some(n) => Some(n),
            None => {
                self.expected(k, "a non-negative integer", v);
                None
            }
        }
    }

    fn bool(&mut self, k: &str) -> Option<bool> {
        let v = self.value(k)?;
        self.cx.boolean(&self.sec.key(k), v)
    }

    fn str(&mut self, k: &str) -> Option<String> {
        let v = self.value(k)?;
        self.cx.string(&self.sec.key(k), v).map(str::to_string)
    }

    fn req_str(&mut self, k: &str) -> Option<String> {
        if self.value(k).is_none() {
            self.missing(k);
            return None;
        }
        self.str(k)
    }

    /// An array of strings, or one string.
    fn strs(&mut self, k: &str) -> Option<Vec<String>> {
        let v = self.value(k)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![s.to_string()]),
            _ => self.cx.strings(&self.sec.key(k), v),
        }
    }

    /// Report the keys not in `known` (with a did-you-mean), as for every table.
    fn finish(self, known: &[&str]) {
        self.cx.unknown_keys(&self.sec, known);
    }
}

const COMMON: &[&str] = &["kind", "action", "auto_resume_after_s", "source"];

const KINDS: &[&str] = &[
    "drawdown",
    "daily_loss",
    "consecutive_losses",
    "api_errors",
    "volatility",
    "freshness",
    "heartbeat",
    "cycles",
    "host",
    "http",
    "kraken",
];

fn parse_rule(cx: &mut Ctx, section: &'static str, id: &str, sec: Sec<'_, '_>) -> Option<RuleDef> {
    let t = sec.table;
    let mut f = Fields { cx, sec };
    let kind_name = match f.str("kind") {
        Some(k) => k,
        None if KINDS.contains(&id) => id.to_string(),
        None => {
            if f.value("kind").is_none() {
                f.missing("kind");
            }
            f.finish(COMMON);
            return None;
        }
    };
    let action = match f.str("action").as_deref() {
        None => Action::Halt,
        Some("warn") => Action::Warn,
        Some("reduce") => Action::Reduce,
        Some("halt") => Action::Halt,
        Some(other) => {
            f.bad(
                "action",
                format!("expected warn, reduce or halt, found {other:?}"),
            );
            Action::Halt
        }
    };
    let auto_resume_after_s = f.pos("auto_resume_after_s");
    let source = f.str("source");
    let mut keys: Vec<&str> = COMMON.to_vec();
    let kind = match kind_name.as_str() {
        "drawdown" => {
            keys.extend(["warn_pct", "critical_pct"]);
            let k = Kind::Drawdown {
                warn_pct: f.pos("warn_pct"),
                critical_pct: f.req_pos("critical_pct").unwrap_or(0.0),
            };
            Some(k)
        }
        "daily_loss" => {
            keys.extend(["basis", "warn", "critical", "reset_utc"]);
            let basis = f.str("basis");
            let basis_pnl = match basis.as_deref() {
                None | Some("equity") => false,
                Some("realized_pnl") => true,
                Some(o) => {
                    f.bad(
                        "basis",
                        format!("expected equity or realized_pnl, found {o:?}"),
                    );
                    false
                }
            };
            let reset_utc = f.str("reset_utc").unwrap_or_else(|| "00:00".into());
            if let Err(e) = vigil_core::rules::parse_time_of_day(&reset_utc) {
                f.bad("reset_utc", e);
            }
            Some(Kind::DailyLoss {
                basis_pnl,
                warn: f.pos("warn"),
                critical: f.req_pos("critical").unwrap_or(0.0),
                reset_utc,
            })
        }
        "consecutive_losses" => {
            keys.extend(["warn", "critical", "pair"]);
            Some(Kind::ConsecutiveLosses {
                warn: f.pos("warn"),
                critical: f.req_pos("critical").unwrap_or(0.0),
                pair: f.str("pair"),
            })
        }
        "api_errors" => {
            keys.extend([
                "window_s",
                "warn_count",
                "critical_count",
                "critical_codes",
                "venue",
            ]);
            Some(Kind::ApiErrors {
                window_s: f.pos("window_s").unwrap_or(60.0),
                warn_count: f.uint("warn_count").map(|v| v as u32),
                critical_count: f.uint("critical_count").map(|v| v as u32).unwrap_or(5),
                critical_codes: f.strs("critical_codes").unwrap_or_default(),
                venue: f.str("venue"),
            })
        }
        "volatility" => {
            keys.extend(["window_s", "warn_pct", "critical_pct", "confirm_s", "pairs"]);
            Some(Kind::Volatility {
                window_s: f.pos("window_s").unwrap_or(300.0),
                warn_pct: f.pos("warn_pct"),
                critical_pct: f.req_pos("critical_pct").unwrap_or(0.0),
                confirm_s: f.num("confirm_s").unwrap_or(5.0).max(0.0),
                pairs: f.strs("pairs").unwrap_or_default(),
            })
        }
        "freshness" => {
            keys.extend(["pairs", "threshold_s", "warn_s", "grace_s"]);
            Some(Kind::Freshness {
                pairs: f.strs("pairs").unwrap_or_default(),
                threshold_s: f.req_pos("threshold_s").unwrap_or(0.0),
                warn_s: f.pos("warn_s"),
                grace_s: f.num("grace_s").unwrap_or(30.0).max(0.0),
            })
        }
        "heartbeat" => {
            keys.extend(["sources", "period_s", "grace_s"]);
            let sources = f.strs("sources");
            if sources.as_ref().is_none_or(Vec::is_empty) && t.get("sources").is_none() {
                f.missing("sources");
            }
            Some(Kind::Heartbeat {
                sources: sources.unwrap_or_default(),
                period_s: f.req_pos("period_s").unwrap_or(0.0),
                grace_s: f.num("grace_s").unwrap_or(0.0).max(0.0),
            })
        }
        "cycles" => {
            keys.extend([
                "name",
                "window_s",
                "target_ms",
                "warn_overrun_pct",
                "critical_overrun_pct",
                "min_samples",
            ]);
            Some(Kind::Cycles {
                name: f.str("name"),
                window_s: f.pos("window_s").unwrap_or(60.0),
                target_ms: f.pos("target_ms"),
                warn_overrun_pct: f.pos("warn_overrun_pct"),
                critical_overrun_pct: f.req_pos("critical_overrun_pct").unwrap_or(0.0),
                min_samples: f.uint("min_samples").unwrap_or(10) as usize,
            })
        }
        "host" => {
            keys.extend([
                "metric",
                "warn_pct",
                "critical_pct",
                "sustain_s",
                "interval_s",
            ]);
            let metric = match f.req_str("metric").as_deref() {
                Some("cpu") => HostMetric::Cpu,
                Some("ram") | Some("memory") => HostMetric::Ram,
                Some(o) => {
                    f.bad("metric", format!("expected cpu or ram, found {o:?}"));
                    HostMetric::Cpu
                }
                None => HostMetric::Cpu,
            };
            Some(Kind::Host {
                metric,
                warn_pct: f.pos("warn_pct"),
                critical_pct: f.req_pos("critical_pct").unwrap_or(0.0),
                sustain_s: f.num("sustain_s").unwrap_or(60.0).max(0.0),
                interval_s: f.pos("interval_s").unwrap_or(5.0),
            })
        }
        "http" => {
            keys.extend([
                "url",
                "interval_s",
                "timeout_s",
                "failures",
                "expect_status",
            ]);
            let url = f.req_str("url").unwrap_or_default();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                f.bad(
                    "url",
                    format!("expected an http:// or https:// URL, found {url:?}"),
                );
            }
            Some(Kind::Http {
                url,
                interval_s: f.pos("interval_s").unwrap_or(10.0),
                timeout_s: f.pos("timeout_s").unwrap_or(5.0),
                failures: f.uint("failures").map(|v| v.max(1) as u32).unwrap_or(3),
                expect_status: f.uint("expect_status").map(|v| v as u16).unwrap_or(200),
            })
        }
        "kraken" => {
            keys.extend([
                "base_url",
                "interval_s",
                "timeout_s",
                "failures",
                "api_key_env",
                "api_secret_env",
            ]);
            Some(Kind::Kraken {
                base_url: f
                    .str("base_url")
                    .unwrap_or_else(|| "https://api.kraken.com".into()),
                interval_s: f.pos("interval_s").unwrap_or(30.0),
                timeout_s: f.pos("timeout_s").unwrap_or(10.0),
                failures: f.uint("failures").map(|v| v.max(1) as u32).unwrap_or(3),
                api_key_env: f.str("api_key_env"),
                api_secret_env: f.str("api_secret_env"),
            })
        }
        other => {
            let hint = did_you_mean(other, KINDS)
                .map(|s| format!(", did you mean \"{s}\"?"))
                .unwrap_or_else(|| format!("; expected one of: {}", KINDS.join(", ")));
            f.bad("kind", format!("unknown kind {other:?}{hint}"));
            None
        }
    };
    f.finish(&keys);
    Some(RuleDef {
        id: id.to_string(),
        section,
        kind: kind?,
        action,
        auto_resume_after_s,
        source,
    })
}

fn parse_halt(cx: &mut Ctx, sec: Sec<'_, '_>) -> HaltConfig {
    let t = sec.table;
    let mut f = Fields { cx, sec };
    let mut h = HaltConfig::default();
    if let Some(b) = f.str("position_behavior") {
        match b.parse::<PositionBehaviour>() {
            Ok(p) => h.position_behavior = p,
            Err(e) => f.bad("position_behavior", e.to_string()),
        }
    }
    h.stop_groups = f.strs("stop_groups").unwrap_or_default();
    if let Some(v) = t.get("signal_groups") {
        match v.get_ref() {
            DeValue::Table(sg) => {
                for (g, s) in entries(sg) {
                    let g: &str = g.get_ref();
                    match s.get_ref().as_str().and_then(Signal::parse) {
                        Some(sig) => h.signal_groups.push((g.to_string(), sig)),
                        None => f.bad(
                            "signal_groups",
                            format!(
                                "{g}: expected a signal name like \"USR1\", found {}",
                                found(s.get_ref())
                            ),
                        ),
                    }
                }
            }
            _ => f.bad(
                "signal_groups",
                "expected a table of group = \"SIGNAL\"".into(),
            ),
        }
    }
    h.webhook = f.str("webhook");
    h.webhook_retries = f.uint("webhook_retries").map(|v| v as u32).unwrap_or(5);
    if let Some(c) = f.str("command") {
        match shlex::split(&c) {
            Some(argv) if !argv.is_empty() => h.command = Some(argv),
            _ => f.bad("command", format!("cannot split {c:?} into words")),
        }
    }
    f.finish(&[
        "position_behavior",
        "stop_groups",
        "signal_groups",
        "webhook",
        "webhook_retries",
        "command",
    ]);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(t: &str) -> Result<MonitorConfig, ConfigErrors> {
        super::parse_text(Path::new("/x/vigil.toml"), t)
    }

    #[test]
    fn parses_every_kind_and_halt() {
        let cfg = parse_text(
            r#"
[rules.drawdown]
warn_pct = 5
critical_pct = 10
[rules.dl]
kind = "daily_loss"
critical = 3.5
reset_utc = "22:00"
[rules.losses]
kind = "consecutive_losses"
critical = 5
action = "reduce"
auto_resume_after_s = 600
[checks.feed]
kind = "freshness"
pairs = ["BTC/USD"]
threshold_s = 5
[checks.bot]
kind = "heartbeat"
sources = ["bot"]
period_s = 2
grace_s = 1
[checks.cpu]
kind = "host"
metric = "cpu"
critical_pct = 95
sustain_s = 30
[halt]
position_behavior = "liquidate"
stop_groups = ["bots"]
signal_groups = { strategies = "USR1" }
command = "notify-send halted"
[alerts.am]
kind = "alertmanager"
url = "http://127.0.0.1:9093/api/v2/alerts"
[ingest]
files = ["events.jsonl"]
"#,
        )
        .unwrap();
        assert_eq!(cfg.rules.len(), 6);
        assert_eq!(cfg.rules[2].action, Action::Reduce);
        assert_eq!(cfg.rules[2].auto_resume_after_s, Some(600.0));
        assert_eq!(cfg.halt.position_behavior, PositionBehaviour::Close);
        assert_eq!(cfg.halt.signal_groups[0].1.name, "USR1");
        assert_eq!(cfg.ingest.files, vec![PathBuf::from("/x/events.jsonl")]);
        assert!(cfg.ingest.socket);
    }

    #[test]
    fn all_errors_located() {
        let err = parse_text(
            "[rules.dd]\nkind = \"drawdown\"\ncritcal_pct = 10\n\n[checks.f]\nkind = \"freshnes\"\n\n[halt]\nposition_behavior = \"sell\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/x/vigil.toml:1:1: rules.dd.critical_pct: required key is missing"),
            "{err}"
        );
        assert!(err.contains("/x/vigil.toml:3:1: rules.dd.critcal_pct: unknown key, did you mean \"critical_pct\"?"), "{err}");
        assert!(err.contains("/x/vigil.toml:6:1: checks.f.kind: unknown kind \"freshnes\", did you mean \"freshness\"?"), "{err}");
        assert!(
            err.contains("/x/vigil.toml:9:1: halt.position_behavior: invalid position behaviour"),
            "{err}"
        );
    }
}
