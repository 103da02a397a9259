//! Pools: one event in flight per listener, redelivery at the head of the same pool, deferral
//! to the store when the buffer is full.

use super::*;

/// One `[eventlistener:x]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool name (header `pool:`).
    pub name: String,
    /// supervisord's `identifier` (header `server:`, default `supervisor`).
    pub server: String,
    /// `buffer_size` (default 10); 0 is treated as 1.
    pub buffer_size: usize,
    /// `numprocs`: listener processes are indexed `0..numprocs` in creation order, which
    /// is also the dispatch preference order.
    pub numprocs: usize,
    /// `events=`.
    pub events: Subscriptions,
    /// Delay before redelivering after a FAIL / non-OK result. 0 = supervisord's immediate
    /// retry (a listener that always FAILs then spins on that event).
    pub retry_delay_ms: Millis,
}

/// An event offered to a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEvent {
    /// The event's `seq` in vigil's store; `None` if the shell did not store it (such an
    /// event cannot be replayed, so an overflow loses it — reported and counted).
    pub seq: Option<u64>,
    /// The global serial (header `serial:`), from [`Pools::serial_for`]. Store it with the
    /// event: a replayed event must carry the same serial.
    pub serial: u64,
    pub notification: Notification,
}

/// An observation or request fed to a [`Pool`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A live event. Stored events must be offered in increasing `seq` order (the event
    /// log's broadcast order); one at or below the highest `seq` taken is a duplicate.
    Offer(PoolEvent),
    /// An event read back from the store after [`Effect::ReplayFrom`]; same rules.
    Replay(PoolEvent),
    /// A replay pass read the store to its end: every refused `seq` below `next_seq` that
    /// it did not deliver is no longer in the store (lost: reported, counted).
    ReplayEnd { next_seq: u64 },
    /// Listener process `process` was (re)spawned: ACKNOWLEDGED, not yet RUNNING.
    Spawned { process: usize },
    /// Its process state changed; it gets events only while RUNNING.
    ProcessState { process: usize, state: ProcessState },
    /// Bytes read from its stdout.
    Output { process: usize, bytes: &'a [u8] },
    /// It exited (reaped): an event in flight goes back to the head of this pool.
    Exited { process: usize },
    /// Writing an [`Effect::Send`] to its stdin failed (EPIPE): the event goes back to the
    /// head and the process gets nothing more until spawned again.
    WriteFailed { process: usize },
    /// [`Pool::next_deadline`] was reached.
    Timer,
}

/// Why an event went back to the head of its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requeue {
    /// FAIL or any result body but `OK`.
    Rejected,
    /// A bad reply: the listener is now UNKNOWN.
    ProtocolError,
    /// The listener exited (or was respawned) with the event in flight.
    Died,
    /// The write to its stdin failed.
    WriteFailed,
}

/// What the shell must do or log, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The event was taken into the buffer with this `poolserial`.
    Buffered {
        seq: Option<u64>,
        serial: u64,
        poolserial: u64,
        /// It came from [`Input::Replay`].
        replayed: bool,
    },
    /// The buffer is full: from `from_seq` on, stored events are refused and will be
    /// replayed from the store (log an error; supervisord would have dropped one here).
    Overflowed { from_seq: u64 },
    /// This stored event was refused (buffer full, or older refused events come first);
    /// it will be asked for again with [`Effect::ReplayFrom`].
    Deferred { seq: u64 },
    /// There is room again: replay stored events from `seq` on, in order, with
    /// [`Input::Replay`], while [`Pool::wants_replay_from`] is `Some`; if the store runs
    /// out first, send [`Input::ReplayEnd`].
    ReplayFrom { seq: u64 },
    /// An event without a `seq` arrived with the buffer full: lost (log, count).
    Dropped { serial: u64 },
    /// A refused stored event was not found on replay: lost (log, count).
    Missing { seq: u64 },
    /// Write these bytes (header + payload) to listener `process`'s stdin.
    Send {
        process: usize,
        serial: u64,
        poolserial: u64,
        bytes: Vec<u8>,
    },
    /// Listener `process` sent `READY\n`.
    Ready { process: usize },
    /// The listener answered `OK`: the event is done.
    Accepted {
        process: usize,
        serial: u64,
        poolserial: u64,
        seq: Option<u64>,
    },
    /// The listener rejected the event (log a warning); a [`Effect::Requeued`] follows.
    Rejected {
        process: usize,
        serial: u64,
        poolserial: u64,
        /// The first [`MAX_BODY_KEPT`] bytes of the result body.
        body: Vec<u8>,
        /// How many times it has been sent.
        attempts: u32,
    },
    /// The listener violated the protocol and is now UNKNOWN: supervisord logs "has entered
    /// the UNKNOWN state and will no longer receive events, this usually indicates the
    /// process violated the eventlistener protocol". Not killed; a respawn recovers it.
    ProtocolError {
        process: usize,
        error: ProtocolError,
    },
    /// The event went back to the head of this pool (same serial and poolserial).
    Requeued {
        process: usize,
        serial: u64,
        poolserial: u64,
        cause: Requeue,
    },
    /// Redelivery is held for `ms` ([`PoolConfig::retry_delay_ms`]): feed
    /// [`Input::Timer`] at [`Pool::next_deadline`].
    RetryAfter { ms: Millis },
}

