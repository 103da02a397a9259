//! The monitor actor: the **one writer** of the trading state. It owns the
//! [`vigil_core::trading::Latch`] and the [`vigil_core::rules::RuleSet`], and `select!`s on
//! ingested events, probe results, operator commands, the event log (critical programs
//! reaching FATAL) and the single earliest deadline of the rules and the latch — so a
//! stale feed is detected exactly at `last_tick + threshold`, not at the next scan.
//!
//! A transition is persisted in the in-place state record (see [`persist`]) **before** it is
//! announced (the `trading_state` event, which the record holds too: it is broadcast as
//! soon as the record is durable and committed to SQLite after); the rewritten
//! `data_dir/trading_state` file is written at the same time and done before the
//! transition is acknowledged and the halt actions run in the background, none able to
//! block or undo it.

pub mod actions;
#[cfg(test)]
mod clock_tests;
pub mod config;
mod external;
pub mod persist;
pub mod probes;
mod reload;
mod retry;

pub use external::Report;
pub use reload::Reloaded;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use vigil_core::clock::Mono;
use vigil_core::event::{EventKind, InboundEvent};
use vigil_core::rules::{
    self, Action, CheckStatus, Levels, Rule, RuleSet, RuleSpec, Status, StatusChange,
};
use vigil_core::trading::{
    Latch, Resume, ResumeError, Severity, Source, TradingState, Transition, Trigger,
};

use crate::events::{EventLog, rfc3339};
use crate::supervisor::SupervisorHandle;
use config::{Kind, MonitorConfig, RuleDef};
pub use persist::Persist;

/// Wall-clock Unix milliseconds: for timestamps only (events, transitions, the persisted
/// latch). Deadlines and durations run on [`now_mono`].
pub use crate::clock::now_ms;

/// The anchor of [`now_mono`]: its first reading, on both clocks.
static MONO_ANCHOR: std::sync::OnceLock<(tokio::time::Instant, u64)> = std::sync::OnceLock::new();

fn mono_anchor() -> (tokio::time::Instant, u64) {
    *MONO_ANCHOR.get_or_init(|| (tokio::time::Instant::now(), now_ms()))
}

/// vigil's monotonic clock in milliseconds (see [`Mono`]): the Unix time of its first
/// reading, advanced by tokio's monotonic `Instant` (so it follows a paused test clock too)
/// and never by a step of the wall clock. Freshness, heartbeats and sustained thresholds
/// are measured on it.
pub fn now_mono() -> Mono {
    let (at, ms) = mono_anchor();
    let now = tokio::time::Instant::now();
    let whole = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    // Whole milliseconds since the anchor, rounded down on either side of it: an `Instant`
    // before the anchor is possible where several runtimes share this process (tests on a
    // paused clock that started before another runtime took the first reading).
    Mono(match now.checked_duration_since(at) {
        Some(after) => ms.saturating_add(whole(after)),
        None => {
            let before = at.duration_since(now);
            let up = u64::from(before.subsec_nanos() % 1_000_000 != 0);
            ms.saturating_sub(whole(before).saturating_add(up))
        }
    })
}

/// The `Instant` at which [`now_mono`] reads `m` (for `sleep_until` a deadline).
pub fn mono_instant(m: Mono) -> tokio::time::Instant {
    let (at, ms) = mono_anchor();
    let at_m = if m.0 >= ms {
        at.checked_add(std::time::Duration::from_millis(m.0 - ms))
    } else {
        at.checked_sub(std::time::Duration::from_millis(ms - m.0))
    };
    at_m.unwrap_or_else(|| {
        tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365)
    })
}

/// The monitor's two clocks: [`now_mono`] for deadlines, a wall clock for timestamps. The
/// wall clock is injectable so tests can step it; the monotonic one follows tokio's clock.
#[derive(Clone)]
pub struct Clock {
    wall: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl Clock {
    /// The system's clocks ([`now_ms`], [`now_mono`]).
    pub fn system() -> Clock {
        Clock {
            wall: Arc::new(now_ms),
        }
    }

    /// A clock whose wall time is `wall()` (tests: a wall clock that steps).
    pub fn with_wall(wall: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock {
            wall: Arc::new(wall),
        }
    }

    pub fn wall_ms(&self) -> u64 {
        (self.wall)()
    }

    pub fn mono(&self) -> Mono {
        now_mono()
    }
}

fn ms_to_rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(rfc3339)
        .unwrap_or_default()
}

