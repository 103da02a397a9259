//! Events out: every state change is an [`Event`] with a `seq` that is strictly increasing,
//! never reused, also across restarts. An event is committed to SQLite **before** it is
//! broadcast in-process, so nothing is announced that is not stored.
//!
//! One writer thread owns the write connection. Producers submit without waiting; the `seq`
//! is assigned when an event is submitted (under one lock with the send, so channel order
//! is `seq` order); the writer batches what is queued into one transaction, commits, then
//! broadcasts in `seq` order. [`EventLog::record`] also returns the stored event.
//!
//! The one exception to "stored before broadcast" is made durable elsewhere first: a
//! trading-state transition reserves its `seq`s ([`EventLog::reserve`]), is written to the
//! state record (one in-place write + fdatasync, which holds the events), and is handed to
//! the writer, which broadcasts it as soon as everything before it is committed and commits
//! it to SQLite right after (with whatever is queued by then). Until that commit it is
//! served from memory; if vigil dies first, [`EventLog::start`] inserts it again from the
//! record with its `seq`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc, oneshot};

use crate::queues::{Gate, Queue, Room};
pub use crate::store::event::{Event, rfc3339};
use crate::store::health::StoreHealth;
use crate::store::record::{RecordedEvent, StateRecord};
use crate::store::{Store, StoreError};

/// `seq`s are reserved in the state record this many at a time, so a deleted database
/// cannot make them start over (the record is written once per block, not per event).
pub const SEQ_BLOCK: u64 = 100_000;

/// Kinds announced (with `stored: false`) even when they cannot be stored: a halt and what
/// it commands must reach the trading processes on a full or broken disk.
pub const ANNOUNCE_UNSTORED: &[&str] = &["trading_state", "command", "halt_action", "history_lost"];

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
        seq: u64,
        ts: String,
        kind: String,
        data: Map<String, Value>,
        ack: Waiter,
        /// Its room in the writer's queue (events not tied to an ingest acknowledgement,
        /// which the ingest budget bounds instead), given back once the writer takes it.
        room: Option<Room>,
    },
    /// `seq`s from [`EventLog::reserve`]: nothing after them is broadcast before their
    /// events are handed over (or the reservation is dropped, leaving a gap).
    Reserved {
        first: u64,
        ts: String,
        events: oneshot::Receiver<Vec<(String, Map<String, Value>)>>,
        done: oneshot::Sender<Vec<Arc<Event>>>,
    },
    Flush(oneshot::Sender<()>),
}

/// `seq`s handed out by [`EventLog::reserve`], and the time stamp their events carry.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub first: u64,
    pub count: usize,
    pub ts: String,
}

/// Hands a reservation's events to the writer (from any thread, without waiting): call it
/// once they are durable elsewhere. Dropping it abandons the reservation.
pub struct Announcer(oneshot::Sender<Vec<(String, Map<String, Value>)>>);

impl Announcer {
    /// The events, in order (the first gets `Reserved::first`); extra ones are ignored.
    pub fn announce(self, events: Vec<(String, Map<String, Value>)>) {
        let _ = self.0.send(events);
    }
}

/// Resolves once the reserved events were broadcast.
pub struct Announced(oneshot::Receiver<Vec<Arc<Event>>>);

impl Announced {
    pub async fn wait(self) -> Result<Vec<Arc<Event>>, String> {
        self.0
            .await
            .map_err(|_| "the reserved events were not announced".to_string())
    }
}

/// Producer/subscriber handle of the event log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    /// The writer's queue. Bounded: an `Append` of an ingested event holds a unit of the
    /// ingest budget (`monitor::INGEST_BUDGET`) until committed; every other `Append` takes
    /// room in `gate` first ([`WRITER_QUEUE`]); a `Reserved` is sent by the monitor actor, one
    /// transition at a time (it waits for the announcement before the next), and a `Flush`
    /// by a caller that waits for it. So at most `INGEST_BUDGET + WRITER_QUEUE` + (callers
    /// waiting) messages are queued.
    tx: mpsc::UnboundedSender<Msg>,
    gate: Gate,
    /// Assigning a `seq` and queueing the event happen under this lock.
    seqs: Arc<Mutex<Seqs>>,
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

