//! Event retention: the history is kept bounded by age and by size. Every
//! [`SWEEP_EVERY`], and whenever the event writer has appended an eighth of `max_bytes`
//! (at most 32 MiB) since the last sweep ([`Growth`]), the oldest events older than
//! `max_age` are deleted, then the oldest ones
//! while the live data exceeds `max_bytes`, in chunks (short write transactions beside the
//! event writer). Freed pages are reused by SQLite, so the file stays near the bound.
//! The highest deleted `seq` is kept (`kv` `history_gap_through`): history and stream
//! clients resuming below it are told that events are missing (see `api::sse`).

use std::time::Duration;

use rusqlite::params;

use super::{Store, StoreError, err};

/// How often retention runs at least.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Bytes appended since the last sweep, and the wake-up of the sweeper when they pass its
/// step: so a flood is pruned while it lasts, not up to a minute later.
#[derive(Debug, Default)]
pub struct Growth {
    bytes: std::sync::atomic::AtomicU64,
    step: std::sync::atomic::AtomicU64,
    wake: tokio::sync::Notify,
}

impl Growth {
    pub(super) fn add(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let before = self.bytes.fetch_add(n, Relaxed);
        let step = self.step.load(Relaxed);
        if step > 0 && before < step && before + n >= step {
            self.wake.notify_one();
        }
    }

    fn reset(&self) {
        self.bytes.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}
const CHUNK: i64 = 5_000;

/// `[events]`: how much history to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Delete events older than this (`max_age_days`, default 30).
    pub max_age: Duration,
    /// Keep the live data under this many bytes (`max_size_mb`, default 1024).
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(30 * 86_400),
            max_bytes: 1024 * 1024 * 1024,
        }
    }
}

pub const GAP_KEY: &str = "history_gap_through";

