//! `GET /metrics` scraped from the real daemon and parsed by the real Prometheus text parser
//! (Python's `prometheus_client`, installed by scripts/setup-test-deps); names and values
//! checked against what the API reports; who sees host figures; the metrics listener.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestDaemon, auth_section, script};

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parse an exposition with `prometheus_client.parser` (raises on invalid text): the samples
/// and each family's type.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let venv = std::env::var_os("VIGIL_TEST_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup-test-deps",
        py.display()
    );
    let code = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
fams, samples = {}, []
for f in text_string_to_metric_families(text):
    fams[f.name] = f.type
    for s in f.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"families": fams, "samples": samples}))
"#;
    let mut child = Command::new(py)
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "prometheus_client could not parse the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let fams = v["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or("").to_string()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| Sample {
            name: s[0].as_str().expect("name").to_string(),
            labels: s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            value: s[2].as_f64().unwrap_or(f64::NAN),
        })
        .collect();
    (samples, fams)
}

fn find<'a>(s: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    s.iter()
        .filter(|x| {
            x.name == name
                && labels
                    .iter()
                    .all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn one(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let f = find(s, name, labels);
    assert_eq!(f.len(), 1, "{name}{labels:?}: {f:?}");
    f[0].value
}

fn scrape(url: &str, token: Option<&str>) -> (String, String) {
    let mut rb = reqwest::blocking::Client::new()
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(30));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().expect("scrape");
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ct, r.text().expect("text"))
}