/// Room in the writer's queue for events not tied to an ingest acknowledgement (the
/// daemon's own: process states, logs, commands, jobs). Full: [`EventLog::submit`] refuses
/// the event (counted in `vigil_queue_refused_total{queue="event_writer"}`, logged), the
/// waiting forms wait.
pub const WRITER_QUEUE: usize = 16_384;

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
        // The last transition's events, durable in the record: insert what SQLite lacks
        // (vigil died after announcing them, before their commit).
        if history_lost.is_none() {
            let missing: Vec<_> = before
                .events
                .iter()
                .filter(|e| e.seq > last)
                .map(recovered_row)
                .collect();
            if !missing.is_empty() {
                match Store::append(&mut conn, store.path(), &missing) {
                    Ok(()) => tracing::warn!(
                        events = missing.len(),
                        first = missing[0].0,
                        "re-inserted the last trading-state transition's events from the state record"
                    ),
                    // Still in the record: the next start tries again.
                    Err(e) => {
                        tracing::error!(error = %e, "could not re-insert the last transition's events from the state record");
                        health.startup_problem(format!(
                            "the last trading-state transition (seq {}) is only in the state record: {e}",
                            missing[0].0
                        ));
                    }
                }
            }
        }
        let seqs = Arc::new(Mutex::new(Seqs {
            next,
            reserved,
            record,
        }));
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let live2 = live.clone();
        let path = store.path().to_path_buf();
        let h = health.clone();
        let unstored: Unstored = Default::default();
        let mut writer = Writer {
            conn,
            path,
            turn: store.write_turn(),
            store: store.clone(),
            live: live2,
            health: h,
            unstored: unstored.clone(),
            carry: Vec::new(),
        };
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
                    writer.write_batch(std::mem::take(&mut batch));
                }
            })
            .map_err(|_| StoreError::Closed)?;
        let log = EventLog {
            tx,
            gate: Gate::new(Queue::EventWriter, WRITER_QUEUE),
            seqs,
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

    /// Queue an event; it is stored, then broadcast. Never blocks: when the writer's queue
    /// is full the event is refused (counted and logged).
    pub fn submit(&self, kind: &str, data: Map<String, Value>) {
        self.submit_for(kind, data, Waiter::None);
    }

    /// Queue an event, waiting while the writer's queue is full (for senders that can be
    /// slowed: a child's output is then not read).
    pub async fn submit_waiting(&self, kind: &str, data: Map<String, Value>) {
        let room = self.gate.room().await;
        self.append(kind, data, Waiter::None, room);
    }

    /// Assign `n` seqs and a time stamp and queue what `msg` builds from them, atomically.
    fn send(&self, n: u64, msg: impl FnOnce(u64, String) -> Msg) -> Result<(), Msg> {
        let Ok(mut seqs) = self.seqs.lock() else {
            return Err(msg(0, rfc3339(Utc::now())));
        };
        let first = seqs.take(n, &self.health);
        let m = msg(first, rfc3339(Utc::now()));
        self.tx.send(m).map_err(|mpsc::error::SendError(m)| m)
    }

    /// Queue an event whose commit `ack` waits for. An ingested event (`Waiter::Group`) is
    /// bounded by the ingest budget; any other is refused when the writer's queue is full.
    pub fn submit_for(&self, kind: &str, data: Map<String, Value>, ack: Waiter) {
        let room = match ack {
            Waiter::Group(_) => None,
            _ => match self.gate.try_room() {
                Some(r) => Some(r),
                None => {
                    tracing::warn!(kind, "event writer queue full; event refused");
                    ack.resolve(Err("the event writer's queue is full"));
                    return;
                }
            },
        };
        self.append(kind, data, ack, room);
    }

    fn append(&self, kind: &str, data: Map<String, Value>, ack: Waiter, room: Option<Room>) {
        let r = self.send(1, |seq, ts| Msg::Append {
            seq,
            ts,
            kind: kind.to_string(),
            data,
            ack,
            room,
        });
        if let Err(Msg::Append { ack, .. }) = r {
            tracing::error!(kind, "event log is closed; event not recorded");
            ack.resolve(Err("event log is closed"));
        }
    }

    /// Store an event and wait until it is committed (and broadcast).
    /// Waits while the writer's queue is full.
    pub async fn record(&self, kind: &str, data: Map<String, Value>) -> Result<Arc<Event>, String> {
        let (ack, rx) = oneshot::channel();
        let room = self.gate.room().await;
        self.send(1, |seq, ts| Msg::Append {
            seq,
            ts,
            kind: kind.to_string(),
            data,
            ack: Waiter::Record(ack),
            room,
        })
        .map_err(|_| "event log is closed".to_string())?;
        rx.await.map_err(|_| "event writer stopped".to_string())?
    }

    /// Reserve the next `count` seqs for events the caller makes durable itself (in the
    /// state record) before handing them over with the [`Announcer`]; they are broadcast
    /// in `seq` order, then committed (see the module doc). `Err` when the log is closed.
    pub fn reserve(&self, count: usize) -> Result<(Reserved, Announcer, Announced), String> {
        let (etx, erx) = oneshot::channel();
        let (dtx, drx) = oneshot::channel();
        let mut reserved = None;
        self.send(count as u64, |first, ts| {
            reserved = Some(Reserved {
                first,
                count,
                ts: ts.clone(),
            });
            Msg::Reserved {
                first,
                ts,
                events: erx,
                done: dtx,
            }
        })
        .map_err(|_| "event log is closed".to_string())?;
        let reserved = reserved.ok_or_else(|| "event log is closed".to_string())?;
        Ok((reserved, Announcer(etx), Announced(drx)))
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
        // An announced event just committed is in both.
        page.dedup_by_key(|e| e.seq);
        page.truncate(limit);
        Ok(page)
    }
}