impl Store {
    /// Bytes of live data (pages in use).
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        let conn = self.connect(false)?;
        let q = |sql: &str| -> Result<i64, StoreError> {
            conn.query_row(sql, [], |r| r.get(0))
                .map_err(err(&self.path, "reading the database size"))
        };
        let pages = q("PRAGMA page_count")? - q("PRAGMA freelist_count")?;
        Ok((pages.max(0) as u64) * (q("PRAGMA page_size")?.max(0) as u64))
    }

    /// Events with `seq <= this` are gone (pruned, or lost with a replaced database).
    pub fn gap_through(&self) -> Result<u64, StoreError> {
        Ok(self
            .kv_get(GAP_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Record that events up to `seq` are gone (never lowers it).
    pub fn mark_gap(&self, seq: u64) -> Result<(), StoreError> {
        let conn = self.connect(true)?;
        let _turn = self.turn.take();
        conn.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = \
             CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
            params![GAP_KEY, seq.to_string()],
        )
        .map_err(err(&self.path, "recording the history gap"))?;
        Ok(())
    }

    /// One retention pass; returns how many events were deleted.
    pub fn prune(
        &self,
        r: &Retention,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let conn = self.connect(true)?;
        // An age beyond the calendar keeps everything.
        let cutoff = chrono::Duration::from_std(r.max_age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .map(super::event::rfc3339);
        let mut deleted = 0u64;
        let mut through = 0i64;
        // Each chunk is its own write, taking this process's write turn (so the event writer
        // waits at most one chunk).
        let turn = self.turn.clone();
        let mut chunk = |conn: &rusqlite::Connection, upto: i64| -> Result<usize, StoreError> {
            let _turn = turn.take();
            let n = conn
                .execute("DELETE FROM events WHERE seq <= ?1", params![upto])
                .map_err(err(&self.path, "pruning events"))?;
            through = through.max(upto);
            deleted += n as u64;
            Ok(n)
        };
        // By age: the oldest chunk at a time while its last event is older than the cutoff.
        while let Some(cutoff) = &cutoff {
            let upto: Option<i64> = conn
                .query_row(
                    "SELECT max(seq) FROM (SELECT seq FROM events WHERE ts < ?1 ORDER BY seq LIMIT ?2)",
                    params![cutoff, CHUNK],
                    |row| row.get(0),
                )
                .map_err(err(&self.path, "finding old events"))?;
            match upto {
                Some(u) if chunk(&conn, u)? > 0 => {}
                _ => break,
            }
        }
        // By size: the oldest events, as many as the excess holds at the average size (at
        // most a chunk at a time), so a pass never deletes much more than the excess.
        // The rows are counted once (a full scan), then kept up to date by what each chunk
        // deleted; rows appended meanwhile only make the estimate low, and the loop goes on.
        let mut known: Option<i64> = None;
        loop {
            let live = self.live_bytes()?;
            if live <= r.max_bytes {
                break;
            }
            let count = match known {
                Some(c) => c,
                None => conn
                    .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
                    .map_err(err(&self.path, "counting events"))?,
            };
            let excess = (live - r.max_bytes) as f64 / live as f64;
            let n = ((count as f64 * excess).ceil() as i64).clamp(1, CHUNK);
            let upto: Option<i64> = conn
                .query_row(
                    "SELECT max(seq) FROM (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
                    params![n],
                    |row| row.get(0),
                )
                .map_err(err(&self.path, "finding the oldest events"))?;
            match upto {
                Some(u) => match chunk(&conn, u)? {
                    0 => break,
                    gone => known = Some((count - gone as i64).max(0)),
                },
                None => break,
            }
        }
        if through > 0 {
            self.mark_gap(through as u64)?;
        }
        Ok(deleted)
    }
}

fn report(r: Result<u64, StoreError>) {
    match r {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(deleted = n, "event retention pruned old events");
            metrics::counter!("vigil_events_pruned_total").increment(n);
        }
        Err(e) => tracing::warn!(error = %e, "event retention failed"),
    }
}

/// Run retention now (before vigil serves anything, so the first answers already reflect
/// it), then every [`SWEEP_EVERY`] and on growth ([`Growth`]), off the runtime.
/// The sweeps run on `tasks` until `stop`.
pub fn start(
    store: Store,
    r: Retention,
    tasks: &tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
) {
    report(store.prune(&r, chrono::Utc::now()));
    let step = (r.max_bytes / 8).clamp(64 * 1024, 32 * 1024 * 1024);
    store
        .growth
        .step
        .store(step, std::sync::atomic::Ordering::Relaxed);
    tasks.spawn(stop.run_until_cancelled_owned(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = store.growth.wake.notified() => {}
            }
            store.growth.reset();
            let s = store.clone();
            if let Ok(res) =
                tokio::task::spawn_blocking(move || s.prune(&r, chrono::Utc::now())).await
            {
                report(res);
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_by_age_and_records_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db")).unwrap();
        let mut conn = store.connect(true).unwrap();
        let rows: Vec<(u64, String, String, String)> = (1..=10)
            .map(|i| {
                (
                    i,
                    format!("2026-01-{i:02}T00:00:00.000Z"),
                    "x".into(),
                    "{}".into(),
                )
            })
            .collect();
        Store::append(&mut conn, store.path(), &rows).unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let r = Retention {
            max_age: Duration::from_secs(3 * 86_400),
            ..Retention::default()
        };
        // Older than Jan 7 12:00: Jan 1..7 go.
        assert_eq!(store.prune(&r, now).unwrap(), 7);
        assert_eq!(store.gap_through().unwrap(), 7);
        assert_eq!(store.events_since(0, None, 100).unwrap()[0].seq, 8);
        // An age past the calendar keeps everything.
        let forever = Retention {
            max_age: Duration::MAX,
            ..Retention::default()
        };
        assert_eq!(store.prune(&forever, now).unwrap(), 0);
        assert_eq!(store.gap_through().unwrap(), 7);
    }

    #[test]
    fn pruning_by_size_deletes_about_the_excess_not_whole_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db")).unwrap();
        let mut conn = store.connect(true).unwrap();
        let data = format!("{{\"m\":\"{}\"}}", "x".repeat(300));
        // 4 000 events (fewer than a chunk) of ~350 B: ~1.6 MB for a 1 MiB bound.
        let rows: Vec<(u64, String, String, String)> = (1..=4_000)
            .map(|i| {
                (
                    i,
                    "2026-12-08T00:00:00.000Z".into(),
                    "log".into(),
                    data.clone(),
                )
            })
            .collect();
        Store::append(&mut conn, store.path(), &rows).unwrap();
        let r = Retention {
            max_age: Duration::MAX,
            max_bytes: 1024 * 1024,
        };
        let deleted = store.prune(&r, chrono::Utc::now()).unwrap();
        let left = store.events_since(0, None, 10_000).unwrap().len();
        assert!(store.live_bytes().unwrap() <= r.max_bytes);
        assert!(
            deleted > 0 && left > 1_000,
            "deleted {deleted}, left {left}"
        );
    }
}
