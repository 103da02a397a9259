//! The monitor end to end: events in, checks and rules, the sticky trading state, halt actions.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const T: Duration = Duration::from_secs(20);

pub(crate) fn post_json(d: &TestDaemon, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}{}", d.url, path))
        .json(&body)
        .timeout(T)
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn post_raw(d: &TestDaemon, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}{}", d.url, path))
        .body(body.to_string())
        .timeout(T)
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn wait_trading(d: &TestDaemon, since: u64, to: &str) -> Value {
    d.wait_for(since, T, |e| e["type"] == "trading_state" && e["to"] == to)
}

fn state_file(d: &TestDaemon) -> Value {
    let text = std::fs::read_to_string(d.dir.join("data/trading_state")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn manual_halt_is_persisted_before_it_is_announced_and_survives_a_restart() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");
    let (s, body) = post_json(
        &d,
        "/api/trading/halt",
        json!({"reason": "exchange incident"}),
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["state"], "HALTED");
    // The file is written before the API answers.
    let f = state_file(&d);
    assert_eq!(f["state"], "HALTED");
    assert_eq!(f["reason"], "exchange incident");
    let ev = wait_trading(&d, 0, "HALTED");
    assert_eq!(ev["from"], "ACTIVE");
    assert_eq!(ev["source"], "operator:local");
    assert_eq!(ev["actor"], "local");
    assert_eq!(ev["persisted"], true);
    // The CLI reads it, with an exit code scripts can gate on.
    let out = std::process::Command::new(vigil_bin())
        .args(["state", "--url", &d.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HALTED"));
    assert!(d.stop().success());

    // Still halted after a restart, with the same reason.
    let d2 = TestDaemon::start_in(tmp.path(), "");
    let st = d2.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert_eq!(st["last_transition"]["reason"], "exchange incident");
    // A reason is required to resume.
    let (s, _) = post_json(&d2, "/api/trading/resume", json!({"reason": ""}));
    assert_eq!(s, 400);
    let out = std::process::Command::new(vigil_bin())
        .args(["resume", "--reason", "incident over", "--url", &d2.url])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d2.get("/api/state")["state"], "ACTIVE");
    assert_eq!(state_file(&d2)["state"], "ACTIVE");
}

#[test]
fn an_unreadable_state_starts_halted() {
    let tmp = tempdir();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::write(tmp.path().join("data/trading_state"), "\u{0}garbage{").unwrap();
    let d = TestDaemon::start_in(tmp.path(), "");
    let st = d.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert_eq!(st["last_transition"]["source"], "system:startup");
}

#[test]
fn stale_market_data_halts_at_the_deadline_and_resume_waits_for_the_feed() {
    let d = TestDaemon::start(
        "[checks.feed]\nkind = \"freshness\"\npairs = [\"BTC/USD\"]\nthreshold_s = 1\ngrace_s = 30\n",
    );
    let since = d.last_seq();
    let (s, b) = post_raw(
        &d,
        "/api/events",
        r#"{"type":"tick","pair":"BTC/USD","price":65000.5,"source":"feed"}"#,
    );
    assert_eq!(s, 202, "{b}");
    let sent = chrono::Utc::now().timestamp_millis();
    let ev = wait_trading(&d, since, "HALTED");
    assert_eq!(ev["source"], "check:feed");
    assert_eq!(ev["actor"], "vigil");
    let at = ts_ms(&ev);
    let late = at - sent;
    // Never before last tick + threshold. That it fires at the deadline itself (no scan
    // interval) is the paused-clock and rule tests' to show, and `cargo bench --bench
    // ingest`'s to measure: a bound on scheduling here would only measure the machine.
    assert!(
        late >= 950,
        "detected {late} ms after the last tick, before the 1 s threshold"
    );
    let checks = d.get("/api/checks");
    let feed = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "feed")
        .unwrap()
        .clone();
    assert_eq!(feed["status"], "critical", "{checks}");
    // Resume is refused while the feed is still stale...
    let (s, body) = post_json(&d, "/api/trading/resume", json!({"reason": "looks fine"}));
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["holding"][0]["source"], "check:feed");
    // ...fresh data clears the condition but never resumes by itself...
    post_raw(
        &d,
        "/api/events",
        r#"{"type":"tick","pair":"BTC/USD","price":65001}"#,
    );
    d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "feed" && e["status"] == "ok"
    });
    assert_eq!(d.get("/api/state")["state"], "HALTED");
    // ...and then a person may resume.
    let (s, body) = post_json(&d, "/api/trading/resume", json!({"reason": "feed back"}));
    assert_eq!(s, 200, "{body}");
}

