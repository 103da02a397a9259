//! Helpers shared by the benchmark harnesses (`benches/supervisor.rs`, `benches/listener.rs`):
//! statistics, environment knobs, machine facts, and a minimal XML-RPC call over a Unix
//! socket (supervisord's and vigil's `/RPC2`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// Median, nearest-rank p95/p99, extremes, mean and sample standard deviation.
#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub sd: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        // Nearest-rank percentiles (with n = 30, p99 is the maximum).
        let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        Stats {
            median,
            p95: rank(0.95),
            p99: rank(0.99),
            min: v[0],
            max: v[n - 1],
            mean,
            sd: var.sqrt(),
        }
    }
}

/// A numeric knob from the environment, or `default` when unset or empty.
pub fn env_or<T: FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={v:?} is not a valid number")),
        _ => Ok(default),
    }
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// The 1, 5 and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One XML-RPC call over a Unix socket (`params` is the `<param>…</param>` XML); the reply
/// body, or an error for a non-200 status or a fault.
pub fn xmlrpc(sock: &Path, method: &str, params: &str, timeout: Duration) -> Result<String> {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>{method}</methodName>\
         <params>{params}</params></methodCall>\n"
    );
    let mut s =
        UnixStream::connect(sock).with_context(|| format!("connecting to {}", sock.display()))?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "POST /RPC2 HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, reply) = raw
        .split_once("\r\n\r\n")
        .with_context(|| format!("{method}: malformed HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{method}: {status}");
    }
    if reply.contains("<fault>") {
        bail!("{method}: fault: {reply}");
    }
    Ok(reply.to_string())
}
