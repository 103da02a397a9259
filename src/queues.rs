//! The bounded queues between vigil's actors, by name, and what each refused or made wait
//! (`vigil_queue_refused_total`, `vigil_queue_waits_total` in `/metrics`; RELIABILITY.md lists
//! every queue, its bound and what happens when it is full).
//!
//! Two kinds of bound:
//! - a bounded `mpsc` channel;
//! - a [`Gate`] in front of a channel that also carries control messages which must never be
//!   refused (and are bounded by construction, as argued where the channel is made): each
//!   message that can flood takes one unit of room first and gives it back when its consumer
//!   takes it off the queue.
//!
//! When a queue is full, a sender at an ingest edge (a child's pipe, a followed file, a job's
//! output) waits, so the pipe is not read; an internal notification that cannot wait (it is
//! sent from an actor, which must never block on another actor) is refused and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every bounded queue that can refuse or make a sender wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// The event writer's queue of events not tied to an ingest acknowledgement.
    EventWriter,
    /// Validated inbound events, to the monitor.
    MonitorIngest,
    /// Lines of programs with `events = "stdout"`, to the ingest path.
    StdoutEvents,
    /// Event listeners' stdout, to the listener protocol.
    ListenerOutput,
    /// Writes to a process's stdin (`supervisor.sendProcessStdin`), per process.
    ProcessStdin,
    /// Jobs' notes (exits, `VIGIL_PROGRESS` lines), to the jobs actor.
    JobNotes,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::EventWriter,
        Queue::MonitorIngest,
        Queue::StdoutEvents,
        Queue::ListenerOutput,
        Queue::ProcessStdin,
        Queue::JobNotes,
    ];

    /// The `queue` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Queue::EventWriter => "event_writer",
            Queue::MonitorIngest => "monitor_ingest",
            Queue::StdoutEvents => "stdout_events",
            Queue::ListenerOutput => "listener_output",
            Queue::ProcessStdin => "process_stdin",
            Queue::JobNotes => "job_notes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const N: usize = Queue::ALL.len();
static REFUSED: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
static WAITS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

/// `n` messages refused because `q` was full.
pub fn refused(q: Queue, n: u64) {
    REFUSED[q.index()].fetch_add(n, Ordering::Relaxed);
}

/// A sender waited for room in `q`.
pub fn waited(q: Queue) {
    WAITS[q.index()].fetch_add(1, Ordering::Relaxed);
}

/// Per queue: (name, refused, waits).
pub fn counts() -> Vec<(&'static str, u64, u64)> {
    Queue::ALL
        .iter()
        .map(|q| {
            (
                q.name(),
                REFUSED[q.index()].load(Ordering::Relaxed),
                WAITS[q.index()].load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Send on a bounded channel from an ingest edge: at once when there is room, else wait
/// (counted). `Err` when the receiver is gone.
pub async fn send_waiting<T>(q: Queue, tx: &tokio::sync::mpsc::Sender<T>, msg: T) -> Result<(), T> {
    use tokio::sync::mpsc::error::TrySendError;
    match tx.try_send(msg) {
        Ok(()) => Ok(()),
        Err(TrySendError::Closed(m)) => Err(m),
        Err(TrySendError::Full(m)) => {
            waited(q);
            tx.send(m).await.map_err(|e| e.0)
        }
    }
}

/// Room for `capacity` messages of one kind in a queue (see the module doc).
#[derive(Clone, Debug)]
pub struct Gate {
    queue: Queue,
    room: Arc<Semaphore>,
}

/// One message's room in a [`Gate`]; dropping it gives the room back.
pub type Room = OwnedSemaphorePermit;

impl Gate {
    pub fn new(queue: Queue, capacity: usize) -> Gate {
        Gate {
            queue,
            room: Arc::new(Semaphore::new(capacity)),
        }
    }

    /// Room now, or `None` (counted as refused).
    pub fn try_room(&self) -> Option<Room> {
        let r = self.room.clone().try_acquire_owned().ok();
        if r.is_none() {
            refused(self.queue, 1);
        }
        r
    }

    /// Room, waiting (counted) while the queue is full. `None` only if the gate was closed,
    /// which it never is.
    pub async fn room(&self) -> Option<Room> {
        if let Ok(r) = self.room.clone().try_acquire_owned() {
            return Some(r);
        }
        waited(self.queue);
        self.room.clone().acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_refuses_and_counts_then_has_room_again() {
        let g = Gate::new(Queue::ListenerOutput, 2);
        let before = counts()[Queue::ListenerOutput.index()];
        let a = g.try_room().expect("room");
        let _b = g.room().await.expect("room");
        assert!(g.try_room().is_none());
        drop(a);
        assert!(g.try_room().is_some());
        let after = counts()[Queue::ListenerOutput.index()];
        assert_eq!(after.1, before.1 + 1, "one refusal counted");
    }

    #[tokio::test]
    async fn a_full_channel_makes_the_sender_wait_and_counts_it() {
        use futures::FutureExt;
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let before = counts()[Queue::JobNotes.index()].2;
        send_waiting(Queue::JobNotes, &tx, 1).await.unwrap();
        // Full: the first poll counts the wait and does not complete.
        assert!(
            send_waiting(Queue::JobNotes, &tx, 2)
                .now_or_never()
                .is_none()
        );
        assert!(counts()[Queue::JobNotes.index()].2 > before);
        assert_eq!(rx.recv().await, Some(1));
        send_waiting(Queue::JobNotes, &tx, 3).await.unwrap();
        assert_eq!(rx.recv().await, Some(3), "the abandoned send left nothing");
    }
}

/// A warning about a lagging subscriber, at most once per [`Lagging::EVERY`], with what was
/// missed since the last one (a flood lags a subscriber thousands of times a second; each
/// lag is handled, but one line per lag would flood the log too).
#[derive(Debug, Default)]
pub struct Lagging {
    missed: u64,
    last: Option<std::time::Instant>,
}

impl Lagging {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// `n` more missed at `now`: the total to report now, if a line is due.
    pub fn note(&mut self, n: u64, now: std::time::Instant) -> Option<u64> {
        self.missed += n;
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Self::EVERY);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.missed))
    }
}

#[cfg(test)]
mod lagging_tests {
    use super::Lagging;
    use std::time::{Duration, Instant};

    #[test]
    fn one_line_per_interval_with_the_total() {
        let t0 = Instant::now();
        let mut l = Lagging::default();
        assert_eq!(l.note(5, t0), Some(5));
        assert_eq!(l.note(3, t0 + Duration::from_secs(1)), None);
        assert_eq!(l.note(4, t0 + Duration::from_secs(9)), None);
        assert_eq!(l.note(1, t0 + Lagging::EVERY), Some(8));
    }
}
