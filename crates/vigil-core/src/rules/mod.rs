//! Checks and risk rules: small state machines fed events with the receive time.
//!
//! Each rule implements [`Rule`]: [`Rule::on_event`] takes an [`InboundEvent`] and its
//! receive time `now_ms`; [`Rule::status`] gives its [`CheckStatus`] at a time;
//! [`Rule::next_deadline`] tells the shell the one instant at which the status may change
//! with no new input, so it can arm one timer exactly there (no scanning).
//!
//! **Every time here is on vigil's monotonic clock** ([`Mono`]): [`RuleSet`] takes and
//! returns [`Mono`], and the plain [`Millis`] a rule sees are its readings, so a step of the
//! wall clock can neither delay nor hasten a deadline (freshness, heartbeats, sustained
//! thresholds, windows). An event's own `ts` (the bot's clock) is never used for timing:
//! staleness is measured from vigil's receipt of the event.
//!
//! Conventions, the same for every rule:
//! - A value **at** a threshold breaches it (`>=`): a deadline fires exactly at
//!   `last + threshold`.
//! - A rule whose inputs never arrived reports [`Status::Unknown`], never `Ok`. The one
//!   exception is [`ApiErrors`], whose measurement is the number of errors (zero is a
//!   measurement).
//! - `Unknown` never clears a trading-state trigger ([`StatusChange::apply`]).
//!
//! [`RuleSet`] holds the configured rules with their ids and actions, feeds them, reports
//! status changes and the earliest deadline, and [`StatusChange::apply`] turns a change
//! into a latch trip or clear.

mod api_errors;
#[cfg(test)]
mod clock_steps;
mod cycles;
mod daily_loss;
mod drawdown;
mod freshness;
mod heartbeat;
mod host;
mod losses;
mod probe;
pub mod reload;
mod volatility;

pub use api_errors::{ApiErrors, ApiErrorsConfig};
pub use cycles::{CycleStats, Cycles, CyclesConfig, percentile};
pub use daily_loss::{DAY_MS, DailyBasis, DailyLoss, day_start, next_reset, parse_time_of_day};
pub use drawdown::Drawdown;
pub use freshness::{Freshness, FreshnessConfig};
pub use heartbeat::{BeatState, HeartbeatConfig, Heartbeats};
pub use host::{HostResource, HostResourceConfig};
pub use losses::ConsecutiveLosses;
pub use probe::{ProbeHealth, ProbeOutcome};
pub use volatility::{Reference, Volatility, VolatilityConfig};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Mono;
use crate::event::InboundEvent;
use crate::trading::{Latch, Severity, Source, Transition, Trigger, Values};

/// Milliseconds on vigil's monotonic clock (a [`Mono`] reading, unwrapped for the rules).
pub type Millis = u64;

/// A check's status. The order is the severity used to combine parts of one rule
/// (`Ok < Unknown < Warn < Critical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Warn,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule says now: the `check` event's payload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckStatus {
    pub status: Status,
    pub value: Option<f64>,
    /// The threshold the value is judged against: the warn level when warning, otherwise
    /// the critical one.
    pub threshold: Option<f64>,
    pub message: String,
    /// The pair or source that decided the status, for rules that track several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl CheckStatus {
    pub fn unknown(message: impl Into<String>) -> Self {
        CheckStatus {
            status: Status::Unknown,
            value: None,
            threshold: None,
            message: message.into(),
            subject: None,
        }
    }

    pub fn new(
        status: Status,
        value: Option<f64>,
        threshold: Option<f64>,
        message: String,
    ) -> Self {
        CheckStatus {
            status,
            value,
            threshold,
            message,
            subject: None,
        }
    }

    fn about(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// The values recorded with a trading-state transition.
    pub fn values(&self) -> Values {
        let mut v = Values::new();
        v.insert("status".into(), Value::from(self.status.as_str()));
        if let Some(x) = self.value {
            v.insert("value".into(), Value::from(x));
        }
        if let Some(x) = self.threshold {
            v.insert("threshold".into(), Value::from(x));
        }
        if let Some(s) = &self.subject {
            v.insert("subject".into(), Value::from(s.as_str()));
        }
        v
    }
}

/// Warn and critical levels for a value where higher is worse.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Levels {
    pub warn: Option<f64>,
    pub critical: Option<f64>,
}

