//! Host readings for admission: cores, CPU busy since the previous reading (`/proc/stat`),
//! MemTotal and MemAvailable (`/proc/meminfo`). Read only while something needs them (jobs
//! waiting, a heartbeat, a resources request).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_core::jobs::HostReading;

/// (total, idle) jiffies from /proc/stat's `cpu` line.
fn cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total, idle))
}

/// (MemTotal, MemAvailable) in GB.
fn meminfo() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |key: &str| -> Option<f64> {
        s.lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<f64>()
            .ok()
    };
    let gib = 1024.0 * 1024.0;
    Some((kb("MemTotal:")? / gib, kb("MemAvailable:")? / gib))
}

pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

struct Last {
    at: Instant,
    times: (u64, u64),
    reading: HostReading,
}

/// The host as admission sees it; CPU busy is the share since the previous reading (at
/// least 100 ms apart; closer calls return the previous reading).
pub struct Host {
    cores_override: Option<f64>,
    ram_override: Option<f64>,
    last: Mutex<Option<Last>>,
}

impl Host {
    pub fn new(cores_override: Option<f64>, ram_override: Option<f64>) -> Host {
        Host {
            cores_override,
            ram_override,
            last: Mutex::new(None),
        }
    }

    pub fn read(&self) -> HostReading {
        let now = Instant::now();
        let mut g = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = g.as_ref()
            && now.duration_since(l.at) < Duration::from_millis(100)
        {
            return l.reading;
        }
        let times = cpu_times().unwrap_or((0, 0));
        let cpu_percent = match g.as_ref() {
            Some(l) if times.0 > l.times.0 => {
                let dt = (times.0 - l.times.0) as f64;
                let di = times.1.saturating_sub(l.times.1) as f64;
                ((dt - di) / dt * 100.0).clamp(0.0, 100.0)
            }
            Some(l) => l.reading.cpu_percent,
            None => 0.0,
        };
        let (mt, ma) = meminfo().unwrap_or((0.0, 0.0));
        let total_ram = self.ram_override.unwrap_or(mt);
        let reading = HostReading {
            total_cores: self.cores_override.unwrap_or_else(cores),
            total_ram_gb: total_ram,
            cpu_percent,
            // With a RAM override, what is unavailable on the host is unavailable here too.
            available_ram_gb: (total_ram - (mt - ma)).max(0.0),
        };
        *g = Some(Last {
            at: now,
            times,
            reading,
        });
        reading
    }
}
