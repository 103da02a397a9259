//! supervisord event listeners (`[eventlistener:x]` / `[eventlistener.x]`): the actor that
//! owns the pools of `vigil_core::listener` and talks to the listener processes.
//!
//! The supervisor spawns listener processes like any program; their stdout bytes, stdin,
//! state changes and exits come here as [`ListenerIo`]. Events come from the event log
//! (stored first, so every one has a `seq`), TICK_* from a timer at the next 5 s slice, and
//! PROCESS_GROUP_ADDED at start. A serial is vigil's `seq` (strictly increasing, kept across
//! restarts). Where supervisord loses events, vigil does not: a FAIL, a bad reply or a
//! listener dying mid-event redelivers that event to the same pool only; a full buffer
//! defers events and replays them from the store when there is room again; anything that
//! is lost anyway (an unstored TICK on a full buffer, an event gone from the store) is
//! logged and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::listener::{
    self, Effect, Input, Notification, Pool, PoolConfig, PoolEvent, Pools, SerialCounter,
    Subscriptions, Ticker,
};
use vigil_core::program::{ProcessState, Transition as ProcessTransition};
use vigil_core::rules::{Action, CheckStatus, Status, StatusChange};
use vigil_core::trading::{Source, TradingState, Transition as TradingTransition};

use crate::clock::now_ms;
use crate::config::Config;
use crate::events::{Event, EventLog};

/// What the supervisor reports about listener processes.
#[derive(Debug)]
pub enum ListenerIo {
    Spawned {
        pool: usize,
        process: usize,
        stdin: Option<ChildStdin>,
    },
    Output {
        pool: usize,
        process: usize,
        bytes: Vec<u8>,
        /// Its room in the listener process's output gate, given back when taken.
        room: Option<crate::queues::Room>,
    },
    State {
        pool: usize,
        process: usize,
        state: ProcessState,
    },
    Exited {
        pool: usize,
        process: usize,
    },
    WriteFailed {
        pool: usize,
        process: usize,
    },
}

/// Start the actor if the config has listeners; returns where the supervisor reports. The
/// actor and its stdin writes run on `tasks`; the actor ends when `stop` is cancelled (the
/// daemon cancels it once the supervisor has stopped every listener process).
pub fn start(
    config: &Config,
    events: EventLog,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Option<mpsc::UnboundedSender<ListenerIo>> {
    if config.eventlisteners.is_empty() {
        return None;
    }
    let server = config
        .rpc
        .as_ref()
        .map(|r| r.identifier.clone())
        .unwrap_or_else(|| "supervisor".into());
    let mut pools = Vec::new();
    let mut process_names = Vec::new();
    for el in &config.eventlisteners {
        let subs = match Subscriptions::parse(&el.events.join(",")) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(pool = %el.program.name, error = %e, "bad events= list (should have been refused at load)");
                continue;
            }
        };
        pools.push(Pool::new(PoolConfig {
            name: el.program.name.clone(),
            server: server.clone(),
            buffer_size: el.buffer_size,
            numprocs: el.program.processes.len(),
            events: subs,
            retry_delay_ms: 0,
        }));
        process_names.push(
            el.program
                .processes
                .iter()
                .map(|p| p.name.clone())
                .collect(),
        );
    }
    let last = events.store().last_seq().unwrap_or(0);
    let groups: Vec<String> = {
        let mut g: Vec<(i32, String)> = config
            .eventlisteners
            .iter()
            .map(|e| (e.priority, e.program.name.clone()))
            .collect();
        for p in &config.programs {
            let name = config.group_of(&p.name).to_string();
            let prio = config
                .groups
                .iter()
                .find(|x| x.name == name)
                .map(|x| x.priority)
                .unwrap_or(p.priority);
            g.push((prio, name));
        }
        g.sort();
        g.dedup_by(|a, b| a.1 == b.1);
        g.into_iter().map(|(_, n)| n).collect()
    };
    // Bounded: `Output` takes room in its listener process's gate first
    // (`supervisor::output::LISTENER_OUTPUT_QUEUE` chunks each); the other messages are bounded
    // by construction: `Spawned`, `Exited` once per spawn of a listener process (a new spawn
    // comes after the supervisor saw the exit; crash loops are throttled), `State` once per
    // state change of one, `WriteFailed` once per write this actor started (one event in
    // flight per listener process).
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Actor {
        pools: Pools::new(pools, SerialCounter::after(last)),
        process_names,
        stdins: HashMap::new(),
        events: events.clone(),
        io: tx.clone(),
        lost: 0,
        tasks: tasks.clone(),
    };
    let log_rx = events.subscribe();
    tasks.spawn(actor.run(rx, log_rx, groups, stop));
    Some(tx)
}

