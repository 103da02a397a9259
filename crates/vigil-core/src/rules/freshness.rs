//! Market-data freshness per pair, judged on receive time.

use std::collections::BTreeMap;

use super::{CheckStatus, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};

#[derive(Clone, Debug, PartialEq)]
pub struct FreshnessConfig {
    /// A pair is stale (critical) from `last_tick + threshold_ms`, exactly.
    pub threshold_ms: Millis,
    /// Warn from `last_tick + warn_ms`.
    pub warn_ms: Option<Millis>,
    /// Pairs that must tick. Empty: every pair that has ticked (then "never seen" is
    /// judged on there being no tick at all).
    pub pairs: Vec<String>,
    /// A pair never seen is unknown until `started_at_ms + grace_ms`, then critical.
    pub grace_ms: Millis,
    /// When monitoring started (vigil's start, or the rule's creation).
    pub started_at_ms: Millis,
}

impl FreshnessConfig {
    pub fn new(threshold_ms: Millis, pairs: Vec<String>, started_at_ms: Millis) -> Self {
        FreshnessConfig {
            threshold_ms,
            warn_ms: None,
            pairs,
            grace_ms: threshold_ms,
            started_at_ms,
        }
    }
}

/// Per-pair staleness with exact deadlines.
#[derive(Clone, Debug, PartialEq)]
pub struct Freshness {
    pub config: FreshnessConfig,
    last: BTreeMap<String, Millis>,
    evaluated_at: Option<Millis>,
}

impl Freshness {
    pub fn new(config: FreshnessConfig) -> Self {
        Freshness {
            config,
            last: BTreeMap::new(),
            evaluated_at: None,
        }
    }

    /// The last receive time of a pair's tick.
    pub fn last_tick(&self, pair: &str) -> Option<Millis> {
        self.last.get(pair).copied()
    }

    fn grace_end(&self) -> Millis {
        self.config
            .started_at_ms
            .saturating_add(self.config.grace_ms)
    }

    /// `(status, age)` of a pair, without building a message.
    fn rank(&self, last: Option<Millis>, now: Millis) -> (Status, f64) {
        let c = &self.config;
        match last {
            None if now >= self.grace_end() => (Status::Critical, f64::MAX),
            None => (Status::Unknown, f64::MAX),
            Some(t) => {
                let age = now.saturating_sub(t);
                let status = if age >= c.threshold_ms {
                    Status::Critical
                } else if c.warn_ms.is_some_and(|w| age >= w) {
                    Status::Warn
                } else {
                    Status::Ok
                };
                (status, age as f64)
            }
        }
    }

    fn never_seen(&self, pair: &str, now: Millis) -> CheckStatus {
        let c = &self.config;
        if now >= self.grace_end() {
            CheckStatus::new(
                Status::Critical,
                None,
                Some(c.threshold_ms as f64),
                format!(
                    "{pair}: never seen since start ({}s grace)",
                    num(c.grace_ms as f64 / 1000.0)
                ),
            )
            .about(pair)
        } else {
            CheckStatus::unknown(format!(
                "{pair}: no tick yet ({}s of start-up grace left)",
                num((self.grace_end() - now) as f64 / 1000.0)
            ))
            .about(pair)
        }
    }

    fn seen(&self, pair: &str, last: Millis, now: Millis) -> CheckStatus {
        let c = &self.config;
        let age = now.saturating_sub(last);
        let (status, threshold) = if age >= c.threshold_ms {
            (Status::Critical, c.threshold_ms)
        } else if let Some(w) = c.warn_ms.filter(|w| age >= *w) {
            (Status::Warn, w)
        } else {
            (Status::Ok, c.threshold_ms)
        };
        let what = if status == Status::Ok {
            "fresh"
        } else {
            "stale"
        };
        CheckStatus::new(
            status,
            Some(age as f64),
            Some(threshold as f64),
            format!(
                "{pair}: market data {what}, last tick {}s ago (limit {}s)",
                num(age as f64 / 1000.0),
                num(threshold as f64 / 1000.0)
            ),
        )
        .about(pair)
    }
}

