//! Exchange venues (`[venue.ID]`): vigil keeps each venue's dead-man switch armed while
//! trading is ACTIVE or REDUCING, cancels every order at the exchange itself on HALT, and
//! lets the countdown take what the bot still places. The decisions are
//! `vigil_core::venue::deadman::Deadman`; this module is the I/O around it.
//!
//! One task per venue owns its `Deadman`, its [`Client`] and its nonce sequence, so calls
//! to one API key are serial and their nonces strictly increase. It `select!`s on operator
//! commands (arm/disarm), the event log (`trading_state` events: the transitions the monitor
//! committed) and one timer armed at the earlier of the next call and the next instant the
//! check's status changes — no polling. Every outcome worth keeping is an event: `venue`
//! (`armed`, `arm`, `disarm`, `disarmed`, `halt_armed`, `call_failed`, `call_recovered`),
//! and `halt_action` (`venue_cancel_all`, with the exchange's count). The check
//! `check:venue:ID` goes to the monitor (`MonitorHandle::report_check`), which records it,
//! alerts, and trips the latch per `on_expiry`.
//!
//! A venue kind is one module implementing [`Client`] ([`kraken`] first).

mod close;
pub mod kraken;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use vigil_core::rules::CheckStatus;
use vigil_core::trading::{Source, TradingState};
use vigil_core::venue::deadman::{
    Answer, Call, Deadman, DeadmanConfig, Disarm, Exchange, RefusedArm,
};
use vigil_core::venue::{CancelAfter, Failure, NonceSeq};

use crate::config::venue::{VenueConfig, VenueKind};
use crate::events::{Event, EventLog, rfc3339};
use crate::fields;
use crate::monitor::{MonitorHandle, now_ms};
use crate::store::Store;

/// What every venue kind offers: a dead-man switch and a cancel-all. Calls are signed with
/// the venue's own nonce, handed in by the caller; the futures own what they need, so a
/// call runs while the task goes on reacting to the trading state.
pub trait Client: Send + Sync {
    /// Cancel every order after `timeout_s` unless called again; 0 turns the timer off.
    fn cancel_all_after(
        &self,
        nonce: u64,
        timeout_s: u32,
    ) -> BoxFuture<'static, Result<CancelAfter, Failure>>;
    /// Cancel every order now; how many were cancelled.
    fn cancel_all(&self, nonce: u64) -> BoxFuture<'static, Result<u64, Failure>>;
}

fn client_for(cfg: &VenueConfig) -> Box<dyn Client> {
    match cfg.kind {
        VenueKind::Kraken => Box::new(kraken::Kraken::new(cfg)),
    }
}

/// The check's kind in `/api/checks` and `/metrics`.
pub const CHECK_KIND: &str = "deadman";

pub fn check_source(id: &str) -> Source {
    Source::Check(format!("venue:{id}"))
}

fn ms_rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error("no venue {0:?}")]
    NoSuchVenue(String),
    #[error(transparent)]
    Refused(#[from] RefusedArm),
    #[error("the venue task is not running")]
    Closed,
}

enum Cmd {
    Arm {
        actor: String,
        reason: String,
        reply: oneshot::Sender<Result<(), RefusedArm>>,
    },
    Disarm {
        actor: String,
        reason: String,
        reply: oneshot::Sender<()>,
    },
}

struct Entry {
    cfg: Arc<VenueConfig>,
    tx: mpsc::Sender<Cmd>,
    state: watch::Receiver<Arc<Deadman>>,
}

/// The API's handle on the venues; cheap to clone.
#[derive(Clone, Default)]
pub struct Venues {
    list: Arc<Vec<Entry>>,
    close: Option<close::Handle>,
}

impl Venues {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn entry(&self, id: &str) -> Result<&Entry, VenueError> {
        self.list
            .iter()
            .find(|e| e.cfg.id == id)
            .ok_or_else(|| VenueError::NoSuchVenue(id.to_string()))
    }

    /// Every venue as `GET /api/venues` shows it, at `now`.
    pub fn views(&self) -> Vec<Value> {
        let now = now_ms();
        self.list
            .iter()
            .map(|e| view(&e.cfg, &e.state.borrow(), now))
            .collect()
    }

