//! Events out: every state change is an [`Event`] with a `seq` that is strictly increasing,
//! never reused, also across restarts. An event is committed to SQLite **before** it is
//! broadcast in-process, so nothing is announced that is not stored.
//!
//! One writer thread owns the write connection. Producers submit without waiting (order is
//! kept by the channel); the writer batches what is queued into one transaction, commits,
//! then broadcasts in `seq` order. [`EventLog::record`] also returns the stored event, for
//! callers that must not go on before the event is durable (the trading state).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc, oneshot};

use crate::store::health::StoreHealth;
use crate::store::record::StateRecord;
use crate::store::{Store, StoreError};

/// `seq`s are reserved in the state record this many at a time, so a deleted database
/// cannot make them start over (the record is written once per block, not per event).
pub const SEQ_BLOCK: u64 = 100_000;

/// Kinds announced (with `stored: false`) even when they cannot be stored: a halt and what
/// it commands must reach the trading processes on a full or broken disk.
pub const ANNOUNCE_UNSTORED: &[&str] = &["trading_state", "command", "halt_action", "history_lost"];

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub kind: String,
    /// The event's own fields (an object).
    pub data: Map<String, Value>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.data.len() + 3))?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("type", &self.kind)?;
        for (k, v) in &self.data {
            if k != "seq" && k != "ts" && k != "type" {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

impl Event {
    pub fn from_row(seq: u64, ts: &str, kind: String, data: &str) -> Result<Event, StoreError> {
        let data = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: "data is not an object".into(),
                });
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Event {
            seq,
            ts: ts.to_string(),
            kind,
            data,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn str_field(&self, k: &str) -> Option<&str> {
        self.data.get(k).and_then(Value::as_str)
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The acknowledgement of a group of ingested events (an HTTP batch, a stretch of socket
/// lines): it resolves once every event handed to it is committed — or with the first
/// error — and holds the group's share of the ingest budget until then, so what is queued
/// between a sender and the disk is bounded by the budget.
pub struct Ack {
    /// Events not yet done, plus one while the group is still open.
    remaining: AtomicUsize,
    failed: Mutex<Option<String>>,
    tx: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("remaining", &self.remaining.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ack {
    /// An open group holding `permit`; `close` it after handing over its events.
    pub fn new(
        permit: Option<OwnedSemaphorePermit>,
    ) -> (Arc<Ack>, oneshot::Receiver<Result<(), String>>) {
        let (tx, rx) = oneshot::channel();
        let ack = Arc::new(Ack {
            remaining: AtomicUsize::new(1),
            failed: Mutex::new(None),
            tx: Mutex::new(Some(tx)),
            permit: Mutex::new(permit),
        });
        (ack, rx)
    }

    /// One more event belongs to the group (call before handing it over).
    pub fn add(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// More budget held until the group is done.
    pub fn hold(&self, p: OwnedSemaphorePermit) {
        if let Ok(mut g) = self.permit.lock() {
            match g.as_mut() {
                Some(held) => held.merge(p),
                None => *g = Some(p),
            }
        }
    }

    /// One event is done (committed, or needs no storage); `Err` marks the group failed.
    pub fn done(&self, r: Result<(), &str>) {
        if let Err(e) = r
            && let Ok(mut f) = self.failed.lock()
            && f.is_none()
        {
            *f = Some(e.to_string());
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Ok(mut p) = self.permit.lock() {
                p.take();
            }
            let failed = self.failed.lock().ok().and_then(|mut f| f.take());
            if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(failed.map_or(Ok(()), Err));
            }
        }
    }

    /// No more events will be added.
    pub fn close(&self) {
        self.done(Ok(()));
    }
}

/// Who waits for an event's commit.
pub enum Waiter {
    None,
    Record(oneshot::Sender<Result<Arc<Event>, String>>),
    Group(Arc<Ack>),
}

impl Waiter {
    fn resolve(self, r: Result<&Arc<Event>, &str>) {
        match self {
            Waiter::None => {}
            Waiter::Record(tx) => {
                let _ = tx.send(r.cloned().map_err(str::to_string));
            }
            Waiter::Group(a) => a.done(r.map(|_| ())),
        }
    }
}

enum Msg {
    Append {
        kind: String,
        data: Map<String, Value>,
        at: DateTime<Utc>,
        ack: Waiter,
    },
    Flush(oneshot::Sender<()>),
}

/// Producer/subscriber handle of the event log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::UnboundedSender<Msg>,
    live: broadcast::Sender<Arc<Event>>,
    store: Store,
    health: Arc<StoreHealth>,
    /// The last events announced without being stored, so history and resumed streams
    /// still show them while this vigil runs.
    unstored: Unstored,
}

type Unstored = Arc<Mutex<std::collections::VecDeque<Arc<Event>>>>;

/// How many unstored announcements are kept in memory.
const UNSTORED_KEPT: usize = 1024;

/// The writer's `seq` counter and the high-water mark reserved in the state record.
struct Seqs {
    next: u64,
    reserved: u64,
    record: Arc<StateRecord>,
}

impl Seqs {
    /// `n` consecutive seqs; reserves a new block in the record first when needed. When the
    /// record cannot be written the seqs are still handed out (the database's own
    /// AUTOINCREMENT keeps them unique while it exists) and health says so.
    fn take(&mut self, n: u64, health: &StoreHealth) -> u64 {
        let first = self.next;
        self.next += n;
        if self.next - 1 > self.reserved {
            let upto = self.next - 1 + SEQ_BLOCK;
            let r = self.record.update(|c| c.seq_reserved = upto);
            if r.is_ok() {
                self.reserved = upto;
            } else if let Err(e) = &r {
                tracing::error!(error = %e, "could not reserve event seqs in the state record");
            }
            health.record(r.map_err(|e| e.to_string()));
        }
        first
    }
}

/// Capacity of the in-process broadcast; a subscriber that falls further behind resyncs
/// from the store (see `api::sse`), so this bounds memory, not correctness.
const LIVE_CAPACITY: usize = 4096;
/// Most events in one transaction (group commit: one commit, one fsync, then every waiter).
const BATCH: usize = 4096;

impl EventLog {
    /// Start the writer thread on an opened store. `seq`s continue above both the
    /// database's last one and the high-water mark in `record`; if `record` belongs to
    /// another database (vigil.db was deleted or replaced), a `history_lost` event says so.
    pub fn start(store: Store, record: Arc<StateRecord>) -> Result<EventLog, StoreError> {
        let mut conn = store.connect(true)?;
        // An acknowledgement means committed and on disk: the WAL is fsynced at each commit
        // (one per batch, so the cost is per batch, not per event).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|source| StoreError::Sqlite {
                path: store.path().to_path_buf(),
                op: "setting synchronous",
                source,
            })?;
        let health = Arc::new(StoreHealth::default());
        let last = store.last_seq()?;
        let before = record.contents();
        let db_id = store.db_id().ok();
        let history_lost = match (&before.db_id, &db_id) {
            (Some(was), Some(now)) if was != now => Some(format!(
                "{} is not the database this data_dir had (id {was}, now {now}): it was deleted or replaced",
                store.path().display()
            )),
            (None, _) if before.seq_reserved > last => Some(format!(
                "{} holds events up to seq {last} but seqs up to {} were handed out",
                store.path().display(),
                before.seq_reserved
            )),
            _ => None,
        };
        let next = last.max(before.seq_reserved) + 1;
        let reserved = next - 1 + SEQ_BLOCK;
        let r = record.update(|c| {
            c.seq_reserved = reserved;
            if db_id.is_some() {
                c.db_id = db_id.clone();
            }
        });
        if let Err(e) = &r {
            tracing::error!(error = %e, "could not write the state record");
        }
        let reserved = if r.is_ok() { reserved } else { next - 1 };
        health.record(r.map_err(|e| e.to_string()));
        let mut seqs = Seqs {
            next,
            reserved,
            record,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let live2 = live.clone();
        let path = store.path().to_path_buf();
        let h = health.clone();
        let unstored: Unstored = Default::default();
        let unstored2 = unstored.clone();
        std::thread::Builder::new()
            .name("vigil-event-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    write_batch(
                        &mut conn,
                        &path,
                        &live2,
                        &mut seqs,
                        &h,
                        &unstored2,
                        std::mem::take(&mut batch),
                    );
                }
            })
            .map_err(|_| StoreError::Closed)?;
        let log = EventLog {
            tx,
            live,
            store,
            health,
            unstored,
        };
        if let Some(reason) = history_lost {
            tracing::error!(%reason, resumed_at = next, "event history lost");
            if let Err(e) = log.store.mark_gap(next - 1) {
                tracing::warn!(error = %e, "could not record the history gap");
            }
            log.health.startup_problem(format!(
                "event history lost: {reason}; seq continues at {next}"
            ));
            log.submit(
                "history_lost",
                crate::fields! {"reason" => reason, "resumed_at" => next, "last_seq_in_database" => last, "reserved_before" => before.seq_reserved},
            );
        }
        Ok(log)
    }

    pub fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Queue an event; it is stored, then broadcast. Never blocks.
    pub fn submit(&self, kind: &str, data: Map<String, Value>) {
        self.submit_for(kind, data, Waiter::None);
    }

    /// Queue an event whose commit `ack` waits for.
    pub fn submit_for(&self, kind: &str, data: Map<String, Value>, ack: Waiter) {
        let msg = Msg::Append {
            kind: kind.to_string(),
            data,
            at: Utc::now(),
            ack,
        };
        if let Err(mpsc::error::SendError(Msg::Append { ack, .. })) = self.tx.send(msg) {
            tracing::error!(kind, "event log is closed; event not recorded");
            ack.resolve(Err("event log is closed"));
        }
    }

    /// Store an event and wait until it is committed (and broadcast).
    pub async fn record(&self, kind: &str, data: Map<String, Value>) -> Result<Arc<Event>, String> {
        let (ack, rx) = oneshot::channel();
        let msg = Msg::Append {
            kind: kind.to_string(),
            data,
            at: Utc::now(),
            ack: Waiter::Record(ack),
        };
        self.tx
            .send(msg)
            .map_err(|_| "event log is closed".to_string())?;
        rx.await.map_err(|_| "event writer stopped".to_string())?
    }

    /// Wait until everything submitted before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Move the WAL into the database file (at a clean stop, so `vigil.db` is complete on
    /// its own).
    pub async fn checkpoint(&self) {
        let store = self.store.clone();
        let r = tokio::task::spawn_blocking(move || store.checkpoint()).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "WAL checkpoint at stop failed");
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// History from the store (blocking I/O moved off the runtime), with the events that
    /// were announced unstored merged in by `seq`.
    pub async fn since(
        &self,
        since: u64,
        kind: Option<String>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let store = self.store.clone();
        let k = kind.clone();
        let stored =
            tokio::task::spawn_blocking(move || store.events_since(since, k.as_deref(), limit))
                .await
                .map_err(|_| StoreError::Closed)?;
        let extra: Vec<Event> = self
            .unstored
            .lock()
            .map(|u| {
                u.iter()
                    .filter(|e| e.seq > since && kind.as_deref().is_none_or(|k| k == e.kind))
                    .map(|e| (**e).clone())
                    .collect()
            })
            .unwrap_or_default();
        if extra.is_empty() {
            return stored;
        }
        let mut page = match stored {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "history unreadable; serving unstored announcements only");
                Vec::new()
            }
        };
        // A full page ends the range this answer covers.
        let cutoff = if page.len() >= limit {
            page.last().map_or(u64::MAX, |e| e.seq)
        } else {
            u64::MAX
        };
        page.extend(extra.into_iter().filter(|e| e.seq <= cutoff));
        page.sort_by_key(|e| e.seq);
        page.truncate(limit);
        Ok(page)
    }
}

