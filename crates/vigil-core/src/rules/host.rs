//! Host resources (CPU %, RAM %): critical only when sustained.

use super::{CheckStatus, Levels, Millis, Rule, Status, earliest_after, num};
use crate::event::{EventKind, InboundEvent};

#[derive(Clone, Debug, PartialEq)]
pub struct HostResourceConfig {
    /// What is measured, for messages (`CPU`, `RAM`).
    pub label: String,
    /// The `metric` event name that feeds it (e.g. `host.cpu_pct`); the shell's sampler
    /// can also call [`HostResource::observe`] directly.
    pub metric: String,
    /// Levels in percent.
    pub levels: Levels,
    /// The value must stay at or above the critical level this long.
    pub sustain_ms: Millis,
}

/// A sampled percentage that is critical only after staying at or above the critical
/// level for `sustain_ms` (every sample in between at or above it). Above the critical
/// level but not yet sustained, or at the warn level, it warns.
#[derive(Clone, Debug, PartialEq)]
pub struct HostResource {
    pub config: HostResourceConfig,
    last: Option<f64>,
    above_since: Option<Millis>,
    evaluated_at: Option<Millis>,
}

impl HostResource {
    pub fn new(config: HostResourceConfig) -> Self {
        HostResource {
            config,
            last: None,
            above_since: None,
            evaluated_at: None,
        }
    }

    pub fn observe(&mut self, value: f64, now_ms: Millis) {
        self.last = Some(value);
        match self.config.levels.critical {
            Some(c) if value >= c => {
                self.above_since.get_or_insert(now_ms);
            }
            _ => self.above_since = None,
        }
    }
}

impl Rule for HostResource {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        match &ev.kind {
            EventKind::Metric(m) if m.name == self.config.metric => {
                self.observe(m.value, now_ms);
                true
            }
            _ => false,
        }
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.evaluated_at = Some(now_ms);
        let c = &self.config;
        let Some(v) = self.last else {
            return CheckStatus::unknown(format!("no {} sample yet", c.label));
        };
        let secs = |ms: Millis| num(ms as f64 / 1000.0);
        if let (Some(since), Some(crit)) = (self.above_since, c.levels.critical) {
            let held = now_ms.saturating_sub(since);
            if held >= c.sustain_ms {
                return CheckStatus::new(
                    Status::Critical,
                    Some(v),
                    Some(crit),
                    format!(
                        "{} {}% ≥ {}% for {}s",
                        c.label,
                        num(v),
                        num(crit),
                        secs(held)
                    ),
                );
            }
            return CheckStatus::new(
                Status::Warn,
                Some(v),
                Some(crit),
                format!(
                    "{} {}% ≥ {}% for {}s of {}s",
                    c.label,
                    num(v),
                    num(crit),
                    secs(held),
                    secs(c.sustain_ms)
                ),
            );
        }
        let (status, threshold) = match c.levels.judge(v) {
            // Not sustained (handled above) means below critical here.
            (Status::Critical, t) => (Status::Warn, t),
            other => other,
        };
        let limit = threshold
            .map(|t| format!(" (limit {}%)", num(t)))
            .unwrap_or_default();
        CheckStatus::new(
            status,
            Some(v),
            threshold,
            format!("{} {}%{limit}", c.label, num(v)),
        )
    }

    fn next_deadline(&self) -> Option<Millis> {
        let due = self
            .above_since
            .map(|s| s.saturating_add(self.config.sustain_ms));
        earliest_after(self.evaluated_at, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Metric;

    fn rule() -> HostResource {
        HostResource::new(HostResourceConfig {
            label: "CPU".into(),
            metric: "host.cpu_pct".into(),
            levels: Levels::new(80.0, 90.0),
            sustain_ms: 30_000,
        })
    }

    #[test]
    fn sustained_only() {
        // samples (t, value) → status at `at`
        type Case<'a> = (&'a [(Millis, f64)], Millis, Status);
        let cases: &[Case] = &[
            (&[], 0, Status::Unknown),
            (&[(0, 50.0)], 0, Status::Ok),
            (&[(0, 80.0)], 0, Status::Warn),
            (&[(0, 95.0)], 0, Status::Warn),
            (&[(0, 95.0)], 29_999, Status::Warn),
            (&[(0, 90.0)], 30_000, Status::Critical), // at the level, exactly sustained
            (
                &[(0, 95.0), (10_000, 99.0), (20_000, 91.0)],
                30_000,
                Status::Critical,
            ),
            // one dip below resets the clock
            (
                &[(0, 95.0), (10_000, 89.0), (20_000, 95.0)],
                30_000,
                Status::Warn,
            ),
            (
                &[(0, 95.0), (10_000, 89.0), (20_000, 95.0)],
                50_000,
                Status::Critical,
            ),
            (&[(0, 95.0), (10_000, 10.0)], 60_000, Status::Ok),
        ];
        for (samples, at, want) in cases {
            let mut r = rule();
            for (t, v) in *samples {
                r.observe(*v, *t);
            }
            let s = r.status(*at);
            assert_eq!(s.status, *want, "{samples:?} @{at}: {}", s.message);
        }
    }

    #[test]
    fn deadline_and_metric_events() {
        let mut r = rule();
        let m = |v| {
            InboundEvent::new(EventKind::Metric(Metric {
                name: "host.cpu_pct".into(),
                value: v,
            }))
        };
        assert!(r.on_event(&m(95.0), 1000));
        r.status(1000);
        assert_eq!(r.next_deadline(), Some(31_000));
        let s = r.status(31_000);
        assert_eq!(s.status, Status::Critical);
        assert_eq!(s.message, "CPU 95% ≥ 90% for 30s");
        assert_eq!(r.next_deadline(), None);
        let other = InboundEvent::new(EventKind::Metric(Metric {
            name: "host.ram_pct".into(),
            value: 99.0,
        }));
        assert!(!r.on_event(&other, 0));
    }
}
