//! The trading state (ACTIVE / REDUCING / HALTED) and its latch.
//!
//! Exactly one writer: the monitor actor owns the one [`Latch`] and is the only code that
//! calls its `&mut self` methods. Every change comes back as a [`Transition`] (from, to,
//! reason, source, actor, the values that crossed the limit, time) which the shell must
//! persist (SQLite + `data_dir/trading_state`) **before** announcing it.
//!
//! # The model
//!
//! The latch keeps a list of [triggers](TriggerEntry), one per [`Source`]. A trigger is
//! *unresolved* while it still keeps trading restricted, and — for sources that are
//! conditions (rules, checks, programs) — *holds* while its condition is in breach. The
//! state is always the most severe unresolved trigger (HALTED over REDUCING), or ACTIVE
//! when none is unresolved. From that one invariant:
//!
//! - **HALTED dominates REDUCING**: a reduce while halted changes nothing; a halt while
//!   reducing escalates.
//! - A trigger is resolved only by [`Latch::resume`] (operator, needs a reason, refused
//!   while an unresolved condition still holds unless forced) or by its own opt-in
//!   auto-resume: `auto_resume_after_ms` set **and** the condition reported clear (with
//!   data) **and** it stayed clear for that long. The cooldown counts from the moment it
//!   cleared, so a flapping condition never auto-resumes. Operator and cluster halts
//!   never auto-resume.
//! - [`Latch::clear`] is called only when a rule *measured* an OK value; a rule with no
//!   data reports `unknown`, and unknown never clears anything.
//! - Reports are level-triggered: tripping a condition that already holds is not a new
//!   breach. After a forced resume the still-holding condition stays *acknowledged*: it
//!   trips again only after it has cleared and breached anew.
//! - [`Latch::restore`] fails closed: an unreadable or unknown persisted state gives
//!   HALTED, and a persisted HALTED/REDUCING survives the restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Side;

/// Unix milliseconds.
pub type Millis = u64;

/// The values that crossed a limit, recorded with a transition.
pub type Values = BTreeMap<String, Value>;

/// The trading state, as nautilus_trader names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradingState {
    Active,
    Reducing,
    Halted,
}

impl TradingState {
    pub const ALL: [TradingState; 3] = [
        TradingState::Active,
        TradingState::Reducing,
        TradingState::Halted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TradingState::Active => "ACTIVE",
            TradingState::Reducing => "REDUCING",
            TradingState::Halted => "HALTED",
        }
    }

    /// Case-insensitive, surrounding whitespace ignored.
    pub fn parse(s: &str) -> Option<TradingState> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    fn of(severity: Option<Severity>) -> TradingState {
        match severity {
            None => TradingState::Active,
            Some(Severity::Reduce) => TradingState::Reducing,
            Some(Severity::Halt) => TradingState::Halted,
        }
    }

    fn severity(self) -> Option<Severity> {
        match self {
            TradingState::Active => None,
            TradingState::Reducing => Some(Severity::Reduce),
            TradingState::Halted => Some(Severity::Halt),
        }
    }
}

impl std::fmt::Display for TradingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a trip asks for. `Halt` is more severe than `Reduce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Reduce,
    Halt,
}

/// Who or what caused a transition; rendered `rule:<id>`, `check:<id>`, `program:<name>`,
/// `operator:<user>`, `cluster:<host>`, `system:<what>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Rule(String),
    Check(String),
    Program(String),
    Operator(String),
    Cluster(String),
    /// vigil itself (e.g. `system:startup` when the persisted state was unreadable).
    System(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Rule(_) => "rule",
            Source::Check(_) => "check",
            Source::Program(_) => "program",
            Source::Operator(_) => "operator",
            Source::Cluster(_) => "cluster",
            Source::System(_) => "system",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Source::Rule(s)
            | Source::Check(s)
            | Source::Program(s)
            | Source::Operator(s)
            | Source::Cluster(s)
            | Source::System(s) => s,
        }
    }

    /// Rules, checks and programs are conditions: they hold until reported clear, and a
    /// resume is refused while they do. Operator, cluster and system trips are decisions:
    /// they stay until resumed.
    pub fn is_condition(&self) -> bool {
        matches!(
            self,
            Source::Rule(_) | Source::Check(_) | Source::Program(_)
        )
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid source {0:?}: expected rule:|check:|program:|operator:|cluster:|system: followed by a name"
)]
pub struct SourceError(pub String);

impl std::str::FromStr for Source {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or_else(|| SourceError(s.into()))?;
        if id.is_empty() {
            return Err(SourceError(s.into()));
        }
        let id = id.to_owned();
        Ok(match kind {
            "rule" => Source::Rule(id),
            "check" => Source::Check(id),
            "program" => Source::Program(id),
            "operator" => Source::Operator(id),
            "cluster" => Source::Cluster(id),
            "system" => Source::System(id),
            _ => return Err(SourceError(s.into())),
        })
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why the latch is asked to trip.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub source: Source,
    pub reason: String,
    /// Who acted: the operator's user name, or `vigil` for rules and checks.
    pub actor: String,
    pub values: Values,
    /// Opt-in auto-resume: once the condition has been clear for this long. Ignored for
    /// sources that are not conditions.
    pub auto_resume_after_ms: Option<Millis>,
}

impl Trigger {
    pub fn new(source: Source, reason: impl Into<String>) -> Self {
        Trigger {
            source,
            reason: reason.into(),
            actor: "vigil".into(),
            values: Values::new(),
            auto_resume_after_ms: None,
        }
    }

    /// A manual halt or reduce by `user`.
    pub fn operator(user: &str, reason: impl Into<String>) -> Self {
        Trigger {
            actor: user.into(),
            ..Trigger::new(Source::Operator(user.into()), reason)
        }
    }
}

