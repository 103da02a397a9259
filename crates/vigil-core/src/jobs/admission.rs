//! Admission by resources: seed 004's check, made safe against bursts by a ledger.
//!
//! The seed (measured rule): `available_cores = total × (1 − cpu% / 100)`, predicted
//! consumption = request × consumption factor (80 %, 50 % in dev mode), admitted iff what
//! remains stays at or above the buffer (20 % of the totals, 5 % in dev mode).
//!
//! That rule alone admits a burst: N requests arriving together each see the same free
//! capacity. So a [`Ledger`] books what each dispatched job reserved (CPU at the consumption
//! factor — CPU is compressible — and RAM at 100 %, because it is not) and releases it at exit.
//! A job is admitted only if **both** the ledger and the measured reading leave the buffer.

use serde::Serialize;

/// CPU cores and GB of RAM.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Resources {
    pub cpu_cores: f64,
    pub ram_gb: f64,
}

/// One reading of the host (injected; `src/jobs/host.rs` measures it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostReading {
    pub total_cores: f64,
    pub total_ram_gb: f64,
    /// Host CPU busy, 0–100.
    pub cpu_percent: f64,
    pub available_ram_gb: f64,
}

impl HostReading {
    /// The seed: `total_cores × (1 − cpu_percent / 100)`.
    pub fn available_cores(&self) -> f64 {
        (self.total_cores * (1.0 - self.cpu_percent.clamp(0.0, 100.0) / 100.0)).max(0.0)
    }
    pub fn ram_usage_percent(&self) -> f64 {
        if self.total_ram_gb <= 0.0 {
            return 0.0;
        }
        ((self.total_ram_gb - self.available_ram_gb) / self.total_ram_gb * 100.0).clamp(0.0, 100.0)
    }
}

/// The knobs of admission.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Policy {
    /// Share of the totals that must stay free (seed: 0.20, dev 0.05).
    pub buffer: f64,
    /// Share of a request predicted to be consumed (seed: 0.80, dev 0.50). Applied to CPU in
    /// the ledger too; RAM is booked at 100 % in the ledger.
    pub consumption_factor: f64,
    pub dev_mode: bool,
    /// Whether the measured reading is checked besides the ledger (on by default; off makes
    /// admission depend on the ledger alone, e.g. on a host whose CPU is busy with other work
    /// that is known to yield).
    pub check_measured: bool,
}

impl Policy {
    /// Production: 20 % buffer, 80 % consumption factor.
    pub const PRODUCTION: Policy = Policy {
        buffer: 0.20,
        consumption_factor: 0.80,
        dev_mode: false,
        check_measured: true,
    };
    /// Development mode: 5 % buffer, 50 % consumption factor.
    pub const DEV: Policy = Policy {
        buffer: 0.05,
        consumption_factor: 0.50,
        dev_mode: true,
        check_measured: true,
    };

    pub fn for_mode(dev: bool) -> Policy {
        if dev { Policy::DEV } else { Policy::PRODUCTION }
    }

    pub fn min_cores(&self, r: &HostReading) -> f64 {
        r.total_cores * self.buffer
    }
    pub fn min_ram_gb(&self, r: &HostReading) -> f64 {
        r.total_ram_gb * self.buffer
    }
    /// What the ledger books for a request.
    pub fn booking(&self, req: Resources) -> Resources {
        Resources {
            cpu_cores: req.cpu_cores * self.consumption_factor,
            ram_gb: req.ram_gb,
        }
    }
}

/// What running jobs reserved: booked at dispatch, released at exit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Ledger {
    pub reserved: Resources,
    pub jobs: usize,
}

impl Ledger {
    pub fn book(&mut self, b: Resources) {
        self.reserved.cpu_cores += b.cpu_cores;
        self.reserved.ram_gb += b.ram_gb;
        self.jobs += 1;
    }
    pub fn release(&mut self, b: Resources) {
        self.reserved.cpu_cores = (self.reserved.cpu_cores - b.cpu_cores).max(0.0);
        self.reserved.ram_gb = (self.reserved.ram_gb - b.ram_gb).max(0.0);
        self.jobs = self.jobs.saturating_sub(1);
        if self.jobs == 0 {
            // No drift from float rounding once nothing runs.
            self.reserved = Resources::default();
        }
    }
}

/// An admission decision with the seed's explanation text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub admit: bool,
    pub reason: String,
}