fn write_batch(
    conn: &mut rusqlite::Connection,
    path: &std::path::Path,
    live: &broadcast::Sender<Arc<Event>>,
    seqs: &mut Seqs,
    health: &StoreHealth,
    unstored: &Unstored,
    batch: Vec<Msg>,
) {
    let mut rows = Vec::new();
    let mut pending = Vec::new();
    let mut flushes = Vec::new();
    let appends = batch
        .iter()
        .filter(|m| matches!(m, Msg::Append { .. }))
        .count() as u64;
    let mut seq = if appends > 0 {
        seqs.take(appends, health)
    } else {
        0
    };
    for m in batch {
        match m {
            Msg::Append {
                kind,
                data,
                at,
                ack,
            } => {
                let ts = rfc3339(at);
                let json = Value::Object(data.clone()).to_string();
                rows.push((seq, ts.clone(), kind.clone(), json));
                pending.push((seq, ts, kind, data, ack));
                seq += 1;
            }
            Msg::Flush(tx) => flushes.push(tx),
        }
    }
    if !rows.is_empty() {
        // Retry only what may pass at once (the database was busy); a full disk or an
        // I/O error is reported without delaying the halt that may be in this batch.
        let mut attempt = 0;
        let result = loop {
            match Store::append(conn, path, &rows) {
                Ok(()) => break Ok(()),
                Err(e) if attempt < 5 && Store::transient(&e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "event write failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => {
                health.write_ok();
                for (seq, ts, kind, data, ack) in pending {
                    let ev = Arc::new(Event {
                        seq,
                        ts,
                        kind,
                        data,
                    });
                    let _ = live.send(ev.clone());
                    ack.resolve(Ok(&ev));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, lost = rows.len(), "events could not be stored");
                health.write_failed(&msg, rows.len() as u64);
                for (seq, ts, kind, mut data, ack) in pending {
                    if ANNOUNCE_UNSTORED.contains(&kind.as_str()) {
                        // Announced anyway, marked, with a seq that is never reused.
                        data.insert("stored".into(), Value::Bool(false));
                        let ev = Arc::new(Event {
                            seq,
                            ts,
                            kind,
                            data,
                        });
                        health.announced_unstored.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut u) = unstored.lock() {
                            if u.len() >= UNSTORED_KEPT {
                                u.pop_front();
                            }
                            u.push_back(ev.clone());
                        }
                        let _ = live.send(ev.clone());
                        ack.resolve(Ok(&ev));
                    } else {
                        ack.resolve(Err(&msg));
                    }
                }
            }
        }
    }
    for f in flushes {
        let _ = f.send(());
    }
}

