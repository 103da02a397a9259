//! Issue 8: nothing acknowledged is lost, memory stays bounded under a flood, the trading
//! state is fail-closed and persists on a full disk, a damaged database is found at start,
//! `seq` is never reused, a crash loop is throttled. Real binary, real SQLite, SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const T: Duration = Duration::from_secs(30);

fn kill9(d: &mut TestDaemon) {
    d.child.kill().unwrap();
    d.child.wait().unwrap();
}

/// Every stored event of `kind`, paging through the history.
fn all_of(d: &TestDaemon, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = 0;
    loop {
        let page = d.get(&format!(
            "/api/events?since={since}&type={kind}&limit=10000"
        ));
        let evs = page["events"].as_array().cloned().unwrap_or_default();
        if evs.is_empty() {
            return out;
        }
        since = evs.last().unwrap()["seq"].as_u64().unwrap();
        out.extend(evs);
    }
}

/// Finding 4: with three concurrent senders, every event of every acknowledged batch is in
/// the store after a SIGKILL that follows the acks immediately.
#[test]
fn acknowledged_events_survive_a_sigkill_right_after_the_ack() {
    let tmp = tempdir();
    let mut d = TestDaemon::start_in(tmp.path(), "");
    let url = d.url.clone();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..3)
        .map(|s| {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut mine = Vec::new();
                for b in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let body: String = (0..200)
                        .map(|i| {
                            format!(
                                "{{\"type\":\"fill\",\"pair\":\"BTC/USD\",\"side\":\"buy\",\"qty\":1,\"price\":1,\"order_id\":\"s{s}-b{b}-{i}\"}}\n"
                            )
                        })
                        .collect();
                    match client
                        .post(format!("{url}/api/events"))
                        .body(body)
                        .timeout(T)
                        .send()
                    {
                        Ok(r) if r.status().is_success() => {
                            mine.push(b);
                            if acked.fetch_add(200, Ordering::SeqCst) >= 30_000 {
                                break;
                            }
                        }
                        Ok(r) if r.status().as_u16() == 503 || r.status().as_u16() == 429 => {}
                        Ok(r) => panic!("unexpected {}", r.status()),
                        Err(_) => break, // the daemon was killed
                    }
                }
                (s, mine)
            })
        })
        .collect();
    // Kill as soon as enough was acknowledged, while the senders are still sending.
    eventually(Duration::from_secs(120), "30k acks", || {
        acked.load(Ordering::SeqCst) >= 30_000
    });
    kill9(&mut d);
    stop.store(true, Ordering::SeqCst);
    let acks: Vec<(i32, Vec<i32>)> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let d2 = TestDaemon::start_in(tmp.path(), "");
    let stored: std::collections::HashSet<String> = all_of(&d2, "fill")
        .iter()
        .map(|e| e["order_id"].as_str().unwrap().to_string())
        .collect();
    let mut missing = 0;
    let mut total = 0;
    for (s, batches) in &acks {
        for b in batches {
            for i in 0..200 {
                total += 1;
                if !stored.contains(&format!("s{s}-b{b}-{i}")) {
                    missing += 1;
                }
            }
        }
    }
    assert!(total >= 30_000, "{total} acknowledged");
    assert_eq!(
        missing, 0,
        "{missing} of {total} acknowledged events are missing"
    );
}

