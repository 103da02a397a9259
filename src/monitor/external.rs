//! Checks judged outside the rule set — a venue's dead-man switch (the `venue` tasks) — that
//! still go through the monitor like any check: a `check` event and alerts on a status
//! change, a latch trip (per the check's action) on critical and a clear on ok or warn,
//! and a row in `/api/checks` and `/metrics`.

use std::collections::BTreeMap;

use vigil_core::rules::{Action, CheckStatus, RuleSpec, Status, StatusChange};
use vigil_core::trading::Source;

use super::{Actor, CheckView, Cmd, MonitorHandle, check_view};

/// One report: the check's identity, its action and its current status.
#[derive(Debug, Clone)]
pub struct Report {
    pub source: Source,
    pub kind: &'static str,
    pub action: Action,
    pub status: CheckStatus,
}

#[derive(Default)]
pub(super) struct Checks {
    latest: BTreeMap<Source, (RuleSpec, &'static str, CheckStatus)>,
}

impl Checks {
    pub(super) fn views(&self) -> impl Iterator<Item = CheckView> + '_ {
        self.latest
            .values()
            .map(|(spec, kind, s)| check_view(spec, s, kind))
    }
}

impl MonitorHandle {
    /// Report the current status of an external check (call it on every change of its
    /// value or message; only a status change is recorded and acted on).
    pub async fn report_check(&self, r: Report) -> bool {
        self.tx.send(Cmd::External(r)).await.is_ok()
    }
}

impl Actor {
    pub(super) async fn on_external(&mut self, r: Report, now: u64) {
        let previous = self
            .external
            .latest
            .get(&r.source)
            .map_or(Status::Unknown, |(_, _, s)| s.status);
        let spec = RuleSpec::new(r.source.clone(), r.action);
        self.kinds.insert(r.source.clone(), r.kind);
        self.external
            .latest
            .insert(r.source.clone(), (spec, r.kind, r.status.clone()));
        if previous == r.status.status {
            return;
        }
        let change = StatusChange {
            source: r.source,
            action: r.action,
            auto_resume_after_ms: None,
            previous,
            current: r.status,
        };
        self.apply_changes(vec![change], now).await;
    }
}
