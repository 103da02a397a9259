//! Fail points for crash tests: compiled into every build, inert unless the environment
//! variable `VIGIL_FAILPOINT` names one. Then, when the daemon reaches that point, it kills
//! itself with SIGKILL (no destructors, no flush: what a power cut or the OOM killer does).
//!
//! | name | where |
//! |---|---|
//! | `trading-state-recorded` | a trading-state transition's state record is written (fdatasynced), before it is announced |
//! | `trading-state-announced` | the transition was broadcast (SSE, listeners); 500 ms later, before its SQLite commit |
//!
//! Tests set it on the daemon they start (`tests/it/durability.rs`); nothing else reads it.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var("VIGIL_FAILPOINT")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// SIGKILL this process if `VIGIL_FAILPOINT` is `name`, after `delay` (blocking the caller).
pub fn hit(name: &str, delay: std::time::Duration) {
    if armed() != Some(name) {
        return;
    }
    tracing::error!(
        failpoint = name,
        "VIGIL_FAILPOINT reached: killing this process"
    );
    std::thread::sleep(delay);
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}
