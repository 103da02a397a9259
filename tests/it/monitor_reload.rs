//! SIGHUP reloads the monitor's checks and rules, applying only what changed: a kept check
//! keeps its state, a changed rule takes its new threshold, an added one starts Unknown, and
//! a config with an error keeps everything as it runs.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::*;

const T: Duration = Duration::from_secs(20);

fn post_batch(d: &TestDaemon, lines: &[Value]) {
    let body = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/events", d.url))
        .body(body)
        .timeout(T)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

fn check(d: &TestDaemon, source: &str) -> Value {
    let all = d.get("/api/checks");
    all["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == source)
        .cloned()
        .unwrap_or_else(|| panic!("no {source} in {all}"))
}

const FEED: &str = "[checks.feed]\nkind = \"freshness\"\npairs = [\"BTC/USD\"]\nthreshold_s = 3600\ngrace_s = 3600\n\n";

#[test]
fn sighup_reloads_checks_and_rules_keeping_what_did_not_change() {
    let tmp = tempdir();
    let dir = tmp.path();
    let d = TestDaemon::start_in(
        dir,
        &format!("{FEED}[rules.drawdown]\nwarn_pct = 5\ncritical_pct = 10\n"),
    );
    // The feed check measures a tick: ok. The drawdown rule: ok, its limit 10 %.
    let since = d.last_seq();
    post_batch(
        &d,
        &[
            json!({"type": "tick", "pair": "BTC/USD", "price": 100.0}),
            json!({"type": "equity", "equity": 10000}),
        ],
    );
    d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "feed" && e["status"] == "ok"
    });
    let dd = d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "drawdown" && e["status"] == "ok"
    });
    assert_eq!(dd["threshold"], 10.0, "{dd}");
    let feed_before = check(&d, "check:feed");
    assert_eq!(feed_before["status"], "ok", "{feed_before}");

    // The drawdown's thresholds change, a rule is added, the feed check is as it was.
    std::fs::write(
        &d.config,
        format!(
            "{}{FEED}[rules.drawdown]\nwarn_pct = 15\ncritical_pct = 20\n\n[rules.losses]\nkind = \"consecutive_losses\"\ncritical = 3\n",
            header(dir)
        ),
    )
    .unwrap();
    let since = d.last_seq();
    d.signal(Signal::SIGHUP);
    let r = d.wait_for(since, T, |e| e["type"] == "monitor_reloaded");
    assert_eq!(r["added"], json!(["rule:losses"]), "{r}");
    assert_eq!(r["changed"], json!(["rule:drawdown"]), "{r}");
    assert_eq!(r["removed"], json!([]), "{r}");
    assert_eq!(r["kept"], 1, "{r}");

    // Kept: the feed check still has its measurement (a rebuilt one would be unknown).
    let feed = check(&d, "check:feed");
    assert_eq!(feed["status"], "ok", "{feed}");
    assert_eq!(feed["message"], feed_before["message"], "{feed}");
    // Added: unknown until its input arrives.
    assert_eq!(check(&d, "rule:losses")["status"], "unknown");
    // Changed: rebuilt, so unknown, then judged with the new limits: a 12 % drawdown,
    // critical before the reload, is ok under a 20 % limit.
    assert_eq!(check(&d, "rule:drawdown")["status"], "unknown");
    let since = d.last_seq();
    post_batch(
        &d,
        &[
            json!({"type": "equity", "equity": 10000}),
            json!({"type": "equity", "equity": 8800}),
        ],
    );
    let dd = d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "drawdown"
    });
    assert_eq!(dd["status"], "ok", "{dd}");
    assert_eq!(dd["threshold"], 20.0, "{dd}");
    let now = check(&d, "rule:drawdown");
    assert_eq!(now["threshold"], 20.0, "{now}");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");

    // A config with an error: nothing changes, and the log says so.
    std::fs::write(
        &d.config,
        format!(
            "{}{FEED}[rules.drawdown]\nwarn_pct = 1\ncritical_pct = \"two\"\n",
            header(dir)
        ),
    )
    .unwrap();
    let since = d.last_seq();
    d.signal(Signal::SIGHUP);
    eventually(T, "the reload refused", || {
        let err = d.stderr_text();
        err.contains("reload: keeping the running configuration")
            && err.contains("rules.drawdown.critical_pct")
    });
    assert!(
        d.events(since)
            .iter()
            .all(|e| e["type"] != "monitor_reloaded"),
        "{:?}",
        d.events(since)
    );
    assert_eq!(check(&d, "rule:drawdown")["threshold"], 20.0);
    assert_eq!(check(&d, "rule:losses")["status"], "unknown");
}

/// A removed rule that holds the halt: the halt stays, the condition no longer blocks a
/// resume.
#[test]
fn a_removed_rule_no_longer_holds_but_the_halt_stays() {
    let tmp = tempdir();
    let dir = tmp.path();
    let d = TestDaemon::start_in(
        dir,
        "[rules.drawdown]\ncritical_pct = 10\nauto_resume_after_s = 1\n",
    );
    let since = d.last_seq();
    post_batch(
        &d,
        &[
            json!({"type": "equity", "equity": 10000}),
            json!({"type": "equity", "equity": 8000}),
        ],
    );
    d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    std::fs::write(&d.config, header(dir)).unwrap();
    let since = d.last_seq();
    d.signal(Signal::SIGHUP);
    let r = d.wait_for(since, T, |e| e["type"] == "monitor_reloaded");
    assert_eq!(r["removed"], json!(["rule:drawdown"]), "{r}");
    let state = d.get("/api/state");
    assert_eq!(state["state"], "HALTED", "{state}");
    assert_eq!(state["holding"], json!([]), "{state}");
    // An unforced resume now goes through (it was refused while the rule held).
    let (status, body) =
        crate::trading::post_json(&d, "/api/trading/resume", json!({"reason": "rule retired"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");
}
