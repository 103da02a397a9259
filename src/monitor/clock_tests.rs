//! The monitor actor, in-process, with an injected wall clock that steps: a freshness
//! halt fires at the monotonic deadline whichever way the wall clock moves. The last tests
//! run on tokio's paused clock (held: `crate::clock::paused`), so the deadline is checked to
//! the millisecond: not a millisecond before, exactly at it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use vigil_core::event::{EventKind, InboundEvent, Tick};
use vigil_core::trading::TradingState;

use super::*;

const HOUR_MS: i64 = 3_600_000;
const THRESHOLD_MS: u64 = 2000;

struct Harness {
    monitor: MonitorHandle,
    /// Added to the system's wall clock: the step.
    skew_ms: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

/// A real event log and state record in a temporary data_dir, no programs, one freshness
/// check on BTC/USD (2 s; a long start-up grace, so only a stale feed halts).
async fn harness() -> Harness {
    let skew_ms = Arc::new(AtomicI64::new(0));
    let skew = skew_ms.clone();
    let clock =
        Clock::with_wall(move || now_ms().saturating_add_signed(skew.load(Ordering::SeqCst)));
    harness_with(clock, skew_ms).await
}

/// [`harness`] with a wall clock that follows tokio's (paused) clock, plus the step.
async fn paused_harness() -> Harness {
    let skew_ms = Arc::new(AtomicI64::new(0));
    let skew = skew_ms.clone();
    let (wall0, t0) = (now_ms(), tokio::time::Instant::now());
    let clock = Clock::with_wall(move || {
        let since = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        (wall0 + since).saturating_add_signed(skew.load(Ordering::SeqCst))
    });
    harness_with(clock, skew_ms).await
}

async fn harness_with(clock: Clock, skew_ms: Arc<AtomicI64>) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (record, found) =
        crate::store::record::StateRecord::open(&d.join("vigil.state")).expect("state record");
    let record = Arc::new(record);
    let store = crate::store::Store::open(&d.join("vigil.db")).expect("store");
    let events = EventLog::start(store, record.clone()).expect("event log");
    let config = crate::config::load_str(Path::new("/x/vigil.toml"), "").expect("config");
    let sup = crate::supervisor::start(&config, events.clone(), Default::default());
    let cfg = config::parse_text(
        Path::new("/x/vigil.toml"),
        "[checks.feed]\nkind = \"freshness\"\npairs = [\"BTC/USD\"]\nthreshold_s = 2\ngrace_s = 3600\n",
    )
    .expect("monitor config");
    let persist = Persist::new(
        record,
        found,
        events.store().clone(),
        d.join("trading_state"),
        Vec::new(),
    );
    let monitor = start_with_clock(
        cfg,
        events,
        persist,
        sup,
        clock,
        &TaskTracker::new(),
        CancellationToken::new(),
    );
    Harness {
        monitor,
        skew_ms,
        _dir: dir,
    }
}

fn tick(pair: &str) -> InboundEvent {
    InboundEvent::new(EventKind::Tick(Tick {
        pair: pair.into(),
        price: 100.0,
        bid: None,
        ask: None,
    }))
}

/// Tick, step the wall clock by `step_ms`, feed `then` (stamped with the stepped clock; it
/// also wakes the actor, which re-arms its timer), wait for the halt; returns (the stale
/// age the check recorded, the monotonic time from the tick to the halt).
async fn halt_after_step(step_ms: i64, then: InboundEvent) -> (f64, u64) {
    let h = harness().await;
    let mut snap = h.monitor.snapshot.clone();
    let ticked = now_mono();
    h.monitor.ingest(tick("BTC/USD"), None);
    h.skew_ms.store(step_ms, Ordering::SeqCst);
    h.monitor.ingest(then, None);
    let halted = tokio::time::timeout(
        Duration::from_secs(120),
        snap.wait_for(|s| s.state == TradingState::Halted),
    )
    .await
    .expect("the stale feed halts (not an hour late)")
    .expect("monitor running")
    .clone();
    let after = now_mono().since(ticked);
    let t = halted.last_transition.as_ref().expect("a transition");
    assert_eq!(t.source, "check:feed");
    let age = t.values["value"].as_f64().expect("the stale age");
    (age, after)
}

