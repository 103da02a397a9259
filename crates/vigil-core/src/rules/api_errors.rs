//! API errors reported by trading processes (`api_error` events).

use std::collections::VecDeque;

use super::{CheckStatus, Levels, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};
use crate::kraken::{ErrorClass, classify_error};

#[derive(Clone, Debug, PartialEq)]
pub struct ApiErrorsConfig {
    /// The sliding window: an error at `t` counts while `now < t + window_ms`.
    pub window_ms: Millis,
    /// Levels on the number of errors in the window.
    pub levels: Levels,
    /// Codes that are critical at once. A listed code matches an error code equal to it or
    /// starting with it (`EService:` matches every service error).
    pub critical_codes: Vec<String>,
    /// Kraken auth and lockout errors (TRADING.md §5.4: invalid key, signature, nonce,
    /// permission denied, temporary lockout) are critical at once. Default true.
    pub auth_is_critical: bool,
    /// Only errors from this venue count (`None`: all).
    pub venue: Option<String>,
}

impl ApiErrorsConfig {
    pub fn new(window_ms: Millis, critical_count: u32) -> Self {
        ApiErrorsConfig {
            window_ms,
            levels: Levels::critical(f64::from(critical_count)),
            critical_codes: Vec::new(),
            auth_is_critical: true,
            venue: None,
        }
    }
}

/// N errors in a sliding window → critical; a critical error (listed code, `critical:
/// true`, or auth/lockout) → critical at once, for one window after it.
///
/// With no error at all the status is `ok` with value 0: the absence of errors is this
/// rule's measurement (the one exception to "no input → unknown").
#[derive(Clone, Debug, PartialEq)]
pub struct ApiErrors {
    pub config: ApiErrorsConfig,
    times: VecDeque<Millis>,
    last_code: Option<String>,
    critical_until: Option<Millis>,
    critical_reason: Option<String>,
    evaluated_at: Option<Millis>,
}

impl ApiErrors {
    pub fn new(config: ApiErrorsConfig) -> Self {
        ApiErrors {
            config,
            times: VecDeque::new(),
            last_code: None,
            critical_until: None,
            critical_reason: None,
            evaluated_at: None,
        }
    }