/// A row to insert again from the record's copy of an event.
fn recovered_row(e: &RecordedEvent) -> (u64, String, String, String) {
    let mut data = e.data.clone();
    data.insert("recovered".into(), Value::from("state_record"));
    (
        e.seq,
        e.ts.clone(),
        e.kind.clone(),
        Value::Object(data).to_string(),
    )
}

type Pending = Vec<(u64, String, String, Map<String, Value>, Waiter)>;

/// The writer thread's state.
struct Writer {
    conn: rusqlite::Connection,
    path: std::path::PathBuf,
    turn: crate::store::WriteTurn,
    /// For retention's growth trigger.
    store: Store,
    live: broadcast::Sender<Arc<Event>>,
    health: Arc<StoreHealth>,
    unstored: Unstored,
    /// Announced (durable in the state record), not yet committed.
    carry: Vec<Arc<Event>>,
}

impl Writer {
    fn write_batch(&mut self, batch: Vec<Msg>) {
        let mut rows = Vec::new();
        let mut pending: Pending = Vec::new();
        let mut flushes = Vec::new();
        for m in batch {
            match m {
                Msg::Append {
                    seq,
                    ts,
                    kind,
                    data,
                    ack,
                    room,
                } => {
                    drop(room);
                    let json = Value::Object(data.clone()).to_string();
                    rows.push((seq, ts.clone(), kind.clone(), json));
                    pending.push((seq, ts, kind, data, ack));
                }
                Msg::Flush(tx) => flushes.push(tx),
                Msg::Reserved {
                    first,
                    ts,
                    events,
                    done,
                } => {
                    // Everything before the reservation is broadcast before it.
                    self.commit(std::mem::take(&mut rows), std::mem::take(&mut pending));
                    self.announce(first, ts, events, done);
                }
            }
        }
        self.commit(rows, pending);
        for f in flushes {
            let _ = f.send(());
        }
    }