/// An event that came in, with where it came from and when it was received.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub event: InboundEvent,
    /// Wall-clock receive time: the stored event's `received` timestamp.
    pub received_ms: u64,
    /// Monotonic receive time: what the rules measure staleness from.
    pub received_mono: Mono,
    /// Resolved once the event is committed (or, for types that are not stored, once the
    /// rules saw it).
    pub ack: Option<Arc<crate::events::Ack>>,
}

/// Most ingested events between the senders and the disk at any time (see [`MonitorHandle::admit`]).
pub const INGEST_BUDGET: usize = 65_536;

/// Counts of what came in, by type, and of what was refused, by reason.
#[derive(Default, Debug)]
pub struct IngestStats {
    pub by_type: std::sync::Mutex<BTreeMap<String, u64>>,
    pub rejected: std::sync::Mutex<BTreeMap<String, u64>>,
    pub unknown_types: AtomicU64,
    /// Events refused because the ingest budget was full (HTTP 503 with Retry-After).
    pub refused: AtomicU64,
    /// Times a sender had to wait for room in the ingest budget (the socket).
    pub throttled: AtomicU64,
    /// When load was last shed (refused or throttled), on [`now_mono`]; 0 = never.
    pub last_shed_ms: AtomicU64,
}

impl IngestStats {
    pub fn accepted(&self, t: &str) {
        if let Ok(mut m) = self.by_type.lock() {
            *m.entry(t.to_string()).or_default() += 1;
        }
    }
    pub fn reject(&self, reason: &str) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }
    pub fn refused(&self, n: u64) {
        self.refused.fetch_add(n, Ordering::Relaxed);
        self.last_shed_ms.store(now_mono().ms(), Ordering::Relaxed);
    }
    pub fn throttle(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.last_shed_ms.store(now_mono().ms(), Ordering::Relaxed);
    }
    // What `/api/checks` shows of these: `api::model::trading::IngestCounts`.
}

/// What `/api/state` and `/api/checks` show.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: TradingState,
    pub since: Option<String>,
    pub last_transition: Option<TransitionView>,
    /// The triggers still restricting trading or still in breach.
    pub triggers: Vec<vigil_core::trading::TriggerEntry>,
    pub holding: Vec<vigil_core::trading::Holding>,
    pub checks: Vec<CheckView>,
    pub positions: BTreeMap<String, f64>,
    /// The state in effect is in the state record (what a restart restores).
    pub persisted: bool,
    /// The state file the trading processes read says the state in effect.
    pub state_file: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransitionView {
    pub from: TradingState,
    pub to: TradingState,
    pub reason: String,
    pub source: String,
    pub actor: String,
    pub values: Value,
    pub at: String,
}