#[test]
fn force_resume_overrides_a_holding_condition() {
    let d = TestDaemon::start(
        "[checks.feed]\nkind = \"freshness\"\npairs = [\"X/Y\"]\nthreshold_s = 0.2\ngrace_s = 0.2\n",
    );
    wait_trading(&d, 0, "HALTED");
    let (s, _) = post_json(&d, "/api/trading/resume", json!({"reason": "testing"}));
    assert_eq!(s, 409);
    let (s, body) = post_json(
        &d,
        "/api/trading/resume",
        json!({"reason": "known issue", "force": true}),
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");
}

#[test]
fn drawdown_halts_and_close_positions_are_commanded() {
    let dir = tempdir();
    let marker = dir.path().join("halted-by");
    let d = TestDaemon::start(&format!(
        "[rules.drawdown]\nwarn_pct = 5\ncritical_pct = 10\n\n[halt]\nposition_behavior = \"close\"\ncommand = \"sh -c 'echo $VIGIL_SOURCE > {}'\"\n",
        marker.display()
    ));
    let since = d.last_seq();
    let batch = [
        json!({"type": "position", "pair": "BTC/USD", "qty": 0.5}),
        json!({"type": "position", "pair": "ETH/USD", "qty": -2}),
        json!({"type": "position", "pair": "SOL/USD", "qty": 0}),
        json!({"type": "equity", "equity": 10000}),
        json!({"type": "equity", "equity": 8900}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    let (s, b) = post_raw(&d, "/api/events", &batch);
    assert_eq!(s, 202, "{b}");
    let ev = wait_trading(&d, since, "HALTED");
    assert_eq!(ev["source"], "rule:drawdown");
    assert!(
        (ev["values"]["value"].as_f64().unwrap() - 11.0).abs() < 1e-6,
        "{ev}"
    );
    let seq = ev["seq"].as_u64().unwrap();
    let mut cmds = Vec::new();
    for _ in 0..3 {
        let c = d.wait_for(
            cmds.last()
                .map(|c: &Value| c["seq"].as_u64().unwrap())
                .unwrap_or(seq),
            T,
            |e| e["type"] == "command",
        );
        cmds.push(c);
    }
    assert_eq!(cmds[0]["command"], "cancel_all_orders");
    assert_eq!(cmds[1]["command"], "close_position");
    assert_eq!(cmds[1]["pair"], "BTC/USD");
    assert_eq!(cmds[1]["side"], "sell");
    assert_eq!(cmds[1]["qty"], 0.5);
    assert_eq!(cmds[2]["pair"], "ETH/USD");
    assert_eq!(cmds[2]["side"], "buy");
    assert_eq!(cmds[2]["qty"], 2.0);
    let done = d.wait_for(seq, T, |e| {
        e["type"] == "halt_action" && e["action"] == "command"
    });
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "rule:drawdown"
    );
}

#[test]
fn a_batch_with_bad_lines_is_answered_per_line_and_the_good_lines_count() {
    let d = TestDaemon::start("");
    let since = d.last_seq();
    let body = "{\"type\":\"equity\",\"equity\":5000}\n{\"type\":\"fill\",\"pair\":\"BTC/USD\",\"side\":\"hold\",\"qty\":1,\"price\":2}\nnot json\n{\"type\":\"mystery\",\"x\":1}\n";
    let (s, b) = post_raw(&d, "/api/events", body);
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["accepted"], 2);
    assert_eq!(b["rejected"], 2);
    assert_eq!(b["errors"][0]["line"], 2);
    assert_eq!(b["errors"][0]["field"], "side");
    assert_eq!(b["errors"][1]["line"], 3);
    // The valid equity event was stored; the unknown type was kept and counted.
    let eq = d.wait_for(since, T, |e| e["type"] == "equity");
    assert_eq!(eq["equity"], 5000.0);
    d.wait_for(since, T, |e| e["type"] == "mystery");
    let checks = d.get("/api/checks");
    assert_eq!(checks["ingest"]["unknown_types"], 1, "{checks}");
    assert_eq!(checks["ingest"]["rejected"]["side"], 1, "{checks}");
    // The daemon is fine.
    assert_eq!(d.get("/health")["status"], "ok");
}

#[test]
fn unix_socket_ingest_answers_bad_lines() {
    let d =
        TestDaemon::start("[checks.hb]\nkind = \"heartbeat\"\nsources = [\"bot\"]\nperiod_s = 5\n");
    let since = d.last_seq();
    let mut sock = std::os::unix::net::UnixStream::connect(d.dir.join("data/vigil.sock")).unwrap();
    sock.write_all(b"{\"type\":\"heartbeat\",\"source\":\"bot\"}\n{\"type\":\"tick\",\"pair\":\"A/B\",\"price\":-1}\n").unwrap();
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let reply: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["line"], 2);
    assert_eq!(reply["field"], "price");
    let ok = d.wait_for(since, T, |e| e["type"] == "check" && e["name"] == "hb");
    assert_eq!(ok["status"], "ok");
}