    /// Wait for a reservation's events (their caller is writing the state record), then
    /// broadcast them; their commit goes with the next one.
    fn announce(
        &mut self,
        first: u64,
        ts: String,
        events: oneshot::Receiver<Vec<(String, Map<String, Value>)>>,
        done: oneshot::Sender<Vec<Arc<Event>>>,
    ) {
        let Ok(list) = events.blocking_recv() else {
            tracing::warn!(
                first,
                "reserved event seqs abandoned (never announced; a gap)"
            );
            return;
        };
        let out: Vec<Arc<Event>> = list
            .into_iter()
            .enumerate()
            .map(|(i, (kind, data))| {
                Arc::new(Event {
                    seq: first + i as u64,
                    ts: ts.clone(),
                    kind,
                    data,
                })
            })
            .collect();
        for e in &out {
            // Served from memory until committed.
            keep_unstored(&self.unstored, e.clone());
            let _ = self.live.send(e.clone());
        }
        crate::failpoint::hit(
            "trading-state-announced",
            std::time::Duration::from_millis(500),
        );
        self.carry.extend(out.iter().cloned());
        let _ = done.send(out);
    }

    /// Commit the announced events still carried and `rows`, then broadcast `pending`.
    fn commit(&mut self, rows: Vec<(u64, String, String, String)>, pending: Pending) {
        if rows.is_empty() && self.carry.is_empty() {
            return;
        }
        let carry = std::mem::take(&mut self.carry);
        let mut all: Vec<(u64, String, String, String)> = carry
            .iter()
            .map(|e| {
                (
                    e.seq,
                    e.ts.clone(),
                    e.kind.clone(),
                    Value::Object(e.data.clone()).to_string(),
                )
            })
            .collect();
        all.extend(rows);
        // Retry only what may pass at once (the database was busy); a full disk or an
        // I/O error is reported without delaying the halt that may be in this batch.
        let mut attempt = 0;
        let result = loop {
            let appended = {
                let _turn = self.turn.take();
                Store::append(&mut self.conn, &self.path, &all)
            };
            match appended {
                Ok(()) => {
                    self.store.grew(&all);
                    break Ok(());
                }
                Err(e) if attempt < 5 && Store::transient(&e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "event write failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
                }
                Err(e) => break Err(e),
            }
        };
        let (live, health, unstored) = (&self.live, &self.health, &self.unstored);
        match result {
            Ok(()) => {
                health.write_ok();
                if !carry.is_empty()
                    && let Ok(mut u) = unstored.lock()
                {
                    u.retain(|e| !carry.iter().any(|c| c.seq == e.seq));
                }
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
                tracing::error!(error = %msg, lost = all.len(), "events could not be stored");
                health.write_failed(&msg, all.len() as u64);
                // Already announced: kept in memory, now marked.
                if let Ok(mut u) = unstored.lock() {
                    for e in u.iter_mut() {
                        if carry.iter().any(|c| c.seq == e.seq) {
                            let mut m = (**e).clone();
                            m.data.insert("stored".into(), Value::Bool(false));
                            *e = Arc::new(m);
                        }
                    }
                }
                health
                    .announced_unstored
                    .fetch_add(carry.len() as u64, Ordering::Relaxed);
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
                        keep_unstored(unstored, ev.clone());
                        let _ = live.send(ev.clone());
                        ack.resolve(Ok(&ev));
                    } else {
                        ack.resolve(Err(&msg));
                    }
                }
            }
        }
    }
}

fn keep_unstored(unstored: &Unstored, ev: Arc<Event>) {
    if let Ok(mut u) = unstored.lock() {
        if u.len() >= UNSTORED_KEPT {
            u.pop_front();
        }
        u.push_back(ev);
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