/// Counters for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Events taken into the buffer (each once, replays included).
    pub buffered: u64,
    /// Envelopes written, redeliveries included.
    pub sent: u64,
    /// `OK` results.
    pub accepted: u64,
    /// Non-`OK` results.
    pub rejected: u64,
    pub protocol_errors: u64,
    /// Events put back at the head, for any [`Requeue`] cause.
    pub redelivered: u64,
    /// Times the buffer overflowed (each starts a replay backlog).
    pub overflows: u64,
    /// Stored events refused for later replay (each counted once).
    pub deferred: u64,
    /// Events taken via [`Input::Replay`].
    pub replayed: u64,
    /// Stored events offered again after being taken (ignored).
    pub duplicates: u64,
    /// Events lost: [`Effect::Dropped`] + [`Effect::Missing`].
    pub lost: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    pub(crate) ev: PoolEvent,
    pub(crate) poolserial: u64,
    pub(crate) attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) listener: Listener,
    pub(crate) running: bool,
    pub(crate) writable: bool,
    pub(crate) in_flight: Option<Queued>,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot {
            listener: Listener::new(),
            running: false,
            writable: false,
            in_flight: None,
        }
    }

    pub(crate) fn eligible(&self) -> bool {
        self.running && self.writable && self.listener.state() == ListenerState::Ready
    }
}

