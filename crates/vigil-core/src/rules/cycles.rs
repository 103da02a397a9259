//! Loop cycles (`cycle` events): overrun count and rate, p50/p95/p99 over a sliding
//! window, against `target_ms`.

use std::collections::VecDeque;

use serde::Serialize;

use super::{CheckStatus, Levels, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};

#[derive(Clone, Debug, PartialEq)]
pub struct CyclesConfig {
    /// Only cycles with this `name` (`None`: all).
    pub name: Option<String>,
    /// The sliding window: a cycle at `t` counts while `now < t + window_ms`.
    pub window_ms: Millis,
    /// The target used when an event carries no `target_ms`.
    pub target_ms: Option<f64>,
    /// Levels on the overrun rate in the window, in percent.
    pub overrun_pct: Levels,
    /// Fewer cycles than this in the window: unknown (too few to judge a rate).
    pub min_samples: usize,
    /// At most this many cycles are kept (the oldest go first).
    pub max_samples: usize,
}

impl CyclesConfig {
    pub fn new(window_ms: Millis, overrun_pct: Levels) -> Self {
        CyclesConfig {
            name: None,
            window_ms,
            target_ms: None,
            overrun_pct,
            min_samples: 1,
            max_samples: 100_000,
        }
    }
}

/// Statistics over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CycleStats {
    pub count: usize,
    /// Cycles whose duration exceeded their target (`duration_ms > target_ms`).
    pub overruns: usize,
    /// `overruns / cycles with a known target`, percent (0 when none has a target).
    pub overrun_pct: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// The latest target seen.
    pub target_ms: Option<f64>,
    /// Since start, not just in the window.
    pub total_count: u64,
    pub total_overruns: u64,
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100); 0 for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    t: Millis,
    duration: f64,
    target: Option<f64>,
}

/// Loop-cycle rule: critical and warn on the overrun rate; a warning also when p99 is
/// above the target while the rate is below its levels.
#[derive(Clone, Debug, PartialEq)]
pub struct Cycles {
    pub config: CyclesConfig,
    samples: VecDeque<Sample>,
    total_count: u64,
    total_overruns: u64,
    last_target: Option<f64>,
    last_stats: Option<CycleStats>,
    evaluated_at: Option<Millis>,
}

impl Cycles {
    pub fn new(config: CyclesConfig) -> Self {
        Cycles {
            config,
            samples: VecDeque::new(),
            total_count: 0,
            total_overruns: 0,
            last_target: None,
            last_stats: None,
            evaluated_at: None,
        }
    }

    /// The statistics of the last evaluation.
    pub fn stats(&self) -> Option<&CycleStats> {
        self.last_stats.as_ref()
    }