/// Can `req` start now? Both the ledger and (unless disabled) the measured reading must leave
/// the buffer. The texts follow the seed: `Insufficient RAM: need 0.5GB, available 0.3GB, would
/// leave 0.1GB (min: 0.2GB)` and `Can run: 5.60 cores and 12.10GB RAM will remain`.
pub fn check(policy: &Policy, reading: &HostReading, ledger: &Ledger, req: Resources) -> Decision {
    let min_c = policy.min_cores(reading);
    let min_r = policy.min_ram_gb(reading);
    let pred = Resources {
        cpu_cores: req.cpu_cores * policy.consumption_factor,
        ram_gb: req.ram_gb * policy.consumption_factor,
    };
    let book = policy.booking(req);
    // The ledger: what is not reserved by running jobs, out of the totals.
    let free_c = reading.total_cores - ledger.reserved.cpu_cores;
    let free_r = reading.total_ram_gb - ledger.reserved.ram_gb;
    if free_r - book.ram_gb < min_r {
        return refuse(format!(
            "Insufficient RAM (reserved by {} running job(s): {:.1}GB): need {:.1}GB, unreserved {:.1}GB, would leave {:.1}GB (min: {:.1}GB)",
            ledger.jobs,
            ledger.reserved.ram_gb,
            req.ram_gb,
            free_r,
            free_r - book.ram_gb,
            min_r
        ));
    }
    if free_c - book.cpu_cores < min_c {
        return refuse(format!(
            "Insufficient CPU (reserved by {} running job(s): {:.1} cores): need {:.1} cores, unreserved {:.1} cores, would leave {:.1} cores (min: {:.1} cores)",
            ledger.jobs,
            ledger.reserved.cpu_cores,
            req.cpu_cores,
            free_c,
            free_c - book.cpu_cores,
            min_c
        ));
    }
    let avail_c = reading.available_cores();
    let avail_r = reading.available_ram_gb;
    let after_c = avail_c - pred.cpu_cores;
    let after_r = avail_r - pred.ram_gb;
    if policy.check_measured {
        if after_r < min_r {
            return refuse(format!(
                "Insufficient RAM: need {:.1}GB, available {:.1}GB, would leave {:.1}GB (min: {:.1}GB)",
                req.ram_gb, avail_r, after_r, min_r
            ));
        }
        if after_c < min_c {
            return refuse(format!(
                "Insufficient CPU: need {:.1} cores, available {:.1} cores, would leave {:.1} cores (min: {:.1} cores)",
                req.cpu_cores, avail_c, after_c, min_c
            ));
        }
        Decision {
            admit: true,
            reason: format!("Can run: {after_c:.2} cores and {after_r:.2}GB RAM will remain"),
        }
    } else {
        Decision {
            admit: true,
            reason: format!(
                "Can run: {:.2} cores and {:.2}GB RAM will remain unreserved",
                free_c - book.cpu_cores,
                free_r - book.ram_gb
            ),
        }
    }
}

/// `check(…).admit` without building its text: the admission pass calls this for every job
/// it passes over, so it must not allocate. Monotone in `req`: if a request does not fit, no
/// request at least as large in both resources does (a test checks it against `check`).
pub fn fits(policy: &Policy, reading: &HostReading, ledger: &Ledger, req: Resources) -> bool {
    let min_c = policy.min_cores(reading);
    let min_r = policy.min_ram_gb(reading);
    let book = policy.booking(req);
    let free_c = reading.total_cores - ledger.reserved.cpu_cores;
    let free_r = reading.total_ram_gb - ledger.reserved.ram_gb;
    if free_r - book.ram_gb < min_r || free_c - book.cpu_cores < min_c {
        return false;
    }
    if policy.check_measured {
        let after_c = reading.available_cores() - req.cpu_cores * policy.consumption_factor;
        let after_r = reading.available_ram_gb - req.ram_gb * policy.consumption_factor;
        return after_r >= min_r && after_c >= min_c;
    }
    true
}

fn refuse(reason: String) -> Decision {
    Decision {
        admit: false,
        reason,
    }
}

