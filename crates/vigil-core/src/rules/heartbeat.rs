//! Heartbeats per source, healthchecks-style: a period and a grace time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CheckStatus, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};

#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatConfig {
    /// Expected time between beats.
    pub period_ms: Millis,
    /// Extra time after a missed period before the source is down.
    pub grace_ms: Millis,
    /// Sources that must beat. Empty: every source that has beaten.
    pub sources: Vec<String>,
    pub started_at_ms: Millis,
}

/// One source's state (healthchecks' new / up / grace / down, with "down" split in two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BeatState {
    /// Has not beaten yet; still within `period + grace` of the start.
    New,
    Up,
    /// A period was missed; within the grace time.
    Late,
    /// Never beat since start, and `period + grace` has passed.
    NeverBeat,
    /// Beat before, then stopped for `period + grace`.
    Stopped,
}

/// The key of events without a `source` (the shell normally fills it in).
pub const NO_SOURCE: &str = "-";

#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeats {
    pub config: HeartbeatConfig,
    last: BTreeMap<String, Millis>,
    evaluated_at: Option<Millis>,
}

impl Heartbeats {
    pub fn new(config: HeartbeatConfig) -> Self {
        Heartbeats {
            config,
            last: BTreeMap::new(),
            evaluated_at: None,
        }
    }

    fn limit(&self) -> Millis {
        self.config.period_ms.saturating_add(self.config.grace_ms)
    }

    /// The state of `source` at `now_ms`.
    pub fn state_of(&self, source: &str, now_ms: Millis) -> BeatState {
        match self.last.get(source) {
            None if now_ms >= self.config.started_at_ms.saturating_add(self.limit()) => {
                BeatState::NeverBeat
            }
            None => BeatState::New,
            Some(&t) if now_ms >= t.saturating_add(self.limit()) => BeatState::Stopped,
            Some(&t) if now_ms >= t.saturating_add(self.config.period_ms) => BeatState::Late,
            Some(_) => BeatState::Up,
        }
    }

    /// Every watched source with its state.
    pub fn states(&self, now_ms: Millis) -> Vec<(String, BeatState)> {
        self.watched()
            .into_iter()
            .map(|s| {
                let st = self.state_of(&s, now_ms);
                (s, st)
            })
            .collect()
    }

    fn watched(&self) -> Vec<String> {
        if self.config.sources.is_empty() {
            self.last.keys().cloned().collect()
        } else {
            self.config.sources.clone()
        }
    }

    fn source_status(&self, source: &str, now: Millis) -> CheckStatus {
        let secs = |ms: Millis| num(ms as f64 / 1000.0);
        let age = self.last.get(source).map(|&t| now.saturating_sub(t));
        let (status, msg) = match self.state_of(source, now) {
            BeatState::New => (
                Status::Unknown,
                format!("{source}: no heartbeat yet since start"),
            ),
            BeatState::NeverBeat => (
                Status::Critical,
                format!(
                    "{source}: never beat since start ({}s ago; period {}s + grace {}s)",
                    secs(now.saturating_sub(self.config.started_at_ms)),
                    secs(self.config.period_ms),
                    secs(self.config.grace_ms)
                ),
            ),
            BeatState::Up => (
                Status::Ok,
                format!("{source}: up, last beat {}s ago", secs(age.unwrap_or(0))),
            ),
            BeatState::Late => (
                Status::Warn,
                format!(
                    "{source}: late, last beat {}s ago (period {}s)",
                    secs(age.unwrap_or(0)),
                    secs(self.config.period_ms)
                ),
            ),
            BeatState::Stopped => (
                Status::Critical,
                format!(
                    "{source}: stopped beating, last beat {}s ago (period {}s + grace {}s)",
                    secs(age.unwrap_or(0)),
                    secs(self.config.period_ms),
                    secs(self.config.grace_ms)
                ),
            ),
        };
        CheckStatus::new(
            status,
            age.map(|a| a as f64),
            Some(self.limit() as f64),
            msg,
        )
        .about(source)
    }
}

