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

use crate::store::{Store, StoreError};

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
}

/// Capacity of the in-process broadcast; a subscriber that falls further behind resyncs
/// from the store (see `api::sse`), so this bounds memory, not correctness.
const LIVE_CAPACITY: usize = 4096;
/// Most events in one transaction (group commit: one commit, one fsync, then every waiter).
const BATCH: usize = 4096;

impl EventLog {
    /// Start the writer thread on an opened store.
    pub fn start(store: Store) -> Result<EventLog, StoreError> {
        let mut conn = store.connect(true)?;
        // An acknowledgement means committed and on disk: the WAL is fsynced at each commit
        // (one per batch, so the cost is per batch, not per event).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|source| StoreError::Sqlite {
                path: store.path().to_path_buf(),
                op: "setting synchronous",
                source,
            })?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let live2 = live.clone();
        let path = store.path().to_path_buf();
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
                    write_batch(&mut conn, &path, &live2, std::mem::take(&mut batch));
                }
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(EventLog { tx, live, store })
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

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// History from the store (blocking I/O moved off the runtime).
    pub async fn since(
        &self,
        since: u64,
        kind: Option<String>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.events_since(since, kind.as_deref(), limit))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

fn write_batch(
    conn: &mut rusqlite::Connection,
    path: &std::path::Path,
    live: &broadcast::Sender<Arc<Event>>,
    batch: Vec<Msg>,
) {
    let mut rows = Vec::new();
    let mut pending = Vec::new();
    let mut flushes = Vec::new();
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
                rows.push((ts.clone(), kind.clone(), json));
                pending.push((ts, kind, data, ack));
            }
            Msg::Flush(tx) => flushes.push(tx),
        }
    }
    if !rows.is_empty() {
        // Retry transient failures (busy, I/O) a few times before reporting the loss.
        let mut attempt = 0;
        let result = loop {
            match Store::append(conn, path, &rows) {
                Ok(seqs) => break Ok(seqs),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "event write failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(50 << attempt));
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(seqs) => {
                for ((ts, kind, data, ack), seq) in pending.into_iter().zip(seqs) {
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
                tracing::error!(error = %e, lost = rows.len(), "events could not be stored and were not announced");
                let msg = e.to_string();
                for (_, _, _, ack) in pending {
                    ack.resolve(Err(&msg));
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
        let log = EventLog::start(store.clone()).unwrap();
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
        let log2 = EventLog::start(store2).unwrap();
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
