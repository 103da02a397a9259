//! One series of samples (cycle durations, heartbeat gaps): count, sum, min, max and
//! nearest-rank percentiles, in bounded memory.
//!
//! Up to [`EXACT_CAP`] samples a series keeps every sample and its percentiles are exact: the
//! value at position ⌈p/100 · n⌉ (1-based) of the sorted samples, the definition SQL's
//! `quantile_disc` uses. Beyond that it folds into a [`Sketch`] of logarithmic buckets whose
//! percentiles are within a relative error of [`SKETCH_ALPHA`] of the true nearest-rank value
//! (DDSketch's construction); count, min, max and mean stay exact.

/// Samples kept one by one per series before the series turns into a sketch (32 MiB each).
pub const EXACT_CAP: usize = 1 << 22;

/// Relative accuracy of a sketched percentile: |estimate − true| ≤ α · true.
pub const SKETCH_ALPHA: f64 = 0.005;

/// Values at or below this go to the sketch's zero bucket (reported as 0).
const SKETCH_MIN: f64 = 1e-9;

#[derive(Clone, Debug, Default)]
pub struct Series {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    exact: Vec<f64>,
    sketch: Option<Sketch>,
    sorted: bool,
}

impl Series {
    pub fn push(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        self.sorted = false;
        match &mut self.sketch {
            Some(s) => s.add(v, 1),
            None => {
                self.exact.push(v);
                if self.exact.len() > EXACT_CAP {
                    self.fold();
                }
            }
        }
    }

    fn fold(&mut self) {
        let mut s = self.sketch.take().unwrap_or_default();
        for v in self.exact.drain(..) {
            s.add(v, 1);
        }
        self.exact = Vec::new();
        self.sketch = Some(s);
    }

    /// Append `later`'s samples (order does not matter for any statistic here).
    pub fn merge(&mut self, later: Series) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = later;
            return;
        }
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.count += later.count;
        self.sum += later.sum;
        self.sorted = false;
        match (self.sketch.is_some(), later.sketch) {
            (false, None) => {
                self.exact.extend(later.exact);
                if self.exact.len() > EXACT_CAP {
                    self.fold();
                }
            }
            (_, other) => {
                if self.sketch.is_none() {
                    self.fold();
                }
                if let Some(s) = &mut self.sketch {
                    for v in later.exact {
                        s.add(v, 1);
                    }
                    if let Some(o) = other {
                        s.merge(o);
                    }
                }
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn is_exact(&self) -> bool {
        self.sketch.is_none()
    }
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Sort the exact samples once before asking for several percentiles.
    pub fn prepare(&mut self) {
        if !self.sorted {
            self.exact.sort_unstable_by(f64::total_cmp);
            self.sorted = true;
        }
    }

    /// The nearest-rank percentile `p_bp` in basis points (p95 = 9500); call [`prepare`]
    /// first. `None` for an empty series.
    ///
    /// [`prepare`]: Series::prepare
    pub fn percentile(&self, p_bp: u32) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = nearest_rank(p_bp, self.count);
        match &self.sketch {
            None => {
                debug_assert!(self.sorted);
                self.exact.get((rank - 1) as usize).copied()
            }
            Some(s) => Some(s.value_at_rank(rank).clamp(self.min, self.max)),
        }
    }

    /// How many samples exceed `t` (exact in exact mode; bucket-resolution in a sketch).
    pub fn count_above(&self, t: f64) -> u64 {
        match &self.sketch {
            None => self.exact.iter().filter(|&&v| v > t).count() as u64,
            Some(s) => s.count_above(t),
        }
    }
}

/// ⌈p/100 · n⌉ clamped to 1..=n, with `p` in basis points and integer arithmetic (no float
/// rounding at 0.95 · 100).
pub fn nearest_rank(p_bp: u32, n: u64) -> u64 {
    let r = (u128::from(p_bp) * u128::from(n)).div_ceil(10_000);
    (r as u64).clamp(1, n.max(1))
}

/// Logarithmic buckets: bucket `i` holds values in (γ^(i−1), γ^i], γ = (1+α)/(1−α); its
/// representative 2γ^i/(γ+1) is within α of every value in it.
#[derive(Clone, Debug, Default)]
pub struct Sketch {
    zero: u64,
    offset: i32,
    counts: Vec<u64>,
}

fn gamma_ln() -> f64 {
    ((1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA)).ln()
}

impl Sketch {
    fn index(v: f64) -> i32 {
        (v.ln() / gamma_ln()).ceil() as i32
    }

