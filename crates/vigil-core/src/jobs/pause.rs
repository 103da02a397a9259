//! The bots come first: when to freeze pausable jobs and when to thaw them.
//!
//! Two causes: a loop-cycle check of a critical program at `warn` or `critical`, and host CPU
//! above a threshold for a sustained time. Jobs stay frozen while any cause holds.

use std::collections::BTreeMap;

/// The pause decision's state.
#[derive(Debug, Clone, Default)]
pub struct Pauser {
    /// Host CPU percent above which, sustained, jobs are paused (`None`: not by CPU).
    pub cpu_threshold_pct: Option<f64>,
    pub cpu_sustain_ms: i64,
    cpu_high_since: Option<i64>,
    last_cpu: f64,
    /// Check name → its current status text, for checks at warn or critical.
    checks: BTreeMap<String, String>,
}

impl Pauser {
    pub fn new(cpu_threshold_pct: Option<f64>, cpu_sustain_s: f64) -> Pauser {
        Pauser {
            cpu_threshold_pct,
            cpu_sustain_ms: (cpu_sustain_s * 1000.0) as i64,
            ..Default::default()
        }
    }

    /// A critical program's loop-cycle check changed status (`ok`, `warn`, `critical`,
    /// `unknown`).
    pub fn on_check(&mut self, check: &str, status: &str, message: &str) {
        if matches!(status, "warn" | "critical") {
            self.checks.insert(
                check.to_string(),
                format!("check {check} is {status}: {message}"),
            );
        } else {
            self.checks.remove(check);
        }
    }

    /// A host CPU sample.
    pub fn on_cpu(&mut self, now_ms: i64, cpu_percent: f64) {
        self.last_cpu = cpu_percent;
        match self.cpu_threshold_pct {
            Some(t) if cpu_percent > t => {
                self.cpu_high_since.get_or_insert(now_ms);
            }
            _ => self.cpu_high_since = None,
        }
    }

    /// Why jobs must be paused now, or `None`.
    pub fn reason(&self, now_ms: i64) -> Option<String> {
        let mut why: Vec<String> = self.checks.values().cloned().collect();
        if let (Some(since), Some(t)) = (self.cpu_high_since, self.cpu_threshold_pct)
            && now_ms - since >= self.cpu_sustain_ms
        {
            why.push(format!(
                "host CPU outside jobs {:.0}% above {t:.0}% for {:.0} s",
                self.last_cpu,
                (now_ms - since) as f64 / 1000.0
            ));
        }
        if why.is_empty() {
            None
        } else {
            Some(format!("paused for the bots: {}", why.join("; ")))
        }
    }

    /// When the sustained-CPU cause would start holding, if CPU stays high.
    pub fn next_deadline(&self, now_ms: i64) -> Option<i64> {
        let since = self.cpu_high_since?;
        let at = since + self.cpu_sustain_ms;
        (at > now_ms).then_some(at)
    }

    /// Whether CPU is being watched while something is paused or high (sample host CPU).
    pub fn watching_cpu(&self) -> bool {
        self.cpu_threshold_pct.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_at_warn_pauses_until_it_clears() {
        let mut p = Pauser::new(None, 10.0);
        assert_eq!(p.reason(0), None);
        p.on_check("md_loop", "warn", "p95 cycle 240 ms > 200 ms");
        assert_eq!(
            p.reason(0).as_deref(),
            Some("paused for the bots: check md_loop is warn: p95 cycle 240 ms > 200 ms")
        );
        p.on_check("md_loop", "critical", "x");
        assert!(p.reason(0).is_some());
        p.on_check("md_loop", "ok", "");
        assert_eq!(p.reason(0), None);
    }

    #[test]
    fn cpu_must_stay_high_for_the_sustain_time() {
        let mut p = Pauser::new(Some(90.0), 10.0);
        p.on_cpu(0, 95.0);
        assert_eq!(p.reason(9_999), None);
        assert_eq!(p.next_deadline(0), Some(10_000));
        p.on_cpu(5_000, 97.0);
        assert!(
            p.reason(10_000)
                .is_some_and(|r| r.contains("host CPU outside jobs 97% above 90% for 10 s"))
        );
        p.on_cpu(11_000, 50.0);
        assert_eq!(p.reason(11_000), None);
        assert_eq!(p.next_deadline(11_000), None);
    }
}