#[test]
fn program_stdout_events_and_critical_program_fatal_halts() {
    let dir = tempdir();
    let s = script(
        dir.path(),
        "bot.sh",
        "echo not-an-event\necho '{\"type\":\"equity\",\"equity\":42}'\nsleep 0.2\nexit 1",
    );
    let d = TestDaemon::start(&format!(
        "[program.bot]\ncommand = \"{}\"\nevents = \"stdout\"\ncritical = true\nstartsecs = 1\nstartretries = 0\n",
        s.display()
    ));
    let eq = d.wait_for(0, T, |e| e["type"] == "equity");
    assert_eq!(eq["equity"], 42.0);
    assert_eq!(eq["source"], "bot");
    let ev = wait_trading(&d, 0, "HALTED");
    assert_eq!(ev["source"], "program:bot");
    assert!(ev["reason"].as_str().unwrap().contains("FATAL"));
}

#[test]
fn jsonl_files_are_followed_through_rotation() {
    let tmp = tempdir();
    let log = tmp.path().join("bot-events.jsonl");
    std::fs::write(&log, "{\"type\":\"equity\",\"equity\":1}\n").unwrap(); // history: skipped
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!("[ingest]\nfiles = [\"{}\"]\n", log.display()),
    );
    let since = d.last_seq();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(f, "{{\"type\":\"equity\",\"equity\":2}}").unwrap();
    let e = d.wait_for(since, T, |e| e["type"] == "equity");
    assert_eq!(e["equity"], 2.0);
    assert_eq!(e["source"], "bot-events");
    // Rotate: rename and start a new file.
    std::fs::rename(&log, tmp.path().join("bot-events.jsonl.1")).unwrap();
    std::fs::write(&log, "{\"type\":\"equity\",\"equity\":3}\n").unwrap();
    let e = d.wait_for(e["seq"].as_u64().unwrap(), T, |e| e["type"] == "equity");
    assert_eq!(e["equity"], 3.0);
    // Truncate and write again.
    std::fs::write(&log, "{\"type\":\"equity\",\"equity\":4}\n").unwrap();
    let e = d.wait_for(e["seq"].as_u64().unwrap(), T, |e| e["type"] == "equity");
    assert_eq!(e["equity"], 4.0);
}

#[test]
fn vigil_send_pipes_ndjson_and_reports_bad_lines() {
    let d = TestDaemon::start("");
    let mut child = std::process::Command::new(vigil_bin())
        .args(["send", "--url", &d.url])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"type\":\"heartbeat\"}\n{\"type\":\"equity\"}\n{\"type\":\"equity\",\"equity\":7}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stdin:2: equity"), "{err}");
    assert!(err.contains("2 event(s) accepted, 1 refused"), "{err}");
}

