//! The exchange dead-man switch end to end, against a Kraken-shaped fake on loopback that
//! runs the countdown and cancels its orders when it expires (`fake_kraken`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_kraken::{self, FakeKraken, Mode};
use crate::support::*;
use crate::trading::post_json as post;

const T: Duration = Duration::from_secs(30);

fn secret_files(dir: &Path) -> (String, String) {
    let key = dir.join("kraken.key");
    let secret = dir.join("kraken.secret");
    for (p, v) in [(&key, fake_kraken::KEY), (&secret, fake_kraken::SECRET)] {
        std::fs::write(p, format!("{v}\n")).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (key.display().to_string(), secret.display().to_string())
}

/// `[venue.kraken]` with small timeouts: countdown 5 s, refresh every 1 s (slack for a
/// loaded machine).
fn venue(dir: &Path, url: &str, extra: &str) -> String {
    let (key, secret) = secret_files(dir);
    format!(
        "[venue.kraken]\nkind = \"kraken\"\nbase_url = \"{url}\"\napi_key_file = \"{key}\"\n\
         api_secret_file = \"{secret}\"\ndeadman_timeout_s = 5\ndeadman_refresh_s = 1\n\
         deadman_margin_s = 2\nrequest_timeout_s = 2\n{extra}\n"
    )
}

fn venue_event(d: &TestDaemon, since: u64, action: &str) -> Value {
    d.wait_for(since, T, |e| e["type"] == "venue" && e["action"] == action)
}

fn venue_cli(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    std::process::Command::new(vigil_bin())
        .arg("venue")
        .args(args)
        .args(["--url", &d.url])
        .output()
        .unwrap()
}

fn kraken_view(d: &TestDaemon) -> Value {
    let v = d.get("/api/venues");
    v["venues"][0].clone()
}

#[test]
fn while_active_the_timer_never_expires_and_after_sigkill_the_exchange_cancels_the_orders() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let bot = script(
        tmp.path(),
        "bot.py",
        "import sys, time, urllib.request\n\
         for i in range(3):\n    urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/0/private/AddOrder', data=b'ordertype=limit')).read()\n\
         print('placed', flush=True)\n\
         time.sleep(3600)\n",
    );
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!(
            "[program.bot]\ncommand = \"python3 {} {}\"\nstartsecs = 0\n\n{}",
            bot.display(),
            fake.url,
            venue(tmp.path(), &fake.url, "")
        ),
    );
    let armed = venue_event(&d, 0, "armed");
    assert_eq!(armed["venue"], "kraken");
    assert_eq!(armed["timeout_s"], 5);
    fake.wait(T, "the bot's 3 orders", |s| {
        (s.orders.len() == 3).then_some(())
    });
    // Refreshes spanning more than two countdowns: the timer never fired.
    let first = fake.with(|s| s.cancel_after.len());
    fake.wait(T, "refreshes over more than 2 countdowns", |s| {
        let calls = &s.cancel_after[first..];
        (calls.len() >= 2 && calls[calls.len() - 1].0 - calls[0].0 > Duration::from_secs(11))
            .then_some(())
    });
    fake.with(|s| {
        assert!(
            s.fired.is_empty(),
            "the countdown fired while ACTIVE: {s:?}"
        );
        assert_eq!(s.orders.len(), 3);
        assert!(s.refused.is_empty(), "{:?}", s.refused);
        assert!(s.cancel_after.iter().all(|(_, t)| *t == 5));
    });
    let v = kraken_view(&d);
    assert_eq!(v["armed"], true, "{v}");
    assert_eq!(v["goal"], "armed");
    assert!(v["trigger_time"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(v["last_refresh"]["skew_ms"].is_i64(), "{v}");
    let checks = d.get("/api/checks");
    let row = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "venue:kraken")
        .cloned()
        .unwrap_or_else(|| panic!("no check row: {checks}"));
    assert_eq!(row["kind"], "deadman");
    assert_eq!(row["status"], "ok", "{row}");
    assert!(
        row["subject"].as_str().unwrap().contains("triggerTime"),
        "{row}"
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", d.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("vigil_venue_deadman_armed{venue=\"kraken\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("check=\"venue:kraken\""), "{metrics}");

    // vigil and the bot die: nothing refreshes; the exchange cancels everything.
    let bot_pid = d.process("bot")["pid"].as_i64().unwrap() as i32;
    d.signal(nix::sys::signal::Signal::SIGKILL);
    let (fired_at, n) = fake.wait(T, "the countdown to fire", |s| s.fired.first().copied());
    assert_eq!(n, 3, "every order cancelled by the exchange");
    let last_call = fake.with(|s| s.cancel_after.last().unwrap().0);
    assert!(fired_at >= last_call + Duration::from_secs(5));
    assert!(fake.with(|s| s.orders.is_empty()));
    eventually(T, "the bot to die with vigil", || !alive(bot_pid));
}

