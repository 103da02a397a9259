//! Drawdown from peak equity, in percent, on `equity` events (not summed trade ratios:
//! freqtrade's "ratios" mode confused its users; this is its "equity" mode).

use super::{CheckStatus, Levels, Millis, Rule, num};
use crate::event::{EventKind, InboundEvent};

/// `drawdown % = (peak - equity) / peak × 100`, peak = highest equity seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawdown {
    /// Levels in percent.
    pub levels: Levels,
    peak: Option<f64>,
    last: Option<f64>,
}

impl Drawdown {
    pub fn new(levels: Levels) -> Self {
        Drawdown {
            levels,
            peak: None,
            last: None,
        }
    }

    /// Starts from a peak kept across restarts.
    pub fn with_peak(mut self, peak: f64) -> Self {
        if peak.is_finite() {
            self.peak = Some(peak);
        }
        self
    }

    pub fn peak(&self) -> Option<f64> {
        self.peak
    }

    /// Forgets the peak (an operator reset); the next equity becomes the new peak.
    pub fn reset(&mut self) {
        self.peak = None;
        self.last = None;
    }

    pub fn observe(&mut self, equity: f64) {
        self.last = Some(equity);
        self.peak = Some(self.peak.map_or(equity, |p| p.max(equity)));
    }
}

impl Rule for Drawdown {
    fn on_event(&mut self, ev: &InboundEvent, _now_ms: Millis) -> bool {
        match &ev.kind {
            EventKind::Equity(e) => {
                self.observe(e.equity);
                true
            }
            _ => false,
        }
    }

    fn status(&mut self, _now_ms: Millis) -> CheckStatus {
        let (Some(peak), Some(last)) = (self.peak, self.last) else {
            return CheckStatus::unknown("no equity event yet");
        };
        if peak <= 0.0 {
            return CheckStatus::unknown(format!("peak equity {} is not positive", num(peak)));
        }
        let dd = (peak - last) / peak * 100.0;
        let (status, threshold) = self.levels.judge(dd);
        let limit = threshold
            .map(|t| format!(" (limit {}%)", num(t)))
            .unwrap_or_default();
        CheckStatus::new(
            status,
            Some(dd),
            threshold,
            format!(
                "drawdown {}% from peak {} (equity {}){limit}",
                num(dd),
                num(peak),
                num(last)
            ),
        )
    }

    fn next_deadline(&self) -> Option<Millis> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Equity;
    use crate::rules::Status;

    fn eq(v: f64) -> InboundEvent {
        InboundEvent::new(EventKind::Equity(Equity { equity: v }))
    }

    #[test]
    fn unknown_before_equity() {
        let mut r = Drawdown::new(Levels::new(5.0, 10.0));
        assert_eq!(r.status(0).status, Status::Unknown);
        assert!(!r.on_event(&InboundEvent::new(EventKind::Heartbeat), 0));
        assert_eq!(r.status(0).status, Status::Unknown);
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn below_at_above_thresholds() {
        // equity sequence → (status, drawdown %)
        let cases: &[(&[f64], Status, f64)] = &[
            (&[100.0], Status::Ok, 0.0),
            (&[100.0, 95.01], Status::Ok, 4.99),
            (&[100.0, 95.0], Status::Warn, 5.0),
            (&[100.0, 90.01], Status::Warn, 9.99),
            (&[100.0, 90.0], Status::Critical, 10.0),
            (&[100.0, 80.0], Status::Critical, 20.0),
            // peak moves up; drawdown is from the new peak
            (&[100.0, 200.0, 180.0], Status::Critical, 10.0),
            // recovery above the old peak
            (&[100.0, 85.0, 101.0], Status::Ok, 0.0),
            // not summed ratios: two 6% dips recovered are 0% now
            (&[100.0, 94.0, 100.0, 94.0, 100.0], Status::Ok, 0.0),
        ];
        for (seq, want, dd) in cases {
            let mut r = Drawdown::new(Levels::new(5.0, 10.0));
            for v in *seq {
                assert!(r.on_event(&eq(*v), 0));
            }
            let s = r.status(0);
            assert_eq!(s.status, *want, "{seq:?}: {}", s.message);
            assert!(
                (s.value.unwrap() - dd).abs() < 1e-9,
                "{seq:?}: {:?}",
                s.value
            );
        }
    }

    #[test]
    fn message_and_reset() {
        let mut r = Drawdown::new(Levels::critical(10.0)).with_peak(10_000.0);
        r.observe(8_750.0);
        let s = r.status(0);
        assert_eq!(
            s.message,
            "drawdown 12.5% from peak 10000 (equity 8750) (limit 10%)"
        );
        assert_eq!(s.threshold, Some(10.0));
        r.reset();
        assert_eq!(r.status(0).status, Status::Unknown);
        r.observe(8_750.0);
        assert_eq!(r.status(0).status, Status::Ok);
        let mut r = Drawdown::new(Levels::critical(10.0));
        r.observe(0.0);
        assert_eq!(r.status(0).status, Status::Unknown);
        r.observe(-5.0);
        assert_eq!(r.status(0).status, Status::Unknown);
    }
}
