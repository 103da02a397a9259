//! Exchange venues and their dead-man switch (TRADING.md §4.3): what is common to every
//! venue kind — how a failed call is classed, what a "cancel all after" answer says, the
//! nonce sequence — and the [`deadman`] state machine that decides when to call. One module
//! per venue kind reads its answers ([`kraken`] first; Binance futures' `countdownCancelAll`
//! or OKX's cancel-all-after would be one more module with the same two functions).
//!
//! No request is made here: the shell sends it and hands the body (or the transport error)
//! back.

pub mod deadman;
pub mod kraken;

use serde::Serialize;

use crate::rules::Millis;

/// How a failed venue call is treated (TRADING.md §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Bad key, signature or nonce, or a missing permission: retrying does not help, and
    /// repeating it leads to a lockout.
    Auth,
    /// Too many failed calls: private calls stop until it expires.
    LockedOut,
    /// Rate limited: back off.
    Throttled,
    /// The exchange restricts trading (`cancel_only`, …).
    Degraded,
    /// Unavailable, busy, internal error, HTTP 5xx, transport error.
    Connectivity,
    /// No answer within the request timeout.
    Timeout,
    /// An answer that is not the documented envelope or lacks its fields.
    Malformed,
    /// Any other error answer.
    Other,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Auth => "auth",
            FailureClass::LockedOut => "locked_out",
            FailureClass::Throttled => "throttled",
            FailureClass::Degraded => "degraded",
            FailureClass::Connectivity => "connectivity",
            FailureClass::Timeout => "timeout",
            FailureClass::Malformed => "malformed",
            FailureClass::Other => "other",
        }
    }

    /// The exchange refused the call for a reason that does not go away by retrying soon.
    pub fn is_rejection(self) -> bool {
        matches!(self, FailureClass::Auth | FailureClass::LockedOut)
    }
}

/// A failed call: its class, the exchange's error string (or the transport problem), and,
/// when the exchange said so, the Unix ms before which a retry is pointless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub class: FailureClass,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<Millis>,
}

impl Failure {
    pub fn new(class: FailureClass, detail: impl Into<String>) -> Failure {
        Failure {
            class,
            detail: detail.into(),
            retry_at_ms: None,
        }
    }

    pub fn timeout(after_s: f64) -> Failure {
        Failure::new(
            FailureClass::Timeout,
            format!("timed out after {after_s} s"),
        )
    }

    pub fn malformed(why: impl std::fmt::Display) -> Failure {
        Failure::new(
            FailureClass::Malformed,
            format!("unexpected response: {why}"),
        )
    }
}

/// A successful "cancel all after" answer, in the exchange's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CancelAfter {
    /// The exchange's time when it took the call (Unix ms).
    pub current_ms: Millis,
    /// When it will cancel every order (Unix ms); `None` when the timer is off.
    pub trigger_ms: Option<Millis>,
    /// The exchange's own strings, for display.
    pub current_time: String,
    pub trigger_time: String,
}

/// Nonces for one API key: strictly increasing, also across restarts.
///
/// Unix ms when the clock allows (Kraken's suggestion), else the last one plus one. A
/// *reservation* is persisted ahead of use: every nonce sent is at most the persisted mark,
/// and a restart continues above it, so a nonce is never reused even after a crash or a
/// clock that went back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceSeq {
    last: u64,
    reserved: u64,
}

/// How far ahead a reservation reaches (one write per minute of calls at most).
pub const NONCE_RESERVE: u64 = 60_000;

impl NonceSeq {
    /// Continue after the persisted reservation (`None`: first run).
    pub fn restore(reserved: Option<u64>) -> NonceSeq {
        let r = reserved.unwrap_or(0);
        NonceSeq {
            last: r,
            reserved: r,
        }
    }

    /// The next nonce, and, when it passes the reservation, the new reservation, which the
    /// caller persists **before** sending the nonce.
    pub fn next(&mut self, now_ms: u64) -> (u64, Option<u64>) {
        let n = crate::kraken::next_nonce(self.last, now_ms);
        self.last = n;
        if n > self.reserved {
            self.reserved = n.saturating_add(NONCE_RESERVE);
            (n, Some(self.reserved))
        } else {
            (n, None)
        }
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_increase_and_survive_a_restart_with_a_clock_gone_back() {
        let mut s = NonceSeq::restore(None);
        let (a, r) = s.next(1_000);
        assert_eq!(a, 1_000);
        assert_eq!(r, Some(1_000 + NONCE_RESERVE), "first use reserves");
        let (b, r) = s.next(1_000);
        assert_eq!((b, r), (1_001, None), "same ms: +1, inside the reservation");
        let (c, r) = s.next(500);
        assert_eq!((c, r), (1_002, None), "clock went back");
        // Crash: only the reservation was persisted. The clock is now behind it.
        let mut s2 = NonceSeq::restore(Some(1_000 + NONCE_RESERVE));
        let (d, r) = s2.next(2_000);
        assert!(d > c && d > 1_000 + NONCE_RESERVE, "{d}");
        assert_eq!(r, Some(d + NONCE_RESERVE));
        // Past the reservation by the clock: a new one.
        let (e, r) = s2.next(10 * NONCE_RESERVE);
        assert_eq!(e, 10 * NONCE_RESERVE);
        assert_eq!(r, Some(e + NONCE_RESERVE));
        assert_eq!(s2.last(), e);
    }

    #[test]
    fn rejection_classes() {
        assert!(FailureClass::Auth.is_rejection());
        assert!(FailureClass::LockedOut.is_rejection());
        for c in [
            FailureClass::Throttled,
            FailureClass::Connectivity,
            FailureClass::Timeout,
            FailureClass::Malformed,
            FailureClass::Degraded,
            FailureClass::Other,
        ] {
            assert!(!c.is_rejection(), "{c:?}");
        }
        assert_eq!(Failure::timeout(2.5).detail, "timed out after 2.5 s");
    }
}