#[tokio::test]
async fn backward_wall_step_does_not_delay_a_freshness_halt() {
    // The feed ticks again, stamped an hour back: the deadline is still tick + 2 s.
    let (age, after) = halt_after_step(-HOUR_MS, tick("BTC/USD")).await;
    // Stale at the monotonic deadline: the age measured is the threshold (plus the timer's
    // lateness on a loaded machine), never an hour of wall time.
    assert!(age >= THRESHOLD_MS as f64, "age {age}");
    assert!(age < (HOUR_MS / 2) as f64, "age {age}");
    assert!(after >= THRESHOLD_MS, "halted {after} ms after the tick");
}

#[tokio::test]
async fn forward_wall_step_does_not_hasten_a_freshness_halt() {
    // Another pair (not watched) ticks after the step: the actor wakes and re-arms.
    let (age, after) = halt_after_step(HOUR_MS, tick("ETH/USD")).await;
    // Not at once (the wall clock says an hour passed): only when the feed was really
    // silent for the threshold on the monotonic clock.
    assert!(after >= THRESHOLD_MS, "halted {after} ms after the tick");
    assert!(age >= THRESHOLD_MS as f64, "age {age}");
    assert!(age < (HOUR_MS / 2) as f64, "age {age}");
}

/// A round trip through the actor's command queue (a resume without a reason is refused
/// before it touches anything): whatever was due before it has been looked at.
async fn round_trip(m: &MonitorHandle) {
    assert!(m.resume("test", "", false).await.is_err());
}

/// Wait (real time) until the monitor has taken the tick: the check is OK.
async fn fed(h: &crate::clock::paused::Hold, m: &MonitorHandle) {
    let mut snap = m.snapshot.clone();
    h.within("the tick to be taken", async {
        snap.wait_for(|s| {
            s.checks
                .iter()
                .any(|c| c.id == "feed" && c.status == Status::Ok)
        })
        .await
        .expect("monitor running");
    })
    .await;
}

/// Advance to 1 ms before `threshold` after the last tick: still ACTIVE; then to it: HALTED,
/// the stale age recorded exactly the threshold.
async fn halts_exactly_after(h: &crate::clock::paused::Hold, m: &MonitorHandle, wait: Duration) {
    let ms = Duration::from_millis(1);
    tokio::time::advance(wait - ms).await;
    round_trip(m).await;
    assert_eq!(
        m.snapshot().state,
        TradingState::Active,
        "halted before the deadline"
    );
    tokio::time::advance(ms).await;
    let mut snap = m.snapshot.clone();
    let halted = h
        .within("the halt at the deadline", async {
            snap.wait_for(|s| s.state == TradingState::Halted)
                .await
                .expect("monitor running")
                .clone()
        })
        .await;
    let t = halted.last_transition.as_ref().expect("a transition");
    assert_eq!(t.source, "check:feed");
    assert_eq!(
        t.values["value"].as_f64(),
        Some(THRESHOLD_MS as f64),
        "{:?}",
        t.values
    );
}

#[tokio::test(start_paused = true)]
async fn a_freshness_halt_fires_exactly_at_the_threshold() {
    let h = crate::clock::paused::hold(Duration::from_secs(60));
    let x = paused_harness().await;
    x.monitor.ingest(tick("BTC/USD"), None);
    fed(&h, &x.monitor).await;
    halts_exactly_after(&h, &x.monitor, Duration::from_millis(THRESHOLD_MS)).await;
}

#[tokio::test(start_paused = true)]
async fn a_backward_wall_step_neither_delays_nor_hastens_a_freshness_halt_paused() {
    let h = crate::clock::paused::hold(Duration::from_secs(60));
    let x = paused_harness().await;
    x.monitor.ingest(tick("BTC/USD"), None);
    fed(&h, &x.monitor).await;
    // 1 s later the wall clock steps back an hour, and the feed ticks again (stamped an
    // hour back): the deadline is that tick + 2 s on the monotonic clock, to the ms.
    tokio::time::advance(Duration::from_secs(1)).await;
    x.skew_ms.store(-HOUR_MS, Ordering::SeqCst);
    x.monitor.ingest(tick("BTC/USD"), None);
    round_trip(&x.monitor).await;
    halts_exactly_after(&h, &x.monitor, Duration::from_millis(THRESHOLD_MS)).await;
}