/// One listener pool: its FIFO buffer, its `poolserial`s and its listener processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub(crate) cfg: PoolConfig,
    pub(crate) slots: Vec<Slot>,
    pub(crate) buffer: VecDeque<Queued>,
    pub(crate) poolserial: SerialCounter,
    /// The highest store `seq` taken (stored events are taken in `seq` order).
    pub(crate) last_seq: Option<u64>,
    /// Stored events refused and not yet taken back.
    pub(crate) pending: BTreeSet<u64>,
    pub(crate) replay_requested: bool,
    pub(crate) hold_until: Option<Millis>,
    pub(crate) stats: PoolStats,
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Self {
        let slots = (0..cfg.numprocs).map(|_| Slot::new()).collect();
        Pool {
            cfg,
            slots,
            buffer: VecDeque::new(),
            poolserial: SerialCounter::new(),
            last_seq: None,
            pending: BTreeSet::new(),
            replay_requested: false,
            hold_until: None,
            stats: PoolStats::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    pub fn subscribes(&self, t: EventType) -> bool {
        self.cfg.events.matches(t)
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Events waiting in the buffer (not counting those in flight).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Stored events refused and still to be replayed.
    pub fn backlog(&self) -> usize {
        self.pending.len()
    }

    pub fn listener_state(&self, process: usize) -> Option<ListenerState> {
        self.slots.get(process).map(|s| s.listener.state())
    }

    /// `(serial, poolserial)` of the event in flight to `process`.
    pub fn in_flight(&self, process: usize) -> Option<(u64, u64)> {
        self.slots
            .get(process)?
            .in_flight
            .as_ref()
            .map(|q| (q.ev.serial, q.poolserial))
    }

    /// The `seq` to replay from, when there are refused events and room for them.
    pub fn wants_replay_from(&self) -> Option<u64> {
        if self.buffer.len() < self.capacity() {
            self.pending.first().copied()
        } else {
            None
        }
    }

    /// When to feed [`Input::Timer`] (a held redelivery), if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.hold_until
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cfg.buffer_size.max(1)
    }

    /// Feed one input at monotonic time `now`; returns the effects, in order. Dispatch to
    /// READY listeners happens at the end of every call.
    pub fn on(&mut self, input: Input<'_>, now: Millis) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Offer(ev) => self.take(ev, false, &mut fx),
            Input::Replay(ev) => self.take(ev, true, &mut fx),
            Input::ReplayEnd { next_seq } => {
                let missing: Vec<u64> = self.pending.range(..next_seq).copied().collect();
                for seq in missing {
                    self.pending.remove(&seq);
                    self.stats.lost += 1;
                    fx.push(Effect::Missing { seq });
                }
                self.replay_requested = false;
            }
            Input::Spawned { process } => {
                if let Some(slot) = self.slots.get_mut(process) {
                    let q = slot.in_flight.take();
                    slot.listener = Listener::new();
                    slot.running = false;
                    slot.writable = true;
                    if let Some(q) = q {
                        self.requeue(process, q, Requeue::Died, &mut fx);
                    }
                }
            }
            Input::ProcessState { process, state } => {
                if let Some(slot) = self.slots.get_mut(process) {
                    slot.running = state == ProcessState::Running;
                }
            }
            Input::Output { process, bytes } => {
                if let Some(slot) = self.slots.get_mut(process) {
                    for e in slot.listener.feed(bytes) {
                        self.on_listener(process, e, now, &mut fx);
                    }
                }
            }
            Input::Exited { process } => {
                if let Some(slot) = self.slots.get_mut(process) {
                    let q = slot.in_flight.take();
                    slot.listener.reset();
                    slot.running = false;
                    slot.writable = false;
                    if let Some(q) = q {
                        self.requeue(process, q, Requeue::Died, &mut fx);
                    }
                }
            }
            Input::WriteFailed { process } => {
                if let Some(slot) = self.slots.get_mut(process) {
                    slot.writable = false;
                    slot.listener.abort();
                    if let Some(q) = slot.in_flight.take() {
                        self.requeue(process, q, Requeue::WriteFailed, &mut fx);
                    }
                }
            }
            Input::Timer => {}
        }
        self.dispatch(now, &mut fx);
        if self.pending.is_empty() {
            self.replay_requested = false;
        } else if let Some(seq) = self.wants_replay_from() {
            if !self.replay_requested {
                self.replay_requested = true;
                fx.push(Effect::ReplayFrom { seq });
            }
        } else {
            // No room: the shell stops any replay pass here (it feeds replays only while
            // `wants_replay_from` is `Some`), so ask again once there is room.
            self.replay_requested = false;
        }
        fx
    }

    pub(crate) fn take(&mut self, ev: PoolEvent, replayed: bool, fx: &mut Vec<Effect>) {
        if !self.subscribes(ev.notification.event_type) {
            return;
        }
        let full = self.buffer.len() >= self.capacity();
        let Some(seq) = ev.seq else {
            if full {
                self.stats.lost += 1;
                fx.push(Effect::Dropped { serial: ev.serial });
            } else {
                self.accept(ev, replayed, fx);
            }
            return;
        };
        if self.last_seq.is_some_and(|l| seq <= l) {
            self.stats.duplicates += 1;
            return;
        }
        let behind = self.pending.first().is_some_and(|&p| seq > p);
        if behind || full {
            if full {
                if self.pending.is_empty() {
                    self.stats.overflows += 1;
                    fx.push(Effect::Overflowed { from_seq: seq });
                }
                // Whatever replay pass is running must stop; ask again when there is room.
                self.replay_requested = false;
            }
            if self.pending.insert(seq) {
                self.stats.deferred += 1;
            }
            fx.push(Effect::Deferred { seq });
            return;
        }
        self.pending.remove(&seq);
        self.last_seq = Some(seq);
        self.accept(ev, replayed, fx);
    }

    pub(crate) fn accept(&mut self, ev: PoolEvent, replayed: bool, fx: &mut Vec<Effect>) {
        let poolserial = self.poolserial.next_serial();
        self.stats.buffered += 1;
        if replayed {
            self.stats.replayed += 1;
        }
        fx.push(Effect::Buffered {
            seq: ev.seq,
            serial: ev.serial,
            poolserial,
            replayed,
        });
        self.buffer.push_back(Queued {
            ev,
            poolserial,
            attempts: 0,
        });
    }

    /// Back to the head of *this* pool, same serial and poolserial; allowed even when the
    /// buffer is full (it may then hold up to `numprocs` more than `buffer_size`).
    pub(crate) fn requeue(
        &mut self,
        process: usize,
        q: Queued,
        cause: Requeue,
        fx: &mut Vec<Effect>,
    ) {
        self.stats.redelivered += 1;
        fx.push(Effect::Requeued {
            process,
            serial: q.ev.serial,
            poolserial: q.poolserial,
            cause,
        });
        self.buffer.push_front(q);
    }

    pub(crate) fn on_listener(
        &mut self,
        process: usize,
        e: ListenerEffect,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) {
        let in_flight =
            |pool: &mut Pool| pool.slots.get_mut(process).and_then(|s| s.in_flight.take());
        match e {
            ListenerEffect::BecameReady => fx.push(Effect::Ready { process }),
            ListenerEffect::Accepted { .. } => {
                if let Some(q) = in_flight(self) {
                    self.stats.accepted += 1;
                    fx.push(Effect::Accepted {
                        process,
                        serial: q.ev.serial,
                        poolserial: q.poolserial,
                        seq: q.ev.seq,
                    });
                }
            }
            ListenerEffect::Rejected { body, .. } => {
                if let Some(q) = in_flight(self) {
                    self.stats.rejected += 1;
                    fx.push(Effect::Rejected {
                        process,
                        serial: q.ev.serial,
                        poolserial: q.poolserial,
                        body,
                        attempts: q.attempts,
                    });
                    self.requeue(process, q, Requeue::Rejected, fx);
                    if self.cfg.retry_delay_ms > 0 {
                        self.hold_until = Some(now.saturating_add(self.cfg.retry_delay_ms));
                        fx.push(Effect::RetryAfter {
                            ms: self.cfg.retry_delay_ms,
                        });
                    }
                }
            }
            ListenerEffect::ProtocolError { error, .. } => {
                self.stats.protocol_errors += 1;
                fx.push(Effect::ProtocolError { process, error });
                if let Some(q) = in_flight(self) {
                    self.requeue(process, q, Requeue::ProtocolError, fx);
                }
            }
        }
    }

    /// supervisord's `dispatch`: the oldest event to the first READY + RUNNING process, one
    /// event in flight per process, until the buffer or the ready processes run out.
    pub(crate) fn dispatch(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        if let Some(h) = self.hold_until {
            if now < h {
                return;
            }
            self.hold_until = None;
        }
        while !self.buffer.is_empty() {
            let Some(i) = self.slots.iter().position(Slot::eligible) else {
                return;
            };
            let Some(mut q) = self.buffer.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get_mut(i) else {
                self.buffer.push_front(q);
                return;
            };
            if slot.listener.sent(q.ev.serial).is_err() {
                self.buffer.push_front(q);
                return;
            }
            q.attempts = q.attempts.saturating_add(1);
            let bytes = envelope(
                &self.cfg.server,
                q.ev.serial,
                &self.cfg.name,
                q.poolserial,
                &q.ev.notification,
            )
            .into_bytes();
            fx.push(Effect::Send {
                process: i,
                serial: q.ev.serial,
                poolserial: q.poolserial,
                bytes,
            });
            slot.in_flight = Some(q);
            self.stats.sent += 1;
        }
    }
}

