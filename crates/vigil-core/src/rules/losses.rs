//! Consecutive losing fills.

use super::{CheckStatus, Levels, Millis, Rule, num};
use crate::event::{EventKind, InboundEvent};

/// Counts fills with `realized_pnl < 0` in a row; a fill with `realized_pnl > 0` resets
/// the count. Fills without `realized_pnl`, or with exactly 0 (opening fills,
/// break-even), leave it unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsecutiveLosses {
    /// Levels as a count of losing fills.
    pub levels: Levels,
    /// Only fills of this pair count (`None`: all pairs).
    pub pair: Option<String>,
    count: u32,
    seen: bool,
    last_pnl: Option<f64>,
}

impl ConsecutiveLosses {
    pub fn new(levels: Levels) -> Self {
        ConsecutiveLosses {
            levels,
            pair: None,
            count: 0,
            seen: false,
            last_pnl: None,
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }
}

impl Rule for ConsecutiveLosses {
    fn on_event(&mut self, ev: &InboundEvent, _now_ms: Millis) -> bool {
        let EventKind::Fill(f) = &ev.kind else {
            return false;
        };
        if self.pair.as_ref().is_some_and(|p| p != &f.pair) {
            return false;
        }
        let Some(pnl) = f.realized_pnl else {
            return false;
        };
        self.seen = true;
        self.last_pnl = Some(pnl);
        if pnl < 0.0 {
            self.count = self.count.saturating_add(1);
        } else if pnl > 0.0 {
            self.count = 0;
        }
        true
    }

    fn status(&mut self, _now_ms: Millis) -> CheckStatus {
        if !self.seen {
            return CheckStatus::unknown("no fill with realized_pnl yet");
        }
        let v = f64::from(self.count);
        let (status, threshold) = self.levels.judge(v);
        let limit = threshold
            .map(|t| format!(" (limit {})", num(t)))
            .unwrap_or_default();
        CheckStatus::new(
            status,
            Some(v),
            threshold,
            format!("{} consecutive losing fills{limit}", self.count),
        )
    }

    fn next_deadline(&self) -> Option<Millis> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fill, Side};
    use crate::rules::Status;

    fn fill(pair: &str, pnl: Option<f64>) -> InboundEvent {
        InboundEvent::new(EventKind::Fill(Fill {
            pair: pair.into(),
            side: Side::Sell,
            qty: 1.0,
            price: 1.0,
            realized_pnl: pnl,
            order_id: None,
        }))
    }

    #[test]
    fn counts_and_resets() {
        // pnl sequence → (status, count), with warn 2, critical 3
        let cases: &[(&[f64], Status, u32)] = &[
            (&[-1.0], Status::Ok, 1),
            (&[-1.0, -1.0], Status::Warn, 2),
            (&[-1.0, -1.0, -1.0], Status::Critical, 3),
            (&[-1.0, -1.0, -1.0, -1.0], Status::Critical, 4),
            (&[-1.0, -1.0, 5.0], Status::Ok, 0),
            (&[-1.0, -1.0, 5.0, -1.0], Status::Ok, 1),
            (&[-1.0, -1.0, 0.0, -1.0], Status::Critical, 3), // break-even is neutral
            (&[5.0], Status::Ok, 0),
        ];
        for (seq, want, count) in cases {
            let mut r = ConsecutiveLosses::new(Levels::new(2.0, 3.0));
            for p in *seq {
                assert!(r.on_event(&fill("X", Some(*p)), 0));
            }
            let s = r.status(0);
            assert_eq!((s.status, r.count()), (*want, *count), "{seq:?}");
            assert_eq!(s.value, Some(f64::from(*count)));
        }
    }

    #[test]
    fn unknown_until_a_fill_with_pnl_and_pair_filter() {
        let mut r = ConsecutiveLosses::new(Levels::critical(2.0));
        assert_eq!(r.status(0).status, Status::Unknown);
        assert!(!r.on_event(&fill("X", None), 0), "no realized_pnl: neutral");
        assert_eq!(r.status(0).status, Status::Unknown);
        r.pair = Some("BTC/USD".into());
        assert!(!r.on_event(&fill("ETH/USD", Some(-1.0)), 0));
        assert!(r.on_event(&fill("BTC/USD", Some(-1.0)), 0));
        assert!(r.on_event(&fill("BTC/USD", Some(-1.0)), 0));
        let s = r.status(0);
        assert_eq!(s.status, Status::Critical);
        assert_eq!(s.message, "2 consecutive losing fills (limit 2)");
        assert_eq!(r.next_deadline(), None);
    }
}
