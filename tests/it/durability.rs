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
#[test]
fn a_socket_flood_keeps_memory_bounded() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    let pid = d.pid();
    let sock = tmp.path().join("data/vigil.sock");
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
    done.store(true, Ordering::SeqCst);
    let (max, samples) = sampler.join().unwrap();
    let ack: Value = serde_json::from_str(&ack).unwrap();
    assert_eq!(ack["committed"], N, "{ack}");
    let checks = d.get("/api/checks");
    eprintln!(
        "flood: {N} events, max RSS {} MiB over {samples} samples, throttled {}",
        max / (1024 * 1024),
        checks["ingest"]["throttled"]
    );
    assert!(samples > 0);
    assert!(
        max < FLOOD_RSS_BOUND,
        "RSS reached {} MiB (bound {} MiB)",
        max / (1024 * 1024),
        FLOOD_RSS_BOUND / (1024 * 1024)
    );
    assert!(
        checks["ingest"]["throttled"].as_u64().unwrap() > 0,
        "{checks}"
    );
}
