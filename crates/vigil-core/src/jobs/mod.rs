//! Background jobs: the pure half of the resource-aware priority queue (seed 004).
//!
//! - [`admission`]: the seed's resource check (buffer, consumption factor, dev mode) with its
//!   explanation texts, plus the reservation ledger that keeps a burst from over-admitting.
//! - [`queue`]: priority, FIFO within a priority, aging, no head-of-line blocking until a job
//!   has waited `max_wait_s`.
//! - [`pause`]: when running jobs must be frozen so the bots keep their CPU.
//! - [`outcome`]: states and how an exit is told apart (`oom_killed`, `timed_out`, …).
//!
//! Time is a parameter (Unix milliseconds); resource readings are injected.

pub mod admission;
pub mod outcome;
pub mod pause;
pub mod queue;

pub use admission::{Decision, HostReading, Ledger, Policy, Resources};
pub use outcome::{JobState, Outcome};
pub use pause::Pauser;
pub use queue::{Queue, Queued};
