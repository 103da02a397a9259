//! What follows a transition, in order, each outcome recorded as an event and none able to
//! block or undo the transition (they run in a background task after it is persisted and
//! announced): position commands (`cancel_all_orders`, `close_position` per open position),
//! stopping and signalling program groups, a webhook (retried with backoff), a command.
//! Also the alert sinks (generic JSON webhook, Alertmanager webhook format), fired on check
//! status changes and trading-state transitions, deduplicated by status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_core::rules::{Status, StatusChange};
use vigil_core::trading::{TradingState, Transition, commands_for};

use super::config::{MonitorConfig, SinkKind};
use crate::events::EventLog;
use crate::fields;
use crate::supervisor::SupervisorHandle;

#[derive(Clone)]
pub struct Actions {
    cfg: Arc<MonitorConfig>,
    events: EventLog,
    supervisor: SupervisorHandle,
    http: reqwest::Client,
    /// Where the actions and alert deliveries run (the daemon joins them at shutdown).
    tasks: tokio_util::task::TaskTracker,
}

impl Actions {
    pub fn new(
        cfg: Arc<MonitorConfig>,
        events: EventLog,
        supervisor: SupervisorHandle,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Actions {
            cfg,
            events,
            supervisor,
            http,
            tasks,
        }
    }

    /// The configuration in effect (halt actions and alerts are read from it per transition).
    pub fn config(&self) -> &Arc<MonitorConfig> {
        &self.cfg
    }