impl Rule for Freshness {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        let EventKind::Tick(t) = &ev.kind else {
            return false;
        };
        if !self.config.pairs.is_empty() && !self.config.pairs.contains(&t.pair) {
            return false;
        }
        // Receive times only move forward for a pair.
        match self.last.get_mut(&t.pair) {
            Some(e) => *e = (*e).max(now_ms),
            None => {
                self.last.insert(t.pair.clone(), now_ms);
            }
        }
        true
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.evaluated_at = Some(now_ms);
        // Rank every pair cheaply, then describe only the worst one.
        let candidates: Box<dyn Iterator<Item = (&str, Option<Millis>)>> =
            match (self.config.pairs.is_empty(), self.last.is_empty()) {
                (true, true) => Box::new(std::iter::once(("any pair", None))),
                (true, false) => Box::new(self.last.iter().map(|(p, &t)| (p.as_str(), Some(t)))),
                (false, _) => Box::new(
                    self.config
                        .pairs
                        .iter()
                        .map(|p| (p.as_str(), self.last.get(p).copied())),
                ),
            };
        let mut worst: Option<((Status, f64), &str, Option<Millis>)> = None;
        for (pair, last) in candidates {
            let r = self.rank(last, now_ms);
            if worst.as_ref().is_none_or(|(w, _, _)| r > *w) {
                worst = Some((r, pair, last));
            }
        }
        match worst {
            None => CheckStatus::unknown("no pair configured"),
            Some((_, pair, Some(last))) => self.seen(pair, last, now_ms),
            Some((_, pair, None)) => self.never_seen(pair, now_ms),
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let c = &self.config;
        let per_pair = self.last.values().flat_map(|&t| {
            c.warn_ms
                .map(|w| t.saturating_add(w))
                .into_iter()
                .chain([t.saturating_add(c.threshold_ms)])
        });
        let unseen = c.pairs.iter().any(|p| !self.last.contains_key(p))
            || (c.pairs.is_empty() && self.last.is_empty());
        let grace = unseen.then(|| self.grace_end());
        earliest_after(self.evaluated_at, per_pair.chain(grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tick;

    fn tick(pair: &str) -> InboundEvent {
        InboundEvent::new(EventKind::Tick(Tick {
            pair: pair.into(),
            price: 1.0,
            bid: None,
            ask: None,
        }))
    }

    fn rule(pairs: &[&str]) -> Freshness {
        Freshness::new(FreshnessConfig {
            warn_ms: Some(1000),
            grace_ms: 5000,
            ..FreshnessConfig::new(2000, pairs.iter().map(|p| p.to_string()).collect(), 0)
        })
    }

    #[test]
    fn exact_deadlines_below_at_above() {
        let mut r = rule(&["BTC/USD"]);
        r.status(0);
        assert!(r.on_event(&tick("BTC/USD"), 10_000));
        // (now, status, age)
        let cases = [
            (10_000, Status::Ok, 0.0),
            (10_999, Status::Ok, 999.0),
            (11_000, Status::Warn, 1000.0),
            (11_999, Status::Warn, 1999.0),
            (12_000, Status::Critical, 2000.0),
            (99_000, Status::Critical, 89_000.0),
        ];
        for (now, want, age) in cases {
            let s = r.status(now);
            assert_eq!(
                (s.status, s.value),
                (want, Some(age)),
                "@{now}: {}",
                s.message
            );
        }
    }

    #[test]
    fn next_deadline_is_last_tick_plus_threshold() {
        let mut r = rule(&["BTC/USD"]);
        r.on_event(&tick("BTC/USD"), 10_000);
        r.status(10_000);
        assert_eq!(r.next_deadline(), Some(11_000), "warn first");
        r.status(11_000);
        assert_eq!(r.next_deadline(), Some(12_000));
        r.status(12_000);
        assert_eq!(r.next_deadline(), None, "stale: only a tick can change it");
        // a new tick moves the deadline
        r.on_event(&tick("BTC/USD"), 12_500);
        r.status(12_500);
        assert_eq!(r.next_deadline(), Some(13_500));
        let s = r.status(13_500);
        assert_eq!(s.status, Status::Warn);
        assert_eq!(r.next_deadline(), Some(14_500));
        assert_eq!(r.status(14_500).status, Status::Critical);
        assert_eq!(
            r.status(14_500).message,
            "BTC/USD: market data stale, last tick 2s ago (limit 2s)"
        );
    }

    #[test]
    fn never_seen_after_grace() {
        let mut r = rule(&["BTC/USD", "ETH/USD"]);
        let s = r.status(0);
        assert_eq!(s.status, Status::Unknown, "{}", s.message);
        assert_eq!(r.next_deadline(), Some(5000));
        r.on_event(&tick("BTC/USD"), 100);
        let s = r.status(100);
        assert_eq!(
            s.status,
            Status::Unknown,
            "ETH still in grace: {}",
            s.message
        );
        assert_eq!(s.subject.as_deref(), Some("ETH/USD"));
        assert_eq!(
            r.status(4999).status,
            Status::Critical,
            "BTC went stale at 2100"
        );
        r.on_event(&tick("BTC/USD"), 4999);
        assert_eq!(r.status(4999).status, Status::Unknown);
        let s = r.status(5000);
        assert_eq!(s.status, Status::Critical);
        assert_eq!(s.message, "ETH/USD: never seen since start (5s grace)");
        assert!(
            !r.on_event(&tick("DOGE/USD"), 5000),
            "not a configured pair"
        );
    }

    #[test]
    fn any_pair_mode() {
        let mut r = rule(&[]);
        assert_eq!(r.status(0).status, Status::Unknown);
        assert_eq!(r.status(5000).status, Status::Critical);
        assert!(r.on_event(&tick("X"), 5000));
        assert_eq!(r.status(5000).status, Status::Ok);
        assert_eq!(r.next_deadline(), Some(6000));
        r.on_event(&tick("Y"), 6500);
        let s = r.status(7000);
        assert_eq!(
            (s.status, s.subject.as_deref()),
            (Status::Critical, Some("X"))
        );
    }

    #[test]
    fn no_tick_never_clears() {
        // Other events are not market data.
        let mut r = rule(&["BTC/USD"]);
        r.on_event(&tick("BTC/USD"), 0);
        assert!(!r.on_event(&InboundEvent::new(EventKind::Heartbeat), 2500));
        assert_eq!(r.status(2500).status, Status::Critical);
    }
}