#[test]
fn metrics_are_valid_prometheus_text_with_the_right_values() {
    let tmp = crate::support::tempdir();
    let dir = tmp.path();
    let quit = script(dir, "quit.sh", "exit 3");
    let body = format!(
        r#"
[program.sleeper]
command = "sleep 1000"
startsecs = 0

[program.quitter]
command = "{}"
startsecs = 0
autorestart = false

[checks.feed]
kind = "freshness"
pairs = ["BTC/USD"]
threshold_s = 3600
action = "warn"

{}
"#,
        quit.display(),
        auth_section(
            &[
                ("alice", "admin", "alice-pw"),
                ("vera", "viewer", "vera-pw")
            ],
            &[("bot", "ingest", "bot-secret")],
            "metrics_listen = \"127.0.0.1:0\"",
        )
    );
    let mut d = TestDaemon::start_in(dir, &body);
    let admin = d.login("alice", "alice-pw");
    let viewer = d.login("vera", "vera-pw");
    d.token = Some(admin.clone());
    d.wait_state(0, "sleeper", "RUNNING", Duration::from_secs(30));
    d.wait_state(0, "quitter", "EXITED", Duration::from_secs(30));

    // Events in: three ticks and one invalid line; then a halt by the admin.
    let ndjson = "{\"type\":\"tick\",\"pair\":\"BTC/USD\",\"price\":100}\n\
                  {\"type\":\"tick\",\"pair\":\"BTC/USD\",\"price\":101}\n\
                  {\"type\":\"tick\",\"pair\":\"BTC/USD\",\"price\":102}\n\
                  {\"type\":\"fill\"}\n";
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/events", d.url))
        .bearer_auth("bot.bot-secret")
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .expect("post events");
    assert_eq!(r.status(), 400, "one line is invalid");
    let (st, _, _) = d.call(
        "POST",
        "/api/trading/halt",
        Some(&admin),
        Some(&json!({"reason": "metrics test"})),
    );
    assert_eq!(st, 200);
    d.wait_for(0, Duration::from_secs(30), |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });

    // Scrape until the event-driven counters caught up (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (ct, text, samples, fams) = loop {
        let (ct, text) = scrape(&d.url, Some(&admin));
        let (samples, fams) = parse(&text);
        let done = !find(
            &samples,
            "vigil_trading_transitions_total",
            &[("to", "HALTED")],
        )
        .is_empty()
            && !find(&samples, "vigil_check_value", &[("check", "feed")]).is_empty();
        if done || Instant::now() > deadline {
            break (ct, text, samples, fams);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(text.ends_with('\n'));
    // Each family's TYPE once, before its samples.
    let mut types = BTreeSet::new();
    for l in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = l.split_whitespace().next().expect("name");
        assert!(types.insert(name.to_string()), "TYPE {name} twice");
    }

    // Programs: one 0/1 series per state, exactly one 1; up; restarts; times; exit code.
    let procs = d.get("/api/programs");
    for p in procs["programs"].as_array().expect("programs") {
        let name = p["name"].as_str().expect("name");
        let state = p["state"].as_str().expect("state");
        let series = find(&samples, "vigil_program_state", &[("process", name)]);
        assert_eq!(series.len(), 8, "{name}: one series per supervisord state");
        for s in &series {
            let want = if s.labels["state"] == state { 1.0 } else { 0.0 };
            assert_eq!(s.value, want, "{name} {:?}", s.labels);
        }
        assert_eq!(
            one(
                &samples,
                "vigil_program_restarts_total",
                &[("process", name)]
            ),
            p["restarts"].as_f64().expect("restarts")
        );
        // No illegal transition was ever refused (each would be a bug, logged and counted).
        assert_eq!(
            one(
                &samples,
                "vigil_illegal_transitions_total",
                &[("process", name)]
            ),
            0.0
        );
    }
    assert_eq!(
        one(&samples, "vigil_program_up", &[("process", "sleeper")]),
        1.0
    );
    assert_eq!(
        one(&samples, "vigil_program_up", &[("process", "quitter")]),
        0.0
    );
    assert_eq!(
        one(
            &samples,
            "vigil_program_last_exit_code",
            &[("process", "quitter")]
        ),
        3.0
    );
    let start = one(
        &samples,
        "vigil_program_start_time_seconds",
        &[("process", "sleeper")],
    );
    let now = vigil::auth::unix_now() as f64;
    assert!(
        start > now - 120.0 && start <= now + 1.0,
        "{start} vs {now}"
    );
    assert!(
        one(
            &samples,
            "vigil_program_uptime_seconds",
            &[("process", "sleeper")]
        ) >= 0.0
    );
    assert_eq!(
        fams.get("vigil_program_restarts").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        fams.get("vigil_program_state").map(String::as_str),
        Some("gauge")
    );

    // Trading state and transitions.
    assert_eq!(
        one(&samples, "vigil_trading_state", &[("state", "HALTED")]),
        1.0
    );
    assert_eq!(
        one(&samples, "vigil_trading_state", &[("state", "ACTIVE")]),
        0.0
    );
    assert_eq!(
        one(&samples, "vigil_trading_state", &[("state", "REDUCING")]),
        0.0
    );
    assert_eq!(
        one(
            &samples,
            "vigil_trading_transitions_total",
            &[("from", "ACTIVE"), ("to", "HALTED")]
        ),
        1.0
    );
    // Checks: status one-hot and value.
    let feed = find(&samples, "vigil_check_status", &[("check", "feed")]);
    assert_eq!(feed.len(), 4, "{feed:?}");
    assert_eq!(feed.iter().map(|s| s.value).sum::<f64>(), 1.0);
    assert!(one(&samples, "vigil_check_value", &[("check", "feed")]) >= 0.0);
    // Ingest counts and rejects.
    assert_eq!(
        one(&samples, "vigil_events_ingested_total", &[("type", "tick")]),
        3.0
    );
    let rejected: f64 = find(&samples, "vigil_events_rejected_total", &[])
        .iter()
        .map(|s| s.value)
        .sum();
    assert!(rejected >= 1.0, "{rejected}");
    // vigil itself and its HTTP.
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
    ] {
        assert_eq!(find(&samples, name, &[]).len(), 1, "{name}");
    }
    assert!(
        !find(
            &samples,
            "vigil_http_requests_total",
            &[("route", "/api/trading/halt"), ("status", "200")]
        )
        .is_empty()
    );
    assert_eq!(one(&samples, "vigil_build_info", &[]), 1.0);
    // Host figures: admins see them.
    assert!(one(&samples, "vigil_host_memory_total_bytes", &[]) > 0.0);
    assert!(one(&samples, "vigil_host_cpus", &[]) >= 1.0);

    // A viewer may scrape, without host figures; an ingest token may not; nobody without one.
    let (_, vtext) = scrape(&d.url, Some(&viewer));
    let (vs, _) = parse(&vtext);
    assert!(find(&vs, "vigil_host_memory_total_bytes", &[]).is_empty());
    assert!(!find(&vs, "vigil_program_up", &[]).is_empty());
    let st = |t: Option<&str>| {
        let mut rb = reqwest::blocking::Client::new().get(format!("{}/metrics", d.url));
        if let Some(t) = t {
            rb = rb.bearer_auth(t);
        }
        rb.send().expect("get").status().as_u16()
    };
    assert_eq!(st(Some("bot.bot-secret")), 403);
    assert_eq!(st(None), 401);

    // The metrics listener: /metrics only, no credentials, host figures included.
    let murl = metrics_url(&d);
    let (_, mtext) = scrape(&murl, None);
    let (ms, _) = parse(&mtext);
    assert!(one(&ms, "vigil_host_memory_total_bytes", &[]) > 0.0);
    assert_eq!(one(&ms, "vigil_trading_state", &[("state", "HALTED")]), 1.0);
    let other = reqwest::blocking::get(format!("{murl}/api/programs"))
        .expect("get")
        .status();
    assert_eq!(other, 404);
}

/// The metrics listener's URL, from the line the daemon prints before its readiness line.
fn metrics_url(d: &TestDaemon) -> String {
    let out = d.stdout.lock().map(|s| s.clone()).unwrap_or_default();
    out.lines()
        .find_map(|l| l.strip_prefix("vigil: metrics on "))
        .and_then(|u| u.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line in stdout:\n{out}"))
        .to_string()
}