/// The socket's documented acknowledgement: `{"ack": ID}` is answered once everything sent
/// before it is committed; a SIGKILL right after the answer loses none of it.
#[test]
fn socket_ack_means_committed() {
    let tmp = tempdir();
    let mut d = TestDaemon::start_in(tmp.path(), "");
    let sock = tmp.path().join("data/vigil.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut lines = String::new();
    for i in 0..5000 {
        lines.push_str(&format!(
            "{{\"type\":\"order\",\"order_id\":\"o{i}\",\"pair\":\"BTC/USD\",\"status\":\"new\"}}\n"
        ));
    }
    lines.push_str("{\"type\":\"order\",\"pair\":\"BTC/USD\"}\n"); // refused: no order_id/status
    lines.push_str("{\"ack\": 7}\n");
    s.write_all(lines.as_bytes()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut bad = String::new();
    r.read_line(&mut bad).unwrap();
    let bad: Value = serde_json::from_str(&bad).unwrap();
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["line"], 5001, "{bad}");
    let mut ack = String::new();
    r.read_line(&mut ack).unwrap();
    let ack: Value = serde_json::from_str(&ack).unwrap();
    assert_eq!(ack, json!({"ok": true, "ack": 7, "committed": 5000}));
    kill9(&mut d);
    let d2 = TestDaemon::start_in(tmp.path(), "");
    assert_eq!(all_of(&d2, "order").len(), 5000);
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The bound RELIABILITY.md documents for a flood: the ingest budget (65,536 events in
/// flight) plus the store's page cache and the runtime.
const FLOOD_RSS_BOUND: u64 = 256 * 1024 * 1024;

/// Finding 3: a client flooding `log` events over the socket as fast as it can does not
/// grow vigil's memory without bound; the socket is throttled instead, and every event is
/// stored by the time the final ack comes.
/// While a flood lasts: vigil's RSS sampled every 20 ms, and `/health` read every 100 ms
/// (its "shedding_load" covers the last 10 s, and on a loaded machine the flood can end longer
/// than that before a read after it).
struct FloodWatch {
    done: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, u64)>,
    health: std::thread::JoinHandle<Vec<String>>,
}

impl FloodWatch {
    fn start(d: &TestDaemon) -> FloodWatch {
        let pid = d.pid();
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut max = 0u64;
                let mut samples = 0u64;
                while !done.load(Ordering::SeqCst) {
                    max = max.max(rss_bytes(pid));
                    samples += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                (max, samples)
            })
        };
        let health = {
            let done = done.clone();
            let (url, token) = (d.url.clone(), d.token.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut seen = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    let mut rb = client
                        .get(format!("{url}/health"))
                        .timeout(Duration::from_secs(30));
                    if let Some(t) = &token {
                        rb = rb.bearer_auth(t);
                    }
                    if let Ok(v) = rb.send().and_then(|r| r.json::<Value>()) {
                        seen.push(v["problems"].to_string());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                seen
            })
        };
        FloodWatch {
            done,
            sampler,
            health,
        }
    }

    /// Stop; the maximum RSS is asserted under [`FLOOD_RSS_BOUND`]. Returns (max RSS,
    /// samples, the `/health` problems read).
    fn finish(self, what: &str) -> (u64, u64, Vec<String>) {
        self.done.store(true, Ordering::SeqCst);
        let (max, samples) = self.sampler.join().unwrap();
        let seen = self.health.join().unwrap();
        eprintln!(
            "{what}: max RSS {} MiB over {samples} samples, {} /health answers",
            max / (1024 * 1024),
            seen.len()
        );
        assert!(samples > 0);
        assert!(
            max < FLOOD_RSS_BOUND,
            "{what}: RSS reached {} MiB (bound {} MiB)",
            max / (1024 * 1024),
            FLOOD_RSS_BOUND / (1024 * 1024)
        );
        (max, samples, seen)
    }
}

#[test]
fn a_socket_flood_keeps_memory_bounded() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    let sock = tmp.path().join("data/vigil.sock");
    let watch = FloodWatch::start(&d);
    const N: usize = 600_000;
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let line = "{\"type\":\"log\",\"level\":\"info\",\"message\":\"flood flood flood flood flood flood flood flood\"}\n";
    let chunk = line.repeat(1000);
    for _ in 0..N / 1000 {
        s.write_all(chunk.as_bytes()).unwrap();
    }
    s.write_all(b"{\"ack\": \"end\"}\n").unwrap();
    let mut r = BufReader::new(s);
    let mut ack = String::new();
    r.read_line(&mut ack).unwrap();
    let (_, _, seen) = watch.finish("socket flood");
    let ack: Value = serde_json::from_str(&ack).unwrap();
    assert_eq!(ack["committed"], N, "{ack}");
    let checks = d.get("/api/checks");
    eprintln!(
        "flood: {N} events, throttled {}",
        checks["ingest"]["throttled"]
    );
    assert!(
        checks["ingest"]["throttled"].as_u64().unwrap() > 0,
        "{checks}"
    );
    // /metrics counts it; /health said the queue was shedding load.
    let m = metric(&d, "vigil_ingest_throttled_total");
    assert!(m > 0.0, "vigil_ingest_throttled_total {m}");
    assert!(
        seen.iter().any(|p| p.contains("shedding_load")),
        "/health never said shedding_load during the flood: {seen:?}"
    );
}

