//! Trading state and checks: `GET /api/state`, `POST /api/trading/halt`,
//! `POST /api/trading/resume` (and its 409 `conditions_hold`), `GET /api/checks`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_core::trading::{Holding, TriggerEntry};

use super::ms_rfc3339;
use crate::monitor::{CheckView, IngestStats, Snapshot, TransitionView};

/// `GET /api/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradingStateView {
    /// What blocks an unforced resume.
    pub holding: Vec<HoldingView>,
    pub last_transition: Option<Transition>,
    /// False when the state in effect could not be written to disk.
    pub persisted: bool,
    /// Net position per instrument, as the bots last reported.
    pub positions: BTreeMap<String, f64>,
    /// When the current state began (RFC 3339).
    pub since: Option<String>,
    /// `ACTIVE`, `REDUCING` or `HALTED`.
    pub state: String,
    /// False when the state file the trading processes read could not be written.
    pub state_file: bool,
    /// The triggers still restricting trading or still in breach.
    pub triggers: Vec<TriggerView>,
}

impl From<&Snapshot> for TradingStateView {
    fn from(s: &Snapshot) -> Self {
        TradingStateView {
            holding: s.holding.iter().map(HoldingView::from).collect(),
            last_transition: s.last_transition.as_ref().map(Transition::from),
            persisted: s.persisted,
            positions: s.positions.clone(),
            since: s.since.clone(),
            state: s.state.name().to_string(),
            state_file: s.state_file,
            triggers: s.triggers.iter().map(TriggerView::from).collect(),
        }
    }
}

/// A transition of the trading state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub actor: String,
    pub at: String,
    pub from: String,
    pub reason: String,
    /// `rule:<id>`, `check:<id>`, `program:<name>`, `operator:<user>`, `cluster:<host>`,
    /// `system:<what>`.
    pub source: String,
    pub to: String,
    /// The values that tripped it (rule inputs), an object.
    pub values: Value,
}

impl From<&TransitionView> for Transition {
    fn from(t: &TransitionView) -> Self {
        Transition {
            from: t.from.name().to_string(),
            to: t.to.name().to_string(),
            reason: t.reason.clone(),
            source: t.source.clone(),
            actor: t.actor.clone(),
            values: t.values.clone(),
            at: t.at.clone(),
        }
    }
}

/// A condition that blocks an unforced resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingView {
    pub reason: String,
    /// RFC 3339.
    pub since: String,
    pub source: String,
}

impl From<&Holding> for HoldingView {
    fn from(h: &Holding) -> Self {
        HoldingView {
            reason: h.reason.clone(),
            since: ms_rfc3339(h.since_ms),
            source: h.source.to_string(),
        }
    }
}

/// One trigger known to the latch (times in Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerView {
    pub actor: String,
    pub auto_resume_after_ms: Option<u64>,
    pub cleared_at_ms: Option<u64>,
    pub holds: bool,
    pub reason: String,
    /// `reduce` or `halt`.
    pub severity: String,
    pub since_ms: u64,
    pub source: String,
    pub unresolved: bool,
    pub values: BTreeMap<String, Value>,
}

impl From<&TriggerEntry> for TriggerView {
    fn from(t: &TriggerEntry) -> Self {
        TriggerView {
            source: t.source.to_string(),
            severity: match t.severity {
                vigil_core::trading::Severity::Reduce => "reduce",
                vigil_core::trading::Severity::Halt => "halt",
            }
            .to_string(),
            reason: t.reason.clone(),
            actor: t.actor.clone(),
            values: t.values.clone(),
            since_ms: t.since_ms,
            holds: t.holds,
            unresolved: t.unresolved,
            cleared_at_ms: t.cleared_at_ms,
            auto_resume_after_ms: t.auto_resume_after_ms,
        }
    }
}

/// `POST /api/trading/halt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HaltResponse {
    /// False when trading was already in (at least) the state asked for.
    pub changed: bool,
    pub state: String,
    pub transition: Option<Transition>,
}

/// `POST /api/trading/resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeResponse {
    pub state: String,
    pub transition: Transition,
}