#[test]
fn a_halt_cancels_at_the_exchange_records_the_count_stops_refreshing_and_resume_rearms() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), &venue(tmp.path(), &fake.url, ""));
    venue_event(&d, 0, "armed");
    fake.place(4);
    let since = d.last_seq();
    let (s, body) = post(&d, "/api/trading/halt", json!({"reason": "bot hung"}));
    assert_eq!(s, 200, "{body}");
    let ev = d.wait_for(since, T, |e| {
        e["type"] == "halt_action" && e["action"] == "venue_cancel_all"
    });
    assert_eq!(ev["ok"], true, "{ev}");
    assert_eq!(ev["count"], 4, "{ev}");
    assert_eq!(ev["venue"], "kraken");
    let halted = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    assert_eq!(ev["transition_seq"], halted["seq"]);
    // A figure, not a threshold: the daemon's own timestamps, transition → count recorded.
    eprintln!(
        "HALT → CancelAll answered and recorded: {} ms",
        ts_ms(&ev) - ts_ms(&halted)
    );
    // The bot's command is still issued.
    d.wait_for(since, T, |e| {
        e["type"] == "command" && e["command"] == "cancel_all_orders"
    });
    assert_eq!(fake.with(|s| s.cancel_all.clone()), vec![4]);
    assert_eq!(kraken_view(&d)["last_cancel_all"]["count"], 4);
    // No refresh while halted: what the bot still places dies with the countdown.
    fake.place(2);
    let (_, n) = fake.wait(T, "the countdown to fire after the halt", |s| {
        s.fired.first().copied()
    });
    assert_eq!(n, 2);
    let v = kraken_view(&d);
    assert_eq!(v["goal"], "expiring", "{v}");
    assert_eq!(v["armed"], false, "{v}");
    assert_eq!(v["check"]["status"], "ok", "expected while halted: {v}");
    // Resume re-arms.
    let since = d.last_seq();
    let (s, body) = post(&d, "/api/trading/resume", json!({"reason": "bot fixed"}));
    assert_eq!(s, 200, "{body}");
    venue_event(&d, since, "armed");
    fake.wait(T, "the timer re-armed", |s| s.trigger.map(|_| ()));
    // The countdown that fired while halted is not taken for an expiry after the resume.
    let after: Vec<Value> = d
        .events(since)
        .into_iter()
        .filter(|e| {
            e["type"] == "trading_state" || (e["type"] == "check" && e["status"] == "critical")
        })
        .collect();
    assert_eq!(after.len(), 1, "only the resume: {after:?}");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");
}