impl From<&Transition> for TransitionView {
    fn from(t: &Transition) -> Self {
        TransitionView {
            from: t.from,
            to: t.to,
            reason: t.reason.clone(),
            source: t.source.to_string(),
            actor: t.actor.clone(),
            values: serde_json::to_value(&t.values).unwrap_or(Value::Null),
            at: ms_to_rfc3339(t.at_ms),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub id: String,
    pub source: String,
    pub kind: &'static str,
    pub action: Action,
    pub status: Status,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    pub subject: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("monitor is not running")]
    Closed,
}

enum Cmd {
    Halt {
        actor: String,
        reason: String,
        reduce_only: bool,
        reply: oneshot::Sender<Option<TransitionView>>,
    },
    Resume {
        actor: String,
        reason: String,
        force: bool,
        reply: oneshot::Sender<Result<TransitionView, ResumeError>>,
    },
    Probe {
        source: Source,
        outcome: rules::ProbeOutcome,
    },
    /// A check judged outside the rule set (a venue's dead-man switch): `external.rs`.
    External(external::Report),
    /// A re-read configuration: `reload.rs`. `handle` starts the new checks' probes.
    Reload {
        cfg: Box<MonitorConfig>,
        handle: MonitorHandle,
        reply: oneshot::Sender<Reloaded>,
    },
}

/// The API's handle on the monitor; cheap to clone.
#[derive(Clone)]
pub struct MonitorHandle {
    tx: mpsc::Sender<Cmd>,
    /// Bounded by the ingest budget: every sender holds a unit of it per event until the
    /// event is committed (or seen by the rules), so the channel (`INGEST_BUDGET` slots) is
    /// never full; if it were, the event is refused and counted.
    ingest: mpsc::Sender<Ingested>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    pub stats: Arc<IngestStats>,
    /// The ingest budget: one permit per event in flight (received, not yet committed).
    budget: Arc<tokio::sync::Semaphore>,
    /// Stamps each ingested event with its receive times.
    clock: Clock,
}

impl MonitorHandle {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// Hand over a validated event; `ack` (if any) learns when it is committed. Never
    /// blocks: senders take their share of the budget first ([`Self::admit`],
    /// [`Self::try_admit`]) and hand it to `ack`, or use [`Self::ingest_waiting`].
    pub fn ingest(&self, event: InboundEvent, ack: Option<&Arc<crate::events::Ack>>) {
        self.stats.accepted(event.type_name());
        if event.is_other() {
            self.stats.unknown_types.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(a) = ack {
            a.add();
        }
        use mpsc::error::TrySendError;
        let (i, why) = match self.ingest.try_send(Ingested {
            event,
            received_ms: self.clock.wall_ms(),
            received_mono: self.clock.mono(),
            ack: ack.cloned(),
        }) {
            Ok(()) => return,
            Err(TrySendError::Full(i)) => {
                crate::queues::refused(crate::queues::Queue::MonitorIngest, 1);
                self.stats.refused(1);
                (i, "the monitor's queue is full")
            }
            Err(TrySendError::Closed(i)) => (i, "monitor is not running"),
        };
        if let Some(a) = i.ack {
            a.done(Err(why));
        }
    }

    /// Hand over a validated event from a sender without acknowledgements (a program's
    /// stdout, a followed file, a probe): waits for its unit of the ingest budget first
    /// (counted as throttled), so the sender stops reading while the budget is full.
    pub async fn ingest_waiting(&self, event: InboundEvent) {
        let permit = match self.take_now(1) {
            Some(p) => Some(p),
            None => {
                self.stats.throttle();
                self.admit(1).await
            }
        };
        let (ack, _) = crate::events::Ack::new(permit);
        self.ingest(event, Some(&ack));
        ack.close();
    }

    /// Wait for room for `n` events in the ingest budget (the socket stops being read).
    pub async fn admit(&self, n: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = u32::try_from(n.min(INGEST_BUDGET)).ok()?;
        self.budget.clone().acquire_many_owned(n).await.ok()
    }

    /// Room for `n` events now, or `None` (counted as refused, the sender is told to retry).
    pub fn try_admit(&self, n: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let p = self.take_now(n);
        if p.is_none() {
            self.stats.refused(n as u64);
        }
        p
    }

    /// Room for `n` events now, or `None` (not counted: the caller will wait).
    pub fn take_now(&self, n: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = u32::try_from(n.min(INGEST_BUDGET)).ok()?;
        self.budget.clone().try_acquire_many_owned(n).ok()
    }

    /// Events received and not yet committed.
    pub fn in_flight(&self) -> usize {
        INGEST_BUDGET - self.budget.available_permits()
    }

    /// Manual halt (or reduce). Returns the transition, or `None` when nothing changed.
    pub async fn halt(
        &self,
        actor: &str,
        reason: &str,
        reduce_only: bool,
    ) -> Result<Option<TransitionView>, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Halt {
                actor: actor.into(),
                reason: reason.into(),
                reduce_only,
                reply,
            })
            .await
            .map_err(|_| MonitorError::Closed)?;
        rx.await.map_err(|_| MonitorError::Closed)
    }

    pub async fn resume(
        &self,
        actor: &str,
        reason: &str,
        force: bool,
    ) -> Result<TransitionView, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Resume {
                actor: actor.into(),
                reason: reason.into(),
                force,
                reply,
            })
            .await
            .map_err(|_| MonitorError::Closed)?;
        Ok(rx.await.map_err(|_| MonitorError::Closed)??)
    }

    /// Apply a re-read configuration (SIGHUP): only the checks and rules that changed are
    /// rebuilt; see `reload.rs`.
    pub async fn reload(&self, cfg: MonitorConfig) -> Result<Reloaded, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Reload {
                cfg: Box::new(cfg),
                handle: self.clone(),
                reply,
            })
            .await
            .map_err(|_| MonitorError::Closed)?;
        rx.await.map_err(|_| MonitorError::Closed)
    }

    pub(crate) fn probe_sender(&self) -> ProbeSender {
        ProbeSender(self.tx.clone())
    }
}

/// Where probe tasks report.
#[derive(Clone)]
pub struct ProbeSender(mpsc::Sender<Cmd>);