    fn prune(&mut self, now: Millis) {
        while let Some(s) = self.samples.front() {
            if s.t.saturating_add(self.config.window_ms) <= now {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn compute(&self) -> CycleStats {
        let mut d: Vec<f64> = self.samples.iter().map(|s| s.duration).collect();
        d.sort_by(f64::total_cmp);
        let with_target = self.samples.iter().filter(|s| s.target.is_some()).count();
        let overruns = self
            .samples
            .iter()
            .filter(|s| s.target.is_some_and(|t| s.duration > t))
            .count();
        CycleStats {
            count: d.len(),
            overruns,
            overrun_pct: if with_target == 0 {
                0.0
            } else {
                overruns as f64 * 100.0 / with_target as f64
            },
            p50: percentile(&d, 50.0),
            p95: percentile(&d, 95.0),
            p99: percentile(&d, 99.0),
            max: d.last().copied().unwrap_or(0.0),
            target_ms: self.last_target,
            total_count: self.total_count,
            total_overruns: self.total_overruns,
        }
    }
}

impl Rule for Cycles {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        let EventKind::Cycle(c) = &ev.kind else {
            return false;
        };
        if self.config.name.is_some() && self.config.name != c.name {
            return false;
        }
        let target = c.target_ms.or(self.config.target_ms);
        self.prune(now_ms);
        if self.samples.len() >= self.config.max_samples.max(1) {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            t: now_ms,
            duration: c.duration_ms,
            target,
        });
        self.total_count += 1;
        if target.is_some_and(|t| c.duration_ms > t) {
            self.total_overruns += 1;
        }
        if target.is_some() {
            self.last_target = target;
        }
        true
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.prune(now_ms);
        self.evaluated_at = Some(now_ms);
        let window = num(self.config.window_ms as f64 / 1000.0);
        if self.samples.is_empty() {
            self.last_stats = None;
            let why = if self.total_count == 0 {
                "no cycle yet".to_owned()
            } else {
                format!("no cycle in the last {window}s")
            };
            return CheckStatus::unknown(why);
        }
        let st = self.compute();
        let target = st
            .target_ms
            .map(|t| format!("target {}ms", num(t)))
            .unwrap_or_else(|| "no target".into());
        let msg = format!(
            "overruns {}/{} ({}%) in {window}s; p50 {}ms p95 {}ms p99 {}ms; {target}",
            st.overruns,
            st.count,
            num(st.overrun_pct),
            num(st.p50),
            num(st.p95),
            num(st.p99),
        );
        let enough = st.count >= self.config.min_samples;
        let result = if !enough {
            CheckStatus::new(
                Status::Unknown,
                Some(st.overrun_pct),
                None,
                format!(
                    "only {} cycle(s) in window (need {}); {msg}",
                    st.count, self.config.min_samples
                ),
            )
        } else {
            let (mut status, threshold) = self.config.overrun_pct.judge(st.overrun_pct);
            if status == Status::Ok && st.target_ms.is_some_and(|t| st.p99 > t) {
                status = Status::Warn;
            }
            CheckStatus::new(status, Some(st.overrun_pct), threshold, msg)
        };
        self.last_stats = Some(st);
        result
    }

    fn next_deadline(&self) -> Option<Millis> {
        let oldest = self
            .samples
            .front()
            .map(|s| s.t.saturating_add(self.config.window_ms));
        earliest_after(self.evaluated_at, oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Cycle;

    fn cycle(name: &str, d: f64, target: Option<f64>) -> InboundEvent {
        InboundEvent::new(EventKind::Cycle(Cycle {
            name: Some(name.into()),
            duration_ms: d,
            target_ms: target,
        }))
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
    }

    #[test]
    fn overrun_rate_levels() {
        // 10 cycles with target 50: `over` of them take 60 ms (an overrun), the rest 50
        // ms (exactly on target: not an overrun). Warn 10%, critical 30%.
        let cases = [
            (0, Status::Ok),
            (1, Status::Warn), // 10% reaches warn
            (2, Status::Warn),
            (3, Status::Critical), // 30%
            (10, Status::Critical),
        ];
        for (over, want) in cases {
            let mut r = Cycles::new(CyclesConfig::new(60_000, Levels::new(10.0, 30.0)));
            for i in 0..10 {
                let d = if i < over { 60.0 } else { 50.0 };
                assert!(r.on_event(&cycle("main", d, Some(50.0)), i));
            }
            let s = r.status(10);
            assert_eq!(s.status, want, "{over}: {}", s.message);
            assert_eq!(s.value, Some(over as f64 * 10.0));
            assert_eq!(r.stats().map(|s| s.overruns), Some(over as usize));
        }
    }

    #[test]
    fn p99_above_target_warns() {
        let mut r = Cycles::new(CyclesConfig::new(60_000, Levels::critical(50.0)));
        for i in 0..100 {
            let d = if i == 99 { 80.0 } else { 10.0 };
            r.on_event(&cycle("main", d, Some(20.0)), i);
        }
        let s = r.status(100);
        // 1% overruns is below critical; p99 (nearest rank 99 of 100) is 10 → ok
        assert_eq!(s.status, Status::Ok, "{}", s.message);
        r.on_event(&cycle("main", 80.0, Some(20.0)), 101);
        let s = r.status(101);
        assert_eq!(s.status, Status::Warn, "p99 now 80 > 20: {}", s.message);
        let st = r.stats().unwrap();
        assert_eq!((st.p50, st.p99, st.max), (10.0, 80.0, 80.0));
        assert_eq!((st.total_count, st.total_overruns), (101, 2));
    }

    #[test]
    fn window_deadlines_and_unknown() {
        let mut r = Cycles::new(CyclesConfig {
            target_ms: Some(50.0),
            ..CyclesConfig::new(1000, Levels::critical(50.0))
        });
        assert_eq!(r.status(0).status, Status::Unknown);
        r.on_event(&cycle("main", 100.0, None), 0); // uses the configured target
        r.on_event(&cycle("main", 10.0, None), 500);
        let s = r.status(500);
        assert_eq!((s.status, s.value), (Status::Critical, Some(50.0)));
        assert_eq!(
            r.next_deadline(),
            Some(1000),
            "the overrun leaves the window"
        );
        let s = r.status(1000);
        assert_eq!((s.status, s.value), (Status::Ok, Some(0.0)));
        assert_eq!(r.next_deadline(), Some(1500));
        let s = r.status(1500);
        assert_eq!(s.status, Status::Unknown);
        assert_eq!(s.message, "no cycle in the last 1s");
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn name_filter_min_samples_and_cap() {
        let mut r = Cycles::new(CyclesConfig {
            name: Some("main".into()),
            min_samples: 3,
            max_samples: 3,
            ..CyclesConfig::new(60_000, Levels::critical(50.0))
        });
        assert!(!r.on_event(&cycle("other", 1.0, Some(1.0)), 0));
        r.on_event(&cycle("main", 100.0, Some(10.0)), 0);
        r.on_event(&cycle("main", 1.0, Some(10.0)), 1);
        assert_eq!(r.status(1).status, Status::Unknown, "2 < min_samples");
        r.on_event(&cycle("main", 1.0, Some(10.0)), 2);
        let s = r.status(2);
        assert_eq!(s.value.map(f64::round), Some(33.0));
        assert_eq!(
            s.status,
            Status::Warn,
            "33% < 50%, but p99 (100) > target (10)"
        );
        r.on_event(&cycle("main", 1.0, Some(10.0)), 3); // pushes out the first
        assert_eq!(r.stats().map(|s| s.count), Some(3));
        let s = r.status(3);
        assert_eq!((s.status, s.value), (Status::Ok, Some(0.0)));
    }
}
