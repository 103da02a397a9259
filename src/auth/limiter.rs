//! In-memory token buckets, one per key (`user:NAME`, `addr:IP`): `rate` attempts per minute
//! with a burst of `rate`. Buckets that have refilled are dropped when the map grows, so a
//! flood of addresses cannot grow memory without bound.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const MAX_KEYS: usize = 10_000;

#[derive(Debug)]
pub struct Limiter {
    capacity: f64,
    /// Tokens per second.
    refill: f64,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    pub fn per_minute(rate: u32) -> Limiter {
        let mut l = Limiter {
            capacity: 1.0,
            refill: 1.0,
            buckets: HashMap::new(),
        };
        l.set_rate(rate);
        l
    }

    pub fn set_rate(&mut self, rate: u32) {
        let rate = f64::from(rate.max(1));
        self.capacity = rate;
        self.refill = rate / 60.0;
    }

    fn level(&self, key: &str, now: Instant) -> f64 {
        match self.buckets.get(key) {
            None => self.capacity,
            Some(b) => {
                let dt = now.saturating_duration_since(b.at).as_secs_f64();
                (b.tokens + dt * self.refill).min(self.capacity)
            }
        }
    }

    fn wait(&self, level: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - level) / self.refill).max(0.0)).max(Duration::from_secs(1))
    }

    /// Whether an attempt is available, without taking it.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let level = self.level(key, now);
        if level >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(level))
        }
    }

    /// Take one attempt; `Err(retry_after)` when the bucket is empty.
    pub fn take(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let level = self.level(key, now);
        if level < 1.0 {
            return Err(self.wait(level));
        }
        if self.buckets.len() >= MAX_KEYS && !self.buckets.contains_key(key) {
            let (cap, refill) = (self.capacity, self.refill);
            self.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * refill < cap
            });
        }
        self.buckets.insert(
            key.to_string(),
            Bucket {
                tokens: level - 1.0,
                at: now,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut l = Limiter::per_minute(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("a", t0).is_ok());
        }
        let wait = l.take("a", t0).expect_err("empty");
        assert!(
            wait >= Duration::from_secs(19) && wait <= Duration::from_secs(21),
            "{wait:?}"
        );
        assert!(l.peek("a", t0).is_err());
        assert!(l.take("b", t0).is_ok(), "other keys are independent");
        assert!(l.take("a", t0 + Duration::from_secs(21)).is_ok());
        assert!(l.take("a", t0 + Duration::from_secs(21)).is_err());
    }
}