    /// A reloaded configuration: the next transition and alert use it.
    pub fn set_config(&mut self, cfg: Arc<MonitorConfig>) {
        self.cfg = cfg;
    }

    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.supervisor
    }

    fn outcome(&self, action: &str, transition_seq: u64, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        if ok {
            tracing::info!(action, %detail, "halt action done");
        } else {
            tracing::error!(action, %detail, "halt action failed");
        }
        self.events.submit(
            "halt_action",
            fields! {"action" => action, "ok" => ok, "detail" => detail, "transition_seq" => transition_seq},
        );
    }

    /// Run the configured actions for a committed transition, in the background.
    pub fn on_transition(&self, t: &Transition, seq: u64, positions: BTreeMap<String, f64>) {
        let me = self.clone();
        let t = t.clone();
        self.tasks
            .spawn(async move { me.run(t, seq, positions).await });
    }

    async fn run(self, t: Transition, seq: u64, positions: BTreeMap<String, f64>) {
        let halt = &self.cfg.halt;
        // 1. Position commands: only on entering HALTED. vigil's own commands are never
        //    subject to the halt; the trading processes execute them from the stream.
        for c in commands_for(&t, halt.position_behavior, &positions) {
            let mut data = match serde_json::to_value(&c) {
                Ok(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            data.insert("transition_seq".into(), seq.into());
            data.insert("behavior".into(), json!(halt.position_behavior));
            if let Err(e) = self.events.record("command", data).await {
                self.outcome("command", seq, false, e);
            }
        }
        let entering_halt = t.to == TradingState::Halted && t.from != TradingState::Halted;
        let restricting =
            t.to != TradingState::Active && t.from == TradingState::Active || entering_halt;
        // 2. Stop program groups (only on HALTED).
        if entering_halt {
            for g in &halt.stop_groups {
                match self.supervisor.stop(&format!("{g}:*"), false).await {
                    Ok(r) => self.outcome(
                        "stop_group",
                        seq,
                        true,
                        format!("{g}: {} process(es)", r.len()),
                    ),
                    Err(e) => self.outcome("stop_group", seq, false, format!("{g}: {e}")),
                }
            }
        }
        // 3. Signal program groups (HALTED and REDUCING).
        if restricting {
            for (g, sig) in &halt.signal_groups {
                match self.supervisor.signal(&format!("{g}:*"), sig.number).await {
                    Ok(r) => {
                        let ok = r.iter().all(|x| x.ok);
                        self.outcome("signal_group", seq, ok, format!("{g}: SIG{}", sig.name));
                    }
                    Err(e) => self.outcome("signal_group", seq, false, format!("{g}: {e}")),
                }
            }
        }
        let payload = json!({
            "type": "trading_state",
            "seq": seq,
            "from": t.from,
            "to": t.to,
            "reason": t.reason,
            "source": t.source.to_string(),
            "actor": t.actor,
            "values": t.values,
            "at_ms": t.at_ms,
        });
        // 4. Webhook, retried with exponential backoff.
        if let Some(url) = &halt.webhook {
            let retries = halt.webhook_retries;
            let mut delay = Duration::from_millis(500);
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.http.post(url).json(&payload).send().await {
                    Ok(r) if r.status().is_success() => {
                        self.outcome(
                            "webhook",
                            seq,
                            true,
                            format!("{url}: {} (attempt {attempt})", r.status()),
                        );
                        break;
                    }
                    Ok(r) if attempt > retries => {
                        self.outcome(
                            "webhook",
                            seq,
                            false,
                            format!("{url}: {} after {attempt} attempts", r.status()),
                        );
                        break;
                    }
                    Err(e) if attempt > retries => {
                        self.outcome(
                            "webhook",
                            seq,
                            false,
                            format!("{url}: {e} after {attempt} attempts"),
                        );
                        break;
                    }
                    _ => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        // 5. A command, with the transition in its environment.
        if let Some(argv) = &halt.command
            && let Some((exe, args)) = argv.split_first()
        {
            let out = tokio::process::Command::new(exe)
                .args(args)
                .env("VIGIL_TRADING_STATE", t.to.name())
                .env("VIGIL_PREVIOUS_STATE", t.from.name())
                .env("VIGIL_REASON", &t.reason)
                .env("VIGIL_SOURCE", t.source.to_string())
                .env("VIGIL_ACTOR", &t.actor)
                .env("VIGIL_TRANSITION", payload.to_string())
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(Duration::from_secs(60), out).await {
                Ok(Ok(o)) => self.outcome(
                    "command",
                    seq,
                    o.status.success(),
                    format!("{}: {}", exe, o.status),
                ),
                Ok(Err(e)) => self.outcome("command", seq, false, format!("{exe}: {e}")),
                Err(_) => self.outcome(
                    "command",
                    seq,
                    false,
                    format!("{exe}: timed out after 60 s"),
                ),
            }
        }
        // 6. Alerts.
        let status = if t.to == TradingState::Active {
            "resolved"
        } else {
            "firing"
        };
        self.send_alerts(
            "vigil_trading_state",
            status,
            if t.to == TradingState::Halted {
                "critical"
            } else {
                "warning"
            },
            &format!("trading {} ({}): {}", t.to, t.source, t.reason),
            json!({"state": t.to, "source": t.source.to_string()}),
        );
    }

    /// A check's status changed: firing on warn/critical, resolved on ok.
    pub fn alert_check(&self, c: &StatusChange) {
        let (status, severity) = match c.current.status {
            Status::Critical => ("firing", "critical"),
            Status::Warn => ("firing", "warning"),
            Status::Ok if matches!(c.previous, Status::Warn | Status::Critical) => {
                ("resolved", "none")
            }
            _ => return,
        };
        self.send_alerts(
            &format!("vigil_check_{}", c.source.id()),
            status,
            severity,
            &c.current.message,
            json!({"check": c.source.to_string(), "value": c.current.value, "threshold": c.current.threshold}),
        );
    }

    fn send_alerts(&self, name: &str, status: &str, severity: &str, message: &str, extra: Value) {
        for sink in &self.cfg.alerts {
            if status == "resolved" && !sink.send_resolved {
                continue;
            }
            let now = chrono::Utc::now().to_rfc3339();
            let body = match sink.kind {
                SinkKind::Webhook => json!({
                    "alert": name, "status": status, "severity": severity,
                    "message": message, "at": now, "details": extra,
                }),
                SinkKind::Alertmanager => {
                    let labels =
                        json!({"alertname": name, "severity": severity, "service": "vigil"});
                    json!({
                        "version": "4",
                        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
                        "truncatedAlerts": 0,
                        "status": status,
                        "receiver": sink.id,
                        "groupLabels": {"alertname": name},
                        "commonLabels": labels,
                        "commonAnnotations": {"summary": message},
                        "externalURL": "",
                        "alerts": [{
                            "status": status,
                            "labels": labels,
                            "annotations": {"summary": message, "details": extra.to_string()},
                            "startsAt": now,
                            "endsAt": if status == "resolved" { now.clone() } else { "0001-01-01T00:00:00Z".to_string() },
                            "generatorURL": "",
                            "fingerprint": format!("{:016x}", fnv(name)),
                        }],
                    })
                }
            };
            let http = self.http.clone();
            let url = sink.url.clone();
            let events = self.events.clone();
            let id = sink.id.clone();
            let name = name.to_string();
            let status = status.to_string();
            self.tasks.spawn(async move {
                let mut delay = Duration::from_millis(500);
                for attempt in 1..=4 {
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            events.submit("alert_sent", fields! {"sink" => id, "alert" => name, "status" => status, "attempt" => attempt});
                            return;
                        }
                        other => {
                            if attempt == 4 {
                                let detail = match other {
                                    Ok(r) => r.status().to_string(),
                                    Err(e) => e.to_string(),
                                };
                                tracing::error!(sink = %id, %detail, "alert not delivered");
                                events.submit("alert_failed", fields! {"sink" => id, "alert" => name, "status" => status, "detail" => detail});
                                return;
                            }
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            });
        }
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}