impl From<&TransitionView> for ResumeResponse {
    fn from(t: &TransitionView) -> Self {
        ResumeResponse {
            state: t.to.name().to_string(),
            transition: Transition::from(t),
        }
    }
}

/// `POST /api/trading/resume` refused (409): the error body plus what still holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionsHold {
    /// `conditions_hold`.
    pub error: String,
    pub holding: Vec<HeldBy>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBy {
    pub reason: String,
    pub source: String,
}

impl ConditionsHold {
    pub fn new(holding: &[Holding]) -> Self {
        ConditionsHold {
            error: "conditions_hold".into(),
            holding: holding
                .iter()
                .map(|h| HeldBy {
                    reason: h.reason.clone(),
                    source: h.source.to_string(),
                })
                .collect(),
            message: "refused: the triggering condition still holds; resume with force to override"
                .into(),
        }
    }
}

/// `GET /api/checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksView {
    pub checks: Vec<Check>,
    pub ingest: IngestCounts,
    pub state: String,
}

impl ChecksView {
    pub fn new(s: &Snapshot, stats: &IngestStats) -> Self {
        ChecksView {
            checks: s.checks.iter().map(Check::from).collect(),
            ingest: IngestCounts::from(stats),
            state: s.state.name().to_string(),
        }
    }
}

/// One check's latest result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What a critical result does: `warn`, `reduce` or `halt`.
    pub action: String,
    pub id: String,
    /// The check's kind (`freshness`, `threshold`, `heartbeat`, `deadman`, …).
    pub kind: String,
    pub message: String,
    pub source: String,
    /// `ok`, `unknown`, `warn` or `critical`.
    pub status: String,
    pub subject: Option<String>,
    pub threshold: Option<f64>,
    pub value: Option<f64>,
}

impl From<&CheckView> for Check {
    fn from(c: &CheckView) -> Self {
        Check {
            id: c.id.clone(),
            source: c.source.clone(),
            kind: c.kind.to_string(),
            action: match c.action {
                vigil_core::rules::Action::Warn => "warn",
                vigil_core::rules::Action::Reduce => "reduce",
                vigil_core::rules::Action::Halt => "halt",
            }
            .to_string(),
            status: c.status.as_str().to_string(),
            value: c.value,
            threshold: c.threshold,
            message: c.message.clone(),
            subject: c.subject.clone(),
        }
    }
}

/// What came in, by type, and what was refused, by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestCounts {
    pub accepted: BTreeMap<String, u64>,
    /// Events refused because the ingest budget was full (503).
    pub refused_overload: u64,
    pub rejected: BTreeMap<String, u64>,
    /// Times a sender waited for room in the ingest budget.
    pub throttled: u64,
    pub unknown_types: u64,
}

