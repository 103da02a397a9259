//! The monitor actor, in-process, with an injected wall clock that steps: a freshness
//! halt fires at the monotonic deadline whichever way the wall clock moves.

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
    let skew_ms = Arc::new(AtomicI64::new(0));
    let skew = skew_ms.clone();
    let clock =
        Clock::with_wall(move || now_ms().saturating_add_signed(skew.load(Ordering::SeqCst)));
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
