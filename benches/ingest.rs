//! Ingest throughput and breach-to-halt latency of vigil's monitor.
//!
//!     cargo bench --bench ingest
//!
//! vigil (this build, release) runs with every rule kind on. Measured:
//! (a) events/s over the Unix socket: BENCH_EVENTS tick lines (default 2 000 000, 10 pairs)
//!     written on one connection, then a marker `equity` event; the clock stops when the
//!     marker is stored (so every tick before it went through every rule);
//! (b) events/s over HTTP: the same in NDJSON batches of 10 000 lines, one connection;
//! (c) breach-to-halt latency: per trial, an `equity` drop past the drawdown limit is written
//!     on the socket at t0; t1 is when the `trading_state` event (stored, then broadcast)
//!     arrives on the SSE stream. p50/p95/p99 over BENCH_TRIALS (default 200). Between
//!     trials the condition clears and the bench resumes trading.
//! (d) durable acknowledgements: `fill` events (stored) over HTTP in NDJSON batches of
//!     BENCH_BATCH (default 1 000) from BENCH_SENDERS (default 4) concurrent connections; each
//!     202 means the batch is committed (WAL fsynced); events/s and the ack latency
//!     p50/p95/p99. And over the socket: `log` lines with an `{"ack"}` every 1 000 lines.
//! (e) the disk's floor, in the same data_dir in the same run: a bare in-place `pwrite` +
//!     `fdatasync` of one 4 KiB record, BENCH_TRIALS times; the halt's p99 is reported as a
//!     multiple of the floor's p99.
//! No peer to compare with: supervisord has no monitor. Without `--bench` it does nothing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

const PAIRS: [&str; 10] = [
    "BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ADA/USD", "DOT/USD", "LTC/USD", "BCH/USD",
    "LINK/USD", "XLM/USD",
];

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"[vigil]
listen = "127.0.0.1:0"
data_dir = "{}"
log_level = "warn"

[checks.feed]
kind = "freshness"
pairs = {pairs:?}
threshold_s = 60

[checks.hb]
kind = "heartbeat"
sources = ["bot"]
period_s = 60

[checks.loop]
kind = "cycles"
critical_overrun_pct = 90
action = "warn"

[rules.drawdown]
critical_pct = 10

[rules.daily]
kind = "daily_loss"
critical = 50

[rules.streak]
kind = "consecutive_losses"
critical = 1000000

[rules.api]
kind = "api_errors"
critical_count = 1000000

[rules.vol]
kind = "volatility"
critical_pct = 50
window_s = 60
confirm_s = 1
"#,
        dir.join("data").display(),
        pairs = PAIRS
    )
}

fn get(url: &str) -> Value {
    reqwest::blocking::get(url)
        .and_then(|r| r.json())
        .unwrap_or(Value::Null)
}