#[test]
fn a_rejected_refresh_goes_critical_at_once_and_halts() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), &venue(tmp.path(), &fake.url, ""));
    venue_event(&d, 0, "armed");
    let since = d.last_seq();
    fake.set_mode(Mode::Error("EGeneral:Permission denied"));
    let failed = venue_event(&d, since, "call_failed");
    assert_eq!(failed["class"], "auth", "{failed}");
    assert_eq!(failed["detail"], "EGeneral:Permission denied");
    let check = d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "venue:kraken" && e["status"] == "critical"
    });
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("EGeneral:Permission denied"),
        "{check}"
    );
    let t = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    assert_eq!(t["source"], "check:venue:kraken", "{t}");
    // The halt's own cancel-all is rejected too: recorded, not silent.
    let ca = d.wait_for(since, T, |e| {
        e["type"] == "halt_action" && e["action"] == "venue_cancel_all"
    });
    assert_eq!(ca["ok"], false, "{ca}");
}

#[test]
fn an_expired_switch_goes_critical_and_the_configured_action_happens() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        &venue(tmp.path(), &fake.url, "on_expiry = \"reduce\""),
    );
    venue_event(&d, 0, "armed");
    let since = d.last_seq();
    // The exchange stops answering in time: every refresh times out.
    fake.set_mode(Mode::Hang(Duration::from_secs(4)));
    let failed = venue_event(&d, since, "call_failed");
    assert_eq!(failed["class"], "timeout", "{failed}");
    d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "venue:kraken" && e["status"] == "warn"
    });
    let crit = d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "venue:kraken" && e["status"] == "critical"
    });
    assert!(
        crit["message"].as_str().unwrap().contains("expired"),
        "{crit}"
    );
    let t = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "REDUCING"
    });
    assert_eq!(t["source"], "check:venue:kraken");
    // Recovery clears the check (the REDUCING latch stays until resumed).
    fake.set_mode(Mode::Normal);
    let since = d.last_seq();
    venue_event(&d, since, "call_recovered");
    d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "venue:kraken" && e["status"] == "ok"
    });
    assert_eq!(d.get("/api/state")["state"], "REDUCING");
}