/// A recorded state change: the `trading_state` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: TradingState,
    pub to: TradingState,
    pub reason: String,
    pub source: Source,
    pub actor: String,
    pub values: Values,
    pub at_ms: Millis,
}

/// One trigger known to the latch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerEntry {
    pub source: Source,
    pub severity: Severity,
    pub reason: String,
    pub actor: String,
    pub values: Values,
    /// When this breach (or decision) began.
    pub since_ms: Millis,
    /// The condition is currently in breach (always false for non-conditions).
    pub holds: bool,
    /// Still keeping trading restricted (not yet resumed or auto-resumed).
    pub unresolved: bool,
    /// When the condition was last reported clear, if it is clear.
    pub cleared_at_ms: Option<Millis>,
    pub auto_resume_after_ms: Option<Millis>,
}

impl TriggerEntry {
    /// When this trigger auto-resolves, if it can and its condition is clear.
    pub fn auto_resume_at(&self) -> Option<Millis> {
        if !self.unresolved || self.holds || !self.source.is_condition() {
            return None;
        }
        Some(
            self.cleared_at_ms?
                .saturating_add(self.auto_resume_after_ms?),
        )
    }
}

/// A resume request.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    /// Normally `Source::Operator(user)`; `Source::Cluster(host)` for a peer's resume.
    pub source: Source,
    pub actor: String,
    pub reason: String,
    pub force: bool,
}

impl Resume {
    pub fn operator(user: &str, reason: impl Into<String>, force: bool) -> Self {
        Resume {
            source: Source::Operator(user.into()),
            actor: user.into(),
            reason: reason.into(),
            force,
        }
    }
}

/// A condition that blocks an unforced resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub source: Source,
    pub reason: String,
    pub since_ms: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("a reason is required to resume trading")]
    ReasonRequired,
    #[error("trading is already ACTIVE")]
    AlreadyActive,
    #[error("refused: the triggering condition still holds ({}); resume with force to override", list(.holding))]
    ConditionsHold { holding: Vec<Holding> },
}

