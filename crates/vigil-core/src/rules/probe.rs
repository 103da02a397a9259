//! Exchange connectivity probe results (the Kraken preset and generic HTTP probes).
//!
//! TRADING.md §5.6: only connectivity failures count toward N consecutive failures; a
//! success resets the count; auth and lockout results are critical at once; throttled
//! and degraded results warn.

use super::{CheckStatus, Levels, Millis, Rule, Status, num};
use crate::event::InboundEvent;

/// One probe result, as the shell (or [`crate::kraken`]) classified it. The text is the
/// error or status string, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Ok,
    /// The exchange answers but restricts trading (`post_only`, `cancel_only`, …).
    Degraded(String),
    /// Timeout, transport error, HTTP 5xx, `EService:Unavailable`, maintenance, …
    Connectivity(String),
    /// Bad key, signature, nonce or permission: the bot cannot trade either.
    Auth(String),
    /// `EGeneral:Temporary lockout`.
    LockedOut(String),
    /// Rate limited: back off, not a connectivity failure.
    Throttled(String),
    /// Any other error answer (counted nowhere; shown).
    Error(String),
}

impl ProbeOutcome {
    pub fn detail(&self) -> &str {
        match self {
            ProbeOutcome::Ok => "ok",
            ProbeOutcome::Degraded(s)
            | ProbeOutcome::Connectivity(s)
            | ProbeOutcome::Auth(s)
            | ProbeOutcome::LockedOut(s)
            | ProbeOutcome::Throttled(s)
            | ProbeOutcome::Error(s) => s,
        }
    }
}

/// Consecutive-failure logic of a probe check.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeHealth {
    /// Levels on the count of consecutive connectivity failures (critical = N).
    pub levels: Levels,
    consecutive: u32,
    last: Option<ProbeOutcome>,
    last_failure: Option<String>,
}

impl ProbeHealth {
    pub fn new(levels: Levels) -> Self {
        ProbeHealth {
            levels,
            consecutive: 0,
            last: None,
            last_failure: None,
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    pub fn observe(&mut self, outcome: &ProbeOutcome) {
        match outcome {
            ProbeOutcome::Ok => self.consecutive = 0,
            ProbeOutcome::Connectivity(s) => {
                self.consecutive = self.consecutive.saturating_add(1);
                self.last_failure = Some(s.clone());
            }
            _ => {}
        }
        self.last = Some(outcome.clone());
    }
}

impl Rule for ProbeHealth {
    fn on_event(&mut self, _ev: &InboundEvent, _now_ms: Millis) -> bool {
        false
    }

    fn on_probe(&mut self, outcome: &ProbeOutcome, _now_ms: Millis) -> bool {
        self.observe(outcome);
        true
    }

    fn status(&mut self, _now_ms: Millis) -> CheckStatus {
        let Some(last) = &self.last else {
            return CheckStatus::unknown("no probe result yet");
        };
        let n = f64::from(self.consecutive);
        let (count_status, threshold) = self.levels.judge(n);
        let limit = threshold
            .map(|t| format!(" (limit {})", num(t)))
            .unwrap_or_default();
        let mk = |status, message| CheckStatus::new(status, Some(n), threshold, message);
        match last {
            ProbeOutcome::Auth(e) => mk(Status::Critical, format!("authentication failed: {e}")),
            ProbeOutcome::LockedOut(e) => mk(Status::Critical, format!("API locked out: {e}")),
            _ if count_status == Status::Critical => mk(
                Status::Critical,
                format!(
                    "API connectivity failed {} consecutive times (last: {}){limit}",
                    self.consecutive,
                    self.last_failure.as_deref().unwrap_or("?")
                ),
            ),
            ProbeOutcome::Degraded(s) => mk(Status::Warn, format!("exchange degraded: {s}")),
            ProbeOutcome::Throttled(s) => mk(Status::Warn, format!("throttled: {s}")),
            _ if count_status == Status::Warn => mk(
                Status::Warn,
                format!(
                    "API connectivity failed {} consecutive times (last: {}){limit}",
                    self.consecutive,
                    self.last_failure.as_deref().unwrap_or("?")
                ),
            ),
            ProbeOutcome::Error(e) => mk(Status::Warn, format!("error answer: {e}")),
            ProbeOutcome::Connectivity(e) => mk(
                Status::Ok,
                format!(
                    "{} consecutive connectivity failures (last: {e}){limit}",
                    self.consecutive
                ),
            ),
            ProbeOutcome::Ok => mk(Status::Ok, "ok".into()),
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> ProbeOutcome {
        ProbeOutcome::Connectivity("EService:Unavailable".into())
    }

    #[test]
    fn consecutive_connectivity_failures() {
        use ProbeOutcome as P;
        // outcomes → (status, consecutive) with warn 2, critical 3
        let cases: &[(&[ProbeOutcome], Status, u32)] = &[
            (&[], Status::Unknown, 0),
            (&[P::Ok], Status::Ok, 0),
            (&[conn()], Status::Ok, 1),
            (&[conn(), conn()], Status::Warn, 2),
            (&[conn(), conn(), conn()], Status::Critical, 3),
            (&[conn(), conn(), P::Ok, conn()], Status::Ok, 1),
            // throttling neither counts nor resets
            (
                &[
                    conn(),
                    conn(),
                    P::Throttled("EAPI:Rate limit exceeded".into()),
                    conn(),
                ],
                Status::Critical,
                3,
            ),
            (&[P::Throttled("x".into())], Status::Warn, 0),
            (&[P::Degraded("post_only".into())], Status::Warn, 0),
            (
                &[P::Error("EQuery:Unknown asset pair".into())],
                Status::Warn,
                0,
            ),
            // auth and lockout: critical at once, and an OK clears them
            (&[P::Auth("EAPI:Invalid key".into())], Status::Critical, 0),
            (
                &[P::LockedOut("EGeneral:Temporary lockout".into())],
                Status::Critical,
                0,
            ),
            (&[P::Auth("EAPI:Invalid key".into()), P::Ok], Status::Ok, 0),
        ];
        for (seq, want, n) in cases {
            let mut r = ProbeHealth::new(Levels::new(2.0, 3.0));
            for o in *seq {
                assert!(r.on_probe(o, 0));
            }
            let s = r.status(0);
            assert_eq!(
                (s.status, r.consecutive_failures()),
                (*want, *n),
                "{seq:?}: {}",
                s.message
            );
        }
    }

    #[test]
    fn halt_message_names_the_last_error() {
        let mut r = ProbeHealth::new(Levels::critical(3.0));
        for _ in 0..3 {
            r.observe(&conn());
        }
        assert_eq!(
            r.status(0).message,
            "API connectivity failed 3 consecutive times (last: EService:Unavailable) (limit 3)"
        );
        assert!(!r.on_event(&InboundEvent::new(crate::event::EventKind::Heartbeat), 0));
        assert_eq!(r.next_deadline(), None);
    }
}