#[test]
fn rate_limits_and_malformed_answers_are_classified_and_retried() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        &venue(tmp.path(), &fake.url, "on_expiry = \"warn\""),
    );
    venue_event(&d, 0, "armed");
    for (mode, class) in [
        (Mode::Error("EAPI:Rate limit exceeded"), "throttled"),
        (Mode::Malformed, "malformed"),
        (Mode::Error("EService:Unavailable"), "connectivity"),
    ] {
        let since = d.last_seq();
        fake.set_mode(mode);
        let f = d.wait_for(since, T, |e| {
            e["type"] == "venue" && e["action"] == "call_failed" && e["class"] == class
        });
        assert!(f["retry_in_ms"].as_u64().unwrap() > 0, "{f}");
        fake.set_mode(Mode::Normal);
        venue_event(&d, since, "call_recovered");
    }
    let v = kraken_view(&d);
    assert!(v["failures_total"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(d.get("/api/state")["state"], "ACTIVE", "on_expiry = warn");
}

#[test]
fn disarm_and_rearm_are_events_and_the_cli_drives_them() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), &venue(tmp.path(), &fake.url, ""));
    venue_event(&d, 0, "armed");
    let out = venue_cli(&d, &["ls"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("kraken") && text.contains("armed"), "{text}");
    let since = d.last_seq();
    let out = venue_cli(
        &d,
        &["disarm", "kraken", "--reason", "kraken maintenance 02:00"],
    );
    assert!(out.status.success(), "{out:?}");
    let ev = venue_event(&d, since, "disarm");
    assert_eq!(ev["actor"], "local");
    assert_eq!(ev["reason"], "kraken maintenance 02:00");
    let ev = venue_event(&d, since, "disarmed");
    assert_eq!(ev["trigger_time"], "0");
    fake.wait(T, "the timer off", |s| {
        (s.trigger.is_none() && s.cancel_after.last().is_some_and(|c| c.1 == 0)).then_some(())
    });
    let v = kraken_view(&d);
    assert_eq!(v["goal"], "disarmed", "{v}");
    assert_eq!(v["disarmed"]["reason"], "kraken maintenance 02:00");
    assert_eq!(
        v["check"]["status"], "warn",
        "trading without the switch: {v}"
    );
    // Disarmed survives a restart of vigil.
    drop(d);
    let d = TestDaemon::start_in(tmp.path(), &venue(tmp.path(), &fake.url, ""));
    let v = kraken_view(&d);
    assert_eq!(v["goal"], "disarmed", "{v}");
    // The restarted vigil's nonces still increase (the fake checks every call).
    fake.wait(T, "the disarm repeated after the restart", |s| {
        (s.cancel_after.iter().filter(|c| c.1 == 0).count() >= 2).then_some(())
    });
    assert!(
        fake.with(|s| s.refused.is_empty()),
        "{:?}",
        fake.with(|s| s.refused.clone())
    );
    // Bad input: unknown venue, empty reason.
    let out = venue_cli(&d, &["arm", "nope", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let (s, body) = post(&d, "/api/venues/kraken/arm", json!({"reason": " "}));
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let since = d.last_seq();
    let out = venue_cli(&d, &["arm", "kraken", "--reason", "maintenance over"]);
    assert!(out.status.success(), "{out:?}");
    let ev = venue_event(&d, since, "arm");
    assert_eq!(ev["reason"], "maintenance over");
    venue_event(&d, since, "armed");
    fake.wait(T, "the timer re-armed", |s| s.trigger.map(|_| ()));
    // Arming is refused while HALTED.
    post(&d, "/api/trading/halt", json!({"reason": "x"}));
    let (s, body) = post(&d, "/api/venues/kraken/arm", json!({"reason": "y"}));
    assert_eq!(s, 409, "{body}");
}

#[test]
fn after_a_close_halt_vigil_records_which_positions_the_bot_closed_and_alerts_on_the_rest() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!(
            "[halt]\nposition_behavior = \"close\"\n\n{}",
            venue(tmp.path(), &fake.url, "close_timeout_s = 1")
        ),
    );
    venue_event(&d, 0, "armed");
    let (s, body) = post(
        &d,
        "/api/events",
        json!({"type": "position", "pair": "BTC/USD", "qty": 0.5}),
    );
    assert!(s < 300, "{body}");
    post(
        &d,
        "/api/events",
        json!({"type": "position", "pair": "ETH/USD", "qty": -2.0}),
    );
    d.wait_for(0, T, |e| e["type"] == "position" && e["pair"] == "ETH/USD");
    let since = d.last_seq();
    post(
        &d,
        "/api/trading/halt",
        json!({"reason": "close everything"}),
    );
    d.wait_for(since, T, |e| {
        e["type"] == "command" && e["command"] == "close_position" && e["pair"] == "ETH/USD"
    });
    // The bot closes one of the two.
    post(
        &d,
        "/api/events",
        json!({"type": "position", "pair": "BTC/USD", "qty": 0}),
    );
    let closed = d.wait_for(since, T, |e| e["type"] == "position_closed");
    assert_eq!(closed["pair"], "BTC/USD");
    let open = d.wait_for(since, T, |e| e["type"] == "position_still_open");
    assert_eq!(open["pairs"], json!({"ETH/USD": 2.0}), "{open}");
    let check = d.wait_for(since, T, |e| {
        e["type"] == "check" && e["name"] == "positions_closed" && e["status"] == "critical"
    });
    assert!(
        check["message"].as_str().unwrap().contains("ETH/USD"),
        "{check}"
    );
    let w = d.get("/api/venues")["close_watch"].clone();
    assert_eq!(w["overdue"], true, "{w}");
    assert!(w["closed"]["BTC/USD"]["after_s"].is_f64(), "{w}");
}

