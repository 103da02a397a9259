//! SQLite: the only module with SQL. `data_dir/vigil.db`, WAL, batched writes.
//!
//! Writes go through one writer thread (the event log's `EventLog`) so `seq` order is
//! commit order. Reads open their own connections (WAL lets them run beside the writer).
//!
//! Schema changes: append one SQL string to [`MIGRATIONS`] (never edit a released one);
//! `user_version` is its 1-based index, applied in order at open, each in its own
//! transaction together with the version bump. A new table (e.g. the jobs tables) is one
//! more entry: `CREATE TABLE IF NOT EXISTS …`.

pub mod event;
pub mod health;
pub mod record;
pub mod retention;
pub mod startup;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

pub mod jobs;

pub use event::Event;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {op}: {source}")]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: schema version {found} is newer than this vigil ({supported})")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("event store is closed")]
    Closed,
    #[error("stored event {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
}

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Schema migrations, oldest first; `user_version` = how many are applied.
pub const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE IF NOT EXISTS events (
        seq  INTEGER PRIMARY KEY AUTOINCREMENT,
        ts   TEXT NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_type ON events(type, seq);
    CREATE TABLE IF NOT EXISTS kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // v2: background jobs (src/store/jobs.rs). `IF NOT EXISTS`: a data_dir from before this
    // migration may already hold the table, created then by the jobs module itself.
    "CREATE TABLE IF NOT EXISTS jobs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    type      TEXT NOT NULL,
    state     TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    priority  INTEGER NOT NULL,
    queued_at TEXT NOT NULL,
    ended_at  TEXT,
    data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, id);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user_id, id);",
];

/// A handle to the database file; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    turn: WriteTurn,
    growth: std::sync::Arc<retention::Growth>,
}

/// The writers of one database in this process (the event writer, the jobs writer) take
/// turns on this lock around each write transaction instead of meeting in SQLite's busy
/// handler, which sleeps 1, 2, 5, 10 … ms between tries: a job row waiting behind an event
/// commit would wait milliseconds after the lock was free. Shared by every clone of a
/// [`Store`].
#[derive(Clone, Debug, Default)]
pub struct WriteTurn(std::sync::Arc<std::sync::Mutex<()>>);

impl WriteTurn {
    /// Wait for this process's other writers to finish their transaction.
    pub fn take(&self) -> std::sync::MutexGuard<'_, ()> {
        // A writer that panicked mid-transaction left nothing half-done in SQLite (its
        // transaction rolled back): the lock is still good.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        op,
        source,
    }
}