impl From<&IngestStats> for IngestCounts {
    fn from(s: &IngestStats) -> Self {
        IngestCounts {
            accepted: s.by_type.lock().map(|m| m.clone()).unwrap_or_default(),
            refused_overload: s.refused.load(Ordering::Relaxed),
            rejected: s.rejected.lock().map(|m| m.clone()).unwrap_or_default(),
            throttled: s.throttled.load(Ordering::Relaxed),
            unknown_types: s.unknown_types.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::golden::assert_wire;
    use vigil_core::rules::{Action, Status};
    use vigil_core::trading::{Severity, Source, TradingState};

    fn transition() -> TransitionView {
        TransitionView {
            from: TradingState::Active,
            to: TradingState::Halted,
            reason: "drawdown 6% > 5%".into(),
            source: "rule:max_drawdown".into(),
            actor: "vigil".into(),
            values: serde_json::json!({"drawdown": 0.06}),
            at: "2026-12-03T20:49:00.000Z".into(),
        }
    }

    fn snapshot() -> Snapshot {
        let src: Source = "rule:max_drawdown".parse().expect("a source");
        Snapshot {
            state: TradingState::Halted,
            since: Some("2026-12-03T20:49:00.000Z".into()),
            last_transition: Some(transition()),
            triggers: vec![TriggerEntry {
                source: src.clone(),
                severity: Severity::Halt,
                reason: "drawdown 6% > 5%".into(),
                actor: "vigil".into(),
                values: BTreeMap::from([("drawdown".to_string(), serde_json::json!(0.06))]),
                since_ms: 1_796_330_940_000,
                holds: true,
                unresolved: true,
                cleared_at_ms: None,
                auto_resume_after_ms: Some(60_000),
            }],
            holding: vec![Holding {
                source: src,
                reason: "drawdown 6% > 5%".into(),
                since_ms: 1_796_330_940_000,
            }],
            checks: vec![CheckView {
                id: "max_drawdown".into(),
                source: "rule:max_drawdown".into(),
                kind: "threshold",
                action: Action::Halt,
                status: Status::Critical,
                value: Some(0.06),
                threshold: Some(0.05),
                message: "drawdown 6% > 5%".into(),
                subject: None,
            }],
            positions: BTreeMap::from([("BTC/USD".to_string(), 0.5)]),
            persisted: true,
            state_file: true,
        }
    }

    #[test]
    fn the_trading_state_is_served_as_before() {
        assert_wire(
            &TradingStateView::from(&snapshot()),
            r#"{"holding":[{"reason":"drawdown 6% > 5%","since":"2026-12-03T20:49:00.000Z","source":"rule:max_drawdown"}],"last_transition":{"actor":"vigil","at":"2026-12-03T20:49:00.000Z","from":"ACTIVE","reason":"drawdown 6% > 5%","source":"rule:max_drawdown","to":"HALTED","values":{"drawdown":0.06}},"persisted":true,"positions":{"BTC/USD":0.5},"since":"2026-12-03T20:49:00.000Z","state":"HALTED","state_file":true,"triggers":[{"actor":"vigil","auto_resume_after_ms":60000,"cleared_at_ms":null,"holds":true,"reason":"drawdown 6% > 5%","severity":"halt","since_ms":1796330940000,"source":"rule:max_drawdown","unresolved":true,"values":{"drawdown":0.06}}]}"#,
        );
    }

    #[test]
    fn halt_and_resume_answers_are_served_as_before() {
        let t = transition();
        assert_wire(
            &HaltResponse {
                changed: true,
                state: "HALTED".into(),
                transition: Some(Transition::from(&t)),
            },
            r#"{"changed":true,"state":"HALTED","transition":{"actor":"vigil","at":"2026-12-03T20:49:00.000Z","from":"ACTIVE","reason":"drawdown 6% > 5%","source":"rule:max_drawdown","to":"HALTED","values":{"drawdown":0.06}}}"#,
        );
        assert_wire(
            &ResumeResponse::from(&t),
            r#"{"state":"HALTED","transition":{"actor":"vigil","at":"2026-12-03T20:49:00.000Z","from":"ACTIVE","reason":"drawdown 6% > 5%","source":"rule:max_drawdown","to":"HALTED","values":{"drawdown":0.06}}}"#,
        );
        assert_wire(
            &ConditionsHold::new(&snapshot().holding),
            r#"{"error":"conditions_hold","holding":[{"reason":"drawdown 6% > 5%","source":"rule:max_drawdown"}],"message":"refused: the triggering condition still holds; resume with force to override"}"#,
        );
    }

    #[test]
    fn checks_are_served_as_before() {
        let stats = IngestStats::default();
        stats.accepted("metric");
        stats.accepted("metric");
        stats.reject("value");
        stats.refused(3);
        assert_wire(
            &ChecksView::new(&snapshot(), &stats),
            r#"{"checks":[{"action":"halt","id":"max_drawdown","kind":"threshold","message":"drawdown 6% > 5%","source":"rule:max_drawdown","status":"critical","subject":null,"threshold":0.05,"value":0.06}],"ingest":{"accepted":{"metric":2},"refused_overload":3,"rejected":{"value":1},"throttled":0,"unknown_types":0},"state":"HALTED"}"#,
        );
    }
}
