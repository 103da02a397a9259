//! Wall-clock time for timestamps (events, transitions, the persisted latch), shared by the
//! actors that stamp what they do. Deadlines and durations never use it: they run on tokio's
//! monotonic clock (the monitor's `now_mono`, `tokio::time::Instant`).

/// Wall-clock Unix milliseconds: for timestamps only.
pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// Tests on tokio's paused clock with real processes and threads. While a [`paused::Hold`]
/// lives, the paused clock does not auto-advance (a blocking task is running, which tokio
/// counts as work in progress), so time moves only by `tokio::time::advance` and a deadline
/// fires exactly when the test moves the clock to it; [`paused::Hold::within`] bounds a wait
/// on the real clock instead (a paused timeout would be advanced past at once while a child
/// or a writer thread works).
#[cfg(test)]
pub(crate) mod paused {
    use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
    use std::time::Duration;

    pub struct Hold {
        _release: Sender<()>,
        expired: tokio::sync::watch::Receiver<bool>,
    }

    /// Hold the paused clock for at most `real` of real time.
    pub fn hold(real: Duration) -> Hold {
        let (release, rx) = channel::<()>();
        let (tx, expired) = tokio::sync::watch::channel(false);
        tokio::task::spawn_blocking(move || {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(real) {
                let _ = tx.send(true);
            }
        });
        Hold {
            _release: release,
            expired,
        }
    }

    impl Hold {
        /// `fut`, or a panic naming `what` once the real-time bound has passed.
        pub async fn within<T>(&self, what: &str, fut: impl std::future::Future<Output = T>) -> T {
            let mut expired = self.expired.clone();
            tokio::select! {
                biased;
                v = fut => v,
                _ = expired.wait_for(|e| *e) => panic!("timed out (real time) waiting for {what}"),
            }
        }
    }
}
