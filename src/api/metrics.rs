//! `GET /metrics`: Prometheus text exposition, format 0.0.4. Reference: docs/metrics.md.
//!
//! Two sources, rendered one after the other:
//! - **the `metrics` facade** (a global recorder installed by [`install`]): counters, gauges and
//!   histograms recorded anywhere with `metrics::counter!(…)` / `gauge!` / `histogram!`, plus
//!   the standard `process_*` set of vigil itself (`metrics-process`, sampled at each scrape).
//!   Use it for things that happen: `metrics::counter!("vigil_x_total", "label" => v)`.
//! - **scrape-time collectors** here, reading snapshots when Prometheus asks: programs (from
//!   `SupervisorHandle::snapshot()`), trading state, checks and ingest counts (from the
//!   monitor's snapshot), host resources (`/proc`, admins and the metrics listener only).
//!   State is rendered from the source of truth, so nothing goes stale or disappears late.
//!
//! A family is rendered once: a collector family whose name the facade already rendered is
//! skipped (so a name registered twice never makes the exposition invalid).

use std::collections::HashSet;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::auth::Actor;
use crate::events::EventLog;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric names (see docs/metrics.md for labels and meaning).
pub mod names {
    pub const BUILD_INFO: &str = "vigil_build_info";
    pub const PROGRAM_STATE: &str = "vigil_program_state";
    pub const PROGRAM_UP: &str = "vigil_program_up";
    pub const PROGRAM_RESTARTS: &str = "vigil_program_restarts_total";
    pub const ILLEGAL_TRANSITIONS: &str = "vigil_illegal_transitions_total";
    pub const PROGRAM_START_TIME: &str = "vigil_program_start_time_seconds";
    pub const PROGRAM_UPTIME: &str = "vigil_program_uptime_seconds";
    pub const PROGRAM_FAILURES: &str = "vigil_program_consecutive_failures";
    pub const PROGRAM_EXIT_CODE: &str = "vigil_program_last_exit_code";
    pub const TRADING_STATE: &str = "vigil_trading_state";
    pub const TRADING_TRANSITIONS: &str = "vigil_trading_transitions_total";
    pub const CHECK_STATUS: &str = "vigil_check_status";
    pub const CHECK_VALUE: &str = "vigil_check_value";
    pub const CHECK_THRESHOLD: &str = "vigil_check_threshold";
    pub const EVENTS_INGESTED: &str = "vigil_events_ingested_total";
    pub const EVENTS_REJECTED: &str = "vigil_events_rejected_total";
    pub const JOBS: &str = "vigil_jobs";
    pub const HTTP_REQUESTS: &str = "vigil_http_requests_total";
    pub const HTTP_DURATION: &str = "vigil_http_request_duration_seconds";
    pub const HOST_CPUS: &str = "vigil_host_cpus";
    pub const HOST_CPU_SECONDS: &str = "vigil_host_cpu_seconds_total";
    pub const HOST_LOAD1: &str = "vigil_host_load1";
    pub const HOST_LOAD5: &str = "vigil_host_load5";
    pub const HOST_LOAD15: &str = "vigil_host_load15";
    pub const HOST_MEM_TOTAL: &str = "vigil_host_memory_total_bytes";
    pub const HOST_MEM_AVAILABLE: &str = "vigil_host_memory_available_bytes";
}

struct Installed {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Install the global recorder (once; later calls do nothing). Call it before anything records:
/// what is recorded before goes nowhere. Returns false if another recorder was already set.
pub fn install() -> bool {
    INSTALLED
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(names::HTTP_DURATION.to_string()),
                    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0],
                )
                .ok()?
                // Jobs' queue wait and run time (crate::jobs::names).
                .set_buckets_for_metric(
                    Matcher::Prefix("vigil_job_".to_string()),
                    &[0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0, 86400.0],
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "metrics recorder already installed; /metrics shows collectors only");
                return None;
            }
            metrics::describe_counter!(
                names::HTTP_REQUESTS,
                "HTTP requests answered, by method, route pattern and status."
            );
            metrics::describe_histogram!(
                names::HTTP_DURATION,
                metrics::Unit::Seconds,
                "Time to the response head, by route pattern."
            );
            metrics::describe_counter!(
                names::TRADING_TRANSITIONS,
                "Trading state transitions recorded, by from and to state."
            );
            let process = metrics_process::Collector::default();
            process.describe();
            Some(Installed { handle, process })
        })
        .is_some()
}