struct Actor {
    pools: Pools,
    /// Per pool, its processes' names (for supervisord's debug lines).
    process_names: Vec<Vec<String>>,
    stdins: HashMap<(usize, usize), Arc<Mutex<ChildStdin>>>,
    events: EventLog,
    io: mpsc::UnboundedSender<ListenerIo>,
    lost: u64,
    /// Where the stdin writes run.
    tasks: TaskTracker,
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<ListenerIo>,
        mut log_rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
        groups: Vec<String>,
        stop: CancellationToken,
    ) {
        // Every group exists from the start: PROCESS_GROUP_ADDED, in priority order.
        for g in &groups {
            self.offer_unstored(listener::process_group(true, g)).await;
        }
        let mut ticker = Ticker::new();
        ticker.on_time(now_ms() / 1000);
        loop {
            let now = now_ms();
            let next_tick = (now / 5000 + 1) * 5000;
            let deadline = self
                .pools
                .next_deadline()
                .map_or(next_tick, |d| d.min(next_tick));
            tokio::select! {
                _ = stop.cancelled() => return,
                msg = rx.recv() => match msg {
                    Some(m) => self.io(m).await,
                    None => return,
                },
                ev = log_rx.recv() => match ev {
                    Ok(e) => self.logged(&e).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Missed live events are still in the store: ask every pool to
                        // replay from where it is (the pools dedup by seq).
                        tracing::warn!(missed = n, "listener dispatch lagged; replaying from the store");
                        let from = self.events.store().last_seq().unwrap_or(0).saturating_sub(n);
                        self.replay_all(from).await;
                    }
                    Err(_) => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now))) => {
                    let now = now_ms();
                    for n in ticker.on_time(now / 1000) {
                        self.offer_unstored(n).await;
                    }
                    for i in 0..self.pools.pools().len() {
                        let fx = self.pools.on(i, Input::Timer, now);
                        self.effects(i, fx).await;
                    }
                }
            }
        }
    }

    async fn offer_unstored(&mut self, n: Notification) {
        let Some(serial) = self.pools.serial_for(n.event_type) else {
            return;
        };
        let ev = PoolEvent {
            seq: None,
            serial,
            notification: n,
        };
        for (i, fx) in self.pools.offer(&ev, now_ms()) {
            self.effects(i, vec![fx]).await;
        }
    }

    async fn logged(&mut self, e: &Event) {
        if e.kind == "config_reloaded" {
            // PROCESS_GROUP_ADDED / _REMOVED for what a reload (or addProcessGroup /
            // removeProcessGroup) changed. Not stored as events of their own.
            for (key, added) in [("added", true), ("removed", false)] {
                let groups: Vec<String> = e
                    .data
                    .get("groups")
                    .and_then(|g| g.get(key))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                for g in groups {
                    self.offer_unstored(listener::process_group(added, &g))
                        .await;
                }
            }
            return;
        }
        let Some(n) = notification_of(e) else {
            return;
        };
        if self.pools.serial_for(n.event_type).is_none() {
            return;
        }
        let ev = PoolEvent {
            seq: Some(e.seq),
            serial: e.seq,
            notification: n,
        };
        let mut by_pool: BTreeMap<usize, Vec<Effect>> = BTreeMap::new();
        for (i, fx) in self.pools.offer(&ev, now_ms()) {
            by_pool.entry(i).or_default().push(fx);
        }
        for (i, fx) in by_pool {
            self.effects(i, fx).await;
        }
    }

    async fn io(&mut self, m: ListenerIo) {
        let now = now_ms();
        let (pool, fx) = match m {
            ListenerIo::Spawned {
                pool,
                process,
                stdin,
            } => {
                match stdin {
                    Some(s) => {
                        self.stdins.insert((pool, process), Arc::new(Mutex::new(s)));
                    }
                    None => {
                        self.stdins.remove(&(pool, process));
                    }
                }
                (pool, self.pools.on(pool, Input::Spawned { process }, now))
            }
            ListenerIo::Output {
                pool,
                process,
                bytes,
                room: _,
            } => (
                pool,
                self.pools.on(
                    pool,
                    Input::Output {
                        process,
                        bytes: &bytes,
                    },
                    now,
                ),
            ),
            ListenerIo::State {
                pool,
                process,
                state,
            } => (
                pool,
                self.pools
                    .on(pool, Input::ProcessState { process, state }, now),
            ),
            ListenerIo::Exited { pool, process } => {
                self.stdins.remove(&(pool, process));
                (pool, self.pools.on(pool, Input::Exited { process }, now))
            }
            ListenerIo::WriteFailed { pool, process } => (
                pool,
                self.pools.on(pool, Input::WriteFailed { process }, now),
            ),
        };
        self.effects(pool, fx).await;
    }

    fn pool_name(&self, i: usize) -> String {
        self.pools
            .get(i)
            .map(|p| p.name().to_string())
            .unwrap_or_default()
    }

    /// supervisord's debug lines for a listener's state changes (`NAME: BUSY -> ACKNOWLEDGED`)
    /// and deliveries.
    fn log_debug(&self, pool: usize, e: &Effect) {
        let name = |process: &usize| {
            self.process_names
                .get(pool)
                .and_then(|n| n.get(*process))
                .map_or("?", String::as_str)
        };
        match e {
            Effect::Ready { process } => {
                tracing::debug!("{}: ACKNOWLEDGED -> READY", name(process));
            }
            Effect::Send {
                process, serial, ..
            } => tracing::debug!("event {serial} sent to listener {}", name(process)),
            Effect::Accepted { process, .. } => {
                tracing::debug!("{}: event was processed", name(process));
                tracing::debug!("{}: BUSY -> ACKNOWLEDGED", name(process));
            }
            Effect::Rejected { process, .. } => {
                tracing::debug!("{}: BUSY -> ACKNOWLEDGED", name(process));
            }
            Effect::ProtocolError { process, error } => {
                let from = match error {
                    listener::ProtocolError::NotReady { .. } => "ACKNOWLEDGED",
                    listener::ProtocolError::Spurious { .. } => "READY",
                    listener::ProtocolError::BadResultLine { .. }
                    | listener::ProtocolError::ResultLineTooLong => "BUSY",
                };
                tracing::debug!("{}: {from} -> UNKNOWN", name(process));
            }
            _ => {}
        }
    }

    async fn effects(&mut self, pool: usize, fx: Vec<Effect>) {
        let mut queue = fx;
        while !queue.is_empty() {
            let mut more = Vec::new();
            for e in queue {
                if tracing::enabled!(tracing::Level::DEBUG) {
                    self.log_debug(pool, &e);
                }
                let name = self.pool_name(pool);
                match e {
                    Effect::Send {
                        process,
                        bytes,
                        serial,
                        ..
                    } => {
                        let Some(stdin) = self.stdins.get(&(pool, process)).cloned() else {
                            more.extend(self.pools.on(
                                pool,
                                Input::WriteFailed { process },
                                now_ms(),
                            ));
                            continue;
                        };
                        let io = self.io.clone();
                        self.tasks.spawn(async move {
                            let mut s = stdin.lock().await;
                            let r = async {
                                s.write_all(&bytes).await?;
                                s.flush().await
                            }
                            .await;
                            if let Err(err) = r {
                                tracing::warn!(pool = %name, process, serial, error = %err, "cannot write an event to a listener");
                                let _ = io.send(ListenerIo::WriteFailed { pool, process });
                            }
                        });
                    }
                    Effect::ReplayFrom { seq } => {
                        tracing::debug!(pool = %name, seq, "replaying from the store");
                        more.extend(self.replay(pool, seq).await);
                    }
                    Effect::Overflowed { from_seq } => tracing::error!(
                        pool = %name, from_seq,
                        "event buffer full; later events wait in the store and will be replayed (none discarded)"
                    ),
                    Effect::Dropped { serial } => {
                        self.lost += 1;
                        tracing::error!(pool = %name, serial, lost = self.lost, "event buffer overflowed, discarding an unstored event");
                    }
                    Effect::Missing { seq } => {
                        self.lost += 1;
                        tracing::error!(pool = %name, seq, lost = self.lost, "a deferred event is no longer in the store; lost");
                    }
                    Effect::Rejected {
                        process,
                        serial,
                        body,
                        attempts,
                        ..
                    } => tracing::warn!(
                        pool = %name, process, serial, attempts,
                        body = %String::from_utf8_lossy(&body),
                        "listener rejected an event; it will be redelivered to this pool"
                    ),
                    Effect::ProtocolError { process, error } => tracing::error!(
                        pool = %name, process, error = %error,
                        "listener has entered the UNKNOWN state and will no longer receive events, this usually indicates the process violated the eventlistener protocol"
                    ),
                    Effect::Requeued {
                        process,
                        serial,
                        cause,
                        ..
                    } => {
                        tracing::info!(pool = %name, process, serial, cause = ?cause, "event requeued");
                    }
                    Effect::Accepted { .. }
                    | Effect::Buffered { .. }
                    | Effect::Deferred { .. }
                    | Effect::Ready { .. }
                    | Effect::RetryAfter { .. } => {}
                }
            }
            queue = more;
        }
    }

    /// Feed stored events from `seq` on to one pool while it wants them.
    async fn replay(&mut self, pool: usize, seq: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut from = seq.saturating_sub(1);
        loop {
            if self
                .pools
                .get(pool)
                .and_then(|p| p.wants_replay_from())
                .is_none()
            {
                break;
            }
            let page = match self.events.since(from, None, 500).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "listener replay cannot read the store");
                    break;
                }
            };
            if page.is_empty() {
                out.extend(
                    self.pools
                        .on(pool, Input::ReplayEnd { next_seq: from + 1 }, now_ms()),
                );
                break;
            }
            for e in page {
                from = e.seq;
                let Some(n) = notification_of(&e) else {
                    continue;
                };
                if !self
                    .pools
                    .get(pool)
                    .is_some_and(|p| p.subscribes(n.event_type))
                {
                    continue;
                }
                let ev = PoolEvent {
                    seq: Some(e.seq),
                    serial: e.seq,
                    notification: n,
                };
                out.extend(self.pools.on(pool, Input::Replay(ev), now_ms()));
                if self
                    .pools
                    .get(pool)
                    .and_then(|p| p.wants_replay_from())
                    .is_none()
                {
                    break;
                }
            }
        }
        out
    }

    async fn replay_all(&mut self, from: u64) {
        for i in 0..self.pools.pools().len() {
            let fx = self.replay(i, from + 1).await;
            self.effects(i, fx).await;
        }
    }
}