fn wait_marker(base: &str, value: f64) {
    loop {
        let v = get(&format!(
            "{base}/api/events?type=equity&since=0&limit=10000"
        ));
        if v["events"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["equity"].as_f64() == Some(value)))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env_or("BENCH_EVENTS", 2_000_000);
    let trials = env_or("BENCH_TRIALS", 200);
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("vigil.toml");
    std::fs::write(&cfg, config(tmp.path())).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vigil");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("readiness line");
    let base = line
        .trim()
        .strip_prefix("vigil: listening on ")
        .expect("readiness line")
        .to_string();
    let sock = tmp.path().join("data/vigil.sock");

    // Pre-build the payload so the writer is not the bottleneck.
    let mut payload = Vec::with_capacity(n * 64);
    for i in 0..n {
        let pair = PAIRS[i % PAIRS.len()];
        let price = 100.0 + (i % 1000) as f64 * 0.01;
        writeln!(
            payload,
            r#"{{"type":"tick","pair":"{pair}","price":{price},"source":"feed"}}"#
        )
        .expect("payload");
    }

    // (a) socket
    let mut s = UnixStream::connect(&sock).expect("socket");
    let t0 = Instant::now();
    s.write_all(&payload).expect("write");
    s.write_all(b"{\"type\":\"equity\",\"equity\":1001}\n")
        .expect("write");
    wait_marker(&base, 1001.0);
    let sock_secs = t0.elapsed().as_secs_f64();
    let sock_rate = n as f64 / sock_secs;
    let accepted = get(&format!("{base}/api/checks"))["ingest"]["accepted"]["tick"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(accepted as usize, n, "every tick accepted");

    // (b) HTTP NDJSON
    let http_n = n / 4;
    let client = reqwest::blocking::Client::new();
    let lines: Vec<&[u8]> = payload
        .split_inclusive(|b| *b == b'\n')
        .take(http_n)
        .collect();
    let t0 = Instant::now();
    for chunk in lines.chunks(10_000) {
        let body: Vec<u8> = chunk.concat();
        let r = client
            .post(format!("{base}/api/events"))
            .body(body)
            .send()
            .expect("post");
        assert_eq!(r.status().as_u16(), 202);
    }
    client
        .post(format!("{base}/api/events"))
        .body("{\"type\":\"equity\",\"equity\":1002}\n")
        .send()
        .expect("post");
    wait_marker(&base, 1002.0);
    let http_secs = t0.elapsed().as_secs_f64();
    let http_rate = http_n as f64 / http_secs;

    // (c) breach → stored trading_state, seen on the SSE stream
    let since = get(&format!("{base}/api/events?since=0&limit=10000"))["last_seq"]
        .as_u64()
        .unwrap_or(0);
    let sse = client
        .get(format!(
            "{base}/api/events/stream?type=trading_state&since={since}"
        ))
        .timeout(Duration::from_secs(600))
        .send()
        .expect("sse");
    let mut sse = BufReader::new(sse);
    let mut next_transition = move || -> Value {
        let mut l = String::new();
        loop {
            l.clear();
            if sse.read_line(&mut l).unwrap_or(0) == 0 {
                panic!("SSE stream ended");
            }
            if let Some(d) = l.strip_prefix("data:") {
                return serde_json::from_str(d.trim()).expect("event json");
            }
        }
    };
    let mut lat = Vec::with_capacity(trials);
    for _ in 0..trials {
        s.write_all(b"{\"type\":\"equity\",\"equity\":10000}\n")
            .expect("write");
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        s.write_all(b"{\"type\":\"equity\",\"equity\":8000}\n")
            .expect("write");
        let ev = next_transition();
        let dt = t0.elapsed().as_secs_f64() * 1e3;
        assert_eq!(ev["to"], "HALTED", "{ev}");
        assert_eq!(ev["source"], "rule:drawdown");
        lat.push(dt);
        s.write_all(b"{\"type\":\"equity\",\"equity\":10000}\n")
            .expect("write");
        loop {
            let r = client
                .post(format!("{base}/api/trading/resume"))
                .json(&serde_json::json!({"reason": "bench"}))
                .send()
                .expect("resume");
            if r.status().as_u16() == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let ev = next_transition();
        assert_eq!(ev["to"], "ACTIVE");
    }
    lat.sort_by(|a, b| a.total_cmp(b));

    // (d) durable acks over HTTP, concurrent senders, stored events.
    let senders = env_or("BENCH_SENDERS", 4);
    let batch = env_or("BENCH_BATCH", 1000);
    let per_sender = (n / 8 / senders / batch).max(1);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..senders)
        .map(|s| {
            let base = base.clone();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut acks = Vec::with_capacity(per_sender);
                for b in 0..per_sender {
                    let body: String = (0..batch)
                        .map(|i| format!(
                            "{{\"type\":\"fill\",\"pair\":\"BTC/USD\",\"side\":\"buy\",\"qty\":1,\"price\":1,\"order_id\":\"{s}-{b}-{i}\"}}\n"
                        ))
                        .collect();
                    let t = Instant::now();
                    let r = c.post(format!("{base}/api/events")).body(body).send().expect("post");
                    assert_eq!(r.status().as_u16(), 202);
                    acks.push(t.elapsed().as_secs_f64() * 1e3);
                }
                acks
            })
        })
        .collect();
    let mut acks: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("sender"))
        .collect();
    let durable_secs = t0.elapsed().as_secs_f64();
    let durable_n = senders * per_sender * batch;
    let durable_rate = durable_n as f64 / durable_secs;
    acks.sort_by(|a, b| a.total_cmp(b));
    // ... and over the socket with an ack request every 1 000 lines.
    let log_n = n / 8;
    let mut logs = Vec::with_capacity(log_n * 80);
    for i in 0..log_n {
        writeln!(
            logs,
            r#"{{"type":"log","level":"info","message":"bench {i}"}}"#
        )
        .expect("payload");
        if (i + 1) % 1000 == 0 {
            writeln!(logs, r#"{{"ack":{i}}}"#).expect("payload");
        }
    }
    let s2 = UnixStream::connect(&sock).expect("socket");
    let mut replies = BufReader::new(s2.try_clone().expect("clone"));
    let t0 = Instant::now();
    let writer = {
        let mut s2 = s2;
        std::thread::spawn(move || s2.write_all(&logs).expect("write"))
    };
    let mut acked = 0u64;
    let mut l = String::new();
    for _ in 0..log_n / 1000 {
        l.clear();
        replies.read_line(&mut l).expect("ack");
        let v: Value = serde_json::from_str(&l).expect("ack json");
        assert_eq!(v["ok"], true, "{v}");
        acked += v["committed"].as_u64().unwrap_or(0);
    }
    writer.join().expect("writer");
    let sock_durable_secs = t0.elapsed().as_secs_f64();
    let sock_durable_rate = acked as f64 / sock_durable_secs;

    // (e) the disk's floor: in-place pwrite + fdatasync of 4 KiB, same filesystem.
    let floor = {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp.path().join("data/floor.bin"))
            .expect("floor file");
        f.write_all_at(&[0u8; 4096], 0).expect("prealloc");
        f.sync_all().expect("sync");
        let mut v = Vec::with_capacity(trials);
        for i in 0..trials {
            let buf = [(i % 251) as u8; 4096];
            let t = Instant::now();
            f.write_all_at(&buf, 0).expect("pwrite");
            f.sync_data().expect("fdatasync");
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();

    println!(
        "\n## vigil ingest and halt latency ({} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| socket: {n} ticks, all rules on | {sock_rate:.0} events/s ({sock_secs:.2} s) |");
    println!(
        "| HTTP NDJSON: {http_n} ticks in batches of 10 000 | {http_rate:.0} events/s ({http_secs:.2} s) |"
    );
    println!(
        "| breach → stored trading_state on SSE, {trials} trials | p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms |",
        pct(&lat, 50.0),
        pct(&lat, 95.0),
        pct(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| durable acks: {durable_n} fills over HTTP, {senders} senders, batches of {batch} | {durable_rate:.0} events/s ({durable_secs:.2} s); ack p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms |",
        pct(&acks, 50.0),
        pct(&acks, 95.0),
        pct(&acks, 99.0)
    );
    println!(
        "| durable acks: {acked} logs over the socket, an ack every 1 000 | {sock_durable_rate:.0} events/s ({sock_durable_secs:.2} s) |"
    );
    println!(
        "| floor: pwrite + fdatasync of 4 KiB in place, {trials} trials | p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms |",
        pct(&floor, 50.0),
        pct(&floor, 95.0),
        pct(&floor, 99.0)
    );
    println!(
        "| breach → halt p99 / floor p99 | {:.2}× |",
        pct(&lat, 99.0) / pct(&floor, 99.0)
    );
}