    fn prune(&mut self, now: Millis) {
        while let Some(&t) = self.times.front() {
            if t.saturating_add(self.config.window_ms) <= now {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    fn why_critical(&self, code: &str, flagged: bool) -> Option<String> {
        if flagged {
            return Some(format!("critical API error {code} (flagged critical)"));
        }
        if self
            .config
            .critical_codes
            .iter()
            .any(|c| !c.is_empty() && code.starts_with(c.as_str()))
        {
            return Some(format!("critical API error {code} (listed)"));
        }
        if self.config.auth_is_critical {
            match classify_error(code) {
                ErrorClass::Auth => return Some(format!("API authentication error {code}")),
                ErrorClass::LockedOut => return Some(format!("API locked out: {code}")),
                _ => {}
            }
        }
        None
    }
}

impl Rule for ApiErrors {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        let EventKind::ApiError(e) = &ev.kind else {
            return false;
        };
        if let Some(v) = &self.config.venue
            && e.venue.as_deref() != Some(v.as_str())
        {
            return false;
        }
        self.prune(now_ms);
        // Bounded by count too: beyond this many in the window the count saturates.
        if self.times.len() >= 100_000 {
            self.times.pop_front();
        }
        self.times.push_back(now_ms);
        self.last_code = Some(e.code.clone());
        if let Some(why) = self.why_critical(&e.code, e.critical) {
            self.critical_until = Some(now_ms.saturating_add(self.config.window_ms));
            self.critical_reason = Some(why);
        }
        true
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.prune(now_ms);
        self.evaluated_at = Some(now_ms);
        let n = self.times.len() as f64;
        let window = format!("{}s", num(self.config.window_ms as f64 / 1000.0));
        if let (Some(until), Some(why)) = (self.critical_until, &self.critical_reason)
            && now_ms < until
        {
            return CheckStatus::new(Status::Critical, Some(n), None, why.clone());
        }
        let (status, threshold) = self.config.levels.judge(n);
        let limit = threshold
            .map(|t| format!(" (limit {})", num(t)))
            .unwrap_or_default();
        let last = match (&self.last_code, self.times.is_empty()) {
            (Some(c), false) => format!(", last: {c}"),
            _ => String::new(),
        };
        CheckStatus::new(
            status,
            Some(n),
            threshold,
            format!("{} API errors in {window}{limit}{last}", self.times.len()),
        )
    }

    fn next_deadline(&self) -> Option<Millis> {
        let oldest = self
            .times
            .front()
            .map(|t| t.saturating_add(self.config.window_ms));
        earliest_after(
            self.evaluated_at,
            oldest.into_iter().chain(self.critical_until),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ApiError;

    fn err(code: &str, critical: bool) -> InboundEvent {
        InboundEvent::new(EventKind::ApiError(ApiError {
            venue: Some("kraken".into()),
            code: code.into(),
            message: None,
            critical,
        }))
    }

    fn rule() -> ApiErrors {
        ApiErrors::new(ApiErrorsConfig {
            levels: Levels::new(2.0, 3.0),
            critical_codes: vec!["EOrder:Insufficient funds".into()],
            ..ApiErrorsConfig::new(60_000, 3)
        })
    }

    #[test]
    fn ok_with_zero_before_any_error() {
        let mut r = rule();
        let s = r.status(0);
        assert_eq!((s.status, s.value), (Status::Ok, Some(0.0)));
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn count_in_sliding_window() {
        // error times → (status at `at`, count)
        let cases: &[(&[Millis], Millis, Status, f64)] = &[
            (&[0], 0, Status::Ok, 1.0),
            (&[0, 1000], 1000, Status::Warn, 2.0),
            (&[0, 1000, 2000], 2000, Status::Critical, 3.0),
            // the first leaves the window exactly at t + window
            (&[0, 1000, 2000], 59_999, Status::Critical, 3.0),
            (&[0, 1000, 2000], 60_000, Status::Warn, 2.0),
            (&[0, 30_000, 61_000], 61_000, Status::Warn, 2.0),
            (&[0, 1000, 2000], 62_000, Status::Ok, 0.0),
        ];
        for (times, at, want, n) in cases {
            let mut r = rule();
            for t in *times {
                assert!(r.on_event(&err("EService:Unavailable", false), *t));
                r.status(*t);
            }
            let s = r.status(*at);
            assert_eq!((s.status, s.value), (*want, Some(*n)), "{times:?} @ {at}");
        }
    }

    #[test]
    fn deadlines_follow_the_window() {
        let mut r = rule();
        for t in [0, 1000, 2000] {
            r.on_event(&err("EService:Busy", false), t);
        }
        let s = r.status(2000);
        assert_eq!(s.status, Status::Critical);
        assert_eq!(
            s.message,
            "3 API errors in 60s (limit 3), last: EService:Busy"
        );
        assert_eq!(r.next_deadline(), Some(60_000));
        assert_eq!(r.status(60_000).status, Status::Warn);
        assert_eq!(r.next_deadline(), Some(61_000));
        r.status(62_000);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn critical_codes_at_once() {
        let cases = [
            ("EOrder:Insufficient funds", false, true),
            ("EOrder:Insufficient funds (margin)", false, true), // prefix
            ("EService:Unavailable", true, true),                // flagged
            ("EAPI:Invalid key", false, true),                   // auth
            ("EAPI:Invalid signature", false, true),
            ("EGeneral:Permission denied", false, true),
            ("EGeneral:Temporary lockout", false, true),
            ("EAPI:Rate limit exceeded", false, false), // throttled: counted only
            ("EService:Unavailable", false, false),
        ];
        for (code, flagged, critical) in cases {
            let mut r = rule();
            r.on_event(&err(code, flagged), 100);
            let s = r.status(100);
            assert_eq!(
                s.status == Status::Critical,
                critical,
                "{code}: {}",
                s.message
            );
            if critical {
                assert_eq!(r.next_deadline(), Some(60_100));
                assert_eq!(r.status(60_099).status, Status::Critical);
                assert_eq!(r.status(60_100).status, Status::Ok, "{code}");
            }
        }
        let mut r = ApiErrors::new(ApiErrorsConfig {
            auth_is_critical: false,
            ..ApiErrorsConfig::new(1000, 5)
        });
        r.on_event(&err("EAPI:Invalid key", false), 0);
        assert_eq!(r.status(0).status, Status::Ok);
    }

    #[test]
    fn venue_filter() {
        let mut r = ApiErrors::new(ApiErrorsConfig {
            venue: Some("binance".into()),
            ..ApiErrorsConfig::new(1000, 1)
        });
        assert!(!r.on_event(&err("EService:Unavailable", false), 0));
        assert_eq!(r.status(0).status, Status::Ok);
    }
}