/// Build a JSON object from `key => value` pairs.
#[macro_export]
macro_rules! fields {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $( m.insert($k.to_string(), serde_json::json!($v)); )*
        m
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn seq_increases_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path).unwrap();
        let rec = |p: &std::path::Path| Arc::new(StateRecord::open(p).unwrap().0);
        let record = dir.path().join("vigil.state");
        let log = EventLog::start(store.clone(), rec(&record)).unwrap();
        let mut sub = log.subscribe();
        let a = log.record("x", fields! {"n" => 1}).await.unwrap();
        log.submit("x", fields! {"n" => 2});
        let live_a = sub.recv().await.unwrap();
        let live_b = sub.recv().await.unwrap();
        assert_eq!(live_a.seq, a.seq);
        assert!(live_b.seq > a.seq);
        log.flush().await;
        drop(log);
        let store2 = Store::open(&path).unwrap();
        assert_eq!(store2.last_seq().unwrap(), live_b.seq);
        let log2 = EventLog::start(store2, rec(&record)).unwrap();
        let c = log2.record("y", fields! {}).await.unwrap();
        assert!(c.seq > live_b.seq);
        let hist = log2.since(0, None, 100).await.unwrap();
        assert_eq!(hist.len(), 3);
        let only_y = log2.since(0, Some("y".into()), 100).await.unwrap();
        assert_eq!(only_y.len(), 1);
        let json: Value = serde_json::from_str(&hist[0].to_json()).unwrap();
        assert_eq!(json["type"], "x");
        assert_eq!(json["n"], 1);
    }
}
