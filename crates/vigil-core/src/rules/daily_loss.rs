//! Daily loss, reset at a configured UTC time of day (a pure calculation on `now_ms`).

use serde::{Deserialize, Serialize};

use super::{CheckStatus, Levels, Millis, Rule, num};
use crate::event::{EventKind, InboundEvent};

/// Milliseconds in a (UTC, leap-second-free) day.
pub const DAY_MS: Millis = 86_400_000;

/// Start of the trading day containing `now_ms`, for days starting at `reset_ms` after
/// UTC midnight (`0 ≤ reset_ms < DAY_MS`). Saturates at 0 before the first reset of 1970.
pub fn day_start(now_ms: Millis, reset_ms: Millis) -> Millis {
    next_reset(now_ms, reset_ms).saturating_sub(DAY_MS)
}

/// The next reset strictly after `now_ms`.
pub fn next_reset(now_ms: Millis, reset_ms: Millis) -> Millis {
    let reset_ms = reset_ms % DAY_MS;
    // Shift by one day so times before the first reset do not underflow.
    let shifted = now_ms.saturating_add(DAY_MS - reset_ms);
    (shifted / DAY_MS) * DAY_MS + reset_ms
}

/// `"HH:MM"` or `"HH:MM:SS"` (UTC) → milliseconds after midnight.
pub fn parse_time_of_day(s: &str) -> Result<Millis, String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("expected HH:MM or HH:MM:SS, got {s:?}"));
    }
    let mut vals = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected HH:MM or HH:MM:SS, got {s:?}"));
        }
        vals[i] = p.parse().map_err(|_| format!("bad number in {s:?}"))?;
    }
    let [h, m, sec] = vals;
    if h > 23 || m > 59 || sec > 59 {
        return Err(format!("time of day out of range: {s:?}"));
    }
    Ok(((h * 60 + m) * 60 + sec) * 1000)
}

/// What the daily loss is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DailyBasis {
    /// Percent of the equity at the start of the day (the last equity seen before the
    /// reset, or the first one of the day if none): levels in percent.
    Equity,
    /// The sum of today's fills' `realized_pnl`, negated: levels in quote currency.
    RealizedPnl,
}

/// Daily loss rule. Days are judged on receive time.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyLoss {
    pub basis: DailyBasis,
    /// Loss levels (positive numbers): percent for `Equity`, quote currency for `RealizedPnl`.
    pub levels: Levels,
    /// Milliseconds after UTC midnight at which the day resets.
    pub reset_ms: Millis,
    day: Option<Millis>,
    start_equity: Option<f64>,
    last_equity: Option<f64>,
    pnl: f64,
    seen_fill: bool,
    evaluated_at: Option<Millis>,
}

impl DailyLoss {
    pub fn new(basis: DailyBasis, levels: Levels, reset_ms: Millis) -> Self {
        DailyLoss {
            basis,
            levels,
            reset_ms: reset_ms % DAY_MS,
            day: None,
            start_equity: None,
            last_equity: None,
            pnl: 0.0,
            seen_fill: false,
            evaluated_at: None,
        }
    }

    fn roll(&mut self, now: Millis) {
        let d = day_start(now, self.reset_ms);
        match self.day {
            Some(cur) if cur >= d => {}
            Some(_) => {
                self.day = Some(d);
                self.start_equity = self.last_equity;
                self.pnl = 0.0;
            }
            None => self.day = Some(d),
        }
    }

    /// Today's realized PnL (quote currency).
    pub fn realized_today(&self) -> f64 {
        self.pnl
    }
}

impl Rule for DailyLoss {
    fn on_event(&mut self, ev: &InboundEvent, now_ms: Millis) -> bool {
        match &ev.kind {
            EventKind::Equity(e) => {
                self.roll(now_ms);
                self.last_equity = Some(e.equity);
                if self.start_equity.is_none() {
                    self.start_equity = Some(e.equity);
                }
                self.basis == DailyBasis::Equity
            }
            EventKind::Fill(f) => {
                self.roll(now_ms);
                self.seen_fill = true;
                self.pnl += f.realized_pnl.unwrap_or(0.0);
                self.basis == DailyBasis::RealizedPnl
            }
            _ => false,
        }
    }

    fn status(&mut self, now_ms: Millis) -> CheckStatus {
        self.roll(now_ms);
        self.evaluated_at = Some(now_ms);
        let (loss, unit, what) = match self.basis {
            DailyBasis::Equity => {
                let (Some(start), Some(last)) = (self.start_equity, self.last_equity) else {
                    return CheckStatus::unknown("no equity event yet");
                };
                if start <= 0.0 {
                    return CheckStatus::unknown(format!(
                        "start-of-day equity {} is not positive",
                        num(start)
                    ));
                }
                (
                    (start - last) / start * 100.0,
                    "%",
                    format!(" of start-of-day equity {}", num(start)),
                )
            }
            DailyBasis::RealizedPnl => {
                if !self.seen_fill {
                    return CheckStatus::unknown("no fill yet");
                }
                (-self.pnl, "", " realized".to_owned())
            }
        };
        let (status, threshold) = self.levels.judge(loss);
        let limit = threshold
            .map(|t| format!(" (limit {}{unit})", num(t)))
            .unwrap_or_default();
        CheckStatus::new(
            status,
            Some(loss),
            threshold,
            format!("daily loss {}{unit}{what}{limit}", num(loss)),
        )
    }