impl ProbeSender {
    pub async fn report(&self, source: Source, outcome: rules::ProbeOutcome) -> bool {
        self.0.send(Cmd::Probe { source, outcome }).await.is_ok()
    }
}

pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn secs_ms(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}

fn levels(warn: Option<f64>, critical: f64) -> Levels {
    Levels {
        warn,
        critical: Some(critical),
    }
}

/// Build the core rule for a definition.
/// A rule as configured, created at `now` (its start-up grace runs from there).
fn build(def: &RuleDef, now: Mono) -> Box<dyn Rule> {
    let now = now.ms();
    use vigil_core::rules::*;
    match &def.kind {
        Kind::Drawdown {
            warn_pct,
            critical_pct,
        } => Box::new(Drawdown::new(levels(*warn_pct, *critical_pct))),
        Kind::DailyLoss {
            basis_pnl,
            warn,
            critical,
            reset_utc,
        } => {
            let basis = if *basis_pnl {
                DailyBasis::RealizedPnl
            } else {
                DailyBasis::Equity
            };
            let reset = parse_time_of_day(reset_utc).unwrap_or(0);
            Box::new(DailyLoss::new(basis, levels(*warn, *critical), reset))
        }
        Kind::ConsecutiveLosses {
            warn,
            critical,
            pair,
        } => {
            let mut r = ConsecutiveLosses::new(levels(*warn, *critical));
            r.pair = pair.clone();
            Box::new(r)
        }
        Kind::ApiErrors {
            window_s,
            warn_count,
            critical_count,
            critical_codes,
            venue,
        } => {
            let mut c = ApiErrorsConfig::new(secs_ms(*window_s), *critical_count);
            c.levels = levels(warn_count.map(f64::from), f64::from(*critical_count));
            c.critical_codes = critical_codes.clone();
            c.venue = venue.clone();
            Box::new(ApiErrors::new(c))
        }
        Kind::Volatility {
            window_s,
            warn_pct,
            critical_pct,
            confirm_s,
            pairs,
        } => {
            let mut c =
                VolatilityConfig::new(secs_ms(*window_s), *critical_pct, secs_ms(*confirm_s));
            c.warn_pct = *warn_pct;
            c.pairs = pairs.clone();
            Box::new(Volatility::new(c))
        }
        Kind::Freshness {
            pairs,
            threshold_s,
            warn_s,
            grace_s,
        } => {
            let mut c = FreshnessConfig::new(secs_ms(*threshold_s), pairs.clone(), now);
            c.warn_ms = warn_s.map(secs_ms);
            c.grace_ms = secs_ms(*grace_s);
            Box::new(Freshness::new(c))
        }
        Kind::Heartbeat {
            sources,
            period_s,
            grace_s,
        } => Box::new(Heartbeats::new(HeartbeatConfig {
            period_ms: secs_ms(*period_s),
            grace_ms: secs_ms(*grace_s),
            sources: sources.clone(),
            started_at_ms: now,
        })),
        Kind::Cycles {
            name,
            window_s,
            target_ms,
            warn_overrun_pct,
            critical_overrun_pct,
            min_samples,
        } => {
            let mut c = CyclesConfig::new(
                secs_ms(*window_s),
                levels(*warn_overrun_pct, *critical_overrun_pct),
            );
            c.name = name.clone();
            c.target_ms = *target_ms;
            c.min_samples = *min_samples;
            Box::new(Cycles::new(c))
        }
        Kind::Host {
            metric,
            warn_pct,
            critical_pct,
            sustain_s,
            ..
        } => Box::new(HostResource::new(HostResourceConfig {
            label: match metric {
                config::HostMetric::Cpu => "CPU".into(),
                config::HostMetric::Ram => "RAM".into(),
            },
            metric: metric.metric_name().into(),
            levels: levels(*warn_pct, *critical_pct),
            sustain_ms: secs_ms(*sustain_s),
        })),
        Kind::Http { failures, .. } | Kind::Kraken { failures, .. } => {
            Box::new(ProbeHealth::new(Levels::critical(f64::from(*failures))))
        }
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Drawdown { .. } => "drawdown",
        Kind::DailyLoss { .. } => "daily_loss",
        Kind::ConsecutiveLosses { .. } => "consecutive_losses",
        Kind::ApiErrors { .. } => "api_errors",
        Kind::Volatility { .. } => "volatility",
        Kind::Freshness { .. } => "freshness",
        Kind::Heartbeat { .. } => "heartbeat",
        Kind::Cycles { .. } => "cycles",
        Kind::Host { .. } => "host",
        Kind::Http { .. } => "http",
        Kind::Kraken { .. } => "kraken",
    }
}