/// Issue 8, "every queue bounded": a supervised program with `events = "stdout"` that floods
/// its stdout with event lines as fast as `yes` can write them is slowed (its pipe is not read
/// while the queues to the store are full), not buffered: vigil's RSS stays under the bound,
/// `/health` keeps answering, every line is stored, and the waits are counted in `/metrics`.
#[test]
fn a_stdout_event_flood_keeps_memory_bounded() {
    let tmp = tempdir();
    const N: usize = 600_000;
    let line = r#"{"type":"log","level":"info","message":"flood flood flood flood flood flood flood flood"}"#;
    let flood = script(
        tmp.path(),
        "flood.sh",
        &format!(
            "yes '{line}' | head -n {N}\n\
             echo '{{\"type\":\"log\",\"level\":\"info\",\"message\":\"flood done\"}}'\n\
             exec sleep 1000"
        ),
    );
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!(
            "[program.flood]\ncommand = \"{}\"\nevents = \"stdout\"\nautostart = false\n\
             autorestart = false\nstartsecs = 0\n",
            flood.display()
        ),
    );
    let since = d.last_seq();
    let watch = FloodWatch::start(&d);
    let (code, body) = d.post("/api/programs/flood/start");
    assert_eq!(code, 200, "{body}");
    let db = rusqlite::Connection::open_with_flags(
        tmp.path().join("data/vigil.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let count = |sql: &str| -> u64 {
        db.query_row(sql, [since as i64], |r| r.get::<_, i64>(0))
            .map_or(0, |n| n as u64)
    };
    // The last line is stored after every line before it (one pipe, one queue, seq order).
    eventually(
        Duration::from_secs(600),
        "the flood's last line stored",
        || {
            db.query_row(
                "SELECT data FROM events WHERE type = 'log' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .is_ok_and(|d| d.contains("flood done"))
        },
    );
    let (_, _, seen) = watch.finish("stdout flood");
    assert!(!seen.is_empty(), "/health never answered during the flood");
    let stored = count("SELECT count(*) FROM events WHERE seq > ?1 AND type = 'log'");
    assert_eq!(stored, N as u64 + 1, "every line of the flood stored");
    // The pipe was not read while the queue to the ingest path (or the budget) was full.
    let waits = metric(&d, "vigil_queue_waits_total{queue=\"stdout_events\"}")
        + metric(&d, "vigil_ingest_throttled_total");
    eprintln!("stdout flood: {N} events, {waits} waits");
    assert!(waits > 0.0, "the flood was never slowed");
    assert_eq!(d.process("flood")["state"], "RUNNING");
}

/// One sample of a metric without labels from `/metrics`.
fn metric(d: &TestDaemon, name: &str) -> f64 {
    let text = reqwest::blocking::get(format!("{}/metrics", d.url))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

fn state_file(dir: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(dir.join("data/trading_state")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("state file {text:?}: {e}"))
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount (the full-disk test needs root and tmpfs)");
        assert!(st.success(), "mount tmpfs at {} failed", at.display());
        Tmpfs(at.to_path_buf())
    }

    /// Write until the filesystem has no free block left.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(nix::libc::ENOSPC), "{e}");
                break;
            }
        }
        let _ = f.sync_all();
        let st = nix::sys::statvfs::statvfs(&self.0).unwrap();
        assert_eq!(st.blocks_available(), 0, "the filesystem is not full");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// POST `n` `log` events with messages of about `pad` bytes; asserts the 202.