/// Count an answered request (called by the access middleware for every routed request).
pub fn count_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    metrics::counter!(
        names::HTTP_REQUESTS,
        "method" => method.to_string(),
        "route" => route.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(names::HTTP_DURATION, "route" => route.to_string())
        .record(elapsed.as_secs_f64());
}

/// The enum pattern: one series per state, 1 for `current`, 0 for the others.
pub fn set_one_hot(
    name: &'static str,
    label: &'static str,
    states: &[&'static str],
    current: &str,
) {
    for s in states {
        metrics::gauge!(name, label => *s).set(if *s == current { 1.0 } else { 0.0 });
    }
}

/// Count trading transitions from the event log (event-driven; no polling).
/// Runs on `tasks` until `stop`.
pub fn spawn_event_counters(
    events: &EventLog,
    tasks: &tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut rx = events.subscribe();
    tasks.spawn(stop.run_until_cancelled_owned(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut lagging = crate::queues::Lagging::default();
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == "trading_state" => {
                    let s = |k: &str| {
                        e.data
                            .get(k)
                            .and_then(|v| v.as_str())
                            .unwrap_or("UNKNOWN")
                            .to_string()
                    };
                    metrics::counter!(names::TRADING_TRANSITIONS, "from" => s("from"), "to" => s("to"))
                        .increment(1);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    if let Some(skipped) = lagging.note(n, std::time::Instant::now()) {
                        tracing::warn!(
                            skipped,
                            "metrics: event counter lagged; counts may be low (logged at most every 10 s)"
                        );
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }));
}

/// A text exposition being written: families of samples, each family once.
pub struct Exposition {
    out: String,
    /// Families already present (from the facade): skipped here.
    taken: HashSet<String>,
    current: Option<String>,
}

impl Exposition {
    fn new(prefix: String) -> Exposition {
        let taken = prefix
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        let mut out = prefix;
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Exposition {
            out,
            taken,
            current: None,
        }
    }

    /// Start a family (`kind`: counter, gauge). Returns false (and its samples are dropped)
    /// when the facade already rendered it.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> bool {
        if self.taken.contains(name) {
            self.current = None;
            return false;
        }
        self.taken.insert(name.to_string());
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self.current = Some(name.to_string());
        true
    }

    /// A sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some(name) = &self.current else {
            return;
        };
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", fmt_value(value));
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The whole exposition. `host` adds host resource figures (admins and the metrics listener).
pub fn render(st: &AppState, host: bool) -> String {
    let prefix = match INSTALLED.get().and_then(Option::as_ref) {
        Some(i) => {
            i.process.collect();
            i.handle.run_upkeep();
            i.handle.render()
        }
        None => String::new(),
    };
    let mut x = Exposition::new(prefix);
    if x.family(names::BUILD_INFO, "gauge", "vigil's version; always 1.") {
        x.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    }
    programs(st, &mut x);
    monitor(st, &mut x);
    super::reliability::metrics(st, &mut x);
    if host {
        host_resources(&mut x);
    }
    x.finish()
}

fn programs(st: &AppState, x: &mut Exposition) {
    use vigil_core::program::{Exit, ProcessState};
    let snap = st.supervisor.snapshot();
    let ps = &snap.processes;
    let labels = |p: &crate::supervisor::ProcessInfo| {
        [
            ("process", p.name.clone()),
            ("program", p.program.clone()),
            ("group", p.group.clone()),
        ]
    };
    let emit = |x: &mut Exposition,
                p: &crate::supervisor::ProcessInfo,
                extra: Option<(&str, &str)>,
                v: f64| {
        let l = labels(p);
        let mut v2: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(e) = extra {
            v2.push(e);
        }
        x.sample(&v2, v);
    };
    if x.family(
        names::PROGRAM_STATE,
        "gauge",
        "Process state (supervisord's states), one series per state: 1 for the current one.",
    ) {
        for p in ps {
            for s in ProcessState::ALL {
                emit(
                    x,
                    p,
                    Some(("state", s.name())),
                    f64::from(u8::from(p.state == s)),
                );
            }
        }
    }
    if x.family(
        names::PROGRAM_UP,
        "gauge",
        "1 while the process is RUNNING.",
    ) {
        for p in ps {
            emit(
                x,
                p,
                None,
                f64::from(u8::from(p.state == ProcessState::Running)),
            );
        }
    }
    if x.family(
        names::PROGRAM_RESTARTS,
        "counter",
        "Times the process was started again after it had run (since vigil started).",
    ) {
        for p in ps {
            emit(x, p, None, p.restarts as f64);
        }
    }
    if x.family(
        names::ILLEGAL_TRANSITIONS,
        "counter",
        "Process state transitions refused as illegal (a bug; the state was kept).",
    ) {
        for p in ps {
            emit(x, p, None, p.illegal_transitions as f64);
        }
    }
    if x.family(
        names::PROGRAM_START_TIME,
        "gauge",
        "Unix time the current (or last) child was spawned.",
    ) {
        for p in ps {
            if let Some(t) = p.start {
                emit(x, p, None, t.timestamp_millis() as f64 / 1000.0);
            }
        }
    }
    if x.family(
        names::PROGRAM_UPTIME,
        "gauge",
        "Seconds the process has been running; 0 when not running.",
    ) {
        for p in ps {
            emit(x, p, None, p.uptime_secs.unwrap_or(0) as f64);
        }
    }
    if x.family(
        names::PROGRAM_FAILURES,
        "gauge",
        "Failed starts or crashes in a row (0 after a process stayed up for startsecs).",
    ) {
        for p in ps {
            emit(x, p, None, f64::from(p.consecutive_failures));
        }
    }
    if x.family(
        names::PROGRAM_EXIT_CODE,
        "gauge",
        "Exit code of the last exit (absent before the first exit or after a signal death).",
    ) {
        for p in ps {
            if let Some(Exit::Code(c)) = p.last_exit {
                emit(x, p, None, f64::from(c));
            }
        }
    }
}

fn monitor(st: &AppState, x: &mut Exposition) {
    use vigil_core::rules::Status;
    use vigil_core::trading::TradingState;
    let snap = st.monitor.snapshot();
    if x.family(
        names::TRADING_STATE,
        "gauge",
        "Trading state, one series per state: 1 for the current one.",
    ) {
        for s in TradingState::ALL {
            x.sample(&[("state", s.name())], f64::from(u8::from(snap.state == s)));
        }
    }
    const STATUSES: [Status; 4] = [Status::Ok, Status::Warn, Status::Critical, Status::Unknown];
    if x.family(
        names::CHECK_STATUS,
        "gauge",
        "Status of each check and rule, one series per status: 1 for the current one.",
    ) {
        for c in &snap.checks {
            for s in STATUSES {
                x.sample(
                    &[("check", &c.id), ("kind", c.kind), ("status", s.as_str())],
                    f64::from(u8::from(c.status == s)),
                );
            }
        }
    }
    if x.family(
        names::CHECK_VALUE,
        "gauge",
        "Latest value of each check and rule (absent while unknown).",
    ) {
        for c in &snap.checks {
            if let Some(v) = c.value {
                x.sample(&[("check", &c.id), ("kind", c.kind)], v);
            }
        }
    }
    if x.family(
        names::CHECK_THRESHOLD,
        "gauge",
        "The threshold each check and rule compares its value with.",
    ) {
        for c in &snap.checks {
            if let Some(v) = c.threshold {
                x.sample(&[("check", &c.id), ("kind", c.kind)], v);
            }
        }
    }
    let stats = &st.monitor.stats;
    if x.family(
        names::EVENTS_INGESTED,
        "counter",
        "Inbound events accepted, by type (HTTP, socket, stdout, files).",
    ) {
        let m = stats.by_type.lock().map(|m| m.clone()).unwrap_or_default();
        for (t, n) in &m {
            x.sample(&[("type", t)], *n as f64);
        }
    }
    if x.family(
        names::EVENTS_REJECTED,
        "counter",
        "Inbound events refused, by reason (the offending field, or the kind of problem).",
    ) {
        let m = stats.rejected.lock().map(|m| m.clone()).unwrap_or_default();
        for (r, n) in &m {
            x.sample(&[("reason", r)], *n as f64);
        }
    }
}

/// Host figures from /proc (Linux): CPU time by mode, load, memory.
fn host_resources(x: &mut Exposition) {
    if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        if x.family(names::HOST_CPUS, "gauge", "CPUs of the host.") {
            x.sample(&[], cpus as f64);
        }
        if let Some(total) = stat.lines().next().filter(|l| l.starts_with("cpu "))
            && x.family(
                names::HOST_CPU_SECONDS,
                "counter",
                "CPU time of the host since boot, by mode, in seconds (all CPUs added up).",
            )
        {
            const MODES: [&str; 8] = [
                "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
            ];
            // /proc/stat counts in USER_HZ, which the kernel ABI fixes at 100.
            for (mode, v) in MODES.iter().zip(total.split_whitespace().skip(1)) {
                if let Ok(ticks) = v.parse::<u64>() {
                    x.sample(&[("mode", mode)], ticks as f64 / 100.0);
                }
            }
        }
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let f: Vec<f64> = load
            .split_whitespace()
            .take(3)
            .filter_map(|v| v.parse().ok())
            .collect();
        for (name, v) in [names::HOST_LOAD1, names::HOST_LOAD5, names::HOST_LOAD15]
            .iter()
            .zip(f)
        {
            if x.family(name, "gauge", "Host load average.") {
                x.sample(&[], v);
            }
        }
    }
    if let Ok(mem) = std::fs::read_to_string("/proc/meminfo") {
        let kb = |key: &str| {
            mem.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|k| k as f64 * 1024.0)
        };
        if let Some(v) = kb("MemTotal:")
            && x.family(names::HOST_MEM_TOTAL, "gauge", "Host memory, in bytes.")
        {
            x.sample(&[], v);
        }
        if let Some(v) = kb("MemAvailable:")
            && x.family(
                names::HOST_MEM_AVAILABLE,
                "gauge",
                "Host memory available for new work without swapping, in bytes.",
            )
        {
            x.sample(&[], v);
        }
    }
}

