//! When the trading state in effect could not be written — to the state record (the
//! authority a restart reads) or to the state file the trading processes read — it still
//! applies, is announced with `persisted: false` / `state_file: false`, and `/health` says
//! so (`state_not_persisted`, `state_file_not_written`). The monitor then writes the state
//! in effect again, on a backoff (1 s, doubling to 30 s), until both writes succeed; it then
//! records `trading_state_persisted` and `/health` clears. A transition in between is written
//! as usual (its own `persisted` flag) and the retries carry on with the newest state.

use std::time::Duration;

use tokio::time::Instant;

use super::{Actor, ms_to_rfc3339, persist};

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(30);

/// A pending rewrite of the state in effect.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) at: Instant,
    delay: Duration,
    attempts: u32,
    /// Wall-clock time of the first failed write.
    since_ms: u64,
}

impl Actor {
    /// Note what a write of the state in effect reached: the flags `/health`, `/api/state`
    /// and `/metrics` show, and a retry while either write failed.
    pub(super) fn note_written(&mut self, w: &persist::Written) {
        self.persisted = w.record.is_ok();
        self.state_file = w.file.is_ok();
        metrics::gauge!("vigil_trading_state_persisted").set(f64::from(u8::from(self.persisted)));
        if !self.persisted {
            metrics::counter!("vigil_trading_state_persist_failures_total").increment(1);
        }
        if self.persisted && self.state_file {
            self.retry = None;
        } else if self.retry.is_none() {
            self.retry = Some(Pending {
                at: Instant::now() + FIRST,
                delay: FIRST,
                attempts: 0,
                since_ms: self.clock.wall_ms(),
            });
        }
    }

    /// The retry's time: write the state in effect again.
    pub(super) async fn retry_persist(&mut self) {
        let Some(mut p) = self.retry.take() else {
            return;
        };
        let w = self.write_latch().await;
        p.attempts += 1;
        let state = self.latch.state();
        if w.record.is_ok() && w.file.is_ok() {
            tracing::warn!(state = %state, attempts = p.attempts, "the trading state in effect is persisted again");
            self.events.submit(
                "trading_state_persisted",
                crate::fields! {
                    "state" => state.name(),
                    "attempts" => p.attempts,
                    "unpersisted_since" => ms_to_rfc3339(p.since_ms),
                },
            );
        } else {
            let error = [&w.record, &w.file]
                .into_iter()
                .filter_map(|r| r.as_ref().err().cloned())
                .collect::<Vec<_>>()
                .join("; ");
            p.delay = (p.delay * 2).min(MAX);
            p.at = Instant::now() + p.delay;
            tracing::error!(state = %state, attempts = p.attempts, error, next_in_s = p.delay.as_secs(), "the trading state in effect still cannot be persisted");
            self.retry = Some(p);
        }
        self.note_written(&w);
        self.publish();
    }
}
