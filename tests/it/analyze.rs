//! `vigil analyze` end to end: golden numbers on `vigil sim session`'s injected faults in
//! every format, gzip / rotated sets / stdin, bad lines, exit codes, a bot's own JSONL with
//! the documented mapping, the store (`--db`), a daemon (`--url`) and `GET /api/report`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestDaemon, tempdir, vigil_bin};

fn sim(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let st = Command::new(vigil_bin())
        .args(["sim", "session", "--out"])
        .arg(&out)
        .args(args)
        .status()
        .expect("vigil sim session");
    assert!(st.success());
    out
}

fn analyze(args: &[&str]) -> Output {
    Command::new(vigil_bin())
        .arg("analyze")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("vigil analyze")
}

fn json_report(args: &[&str]) -> Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let out = analyze(&a);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn by<'a>(list: &'a Value, key: &str, val: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x[key] == val))
        .unwrap_or_else(|| panic!("no {key}={val} in {list}"))
}

/// The numbers the fault session must show (seed `vigil sim session --seed 2`).
#[test]
fn golden_fault_session_in_every_format() {
    let tmp = tempdir();
    let file = sim(tmp.path(), "s.jsonl", &[]);
    let r = json_report(&[p(&file)]);

    let s = &r["session"];
    assert_eq!(r["schema"], "vigil.report/1");
    assert_eq!(s["start"], "2025-10-26T18:06:21.000Z");
    assert_eq!(s["end"], "2025-10-26T18:15:51.000Z");
    assert_eq!(s["duration_s"], 570.0);
    assert_eq!(s["session_id"], "session_20251026_180621");
    assert_eq!(s["run_id"], "d588d1dc");
    assert_eq!(
        (s["events"].as_u64(), s["lines"].as_u64()),
        (Some(1353), Some(1353))
    );
    assert_eq!(s["bad_lines"], 0);

    let md_poll = by(&r["cycles"], "name", "md_poll");
    let expect = json!({"name": "md_poll", "target_ms": 1500.0, "count": 85, "overruns": 85,
        "overruns_per_min": 8.947, "overrun_pct": 100.0, "mean_ms": 6606.664, "min_ms": 3310.0,
        "max_ms": 21510.0, "p50_ms": 6223.1, "p95_ms": 9866.2, "p99_ms": 21510.0, "exact": true});
    for (k, v) in expect.as_object().expect("object") {
        assert_eq!(&md_poll[k], v, "md_poll.{k}");
    }
    let counts: Vec<u64> = md_poll["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, vec![0, 0, 0, 0, 0, 0, 0, 8, 63, 11, 3, 0, 0]);
    assert_eq!(md_poll["buckets"][12]["le_ms"], Value::Null);
    assert_eq!(md_poll["buckets"][8]["le_ms"], 7000.0);
    let engine = by(&r["cycles"], "name", "engine");
    assert_eq!(
        (engine["count"].as_u64(), engine["overruns"].as_u64()),
        (Some(570), Some(0))
    );

    // Independent check of the percentiles: nearest rank over the file's own durations.
    let text = std::fs::read_to_string(&file).expect("read");
    let mut d: Vec<f64> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("line"))
        .filter(|v| v["type"] == "cycle" && v["name"] == "md_poll")
        .map(|v| v["duration_ms"].as_f64().expect("duration"))
        .collect();
    d.sort_by(f64::total_cmp);
    let rank = |pct: f64| d[((pct / 100.0 * d.len() as f64).ceil() as usize).max(1) - 1];
    assert_eq!(md_poll["p50_ms"].as_f64(), Some(rank(50.0)));
    assert_eq!(md_poll["p95_ms"].as_f64(), Some(rank(95.0)));
    assert_eq!(md_poll["p99_ms"].as_f64(), Some(rank(99.0)));

    let feed = by(&r["heartbeats"], "source", "feed");
    assert_eq!(feed["beats"], 106);
    assert_eq!(feed["timeouts"], 1);
    assert_eq!(feed["max_gap_s"], 45.0);
    assert_eq!(feed["timeout_s"], 15.0);
    assert_eq!(feed["timeout_from"], "median");
    assert_eq!(feed["never_beat"], false);
    let eng = by(&r["heartbeats"], "source", "engine");
    assert_eq!(eng["never_beat"], true);
    assert_eq!(eng["beats"], 0);
    assert_eq!(eng["timeouts"], 1);
    assert_eq!(eng["timeout_s"], 300.0);
    assert_eq!(eng["timeout_from"], "config");

    let attr = by(&r["errors"], "kind", "AttributeError");
    assert_eq!(attr["level"], "error");
    assert_eq!(attr["count"], 1);
    assert_eq!(attr["first"], "2025-10-26T18:08:15.911Z");
    assert_eq!(attr["location"], "/services/order_router.py:783");
    assert!(
        attr["stack"]
            .as_str()
            .unwrap_or("")
            .contains("line 1188, in _on_order_intent")
    );
    let none = by(
        &r["errors"],
        "template",
        "Log cleanup error: expected str, bytes or os.PathLike object, not NoneType",
    );
    assert_eq!(none["count"], 2);
    assert_eq!(none["first"], "2025-10-26T18:06:33.500Z");
    assert_eq!(none["last"], "2025-10-26T18:11:33.000Z");
    let hb = by(
        &r["errors"],
        "template",
        "Heartbeat timeout: <num>s > <num>s (warn-only mode) | no beat history available",
    );
    assert_eq!(
        (hb["level"].as_str(), hb["count"].as_u64()),
        (Some("warning"), Some(9))
    );
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(5));

    let t = &r["trading"];
    assert_eq!(t["orders_by_status"], json!({"canceled": 3, "new": 1}));
    assert_eq!(t["fills"], 0);
    assert_eq!(t["realized_pnl"], 0.0);
    assert_eq!(t["positions"], json!({"BTC/USD": 0.0}));
    assert_eq!(t["halts"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["halts"][0]["at"], "2025-10-26T18:12:21.000Z");
    assert_eq!(t["halts"][0]["resumed_at"], "2025-10-26T18:13:51.000Z");
    assert_eq!(t["halts"][0]["duration_s"], 90.0);
    assert_eq!(r["config"]["MD_POLL_MS"], 1500);

    let f = r["findings"].as_array().expect("findings");
    let sev: Vec<&str> = f
        .iter()
        .map(|x| x["severity"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        sev,
        [
            "critical", "critical", "high", "high", "medium", "medium", "medium", "low", "low",
            "low", "low"
        ]
    );
    assert_eq!(
        f[0]["title"],
        "AttributeError at /services/order_router.py:783"
    );
    assert_eq!(f[1]["title"], "cycle `md_poll` overruns its 1500 ms target");
    assert!(
        f[1]["recommendation"]
            .as_str()
            .unwrap_or("")
            .contains("a target of 9867 ms (the p95) would be met by 95%"),
        "{}",
        f[1]
    );
    assert_eq!(f[3]["title"], "heartbeat `engine` never started");

    // Markdown: the same numbers.
    let md = analyze(&[p(&file)]);
    assert_eq!(md.status.code(), Some(0));
    let md = String::from_utf8(md.stdout).expect("utf-8");
    for needle in [
        "# Session report: session_20251026_180621",
        "- **Duration:** 570 s (9.5 min)",
        "- **Run ID:** d588d1dc",
        "### 1. CRITICAL: AttributeError at /services/order_router.py:783",
        "| md_poll | 1500 | 85 | 85 (100%) | 8.947 | 6606.664 | 3310 | 21510 | 6223.1 | 9866.2 | 21510 |",
        "| 5000–7000 ms | 63 | 74.1% |",
        "| feed | 106 | 1 | 15 (median) | 45 | 5 |",
        "| engine — **never beat** | 0 | 1 | 300 (config) | 570 |",
        "| error | TypeError | Log cleanup error: expected str, bytes or os.PathLike object, not NoneType | 2 | 2025-10-26T18:06:33.500Z | 2025-10-26T18:11:33.000Z | - |",
        "- **Orders:** 4 (3 canceled, 1 new)",
        "| HALTED | 2025-10-26T18:12:21.000Z | cycles md_poll: 100% of cycles over 1500 ms | rule:md_poll | 2025-10-26T18:13:51.000Z | poll interval raised | 90 |",
        "- `MD_POLL_MS`: `1500`",
    ] {
        assert!(md.contains(needle), "markdown lacks {needle:?}\n{md}");
    }

    // HTML: self-contained, both charts, the same numbers.
    let out = tmp.path().join("r.html");
    let h = analyze(&["--format", "html", "-o", p(&out), p(&file)]);
    assert_eq!(h.status.code(), Some(0));
    let html = std::fs::read_to_string(&out).expect("html");
    assert!(html.starts_with("<!doctype html>"));
    for needle in [
        "<svg class=\"dist\"",
        "aria-label=\"duration distribution of md_poll\"",
        "<svg class=\"timeline\"",
        "<td>85 (100%)</td>",
        "<td>9866.2</td>",
        "<td>21510</td>",
        "/services/order_router.py:783",
        "feed silent 45 s",
        "HALTED 90 s",
    ] {
        assert!(html.contains(needle), "html lacks {needle:?}");
    }
    for forbidden in ["<script", "http://", "https://", "<link", "@import", "src="] {
        assert!(
            !html.contains(forbidden),
            "html fetches something: {forbidden}"
        );
    }
}

/// Parallel blocks, gzip, a rotated set given out of order and stdin all give the report
/// of one sequential pass.
#[test]
fn gzip_rotated_sets_threads_and_stdin_agree() {
    let tmp = tempdir();
    let file = sim(
        tmp.path(),
        "s.jsonl",
        &["--repeat", "3", "--ticks-per-s", "2"],
    );
    let one = json_report(&["--threads", "1", p(&file)]);
    let strip = |mut r: Value| {
        r["session"]["inputs"] = Value::Null;
        r
    };
    let par = json_report(&["--threads", "3", "--block-bytes", "5000", p(&file)]);
    assert_eq!(strip(par), strip(one.clone()), "parallel blocks differ");

    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let third = lines.len() / 3;
    let a = tmp.path().join("bot.jsonl.2.gz");
    let b = tmp.path().join("bot.jsonl.1");
    let c = tmp.path().join("bot.jsonl");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&a).expect("create"),
        flate2::Compression::default(),
    );
    // Two gzip members in one file (as `cat x.gz y.gz` makes).
    let half = third / 2;
    gz.write_all(lines[..half].concat().as_bytes()).expect("gz");
    gz.finish().expect("gz");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&a)
        .expect("append");
    let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz2.write_all(lines[half..third].concat().as_bytes())
        .expect("gz");
    f.write_all(&gz2.finish().expect("gz")).expect("append");
    std::fs::write(&b, lines[third..2 * third].concat()).expect("write");
    std::fs::write(&c, lines[2 * third..].concat()).expect("write");
    let rotated = json_report(&["--block-bytes", "7000", p(&c), p(&a), p(&b)]);
    assert_eq!(rotated["session"]["lines"], one["session"]["lines"]);
    for k in [
        "cycles",
        "heartbeats",
        "errors",
        "trading",
        "findings",
        "config",
        "timeline",
    ] {
        assert_eq!(rotated[k], one[k], "{k} differs for the rotated set");
    }

    let mut child = Command::new(vigil_bin())
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let body = text.clone();
    let writer = std::thread::spawn(move || stdin.write_all(body.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("join").expect("write stdin");
    assert_eq!(out.status.code(), Some(0));
    let piped: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(piped["session"]["inputs"], json!(["stdin"]));
    assert_eq!(strip(piped)["cycles"], one["cycles"]);
}

#[test]
fn bad_lines_are_counted_located_and_never_fatal() {
    let tmp = tempdir();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        concat!(
            "{\"type\":\"heartbeat\",\"ts\":1761501981000}\n",
            "{not json\n",
            "{\"type\":\"heartbeat\"}\n",
            "{\"type\":\"cycle\",\"duration_ms\":\"12\",\"ts\":1761501982000}\n",
            "{\"type\":\"heartbeat\",\"ts\":\"yesterday\"}\n",
            "\n",
            "[1,2]\n",
            "\u{0}\u{1}\n",
            "{\"type\":\"cycle\",\"duration_ms\":12,\"ts\":1761501983000}\n",
        ),
    )
    .expect("write");
    let out = analyze(&["--format", "json", p(&bad)]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = p(&bad);
    for needle in [
        format!("{f}:2: not JSON: "),
        format!("{f}:3: ts: missing"),
        format!("{f}:4: duration_ms: expected a number, got a string"),
        format!("{f}:5: ts: "),
        format!("{f}:7: expected a JSON object, got an array"),
        format!("{f}:8: not JSON"),
    ] {
        assert!(err.contains(&needle), "stderr lacks {needle:?}:\n{err}");
    }
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["session"]["bad_lines"], 6);
    assert_eq!(r["session"]["lines"], 9);
    assert_eq!(r["session"]["events"], 2);
    assert_eq!(r["cycles"][0]["count"], 1);
    assert!(
        r["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|x| x["title"] == "6 lines could not be read" && x["severity"] == "medium")
    );

    // A truncated gzip member: what came before it counts, the rest is reported.
    let full = sim(tmp.path(), "s.jsonl", &[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&full).expect("read"))
        .expect("gz");
    let bytes = gz.finish().expect("gz");
    let cut = tmp.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = analyze(&["--format", "json", p(&cut)]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated gzip member"), "{err}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    let events = r["session"]["events"].as_u64().unwrap_or(0);
    assert!(events > 100 && events < 1353, "{events}");
    assert!(r["session"]["bad_lines"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn exit_codes_and_unusable_arguments() {
    let tmp = tempdir();
    let file = sim(tmp.path(), "s.jsonl", &[]);
    let clean = sim(tmp.path(), "clean.jsonl", &["--clean"]);
    assert_eq!(
        analyze(&["--fail-on", "critical", p(&file)]).status.code(),
        Some(1)
    );
    assert_eq!(
        analyze(&["--fail-on", "high", p(&clean)]).status.code(),
        Some(0)
    );
    assert_eq!(
        analyze(&["--fail-on", "low", p(&clean)]).status.code(),
        Some(1)
    );
    let missing = analyze(&[p(&tmp.path().join("nope.jsonl"))]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.jsonl: No such file"));
    for args in [
        vec!["--buckets", "500,100", p(&file)],
        vec!["--heartbeat-timeout", "bot=-1", p(&file)],
        vec!["--since", "last tuesday", p(&file)],
        vec!["--fail-on", "severe", p(&file)],
        vec!["--map", "time", p(&file)],
        vec![],
        vec!["--db", "/nonexistent/vigil.db"],
    ] {
        let out = analyze(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let map = tmp.path().join("m.toml");
    std::fs::write(
        &map,
        "[fields]\ntime = \"timestamp\"\nduraton = \"elapsed\"\n",
    )
    .expect("write");
    let out = analyze(&["--map", p(&map), p(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("{}:3: unknown field `duraton`", p(&map))),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --since/--until and the heartbeat options.
    let r = json_report(&[
        "--since",
        "2025-10-26T18:10:00Z",
        "--until",
        "2025-10-26T18:12:00Z",
        "--heartbeat-timeout",
        "feed=40",
        "--expect-heartbeat",
        "risk",
        p(&file),
    ]);
    assert_eq!(r["session"]["start"], "2025-10-26T18:10:00.000Z");
    assert!(r["session"]["filtered"].as_u64().unwrap_or(0) > 1000);
    let feed = by(&r["heartbeats"], "source", "feed");
    assert_eq!(
        (feed["timeout_s"].as_f64(), feed["timeout_from"].as_str()),
        (Some(40.0), Some("option:source"))
    );
    assert_eq!(by(&r["heartbeats"], "source", "risk")["never_beat"], true);
    let r = json_report(&["--buckets", "5000,7000,10000", p(&file)]);
    let b = &by(&r["cycles"], "name", "md_poll")["buckets"];
    assert_eq!(
        b,
        &json!([{"le_ms": 5000.0, "count": 8}, {"le_ms": 7000.0, "count": 63},
                {"le_ms": 10000.0, "count": 11}, {"le_ms": null, "count": 3}])
    );
}

/// docs/analyze-map.example.toml on a bot's own telemetry in seed 002's style.
#[test]
fn a_bots_own_jsonl_with_the_documented_mapping() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = root.join("docs/analyze-map.example.toml");
    let data = root.join("tests/data/analyze/bot-telemetry.jsonl");
    let r = json_report(&["--map", p(&map), "--expect-heartbeat", "engine", p(&data)]);
    assert_eq!(r["session"]["session_id"], "session_20251026_180621");
    assert_eq!(r["session"]["run_id"], "d588d1dc");
    assert_eq!(r["session"]["bad_lines"], 2);
    let c = by(&r["cycles"], "name", "md_poll");
    assert_eq!(c["target_ms"], 1500.0);
    assert_eq!(
        (c["count"].as_u64(), c["overruns"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(
        (c["min_ms"].as_f64(), c["max_ms"].as_f64()),
        (Some(1200.0), Some(21510.0))
    );
    assert_eq!(c["p50_ms"], 5500.0);
    let attr = by(&r["errors"], "kind", "AttributeError");
    assert_eq!(attr["location"], "/services/order_router.py:783");
    assert_eq!(attr["source"], "order_router");
    let eng = by(&r["heartbeats"], "source", "engine");
    assert_eq!(
        (eng["never_beat"].as_bool(), eng["timeout_s"].as_f64()),
        (Some(true), Some(300.0))
    );
    assert_eq!(r["trading"]["orders_by_status"], json!({"canceled": 1}));
    assert_eq!(r["findings"][0]["severity"], "critical");
}

/// The store and a running daemon give the same report, and so does `GET /api/report`.
#[test]
fn db_url_and_api_report_agree() {
    let d = TestDaemon::start("");
    let client = reqwest::blocking::Client::new();
    let body = [
        json!({"type": "order", "order_id": "o1", "status": "canceled", "pair": "BTC/USD"}),
        json!({"type": "order", "order_id": "o2", "status": "new", "pair": "BTC/USD"}),
        json!({"type": "fill", "pair": "BTC/USD", "side": "buy", "qty": 0.5, "price": 100.0, "realized_pnl": -2.5}),
        json!({"type": "fill", "pair": "BTC/USD", "side": "sell", "qty": 0.5, "price": 101.0, "realized_pnl": 4.0}),
        json!({"type": "position", "pair": "BTC/USD", "qty": 0.25}),
        json!({"type": "log", "level": "error", "message": "Log cleanup error: expected str, not NoneType"}),
        json!({"type": "log", "level": "error", "message": "Log cleanup error: expected str, not NoneType"}),
        json!({"type": "api_error", "venue": "kraken", "code": "EAPI:Rate limit exceeded"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let r = client
        .post(format!("{}/api/events", d.url))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("post");
    assert!(r.status().is_success(), "{:?}", r.text());
    let st = client
        .post(format!("{}/api/trading/halt", d.url))
        .json(&json!({"reason": "post-mortem test"}))
        .timeout(Duration::from_secs(30))
        .send()
        .expect("halt")
        .status();
    assert!(st.is_success(), "{st}");
    d.wait_for(0, Duration::from_secs(30), |e| e["type"] == "api_error");
    d.wait_for(0, Duration::from_secs(30), |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });

    let db = d.dir.join("data/vigil.db");
    let from_db = json_report(&["--db", p(&db)]);
    let from_url = json_report(&["--url", &d.url]);
    let api = d.get("/api/report?format=json");
    let check = |r: &Value, what: &str| {
        let t = &r["trading"];
        assert_eq!(
            t["orders_by_status"],
            json!({"canceled": 1, "new": 1}),
            "{what}"
        );
        assert_eq!(t["fills"], 2, "{what}");
        assert_eq!(t["realized_pnl"], 1.5, "{what}");
        assert_eq!(t["positions"], json!({"BTC/USD": 0.25}), "{what}");
        let h = t["halts"].as_array().expect("halts");
        assert_eq!(h.len(), 1, "{what}");
        assert_eq!(h[0]["reason"], "post-mortem test", "{what}");
        assert_eq!(h[0]["resumed"], false, "{what}");
        let e = by(
            &r["errors"],
            "template",
            "Log cleanup error: expected str, not NoneType",
        );
        assert_eq!(e["count"], 2, "{what}");
        assert_eq!(
            by(&r["errors"], "kind", "EAPI:Rate limit exceeded")["level"],
            "error"
        );
        assert!(
            r["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .any(|f| f["title"] == "trading is still HALTED at the end"
                    && f["severity"] == "high"),
            "{what}: {}",
            r["findings"]
        );
    };
    check(&from_db, "--db");
    check(&from_url, "--url");
    check(&api, "/api/report");
    for k in ["errors", "trading", "session"] {
        let mut a = from_db[k].clone();
        let mut b = api[k].clone();
        if k == "session" {
            a["inputs"] = Value::Null;
            b["inputs"] = Value::Null;
        }
        assert_eq!(a, b, "{k}: --db and /api/report differ");
    }

    let html = client
        .get(format!("{}/api/report?format=html", d.url))
        .send()
        .expect("get");
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(
        html.text()
            .unwrap_or_default()
            .contains("<svg class=\"timeline\"")
    );
    let bad = client
        .get(format!("{}/api/report?format=pdf", d.url))
        .send()
        .expect("get");
    assert_eq!(bad.status(), 400);
    let e: Value = bad.json().expect("json");
    assert_eq!(e["error"], "bad_request");
    let bad = client
        .get(format!("{}/api/report?since=yesterday", d.url))
        .send()
        .expect("get");
    assert_eq!(bad.status(), 400);
}
