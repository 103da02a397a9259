//! Volatility: the absolute move of a pair's price in percent against a reference over a
//! sliding window, which must hold for `confirm_ms` (LULD-style) so that one bad tick
//! cannot trip it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{CheckStatus, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};

/// The reference price a tick is compared with: computed over the ticks received in the
/// window before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Reference {
    /// The arithmetic mean (LULD).
    #[default]
    Mean,
    /// The oldest price still in the window.
    First,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VolatilityConfig {
    pub window_ms: Millis,
    /// Percent; an absolute move at or above it is a breach.
    pub critical_pct: f64,
    pub warn_pct: Option<f64>,
    pub confirm_ms: Millis,
    pub reference: Reference,
    /// Pairs to watch; empty: every pair that ticks.
    pub pairs: Vec<String>,
}

impl VolatilityConfig {
    pub fn new(window_ms: Millis, critical_pct: f64, confirm_ms: Millis) -> Self {
        VolatilityConfig {
            window_ms,
            critical_pct,
            warn_pct: None,
            confirm_ms,
            reference: Reference::Mean,
            pairs: Vec::new(),
        }
    }
}

/// One tick kept in the window; `breach` ticks stay out of the reference while calmer
/// ones remain, so a bad print cannot drag the reference after it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    t: Millis,
    price: f64,
    breach: bool,
}

/// Most ticks kept per pair (the window is bounded by count as well as time: a flood of
/// ticks keeps the most recent ones).
pub const MAX_SAMPLES: usize = 100_000;
/// Most pairs followed when `pairs` is not configured (further pairs are ignored).
pub const MAX_PAIRS: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Default)]
struct PairState {
    samples: VecDeque<Sample>,
    /// Sum and count of the non-breach samples.
    calm_sum: f64,
    calm_n: usize,
    all_sum: f64,
    last_tick: Millis,
    /// Signed move of the last tick vs its reference, percent.
    last_move: Option<f64>,
    last_ref: f64,
    breach_since: Option<Millis>,
    breach_ticks: u32,
}

impl PairState {
    /// Drop samples older than the window, and the oldest beyond [`MAX_SAMPLES`].
    fn prune(&mut self, now: Millis, window: Millis) {
        while let Some(&s) = self.samples.front() {
            if s.t.saturating_add(window) <= now || self.samples.len() >= MAX_SAMPLES {
                self.samples.pop_front();
                self.all_sum -= s.price;
                if !s.breach {
                    self.calm_sum -= s.price;
                    self.calm_n -= 1;
                }
            } else {
                break;
            }
        }
        if self.samples.is_empty() {
            self.all_sum = 0.0;
        }
        if self.calm_n == 0 {
            self.calm_sum = 0.0;
        }
    }

    /// The reference over the window: calm samples if any are left, else all of them.
    fn reference(&self, how: Reference) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let calm = self.calm_n > 0;
        Some(match how {
            Reference::Mean if calm => self.calm_sum / self.calm_n as f64,
            Reference::Mean => self.all_sum / self.samples.len() as f64,
            Reference::First => self
                .samples
                .iter()
                .find(|s| !calm || !s.breach)
                .map_or(0.0, |s| s.price),
        })
    }

    fn push(&mut self, t: Millis, price: f64, breach: bool) {
        self.samples.push_back(Sample { t, price, breach });
        self.all_sum += price;
        if !breach {
            self.calm_sum += price;
            self.calm_n += 1;
        }
    }
}

/// Per-pair volatility rule.
///
/// On each tick, the move is `(price − reference) / reference × 100` with the reference
/// taken over the earlier ticks still in the window (so the first tick has no move),
/// leaving out ticks that were themselves in breach as long as calmer ones remain: a bad
/// print does not drag the reference, and a sustained new level becomes the reference
/// once the old prices have left the window. A
/// pair is in breach from the first tick whose absolute move reaches `critical_pct`
/// until a tick that does not. It becomes critical once the breach has lasted
/// `confirm_ms` **and** at least two ticks were in breach (with `confirm_ms = 0`, one is
/// enough): a single bad print followed by silence stays a warning. A pair with no tick
/// for a whole window goes back to unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct Volatility {
    pub config: VolatilityConfig,
    pairs: BTreeMap<String, PairState>,
    evaluated_at: Option<Millis>,
}