/// All pools plus the global serial counter: the one place that decides who gets an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pools {
    pub(crate) pools: Vec<Pool>,
    pub(crate) serial: SerialCounter,
}

impl Pools {
    /// `serial` carries the global counter across a reload (pools restart their own).
    pub fn new(pools: Vec<Pool>, serial: SerialCounter) -> Self {
        Pools { pools, serial }
    }

    /// The global serial for a new event of type `t`, or `None` when no pool subscribes
    /// (then none is consumed, as in supervisord).
    pub fn serial_for(&mut self, t: EventType) -> Option<u64> {
        self.pools
            .iter()
            .any(|p| p.subscribes(t))
            .then(|| self.serial.next_serial())
    }

    /// Offer a live event to every subscribing pool (each gets its own copy and
    /// poolserial). Effects are tagged with the pool index.
    pub fn offer(&mut self, ev: &PoolEvent, now: Millis) -> Vec<(usize, Effect)> {
        let t = ev.notification.event_type;
        let mut out = Vec::new();
        for (i, p) in self.pools.iter_mut().enumerate() {
            if p.subscribes(t) {
                out.extend(
                    p.on(Input::Offer(ev.clone()), now)
                        .into_iter()
                        .map(|e| (i, e)),
                );
            }
        }
        out
    }

    /// Feed one pool (listener observations, replays, timers).
    pub fn on(&mut self, pool: usize, input: Input<'_>, now: Millis) -> Vec<Effect> {
        match self.pools.get_mut(pool) {
            Some(p) => p.on(input, now),
            None => Vec::new(),
        }
    }

    pub fn get(&self, pool: usize) -> Option<&Pool> {
        self.pools.get(pool)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name() == name)
    }

    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The global counter, to keep across a reload.
    pub fn serial(&self) -> SerialCounter {
        self.serial
    }

    /// The earliest deadline over all pools.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.pools.iter().filter_map(Pool::next_deadline).min()
    }
}
