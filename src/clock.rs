//! Wall-clock time for timestamps (events, transitions, the persisted latch), shared by the
//! actors that stamp what they do. Deadlines and durations never use it: they run on tokio's
//! monotonic clock (the monitor's `now_mono`, `tokio::time::Instant`).

/// Wall-clock Unix milliseconds: for timestamps only.
pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}