impl Volatility {
    pub fn new(config: VolatilityConfig) -> Self {
        let pairs = config
            .pairs
            .iter()
            .map(|p| (p.clone(), PairState::default()))
            .collect();
        Volatility {
            config,
            pairs,
            evaluated_at: None,
        }
    }

    /// `(status, |move|)` of a pair, without building a message.
    fn pair_rank(&self, st: &PairState, now: Millis) -> (Status, f64) {
        let c = &self.config;
        let Some(mv) = st.last_move else {
            return (Status::Unknown, 0.0);
        };
        if now >= st.last_tick.saturating_add(c.window_ms) {
            return (Status::Unknown, 0.0);
        }
        let abs = mv.abs();
        let status = match st.breach_since {
            Some(since)
                if now >= since.saturating_add(c.confirm_ms)
                    && (c.confirm_ms == 0 || st.breach_ticks >= 2) =>
            {
                Status::Critical
            }
            Some(_) => Status::Warn,
            None if c.warn_pct.is_some_and(|w| abs >= w) => Status::Warn,
            None => Status::Ok,
        };
        (status, abs)
    }

    fn pair_status(&self, pair: &str, st: &PairState, now: Millis) -> CheckStatus {
        let c = &self.config;
        let secs = |ms: Millis| num(ms as f64 / 1000.0);
        let (status, abs) = self.pair_rank(st, now);
        let Some(mv) = st.last_move else {
            return CheckStatus::unknown(format!("{pair}: not enough ticks yet")).about(pair);
        };
        if status == Status::Unknown {
            return CheckStatus::unknown(format!(
                "{pair}: no tick in the last {}s",
                secs(c.window_ms)
            ))
            .about(pair);
        }
        let desc = format!(
            "volatility: {pair} moved {}{}% vs {}s {} {} (limit {}%)",
            if mv >= 0.0 { "+" } else { "" },
            num(mv),
            secs(c.window_ms),
            match c.reference {
                Reference::Mean => "mean",
                Reference::First => "first",
            },
            num(st.last_ref),
            num(c.critical_pct),
        );
        let held = st.breach_since.map_or(0, |s| now.saturating_sub(s));
        let (threshold, message) = match (status, st.breach_since) {
            (Status::Critical, _) => (c.critical_pct, format!("{desc}, held {}s", secs(held))),
            (_, Some(_)) => (
                c.critical_pct,
                format!(
                    "{desc}, unconfirmed ({} tick(s) in breach for {}s of {}s)",
                    st.breach_ticks,
                    secs(held),
                    secs(c.confirm_ms)
                ),
            ),
            (Status::Warn, None) => (c.warn_pct.unwrap_or(c.critical_pct), desc),
            _ => (c.critical_pct, desc),
        };
        CheckStatus::new(status, Some(abs), Some(threshold), message).about(pair)
    }
}