    pub fn view(&self, id: &str) -> Result<Value, VenueError> {
        let e = self.entry(id)?;
        Ok(view(&e.cfg, &e.state.borrow(), now_ms()))
    }

    /// After a `close` halt: which positions the bot has closed (`null` without venues).
    pub fn close_watch(&self) -> Value {
        self.close.as_ref().map_or(Value::Null, close::Handle::view)
    }

    pub async fn arm(&self, id: &str, actor: &str, reason: &str) -> Result<Value, VenueError> {
        let e = self.entry(id)?;
        let (reply, rx) = oneshot::channel();
        e.tx.send(Cmd::Arm {
            actor: actor.into(),
            reason: reason.into(),
            reply,
        })
        .await
        .map_err(|_| VenueError::Closed)?;
        rx.await.map_err(|_| VenueError::Closed)??;
        self.view(id)
    }

    pub async fn disarm(&self, id: &str, actor: &str, reason: &str) -> Result<Value, VenueError> {
        let e = self.entry(id)?;
        let (reply, rx) = oneshot::channel();
        e.tx.send(Cmd::Disarm {
            actor: actor.into(),
            reason: reason.into(),
            reply,
        })
        .await
        .map_err(|_| VenueError::Closed)?;
        rx.await.map_err(|_| VenueError::Closed)?;
        self.view(id)
    }
}

fn view(cfg: &VenueConfig, d: &Deadman, now: u64) -> Value {
    let status = d.status(now);
    let (trigger_at, seconds_left) = match d.exchange() {
        Exchange::Armed { trigger_ms } => (
            Some(ms_rfc3339(trigger_ms)),
            Some((trigger_ms as f64 - now as f64).max(0.0) / 1000.0),
        ),
        _ => (None, None),
    };
    let c = d.config();
    json!({
        "id": cfg.id,
        "kind": cfg.kind.as_str(),
        "base_url": cfg.base_url,
        "credentials": cfg.credentials_from,
        "goal": d.goal(),
        "armed": d.armed_at(now),
        "exchange": d.exchange(),
        "trigger_at": trigger_at,
        "seconds_left": seconds_left,
        "trigger_time": d.last_refresh().map(|r| r.trigger_time.clone()),
        "last_refresh": d.last_refresh().map(|r| json!({
            "at": ms_rfc3339(r.at_ms), "timeout_s": r.timeout_s,
            "current_time": r.current_time, "trigger_time": r.trigger_time, "skew_ms": r.skew_ms,
        })),
        "last_cancel_all": d.last_cancel_all().map(|r| json!({
            "at": ms_rfc3339(r.at_ms), "ok": r.ok, "count": r.count, "detail": r.detail,
            "attempt": r.attempt, "transition_seq": r.transition_seq,
        })),
        "last_failure": d.last_failure().map(|f| json!({
            "at": ms_rfc3339(f.at_ms), "call": f.call, "class": f.failure.class,
            "detail": f.failure.detail,
        })),
        "consecutive_failures": d.consecutive_failures(),
        "failures_total": d.failures_total(),
        "disarmed": d.disarmed().map(|x| json!({"actor": x.actor, "reason": x.reason, "at": ms_rfc3339(x.at_ms)})),
        "check": {"id": check_source(&cfg.id).id(), "status": status.status, "message": status.message,
                  "value": status.value, "threshold": status.threshold, "subject": status.subject},
        "deadman": {
            "timeout_s": c.timeout_s, "refresh_s": c.refresh_ms as f64 / 1000.0,
            "margin_s": c.margin_ms as f64 / 1000.0, "on_expiry": cfg.on_expiry,
            "halt_timeout_s": c.halt_timeout_s, "cancel_on_halt": c.cancel_on_halt,
        },
    })
}

fn secs_ms(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}

fn kv_disarm(id: &str) -> String {
    format!("venue.{id}.disarm")
}

fn kv_nonce(id: &str) -> String {
    format!("venue.{id}.nonce")
}

async fn kv_put(store: &Store, key: String, value: String) -> Result<(), String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let conn = store.connect(true).map_err(|e| e.to_string())?;
        Store::kv_put(&conn, store.path(), &key, &value).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