    pub fn add(&mut self, v: f64, n: u64) {
        if v.is_nan() || v <= SKETCH_MIN {
            self.zero += n;
            return;
        }
        let i = Self::index(v);
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(0);
        }
        if i < self.offset {
            let grow = (self.offset - i) as usize;
            let mut c = vec![0; grow];
            c.extend_from_slice(&self.counts);
            self.counts = c;
            self.offset = i;
        }
        let at = (i - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    fn representative(i: i32) -> f64 {
        let g = gamma_ln().exp();
        2.0 * (f64::from(i) * gamma_ln()).exp() / (g + 1.0)
    }

    pub fn merge(&mut self, other: Sketch) {
        self.zero += other.zero;
        for (k, c) in other.counts.into_iter().enumerate() {
            if c > 0 {
                let i = other.offset + k as i32;
                self.add(Self::representative(i), c);
            }
        }
    }

    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = self.zero;
        if seen >= rank {
            return 0.0;
        }
        for (k, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::representative(self.offset + k as i32);
            }
        }
        self.counts
            .len()
            .checked_sub(1)
            .map_or(0.0, |k| Self::representative(self.offset + k as i32))
    }

    fn count_above(&self, t: f64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(k, _)| Self::representative(self.offset + *k as i32) > t)
            .map(|(_, c)| c)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(vals: &[f64]) -> Series {
        let mut s = Series::default();
        for &v in vals {
            s.push(v);
        }
        s.prepare();
        s
    }

    #[test]
    fn nearest_rank_is_the_ceiling_position() {
        assert_eq!(nearest_rank(5000, 10), 5);
        assert_eq!(nearest_rank(9500, 10), 10);
        assert_eq!(nearest_rank(9500, 100), 95);
        assert_eq!(nearest_rank(9900, 98), 98);
        assert_eq!(nearest_rank(5000, 1), 1);
        assert_eq!(nearest_rank(0, 7), 1);
        assert_eq!(nearest_rank(10_000, 7), 7);
        let s = filled(&[15.0, 20.0, 35.0, 40.0, 50.0]);
        // Wikipedia's worked example of the nearest-rank method.
        assert_eq!(s.percentile(3000), Some(20.0));
        assert_eq!(s.percentile(4000), Some(20.0));
        assert_eq!(s.percentile(5000), Some(35.0));
        assert_eq!(s.percentile(10_000), Some(50.0));
    }

    #[test]
    fn merge_equals_one_series() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 1000)).collect();
        let whole = filled(&a);
        let mut left = filled(&a[..333]);
        left.merge(filled(&a[333..]));
        left.prepare();
        for p in [100, 5000, 9500, 9900, 10_000] {
            assert_eq!(left.percentile(p), whole.percentile(p));
        }
        assert_eq!(left.count(), 1000);
        assert_eq!(left.min(), Some(0.0));
        assert_eq!(left.max(), Some(999.0));
        assert_eq!(left.count_above(989.0), 10);
    }

    #[test]
    fn sketch_stays_within_its_error_bound() {
        let mut exact: Vec<f64> = (1..=200_000u32)
            .map(|i| 0.5 + f64::from((i.wrapping_mul(2_654_435_761)) % 100_000) / 7.0)
            .collect();
        let mut sk = Sketch::default();
        for &v in &exact {
            sk.add(v, 1);
        }
        exact.sort_unstable_by(f64::total_cmp);
        for p in [100, 2500, 5000, 9000, 9500, 9900, 9990] {
            let rank = nearest_rank(p, exact.len() as u64);
            let truth = exact[(rank - 1) as usize];
            let est = sk.value_at_rank(rank);
            assert!(
                (est - truth).abs() <= SKETCH_ALPHA * truth + 1e-12,
                "p{p}: {est} vs {truth}"
            );
        }
    }

    #[test]
    fn a_series_past_the_cap_turns_into_a_sketch_with_exact_extremes() {
        let mut s = Series::default();
        let n = EXACT_CAP as u64 + 10;
        for i in 0..n {
            s.push((i % 5000) as f64 + 1.0);
        }
        s.prepare();
        assert!(!s.is_exact());
        assert_eq!(s.count(), n);
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(5000.0));
        let p50 = s.percentile(5000).unwrap_or_default();
        assert!((p50 - 2500.0).abs() <= 2500.0 * SKETCH_ALPHA + 1.0, "{p50}");
    }
}