/// Could `req` ever run on this host (with nothing else running)? `Err((field, reason))` for a
/// request larger than the host minus its buffer: it is rejected at submit.
pub fn fits_host(
    policy: &Policy,
    reading: &HostReading,
    req: Resources,
) -> Result<(), (&'static str, String)> {
    let pct = policy.buffer * 100.0;
    let usable_r = reading.total_ram_gb - policy.min_ram_gb(reading);
    if req.ram_gb > usable_r {
        return Err((
            "ram_gb",
            format!(
                "{:.2}GB is more than this host can ever give a job: {:.2}GB ({:.2}GB total minus the {pct:.0}% buffer)",
                req.ram_gb, usable_r, reading.total_ram_gb
            ),
        ));
    }
    let usable_c = reading.total_cores - policy.min_cores(reading);
    let book = policy.booking(req);
    if book.cpu_cores > usable_c {
        return Err((
            "cpu_cores",
            format!(
                "{:.2} cores (predicted {:.2} at the {:.0}% consumption factor) is more than this host can ever give a job: {:.2} cores ({} total minus the {pct:.0}% buffer)",
                req.cpu_cores,
                book.cpu_cores,
                policy.consumption_factor * 100.0,
                usable_c,
                reading.total_cores
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host8() -> HostReading {
        // The seed's example: 8 cores, 16 GB, 20 % CPU busy, 12.5 GB available.
        HostReading {
            total_cores: 8.0,
            total_ram_gb: 16.0,
            cpu_percent: 20.0,
            available_ram_gb: 12.5,
        }
    }

    const BACKTEST: Resources = Resources {
        cpu_cores: 1.0,
        ram_gb: 0.5,
    };

    #[test]
    fn seed_example_is_approved_with_its_text() {
        let d = check(&Policy::PRODUCTION, &host8(), &Ledger::default(), BACKTEST);
        assert!(d.admit);
        assert_eq!(d.reason, "Can run: 5.60 cores and 12.10GB RAM will remain");
        assert_eq!(Policy::PRODUCTION.min_cores(&host8()), 1.6);
        assert!((Policy::PRODUCTION.min_ram_gb(&host8()) - 3.2).abs() < 1e-9);
        assert!((host8().available_cores() - 6.4).abs() < 1e-9);
    }

    #[test]
    fn insufficient_ram_text_matches_the_seed() {
        // Dev mode on a 4 GB host: min 0.2 GB; 0.35 GB available; 0.5 × 50 % = 0.25 predicted.
        let r = HostReading {
            total_cores: 8.0,
            total_ram_gb: 4.0,
            cpu_percent: 0.0,
            available_ram_gb: 0.35,
        };
        let d = check(&Policy::DEV, &r, &Ledger::default(), BACKTEST);
        assert!(!d.admit);
        assert_eq!(
            d.reason,
            "Insufficient RAM: need 0.5GB, available 0.3GB, would leave 0.1GB (min: 0.2GB)"
        );
    }

    #[test]
    fn insufficient_cpu_when_the_host_is_busy() {
        let mut r = host8();
        r.cpu_percent = 85.0; // 1.2 cores available, 0.8 predicted → 0.4 < 1.6
        let d = check(&Policy::PRODUCTION, &r, &Ledger::default(), BACKTEST);
        assert!(!d.admit);
        assert!(
            d.reason
                .starts_with("Insufficient CPU: need 1.0 cores, available 1.2 cores")
        );
        // Dev mode: 0.4 cores min, 1.2 − 0.5 = 0.7 ≥ 0.4 → admitted.
        assert!(check(&Policy::DEV, &r, &Ledger::default(), BACKTEST).admit);
    }

    #[test]
    fn ledger_stops_a_burst_that_the_measured_rule_would_admit() {
        // The measured reading stays the same for every request of the burst (nothing has
        // started consuming yet); only the ledger changes.
        let r = host8();
        let mut ledger = Ledger::default();
        let mut admitted = 0;
        for _ in 0..100 {
            let d = check(&Policy::PRODUCTION, &r, &ledger, BACKTEST);
            assert!(
                check(
                    &Policy {
                        check_measured: true,
                        ..Policy::PRODUCTION
                    },
                    &r,
                    &Ledger::default(),
                    BACKTEST
                )
                .admit,
                "the seed's rule alone admits every one of them"
            );
            if !d.admit {
                assert!(
                    d.reason
                        .starts_with("Insufficient CPU (reserved by 8 running job(s)")
                );
                break;
            }
            ledger.book(Policy::PRODUCTION.booking(BACKTEST));
            admitted += 1;
        }
        // (8 − 1.6) / 0.8 = 8 backtests by CPU; RAM: 8 × 0.5 = 4 ≤ 12.8.
        assert_eq!(admitted, 8);
        // Release one: exactly one more fits.
        ledger.release(Policy::PRODUCTION.booking(BACKTEST));
        assert!(check(&Policy::PRODUCTION, &r, &ledger, BACKTEST).admit);
    }

    #[test]
    fn ram_is_booked_in_full() {
        let r = HostReading {
            total_cores: 64.0,
            total_ram_gb: 10.0,
            cpu_percent: 0.0,
            available_ram_gb: 10.0,
        };
        let big = Resources {
            cpu_cores: 0.1,
            ram_gb: 3.0,
        };
        let mut l = Ledger::default();
        let mut n = 0;
        while check(&Policy::PRODUCTION, &r, &l, big).admit {
            l.book(Policy::PRODUCTION.booking(big));
            n += 1;
        }
        // 8 GB usable (10 − 20 %): two jobs of 3 GB, not three (80 % of 3 = 2.4 would give 3).
        assert_eq!(n, 2);
        let d = check(&Policy::PRODUCTION, &r, &l, big);
        assert!(
            d.reason
                .starts_with("Insufficient RAM (reserved by 2 running job(s): 6.0GB)")
        );
    }

    #[test]
    fn ledger_only_mode_ignores_the_measured_reading() {
        let mut r = host8();
        r.cpu_percent = 100.0;
        let p = Policy {
            check_measured: false,
            ..Policy::PRODUCTION
        };
        assert!(!check(&Policy::PRODUCTION, &r, &Ledger::default(), BACKTEST).admit);
        let d = check(&p, &r, &Ledger::default(), BACKTEST);
        assert!(d.admit, "{}", d.reason);
    }

    #[test]
    fn requests_larger_than_the_host_are_rejected() {
        let r = host8();
        let e = fits_host(
            &Policy::PRODUCTION,
            &r,
            Resources {
                cpu_cores: 1.0,
                ram_gb: 13.0,
            },
        )
        .unwrap_err();
        assert_eq!(e.0, "ram_gb");
        assert!(
            e.1.contains("12.80GB (16.00GB total minus the 20% buffer)"),
            "{}",
            e.1
        );
        let e = fits_host(
            &Policy::PRODUCTION,
            &r,
            Resources {
                cpu_cores: 9.0,
                ram_gb: 1.0,
            },
        )
        .unwrap_err();
        assert_eq!(e.0, "cpu_cores");
        assert!(fits_host(&Policy::PRODUCTION, &r, BACKTEST).is_ok());
        // Dev mode lets 12.8 < x ≤ 15.2 through.
        assert!(
            fits_host(
                &Policy::DEV,
                &r,
                Resources {
                    cpu_cores: 1.0,
                    ram_gb: 15.0
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn release_to_zero_clears_rounding() {
        let mut l = Ledger::default();
        for _ in 0..10 {
            l.book(Resources {
                cpu_cores: 0.1,
                ram_gb: 0.3,
            });
        }
        for _ in 0..10 {
            l.release(Resources {
                cpu_cores: 0.1,
                ram_gb: 0.3,
            });
        }
        assert_eq!(l, Ledger::default());
    }

    /// `fits` is `check(…).admit`, on a grid of requests, ledgers, readings and both modes,
    /// and it is monotone in the request (what the queue's early stop relies on).
    #[test]
    fn fits_agrees_with_check_and_is_monotone() {
        let steps = [0.0, 0.1, 0.5, 1.0, 2.0, 3.5, 7.0, 9.0];
        for policy in [
            Policy::PRODUCTION,
            Policy::DEV,
            Policy {
                check_measured: false,
                ..Policy::PRODUCTION
            },
        ] {
            for cpu_percent in [0.0, 20.0, 75.0, 100.0] {
                for avail in [0.5, 4.0, 12.5] {
                    let reading = HostReading {
                        cpu_percent,
                        available_ram_gb: avail,
                        ..host8()
                    };
                    for reserved in [0.0, 2.0, 6.0] {
                        let mut ledger = Ledger::default();
                        if reserved > 0.0 {
                            ledger.book(Resources {
                                cpu_cores: reserved,
                                ram_gb: reserved,
                            });
                        }
                        for c in steps {
                            for r in steps {
                                let req = Resources {
                                    cpu_cores: c,
                                    ram_gb: r,
                                };
                                let f = fits(&policy, &reading, &ledger, req);
                                assert_eq!(
                                    f,
                                    check(&policy, &reading, &ledger, req).admit,
                                    "{req:?} {reading:?} {ledger:?} {policy:?}"
                                );
                                if !f {
                                    for (c2, r2) in [(c + 0.5, r), (c, r + 0.5)] {
                                        let bigger = Resources {
                                            cpu_cores: c2,
                                            ram_gb: r2,
                                        };
                                        assert!(!fits(&policy, &reading, &ledger, bigger));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