/// A tiny HTTP receiver: records each request body; answers 200.
fn receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    break;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            std::io::Read::read_exact(&mut r, &mut body).unwrap();
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (url, rx)
}

#[test]
fn a_hanging_probe_is_cut_by_its_timeout_and_counts_as_a_failure() {
    // Accepts connections and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let (hook, alerts) = receiver();
    let d = TestDaemon::start(&format!(
        "[checks.api]\nkind = \"http\"\nurl = \"http://{addr}/status\"\ninterval_s = 0.3\ntimeout_s = 0.3\nfailures = 2\n\n\
         [alerts.am]\nkind = \"alertmanager\"\nurl = \"{hook}\"\n"
    ));
    let ev = wait_trading(&d, 0, "HALTED");
    assert_eq!(ev["source"], "check:api");
    assert!(ev["reason"].as_str().unwrap().contains("timed out"), "{ev}");
    // The Alertmanager-format alert arrives for the check.
    let deadline = std::time::Instant::now() + T;
    loop {
        let a = alerts
            .recv_timeout(deadline - std::time::Instant::now())
            .expect("an alert");
        if a["groupLabels"]["alertname"] == "vigil_check_api" {
            assert_eq!(a["version"], "4");
            assert_eq!(a["status"], "firing");
            assert_eq!(a["alerts"][0]["labels"]["severity"], "critical");
            break;
        }
    }
}

#[test]
fn halt_webhook_gets_the_transition() {
    let (hook, rx) = receiver();
    let d = TestDaemon::start(&format!("[halt]\nwebhook = \"{hook}\"\n"));
    let (s, _) = post_json(
        &d,
        "/api/trading/halt",
        json!({"reason": "drill", "reduce_only": true}),
    );
    assert_eq!(s, 200);
    let body = rx.recv_timeout(T).unwrap();
    assert_eq!(body["type"], "trading_state");
    assert_eq!(body["to"], "REDUCING");
    assert_eq!(body["reason"], "drill");
    let done = d.wait_for(0, T, |e| {
        e["type"] == "halt_action" && e["action"] == "webhook"
    });
    assert_eq!(done["ok"], true);
    // Halting while REDUCING escalates.
    let (_, b) = post_json(&d, "/api/trading/halt", json!({"reason": "worse"}));
    assert_eq!(b["state"], "HALTED");
}

#[test]
fn bad_monitor_config_is_located() {
    let dir = tempdir();
    let f = dir.path().join("v.toml");
    std::fs::write(
        &f,
        "[rules.dd]\nkind = \"drawdown\"\ncritcal_pct = 10\n\n[checks.feed]\nkind = \"freshnes\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(vigil_bin())
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = f.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:3:1: rules.dd.critcal_pct: unknown key, did you mean \"critical_pct\"?"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:6:1: checks.feed.kind: unknown kind \"freshnes\""
        )),
        "{err}"
    );
}

/// A Kraken-shaped server on loopback: answers SystemStatus with `status_body` and
/// private Balance with `balance_body`; reports each request (path, headers, body).
fn fake_kraken(
    status_body: &'static str,
    balance_body: &'static str,
) -> (String, std::sync::mpsc::Receiver<(String, String, String)>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap_or(0);
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = String::new();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push_str(&h);
            }
            let mut body = vec![0u8; len];
            let _ = std::io::Read::read_exact(&mut r, &mut body);
            let answer = if path.contains("/private/Balance") {
                balance_body
            } else {
                status_body
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    answer.len(),
                    answer
                )
                .as_bytes(),
            );
            let _ = tx.send((path, headers, String::from_utf8_lossy(&body).to_string()));
        }
    });
    (url, rx)
}

#[test]
fn kraken_unavailable_n_times_halts() {
    let (url, rx) = fake_kraken(r#"{"error":["EService:Unavailable"],"result":{}}"#, "{}");
    let d = TestDaemon::start(&format!(
        "[checks.kraken]\nbase_url = \"{url}\"\ninterval_s = 0.2\nfailures = 3\n"
    ));
    let ev = wait_trading(&d, 0, "HALTED");
    assert_eq!(ev["source"], "check:kraken");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap()
            .contains("EService:Unavailable"),
        "{ev}"
    );
    assert_eq!(ev["values"]["value"], 3.0, "{ev}");
    let (path, _, _) = rx.recv_timeout(T).unwrap();
    assert_eq!(path, "/0/public/SystemStatus");
}