impl Rule for Volatility {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        let EventKind::Tick(t) = &ev.kind else {
            return false;
        };
        if !self.config.pairs.is_empty() && !self.config.pairs.contains(&t.pair) {
            return false;
        }
        let window = self.config.window_ms;
        let (critical, reference) = (self.config.critical_pct, self.config.reference);
        if !self.pairs.contains_key(&t.pair) {
            if self.pairs.len() >= MAX_PAIRS {
                return false;
            }
            self.pairs.insert(t.pair.clone(), PairState::default());
        }
        let Some(st) = self.pairs.get_mut(&t.pair) else {
            return false;
        };
        st.prune(now_ms, window);
        let mut breach = false;
        if let Some(r) = st.reference(reference).filter(|r| *r > 0.0) {
            let mv = (t.price - r) / r * 100.0;
            st.last_move = Some(mv);
            st.last_ref = r;
            breach = mv.abs() >= critical;
            if breach {
                if st.breach_since.is_none() {
                    st.breach_since = Some(now_ms);
                    st.breach_ticks = 0;
                }
                st.breach_ticks = st.breach_ticks.saturating_add(1);
            } else {
                st.breach_since = None;
                st.breach_ticks = 0;
            }
        }
        st.push(now_ms, t.price, breach);
        st.last_tick = now_ms;
        true
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.evaluated_at = Some(now_ms);
        // Rank every pair cheaply, then describe only the worst one.
        let mut worst: Option<((Status, f64), &str, &PairState)> = None;
        for (pair, st) in &self.pairs {
            let r = self.pair_rank(st, now_ms);
            if worst.as_ref().is_none_or(|(w, _, _)| r > *w) {
                worst = Some((r, pair, st));
            }
        }
        match worst {
            Some((_, pair, st)) => self.pair_status(pair, st, now_ms),
            None => CheckStatus::unknown("no tick yet"),
        }
    }

    fn next_deadline(&self) -> Option<Millis> {
        let c = &self.config;
        let candidates = self.pairs.values().flat_map(|st| {
            let confirm = st
                .breach_since
                .filter(|_| c.confirm_ms == 0 || st.breach_ticks >= 2)
                .map(|s| s.saturating_add(c.confirm_ms));
            let silent = st
                .last_move
                .map(|_| st.last_tick.saturating_add(c.window_ms));
            confirm.into_iter().chain(silent)
        });
        earliest_after(self.evaluated_at, candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tick;

    fn tick(pair: &str, price: f64) -> InboundEvent {
        InboundEvent::new(EventKind::Tick(Tick {
            pair: pair.into(),
            price,
            bid: None,
            ask: None,
        }))
    }

    fn cfg() -> VolatilityConfig {
        VolatilityConfig {
            warn_pct: Some(3.0),
            ..VolatilityConfig::new(300_000, 5.0, 15_000)
        }
    }

    fn feed(r: &mut Volatility, ticks: &[(Millis, f64)]) {
        for (t, p) in ticks {
            assert!(r.on_event(&tick("BTC/USD", *p), *t));
            r.status(*t);
        }
    }

    #[test]
    fn unknown_until_a_reference_exists() {
        let mut r = Volatility::new(cfg());
        assert_eq!(r.status(0).status, Status::Unknown);
        feed(&mut r, &[(0, 100.0)]);
        assert_eq!(r.status(0).status, Status::Unknown);
        feed(&mut r, &[(1000, 100.0)]);
        assert_eq!(r.status(1000).status, Status::Ok);
        // configured pairs that never ticked are unknown
        let mut r = Volatility::new(VolatilityConfig {
            pairs: vec!["ETH/USD".into()],
            ..cfg()
        });
        assert_eq!(r.status(0).status, Status::Unknown);
        assert!(!r.on_event(&tick("BTC/USD", 1.0), 0), "not a watched pair");
    }

    #[test]
    fn move_thresholds_vs_mean() {
        // (prices after a base of 100 at t=0, status right after the last tick, |move|)
        let cases: &[(&[f64], Status, f64)] = &[
            (&[102.9], Status::Ok, 2.9),
            (&[103.0], Status::Warn, 3.0),
            (&[95.1], Status::Warn, 4.9),
            (&[105.0], Status::Warn, 5.0), // breach, but unconfirmed
            (&[94.0], Status::Warn, 6.0),
        ];
        for (prices, want, mv) in cases {
            let mut r = Volatility::new(cfg());
            feed(&mut r, &[(0, 100.0)]);
            for (i, p) in prices.iter().enumerate() {
                feed(&mut r, &[(1000 * (i as u64 + 1), *p)]);
            }
            let s = r.status(1000 * prices.len() as u64);
            assert_eq!(s.status, *want, "{prices:?}: {}", s.message);
            assert!(
                (s.value.unwrap() - mv).abs() < 1e-9,
                "{prices:?} {:?}",
                s.value
            );
        }
    }

    #[test]
    fn the_window_is_bounded_by_count() {
        let mut r = Volatility::new(cfg());
        for i in 0..(MAX_SAMPLES as u64 + 50) {
            r.on_event(&tick("BTC/USD", 100.0), i / 1000);
        }
        let st = &r.pairs["BTC/USD"];
        assert_eq!(st.samples.len(), MAX_SAMPLES);
        assert!((st.all_sum - 100.0 * MAX_SAMPLES as f64).abs() < 1e-3);
        for i in 0..(MAX_PAIRS + 5) {
            r.on_event(&tick(&format!("P{i}/USD"), 1.0), 1);
        }
        assert_eq!(r.pairs.len(), MAX_PAIRS);
    }

    #[test]
    fn one_bad_tick_cannot_trip_it() {
        let mut r = Volatility::new(cfg());
        feed(&mut r, &[(0, 100.0), (1000, 100.0), (2000, 150.0)]);
        assert_eq!(r.status(2000).status, Status::Warn);
        // silence after the bad print: still only a warning at and after confirm time
        assert_eq!(r.status(17_000).status, Status::Warn);
        assert_eq!(r.status(200_000).status, Status::Warn);
        // a normal tick ends the breach
        let mut r = Volatility::new(cfg());
        feed(&mut r, &[(0, 100.0), (1000, 150.0), (2000, 100.5)]);
        let s = r.status(20_000);
        assert!(
            (s.value.unwrap() - 0.5).abs() < 1e-9,
            "the bad print is not in the reference"
        );
        assert_eq!(s.status, Status::Ok, "{}", s.message);
    }

    #[test]
    fn confirmed_breach_trips_exactly_at_confirm() {
        let mut r = Volatility::new(cfg());
        feed(
            &mut r,
            &[(0, 100.0), (1000, 100.0), (2000, 93.0), (3000, 92.0)],
        );
        assert_eq!(r.status(3000).status, Status::Warn);
        assert_eq!(r.next_deadline(), Some(17_000), "breach since 2000 + 15 s");
        assert_eq!(r.status(16_999).status, Status::Warn);
        let s = r.status(17_000);
        assert_eq!(s.status, Status::Critical, "{}", s.message);
        assert!(
            s.message.starts_with("volatility: BTC/USD moved -"),
            "{}",
            s.message
        );
        assert!(s.message.contains("(limit 5%)"), "{}", s.message);
        assert_eq!(s.subject.as_deref(), Some("BTC/USD"));
        assert_eq!(s.threshold, Some(5.0));
        // recovery: a tick within the band
        feed(&mut r, &[(18_000, 99.0)]);
        assert_eq!(r.status(18_000).status, Status::Ok);
    }

    #[test]
    fn sustained_new_level_becomes_the_reference() {
        let mut r = Volatility::new(VolatilityConfig::new(10_000, 5.0, 2000));
        feed(&mut r, &[(0, 100.0), (1000, 100.0)]);
        for t in (2000..=10_000).step_by(1000) {
            feed(&mut r, &[(t, 90.0)]);
        }
        assert_eq!(r.status(10_000).status, Status::Critical);
        // 11_000: the ticks at 0 and 1000 have left the window; 90 is the new reference
        feed(&mut r, &[(11_000, 90.0)]);
        let s = r.status(11_000);
        assert_eq!(
            (s.status, s.value),
            (Status::Ok, Some(0.0)),
            "{}",
            s.message
        );
    }

    #[test]
    fn confirm_zero_is_instant_and_first_reference() {
        let mut r = Volatility::new(VolatilityConfig {
            reference: Reference::First,
            ..VolatilityConfig::new(10_000, 5.0, 0)
        });
        feed(&mut r, &[(0, 100.0), (1000, 104.0), (2000, 105.0)]);
        let s = r.status(2000);
        assert_eq!(s.status, Status::Critical, "vs first (100), not mean (102)");
    }

    #[test]
    fn window_prunes_old_ticks_and_silence_is_unknown() {
        let mut r = Volatility::new(VolatilityConfig::new(10_000, 5.0, 0));
        feed(&mut r, &[(0, 100.0), (5000, 100.0)]);
        // at 10_000 the tick at 0 has left the window: reference is 100 (the tick at 5000)
        feed(&mut r, &[(10_000, 104.0)]);
        assert_eq!(r.status(10_000).status, Status::Ok);
        assert_eq!(r.next_deadline(), Some(20_000));
        let s = r.status(20_000);
        assert_eq!(s.status, Status::Unknown, "{}", s.message);
    }

    #[test]
    fn worst_pair_decides() {
        let mut r = Volatility::new(VolatilityConfig::new(60_000, 5.0, 0));
        for (t, pair, p) in [
            (0, "A", 100.0),
            (0, "B", 100.0),
            (1, "A", 101.0),
            (1, "B", 110.0),
        ] {
            r.on_event(&tick(pair, p), t);
        }
        let s = r.status(1);
        assert_eq!(s.status, Status::Critical);
        assert_eq!(s.subject.as_deref(), Some("B"));
    }
}