fn post_logs(d: &TestDaemon, n: usize, pad: usize) {
    let pad = "x".repeat(pad);
    let batch: String = (0..n)
        .map(|i| format!("{{\"type\":\"log\",\"level\":\"info\",\"message\":\"{i} {pad}\"}}\n"))
        .collect();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/events", d.url))
        .body(batch)
        .timeout(T)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

fn halt(d: &TestDaemon, reason: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/trading/halt", d.url))
        .json(&json!({"reason": reason}))
        .timeout(T)
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

/// Finding 1: with zero free blocks a halt is still persisted (the preallocated state
/// record), written to the state file, announced over SSE with its cancel command, and it
/// survives SIGKILL and a restart on the still-full disk.
#[test]
fn a_halt_on_a_full_disk_is_persisted_announced_and_survives_a_restart() {
    let tmp = tempdir();
    let fs = Tmpfs::mount(&tmp.path().join("small"), "8m");
    let root = fs.0.clone();
    let mut d = TestDaemon::start_in(&root, "");
    let since = d.last_seq();
    fs.fill();
    let (s, body) = halt(&d, "disk full drill");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["state"], "HALTED");
    let ev = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    assert_eq!(ev["persisted"], true, "{ev}");
    assert_eq!(ev["reason"], "disk full drill");
    let cmd = d.wait_for(since, T, |e| e["type"] == "command");
    assert_eq!(cmd["command"], "cancel_all_orders", "{cmd}");
    let f = state_file(&root);
    assert_eq!(f["state"], "HALTED", "{f}");
    let h = d.get("/health");
    if ev["stored"] == false {
        // The event could not go into SQLite: health says so.
        assert_eq!(h["status"], "degraded", "{h}");
        assert!(
            h["problems"].to_string().contains("store_write_failed"),
            "{h}"
        );
        assert!(metric(&d, "vigil_events_announced_unstored_total") >= 1.0);
    }
    assert_eq!(metric(&d, "vigil_trading_state_persisted"), 1.0);
    kill9(&mut d);
    let d2 = TestDaemon::start_in(&root, "");
    let st = d2.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert_eq!(st["last_transition"]["reason"], "disk full drill", "{st}");
    assert_eq!(state_file(&root)["state"], "HALTED");
    drop(d2);
}

/// Finding 2: whatever happened to the state file (garbage, missing, forged), the daemon
/// rewrites it at start to match what it enforces, and any disagreement with the state
/// record starts HALTED with a reason that names it.
#[test]
fn the_state_file_always_matches_the_daemon() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    assert_eq!(state_file(tmp.path())["state"], "ACTIVE");
    assert!(d.stop().success());
    let file = tmp.path().join("data/trading_state");
    let cases: [(&str, Option<&str>); 3] = [
        ("is unreadable", Some("\u{0}garbage{")),
        ("is missing", None),
        ("says HALTED", Some("{\"state\":\"HALTED\"}")),
    ];
    for (says, content) in cases {
        // Start from an agreeing ACTIVE state.
        let d = TestDaemon::start_in(tmp.path(), "");
        if d.get("/api/state")["state"] != "ACTIVE" {
            let r = reqwest::blocking::Client::new()
                .post(format!("{}/api/trading/resume", d.url))
                .json(&json!({"reason": "next case", "force": true}))
                .timeout(T)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
        assert_eq!(state_file(tmp.path())["state"], "ACTIVE");
        assert!(d.stop().success());
        match content {
            Some(c) => std::fs::write(&file, c).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        let d = TestDaemon::start_in(tmp.path(), "");
        let st = d.get("/api/state");
        assert_eq!(st["state"], "HALTED", "{says}: {st}");
        let reason = st["last_transition"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(says) && reason.contains("state record says ACTIVE"),
            "{reason}"
        );
        assert_eq!(st["last_transition"]["source"], "system:restore");
        // Rewritten at start, before the readiness line.
        let f = state_file(tmp.path());
        assert_eq!(f["state"], "HALTED", "{f}");
        assert_eq!(f["reason"], reason);
        drop(d);
    }
}

/// Finding 2, the race: SIGKILL while halts and resumes are in flight; after each restart
/// the state file says exactly what the daemon enforces.
#[test]
fn the_state_file_matches_after_a_kill_mid_transition() {
    let tmp = tempdir();
    for round in 0..12 {
        let mut d = TestDaemon::start_in(tmp.path(), "");
        let st = d.get("/api/state")["state"].clone();
        assert_eq!(
            state_file(tmp.path())["state"],
            st,
            "round {round}: at start"
        );
        let url = d.url.clone();
        let flipper = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::new();
            for i in 0..1000 {
                let (path, body) = if i % 2 == 0 {
                    ("halt", json!({"reason": "drill"}))
                } else {
                    ("resume", json!({"reason": "drill over", "force": true}))
                };
                if c.post(format!("{url}/api/trading/{path}"))
                    .json(&body)
                    .timeout(T)
                    .send()
                    .is_err()
                {
                    return;
                }
            }
        });
        // Kill after a few transitions, at a point that varies from round to round.
        let since = d.last_seq();
        let n = 1 + round % 5;
        for _ in 0..n {
            let last = d.last_seq().max(since);
            d.wait_for(last, T, |e| e["type"] == "trading_state");
        }
        kill9(&mut d);
        flipper.join().unwrap();
        let d = TestDaemon::start_in(tmp.path(), "");
        let st = d.get("/api/state");
        let f = state_file(tmp.path());
        assert_eq!(f["state"], st["state"], "round {round}: {f} vs {st}");
        drop(d);
    }
}