fn exposition(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

async fn metrics_handler(State(st): State<Arc<AppState>>, ext: axum::http::Extensions) -> Response {
    let host = ext.get::<Actor>().is_some_and(Actor::sees_host_resources);
    exposition(render(&st, host))
}

/// `GET /metrics` on the main listener (access: `[auth] metrics_role`).
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/metrics", get(metrics_handler))
}

/// The `[auth] metrics_listen` listener: `GET /metrics` only, unauthenticated, host figures
/// included (bind it to an address only Prometheus reaches).
pub fn scrape_router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            get(|State(st): State<Arc<AppState>>| async move { exposition(render(&st, true)) }),
        )
        .fallback(|| async {
            super::ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "this listener serves only GET /metrics",
            )
        })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let mut x = Exposition::new("# HELP a_total x\n# TYPE a_total counter\na_total 1\n".into());
        assert!(!x.family("a_total", "counter", "dup"));
        x.sample(&[], 5.0);
        assert!(x.family("b", "gauge", "line\\one\ntwo"));
        x.sample(&[("l", "q\"u\\o\nte")], 0.5);
        x.sample(&[], f64::NAN);
        x.sample(&[("a", "1"), ("b", "2")], 3.0);
        let s = x.finish();
        assert_eq!(
            s,
            "# HELP a_total x\n# TYPE a_total counter\na_total 1\n\
             # HELP b line\\\\one\\ntwo\n# TYPE b gauge\nb{l=\"q\\\"u\\\\o\\nte\"} 0.5\nb NaN\nb{a=\"1\",b=\"2\"} 3\n"
        );
        assert_eq!(fmt_value(f64::INFINITY), "+Inf");
        assert_eq!(fmt_value(1e20), "100000000000000000000");
    }
}
