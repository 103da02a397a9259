//! The `jobs` table: one row per job, one row write per change (never a whole-state
//! rewrite). Ids come from SQLite's AUTOINCREMENT counter (`sqlite_sequence`), so an id is
//! never reused, also after history is pruned or vigil restarts.
//!
//! The table is the store's migration v2 (`super::MIGRATIONS`), applied when the store opens.
//! Writes go through one writer thread ([`JobWriter`]) in submission order; the row is the
//! job's JSON record plus the columns the listings filter on.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Store, StoreError};

/// The columns of one row; `data` is the full JSON record.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: u64,
    pub kind: String,
    pub state: String,
    pub user_id: String,
    pub priority: i64,
    pub queued_at: String,
    pub ended_at: Option<String>,
    pub data: String,
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub states: Vec<String>,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    /// Only ids below this (pagination: newest first).
    pub before: Option<u64>,
    pub limit: usize,
}

fn err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The highest id ever assigned (the table exists: migration v2).
pub fn open(store: &Store) -> Result<u64, StoreError> {
    let conn = store.connect(true)?;
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(err(store.path(), "reading the last job id"))?;
    Ok(seq.unwrap_or(0).max(0) as u64)
}

/// Write rows (insert or update by id) in one transaction.
pub fn upsert(conn: &mut Connection, path: &Path, rows: &[JobRow]) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(err(path, "beginning a jobs write"))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO jobs (id, type, state, user_id, priority, queued_at, ended_at, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state,
                   priority = excluded.priority, ended_at = excluded.ended_at, data = excluded.data",
            )
            .map_err(err(path, "preparing a job write"))?;
        for r in rows {
            stmt.execute(params![
                r.id as i64,
                r.kind,
                r.state,
                r.user_id,
                r.priority,
                r.queued_at,
                r.ended_at,
                r.data
            ])
            .map_err(err(path, "writing a job"))?;
        }
    }
    tx.commit().map_err(err(path, "committing jobs"))
}

/// Keep the newest `keep` finished jobs (0 = keep all). Returns how many were deleted.
pub fn prune(conn: &Connection, path: &Path, keep: u64) -> Result<usize, StoreError> {
    if keep == 0 {
        return Ok(0);
    }
    conn.execute(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE ended_at IS NOT NULL
           ORDER BY id DESC LIMIT -1 OFFSET ?1)",
        [keep as i64],
    )
    .map_err(err(path, "pruning job history"))
}

fn row_data(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    r.get(0)
}

/// Jobs not finished (queued, running, paused), oldest first: what a restart must look at.
pub fn unfinished(store: &Store) -> Result<Vec<String>, StoreError> {
    let conn = store.connect(false)?;
    let mut stmt = conn
        .prepare("SELECT data FROM jobs WHERE ended_at IS NULL ORDER BY id")
        .map_err(err(store.path(), "querying unfinished jobs"))?;
    stmt.query_map([], row_data)
        .map_err(err(store.path(), "querying unfinished jobs"))?
        .collect::<Result<_, _>>()
        .map_err(err(store.path(), "reading jobs"))
}

pub fn get(store: &Store, id: u64) -> Result<Option<String>, StoreError> {
    let conn = store.connect(false)?;
    conn.query_row("SELECT data FROM jobs WHERE id = ?1", [id as i64], row_data)
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(err(store.path(), "reading a job"))
}