impl Store {
    /// Open (creating and migrating) the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let store = Store {
            path: path.to_path_buf(),
            turn: WriteTurn::default(),
            growth: Default::default(),
        };
        let conn = store.connect(true)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err(path, "enabling WAL"))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err(path, "reading schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {m}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .map_err(err(path, "migrating"))?;
        }
        Ok(store)
    }

    /// `PRAGMA quick_check` (and that the events table can be read end to end): `Err` with
    /// what SQLite found when the database is damaged.
    pub fn check(path: &Path) -> Result<(), String> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| e.to_string())?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|m| m.collect())
            .map_err(|e| e.to_string())?;
        if rows.len() != 1 || rows[0] != "ok" {
            let mut found = rows.into_iter().take(5).collect::<Vec<_>>().join("; ");
            if found.is_empty() {
                found = "no answer".into();
            }
            return Err(found);
        }
        conn.query_row("SELECT count(*), max(seq) FROM events", [], |_| Ok(()))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = self.connect(true)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(err(&self.path, "checkpointing the WAL"))
    }

    /// This database's id (made up when it is created): the state record remembers it, so
    /// a deleted or replaced `vigil.db` is noticed.
    pub fn db_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.kv_get("db_id")? {
            return Ok(id);
        }
        let id = format!("{:032x}", rand::random::<u128>());
        let conn = self.connect(true)?;
        conn.execute(
            "INSERT INTO kv (key, value) VALUES ('db_id', ?1) ON CONFLICT(key) DO NOTHING",
            [&id],
        )
        .map_err(err(&self.path, "writing the database id"))?;
        Ok(self.kv_get("db_id")?.unwrap_or(id))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The turn this database's writers in this process take ([`WriteTurn`]).
    pub fn write_turn(&self) -> WriteTurn {
        self.turn.clone()
    }

    /// A new connection (the writer keeps one; readers open their own).
    pub fn connect(&self, write: bool) -> Result<Connection, StoreError> {
        let flags = if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(err(&self.path, "opening"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err(&self.path, "setting busy timeout"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err(&self.path, "setting synchronous"))?;
        Ok(conn)
    }

    /// Append a batch `(seq, ts, type, data)` in one transaction (the writer assigns `seq`s).
    pub fn append(
        conn: &mut Connection,
        path: &Path,
        batch: &[(u64, String, String, String)],
    ) -> Result<(), StoreError> {
        let tx = conn.transaction().map_err(err(path, "beginning a write"))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO events (seq, ts, type, data) VALUES (?1, ?2, ?3, ?4)")
                .map_err(err(path, "preparing an insert"))?;
            for (seq, ts, kind, data) in batch {
                stmt.execute(params![*seq as i64, ts, kind, data])
                    .map_err(err(path, "inserting an event"))?;
            }
        }
        tx.commit().map_err(err(path, "committing events"))?;
        Ok(())
    }

    /// What the event writer appended, for retention to sweep on growth (not only each
    /// minute): about the bytes of `batch`.
    pub fn grew(&self, batch: &[(u64, String, String, String)]) {
        let bytes: usize = batch
            .iter()
            .map(|(_, ts, kind, data)| ts.len() + kind.len() + data.len() + 16)
            .sum();
        self.growth.add(bytes as u64);
    }

    /// Whether a failed write may succeed if retried at once (the database was busy).
    pub fn transient(e: &StoreError) -> bool {
        matches!(e, StoreError::Sqlite { source: rusqlite::Error::SqliteFailure(f, _), .. }
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }

    /// Events with `seq > since`, oldest first, optionally of one type, at most `limit`.
    pub fn events_since(
        &self,
        since: u64,
        kind: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let conn = self.connect(false)?;
        let mut out = Vec::new();
        let map = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        };
        let rows: Vec<(i64, String, String, String)> = match kind {
            Some(k) => {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, ts, type, data FROM events WHERE seq > ?1 AND type = ?2 ORDER BY seq LIMIT ?3",
                    )
                    .map_err(err(&self.path, "querying events"))?;
                stmt.query_map(params![since as i64, k, limit as i64], map)
                    .map_err(err(&self.path, "querying events"))?
                    .collect::<Result<_, _>>()
                    .map_err(err(&self.path, "reading events"))?
            }
            None => {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, ts, type, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )
                    .map_err(err(&self.path, "querying events"))?;
                stmt.query_map(params![since as i64, limit as i64], map)
                    .map_err(err(&self.path, "querying events"))?
                    .collect::<Result<_, _>>()
                    .map_err(err(&self.path, "reading events"))?
            }
        };
        for (seq, ts, kind, data) in rows {
            out.push(Event::from_row(seq as u64, &ts, kind, &data)?);
        }
        Ok(out)
    }

    /// The highest `seq` ever assigned (AUTOINCREMENT never reuses one, even after deletes).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let conn = self.connect(false)?;
        let seq: Option<i64> = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(err(&self.path, "reading last seq"))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.connect(false)?;
        conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(err(&self.path, "reading a setting"))
    }

    pub fn kv_put(
        conn: &Connection,
        path: &Path,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(err(path, "writing a setting"))?;
        Ok(())
    }
}

/// Every stored event, oldest first, as the object `GET /api/events` gives (`seq`, `ts`,
/// `type` and its fields), from a database opened **read-only** (`vigil analyze --db`, the
/// report): a file that does not exist is an error, never created. Rows are streamed, and
/// `since` (Unix ms) skips older rows in SQL (`ts` is RFC 3339 UTC, so it sorts as text).
pub fn scan_events_read_only(
    path: &Path,
    since_ms: Option<u64>,
    mut f: impl FnMut(&serde_json::Map<String, serde_json::Value>),
) -> Result<u64, StoreError> {
    use serde_json::Value;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err(path, "opening read-only"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(err(path, "setting busy timeout"))?;
    let since = since_ms
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map(event::rfc3339)
        .unwrap_or_default();
    let mut stmt = conn
        .prepare("SELECT seq, ts, type, data FROM events WHERE ts >= ?1 ORDER BY seq")
        .map_err(err(path, "querying events"))?;
    let mut rows = stmt
        .query(params![since])
        .map_err(err(path, "querying events"))?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(err(path, "reading events"))? {
        let read = |i| r.get::<_, String>(i).map_err(err(path, "reading events"));
        let seq: i64 = r.get(0).map_err(err(path, "reading events"))?;
        let (ts, kind, data) = (read(1)?, read(2)?, read(3)?);
        let mut m = match serde_json::from_str::<Value>(&data) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        m.insert("seq".into(), Value::from(seq));
        m.insert("ts".into(), Value::from(ts));
        m.insert("type".into(), Value::from(kind));
        f(&m);
        n += 1;
    }
    Ok(n)
}
