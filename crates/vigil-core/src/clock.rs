//! The two clocks of the pure code, as types that cannot be mixed up.
//!
//! - [`Mono`]: vigil's **monotonic** clock in milliseconds. Deadlines and durations
//!   (freshness, heartbeats, sustained thresholds, windows) are measured on it, so a step
//!   of the wall clock (NTP, an operator's `date -s`, a VM resumed) can neither delay nor
//!   hasten them. The shell reads it once per input and passes it in (`src/monitor`:
//!   `now_mono`); nothing here reads a clock.
//! - Wall time: plain Unix milliseconds (`u64`), for the timestamps people read and that
//!   outlive the process (events, transitions, the persisted latch).

/// A reading of vigil's monotonic clock, in milliseconds.
///
/// The shell anchors it to the Unix time of its first reading and then advances it with
/// the operating system's monotonic clock only, so it reads like Unix milliseconds near the
/// start (a daily reset at a UTC time of day still lands there) but never steps: it keeps
/// NTP's gradual rate corrections and ignores its steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(pub u64);

impl Mono {
    /// The reading, in milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }

    /// `ms` later (saturating).
    pub fn add_ms(self, ms: u64) -> Mono {
        Mono(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Mono) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::fmt::Display for Mono {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mono {} ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Mono(5).add_ms(10), Mono(15));
        assert_eq!(Mono(u64::MAX).add_ms(1), Mono(u64::MAX));
        assert_eq!(Mono(15).since(Mono(5)), 10);
        assert_eq!(Mono(5).since(Mono(15)), 0);
        assert!(Mono(1) < Mono(2));
    }
}