/// Start one task per venue (and the close watch) on `tasks`, each until `stop` (a call in
/// flight is dropped then, as the runtime's end dropped it before). Reads the persisted
/// nonce reservation and operator disarm of each venue first.
pub fn start(
    venues: &[VenueConfig],
    events: EventLog,
    monitor: MonitorHandle,
    tasks: &tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
) -> Venues {
    if venues.is_empty() {
        return Venues::default();
    }
    let store = events.store().clone();
    let mut list = Vec::new();
    for cfg in venues {
        // Subscribe before reading the state: no transition falls in between.
        let log_rx = events.subscribe();
        let trading = monitor.snapshot().state;
        let now = now_ms();
        let disarmed = store
            .kv_get(&kv_disarm(&cfg.id))
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str::<Disarm>(&s).ok());
        let reserved = store
            .kv_get(&kv_nonce(&cfg.id))
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u64>().ok());
        let dcfg = DeadmanConfig {
            timeout_s: cfg.deadman_timeout_s,
            refresh_ms: secs_ms(cfg.deadman_refresh_s),
            margin_ms: secs_ms(cfg.deadman_margin_s),
            halt_timeout_s: cfg.halt_timeout_s,
            cancel_on_halt: cfg.cancel_on_halt,
        };
        let dm = Deadman::new(dcfg, trading, disarmed, now);
        let (state_tx, state_rx) = watch::channel(Arc::new(dm.clone()));
        let (tx, rx) = mpsc::channel(16);
        let cfg = Arc::new(cfg.clone());
        let task = Task {
            cfg: cfg.clone(),
            client: client_for(&cfg),
            announce_armed: true,
            dm,
            nonce: NonceSeq::restore(reserved),
            events: events.clone(),
            monitor: monitor.clone(),
            store: store.clone(),
            state: state_tx,
            reported: None,
        };
        tasks.spawn(stop.clone().run_until_cancelled_owned(task.run(rx, log_rx)));
        list.push(Entry {
            cfg,
            tx,
            state: state_rx,
        });
    }
    let close_after = venues
        .iter()
        .map(|v| v.close_timeout_s)
        .fold(f64::INFINITY, f64::min);
    let close = close::start(secs_ms(close_after), events, monitor, tasks, stop);
    Venues {
        list: Arc::new(list),
        close: Some(close),
    }
}

/// A call on its way to the exchange.
struct InFlight {
    call: Call,
    sent: u64,
    fut: BoxFuture<'static, Result<Answer, Failure>>,
}

struct Task {
    cfg: Arc<VenueConfig>,
    client: Box<dyn Client>,
    dm: Deadman,
    nonce: NonceSeq,
    /// Record a `venue` `armed` event at the next successful refresh.
    announce_armed: bool,
    events: EventLog,
    monitor: MonitorHandle,
    store: Store,
    state: watch::Sender<Arc<Deadman>>,
    reported: Option<CheckStatus>,
}