    fn next_deadline(&self) -> Option<Millis> {
        // The status can change at every reset, and only then without input.
        self.evaluated_at.map(|at| next_reset(at, self.reset_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Equity, Fill, Side};
    use crate::rules::Status;

    const H: Millis = 3_600_000;
    /// 2024-05-01T00:00:00Z
    const MAY1: Millis = 1_714_521_600_000;

    fn eq(v: f64) -> InboundEvent {
        InboundEvent::new(EventKind::Equity(Equity { equity: v }))
    }

    fn fill(pnl: Option<f64>) -> InboundEvent {
        InboundEvent::new(EventKind::Fill(Fill {
            pair: "X".into(),
            side: Side::Sell,
            qty: 1.0,
            price: 1.0,
            realized_pnl: pnl,
            order_id: None,
        }))
    }

    #[test]
    fn day_arithmetic() {
        let r = 13 * H + 30 * 60_000; // 13:30 UTC
        let cases = [
            (MAY1, 0, MAY1, MAY1 + DAY_MS),
            (MAY1 + DAY_MS - 1, 0, MAY1, MAY1 + DAY_MS),
            (MAY1 + r - 1, r, MAY1 - DAY_MS + r, MAY1 + r),
            (MAY1 + r, r, MAY1 + r, MAY1 + DAY_MS + r),
            (5, r, 0, r), // before the first reset after the epoch
        ];
        for (now, reset, start, next) in cases {
            assert_eq!(day_start(now, reset), start, "{now}");
            assert_eq!(next_reset(now, reset), next, "{now}");
        }
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        assert_eq!(parse_time_of_day("13:30"), Ok(r));
        assert_eq!(parse_time_of_day("23:59:59"), Ok(DAY_MS - 1000));
        for bad in ["24:00", "1:00", "12:60", "noon", "12", "12:00:00:00"] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn equity_basis_thresholds() {
        // (equities, status, loss %)
        let cases: &[(&[f64], Status, f64)] = &[
            (&[1000.0], Status::Ok, 0.0),
            (&[1000.0, 981.0], Status::Ok, 1.9),
            (&[1000.0, 980.0], Status::Warn, 2.0),
            (&[1000.0, 950.0], Status::Critical, 5.0),
            (&[1000.0, 1100.0], Status::Ok, -10.0),
        ];
        for (seq, want, loss) in cases {
            let mut r = DailyLoss::new(DailyBasis::Equity, Levels::new(2.0, 5.0), 0);
            assert_eq!(r.status(MAY1).status, Status::Unknown);
            for v in *seq {
                assert!(r.on_event(&eq(*v), MAY1 + H));
            }
            let s = r.status(MAY1 + H);
            assert_eq!(s.status, *want, "{seq:?} {}", s.message);
            assert!((s.value.unwrap() - loss).abs() < 1e-9);
        }
    }

    #[test]
    fn equity_basis_resets_at_the_configured_time() {
        let reset = 12 * H;
        let mut r = DailyLoss::new(DailyBasis::Equity, Levels::critical(5.0), reset);
        r.on_event(&eq(1000.0), MAY1 + H);
        r.on_event(&eq(940.0), MAY1 + 2 * H);
        assert_eq!(r.status(MAY1 + 2 * H).status, Status::Critical);
        assert_eq!(
            r.next_deadline(),
            Some(MAY1 + reset),
            "exactly at the reset"
        );
        assert_eq!(r.status(MAY1 + reset - 1).status, Status::Critical);
        let s = r.status(MAY1 + reset);
        assert_eq!(s.status, Status::Ok, "{}", s.message);
        assert_eq!(
            s.value,
            Some(0.0),
            "new day starts from the last equity (940)"
        );
        assert_eq!(r.next_deadline(), Some(MAY1 + reset + DAY_MS));
        r.on_event(&eq(890.0), MAY1 + reset + H);
        let s = r.status(MAY1 + reset + H);
        assert_eq!(s.status, Status::Critical);
        assert!(
            s.message.contains("start-of-day equity 940"),
            "{}",
            s.message
        );
    }

    #[test]
    fn realized_pnl_basis() {
        let mut r = DailyLoss::new(DailyBasis::RealizedPnl, Levels::new(50.0, 100.0), 0);
        assert_eq!(r.status(MAY1).status, Status::Unknown, "no fill yet");
        assert!(
            !r.on_event(&eq(1.0), MAY1),
            "equity is not this basis' input"
        );
        assert!(r.on_event(&fill(None), MAY1 + 1));
        assert_eq!(r.status(MAY1 + 1).status, Status::Ok);
        r.on_event(&fill(Some(-60.0)), MAY1 + 2);
        assert_eq!(r.status(MAY1 + 2).status, Status::Warn);
        r.on_event(&fill(Some(20.0)), MAY1 + 3);
        assert_eq!(r.status(MAY1 + 3).status, Status::Ok);
        r.on_event(&fill(Some(-60.0)), MAY1 + 4);
        let s = r.status(MAY1 + 4);
        assert_eq!((s.status, s.value), (Status::Critical, Some(100.0)));
        assert_eq!(s.message, "daily loss 100 realized (limit 100)");
        // midnight UTC: a new day, no loss, and not unknown (fills have arrived before)
        let s = r.status(MAY1 + DAY_MS);
        assert_eq!((s.status, s.value), (Status::Ok, Some(0.0)));
        assert_eq!(r.realized_today(), 0.0);
    }
}
