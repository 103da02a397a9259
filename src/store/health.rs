//! What is wrong with storage right now, for `/health` and `/metrics`: set by the event
//! writer, the state record and the start-up checks; read by the API. No I/O.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared, cheap to read.
#[derive(Default, Debug)]
pub struct StoreHealth {
    /// The last event write failed (cleared by the next success).
    write_error: Mutex<Option<String>>,
    /// The last reservation of `seq`s in the state record failed.
    record_error: Mutex<Option<String>>,
    /// The last write of the trading state file failed.
    state_file_error: Mutex<Option<String>>,
    /// Found at start: the database failed its check (and was set aside with `--recover`),
    /// or the history before some `seq` is gone.
    startup: Mutex<Vec<String>>,
    /// Events that could not be stored.
    pub lost: AtomicU64,
    /// Events announced although they could not be stored (`stored: false`).
    pub announced_unstored: AtomicU64,
    /// Event batches that failed to commit.
    pub failed_writes: AtomicU64,
}

fn set(m: &Mutex<Option<String>>, v: Option<String>) {
    if let Ok(mut g) = m.lock() {
        *g = v;
    }
}

impl StoreHealth {
    pub fn write_failed(&self, e: &str, lost: u64) {
        set(&self.write_error, Some(e.to_string()));
        self.failed_writes.fetch_add(1, Ordering::Relaxed);
        self.lost.fetch_add(lost, Ordering::Relaxed);
    }

    pub fn write_ok(&self) {
        if self
            .write_error
            .lock()
            .map(|g| g.is_some())
            .unwrap_or(false)
        {
            set(&self.write_error, None);
        }
    }

    pub fn record(&self, r: Result<(), String>) {
        set(&self.record_error, r.err());
    }

    pub fn state_file(&self, r: Result<(), String>) {
        set(&self.state_file_error, r.err());
    }

    pub fn startup_problem(&self, what: String) {
        if let Ok(mut g) = self.startup.lock() {
            g.push(what);
        }
    }

    /// Every reason storage is degraded now, as `(code, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(e) = self.write_error.lock().ok().and_then(|g| g.clone()) {
            out.push((
                "store_write_failed",
                format!("events cannot be stored: {e}"),
            ));
        }
        if let Some(e) = self.record_error.lock().ok().and_then(|g| g.clone()) {
            out.push((
                "state_record_failed",
                format!("the state record cannot be written: {e}"),
            ));
        }
        if let Some(e) = self.state_file_error.lock().ok().and_then(|g| g.clone()) {
            out.push((
                "state_file_failed",
                format!("the trading state file could not be written: {e}"),
            ));
        }
        if let Ok(g) = self.startup.lock() {
            for s in g.iter() {
                out.push(("startup", s.clone()));
            }
        }
        out
    }
}