/// Finding 5: a database with damaged pages is refused at start with a clear error (and
/// nothing is changed); `--recover` sets it aside and starts HALTED, naming why; `seq`
/// continues above every seq handed out before, and `history_lost` says what happened.
#[test]
fn a_damaged_database_is_refused_or_recovered_halted_and_seq_is_never_reused() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    post_logs(&d, 3000, 200);
    let before = d.last_seq();
    assert!(d.stop().success());
    // Random bytes over two pages in the middle of the file.
    let db = tmp.path().join("data/vigil.db");
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 16 * 4096, "{len}");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        let junk: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        f.write_all_at(&junk, 4096 * 4).unwrap();
        f.sync_all().unwrap();
    }
    let out = std::process::Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(tmp.path().join("vigil.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged database was accepted");
    assert!(
        err.contains("failed its integrity check") && err.contains("--recover"),
        "{err}"
    );
    let d =
        TestDaemon::start_config_args(tmp.path(), &tmp.path().join("vigil.toml"), &["--recover"]);
    let st = d.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert!(
        st["last_transition"]["reason"]
            .as_str()
            .unwrap()
            .contains("integrity check"),
        "{st}"
    );
    let h = d.get("/health");
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["problems"].to_string().contains("integrity check"), "{h}");
    let evs = d.events(0);
    let first = evs.first().expect("events after recovery");
    assert!(
        first["seq"].as_u64().unwrap() > before,
        "seq restarted: {first} <= {before}"
    );
    assert!(
        std::fs::read_dir(tmp.path().join("data"))
            .unwrap()
            .any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("vigil.db.damaged-")
            })
    );
    let after = d.last_seq();
    assert!(d.stop().success());
    // Deleted outright: seq still continues above, and history_lost says so.
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(tmp.path().join("data/vigil.db-wal"));
    let _ = std::fs::remove_file(tmp.path().join("data/vigil.db-shm"));
    let d = TestDaemon::start_in(tmp.path(), "");
    let lost = d.wait_for(0, T, |e| e["type"] == "history_lost");
    assert!(lost["seq"].as_u64().unwrap() > after, "{lost} <= {after}");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .contains("deleted or replaced"),
        "{lost}"
    );
    assert_eq!(d.get("/api/state")["state"], "HALTED", "the halt survived");
}

/// Finding 6: a program that exits at once with `startsecs = 0` and `autorestart = true` is
/// restarted `restart_limit` times, then each restart waits, longer each time (the delays
/// are compared on the daemon's own timestamps).
#[test]
fn a_crash_loop_is_throttled_whatever_startsecs() {
    let d = TestDaemon::start(
        "[program.crashy]\ncommand = \"/bin/false\"\nstartsecs = 0\nautorestart = true\n\
         restart_limit = 3\nrestart_window = 30\n",
    );
    // The EXITED that starts the wait names the crash loop.
    let first = d.wait_for(0, T, |e| {
        e["type"] == "process_state"
            && e["to"] == "EXITED"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("crash loop"))
    });
    let second = d.wait_for(first["seq"].as_u64().unwrap(), T, |e| {
        e["type"] == "process_state"
            && e["to"] == "EXITED"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("crash loop"))
    });
    d.wait_state(second["seq"].as_u64().unwrap(), "crashy", "STARTING", T);
    let evs = d.events(0);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "process_state" && e["to"] == "STARTING")
        .collect();
    let before_first = starts
        .iter()
        .filter(|e| e["seq"].as_u64() < first["seq"].as_u64())
        .count();
    // The initial start plus restart_limit immediate restarts.
    assert_eq!(before_first, 1 + 3, "{starts:?}");
    let next_start = |after: &Value| {
        *starts
            .iter()
            .find(|e| e["seq"].as_u64() > after["seq"].as_u64())
            .expect("a start after the wait")
    };
    // The waits, as the daemon announced them, grow (1 s, then 2 s); the exact deadlines are
    // unit-tested in vigil-core. The next start is recorded after each wait began.
    for (ev, ms) in [(&first, 1000), (&second, 2000)] {
        let reason = ev["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("next start in {ms} ms")), "{ev}");
        assert!(ts_ms(next_start(ev)) >= ts_ms(ev), "{ev}");
    }
}