impl Levels {
    pub fn critical(critical: f64) -> Self {
        Levels {
            warn: None,
            critical: Some(critical),
        }
    }

    pub fn new(warn: f64, critical: f64) -> Self {
        Levels {
            warn: Some(warn),
            critical: Some(critical),
        }
    }

    /// `(status, threshold)` for `v`: critical at or above `critical`, warn at or above
    /// `warn`, otherwise ok (the threshold shown is then the critical one, or the warn one
    /// when there is no critical level).
    pub fn judge(&self, v: f64) -> (Status, Option<f64>) {
        match (self.warn, self.critical) {
            (_, Some(c)) if v >= c => (Status::Critical, Some(c)),
            (Some(w), _) if v >= w => (Status::Warn, Some(w)),
            (w, c) => (Status::Ok, c.or(w)),
        }
    }
}

/// Formats a number for messages without noise (`10`, `12.5`, `0.333`).
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_owned()
    }
}

/// The earliest of `candidates` strictly after `after` (or any, if `after` is `None`).
pub(crate) fn earliest_after(
    after: Option<Millis>,
    candidates: impl IntoIterator<Item = Millis>,
) -> Option<Millis> {
    candidates
        .into_iter()
        .filter(|&d| after.is_none_or(|a| d > a))
        .min()
}

/// A rule or check. Object safe, so a [`RuleSet`] can hold any mix.
pub trait Rule: Send + std::fmt::Debug {
    /// Feeds one event received at `now_ms`. Returns whether it was an input of this rule
    /// (so the caller knows to re-evaluate it).
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool;

    /// Feeds one probe result (only [`ProbeHealth`] uses it).
    fn on_probe(&mut self, _outcome: &ProbeOutcome, _now_ms: Millis) -> bool {
        false
    }

    /// The status at `now_ms` (advancing windows and day boundaries up to it).
    fn status(&mut self, now_ms: Millis) -> CheckStatus;

    /// The earliest instant after the last [`Rule::status`] call at which the status may
    /// change without new input; `None` if only input can change it.
    fn next_deadline(&self) -> Option<Millis>;
}

/// What a critical result does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Alert only.
    Warn,
    /// Trip the latch to REDUCING.
    Reduce,
    /// Trip the latch to HALTED.
    #[default]
    Halt,
}

impl Action {
    pub fn severity(self) -> Option<Severity> {
        match self {
            Action::Warn => None,
            Action::Reduce => Some(Severity::Reduce),
            Action::Halt => Some(Severity::Halt),
        }
    }
}

/// How a rule is wired: its id (as a [`Source`]), action and options.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// `rule:<id>` or `check:<id>`.
    pub source: Source,
    pub action: Action,
    /// Opt-in auto-resume for this trigger (see [`Latch`]).
    pub auto_resume_after_ms: Option<Millis>,
    /// Only events whose `source` equals this feed the rule (`None`: every event).
    pub event_source: Option<String>,
}

impl RuleSpec {
    pub fn new(source: Source, action: Action) -> Self {
        RuleSpec {
            source,
            action,
            auto_resume_after_ms: None,
            event_source: None,
        }
    }
}

/// A rule's status changed (`previous` → `current.status`).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    pub source: Source,
    pub action: Action,
    pub auto_resume_after_ms: Option<Millis>,
    pub previous: Status,
    pub current: CheckStatus,
}

impl StatusChange {
    /// Applies the change to the latch: critical trips it per the action; a measured
    /// ok or warn clears the condition; unknown changes nothing. `wall_ms` is the wall-clock
    /// Unix time the latch records (the latch's times are timestamps, see [`Latch`]).
    pub fn apply(&self, latch: &mut Latch, wall_ms: u64) -> Option<Transition> {
        match self.current.status {
            Status::Critical => {
                let severity = self.action.severity()?;
                let trigger = Trigger {
                    values: self.current.values(),
                    auto_resume_after_ms: self.auto_resume_after_ms,
                    ..Trigger::new(self.source.clone(), self.current.message.clone())
                };
                latch.trip(severity, trigger, wall_ms)
            }
            Status::Ok | Status::Warn => latch.clear(&self.source, wall_ms),
            Status::Unknown => None,
        }
    }
}

#[derive(Debug)]
struct Entry {
    spec: RuleSpec,
    rule: Box<dyn Rule>,
    last: CheckStatus,
}