fn s<'a>(e: &'a Event, k: &str) -> &'a str {
    e.data.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The listener notification for a stored event, if it is one listeners can get.
pub fn notification_of(e: &Event) -> Option<Notification> {
    match e.kind.as_str() {
        "process_state" => {
            let t = ProcessTransition {
                from: ProcessState::from_name(s(e, "from"))?,
                to: ProcessState::from_name(s(e, "to"))?,
                tries: e.data.get("tries").and_then(Value::as_u64).unwrap_or(0) as u32,
                pid: e.data.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32,
                expected: e.data.get("expected").and_then(Value::as_bool),
                exit: None,
                reason: None,
            };
            Some(listener::process_state(s(e, "process"), s(e, "group"), &t))
        }
        "supervisor_state" => match s(e, "state") {
            "RUNNING" => Some(listener::supervisor_state_change(true)),
            "STOPPING" => Some(listener::supervisor_state_change(false)),
            _ => None,
        },
        "remote_communication" => Some(listener::remote_communication(s(e, "kind"), s(e, "data"))),
        "process_log" => {
            let channel = match s(e, "channel") {
                "stderr" => listener::Channel::Stderr,
                _ => listener::Channel::Stdout,
            };
            let pid = e.data.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32;
            Some(listener::process_log(
                channel,
                s(e, "process"),
                s(e, "group"),
                pid,
                s(e, "data").as_bytes(),
            ))
        }
        "process_communication" => {
            let channel = match s(e, "channel") {
                "stderr" => listener::Channel::Stderr,
                _ => listener::Channel::Stdout,
            };
            let pid = e.data.get("pid").and_then(Value::as_u64).unwrap_or(0) as u32;
            Some(listener::process_communication(
                channel,
                s(e, "process"),
                s(e, "group"),
                pid,
                s(e, "data").as_bytes(),
            ))
        }
        "trading_state" => {
            let at_ms = chrono::DateTime::parse_from_rfc3339(s(e, "at"))
                .map(|t| t.timestamp_millis().max(0) as u64)
                .unwrap_or(0);
            let values = match e.data.get("values") {
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                _ => Default::default(),
            };
            let t = TradingTransition {
                from: TradingState::parse(s(e, "from"))?,
                to: TradingState::parse(s(e, "to"))?,
                reason: s(e, "reason").to_string(),
                source: s(e, "source").parse::<Source>().ok()?,
                actor: s(e, "actor").to_string(),
                values,
                at_ms,
            };
            Some(listener::vigil_trading_state(&t))
        }
        "check" => {
            let status = |k: &str| match s(e, k) {
                "ok" => Status::Ok,
                "warn" => Status::Warn,
                "critical" => Status::Critical,
                _ => Status::Unknown,
            };
            let action = match s(e, "action") {
                "warn" => Action::Warn,
                "reduce" => Action::Reduce,
                _ => Action::Halt,
            };
            let c = StatusChange {
                source: s(e, "source").parse::<Source>().ok()?,
                action,
                auto_resume_after_ms: None,
                previous: status("previous"),
                current: CheckStatus {
                    status: status("status"),
                    value: e.data.get("value").and_then(Value::as_f64),
                    threshold: e.data.get("threshold").and_then(Value::as_f64),
                    message: s(e, "message").to_string(),
                    subject: e
                        .data
                        .get("subject")
                        .and_then(Value::as_str)
                        .map(String::from),
                },
            };
            Some(listener::vigil_check(&c, s(e, "kind")))
        }
        _ => None,
    }
}