/// Retention by size keeps the database bounded; a resume from a pruned seq says so (in
/// the history, on the stream, in `vigil events`).
#[test]
fn retention_bounds_the_history_and_a_resume_from_a_pruned_seq_says_so() {
    let tmp = tempdir();
    let body = "[events]\nmax_size_mb = 1\nmax_age_days = 30\n";
    let d = TestDaemon::start_in(tmp.path(), body);
    for _ in 0..6 {
        post_logs(&d, 2000, 300);
    }
    // Retention runs on growth while the daemon runs (its timer is a minute; this waits
    // less, so only the growth trigger can pass it).
    eventually(Duration::from_secs(30), "pruned while running", || {
        d.get("/api/events?since=0&limit=1")["history_gap"]["missing_through"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    for _ in 0..6 {
        post_logs(&d, 2000, 300);
    }
    let last = d.last_seq();
    assert!(d.stop().success());
    // Retention runs at start.
    let d = TestDaemon::start_in(tmp.path(), body);
    let first = d.wait_for(0, T, |e| {
        e["type"] == "daemon_started" && e["seq"].as_u64() > Some(last)
    });
    let page = d.get("/api/events?since=0&limit=10");
    let gap = &page["history_gap"];
    assert!(gap["missing_through"].as_u64().unwrap() > 0, "{page}");
    let oldest = page["events"][0]["seq"].as_u64().unwrap();
    assert!(oldest > gap["missing_through"].as_u64().unwrap());
    assert!(first["seq"].as_u64().unwrap() > last);
    // Live data is at most the bound plus one pruning chunk's worth.
    let kept = all_of(&d, "log").len();
    assert!(kept < 12_000 && kept > 0, "{kept} log events kept");
    // The stream starts with the notice.
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/events/stream", d.url))
        .header("Last-Event-ID", "1")
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap();
    let mut lines = BufReader::new(resp).lines();
    let ev = lines.next().unwrap().unwrap();
    assert_eq!(ev, "event: history_gap");
    let data = lines.next().unwrap().unwrap();
    assert!(data.contains("\"missing_through\""), "{data}");
    // And the CLI warns.
    let out = std::process::Command::new(vigil_bin())
        .args(["events", "--since", "1", "--url", &d.url])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no longer stored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A body over the limit is a 413 with vigil's JSON error (sized or chunked), and the
/// daemon carries on.
#[test]
fn an_oversized_body_is_a_json_413() {
    let d = TestDaemon::start("");
    let big = "{\"type\":\"heartbeat\"}\n".repeat(60_000); // ~1.3 MB
    for chunked in [false, true] {
        let c = reqwest::blocking::Client::new().post(format!("{}/api/events", d.url));
        let c = if chunked {
            c.body(reqwest::blocking::Body::new(std::io::Cursor::new(
                big.clone().into_bytes(),
            )))
        } else {
            c.body(big.clone())
        };
        let r = c.timeout(T).send().unwrap();
        assert_eq!(r.status().as_u16(), 413, "chunked={chunked}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["error"], "body_too_large", "{v}");
        assert!(v["message"].as_str().unwrap().contains("1048576"), "{v}");
    }
    assert_eq!(d.get("/api/state")["state"], "ACTIVE");
}

/// `chattr +i` (or `-i`) on a path: an immutable file refuses writes even through a
/// descriptor opened before (ext4 checks at each write).
fn chattr(flag: &str, path: &std::path::Path) {
    let st = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("run chattr (the test needs root and ext4)");
    assert!(st.success(), "chattr {flag} {}", path.display());
}

/// `chattr +i` for as long as it lives (`-i` on drop, also when an assertion fails, so the
/// temporary directory can be removed).
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Immutable {
        chattr("+i", path);
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// When even the state record cannot be written (made immutable under the running daemon),
/// a halt still takes effect and is announced with `persisted: false`; `/health` and
/// `/metrics` say so; after a restart the record's older state and the file disagree, so
/// vigil starts HALTED.
#[test]
fn a_halt_that_cannot_be_persisted_still_applies_and_says_so() {
    let tmp = tempdir();
    let mut d = TestDaemon::start_in(tmp.path(), "");
    let since = d.last_seq();
    let record = Immutable::set(&tmp.path().join("data/vigil.state"));
    let (s, body) = halt(&d, "immutable drill");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["state"], "HALTED");
    let ev = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    assert_eq!(ev["persisted"], false, "{ev}");
    assert!(ev["persist_error"].as_str().is_some(), "{ev}");
    let cmd = d.wait_for(since, T, |e| e["type"] == "command");
    assert_eq!(cmd["command"], "cancel_all_orders");
    assert_eq!(d.get("/api/state")["persisted"], false);
    assert_eq!(state_file(tmp.path())["state"], "HALTED");
    let h = d.get("/health");
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["problems"].to_string().contains("state_not_persisted"),
        "{h}"
    );
    assert_eq!(metric(&d, "vigil_trading_state_persisted"), 0.0);
    // Killed while the halt is still unpersisted (the record is writable again only for
    // the restart, so no retry can write it first).
    kill9(&mut d);
    drop(record);
    let d = TestDaemon::start_in(tmp.path(), "");
    let st = d.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert_eq!(st["last_transition"]["source"], "system:restore", "{st}");
}

/// Start on `dir`'s existing `vigil.toml` (or a fresh one) with a fail point armed.
fn start_with_failpoint(dir: &std::path::Path, failpoint: &str) -> TestDaemon {
    let config = dir.join("vigil.toml");
    std::fs::write(&config, header(dir)).unwrap();
    TestDaemon::start_config_env(dir, &config, &[], &[("VIGIL_FAILPOINT", failpoint)])
}

fn killed_by_sigkill(d: &mut TestDaemon) {
    use std::os::unix::process::ExitStatusExt;
    let st = d.child.wait().unwrap();
    assert_eq!(st.signal(), Some(9), "{st:?}; stderr:\n{}", d.stderr_text());
}

/// The halt's events are made durable in the state record before they are announced;
/// a SIGKILL after the record's fdatasync and before anything reached SQLite loses
/// nothing: after the restart the `trading_state` event is in the history with the seq it
/// was given (its long reason truncated, marked), and no seq is reused.
#[test]
fn a_kill_between_the_state_record_and_sqlite_loses_no_transition() {
    let tmp = tempdir();
    let mut d = start_with_failpoint(tmp.path(), "trading-state-recorded");
    post_logs(&d, 10, 10);
    let before = d.last_seq();
    let long = format!("drill {}", "r".repeat(5000));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/trading/halt", d.url))
        .json(&json!({"reason": long}))
        .timeout(T)
        .send();
    assert!(
        r.is_err(),
        "the daemon answered although it was to die: {r:?}"
    );
    killed_by_sigkill(&mut d);
    let d = TestDaemon::start_in(tmp.path(), "");
    assert_eq!(d.get("/api/state")["state"], "HALTED");
    let ts: Vec<Value> = all_of(&d, "trading_state")
        .into_iter()
        .filter(|e| e["seq"].as_u64().unwrap() > before)
        .collect();
    let drill = ts
        .iter()
        .find(|e| e["reason"].as_str().unwrap().starts_with("drill rrr"))
        .unwrap_or_else(|| panic!("the halt is not in the history: {ts:?}"));
    assert_eq!(drill["to"], "HALTED", "{drill}");
    assert_eq!(drill["persisted"], true, "{drill}");
    assert_eq!(drill["recovered"], "state_record", "{drill}");
    let reason = drill["reason"].as_str().unwrap();
    assert!(
        reason.ends_with("…[truncated]") && reason.len() < 1000,
        "{reason}"
    );
    // Every seq after it is new; none is reused.
    let all = d.events(0);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let started = all.iter().rfind(|e| e["type"] == "daemon_started").unwrap();
    assert!(started["seq"].as_u64() > drill["seq"].as_u64(), "{started}");
}

/// A halt is announced (SSE) once the state record is durable, before its SQLite commit;
/// a SIGKILL in between (the commit held back 500 ms by the fail point) loses nothing:
/// the event a client saw is in the history after the restart, same seq, same content.
#[test]
fn a_halt_announced_before_its_commit_survives_a_sigkill() {
    let tmp = tempdir();
    let mut d = start_with_failpoint(tmp.path(), "trading-state-announced");
    let since = d.last_seq();
    let url = d.url.clone();
    let poster = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(format!("{url}/api/trading/halt"))
            .json(&json!({"reason": "announce drill"}))
            .timeout(T)
            .send()
            .is_ok()
    });
    let seen = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    killed_by_sigkill(&mut d);
    assert!(
        !poster.join().unwrap(),
        "the halt was acknowledged before its commit"
    );
    let d = TestDaemon::start_in(tmp.path(), "");
    assert_eq!(d.get("/api/state")["state"], "HALTED");
    let seq = seen["seq"].as_u64().unwrap();
    let stored = all_of(&d, "trading_state")
        .into_iter()
        .find(|e| e["seq"].as_u64() == Some(seq))
        .unwrap_or_else(|| panic!("seq {seq} is not in the history"));
    assert_eq!(stored["recovered"], "state_record", "{stored}");
    for k in ["from", "to", "reason", "source", "actor", "persisted", "ts"] {
        assert_eq!(stored[k], seen[k], "{k}: {stored} vs {seen}");
    }
}

/// A halt that could not be written — neither to the state record nor to the state file —
/// is written again on a backoff: once both are writable it is persisted
/// (`trading_state_persisted`), the state file says HALTED, `/health` clears, and a restart
/// keeps the operator's halt itself (not a fail-closed disagreement).
#[test]
fn an_unpersisted_halt_is_written_once_the_disk_takes_it_again() {
    let tmp = tempdir();
    let mut d = TestDaemon::start_in(tmp.path(), "");
    let since = d.last_seq();
    let record = Immutable::set(&tmp.path().join("data/vigil.state"));
    let file = Immutable::set(&tmp.path().join("data/trading_state"));
    let (s, body) = halt(&d, "immutable retry drill");
    assert_eq!(s, 200, "{body}");
    let ev = d.wait_for(since, T, |e| {
        e["type"] == "trading_state" && e["to"] == "HALTED"
    });
    assert_eq!(ev["persisted"], false, "{ev}");
    // The state file is written beside the announcement, not before it: its failure is an
    // event of its own that names the transition.
    let failed = d.wait_for(since, T, |e| e["type"] == "state_file_failed");
    assert_eq!(failed["transition_seq"], ev["seq"], "{failed}");
    let h = d.get("/health");
    let problems = h["problems"].to_string();
    assert!(problems.contains("state_not_persisted"), "{h}");
    assert!(problems.contains("state_file_not_written"), "{h}");
    assert_eq!(
        state_file(tmp.path())["state"],
        "ACTIVE",
        "the file could not be written"
    );
    drop((record, file));
    let ok = d.wait_for(since, Duration::from_secs(120), |e| {
        e["type"] == "trading_state_persisted"
    });
    assert_eq!(ok["state"], "HALTED", "{ok}");
    assert!(ok["attempts"].as_u64().is_some_and(|n| n >= 1), "{ok}");
    assert_eq!(state_file(tmp.path())["state"], "HALTED");
    assert_eq!(d.get("/api/state")["persisted"], true);
    let h = d.get("/health");
    let problems = h["problems"].to_string();
    assert!(!problems.contains("state_not_persisted"), "{h}");
    assert!(!problems.contains("state_file_not_written"), "{h}");
    assert_eq!(metric(&d, "vigil_trading_state_persisted"), 1.0);
    kill9(&mut d);
    let d = TestDaemon::start_in(tmp.path(), "");
    let st = d.get("/api/state");
    assert_eq!(st["state"], "HALTED", "{st}");
    assert_eq!(
        st["last_transition"]["reason"], "immutable retry drill",
        "{st}"
    );
    assert_eq!(st["persisted"], true, "{st}");
}
