//! A wall-clock step can neither delay nor hasten a halt: the rules run on [`Mono`], the
//! latch records wall time. The shell is played here with an injected clock: each input
//! comes with a (wall, mono) pair read at once, the rules get the monotonic one, the latch
//! the wall one, and the one timer is armed at [`RuleSet::next_deadline`].

use super::*;
use crate::clock::Mono;
use crate::event::{EventKind, Metric, Tick};
use crate::trading::TradingState;

const HOUR: u64 = 3_600_000;
/// 2026-01-01T00:00:00Z
const WALL0: u64 = 1_767_225_600_000;

/// The injected clock: the wall clock can be stepped; the monotonic one only advances.
struct Clock {
    wall: u64,
    mono: Mono,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall: WALL0,
            mono: Mono(WALL0),
        }
    }
    /// Time passes: both clocks advance.
    fn advance(&mut self, ms: u64) {
        self.wall += ms;
        self.mono = self.mono.add_ms(ms);
    }
    /// The wall clock is set (NTP step, `date -s`): the monotonic one does not move.
    fn step_wall(&mut self, to: u64) {
        self.wall = to;
    }
}

/// The shell's loop, played: feed `ev` now; return the halt, if any.
struct Shell {
    clock: Clock,
    rules: RuleSet,
    latch: Latch,
}

impl Shell {
    fn new(def: Box<dyn Rule>) -> Shell {
        let clock = Clock::new();
        let mut rules = RuleSet::new();
        rules.add(
            RuleSpec::new(Source::Check("feed".into()), Action::Halt),
            def,
            clock.mono,
        );
        Shell {
            clock,
            rules,
            latch: Latch::new(),
        }
    }

    fn apply(&mut self, changes: Vec<StatusChange>) -> Option<Transition> {
        changes
            .iter()
            .filter_map(|c| c.apply(&mut self.latch, self.clock.wall))
            .last()
    }

    fn event(&mut self, kind: EventKind) -> Option<Transition> {
        let ev = InboundEvent {
            // The bot's own clock stepped too: it is never used for timing.
            ts_ms: Some(self.clock.wall),
            ..InboundEvent::new(kind)
        };
        let changes = self.rules.on_event(&ev, self.clock.mono);
        self.apply(changes)
    }

    /// Let time pass until the armed timer fires (or `limit` passes); returns the halt and
    /// how long after now it came.
    fn run_until_halt(&mut self, limit: u64) -> Option<(u64, Transition)> {
        let start = self.clock.mono;
        while let Some(d) = self.rules.next_deadline() {
            if d.since(start) > limit {
                return None;
            }
            self.clock.advance(d.since(self.clock.mono));
            let changes = self.rules.on_timer(self.clock.mono);
            if let Some(t) = self.apply(changes)
                && t.to == TradingState::Halted
            {
                return Some((self.clock.mono.since(start), t));
            }
        }
        None
    }
}

fn tick() -> EventKind {
    EventKind::Tick(Tick {
        pair: "BTC/USD".into(),
        price: 100.0,
        bid: None,
        ask: None,
    })
}

fn freshness() -> Box<dyn Rule> {
    Box::new(Freshness::new(FreshnessConfig::new(
        5000,
        vec!["BTC/USD".into()],
        WALL0,
    )))
}

#[test]
fn backward_wall_step_does_not_delay_a_freshness_halt() {
    let mut sh = Shell::new(freshness());
    sh.clock.advance(1000);
    assert_eq!(sh.event(tick()), None);
    // Two seconds on, the wall clock is set back an hour; a tick arrives stamped with it.
    sh.clock.advance(2000);
    sh.clock.step_wall(sh.clock.wall - HOUR);
    assert_eq!(sh.event(tick()), None);
    assert_eq!(sh.rules.next_deadline(), Some(sh.clock.mono.add_ms(5000)));
    let wall_at_last_tick = sh.clock.wall;
    let (after, t) = sh.run_until_halt(2 * HOUR).expect("halted");
    assert_eq!(after, 5000, "halt exactly at the monotonic deadline");
    assert_eq!(t.source.to_string(), "check:feed");
    assert_eq!(t.values["value"], serde_json::Value::from(5000.0));
    // The transition's timestamp is wall time (the stepped clock), for people to read.
    assert_eq!(t.at_ms, wall_at_last_tick + 5000);
}

#[test]
fn forward_wall_step_does_not_hasten_a_freshness_halt() {
    let mut sh = Shell::new(freshness());
    sh.clock.advance(1000);
    assert_eq!(sh.event(tick()), None);
    // The wall clock jumps an hour ahead right after the tick: nothing is stale yet.
    sh.clock.step_wall(sh.clock.wall + HOUR);
    assert!(sh.rules.on_timer(sh.clock.mono).is_empty());
    sh.clock.advance(4999);
    assert!(sh.rules.on_timer(sh.clock.mono).is_empty());
    assert_eq!(sh.latch.state(), TradingState::Active);
    let (after, _) = sh.run_until_halt(HOUR).expect("halted");
    assert_eq!(
        after, 1,
        "halt at tick + 5000 ms on the monotonic clock, not earlier"
    );
}

#[test]
fn wall_steps_move_neither_heartbeat_nor_sustained_deadlines() {
    for step in [-(HOUR as i64), HOUR as i64] {
        let hb = Box::new(Heartbeats::new(HeartbeatConfig {
            period_ms: 1000,
            grace_ms: 2000,
            sources: vec!["bot".into()],
            started_at_ms: WALL0,
        }));
        let mut sh = Shell::new(hb);
        let beat = InboundEvent {
            source: Some("bot".into()),
            ..InboundEvent::new(EventKind::Heartbeat)
        };
        sh.rules.on_event(&beat, sh.clock.mono);
        sh.clock
            .step_wall(sh.clock.wall.saturating_add_signed(step));
        let (after, _) = sh.run_until_halt(2 * HOUR).expect("halted");
        assert_eq!(
            after, 3000,
            "heartbeat stopped at period + grace (step {step})"
        );

        let host = Box::new(HostResource::new(HostResourceConfig {
            label: "CPU".into(),
            metric: "host.cpu_pct".into(),
            levels: Levels::critical(90.0),
            sustain_ms: 10_000,
        }));
        let mut sh = Shell::new(host);
        let hot = || {
            EventKind::Metric(Metric {
                name: "host.cpu_pct".into(),
                value: 95.0,
            })
        };
        assert_eq!(sh.event(hot()), None);
        sh.clock
            .step_wall(sh.clock.wall.saturating_add_signed(step));
        sh.clock.advance(4000);
        assert_eq!(sh.event(hot()), None);
        let (after, _) = sh.run_until_halt(2 * HOUR).expect("halted");
        assert_eq!(
            after, 6000,
            "sustained 10 s from the first hot sample (step {step})"
        );
    }
}