fn list(h: &[Holding]) -> String {
    h.iter()
        .map(|h| format!("{}: {}", h.source, h.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The trading-state latch. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latch {
    state: TradingState,
    triggers: Vec<TriggerEntry>,
    last: Option<Transition>,
}

impl Default for Latch {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Latch::restore`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub latch: Latch,
    /// A transition to record, when restoring changed the state (fail closed).
    pub transition: Option<Transition>,
}

impl Latch {
    /// A fresh latch: ACTIVE, no triggers.
    pub fn new() -> Self {
        Latch {
            state: TradingState::Active,
            triggers: Vec::new(),
            last: None,
        }
    }

    pub fn state(&self) -> TradingState {
        self.state
    }

    pub fn triggers(&self) -> &[TriggerEntry] {
        &self.triggers
    }

    pub fn last_transition(&self) -> Option<&Transition> {
        self.last.as_ref()
    }

    /// Unresolved conditions that still hold: what an unforced resume is refused for.
    pub fn holding(&self) -> Vec<Holding> {
        self.triggers
            .iter()
            .filter(|e| e.holds && e.unresolved)
            .map(|e| Holding {
                source: e.source.clone(),
                reason: e.reason.clone(),
                since_ms: e.since_ms,
            })
            .collect()
    }

    /// Whether `source` is currently in breach (as last reported).
    pub fn is_holding(&self, source: &Source) -> bool {
        self.find(source).is_some_and(|e| e.holds)
    }

    fn find(&self, source: &Source) -> Option<&TriggerEntry> {
        self.triggers.iter().find(|e| &e.source == source)
    }

    fn derived(&self) -> TradingState {
        TradingState::of(
            self.triggers
                .iter()
                .filter(|e| e.unresolved)
                .map(|e| e.severity)
                .max(),
        )
    }

    fn prune(&mut self) {
        self.triggers.retain(|e| e.unresolved || e.holds);
    }

    /// Moves to the derived state; the transition when it changed.
    fn settle(
        &mut self,
        source: Source,
        reason: String,
        actor: String,
        values: Values,
        now: Millis,
    ) -> Option<Transition> {
        self.prune();
        let to = self.derived();
        if to == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to,
            reason,
            source,
            actor,
            values,
            at_ms: now,
        };
        self.state = to;
        self.last = Some(t.clone());
        Some(t)
    }

    /// Trips the latch: HALT or REDUCE for `trigger`. Never refused. Returns the
    /// transition when the state changed (a reduce while halted, or a repeat, changes
    /// nothing but is still recorded as a trigger).
    pub fn trip(
        &mut self,
        severity: Severity,
        trigger: Trigger,
        now_ms: Millis,
    ) -> Option<Transition> {
        let cond = trigger.source.is_condition();
        let reason = if trigger.reason.trim().is_empty() {
            "(no reason given)".to_owned()
        } else {
            trigger.reason
        };
        let auto = if cond {
            trigger.auto_resume_after_ms
        } else {
            None
        };
        match self
            .triggers
            .iter_mut()
            .find(|e| e.source == trigger.source)
        {
            Some(e) if cond && e.holds && !e.unresolved => {
                // Acknowledged by a forced resume and still holding: not a new breach.
                e.reason = reason;
                e.values = trigger.values;
                return None;
            }
            Some(e) => {
                // A new breach (or decision) begins unless this one is still going on.
                let new_breach = !e.unresolved || (cond && !e.holds);
                if new_breach {
                    e.since_ms = now_ms;
                }
                e.severity = if e.unresolved {
                    e.severity.max(severity)
                } else {
                    severity
                };
                e.unresolved = true;
                e.holds = cond;
                e.cleared_at_ms = None;
                e.reason = reason.clone();
                e.actor = trigger.actor.clone();
                e.values = trigger.values.clone();
                e.auto_resume_after_ms = auto;
            }
            None => self.triggers.push(TriggerEntry {
                source: trigger.source.clone(),
                severity,
                reason: reason.clone(),
                actor: trigger.actor.clone(),
                values: trigger.values.clone(),
                since_ms: now_ms,
                holds: cond,
                unresolved: true,
                cleared_at_ms: None,
                auto_resume_after_ms: auto,
            }),
        }
        self.settle(
            trigger.source,
            reason,
            trigger.actor,
            trigger.values,
            now_ms,
        )
    }

    /// A condition was *measured* clear (never call this for missing data). May
    /// auto-resume at once when the trigger's cooldown is 0.
    pub fn clear(&mut self, source: &Source, now_ms: Millis) -> Option<Transition> {
        if let Some(e) = self.triggers.iter_mut().find(|e| &e.source == source)
            && e.holds
        {
            e.holds = false;
            e.cleared_at_ms = Some(now_ms);
        }
        self.prune();
        self.on_timer(now_ms)
    }

    /// The condition `source` is gone (its rule was removed from the configuration): it no
    /// longer holds, as after a [`Latch::clear`], but nothing else changes — the state stays
    /// as it is and the trigger will not auto-resume (a configuration reload never undoes a
    /// halt; an operator resumes, now unhindered by it). Returns whether it was holding.
    pub fn release(&mut self, source: &Source, now_ms: Millis) -> bool {
        let Some(e) = self.triggers.iter_mut().find(|e| &e.source == source) else {
            return false;
        };
        let held = e.holds;
        if held {
            e.holds = false;
            e.cleared_at_ms = Some(now_ms);
        }
        e.auto_resume_after_ms = None;
        self.prune();
        held
    }

    /// When [`Latch::on_timer`] must next run (an auto-resume cooldown ending).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.triggers
            .iter()
            .filter_map(|e| e.auto_resume_at())
            .min()
    }

    /// Resolves the triggers whose auto-resume is due; the transition when the state
    /// changed (HALTED → REDUCING is possible when a reduce trigger is left).
    pub fn on_timer(&mut self, now_ms: Millis) -> Option<Transition> {
        let mut last: Option<(Source, Millis, Millis)> = None;
        for e in &mut self.triggers {
            if let Some(at) = e.auto_resume_at()
                && now_ms >= at
            {
                e.unresolved = false;
                let cooldown = e.auto_resume_after_ms.unwrap_or(0);
                if last.as_ref().is_none_or(|(_, a, _)| at >= *a) {
                    last = Some((e.source.clone(), at, cooldown));
                }
            }
        }
        let (source, _, cooldown) = last?;
        let cleared = self
            .find(&source)
            .and_then(|e| e.cleared_at_ms)
            .unwrap_or(now_ms);
        let mut values = Values::new();
        values.insert("cleared_at_ms".into(), Value::from(cleared));
        values.insert("cooldown_ms".into(), Value::from(cooldown));
        let reason = format!("auto-resume: {source} clear for {cooldown} ms");
        self.settle(source, reason, "vigil".into(), values, now_ms)
    }

    /// An operator (or peer) resume to ACTIVE. Needs a reason; refused while an
    /// unresolved condition still holds unless `force`. Forced-over conditions stay
    /// acknowledged (see the module docs).
    pub fn resume(&mut self, req: Resume, now_ms: Millis) -> Result<Transition, ResumeError> {
        if req.reason.trim().is_empty() {
            return Err(ResumeError::ReasonRequired);
        }
        if self.state == TradingState::Active {
            return Err(ResumeError::AlreadyActive);
        }
        let holding = self.holding();
        if !holding.is_empty() && !req.force {
            return Err(ResumeError::ConditionsHold { holding });
        }
        for e in &mut self.triggers {
            e.unresolved = false;
        }
        let mut values = Values::new();
        if req.force {
            values.insert("forced".into(), Value::Bool(true));
            values.insert(
                "overridden".into(),
                Value::from(
                    holding
                        .iter()
                        .map(|h| h.source.to_string())
                        .collect::<Vec<_>>(),
                ),
            );
        }
        // The derived state is ACTIVE now, so settle always yields a transition.
        self.settle(
            req.source.clone(),
            req.reason.clone(),
            req.actor.clone(),
            values,
            now_ms,
        )
        .ok_or(ResumeError::AlreadyActive)
    }

    /// The persisted form (JSON), for the shell to write. [`Latch::restore`] reads it back.
    pub fn to_persisted(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A latch HALTED because the persisted state could not be trusted.
    pub fn fail_closed(detail: &str, now_ms: Millis) -> Restored {
        let mut latch = Latch::new();
        let mut values = Values::new();
        values.insert("detail".into(), Value::from(detail));
        let trigger = Trigger {
            values,
            ..Trigger::new(
                Source::System("startup".into()),
                format!("persisted trading state unreadable ({detail}); failing closed"),
            )
        };
        let transition = latch.trip(Severity::Halt, trigger, now_ms);
        Restored { latch, transition }
    }

    /// Rebuilds the latch at start-up from what was persisted.
    ///
    /// - `None`: nothing was ever persisted (a fresh `data_dir`) → ACTIVE. The shell must
    ///   pass `Some(..)` whenever a state file or row exists, even empty or unreadable
    ///   (pass `Some("")` when reading it failed).
    /// - A bare state name (`HALTED`, case-insensitive) or a JSON object with a `state`
    ///   field → that state, kept by a `system:restart` trigger that only a resume clears.
    /// - A full [`Latch::to_persisted`] snapshot → the latch as it was, its triggers and
    ///   their holding conditions included. If its state and triggers disagree, the more
    ///   restrictive wins.
    /// - Anything else → HALTED, with a transition from `system:startup` to record.
    pub fn restore(persisted: Option<&str>, now_ms: Millis) -> Restored {
        let Some(text) = persisted else {
            return Restored {
                latch: Latch::new(),
                transition: None,
            };
        };
        let text = text.trim();
        if text.is_empty() {
            return Self::fail_closed("empty", now_ms);
        }
        if let Some(state) = TradingState::parse(text) {
            return Restored {
                latch: Self::kept(state, Vec::new(), None, now_ms),
                transition: None,
            };
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Self::fail_closed(&format!("not a state name or JSON: {e}"), now_ms),
        };
        if let Ok(latch) = serde_json::from_value::<Latch>(value.clone()) {
            let stated = latch.state;
            let mut kept = Self::kept(stated, latch.triggers, latch.last, now_ms);
            let derived = kept.derived();
            if derived > kept.state {
                // Triggers say more restrictive than the stored state: believe them.
                let t = Transition {
                    from: kept.state,
                    to: derived,
                    reason: "persisted triggers are more restrictive than the persisted state"
                        .into(),
                    source: Source::System("restore".into()),
                    actor: "vigil".into(),
                    values: Values::new(),
                    at_ms: now_ms,
                };
                kept.state = derived;
                kept.last = Some(t.clone());
                return Restored {
                    latch: kept,
                    transition: Some(t),
                };
            }
            return Restored {
                latch: kept,
                transition: None,
            };
        }
        match value
            .get("state")
            .and_then(Value::as_str)
            .and_then(TradingState::parse)
        {
            Some(state) => Restored {
                latch: Self::kept(state, Vec::new(), None, now_ms),
                transition: None,
            },
            None => Self::fail_closed("no recognisable state", now_ms),
        }
    }

    /// Restores from the state record (`record`; `None` when there is none) and checks the
    /// state file that trading processes read (`file`; `None` when it is missing, `Some("")`
    /// when it could not be read). Without a record the file is what was persisted (a
    /// `data_dir` from before the record). With one, the file must agree with it: missing,
    /// unreadable or naming another state, vigil starts HALTED with a `system:restore`
    /// trigger whose reason names the disagreement (the shell then rewrites the file).
    pub fn restore_checked(record: Option<&str>, file: Option<&str>, now_ms: Millis) -> Restored {
        let Some(record) = record else {
            return Self::restore(file, now_ms);
        };
        let mut restored = Self::restore(Some(record), now_ms);
        let stated = restored
            .transition
            .as_ref()
            .map_or(restored.latch.state, |t| t.from);
        let said = match file {
            None => Err("is missing".to_string()),
            Some(text) => {
                let text = text.trim();
                TradingState::parse(text)
                    .or_else(|| {
                        serde_json::from_str::<Value>(text).ok().and_then(|v| {
                            v.get("state")
                                .and_then(Value::as_str)
                                .and_then(TradingState::parse)
                        })
                    })
                    .ok_or_else(|| "is unreadable".to_string())
            }
        };
        let disagreement = match said {
            Ok(s) if s == stated => return restored,
            Ok(s) => format!("says {s}"),
            Err(e) => e,
        };
        let mut values = Values::new();
        values.insert("state_file".into(), Value::from(disagreement.clone()));
        values.insert("state_record".into(), Value::from(stated.name()));
        let trigger = Trigger {
            values,
            ..Trigger::new(
                Source::System("restore".into()),
                format!(
                    "the trading state file {disagreement} but the state record says {stated}; failing closed"
                ),
            )
        };
        if let Some(t) = restored.latch.trip(Severity::Halt, trigger, now_ms) {
            restored.transition = Some(t);
        }
        restored
    }

    /// A latch in `state`, with a `system:restart` trigger added if nothing else keeps it.
    fn kept(
        state: TradingState,
        triggers: Vec<TriggerEntry>,
        last: Option<Transition>,
        now_ms: Millis,
    ) -> Latch {
        let mut latch = Latch {
            state,
            triggers,
            last,
        };
        latch.prune();
        if let Some(sev) = state.severity()
            && latch.derived().severity() < Some(sev)
        {
            latch.triggers.push(TriggerEntry {
                source: Source::System("restart".into()),
                severity: sev,
                reason: format!("{state} before vigil restarted"),
                actor: "vigil".into(),
                values: Values::new(),
                since_ms: now_ms,
                holds: false,
                unresolved: true,
                cleared_at_ms: None,
                auto_resume_after_ms: None,
            });
        }
        latch
    }
}

/// What happens to open positions on HALT (`maintain` | `close` (alias `liquidate`) |
/// `reduce_only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PositionBehaviour {
    #[default]
    Maintain,
    #[serde(alias = "liquidate")]
    Close,
    ReduceOnly,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid position behaviour {0:?}: expected maintain, close (or liquidate), reduce_only")]
pub struct PositionBehaviourError(pub String);

impl std::str::FromStr for PositionBehaviour {
    type Err = PositionBehaviourError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "maintain" => Ok(PositionBehaviour::Maintain),
            "close" | "liquidate" => Ok(PositionBehaviour::Close),
            "reduce_only" => Ok(PositionBehaviour::ReduceOnly),
            _ => Err(PositionBehaviourError(s.into())),
        }
    }
}

/// A `command` event vigil issues on HALT.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    CancelAllOrders,
    ClosePosition {
        pair: String,
        side: Side,
        qty: f64,
    },
    /// Tells trading processes they may only reduce the positions they hold.
    ReduceOnly,
}

/// The commands for entering HALTED, in order.
///
/// HALTED means no new orders, so resting orders are cancelled first whatever the
/// behaviour (an open order could still fill and change a position). Then:
/// - `maintain`: nothing more; positions stay as they are.
/// - `close`: one `close_position` per non-zero position (latest snapshot per pair, in
///   pair order): sell the quantity of a long, buy back the quantity of a short.
/// - `reduce_only`: a `reduce_only` marker; the trading processes reduce on their own.
pub fn halt_commands(
    behaviour: PositionBehaviour,
    positions: &BTreeMap<String, f64>,
) -> Vec<Command> {
    let mut out = vec![Command::CancelAllOrders];
    match behaviour {
        PositionBehaviour::Maintain => {}
        PositionBehaviour::ReduceOnly => out.push(Command::ReduceOnly),
        PositionBehaviour::Close => {
            for (pair, &qty) in positions {
                if qty == 0.0 || !qty.is_finite() {
                    continue;
                }
                out.push(Command::ClosePosition {
                    pair: pair.clone(),
                    side: if qty > 0.0 { Side::Sell } else { Side::Buy },
                    qty: qty.abs(),
                });
            }
        }
    }
    out
}

/// The commands a transition calls for: [`halt_commands`] on entering HALTED, nothing
/// otherwise (REDUCING is enforced by the trading processes reading the state).
pub fn commands_for(
    transition: &Transition,
    behaviour: PositionBehaviour,
    positions: &BTreeMap<String, f64>,
) -> Vec<Command> {
    if transition.to == TradingState::Halted && transition.from != TradingState::Halted {
        halt_commands(behaviour, positions)
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Severity::*;
    use super::TradingState::*;
    use super::*;
    use proptest::prelude::*;

    fn rule(id: &str) -> Source {
        Source::Rule(id.into())
    }

    fn trig(id: &str) -> Trigger {
        Trigger::new(rule(id), format!("{id} breached"))
    }

    fn auto(id: &str, ms: Millis) -> Trigger {
        Trigger {
            auto_resume_after_ms: Some(ms),
            ..trig(id)
        }
    }

    fn resume(force: bool) -> Resume {
        Resume::operator("alice", "checked", force)
    }

    #[test]
    fn restore_checked_fails_closed_on_any_disagreement_with_the_state_file() {
        let active = Latch::new().to_persisted().unwrap();
        let mut h = Latch::new();
        h.trip(Halt, trig("dd"), 1).unwrap();
        let halted = h.to_persisted().unwrap();
        let file = |s: &str| format!("{{\"state\":\"{s}\"}}");
        // Agreement: as recorded.
        let r = Latch::restore_checked(Some(&active), Some(&file("ACTIVE")), 5);
        assert_eq!((r.latch.state(), r.transition.is_none()), (Active, true));
        let r = Latch::restore_checked(Some(&halted), Some(&file("HALTED")), 5);
        assert_eq!((r.latch.state(), r.transition.is_none()), (Halted, true));
        // Forged, garbage, missing: HALTED, the reason names the disagreement.
        for (f, says) in [
            (Some(file("HALTED")), "says HALTED"),
            (Some("\u{0}garbage".to_string()), "is unreadable"),
            (Some(String::new()), "is unreadable"),
            (None, "is missing"),
        ] {
            let r = Latch::restore_checked(Some(&active), f.as_deref(), 5);
            assert_eq!(r.latch.state(), Halted, "{f:?}");
            let t = r.transition.expect("a transition to record");
            assert_eq!(t.source, Source::System("restore".into()));
            assert!(t.reason.contains(says), "{}", t.reason);
            assert!(
                t.reason.contains("state record says ACTIVE"),
                "{}",
                t.reason
            );
            assert!(!r.latch.holding().is_empty() || !r.latch.triggers().is_empty());
        }
        // A record saying HALTED is never weakened by a file saying ACTIVE.
        let r = Latch::restore_checked(Some(&halted), Some(&file("ACTIVE")), 5);
        assert_eq!(r.latch.state(), Halted);
        // Without a record the file is what was persisted (older data_dirs).
        let r = Latch::restore_checked(None, Some(&file("HALTED")), 5);
        assert_eq!(r.latch.state(), Halted);
        let r = Latch::restore_checked(None, None, 5);
        assert_eq!(r.latch.state(), Active);
    }

    #[test]
    fn sources_render_and_parse() {
        let cases = [
            (Source::Rule("dd".into()), "rule:dd"),
            (Source::Check("feed".into()), "check:feed"),
            (Source::Program("risk".into()), "program:risk"),
            (Source::Operator("alice".into()), "operator:alice"),
            (Source::Cluster("host-2".into()), "cluster:host-2"),
            (Source::System("startup".into()), "system:startup"),
        ];
        for (s, text) in cases {
            assert_eq!(s.to_string(), text);
            assert_eq!(text.parse::<Source>(), Ok(s.clone()));
            assert_eq!(serde_json::to_value(&s).unwrap(), Value::from(text));
        }
        for bad in ["rule", "rule:", "probe:x", ""] {
            assert!(bad.parse::<Source>().is_err(), "{bad}");
        }
        assert_eq!(TradingState::parse(" halted\n"), Some(Halted));
        assert_eq!(TradingState::parse("paused"), None);
    }

    #[test]
    fn trip_table() {
        // (initial trips, new severity, expected state, transition?)
        let cases: &[(&[Severity], Severity, TradingState, bool)] = &[
            (&[], Halt, Halted, true),
            (&[], Reduce, Reducing, true),
            (&[Reduce], Halt, Halted, true),  // escalate
            (&[Halt], Reduce, Halted, false), // halted dominates
            (&[Halt], Halt, Halted, false),   // repeat is a no-op
            (&[Reduce], Reduce, Reducing, false),
        ];
        for (before, sev, want, changed) in cases {
            let mut l = Latch::new();
            for (i, s) in before.iter().enumerate() {
                l.trip(*s, trig(&format!("r{i}")), 1);
            }
            let t = l.trip(*sev, trig("new"), 10);
            assert_eq!(l.state(), *want, "{before:?} + {sev:?}");
            assert_eq!(t.is_some(), *changed, "{before:?} + {sev:?}");
            if let Some(t) = t {
                assert_eq!(t.to, *want);
                assert_eq!(t.source, rule("new"));
                assert_eq!(t.actor, "vigil");
                assert_eq!(t.at_ms, 10);
                assert_eq!(l.last_transition(), Some(&t));
            }
        }
    }

    #[test]
    fn transition_carries_values_and_reason() {
        let mut l = Latch::new();
        let mut values = Values::new();
        values.insert("value".into(), Value::from(12.5));
        values.insert("threshold".into(), Value::from(10.0));
        let t = l
            .trip(
                Halt,
                Trigger {
                    values: values.clone(),
                    ..Trigger::new(rule("drawdown"), "drawdown 12.5% (limit 10%)")
                },
                1000,
            )
            .unwrap();
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({
                "from": "ACTIVE", "to": "HALTED", "reason": "drawdown 12.5% (limit 10%)",
                "source": "rule:drawdown", "actor": "vigil",
                "values": {"threshold": 10.0, "value": 12.5}, "at_ms": 1000
            })
        );
        // an empty reason never blocks a halt
        let mut l = Latch::new();
        let t = l.trip(Halt, Trigger::operator("bob", " "), 1).unwrap();
        assert_eq!(t.reason, "(no reason given)");
        assert_eq!(t.source.to_string(), "operator:bob");
        assert_eq!(t.actor, "bob");
    }

    #[test]
    fn resume_rules() {
        // refused without a reason, while a condition holds, or when already active
        let mut l = Latch::new();
        assert_eq!(l.resume(resume(false), 1), Err(ResumeError::AlreadyActive));
        l.trip(Halt, trig("dd"), 1);
        assert_eq!(
            l.resume(Resume::operator("a", "  ", true), 2),
            Err(ResumeError::ReasonRequired)
        );
        let Err(ResumeError::ConditionsHold { holding }) = l.resume(resume(false), 2) else {
            panic!()
        };
        assert_eq!(holding.len(), 1);
        assert_eq!(holding[0].source, rule("dd"));
        assert_eq!(l.state(), Halted);
        let msg = ResumeError::ConditionsHold { holding }.to_string();
        assert!(msg.contains("rule:dd: dd breached"), "{msg}");
        // cleared: resume works
        assert_eq!(l.clear(&rule("dd"), 5), None, "no auto-resume configured");
        assert_eq!(l.state(), Halted, "clearing alone never resumes");
        let t = l.resume(resume(false), 6).unwrap();
        assert_eq!((t.from, t.to), (Halted, Active));
        assert_eq!(t.source, Source::Operator("alice".into()));
        assert_eq!(t.reason, "checked");
        assert!(t.values.is_empty());
        assert!(l.triggers().is_empty());
    }

    #[test]
    fn operator_halt_resumes_without_conditions() {
        let mut l = Latch::new();
        l.trip(Reduce, Trigger::operator("bob", "news"), 1).unwrap();
        assert_eq!(l.state(), Reducing);
        assert!(l.holding().is_empty());
        // clearing an operator source is meaningless
        assert_eq!(l.clear(&Source::Operator("bob".into()), 2), None);
        assert_eq!(l.state(), Reducing);
        let t = l.resume(resume(false), 3).unwrap();
        assert_eq!((t.from, t.to), (Reducing, Active));
    }

    #[test]
    fn forced_resume_acknowledges_until_cleared() {
        let mut l = Latch::new();
        l.trip(Halt, trig("dd"), 1);
        let t = l.resume(resume(true), 2).unwrap();
        assert_eq!(t.to, Active);
        assert_eq!(t.values["forced"], Value::Bool(true));
        assert_eq!(t.values["overridden"], serde_json::json!(["rule:dd"]));
        // the same breach, reported again, does not re-trip
        assert_eq!(l.trip(Halt, trig("dd"), 3), None);
        assert_eq!(l.state(), Active);
        assert!(l.is_holding(&rule("dd")));
        // once cleared, a new breach trips again
        l.clear(&rule("dd"), 4);
        assert!(!l.is_holding(&rule("dd")));
        assert!(l.triggers().is_empty());
        assert_eq!(l.trip(Halt, trig("dd"), 5).map(|t| t.to), Some(Halted));
    }

    #[test]
    fn acknowledged_condition_does_not_block_a_later_resume() {
        let mut l = Latch::new();
        l.trip(Halt, trig("dd"), 1);
        l.resume(resume(true), 2).unwrap();
        l.trip(Halt, Trigger::operator("bob", "manual"), 3).unwrap();
        // dd still holds, but it did not cause this halt
        assert!(l.resume(resume(false), 4).is_ok());
    }

    #[test]
    fn auto_resume_after_cooldown_from_clear() {
        let mut l = Latch::new();
        l.trip(Halt, auto("vol", 300), 1000).unwrap();
        assert_eq!(l.next_deadline(), None, "not while it holds");
        assert_eq!(l.on_timer(10_000), None);
        l.clear(&rule("vol"), 2000);
        assert_eq!(l.next_deadline(), Some(2300));
        assert_eq!(l.on_timer(2299), None);
        assert_eq!(l.state(), Halted);
        let t = l.on_timer(2300).unwrap();
        assert_eq!((t.from, t.to), (Halted, Active));
        assert_eq!(t.source, rule("vol"));
        assert_eq!(t.actor, "vigil");
        assert_eq!(t.values["cleared_at_ms"], Value::from(2000));
        assert_eq!(l.next_deadline(), None);
    }

    #[test]
    fn auto_resume_restarts_cooldown_on_new_breach() {
        let mut l = Latch::new();
        l.trip(Halt, auto("vol", 300), 0);
        l.clear(&rule("vol"), 100);
        l.trip(Halt, auto("vol", 300), 350); // flaps back before 400
        assert_eq!(l.on_timer(400), None);
        l.clear(&rule("vol"), 500);
        assert_eq!(l.next_deadline(), Some(800));
        assert_eq!(l.on_timer(800).map(|t| t.to), Some(Active));
    }

    #[test]
    fn auto_resume_zero_cooldown_resumes_on_clear() {
        let mut l = Latch::new();
        l.trip(Reduce, auto("x", 0), 0);
        assert_eq!(l.clear(&rule("x"), 7).map(|t| t.to), Some(Active));
    }

    #[test]
    fn auto_resume_blocked_by_other_triggers() {
        // an opt-in trigger cannot resume what a non-opt-in one halted
        let mut l = Latch::new();
        l.trip(Halt, auto("vol", 10), 0);
        l.trip(Halt, trig("dd"), 0);
        l.clear(&rule("vol"), 5);
        l.clear(&rule("dd"), 5);
        assert_eq!(l.on_timer(100), None);
        assert_eq!(l.state(), Halted);
        // nor an operator halt
        let mut l = Latch::new();
        l.trip(Halt, auto("vol", 10), 0);
        l.trip(Halt, Trigger::operator("bob", "stop"), 0);
        l.clear(&rule("vol"), 5);
        assert_eq!(l.on_timer(100), None);
        assert_eq!(l.state(), Halted);
    }

    #[test]
    fn auto_resume_deescalates_to_a_remaining_reduce() {
        let mut l = Latch::new();
        l.trip(Reduce, trig("losses"), 0);
        l.trip(Halt, auto("vol", 10), 1).unwrap();
        l.clear(&rule("vol"), 2);
        let t = l.on_timer(12).unwrap();
        assert_eq!((t.from, t.to), (Halted, Reducing));
    }

    #[test]
    fn unknown_never_clears_so_restart_keeps_conditions() {
        let mut l = Latch::new();
        l.trip(Halt, trig("feed"), 1);
        let text = l.to_persisted().unwrap();
        let r = Latch::restore(Some(&text), 50);
        assert_eq!(r.transition, None);
        assert_eq!(r.latch.state(), Halted);
        let mut l2 = r.latch;
        assert!(matches!(
            l2.resume(resume(false), 60),
            Err(ResumeError::ConditionsHold { .. })
        ));
        l2.clear(&rule("feed"), 70);
        assert!(l2.resume(resume(false), 71).is_ok());
    }

    #[test]
    fn restore_table() {
        // (persisted, state, fail-closed transition?)
        let cases: &[(Option<&str>, TradingState, bool)] = &[
            (None, Active, false),
            (Some("ACTIVE"), Active, false),
            (Some("HALTED\n"), Halted, false),
            (Some("reducing"), Reducing, false),
            (Some(r#"{"state":"HALTED","reason":"x"}"#), Halted, false),
            (Some(""), Halted, true),
            (Some("   "), Halted, true),
            (Some("PAUSED"), Halted, true),
            (Some("{\"sta"), Halted, true),
            (Some(r#"{"state":"SLEEPING"}"#), Halted, true),
            (Some("[]"), Halted, true),
            (Some("\u{0}\u{1}garbage"), Halted, true),
        ];
        for (text, want, fails) in cases {
            let r = Latch::restore(*text, 99);
            assert_eq!(r.latch.state(), *want, "{text:?}");
            assert_eq!(r.transition.is_some(), *fails, "{text:?}");
            if let Some(t) = r.transition {
                assert_eq!((t.from, t.to), (Active, Halted));
                assert_eq!(t.source, Source::System("startup".into()));
                assert!(t.reason.contains("failing closed"));
            }
            let mut l = r.latch;
            if *want != Active {
                // a restored restriction needs a resume, which works (no condition holds)
                assert!(l.holding().is_empty());
                assert_eq!(l.on_timer(u64::MAX), None);
                assert!(l.resume(resume(false), 100).is_ok());
            }
        }
    }

    #[test]
    fn restore_snapshot_inconsistent_takes_the_stricter() {
        let mut l = Latch::new();
        l.trip(Halt, trig("dd"), 1);
        let mut v: Value = serde_json::from_str(&l.to_persisted().unwrap()).unwrap();
        v["state"] = Value::from("ACTIVE");
        let r = Latch::restore(Some(&v.to_string()), 5);
        assert_eq!(r.latch.state(), Halted);
        assert_eq!(r.transition.map(|t| (t.from, t.to)), Some((Active, Halted)));
        // a stated HALTED with no triggers stays HALTED
        let mut v: Value = serde_json::from_str(&Latch::new().to_persisted().unwrap()).unwrap();
        v["state"] = Value::from("HALTED");
        let r = Latch::restore(Some(&v.to_string()), 5);
        assert_eq!(r.latch.state(), Halted);
        assert_eq!(r.transition, None);
    }

    #[test]
    fn halt_commands_table() {
        let positions: BTreeMap<String, f64> = [
            ("ETH/USD".to_string(), -2.5),
            ("BTC/USD".to_string(), 0.75),
            ("SOL/USD".to_string(), 0.0),
        ]
        .into_iter()
        .collect();
        let close = |pair: &str, side, qty| Command::ClosePosition {
            pair: pair.into(),
            side,
            qty,
        };
        let cases = [
            (PositionBehaviour::Maintain, vec![Command::CancelAllOrders]),
            (
                PositionBehaviour::ReduceOnly,
                vec![Command::CancelAllOrders, Command::ReduceOnly],
            ),
            (
                PositionBehaviour::Close,
                vec![
                    Command::CancelAllOrders,
                    close("BTC/USD", Side::Sell, 0.75),
                    close("ETH/USD", Side::Buy, 2.5),
                ],
            ),
        ];
        for (b, want) in cases {
            assert_eq!(halt_commands(b, &positions), want, "{b:?}");
        }
        assert_eq!(
            halt_commands(PositionBehaviour::Close, &BTreeMap::new()),
            vec![Command::CancelAllOrders]
        );
        assert_eq!(
            serde_json::to_value(close("BTC/USD", Side::Sell, 0.75)).unwrap(),
            serde_json::json!({"command":"close_position","pair":"BTC/USD","side":"sell","qty":0.75})
        );
        assert_eq!(
            serde_json::to_value(Command::CancelAllOrders).unwrap(),
            serde_json::json!({"command":"cancel_all_orders"})
        );
        assert_eq!("liquidate".parse(), Ok(PositionBehaviour::Close));
        assert_eq!(
            serde_json::from_str::<PositionBehaviour>("\"liquidate\"").unwrap(),
            PositionBehaviour::Close
        );
        assert!("flatten".parse::<PositionBehaviour>().is_err());
    }

    #[test]
    fn commands_only_on_entering_halted() {
        let pos: BTreeMap<String, f64> = [("X".to_string(), 1.0)].into_iter().collect();
        let mut l = Latch::new();
        let t = l.trip(Reduce, trig("a"), 0).unwrap();
        assert!(commands_for(&t, PositionBehaviour::Close, &pos).is_empty());
        let t = l.trip(Halt, trig("b"), 0).unwrap();
        assert_eq!(commands_for(&t, PositionBehaviour::Close, &pos).len(), 2);
        let t = l.resume(resume(true), 1).unwrap();
        assert!(commands_for(&t, PositionBehaviour::Close, &pos).is_empty());
    }

    // ---- property tests

    #[derive(Clone, Debug)]
    enum Op {
        Trip(usize, Severity),
        Clear(usize),
        Timer,
        Advance(u64),
        Restart,
        ResumeUnforced,
    }

    /// Sources 0..3 are rules (source 2 has auto-resume when enabled), 3 is an operator.
    fn source(i: usize) -> Source {
        match i {
            3 => Source::Operator("bob".into()),
            i => rule(&format!("r{i}")),
        }
    }

    fn op(with_resume: bool) -> impl Strategy<Value = Op> {
        let sev = prop_oneof![Just(Reduce), Just(Halt)];
        let base = prop_oneof![
            (0usize..4, sev).prop_map(|(i, s)| Op::Trip(i, s)),
            (0usize..4).prop_map(Op::Clear),
            Just(Op::Timer),
            (0u64..1000).prop_map(Op::Advance),
            Just(Op::Restart),
        ];
        if with_resume {
            prop_oneof![4 => base, 1 => Just(Op::ResumeUnforced)].boxed()
        } else {
            base.boxed()
        }
    }

    fn trigger_for(i: usize, auto_enabled: bool) -> Trigger {
        let mut t = match source(i) {
            Source::Operator(u) => Trigger::operator(&u, "manual"),
            s => Trigger::new(s, "breach"),
        };
        if auto_enabled && i == 2 {
            t.auto_resume_after_ms = Some(100);
        }
        t
    }

    /// Runs ops, checking the invariant after each, and returns every transition.
    fn run(ops: &[Op], auto_enabled: bool) -> Vec<(Option<Transition>, TradingState)> {
        let mut l = Latch::new();
        let mut now = 0;
        let mut out = Vec::new();
        for op in ops {
            let t = match op {
                Op::Trip(i, s) => l.trip(*s, trigger_for(*i, auto_enabled), now),
                Op::Clear(i) => l.clear(&source(*i), now),
                Op::Timer => l.on_timer(now),
                Op::Advance(d) => {
                    now += d;
                    None
                }
                Op::Restart => {
                    let text = l.to_persisted().unwrap();
                    let r = Latch::restore(Some(&text), now);
                    assert_eq!(r.latch.state(), l.state(), "restart keeps the state");
                    l = r.latch;
                    r.transition
                }
                Op::ResumeUnforced => {
                    let holding = l.holding();
                    match l.resume(resume(false), now) {
                        Ok(t) => {
                            assert!(holding.is_empty(), "resumed over {holding:?}");
                            Some(t)
                        }
                        Err(_) => None,
                    }
                }
            };
            // the state is always the most severe unresolved trigger
            assert_eq!(l.state(), l.derived());
            out.push((t, l.state()));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No sequence of inputs without a resume (and with no auto-resume enabled)
        /// leaves HALTED.
        #[test]
        fn halted_is_sticky_without_resume(ops in proptest::collection::vec(op(false), 1..80)) {
            let mut halted = false;
            for (t, state) in run(&ops, false) {
                if halted {
                    prop_assert_eq!(state, Halted);
                    prop_assert!(t.is_none_or(|t| t.to == Halted));
                }
                halted |= state == Halted;
            }
        }

        /// With auto-resume enabled for one rule, HALTED is left without a resume only by
        /// that rule's auto-resume.
        #[test]
        fn only_opted_in_auto_resume_leaves_halted(ops in proptest::collection::vec(op(false), 1..80)) {
            for (t, _) in run(&ops, true) {
                if let Some(t) = t && t.from == Halted && t.to != Halted {
                    prop_assert_eq!(&t.source, &source(2));
                    prop_assert!(t.reason.starts_with("auto-resume"));
                }
            }
        }

        /// An unforced resume never succeeds while a triggering condition holds (checked
        /// inside `run`), and the state invariant holds throughout.
        #[test]
        fn unforced_resume_respects_conditions(ops in proptest::collection::vec(op(true), 1..80)) {
            run(&ops, true);
        }
    }
}