impl Rule for Heartbeats {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        if !matches!(ev.kind, EventKind::Heartbeat) {
            return false;
        }
        let source = ev.source.as_deref().unwrap_or(NO_SOURCE);
        if !self.config.sources.is_empty() && !self.config.sources.iter().any(|s| s == source) {
            return false;
        }
        match self.last.get_mut(source) {
            Some(e) => *e = (*e).max(now_ms),
            None => {
                self.last.insert(source.to_owned(), now_ms);
            }
        }
        true
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.evaluated_at = Some(now_ms);
        if self.config.sources.is_empty() && self.last.is_empty() {
            if now_ms >= self.config.started_at_ms.saturating_add(self.limit()) {
                return CheckStatus::new(
                    Status::Critical,
                    None,
                    Some(self.limit() as f64),
                    "no heartbeat from any source since start".into(),
                );
            }
            return CheckStatus::unknown("no heartbeat yet since start");
        }
        // Rank every source cheaply, then describe only the worst one.
        let rank = |source: &str| {
            let status = match self.state_of(source, now_ms) {
                BeatState::Up => Status::Ok,
                BeatState::New => Status::Unknown,
                BeatState::Late => Status::Warn,
                BeatState::NeverBeat | BeatState::Stopped => Status::Critical,
            };
            let age = self
                .last
                .get(source)
                .map_or(f64::MAX, |&t| now_ms.saturating_sub(t) as f64);
            (status, age)
        };
        let mut worst: Option<((Status, f64), &str)> = None;
        let sources: Box<dyn Iterator<Item = &String>> = if self.config.sources.is_empty() {
            Box::new(self.last.keys())
        } else {
            Box::new(self.config.sources.iter())
        };
        for s in sources {
            let r = rank(s);
            if worst.as_ref().is_none_or(|(w, _)| r > *w) {
                worst = Some((r, s));
            }
        }
        match worst {
            Some((_, s)) => self.source_status(s, now_ms),
            None => CheckStatus::unknown("no source"),
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let c = &self.config;
        let beats = self.last.values().flat_map(|&t| {
            [
                t.saturating_add(c.period_ms),
                t.saturating_add(self.limit()),
            ]
        });
        let unseen = if c.sources.is_empty() {
            self.last.is_empty()
        } else {
            c.sources.iter().any(|s| !self.last.contains_key(s))
        };
        let start = unseen.then(|| c.started_at_ms.saturating_add(self.limit()));
        earliest_after(self.evaluated_at, beats.chain(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(source: Option<&str>) -> InboundEvent {
        InboundEvent {
            source: source.map(Into::into),
            ..InboundEvent::new(EventKind::Heartbeat)
        }
    }

    fn rule(sources: &[&str]) -> Heartbeats {
        Heartbeats::new(HeartbeatConfig {
            period_ms: 10_000,
            grace_ms: 5_000,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            started_at_ms: 1_000,
        })
    }

    #[test]
    fn never_beat_vs_stopped() {
        let mut r = rule(&["bot"]);
        // (now, state, status)
        let before = [
            (1_000, BeatState::New, Status::Unknown),
            (15_999, BeatState::New, Status::Unknown),
            (16_000, BeatState::NeverBeat, Status::Critical),
        ];
        for (now, st, status) in before {
            assert_eq!(r.state_of("bot", now), st, "@{now}");
            assert_eq!(r.status(now).status, status, "@{now}");
        }
        assert!(r.status(16_000).message.contains("never beat since start"));
        assert!(r.on_event(&beat(Some("bot")), 20_000));
        let after = [
            (20_000, BeatState::Up, Status::Ok),
            (29_999, BeatState::Up, Status::Ok),
            (30_000, BeatState::Late, Status::Warn),
            (34_999, BeatState::Late, Status::Warn),
            (35_000, BeatState::Stopped, Status::Critical),
        ];
        for (now, st, status) in after {
            assert_eq!(r.state_of("bot", now), st, "@{now}");
            assert_eq!(r.status(now).status, status, "@{now}");
        }
        let s = r.status(35_000);
        assert!(
            s.message.contains("stopped beating, last beat 15s ago"),
            "{}",
            s.message
        );
        assert_eq!(s.value, Some(15_000.0));
    }

    #[test]
    fn deadlines_are_exact() {
        let mut r = rule(&["bot"]);
        r.status(1_000);
        assert_eq!(r.next_deadline(), Some(16_000));
        r.on_event(&beat(Some("bot")), 2_000);
        r.status(2_000);
        assert_eq!(r.next_deadline(), Some(12_000));
        r.status(12_000);
        assert_eq!(r.next_deadline(), Some(17_000));
        r.status(17_000);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn sources_are_separate() {
        let mut r = rule(&["a", "b"]);
        r.on_event(&beat(Some("a")), 1_000);
        assert!(!r.on_event(&beat(Some("c")), 1_000), "not watched");
        assert!(!r.on_event(
            &InboundEvent::new(EventKind::Equity(crate::event::Equity { equity: 1.0 })),
            1_000
        ));
        let states = r.states(16_000);
        assert_eq!(
            states,
            vec![
                ("a".to_string(), BeatState::Stopped),
                ("b".to_string(), BeatState::NeverBeat)
            ]
        );
        // any-source mode, with the default key for events without a source
        let mut r = rule(&[]);
        assert_eq!(r.status(0).status, Status::Unknown);
        assert_eq!(r.status(16_000).status, Status::Critical);
        assert!(r.on_event(&beat(None), 16_000));
        assert_eq!(
            r.states(16_000),
            vec![(NO_SOURCE.to_string(), BeatState::Up)]
        );
        assert_eq!(r.status(16_000).status, Status::Ok);
    }
}
