//! SQLite: the only module with SQL. `data_dir/vigil.db`, WAL, batched writes.
//!
//! Writes go through one writer thread ([`crate::events::EventLog`]) so `seq` order is
//! commit order. Reads open their own connections (WAL lets them run beside the writer).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

pub mod jobs;

use crate::events::Event;

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

const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[
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
];

/// A handle to the database file; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
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
            conn.execute_batch(m).map_err(err(path, "migrating"))?;
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(err(path, "migrating"))?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// Append a batch in one transaction; returns the assigned `seq`s in order.
    pub fn append(
        conn: &mut Connection,
        path: &Path,
        batch: &[(String, String, String)],
    ) -> Result<Vec<u64>, StoreError> {
        let tx = conn.transaction().map_err(err(path, "beginning a write"))?;
        let mut seqs = Vec::with_capacity(batch.len());
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO events (ts, type, data) VALUES (?1, ?2, ?3)")
                .map_err(err(path, "preparing an insert"))?;
            for (ts, kind, data) in batch {
                stmt.execute(params![ts, kind, data])
                    .map_err(err(path, "inserting an event"))?;
                seqs.push(tx.last_insert_rowid() as u64);
            }
        }
        tx.commit().map_err(err(path, "committing events"))?;
        Ok(seqs)
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
        .map(crate::events::rfc3339)
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