/// A page of jobs, newest first.
pub fn list(store: &Store, f: &JobFilter) -> Result<Vec<String>, StoreError> {
    let conn = store.connect(false)?;
    let mut sql = String::from("SELECT data FROM jobs WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if !f.states.is_empty() {
        sql.push_str(" AND state IN (");
        for (i, s) in f.states.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
            args.push(s.clone().into());
        }
        sql.push(')');
    }
    if let Some(k) = &f.kind {
        sql.push_str(" AND type = ?");
        args.push(k.clone().into());
    }
    if let Some(u) = &f.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(u.clone().into());
    }
    if let Some(b) = f.before {
        sql.push_str(" AND id < ?");
        args.push((b as i64).into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push((f.limit as i64).into());
    let mut stmt = conn
        .prepare(&sql)
        .map_err(err(store.path(), "querying jobs"))?;
    stmt.query_map(rusqlite::params_from_iter(args), row_data)
        .map_err(err(store.path(), "querying jobs"))?
        .collect::<Result<_, _>>()
        .map_err(err(store.path(), "reading jobs"))
}

enum Msg {
    Write(
        JobRow,
        Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    ),
    Prune(u64),
}

/// The jobs writer thread: rows are written in the order they were submitted, batched into
/// one transaction when several are waiting.
#[derive(Clone)]
pub struct JobWriter {
    tx: std::sync::mpsc::Sender<Msg>,
}

impl JobWriter {
    pub fn start(store: &Store) -> Result<JobWriter, StoreError> {
        let mut conn = store.connect(true)?;
        let path: PathBuf = store.path().to_path_buf();
        let turn = store.write_turn();
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("vigil-jobs-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < 512 {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    let mut rows = Vec::new();
                    let mut acks = Vec::new();
                    let mut prune_to = None;
                    for m in batch {
                        match m {
                            Msg::Write(r, ack) => {
                                rows.push(r);
                                acks.extend(ack);
                            }
                            Msg::Prune(k) => prune_to = Some(k),
                        }
                    }
                    let mut result = Ok(());
                    for attempt in 0..5 {
                        result = {
                            let _turn = turn.take();
                            upsert(&mut conn, &path, &rows).map_err(|e| e.to_string())
                        };
                        if result.is_ok() {
                            break;
                        }
                        tracing::warn!(error = ?result, attempt, "job write failed; retrying");
                        std::thread::sleep(std::time::Duration::from_millis(50 << attempt));
                    }
                    if let Err(e) = &result {
                        tracing::error!(error = %e, rows = rows.len(), "job rows could not be stored");
                    }
                    for a in acks {
                        let _ = a.send(result.clone());
                    }
                    if let Some(k) = prune_to
                        && let Err(e) = prune(&conn, &path, k)
                    {
                        tracing::warn!(error = %e, "pruning job history failed");
                    }
                }
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(JobWriter { tx })
    }

    /// Queue a row write; never blocks.
    pub fn write(&self, row: JobRow) {
        if self.tx.send(Msg::Write(row, None)).is_err() {
            tracing::error!("jobs writer is closed; job row not stored");
        }
    }

    /// Queue a row write and get a receiver that reports when it is committed.
    pub fn write_acked(&self, row: JobRow) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Write(row, Some(tx))).is_err() {
            tracing::error!("jobs writer is closed; job row not stored");
        }
        rx
    }

    pub fn prune(&self, keep: u64) {
        let _ = self.tx.send(Msg::Prune(keep));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, state: &str, ended: bool) -> JobRow {
        JobRow {
            id,
            kind: "backtest".into(),
            state: state.into(),
            user_id: "alice".into(),
            priority: 0,
            queued_at: "2026-01-01T00:00:00.000Z".into(),
            ended_at: ended.then(|| "2026-01-01T00:00:01.000Z".into()),
            data: format!("{{\"id\":{id},\"state\":\"{state}\"}}"),
        }
    }

    #[test]
    fn ids_are_never_reused_and_rows_update_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigil.db")).unwrap();
        assert_eq!(open(&store).unwrap(), 0);
        let mut conn = store.connect(true).unwrap();
        upsert(
            &mut conn,
            store.path(),
            &[row(1, "queued", false), row(2, "queued", false)],
        )
        .unwrap();
        upsert(&mut conn, store.path(), &[row(1, "succeeded", true)]).unwrap();
        assert_eq!(unfinished(&store).unwrap().len(), 1);
        assert!(get(&store, 1).unwrap().unwrap().contains("succeeded"));
        upsert(&mut conn, store.path(), &[row(2, "failed", true)]).unwrap();
        assert_eq!(prune(&conn, store.path(), 1).unwrap(), 1);
        assert!(get(&store, 1).unwrap().is_none());
        // Pruned ids are not handed out again.
        assert_eq!(open(&store).unwrap(), 2);
        let page = list(
            &store,
            &JobFilter {
                states: vec!["failed".into()],
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page.len(), 1);
    }
}