/// How a definition is wired into the rule set.
fn spec_of(def: &RuleDef) -> RuleSpec {
    RuleSpec {
        source: source_of(def),
        action: def.action,
        auto_resume_after_ms: def.auto_resume_after_s.map(secs_ms),
        event_source: def.source.clone(),
    }
}

pub fn source_of(def: &RuleDef) -> Source {
    if def.section == "rules" {
        Source::Rule(def.id.clone())
    } else {
        Source::Check(def.id.clone())
    }
}

struct Actor {
    /// Rate-limits the warning about lagging behind the event log.
    lagging: crate::queues::Lagging,
    latch: Latch,
    rules: RuleSet,
    kinds: BTreeMap<Source, &'static str>,
    positions: BTreeMap<String, f64>,
    events: EventLog,
    persist: Arc<Persist>,
    persisted: bool,
    state_file: bool,
    /// A rewrite of the state in effect, while the last write failed (`retry.rs`).
    retry: Option<retry::Pending>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    actions: actions::Actions,
    external: external::Checks,
    /// The probe task of each check that has one (http, kraken, host).
    probes: probes::Running,
    clock: Clock,
    /// Where the probes and the halt actions run.
    tasks: TaskTracker,
}

/// Start the monitor: restore the trading state (before anything else runs), build the
/// rules, start the probes; returns the handle. The actor, its probes and its halt actions
/// run on `tasks`; the actor ends when `stop` is cancelled (or every handle is gone) and
/// aborts its probes as it goes.
pub fn start(
    cfg: MonitorConfig,
    events: EventLog,
    persist: Persist,
    supervisor: SupervisorHandle,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> MonitorHandle {
    start_with_clock(
        cfg,
        events,
        persist,
        supervisor,
        Clock::system(),
        tasks,
        stop,
    )
}

/// [`start`] with the given clocks (tests step the wall clock).
pub fn start_with_clock(
    cfg: MonitorConfig,
    events: EventLog,
    persist: Persist,
    supervisor: SupervisorHandle,
    clock: Clock,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> MonitorHandle {
    let now = clock.wall_ms();
    let mono = clock.mono();
    let restored = persist.restore(now);
    // Before anything reads it: the record and the state file say what this vigil enforces.
    let written = persist.write(&restored.latch);
    if let Err(e) = &written.record {
        tracing::error!(error = %e, "could not persist the restored trading state");
    }
    if let Err(e) = &written.file {
        tracing::error!(error = %e, "could not rewrite the trading state file");
    }
    events.health().state_file(written.file.clone());
    let cfg = Arc::new(cfg);
    let mut rules = RuleSet::new();
    let mut kinds = BTreeMap::new();
    for def in &cfg.rules {
        kinds.insert(source_of(def), kind_name(&def.kind));
        rules.add(spec_of(def), build(def, mono), mono);
    }
    let (tx, rx) = mpsc::channel(256);
    let (itx, irx) = mpsc::channel(INGEST_BUDGET);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot {
        state: restored.latch.state(),
        since: None,
        last_transition: None,
        triggers: Vec::new(),
        holding: Vec::new(),
        checks: Vec::new(),
        positions: BTreeMap::new(),
        persisted: written.record.is_ok(),
        state_file: written.file.is_ok(),
    }));
    let handle = MonitorHandle {
        tx,
        ingest: itx,
        snapshot: snap_rx,
        stats: Arc::new(IngestStats::default()),
        budget: Arc::new(tokio::sync::Semaphore::new(INGEST_BUDGET)),
        clock: clock.clone(),
    };
    let persist = Arc::new(persist);
    let probes = probes::start(&cfg, &handle.probe_sender(), &handle, tasks);
    let mut actor = Actor {
        latch: restored.latch,
        rules,
        kinds,
        positions: BTreeMap::new(),
        events: events.clone(),
        persist,
        persisted: written.record.is_ok(),
        state_file: written.file.is_ok(),
        retry: None,
        snapshot: snap_tx,
        actions: actions::Actions::new(cfg.clone(), events.clone(), supervisor, tasks.clone()),
        external: Default::default(),
        probes,
        clock,
        tasks: tasks.clone(),
        lagging: Default::default(),
    };
    actor.note_written(&written);
    actor.publish();
    let log_rx = events.subscribe();
    let restored_transition = restored.transition;
    tasks.spawn(async move {
        if let Some(t) = restored_transition {
            actor.commit(t, None).await;
        } else if actor.latch.state() != TradingState::Active {
            tracing::warn!(state = %actor.latch.state(), "trading state restored from the last run");
        }
        actor.run(rx, irx, log_rx, stop).await;
    });
    handle
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut irx: mpsc::Receiver<Ingested>,
        mut log_rx: tokio::sync::broadcast::Receiver<Arc<crate::events::Event>>,
        stop: CancellationToken,
    ) {
        self.serve(&mut rx, &mut irx, &mut log_rx, &stop).await;
        // The probes end with the actor (a host probe holds a handle and would not).
        for p in self.probes.values() {
            p.abort();
        }
    }

    async fn serve(
        &mut self,
        rx: &mut mpsc::Receiver<Cmd>,
        irx: &mut mpsc::Receiver<Ingested>,
        log_rx: &mut tokio::sync::broadcast::Receiver<Arc<crate::events::Event>>,
        stop: &CancellationToken,
    ) {
        loop {
            // The rules' deadlines are monotonic; the latch's auto-resume is a wall-clock time.
            let rules_at = self.rules.next_deadline().map(mono_instant);
            let latch_at = self.latch.next_deadline().map(|d| {
                let wait = d.saturating_sub(self.clock.wall_ms());
                tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
            });
            let deadline = [rules_at, latch_at].into_iter().flatten().min();
            let retry_at = self.retry.as_ref().map(|p| p.at);
            let retry = async move {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                cmd = rx.recv() => match cmd {
                    Some(c) => self.command(c).await,
                    None => return,
                },
                Some(first) = irx.recv() => {
                    // Take what is queued so a burst is handled in one pass.
                    let mut batch = vec![first];
                    while batch.len() < 1024 {
                        match irx.try_recv() {
                            Ok(i) => batch.push(i),
                            Err(_) => break,
                        }
                    }
                    for i in batch {
                        self.on_event(i).await;
                    }
                    self.publish();
                }
                ev = log_rx.recv() => match ev {
                    Ok(e) => self.on_logged(&e).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // A missed FATAL must not be lost: read the programs' states instead.
                        if let Some(missed) = self.lagging.note(n, std::time::Instant::now()) {
                            tracing::warn!(missed, "monitor lagged behind the event log; re-reading program states (logged at most every 10 s)");
                        }
                        self.resync_critical().await;
                    }
                    Err(_) => {}
                },
                _ = sleep => {
                    let now = self.clock.wall_ms();
                    let changes = self.rules.on_timer(self.clock.mono());
                    self.apply_changes(changes, now).await;
                    if let Some(t) = self.latch.on_timer(now) {
                        self.commit(t, None).await;
                    }
                    self.publish();
                }
                _ = retry => self.retry_persist().await,
            }
        }
    }

    async fn on_event(&mut self, i: Ingested) {
        let ev = &i.event;
        if let EventKind::Position(p) = &ev.kind {
            self.positions.insert(p.pair.clone(), p.qty);
        }
        // Keep what matters for the record; high-rate telemetry feeds the rules only.
        let stored = !matches!(
            ev.kind,
            EventKind::Tick(_) | EventKind::Heartbeat | EventKind::Cycle(_) | EventKind::Metric(_)
        );
        if stored {
            let mut data = match ev.to_json() {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            let t = ev.type_name().to_string();
            data.remove("type");
            data.insert("received".into(), ms_to_rfc3339(i.received_ms).into());
            let waiter = match &i.ack {
                Some(a) => crate::events::Waiter::Group(a.clone()),
                None => crate::events::Waiter::None,
            };
            self.events.submit_for(&t, data, waiter);
        }
        let changes = self.rules.on_event(ev, i.received_mono);
        self.apply_changes(changes, i.received_ms).await;
        if let Some(a) = &i.ack
            && !stored
        {
            // Not stored (telemetry feeds the rules only): done once the rules saw it.
            a.done(Ok(()));
        }
    }

    /// Critical programs: FATAL halts, RUNNING again clears the condition.
    async fn on_logged(&mut self, e: &crate::events::Event) {
        if e.kind != "process_state" || e.data.get("critical") != Some(&Value::Bool(true)) {
            return;
        }
        let program = e.str_field("program").unwrap_or_default().to_string();
        let now = self.clock.wall_ms();
        let src = Source::Program(program.clone());
        match e.str_field("to") {
            Some("FATAL") => {
                let mut trig =
                    Trigger::new(src, format!("critical program {program} entered FATAL"));
                trig.values.insert(
                    "process".into(),
                    e.str_field("process").unwrap_or_default().into(),
                );
                if let Some(r) = e.str_field("reason") {
                    trig.values.insert("last_error".into(), r.into());
                }
                if let Some(t) = self.latch.trip(Severity::Halt, trig, now) {
                    self.commit(t, None).await;
                }
                self.publish();
            }
            Some("RUNNING") => {
                if let Some(t) = self.latch.clear(&src, now) {
                    self.commit(t, None).await;
                }
                self.publish();
            }
            _ => {}
        }
    }

    /// Trip for every `critical` program that is FATAL now (after missing events).
    async fn resync_critical(&mut self) {
        let snap = self.actions.supervisor().snapshot();
        let now = self.clock.wall_ms();
        for p in snap.processes.iter().filter(|p| p.critical) {
            if p.state == vigil_core::program::ProcessState::Fatal {
                let trig = Trigger::new(
                    Source::Program(p.program.clone()),
                    format!("critical program {} entered FATAL", p.program),
                );
                if let Some(t) = self.latch.trip(Severity::Halt, trig, now) {
                    self.commit(t, None).await;
                }
            }
        }
        self.publish();
    }

    /// Apply rule status changes to the latch at wall time `now` (its timestamps).
    async fn apply_changes(&mut self, changes: Vec<StatusChange>, now: u64) {
        for c in changes {
            let check = self.check_event(&c);
            self.actions.alert_check(&c);
            match c.apply(&mut self.latch, now) {
                // The check's event goes into the record with the transition it caused.
                Some(t) => self.commit(t, Some(check)).await,
                None => self.events.submit("check", check),
            }
        }
    }

    fn check_event(&self, c: &StatusChange) -> serde_json::Map<String, Value> {
        let s = &c.current;
        let mut data = crate::fields! {
            "name" => c.source.id(),
            "source" => c.source.to_string(),
            "kind" => self.kinds.get(&c.source).copied().unwrap_or(""),
            "status" => s.status.as_str(),
            "previous" => c.previous.as_str(),
            "message" => s.message,
            "action" => c.action,
        };
        if let Some(v) = s.value {
            data.insert("value".into(), json!(v));
        }
        if let Some(v) = s.threshold {
            data.insert("threshold".into(), json!(v));
        }
        if let Some(v) = &s.subject {
            data.insert("subject".into(), json!(v));
        }
        data
    }

    async fn command(&mut self, c: Cmd) {
        let now = self.clock.wall_ms();
        match c {
            Cmd::Halt {
                actor,
                reason,
                reduce_only,
                reply,
            } => {
                let sev = if reduce_only {
                    Severity::Reduce
                } else {
                    Severity::Halt
                };
                let t = self.latch.trip(sev, Trigger::operator(&actor, reason), now);
                let view = match t {
                    Some(t) => {
                        let v = TransitionView::from(&t);
                        self.commit(t, None).await;
                        Some(v)
                    }
                    None => None,
                };
                self.publish();
                let _ = reply.send(view);
            }
            Cmd::Resume {
                actor,
                reason,
                force,
                reply,
            } => {
                let r = self
                    .latch
                    .resume(Resume::operator(&actor, reason, force), now);
                let out = match r {
                    Ok(t) => {
                        let v = TransitionView::from(&t);
                        self.commit(t, None).await;
                        Ok(v)
                    }
                    Err(e) => {
                        self.events.submit(
                            "resume_refused",
                            crate::fields! {"actor" => actor, "force" => force, "reason" => e.to_string()},
                        );
                        Err(e)
                    }
                };
                self.publish();
                let _ = reply.send(out);
            }
            Cmd::Probe { source, outcome } => {
                let changes = self.rules.on_probe(&source, &outcome, self.clock.mono());
                self.apply_changes(changes, now).await;
                self.publish();
            }
            Cmd::External(r) => {
                self.on_external(r, now).await;
                self.publish();
            }
            Cmd::Reload { cfg, handle, reply } => {
                let r = self.reload(*cfg, &handle).await;
                self.publish();
                let _ = reply.send(r);
            }
        }
    }

    /// Persist, then announce, then act. The only place a transition leaves the actor.
    /// The transition's events (`check`, the check that caused it, if any; then
    /// `trading_state`) get their seqs first and go into the state record with the latch;
    /// they are broadcast the moment the record is durable (not waiting for the state
    /// file or SQLite). A state that could not be persisted still applies in this process
    /// and is announced on every channel with `persisted: false`.
    async fn commit(&mut self, t: Transition, check: Option<serde_json::Map<String, Value>>) {
        let view = TransitionView::from(&t);
        let data = match serde_json::to_value(&view) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        if t.to == TradingState::Halted {
            tracing::warn!(from = %t.from, to = %t.to, source = %t.source, actor = %t.actor, reason = %t.reason, "trading state changed");
        } else {
            tracing::info!(from = %t.from, to = %t.to, source = %t.source, actor = %t.actor, reason = %t.reason, "trading state changed");
        }
        let mut events = Vec::new();
        if let Some(c) = check {
            events.push(("check".to_string(), c));
        }
        events.push(("trading_state".to_string(), data));
        let (announce, announced) = match self.events.reserve(events.len()) {
            Ok((reserved, announcer, announced)) => {
                (Some((reserved, events, announcer)), Some(announced))
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the trading state transition");
                (None, None)
            }
        };
        let persist = self.persist.clone();
        let latch = self.latch.clone();
        // What `/api/state` and `/api/checks` serve changes with the announcement, not after
        // it: a client that saw the event never reads the state before it.
        let mut view = self.view();
        let snapshot = self.snapshot.clone();
        let on_recorded = move |record: &Result<(), String>| {
            view.persisted = record.is_ok();
            snapshot.send_replace(Arc::new(view));
        };
        let written = tokio::task::spawn_blocking(move || {
            persist.write_announcing(&latch, announce, on_recorded)
        })
        .await
        .unwrap_or_else(|e| persist::Written {
            record: Err(e.to_string()),
            file: Err(e.to_string()),
        });
        self.note_written(&written);
        if let Err(e) = &written.record {
            tracing::error!(error = %e, "could not persist the trading state; it applies in this process only");
        }
        if let Err(e) = &written.file {
            tracing::error!(error = %e, "could not write the trading state file");
        }
        let seq = match announced {
            Some(a) => match a.wait().await {
                Ok(evs) => evs.last().map_or(0, |e| e.seq),
                Err(e) => {
                    tracing::error!(error = %e, "could not record the trading state transition");
                    0
                }
            },
            None => 0,
        };
        if let Err(e) = &written.file {
            self.events.submit(
                "state_file_failed",
                crate::fields! {"state" => t.to.name(), "transition_seq" => seq, "error" => e},
            );
        }
        self.actions.on_transition(&t, seq, self.positions.clone());
    }

    /// Write the latch in effect to the state record and the state file (the retry of a
    /// failed write, `retry.rs`; a transition goes through `commit`).
    fn write_latch(&self) -> impl Future<Output = persist::Written> + Send + 'static {
        let persist = self.persist.clone();
        let latch = self.latch.clone();
        async move {
            tokio::task::spawn_blocking(move || persist.write(&latch))
                .await
                .unwrap_or_else(|e| persist::Written {
                    record: Err(e.to_string()),
                    file: Err(e.to_string()),
                })
        }
    }

    /// The view `/api/state` and `/api/checks` serve, as of now.
    fn view(&self) -> Snapshot {
        let checks = self
            .rules
            .statuses()
            .map(|(spec, s)| {
                check_view(spec, s, self.kinds.get(&spec.source).copied().unwrap_or(""))
            })
            .chain(self.external.views())
            .collect();
        let last = self.latch.last_transition();
        Snapshot {
            state: self.latch.state(),
            since: last.map(|t| ms_to_rfc3339(t.at_ms)),
            last_transition: last.map(TransitionView::from),
            triggers: self
                .latch
                .triggers()
                .iter()
                .filter(|t| t.unresolved || t.holds)
                .cloned()
                .collect(),
            holding: self.latch.holding(),
            checks,
            positions: self.positions.clone(),
            persisted: self.persisted,
            state_file: self.state_file,
        }
    }

    fn publish(&self) {
        self.snapshot.send_replace(Arc::new(self.view()));
    }
}

fn check_view(spec: &RuleSpec, s: &CheckStatus, kind: &'static str) -> CheckView {
    CheckView {
        id: spec.source.id().to_string(),
        source: spec.source.to_string(),
        kind,
        action: spec.action,
        status: s.status,
        value: s.value,
        threshold: s.threshold,
        message: s.message.clone(),
        subject: s.subject.clone(),
    }
}