/// The configured rules, fed together.
#[derive(Debug, Default)]
pub struct RuleSet {
    entries: Vec<Entry>,
}

impl RuleSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule, evaluated once at `now`; returns its initial status.
    pub fn add(&mut self, spec: RuleSpec, mut rule: Box<dyn Rule>, now: Mono) -> CheckStatus {
        let last = rule.status(now.0);
        self.entries.push(Entry {
            spec,
            rule,
            last: last.clone(),
        });
        last
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evaluate(e: &mut Entry, now_ms: Millis, out: &mut Vec<StatusChange>) {
        let current = e.rule.status(now_ms);
        let previous = e.last.status;
        if previous != current.status {
            out.push(StatusChange {
                source: e.spec.source.clone(),
                action: e.spec.action,
                auto_resume_after_ms: e.spec.auto_resume_after_ms,
                previous,
                current: current.clone(),
            });
        }
        e.last = current;
    }

    /// Feeds an event to every rule it concerns; returns the status changes.
    pub fn on_event(&mut self, ev: &InboundEvent, now: Mono) -> Vec<StatusChange> {
        let now_ms = now.0;
        let mut out = Vec::new();
        for e in &mut self.entries {
            if let Some(want) = &e.spec.event_source
                && ev.source.as_deref() != Some(want.as_str())
            {
                continue;
            }
            if e.rule.on_event(ev, now_ms) {
                Self::evaluate(e, now_ms, &mut out);
            }
        }
        out
    }

    /// Feeds a probe result to the rule `source`.
    pub fn on_probe(
        &mut self,
        source: &Source,
        outcome: &ProbeOutcome,
        now: Mono,
    ) -> Vec<StatusChange> {
        let now_ms = now.0;
        let mut out = Vec::new();
        for e in self.entries.iter_mut().filter(|e| &e.spec.source == source) {
            if e.rule.on_probe(outcome, now_ms) {
                Self::evaluate(e, now_ms, &mut out);
            }
        }
        out
    }

    /// Re-evaluates the rules whose deadline has come; returns the status changes.
    pub fn on_timer(&mut self, now: Mono) -> Vec<StatusChange> {
        let now_ms = now.0;
        let mut out = Vec::new();
        for e in &mut self.entries {
            if e.rule.next_deadline().is_some_and(|d| d <= now_ms) {
                Self::evaluate(e, now_ms, &mut out);
            }
        }
        out
    }

    /// The earliest deadline of all rules: the one timer the shell arms.
    pub fn next_deadline(&self) -> Option<Mono> {
        self.entries
            .iter()
            .filter_map(|e| e.rule.next_deadline())
            .min()
            .map(Mono)
    }

    /// Every rule with its latest status (for `GET /api/checks`).
    pub fn statuses(&self) -> impl Iterator<Item = (&RuleSpec, &CheckStatus)> {
        self.entries.iter().map(|e| (&e.spec, &e.last))
    }

    pub fn status_of(&self, source: &Source) -> Option<&CheckStatus> {
        self.entries
            .iter()
            .find(|e| &e.spec.source == source)
            .map(|e| &e.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Tick};
    use crate::trading::TradingState;

    #[test]
    fn levels_judge_at_the_threshold() {
        let l = Levels::new(5.0, 10.0);
        let cases = [
            (4.99, Status::Ok, Some(10.0)),
            (5.0, Status::Warn, Some(5.0)),
            (9.99, Status::Warn, Some(5.0)),
            (10.0, Status::Critical, Some(10.0)),
            (11.0, Status::Critical, Some(10.0)),
        ];
        for (v, s, t) in cases {
            assert_eq!(l.judge(v), (s, t), "{v}");
        }
        assert_eq!(Levels::critical(3.0).judge(2.0), (Status::Ok, Some(3.0)));
        let warn_only = Levels {
            warn: Some(1.0),
            critical: None,
        };
        assert_eq!(warn_only.judge(100.0), (Status::Warn, Some(1.0)));
        assert_eq!(warn_only.judge(0.0), (Status::Ok, Some(1.0)));
    }

    #[test]
    fn status_order_and_names() {
        assert!(Status::Ok < Status::Unknown);
        assert!(Status::Unknown < Status::Warn);
        assert!(Status::Warn < Status::Critical);
        assert_eq!(serde_json::to_value(Status::Critical).unwrap(), "critical");
        assert_eq!(num(10.0), "10");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(1.0 / 3.0), "0.333");
    }

    fn tick(pair: &str, price: f64) -> InboundEvent {
        InboundEvent::new(EventKind::Tick(Tick {
            pair: pair.into(),
            price,
            bid: None,
            ask: None,
        }))
    }

    /// The whole chain: a feed goes stale → the deadline fires → HALTED from check:feed;
    /// the feed comes back → the condition clears → a resume is accepted.
    #[test]
    fn ruleset_deadline_to_latch() {
        let mut set = RuleSet::new();
        let feed = Source::Check("feed".into());
        let cfg = FreshnessConfig {
            threshold_ms: 2000,
            warn_ms: None,
            pairs: vec!["BTC/USD".into()],
            grace_ms: 5000,
            started_at_ms: 0,
        };
        let first = set.add(
            RuleSpec::new(feed.clone(), Action::Halt),
            Box::new(Freshness::new(cfg)),
            Mono(0),
        );
        assert_eq!(first.status, Status::Unknown);
        let mut latch = Latch::new();
        let changes = set.on_event(&tick("BTC/USD", 100.0), Mono(1000));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].current.status, Status::Ok);
        assert_eq!(changes[0].apply(&mut latch, 1000), None);
        assert_eq!(set.next_deadline(), Some(Mono(3000)));
        assert!(set.on_timer(Mono(2999)).is_empty());
        let changes = set.on_timer(Mono(3000));
        assert_eq!(changes.len(), 1);
        let t = changes[0].apply(&mut latch, 3000).unwrap();
        assert_eq!(t.to, TradingState::Halted);
        assert_eq!(t.source.to_string(), "check:feed");
        assert_eq!(t.values["value"], Value::from(2000.0));
        assert_eq!(t.values["subject"], Value::from("BTC/USD"));
        assert!(
            latch
                .resume(crate::trading::Resume::operator("a", "x", false), 3001)
                .is_err()
        );
        // event-source filter: a tick from another bot does not count
        let mut other = tick("BTC/USD", 100.0);
        other.source = Some("bot-b".into());
        let mut set2 = RuleSet::new();
        set2.add(
            RuleSpec {
                event_source: Some("bot-a".into()),
                ..RuleSpec::new(feed.clone(), Action::Halt)
            },
            Box::new(Freshness::new(FreshnessConfig {
                started_at_ms: 0,
                ..FreshnessConfig::new(1000, vec!["BTC/USD".into()], 0)
            })),
            Mono(0),
        );
        assert!(set2.on_event(&other, Mono(10)).is_empty());
        // recovery
        let changes = set.on_event(&tick("BTC/USD", 100.0), Mono(3500));
        assert_eq!(changes[0].current.status, Status::Ok);
        changes[0].apply(&mut latch, 3500);
        assert!(
            latch
                .resume(crate::trading::Resume::operator("a", "x", false), 3501)
                .is_ok()
        );
        assert_eq!(set.statuses().count(), 1);
        assert_eq!(set.status_of(&feed).map(|s| s.status), Some(Status::Ok));
    }

    #[test]
    fn unknown_and_warn_actions() {
        let mut latch = Latch::new();
        let src = Source::Rule("x".into());
        let mk = |status, action| StatusChange {
            source: src.clone(),
            action,
            auto_resume_after_ms: None,
            previous: Status::Ok,
            current: CheckStatus::new(status, Some(1.0), Some(1.0), "m".into()),
        };
        assert_eq!(
            mk(Status::Critical, Action::Warn).apply(&mut latch, 0),
            None
        );
        assert_eq!(latch.state(), TradingState::Active);
        let t = mk(Status::Critical, Action::Reduce)
            .apply(&mut latch, 1)
            .unwrap();
        assert_eq!(t.to, TradingState::Reducing);
        assert_eq!(
            mk(Status::Unknown, Action::Reduce).apply(&mut latch, 2),
            None
        );
        assert!(latch.is_holding(&src), "unknown never clears");
        mk(Status::Warn, Action::Reduce).apply(&mut latch, 3);
        assert!(
            !latch.is_holding(&src),
            "a measured warn is below critical: cleared"
        );
        assert_eq!(
            latch.state(),
            TradingState::Reducing,
            "but still needs a resume"
        );
    }
}
