//! supervisord's event-listener protocol (`SUPERVISORD.md` §3), as pure data and state
//! machines: the event types and their hierarchy, the exact payload and header bytes, the
//! per-process listener state machine fed with raw stdout bytes, and the per-pool buffer.
//!
//! Nothing here reads a clock, a pipe or the store. The shell
//!
//! 1. builds a [`Notification`] with one of the payload builders ([`process_state`],
//!    [`process_log`], [`tick`] via [`Ticker`], …),
//! 2. asks [`Pools::serial_for`] for the global `serial` (`None`: nobody subscribes, no
//!    serial consumed — supervisord's rule), stores the event with that serial (it gets a
//!    store `seq`), then
//! 3. feeds it to the pools with [`Pools::offer`] and every observation of a listener
//!    process ([`Input::Spawned`], [`Input::ProcessState`], [`Input::Output`],
//!    [`Input::Exited`], [`Input::WriteFailed`]) with [`Pools::on`], and carries out the
//!    returned [`Effect`]s in order: write [`Effect::Send`] bytes to the listener's stdin,
//!    log the rest, and answer [`Effect::ReplayFrom`] by replaying from the store.
//!
//! # Where vigil differs from supervisord 4.3 (all invisible to a correct listener)
//!
//! - **Rejections stay in their pool** (`SUPERVISORD.md` §9 #2 is *not* copied): a FAIL,
//!   a bad reply, or a listener dying or refusing the write mid-event puts that event back
//!   at the head of the *same* pool, same `serial` and `poolserial`. Pools share nothing
//!   but the global serial counter, so no other pool can ever see it.
//! - **A full buffer never drops silently.** supervisord discards the *oldest* buffered
//!   event. A [`Pool`] instead stops taking stored events, reports
//!   [`Effect::Overflowed`] once, remembers every refused `seq`, and asks the shell with
//!   [`Effect::ReplayFrom`] / [`Pool::wants_replay_from`] to feed them again from the
//!   store once there is room; it deduplicates by `seq`, so an event is never buffered
//!   twice, and keeps `seq` order. Only an event the shell did not store (no `seq`) can
//!   be lost, and that is reported ([`Effect::Dropped`]) and counted, as is a refused
//!   event the store no longer has ([`Effect::Missing`]).
//! - **Tight FAIL loop**: redelivery is immediate by default (copied, §9 #8);
//!   [`PoolConfig::retry_delay_ms`] > 0 holds the pool for that long after a FAIL and
//!   says so with [`Effect::RetryAfter`].
//! - The listener parser decides as soon as the bytes allow (a first byte that cannot
//!   start `READY\n` is a protocol error at once; `RESULT 0\n` completes at once),
//!   bounds the result line ([`MAX_RESULT_LINE`]) and never stores a result body beyond
//!   [`MAX_BODY_KEPT`] bytes. supervisord would wait for more bytes and reach the same
//!   state later; the effects are the same for every chunking of the stream.
//! - After a failed write (EPIPE) the event goes back to the head and that process is
//!   skipped until it is spawned again (supervisord retries the dead pipe every loop).
//!
//! # vigil's own event types
//!
//! Offered like supervisord's, with the same header. Subscribing to `VIGIL` gets both,
//! `EVENT` gets them too. The first payload line is `key:value` tokens that
//! `childutils.eventdata(payload + '\n')` parses; values are escaped with [`token`]
//! (`%`, `:`, whitespace and control characters percent-encoded) because childutils
//! splits on whitespace and every `:`. Free text follows the first `\n`, verbatim.
//!
//! - `VIGIL_TRADING_STATE` (a trading-state transition, [`vigil_trading_state`]):
//!   `from:ACTIVE to:HALTED source_kind:rule source:dd actor:vigil at_ms:1795429215123\n<reason>`.
//!   The source is two tokens (`source_kind`, `source`): vigil's usual rendering
//!   `rule:dd` holds a second `:`, which makes childutils' `dict(x.split(':') …)` fail.
//! - `VIGIL_CHECK` (a rule or check changed status, [`vigil_check`]):
//!   `source_kind:rule source:dd kind:drawdown status:critical previous:ok action:halt value:12.5 threshold:10 subject:BTC/USD\n<message>`;
//!   `value`, `threshold` and `subject` are left out when unknown.

mod payload;
mod pool;
mod protocol;
mod types;
pub use payload::*;
pub use pool::*;
pub use protocol::*;
pub use types::*;

use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::Serialize;

use crate::program::{ProcessState, Transition as ProcessTransition};
use crate::rules::{Action, StatusChange};
use crate::trading::{Source, Transition as TradingTransition};

/// Monotonic milliseconds, supplied by the caller.
pub type Millis = u64;

// ------------------------------------------------------------------------------------------
// Event types

#[cfg(test)]
mod tests;
