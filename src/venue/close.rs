//! Whether the bot closed its positions after a `close` halt. A dead-man switch cancels
//! orders, never positions: closing is the bot's job (the `close_position` commands). This
//! watch follows the event log: each `close_position` command opens a pair; a `position`
//! event with `qty = 0` for it records `position_closed`; a pair still open
//! `close_timeout_s` after the halt records `position_still_open` and turns the check
//! `check:positions_closed` critical (action warn: it alerts through the alert sinks; it
//! does not change the trading state). A transition out of HALTED ends the watch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use vigil_core::rules::{Action, CheckStatus, Status};
use vigil_core::trading::{Source, TradingState};

use crate::events::{Event, EventLog};
use crate::fields;
use crate::monitor::{MonitorHandle, Report, now_ms};

#[derive(Debug, Clone, Default)]
struct Watch {
    transition_seq: u64,
    started_ms: u64,
    deadline_ms: u64,
    /// Pair → quantity asked to close (signed as the position was).
    open: BTreeMap<String, f64>,
    closed: BTreeMap<String, u64>,
    overdue: bool,
}

#[derive(Clone)]
pub struct Handle(Arc<Mutex<Option<Watch>>>);

impl Handle {
    pub fn view(&self) -> Value {
        let w = self.0.lock().ok().and_then(|w| w.clone());
        match w {
            None => Value::Null,
            Some(w) => json!({
                "transition_seq": w.transition_seq,
                "deadline": super::ms_rfc3339(w.deadline_ms),
                "open": w.open,
                "closed": w.closed.iter().map(|(p, ms)| (p.clone(), json!({"after_s": (*ms as f64 - w.started_ms as f64) / 1000.0}))).collect::<serde_json::Map<_, _>>(),
                "overdue": w.overdue,
            }),
        }
    }
}

/// The watch runs on `tasks` until `stop`.
pub fn start(
    timeout_ms: u64,
    events: EventLog,
    monitor: MonitorHandle,
    tasks: &tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
) -> Handle {
    let handle = Handle(Arc::new(Mutex::new(None)));
    let rx = events.subscribe();
    tasks.spawn(stop.run_until_cancelled_owned(run(
        timeout_ms,
        events,
        monitor,
        rx,
        handle.clone(),
    )));
    handle
}

fn source() -> Source {
    Source::Check("positions_closed".into())
}

async fn report(monitor: &MonitorHandle, status: Status, message: String) {
    monitor
        .report_check(Report {
            source: source(),
            kind: "close_watch",
            action: Action::Warn,
            status: CheckStatus::new(status, None, None, message),
        })
        .await;
}

async fn run(
    timeout_ms: u64,
    events: EventLog,
    monitor: MonitorHandle,
    mut rx: broadcast::Receiver<Arc<Event>>,
    handle: Handle,
) {
    report(&monitor, Status::Ok, "no close halt pending".into()).await;
    let mut watch: Option<Watch> = None;
    loop {
        let deadline = watch
            .as_ref()
            .filter(|w| !w.overdue && !w.open.is_empty())
            .map(|w| w.deadline_ms);
        let sleep = async {
            match deadline {
                Some(d) => {
                    tokio::time::sleep(Duration::from_millis(d.saturating_sub(now_ms()))).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) => on_event(&e, &mut watch, timeout_ms, &events, &monitor).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Missed position events: take the monitor's latest positions instead.
                    tracing::warn!(missed = n, "close watch lagged behind the event log; re-reading positions");
                    let positions = monitor.snapshot().positions.clone();
                    if let Some(w) = &mut watch {
                        for (pair, qty) in positions {
                            if qty == 0.0 && w.open.remove(&pair).is_some() {
                                w.closed.insert(pair, now_ms());
                            }
                        }
                        if w.open.is_empty() {
                            report(&monitor, Status::Ok, "the bot closed every position after the close halt".into()).await;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = sleep => {
                if let Some(w) = &mut watch {
                    w.overdue = true;
                    let after_s = timeout_ms as f64 / 1000.0;
                    let open: Vec<String> = w.open.iter().map(|(p, q)| format!("{p} ({q})")).collect();
                    events.submit("position_still_open", fields! {
                        "pairs" => w.open, "transition_seq" => w.transition_seq, "after_s" => after_s});
                    tracing::error!(pairs = %open.join(", "), after_s, "positions still open after a close halt");
                    report(&monitor, Status::Critical, format!(
                        "still open {after_s} s after the close halt (seq {}): {}", w.transition_seq, open.join(", "))).await;
                }
            }
        }
        if let Ok(mut g) = handle.0.lock() {
            g.clone_from(&watch);
        }
    }
}

async fn on_event(
    e: &Event,
    watch: &mut Option<Watch>,
    timeout_ms: u64,
    events: &EventLog,
    monitor: &MonitorHandle,
) {
    let now = now_ms();
    match e.kind.as_str() {
        "command" if e.str_field("command") == Some("close_position") => {
            let Some(pair) = e.str_field("pair") else {
                return;
            };
            let seq = e
                .data
                .get("transition_seq")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let qty = e.data.get("qty").and_then(Value::as_f64).unwrap_or(0.0);
            let w = match watch {
                Some(w) if w.transition_seq == seq => w,
                _ => watch.insert(Watch {
                    transition_seq: seq,
                    started_ms: now,
                    deadline_ms: now.saturating_add(timeout_ms),
                    ..Default::default()
                }),
            };
            w.open.insert(pair.to_string(), qty);
            report(
                monitor,
                Status::Unknown,
                format!(
                    "waiting for the bot to close {} position(s) (until {})",
                    w.open.len(),
                    super::ms_rfc3339(w.deadline_ms)
                ),
            )
            .await;
        }
        "position" => {
            let Some(w) = watch else { return };
            let (Some(pair), Some(qty)) = (
                e.str_field("pair"),
                e.data.get("qty").and_then(Value::as_f64),
            ) else {
                return;
            };
            if qty != 0.0 || w.open.remove(pair).is_none() {
                return;
            }
            w.closed.insert(pair.to_string(), now);
            let after_s = (now as f64 - w.started_ms as f64) / 1000.0;
            events.submit(
                "position_closed",
                fields! {"pair" => pair, "transition_seq" => w.transition_seq, "after_s" => after_s, "late" => w.overdue},
            );
            if w.open.is_empty() {
                report(
                    monitor,
                    Status::Ok,
                    format!(
                        "the bot closed every position after the close halt (seq {})",
                        w.transition_seq
                    ),
                )
                .await;
            }
        }
        "trading_state"
            if e.str_field("to") != Some(TradingState::Halted.name()) && watch.take().is_some() =>
        {
            report(monitor, Status::Ok, "no close halt pending".into()).await;
        }
        _ => {}
    }
}