#[test]
fn kraken_auth_error_halts_at_once_and_the_call_is_signed() {
    let (url, rx) = fake_kraken(
        r#"{"error":[],"result":{"status":"online","timestamp":"2026-11-23T10:00:00Z"}}"#,
        r#"{"error":["EAPI:Invalid key"]}"#,
    );
    let dir = tempdir();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[checks.kraken]\nbase_url = \"{url}\"\ninterval_s = 5\nfailures = 3\napi_key_env = \"TEST_KRAKEN_KEY\"\napi_secret_env = \"TEST_KRAKEN_SECRET\"\n",
            header(dir.path())
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .env("TEST_KRAKEN_KEY", "my-api-key")
        .env("TEST_KRAKEN_SECRET", "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("vigil: listening on ")
        .unwrap()
        .to_string();
    let mut saw_private = None;
    for _ in 0..4 {
        let (path, headers, body) = rx.recv_timeout(T).unwrap();
        if path == "/0/private/Balance" {
            saw_private = Some((headers, body));
            break;
        }
    }
    let (headers, body) = saw_private.expect("a private Balance call");
    assert!(
        headers.to_ascii_lowercase().contains("api-key: my-api-key"),
        "{headers}"
    );
    assert!(
        headers.to_ascii_lowercase().contains("api-sign: "),
        "{headers}"
    );
    assert!(body.starts_with("nonce="), "{body}");
    // Critical at once (failures = 3 does not apply to auth errors).
    let deadline = std::time::Instant::now() + T;
    loop {
        let st: Value = reqwest::blocking::get(format!("{base}/api/state"))
            .unwrap()
            .json()
            .unwrap();
        if st["state"] == "HALTED" {
            assert_eq!(st["last_transition"]["source"], "check:kraken");
            assert!(
                st["last_transition"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("EAPI:Invalid key"),
                "{st}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not halted: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_demo_feed_stopping_halts_within_the_threshold() {
    let d = TestDaemon::start(&format!(
        "[program.feed]\ncommand = \"{} sim feed --pairs BTC/USD --interval-ms 50\"\nevents = \"stdout\"\nstartsecs = 0\n\n\
         [checks.market_data]\nkind = \"freshness\"\npairs = [\"BTC/USD\"]\nthreshold_s = 1\n",
        vigil_bin()
    ));
    d.wait_for(0, T, |e| {
        e["type"] == "check" && e["name"] == "market_data" && e["status"] == "ok"
    });
    let since = d.last_seq();
    let (s, _) = d.post("/api/programs/feed/stop");
    let stopped_at = chrono::Utc::now().timestamp_millis();
    assert_eq!(s, 200);
    let ev = wait_trading(&d, since, "HALTED");
    assert_eq!(ev["source"], "check:market_data");
    let late = ts_ms(&ev) - stopped_at;
    // The last tick came at most one feed interval (50 ms) before the stop, so the halt
    // cannot come earlier than threshold − 50 ms after it (how soon after is measured by the
    // benches, not bounded here).
    assert!(
        late >= 900,
        "halted {late} ms after the feed stopped, before the threshold"
    );
}

#[test]
fn bad_lines_in_a_followed_file_are_located_and_skipped() {
    let tmp = tempdir();
    let log = tmp.path().join("ev.jsonl");
    std::fs::write(&log, "").unwrap();
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!("[ingest]\nfiles = [\"{}\"]\n", log.display()),
    );
    let since = d.last_seq();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"{\"type\":\"equity\",\"equity\":\"lots\"}\n{\"type\":\"equity\",\"equity\":9}\n")
        .unwrap();
    let e = d.wait_for(since, T, |e| e["type"] == "equity");
    assert_eq!(e["equity"], 9.0);
    assert!(
        d.stderr_text().contains("event refused: line 1: equity"),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.get("/health")["status"], "ok");
}