impl Task {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut log_rx: broadcast::Receiver<Arc<Event>>,
    ) {
        tracing::info!(venue = %self.cfg.id, kind = self.cfg.kind.as_str(), timeout_s = self.cfg.deadman_timeout_s, "venue dead-man switch started");
        self.publish().await;
        let mut inflight: Option<InFlight> = None;
        loop {
            // One call at a time per key: nonces reach the exchange in order.
            if inflight.is_none()
                && let Some((at, call)) = self.dm.next_call()
                && at <= now_ms()
            {
                inflight = Some(self.start_call(call).await);
            }
            let now = now_ms();
            let next_call = match inflight {
                Some(_) => None,
                None => self.dm.next_call().map(|(at, _)| at),
            };
            let wake = [next_call, self.dm.next_deadline(now)]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match wake {
                    Some(at) => {
                        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await
                    }
                    None => std::future::pending().await,
                }
            };
            let answer = async {
                match inflight.as_mut() {
                    Some(f) => (&mut f.fut).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(c) => self.command(c).await,
                    None => return,
                },
                ev = log_rx.recv() => {
                    let to = match ev {
                        Ok(e) if e.kind == "trading_state" => {
                            e.str_field("to").and_then(TradingState::parse).map(|t| (t, e.seq))
                        }
                        Ok(_) => None,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            // A missed transition must not be lost: read the state instead.
                            tracing::warn!(venue = %self.cfg.id, missed = n, "venue task lagged behind the event log; re-reading the trading state");
                            Some((self.monitor.snapshot().state, 0))
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    if let Some((to, seq)) = to {
                        self.on_trading(to, seq).await;
                        // HALT: the cancel-all goes first; a refresh still on its way is
                        // abandoned (if the exchange takes it after all, it only pushes the
                        // countdown back once more, which stopping the refresh does too).
                        if to == TradingState::Halted
                            && inflight.as_ref().is_some_and(|f| matches!(f.call, Call::Arm { on_halt: false, .. }))
                        {
                            tracing::info!(venue = %self.cfg.id, "HALT: abandoning the refresh in flight");
                            inflight = None;
                        }
                    }
                }
                r = answer => {
                    if let Some(f) = inflight.take() {
                        self.finish(f.call, f.sent, r).await;
                    }
                }
                _ = sleep => {}
            }
            self.publish().await;
        }
    }

    fn record(&self, action: &str, mut data: serde_json::Map<String, Value>) {
        data.insert("venue".into(), self.cfg.id.clone().into());
        data.insert("action".into(), action.into());
        self.events.submit("venue", data);
    }

    async fn on_trading(&mut self, to: TradingState, seq: u64) {
        let now = now_ms();
        let from = self.dm.goal();
        if let Some(lifted) = self.dm.on_trading(to, seq, now) {
            self.forget_disarm().await;
            self.record(
                "arm",
                fields! {"actor" => "system", "reason" => format!("trading {to}: re-armed (disarmed by {}: {})", lifted.actor, lifted.reason), "transition_seq" => seq},
            );
        }
        if self.dm.goal() != from && to != TradingState::Halted {
            self.announce_armed = true;
        }
    }

    async fn forget_disarm(&self) {
        if let Err(e) = kv_put(&self.store, kv_disarm(&self.cfg.id), String::new()).await {
            tracing::error!(venue = %self.cfg.id, error = %e, "cannot persist the venue's re-arm");
        }
    }

    async fn command(&mut self, c: Cmd) {
        let now = now_ms();
        match c {
            Cmd::Arm {
                actor,
                reason,
                reply,
            } => {
                let r = self.dm.arm(now);
                if r.is_ok() {
                    self.forget_disarm().await;
                    self.announce_armed = true;
                    self.record("arm", fields! {"actor" => actor, "reason" => reason});
                }
                let _ = reply.send(r.map(|_| ()));
            }
            Cmd::Disarm {
                actor,
                reason,
                reply,
            } => {
                self.dm.disarm(&actor, &reason, now);
                if let Some(d) = self.dm.disarmed()
                    && let Ok(text) = serde_json::to_string(d)
                    && let Err(e) = kv_put(&self.store, kv_disarm(&self.cfg.id), text).await
                {
                    tracing::error!(venue = %self.cfg.id, error = %e, "cannot persist the venue's disarm");
                }
                tracing::warn!(venue = %self.cfg.id, %actor, %reason, "dead-man switch disarmed by an operator");
                self.record("disarm", fields! {"actor" => actor, "reason" => reason});
                let _ = reply.send(());
            }
        }
    }

    /// The next nonce, its reservation persisted first.
    async fn next_nonce(&mut self) -> u64 {
        let (n, reserve) = self.nonce.next(now_ms());
        if let Some(r) = reserve
            && let Err(e) = kv_put(&self.store, kv_nonce(&self.cfg.id), r.to_string()).await
        {
            // Sending anyway keeps the switch armed; a restart may then meet EAPI:Invalid
            // nonce once (reported as an auth failure).
            tracing::error!(venue = %self.cfg.id, error = %e, "cannot persist the nonce reservation");
        }
        n
    }

    /// Send `call` (its nonce reserved first); the answer comes back through the run loop.
    async fn start_call(&mut self, call: Call) -> InFlight {
        let nonce = self.next_nonce().await;
        let sent = now_ms();
        let fut: BoxFuture<'static, Result<Answer, Failure>> = match call {
            Call::Arm { timeout_s, .. } => {
                let f = self.client.cancel_all_after(nonce, timeout_s);
                Box::pin(async move { f.await.map(Answer::CancelAfter) })
            }
            Call::Disarm => {
                let f = self.client.cancel_all_after(nonce, 0);
                Box::pin(async move { f.await.map(Answer::CancelAfter) })
            }
            Call::CancelAll => {
                let f = self.client.cancel_all(nonce);
                Box::pin(async move { f.await.map(Answer::Cancelled) })
            }
        };
        InFlight { call, sent, fut }
    }

    async fn finish(&mut self, call: Call, sent: u64, result: Result<Answer, Failure>) {
        let now = now_ms();
        let failures_before = self.dm.consecutive_failures();
        let id = self.cfg.id.clone();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(f) => f.class.as_str(),
        };
        metrics::counter!("vigil_venue_calls_total", "venue" => id.clone(), "call" => call.name(), "result" => outcome).increment(1);
        let cancel = self.dm.on_result(call, result.clone(), sent, now);
        match &result {
            Err(f) => {
                let retry = self.dm.next_call().map(|(at, _)| at.saturating_sub(now));
                tracing::warn!(venue = %id, call = call.name(), class = f.class.as_str(), detail = %f.detail, "venue call failed");
                self.record(
                    "call_failed",
                    fields! {"call" => call.name(), "class" => f.class.as_str(), "detail" => f.detail.clone(),
                             "consecutive" => self.dm.consecutive_failures(), "retry_in_ms" => retry},
                );
            }
            Ok(answer) => {
                if failures_before > 0 {
                    self.record(
                        "call_recovered",
                        fields! {"call" => call.name(), "after_failures" => failures_before},
                    );
                }
                if let (Call::Arm { timeout_s, on_halt }, Answer::CancelAfter(a)) = (call, answer) {
                    let data = fields! {"timeout_s" => timeout_s, "trigger_time" => a.trigger_time.clone(),
                    "current_time" => a.current_time.clone()};
                    if on_halt {
                        self.record("halt_armed", data);
                    } else if self.announce_armed {
                        self.announce_armed = false;
                        self.record("armed", data);
                    }
                }
                if let (Call::Disarm, Answer::CancelAfter(a)) = (call, answer) {
                    self.record(
                        "disarmed",
                        fields! {"trigger_time" => a.trigger_time.clone(), "current_time" => a.current_time.clone()},
                    );
                    self.announce_armed = true;
                }
            }
        }
        if let Some(rec) = cancel {
            if let Some(n) = rec.count {
                metrics::gauge!("vigil_venue_last_cancel_all_count", "venue" => id.clone())
                    .set(n as f64);
            }
            let mut data = fields! {"action" => "venue_cancel_all", "venue" => id.clone(), "ok" => rec.ok,
            "detail" => rec.detail.clone(), "attempt" => rec.attempt,
            "transition_seq" => rec.transition_seq};
            if let Some(n) = rec.count {
                data.insert("count".into(), n.into());
            }
            if rec.ok {
                tracing::info!(venue = %id, count = rec.count, "cancelled every order at the exchange");
            } else {
                tracing::error!(venue = %id, detail = %rec.detail, "cancel-all at the exchange failed");
            }
            if let Err(e) = self.events.record("halt_action", data).await {
                tracing::error!(venue = %id, error = %e, "cannot record the cancel-all");
            }
        }
    }

    /// Share the state with the API and report the check to the monitor.
    async fn publish(&mut self) {
        let now = now_ms();
        self.state.send_replace(Arc::new(self.dm.clone()));
        let id = self.cfg.id.clone();
        metrics::gauge!("vigil_venue_deadman_armed", "venue" => id.clone())
            .set(f64::from(u8::from(self.dm.armed_at(now))));
        if let Exchange::Armed { trigger_ms } = self.dm.exchange() {
            metrics::gauge!("vigil_venue_deadman_trigger_timestamp_seconds", "venue" => id.clone())
                .set(trigger_ms as f64 / 1000.0);
        }
        let status = self.dm.status(now);
        if self.reported.as_ref() == Some(&status) {
            return;
        }
        self.reported = Some(status.clone());
        self.monitor
            .report_check(crate::monitor::Report {
                source: check_source(&id),
                kind: CHECK_KIND,
                action: self.cfg.on_expiry,
                status,
            })
            .await;
    }
}
