//! vigil's own probes: HTTP, the Kraken preset (public `SystemStatus`, and the private
//! `Balance` call signed with API-Key/API-Sign when keys are configured), and host CPU/RAM
//! from `/proc`. Each probe runs at its configured interval (the interval is the probe's
//! contract, not a scan) and is cut by its timeout; a hung probe counts as a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_util::task::TaskTracker;

use vigil_core::event::{EventKind, InboundEvent, Metric};
use vigil_core::kraken;
use vigil_core::rules::ProbeOutcome;
use vigil_core::trading::Source;

use super::config::{HostMetric, Kind, MonitorConfig, RuleDef};
use super::{MonitorHandle, ProbeSender, source_of};

/// The running probe tasks, by check (a reload stops and starts them one by one).
pub type Running = BTreeMap<Source, AbortHandle>;

/// Start a probe for every check that has one.
pub fn start(
    cfg: &Arc<MonitorConfig>,
    tx: &ProbeSender,
    monitor: &MonitorHandle,
    tasks: &TaskTracker,
) -> Running {
    cfg.rules
        .iter()
        .filter_map(|def| Some((source_of(def), start_one(def, tx, monitor, tasks)?)))
        .collect()
}

/// Start the probe of `def`, if its kind has one (http, kraken, host).
/// The probe runs on `tasks` until it is aborted (a reload, the monitor's end) or the
/// monitor is gone.
pub fn start_one(
    def: &RuleDef,
    tx: &ProbeSender,
    monitor: &MonitorHandle,
    tasks: &TaskTracker,
) -> Option<AbortHandle> {
    let source = source_of(def);
    let task = {
        match def.kind.clone() {
            Kind::Http {
                url,
                interval_s,
                timeout_s,
                expect_status,
                ..
            } => {
                let tx = tx.clone();
                tasks.spawn(async move {
                    let client = client(timeout_s);
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(interval_s));
                    loop {
                        tick.tick().await;
                        let outcome = match tokio::time::timeout(
                            Duration::from_secs_f64(timeout_s),
                            client.get(&url).send(),
                        )
                        .await
                        {
                            Err(_) => {
                                ProbeOutcome::Connectivity(format!("timed out after {timeout_s} s"))
                            }
                            Ok(Err(e)) => ProbeOutcome::Connectivity(describe(&e, timeout_s)),
                            Ok(Ok(r)) if r.status().as_u16() == expect_status => ProbeOutcome::Ok,
                            Ok(Ok(r)) if r.status().is_server_error() => {
                                ProbeOutcome::Connectivity(format!("HTTP {}", r.status()))
                            }
                            Ok(Ok(r)) => ProbeOutcome::Error(format!(
                                "HTTP {} (expected {expect_status})",
                                r.status()
                            )),
                        };
                        if !tx.report(source.clone(), outcome).await {
                            return;
                        }
                    }
                })
            }
            Kind::Kraken {
                base_url,
                interval_s,
                timeout_s,
                api_key_env,
                api_secret_env,
                ..
            } => {
                let tx = tx.clone();
                let creds = match (api_key_env, api_secret_env) {
                    (Some(k), Some(s)) => match (std::env::var(&k), std::env::var(&s)) {
                        (Ok(k), Ok(s)) => Some((k, s)),
                        _ => {
                            tracing::error!(check = %source, "Kraken API key/secret environment variables are not set; probing public endpoints only");
                            None
                        }
                    },
                    _ => None,
                };
                tasks.spawn(async move {
                    let client = client(timeout_s);
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(interval_s));
                    let mut nonce = 0u64;
                    loop {
                        tick.tick().await;
                        let base = base_url.trim_end_matches('/');
                        let fut = async {
                            let r = client
                                .get(format!("{base}/0/public/SystemStatus"))
                                .send()
                                .await;
                            let body = match r {
                                Ok(r) if r.status().is_server_error() => {
                                    return ProbeOutcome::Connectivity(format!(
                                        "SystemStatus: HTTP {}",
                                        r.status()
                                    ));
                                }
                                Ok(r) => match r.text().await {
                                    Ok(b) => b,
                                    Err(e) => return ProbeOutcome::Connectivity(e.to_string()),
                                },
                                Err(e) => {
                                    return ProbeOutcome::Connectivity(describe(&e, timeout_s));
                                }
                            };
                            let status = kraken::classify_system_status(&body);
                            if status != ProbeOutcome::Ok {
                                return status;
                            }
                            let Some((key, secret)) = &creds else {
                                return ProbeOutcome::Ok;
                            };
                            nonce = kraken::next_nonce(nonce, super::now_ms());
                            let post = kraken::balance_body(nonce);
                            let path = "/0/private/Balance";
                            let sign =
                                match kraken::api_sign(path, &nonce.to_string(), &post, secret) {
                                    Ok(s) => s,
                                    Err(e) => {
                                        return ProbeOutcome::Auth(format!("cannot sign: {e}"));
                                    }
                                };
                            let r = client
                                .post(format!("{base}{path}"))
                                .header("API-Key", key)
                                .header("API-Sign", sign)
                                .header("Content-Type", "application/x-www-form-urlencoded")
                                .body(post)
                                .send()
                                .await;
                            match r {
                                Ok(r) if r.status().is_server_error() => {
                                    ProbeOutcome::Connectivity(format!(
                                        "Balance: HTTP {}",
                                        r.status()
                                    ))
                                }
                                Ok(r) => match r.text().await {
                                    Ok(b) => kraken::classify_private_response(&b),
                                    Err(e) => ProbeOutcome::Connectivity(e.to_string()),
                                },
                                Err(e) => ProbeOutcome::Connectivity(e.to_string()),
                            }
                        };
                        let outcome = tokio::time::timeout(Duration::from_secs_f64(timeout_s), fut)
                            .await
                            .unwrap_or_else(|_| {
                                ProbeOutcome::Connectivity(format!("timed out after {timeout_s} s"))
                            });
                        if !tx.report(source.clone(), outcome).await {
                            return;
                        }
                    }
                })
            }
            Kind::Host {
                metric, interval_s, ..
            } => {
                let monitor = monitor.clone();
                tasks.spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs_f64(interval_s));
                    let mut prev: Option<(u64, u64)> = None;
                    loop {
                        tick.tick().await;
                        let value = match metric {
                            HostMetric::Cpu => {
                                let now = cpu_times();
                                let v = match (prev, now) {
                                    (Some((b0, i0)), Some((b1, i1))) if b1 > b0 => Some(
                                        100.0
                                            * (1.0
                                                - (i1.saturating_sub(i0)) as f64
                                                    / (b1 - b0) as f64),
                                    ),
                                    _ => None,
                                };
                                prev = now;
                                v
                            }
                            HostMetric::Ram => ram_pct(),
                        };
                        if let Some(v) = value {
                            let mut ev = InboundEvent::new(EventKind::Metric(Metric {
                                name: metric.metric_name().into(),
                                value: v,
                            }));
                            ev.source = Some("vigil".into());
                            monitor.ingest_waiting(ev).await;
                        }
                    }
                })
            }
            _ => return None,
        }
    };
    Some(task.abort_handle())
}

/// A transport error in words an operator can act on.
fn describe(e: &reqwest::Error, timeout_s: f64) -> String {
    if e.is_timeout() {
        format!("timed out after {timeout_s} s")
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

fn client(timeout_s: f64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(timeout_s))
        .build()
        .unwrap_or_default()
}

/// (total, idle) jiffies from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = nums.iter().sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

fn ram_pct() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let total = get("MemTotal:")?;
    let avail = get("MemAvailable:")?;
    (total > 0.0).then(|| 100.0 * (total - avail) / total)
}