#[test]
fn venue_config_errors_are_located_and_a_world_readable_secret_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path();
    let (key, secret) = secret_files(dir);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[venue.kraken]\nkind = \"kraken\"\napi_key_file = \"{key}\"\napi_secret_file = \"{secret}\"\n\
             deadman_timeout_s = 10\ndeadman_refresh_s = 10\n\n\
             [venue.other]\nkind = \"krakn\"\napi_key_env = \"VIGIL_TEST_UNSET_VAR\"\napi_secret = \"inline\"\n",
            header(dir)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(vigil_bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let file = cfg.display();
    for want in [
        format!(
            "{file}:9:19: venue.kraken.api_secret_file: {secret} is readable by every user (mode 0644)"
        ),
        format!(
            "{file}:11:21: venue.kraken.deadman_refresh_s: must be shorter than deadman_timeout_s (10 s)"
        ),
        format!(
            "{file}:14:8: venue.other.kind: unknown venue kind \"krakn\", did you mean \"kraken\"?"
        ),
        format!(
            "{file}:15:15: venue.other.api_key_env: environment variable VIGIL_TEST_UNSET_VAR is not set"
        ),
        format!("{file}:16:1: venue.other.api_secret: credentials never go in the config text"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains(fake_kraken::SECRET), "a secret leaked: {err}");
    // And `run` refuses to start on it.
    let out = std::process::Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn reducing_keeps_it_armed_and_halt_timeout_s_shortens_the_countdown_on_halt() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        &venue(tmp.path(), &fake.url, "halt_timeout_s = 1"),
    );
    venue_event(&d, 0, "armed");
    let since = d.last_seq();
    let (s, _) = post(
        &d,
        "/api/trading/halt",
        json!({"reason": "reduce only", "reduce_only": true}),
    );
    assert_eq!(s, 200);
    d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "REDUCING"
    });
    let n = fake.with(|s| s.cancel_after.len());
    fake.wait(T, "refreshes while REDUCING", |s| {
        (s.cancel_after.len() >= n + 3).then_some(())
    });
    assert!(fake.with(|s| s.cancel_all.is_empty() && s.fired.is_empty()));
    fake.place(3);
    let since = d.last_seq();
    post(&d, "/api/trading/halt", json!({"reason": "now halt"}));
    let ev = venue_event(&d, since, "halt_armed");
    assert_eq!(ev["timeout_s"], 1, "{ev}");
    let ca = d.wait_for(since, T, |e| {
        e["type"] == "halt_action" && e["action"] == "venue_cancel_all"
    });
    assert_eq!(ca["count"], 3);
    // The short countdown fires (and what the bot placed in between dies with it).
    fake.place(1);
    let (_, n) = fake.wait(T, "the short countdown to fire", |s| {
        s.fired.first().copied()
    });
    assert_eq!(n, 1);
    fake.with(|s| {
        assert_eq!(s.cancel_after.last().map(|c| c.1), Some(1));
        assert!(s.refused.is_empty(), "{:?}", s.refused);
    });
}

#[test]
fn a_halt_does_not_wait_for_a_refresh_stuck_at_the_exchange() {
    let fake = FakeKraken::start();
    let tmp = tempdir();
    // A long request timeout: without abandoning the stuck refresh, the cancel-all would
    // wait a minute for it.
    let cfg =
        venue(tmp.path(), &fake.url, "").replace("request_timeout_s = 2", "request_timeout_s = 60");
    let d = TestDaemon::start_in(tmp.path(), &cfg);
    venue_event(&d, 0, "armed");
    fake.place(2);
    fake.set_mode(Mode::HoldRefresh);
    fake.wait(T, "a refresh held by the exchange", |s| {
        (s.held > 0).then_some(())
    });
    let since = d.last_seq();
    post(&d, "/api/trading/halt", json!({"reason": "bot hung"}));
    let ca = d.wait_for(since, T, |e| {
        e["type"] == "halt_action" && e["action"] == "venue_cancel_all"
    });
    assert_eq!(
        (ca["ok"].as_bool(), ca["count"].as_u64()),
        (Some(true), Some(2)),
        "{ca}"
    );
    assert_eq!(fake.with(|s| s.held), 1, "no refresh after the halt");
}
