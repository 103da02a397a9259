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

/// Every concrete event type a listener can receive (the header's `eventname`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ProcessStateStopped,
    ProcessStateStarting,
    ProcessStateRunning,
    ProcessStateBackoff,
    ProcessStateStopping,
    ProcessStateExited,
    ProcessStateFatal,
    ProcessStateUnknown,
    ProcessLogStdout,
    ProcessLogStderr,
    ProcessCommunicationStdout,
    ProcessCommunicationStderr,
    RemoteCommunication,
    SupervisorStateChangeRunning,
    SupervisorStateChangeStopping,
    Tick5,
    Tick60,
    Tick3600,
    ProcessGroupAdded,
    ProcessGroupRemoved,
    /// vigil: a trading-state transition (see the module docs for the payload).
    VigilTradingState,
    /// vigil: a rule or check changed status (see the module docs for the payload).
    VigilCheck,
}

/// The abstract types one can subscribe to; never emitted themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbstractType {
    /// Everything.
    Event,
    ProcessState,
    ProcessCommunication,
    ProcessLog,
    SupervisorStateChange,
    Tick,
    ProcessGroup,
    /// vigil's own event types.
    Vigil,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::ProcessStateStopped,
        EventType::ProcessStateStarting,
        EventType::ProcessStateRunning,
        EventType::ProcessStateBackoff,
        EventType::ProcessStateStopping,
        EventType::ProcessStateExited,
        EventType::ProcessStateFatal,
        EventType::ProcessStateUnknown,
        EventType::ProcessLogStdout,
        EventType::ProcessLogStderr,
        EventType::ProcessCommunicationStdout,
        EventType::ProcessCommunicationStderr,
        EventType::RemoteCommunication,
        EventType::SupervisorStateChangeRunning,
        EventType::SupervisorStateChangeStopping,
        EventType::Tick5,
        EventType::Tick60,
        EventType::Tick3600,
        EventType::ProcessGroupAdded,
        EventType::ProcessGroupRemoved,
        EventType::VigilTradingState,
        EventType::VigilCheck,
    ];

    /// The name in the header and in `events=`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::ProcessStateStopped => "PROCESS_STATE_STOPPED",
            EventType::ProcessStateStarting => "PROCESS_STATE_STARTING",
            EventType::ProcessStateRunning => "PROCESS_STATE_RUNNING",
            EventType::ProcessStateBackoff => "PROCESS_STATE_BACKOFF",
            EventType::ProcessStateStopping => "PROCESS_STATE_STOPPING",
            EventType::ProcessStateExited => "PROCESS_STATE_EXITED",
            EventType::ProcessStateFatal => "PROCESS_STATE_FATAL",
            EventType::ProcessStateUnknown => "PROCESS_STATE_UNKNOWN",
            EventType::ProcessLogStdout => "PROCESS_LOG_STDOUT",
            EventType::ProcessLogStderr => "PROCESS_LOG_STDERR",
            EventType::ProcessCommunicationStdout => "PROCESS_COMMUNICATION_STDOUT",
            EventType::ProcessCommunicationStderr => "PROCESS_COMMUNICATION_STDERR",
            EventType::RemoteCommunication => "REMOTE_COMMUNICATION",
            EventType::SupervisorStateChangeRunning => "SUPERVISOR_STATE_CHANGE_RUNNING",
            EventType::SupervisorStateChangeStopping => "SUPERVISOR_STATE_CHANGE_STOPPING",
            EventType::Tick5 => "TICK_5",
            EventType::Tick60 => "TICK_60",
            EventType::Tick3600 => "TICK_3600",
            EventType::ProcessGroupAdded => "PROCESS_GROUP_ADDED",
            EventType::ProcessGroupRemoved => "PROCESS_GROUP_REMOVED",
            EventType::VigilTradingState => "VIGIL_TRADING_STATE",
            EventType::VigilCheck => "VIGIL_CHECK",
        }
    }

    /// A concrete type by name; case-insensitive, surrounding whitespace ignored. Abstract
    /// names give `None`: use [`Subscription::parse`] for `events=`.
    pub fn parse(name: &str) -> Option<EventType> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The direct abstract parent (`EVENT` for `REMOTE_COMMUNICATION`).
    pub fn parent(self) -> AbstractType {
        use EventType::*;
        match self {
            ProcessStateStopped | ProcessStateStarting | ProcessStateRunning
            | ProcessStateBackoff | ProcessStateStopping | ProcessStateExited
            | ProcessStateFatal | ProcessStateUnknown => AbstractType::ProcessState,
            ProcessLogStdout | ProcessLogStderr => AbstractType::ProcessLog,
            ProcessCommunicationStdout | ProcessCommunicationStderr => {
                AbstractType::ProcessCommunication
            }
            RemoteCommunication => AbstractType::Event,
            SupervisorStateChangeRunning | SupervisorStateChangeStopping => {
                AbstractType::SupervisorStateChange
            }
            Tick5 | Tick60 | Tick3600 => AbstractType::Tick,
            ProcessGroupAdded | ProcessGroupRemoved => AbstractType::ProcessGroup,
            VigilTradingState | VigilCheck => AbstractType::Vigil,
        }
    }

    /// supervisord's `isinstance` subscription test: `EVENT` gets everything, every other
    /// abstract type gets its own concrete types.
    pub fn is_subtype_of(self, of: AbstractType) -> bool {
        of == AbstractType::Event || self.parent() == of
    }

    /// vigil's own types (not in supervisord).
    pub fn is_vigil(self) -> bool {
        self.parent() == AbstractType::Vigil
    }

    /// `PROCESS_STATE_<to>`.
    pub fn process_state(to: ProcessState) -> EventType {
        match to {
            ProcessState::Stopped => EventType::ProcessStateStopped,
            ProcessState::Starting => EventType::ProcessStateStarting,
            ProcessState::Running => EventType::ProcessStateRunning,
            ProcessState::Backoff => EventType::ProcessStateBackoff,
            ProcessState::Stopping => EventType::ProcessStateStopping,
            ProcessState::Exited => EventType::ProcessStateExited,
            ProcessState::Fatal => EventType::ProcessStateFatal,
            ProcessState::Unknown => EventType::ProcessStateUnknown,
        }
    }

    pub fn process_log(channel: Channel) -> EventType {
        match channel {
            Channel::Stdout => EventType::ProcessLogStdout,
            Channel::Stderr => EventType::ProcessLogStderr,
        }
    }

    pub fn process_communication(channel: Channel) -> EventType {
        match channel {
            Channel::Stdout => EventType::ProcessCommunicationStdout,
            Channel::Stderr => EventType::ProcessCommunicationStderr,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AbstractType {
    pub const ALL: [AbstractType; 8] = [
        AbstractType::Event,
        AbstractType::ProcessState,
        AbstractType::ProcessCommunication,
        AbstractType::ProcessLog,
        AbstractType::SupervisorStateChange,
        AbstractType::Tick,
        AbstractType::ProcessGroup,
        AbstractType::Vigil,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AbstractType::Event => "EVENT",
            AbstractType::ProcessState => "PROCESS_STATE",
            AbstractType::ProcessCommunication => "PROCESS_COMMUNICATION",
            AbstractType::ProcessLog => "PROCESS_LOG",
            AbstractType::SupervisorStateChange => "SUPERVISOR_STATE_CHANGE",
            AbstractType::Tick => "TICK",
            AbstractType::ProcessGroup => "PROCESS_GROUP",
            AbstractType::Vigil => "VIGIL",
        }
    }

    /// Case-insensitive, surrounding whitespace ignored.
    pub fn parse(name: &str) -> Option<AbstractType> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AbstractType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One name of an `events=` list: abstract or concrete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    Abstract(AbstractType),
    Concrete(EventType),
}

/// An `events=` name that is not an event type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownEventType {
    #[error("empty event type name")]
    Empty,
    #[error(
        "event type EVENT_BUFFER_OVERFLOW no longer exists (removed in supervisor 3.0a3); vigil never drops events on overflow"
    )]
    BufferOverflowRemoved,
    #[error("unknown event type {0}")]
    Unknown(String),
}

impl Subscription {
    /// Case-insensitive, surrounding whitespace ignored (supervisord itself is
    /// case-sensitive; every name it accepts is accepted here).
    pub fn parse(name: &str) -> Result<Subscription, UnknownEventType> {
        let n = name.trim();
        if n.is_empty() {
            return Err(UnknownEventType::Empty);
        }
        if let Some(t) = EventType::parse(n) {
            return Ok(Subscription::Concrete(t));
        }
        if let Some(a) = AbstractType::parse(n) {
            return Ok(Subscription::Abstract(a));
        }
        if n.eq_ignore_ascii_case("EVENT_BUFFER_OVERFLOW") {
            return Err(UnknownEventType::BufferOverflowRemoved);
        }
        Err(UnknownEventType::Unknown(n.to_owned()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Subscription::Abstract(a) => a.name(),
            Subscription::Concrete(t) => t.name(),
        }
    }

    pub fn matches(self, t: EventType) -> bool {
        match self {
            Subscription::Abstract(a) => t.is_subtype_of(a),
            Subscription::Concrete(c) => c == t,
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pool's `events=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    pub fn new(subs: Vec<Subscription>) -> Self {
        Subscriptions(subs)
    }

    /// supervisord's comma-separated list (`PROCESS_STATE, TICK_60`); an empty element
    /// (`a,,b`, a trailing comma) is an error, as in supervisord.
    pub fn parse(list: &str) -> Result<Subscriptions, UnknownEventType> {
        list.split(',')
            .map(Subscription::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Subscriptions)
    }

    pub fn matches(&self, t: EventType) -> bool {
        self.0.iter().any(|s| s.matches(t))
    }

    pub fn as_slice(&self) -> &[Subscription] {
        &self.0
    }
}

// ------------------------------------------------------------------------------------------
// Payloads

/// A process output channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Stdout,
    Stderr,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Stdout => "stdout",
            Channel::Stderr => "stderr",
        }
    }
}

/// An event ready to be offered: its concrete type and its payload text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub event_type: EventType,
    /// Shared between the pools it is offered to.
    pub payload: Arc<str>,
}

impl Notification {
    pub fn new(event_type: EventType, payload: impl Into<Arc<str>>) -> Self {
        Notification {
            event_type,
            payload: payload.into(),
        }
    }

    /// The header's `len`: Unicode code points, as Python's `len(str)`.
    pub fn payload_len(&self) -> usize {
        code_points(&self.payload)
    }
}

/// Python's `len()` of a `str`: the number of Unicode code points (not bytes).
pub fn code_points(s: &str) -> usize {
    s.chars().count()
}

/// `PROCESS_STATE_<t.to>` with supervisord's token order and extra tokens:
/// STARTING / BACKOFF `tries:N`; RUNNING / STOPPING / STOPPED `pid:N`; EXITED
/// `expected:1|0 pid:N`; FATAL / UNKNOWN nothing more. `t.expected` missing counts as
/// expected (supervisord's default).
pub fn process_state(processname: &str, groupname: &str, t: &ProcessTransition) -> Notification {
    let mut s = format!(
        "processname:{processname} groupname:{groupname} from_state:{}",
        t.from.name()
    );
    match t.to {
        ProcessState::Starting | ProcessState::Backoff => {
            let _ = write!(s, " tries:{}", t.tries);
        }
        ProcessState::Running | ProcessState::Stopping | ProcessState::Stopped => {
            let _ = write!(s, " pid:{}", t.pid);
        }
        ProcessState::Exited => {
            let expected = u8::from(t.expected.unwrap_or(true));
            let _ = write!(s, " expected:{expected} pid:{}", t.pid);
        }
        ProcessState::Fatal | ProcessState::Unknown => {}
    }
    Notification::new(EventType::process_state(t.to), s)
}

/// `PROCESS_LOG_<CHANNEL>`: `processname:P groupname:G pid:N channel:stdout\n<data>`, one
/// per chunk read. Data that is not UTF-8 becomes `Undecodable: b'…'` ([`decode_output`]).
pub fn process_log(
    channel: Channel,
    processname: &str,
    groupname: &str,
    pid: u32,
    data: &[u8],
) -> Notification {
    Notification::new(
        EventType::process_log(channel),
        format!(
            "processname:{processname} groupname:{groupname} pid:{pid} channel:{}\n{}",
            channel.name(),
            decode_output(data)
        ),
    )
}

/// `PROCESS_COMMUNICATION_<CHANNEL>`: `processname:P groupname:G pid:N\n<data>` (no
/// `channel:` token), data between the capture tags, tags removed.
pub fn process_communication(
    channel: Channel,
    processname: &str,
    groupname: &str,
    pid: u32,
    data: &[u8],
) -> Notification {
    Notification::new(
        EventType::process_communication(channel),
        format!(
            "processname:{processname} groupname:{groupname} pid:{pid}\n{}",
            decode_output(data)
        ),
    )
}

/// `REMOTE_COMMUNICATION`: `type:<type>\n<data>` (`supervisor.sendRemoteCommEvent`).
pub fn remote_communication(kind: &str, data: &str) -> Notification {
    Notification::new(
        EventType::RemoteCommunication,
        format!("type:{kind}\n{data}"),
    )
}

/// `SUPERVISOR_STATE_CHANGE_RUNNING` / `_STOPPING`: empty payload (`len:0`).
pub fn supervisor_state_change(running: bool) -> Notification {
    let t = if running {
        EventType::SupervisorStateChangeRunning
    } else {
        EventType::SupervisorStateChangeStopping
    };
    Notification::new(t, "")
}

/// `PROCESS_GROUP_ADDED` / `_REMOVED`: `groupname:<g>\n` — with the trailing newline.
pub fn process_group(added: bool, groupname: &str) -> Notification {
    let t = if added {
        EventType::ProcessGroupAdded
    } else {
        EventType::ProcessGroupRemoved
    };
    Notification::new(t, format!("groupname:{groupname}\n"))
}

/// The three TICK periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tick {
    Tick5,
    Tick60,
    Tick3600,
}

impl Tick {
    /// In supervisord's emission order.
    pub const ALL: [Tick; 3] = [Tick::Tick5, Tick::Tick60, Tick::Tick3600];

    pub fn period_secs(self) -> u64 {
        match self {
            Tick::Tick5 => 5,
            Tick::Tick60 => 60,
            Tick::Tick3600 => 3600,
        }
    }

    pub fn event_type(self) -> EventType {
        match self {
            Tick::Tick5 => EventType::Tick5,
            Tick::Tick60 => EventType::Tick60,
            Tick::Tick3600 => EventType::Tick3600,
        }
    }

    /// supervisord's `timeslice(period, now)`: the start of the slice holding `now_secs`.
    pub fn slice(self, now_secs: u64) -> u64 {
        now_secs - now_secs % self.period_secs()
    }
}

/// `TICK_<period>`: `when:<epoch seconds>`, the start of the new slice.
pub fn tick(period: Tick, when: u64) -> Notification {
    Notification::new(period.event_type(), format!("when:{when}"))
}

/// supervisord's `tick()`: a TICK when the wall-clock slice of its period changes, none
/// at startup. Feed it wall-clock epoch seconds as often as you like (at least every 5 s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ticker {
    last: [Option<u64>; 3],
}

impl Ticker {
    pub fn new() -> Self {
        Ticker::default()
    }

    /// The TICK events due at `now_secs`, in TICK_5, TICK_60, TICK_3600 order.
    pub fn on_time(&mut self, now_secs: u64) -> Vec<Notification> {
        let mut out = Vec::new();
        for (last, period) in self.last.iter_mut().zip(Tick::ALL) {
            let this = period.slice(now_secs);
            match *last {
                None => *last = Some(this),
                Some(l) if l != this => {
                    *last = Some(this);
                    out.push(tick(period, this));
                }
                Some(_) => {}
            }
        }
        out
    }
}

/// supervisord's `as_string(data)` with its fallback: the text if it is UTF-8, else
/// `Undecodable: ` + Python's `repr()` of the bytes. Decided per chunk, like supervisord
/// (a multi-byte character split across two reads makes both chunks undecodable).
pub fn decode_output(data: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(data) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(format!("Undecodable: {}", python_bytes_repr(data))),
    }
}

/// Python 3's `repr(bytes)`: `b'…'`, or `b"…"` when the data holds `'` but no `"`;
/// `\\`, the quote, `\t`, `\n`, `\r` escaped, other bytes outside 0x20..=0x7e as `\xhh`.
pub fn python_bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut s = String::with_capacity(data.len() + 3);
    s.push('b');
    s.push(char::from(quote));
    for &c in data {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            c if c == quote => {
                s.push('\\');
                s.push(char::from(c));
            }
            0x20..=0x7e => s.push(char::from(c)),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(char::from(quote));
    s
}

/// A value made safe for a `key:value` token of vigil's payloads: `%`, `:`, whitespace and
/// control characters are percent-encoded (UTF-8 bytes, `%3A`), so Python's `split()` and
/// `split(':')` see exactly one token with one colon. Plain ids come out unchanged.
pub fn token(value: &str) -> Cow<'_, str> {
    let bad = |c: char| c == '%' || c == ':' || c.is_whitespace() || c.is_control();
    if !value.chars().any(bad) {
        return Cow::Borrowed(value);
    }
    let mut s = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if bad(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(s, "%{b:02X}");
            }
        } else {
            s.push(c);
        }
    }
    Cow::Owned(s)
}

/// Whether `s` can appear as a header value (`server`, `pool`) or a name in supervisord's
/// payloads: non-empty, no whitespace, no `:` (childutils splits on both).
pub fn is_valid_token(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
}

/// `VIGIL_TRADING_STATE`:
/// `from:<STATE> to:<STATE> source_kind:<kind> source:<id> actor:<actor> at_ms:<unix ms>\n<reason>`.
pub fn vigil_trading_state(t: &TradingTransition) -> Notification {
    Notification::new(
        EventType::VigilTradingState,
        format!(
            "from:{} to:{} source_kind:{} source:{} actor:{} at_ms:{}\n{}",
            t.from.name(),
            t.to.name(),
            source_kind(&t.source),
            token(t.source.id()),
            token(&t.actor),
            t.at_ms,
            t.reason
        ),
    )
}

/// `VIGIL_CHECK`: `source_kind:<kind> source:<id> kind:<rule kind> status:<s>
/// previous:<s> action:<warn|reduce|halt>[ value:<v>][ threshold:<v>][ subject:<s>]\n<message>`
/// (one line before the `\n`). `kind` is the configured rule kind (`drawdown`, …).
pub fn vigil_check(c: &StatusChange, kind: &str) -> Notification {
    let s = &c.current;
    let mut p = format!(
        "source_kind:{} source:{} kind:{} status:{} previous:{} action:{}",
        source_kind(&c.source),
        token(c.source.id()),
        token(kind),
        s.status.as_str(),
        c.previous.as_str(),
        action_name(c.action)
    );
    if let Some(v) = s.value {
        let _ = write!(p, " value:{}", token(&v.to_string()));
    }
    if let Some(v) = s.threshold {
        let _ = write!(p, " threshold:{}", token(&v.to_string()));
    }
    if let Some(v) = &s.subject {
        let _ = write!(p, " subject:{}", token(v));
    }
    p.push('\n');
    p.push_str(&s.message);
    Notification::new(EventType::VigilCheck, p)
}

fn source_kind(s: &Source) -> &'static str {
    s.kind()
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Warn => "warn",
        Action::Reduce => "reduce",
        Action::Halt => "halt",
    }
}

// ------------------------------------------------------------------------------------------
// Header

/// The header line: `ver:3.0 server:<id> serial:<n> pool:<p> poolserial:<m> eventname:<E> len:<L>\n`.
pub fn header(
    server: &str,
    serial: u64,
    pool: &str,
    poolserial: u64,
    event_type: EventType,
    len: usize,
) -> String {
    format!(
        "ver:3.0 server:{server} serial:{serial} pool:{pool} poolserial:{poolserial} eventname:{} len:{len}\n",
        event_type.name()
    )
}

/// Header + payload, exactly what is written to the listener's stdin (UTF-8; `len` counts
/// code points, so it is smaller than the byte count for non-ASCII payloads).
pub fn envelope(
    server: &str,
    serial: u64,
    pool: &str,
    poolserial: u64,
    n: &Notification,
) -> String {
    let mut s = header(
        server,
        serial,
        pool,
        poolserial,
        n.event_type,
        n.payload_len(),
    );
    s.push_str(&n.payload);
    s
}

/// supervisord's `new_serial`: 0, 1, 2, …, wrapping from Python's `sys.maxsize` to 0.
/// The global counter survives a reload (keep it); pool counters restart with the pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SerialCounter {
    last: Option<u64>,
}

impl SerialCounter {
    /// `sys.maxsize` on a 64-bit Python.
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new() -> Self {
        SerialCounter::default()
    }

    /// Continue after `last` (e.g. the highest serial in the store after a restart).
    pub fn after(last: u64) -> Self {
        SerialCounter { last: Some(last) }
    }

    pub fn next_serial(&mut self) -> u64 {
        let n = match self.last {
            None => 0,
            Some(l) if l >= Self::MAX => 0,
            Some(l) => l + 1,
        };
        self.last = Some(n);
        n
    }

    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

// ------------------------------------------------------------------------------------------
// Listener state machine (one per listener process)

/// supervisord's `EventListenerStates`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListenerState {
    /// Waiting for `READY\n` (initial after every spawn, and after each result).
    Acknowledged,
    /// May be sent one event.
    Ready,
    /// An event was sent; waiting for `RESULT n\n` + n bytes.
    Busy,
    /// Protocol violated: gets nothing until it is spawned again (stays RUNNING).
    Unknown,
}

impl ListenerState {
    pub fn name(self) -> &'static str {
        match self {
            ListenerState::Acknowledged => "ACKNOWLEDGED",
            ListenerState::Ready => "READY",
            ListenerState::Busy => "BUSY",
            ListenerState::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for ListenerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const READY_TOKEN: &[u8] = b"READY\n";
/// supervisord skips this many bytes of the result line without looking (`RESULT `).
const RESULT_TOKEN_START_LEN: usize = 7;
/// Longest result line accepted (without its `\n`); `RESULT 2` is 8 bytes. supervisord has
/// no bound; a listener that never sends `\n` would grow its buffer forever.
pub const MAX_RESULT_LINE: usize = 1024;
/// How much of a result body is kept for logs; only `OK` matters, the rest is counted.
pub const MAX_BODY_KEPT: usize = 64;

/// How a listener violated the protocol; the listener is then UNKNOWN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// ACKNOWLEDGED, and the bytes so far cannot start `READY\n` (up to the first wrong one).
    NotReady { got: Vec<u8> },
    /// READY, and it wrote before being sent an event (the first such byte).
    Spurious { byte: u8 },
    /// BUSY, and the result line (minus its first 7 bytes) is not a non-negative integer.
    BadResultLine { line: Vec<u8> },
    /// BUSY, and more than [`MAX_RESULT_LINE`] bytes came without a `\n`.
    ResultLineTooLong,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NotReady { got } => {
                write!(f, "expected READY, got {}", python_bytes_repr(got))
            }
            ProtocolError::Spurious { byte } => write!(
                f,
                "spurious output while READY: {}",
                python_bytes_repr(&[*byte])
            ),
            ProtocolError::BadResultLine { line } => {
                write!(f, "bad result line: '{}'", decode_output(line))
            }
            ProtocolError::ResultLineTooLong => {
                write!(f, "result line longer than {MAX_RESULT_LINE} bytes")
            }
        }
    }
}

/// What one read of a listener's stdout caused, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerEffect {
    /// ACKNOWLEDGED → READY.
    BecameReady,
    /// `RESULT 2\nOK`: BUSY → ACKNOWLEDGED, event done.
    Accepted { serial: u64 },
    /// Any other body (`FAIL`, …): BUSY → ACKNOWLEDGED, event to be redelivered.
    /// `body` is at most [`MAX_BODY_KEPT`] bytes of it.
    Rejected { serial: u64, body: Vec<u8> },
    /// → UNKNOWN; `in_flight` is the event to be redelivered, if one was sent.
    ProtocolError {
        error: ProtocolError,
        in_flight: Option<u64>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ResultBody {
    len: usize,
    seen: usize,
    head: Vec<u8>,
}

/// The protocol state of one listener process, fed with its raw stdout bytes in whatever
/// chunks they are read: the effects do not depend on where the reads split the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    state: ListenerState,
    /// ACKNOWLEDGED: the part of `READY\n` seen; BUSY: the result line so far.
    line: Vec<u8>,
    /// BUSY, after the result line.
    body: Option<ResultBody>,
    /// The serial of the event sent, while BUSY.
    in_flight: Option<u64>,
}

impl Default for Listener {
    fn default() -> Self {
        Self::new()
    }
}

impl Listener {
    /// A freshly spawned listener: ACKNOWLEDGED.
    pub fn new() -> Self {
        Listener {
            state: ListenerState::Acknowledged,
            line: Vec::new(),
            body: None,
            in_flight: None,
        }
    }

    pub fn state(&self) -> ListenerState {
        self.state
    }

    pub fn in_flight(&self) -> Option<u64> {
        self.in_flight
    }

    /// A new incarnation (spawn): ACKNOWLEDGED; returns the event that was in flight.
    pub fn reset(&mut self) -> Option<u64> {
        let f = self.in_flight.take();
        *self = Listener::new();
        f
    }

    /// The event was written: READY → BUSY. Refused (state returned) unless READY.
    pub fn sent(&mut self, serial: u64) -> Result<(), ListenerState> {
        if self.state != ListenerState::Ready {
            return Err(self.state);
        }
        self.state = ListenerState::Busy;
        self.line.clear();
        self.body = None;
        self.in_flight = Some(serial);
        Ok(())
    }

    /// The write failed (EPIPE): BUSY → READY as if never sent; returns the event.
    pub fn abort(&mut self) -> Option<u64> {
        if self.state == ListenerState::Busy {
            self.state = ListenerState::Ready;
            self.line.clear();
            self.body = None;
        }
        self.in_flight.take()
    }

    /// Feed the bytes of one read.
    pub fn feed(&mut self, mut input: &[u8]) -> Vec<ListenerEffect> {
        let mut fx = Vec::new();
        loop {
            match self.state {
                ListenerState::Unknown => return fx,
                ListenerState::Acknowledged => {
                    let Some((&b, rest)) = input.split_first() else {
                        return fx;
                    };
                    input = rest;
                    self.line.push(b);
                    let n = self.line.len();
                    if READY_TOKEN.get(n - 1) != Some(&b) {
                        let got = std::mem::take(&mut self.line);
                        self.fail(ProtocolError::NotReady { got }, &mut fx);
                    } else if n == READY_TOKEN.len() {
                        self.line.clear();
                        self.state = ListenerState::Ready;
                        fx.push(ListenerEffect::BecameReady);
                    }
                }
                ListenerState::Ready => {
                    let Some(&byte) = input.first() else {
                        return fx;
                    };
                    self.fail(ProtocolError::Spurious { byte }, &mut fx);
                }
                ListenerState::Busy => match self.body.as_mut() {
                    None => {
                        if input.is_empty() {
                            return fx;
                        }
                        match input.iter().position(|&c| c == b'\n') {
                            None => {
                                if self.line.len() + input.len() > MAX_RESULT_LINE {
                                    self.fail(ProtocolError::ResultLineTooLong, &mut fx);
                                } else {
                                    self.line.extend_from_slice(input);
                                    return fx;
                                }
                            }
                            Some(pos) => {
                                if self.line.len() + pos > MAX_RESULT_LINE {
                                    self.fail(ProtocolError::ResultLineTooLong, &mut fx);
                                    continue;
                                }
                                self.line.extend_from_slice(&input[..pos]);
                                input = &input[pos + 1..];
                                let line = std::mem::take(&mut self.line);
                                let digits = line.get(RESULT_TOKEN_START_LEN..).unwrap_or(&[]);
                                match parse_python_int(digits) {
                                    Some(len) => {
                                        self.body = Some(ResultBody {
                                            len,
                                            seen: 0,
                                            head: Vec::new(),
                                        });
                                        self.finish_if_complete(&mut fx);
                                    }
                                    None => {
                                        self.fail(ProtocolError::BadResultLine { line }, &mut fx)
                                    }
                                }
                            }
                        }
                    }
                    Some(body) => {
                        if input.is_empty() {
                            return fx;
                        }
                        let take = (body.len - body.seen).min(input.len());
                        let keep = MAX_BODY_KEPT.saturating_sub(body.head.len()).min(take);
                        body.head.extend_from_slice(&input[..keep]);
                        body.seen += take;
                        input = &input[take..];
                        self.finish_if_complete(&mut fx);
                    }
                },
            }
        }
    }

    fn finish_if_complete(&mut self, fx: &mut Vec<ListenerEffect>) {
        let Some(body) = &self.body else { return };
        if body.seen < body.len {
            return;
        }
        let ok = body.len == 2 && body.head == b"OK";
        let head = body.head.clone();
        self.body = None;
        self.state = ListenerState::Acknowledged;
        let serial = self.in_flight.take().unwrap_or_default();
        fx.push(if ok {
            ListenerEffect::Accepted { serial }
        } else {
            ListenerEffect::Rejected { serial, body: head }
        });
    }

    fn fail(&mut self, error: ProtocolError, fx: &mut Vec<ListenerEffect>) {
        self.state = ListenerState::Unknown;
        self.line.clear();
        self.body = None;
        fx.push(ListenerEffect::ProtocolError {
            error,
            in_flight: self.in_flight.take(),
        });
    }
}

/// Python's `int(bytes)` for the result length: ASCII whitespace around, an optional
/// sign, decimal digits with single `_` between them. Negative or too big → `None`.
fn parse_python_int(b: &[u8]) -> Option<usize> {
    let is_space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = b.iter().position(|c| !is_space(c))?;
    let end = b.iter().rposition(|c| !is_space(c))? + 1;
    let mut s = &b[start..end];
    let negative = match s.first() {
        Some(b'+') => {
            s = &s[1..];
            false
        }
        Some(b'-') => {
            s = &s[1..];
            true
        }
        _ => false,
    };
    if s.is_empty() || s[0] == b'_' || s[s.len() - 1] == b'_' || s.windows(2).any(|w| w == b"__") {
        return None;
    }
    let mut n: usize = 0;
    for &c in s {
        match c {
            b'_' => {}
            b'0'..=b'9' => {
                n = n.checked_mul(10)?.checked_add(usize::from(c - b'0'))?;
            }
            _ => return None,
        }
    }
    if negative && n != 0 {
        return None;
    }
    Some(n)
}

// ------------------------------------------------------------------------------------------
// Pool

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
struct Queued {
    ev: PoolEvent,
    poolserial: u64,
    attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot {
    listener: Listener,
    running: bool,
    writable: bool,
    in_flight: Option<Queued>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            listener: Listener::new(),
            running: false,
            writable: false,
            in_flight: None,
        }
    }

    fn eligible(&self) -> bool {
        self.running && self.writable && self.listener.state() == ListenerState::Ready
    }
}

/// One listener pool: its FIFO buffer, its `poolserial`s and its listener processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    cfg: PoolConfig,
    slots: Vec<Slot>,
    buffer: VecDeque<Queued>,
    poolserial: SerialCounter,
    /// The highest store `seq` taken (stored events are taken in `seq` order).
    last_seq: Option<u64>,
    /// Stored events refused and not yet taken back.
    pending: BTreeSet<u64>,
    replay_requested: bool,
    hold_until: Option<Millis>,
    stats: PoolStats,
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

    fn capacity(&self) -> usize {
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

    fn take(&mut self, ev: PoolEvent, replayed: bool, fx: &mut Vec<Effect>) {
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

    fn accept(&mut self, ev: PoolEvent, replayed: bool, fx: &mut Vec<Effect>) {
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
    fn requeue(&mut self, process: usize, q: Queued, cause: Requeue, fx: &mut Vec<Effect>) {
        self.stats.redelivered += 1;
        fx.push(Effect::Requeued {
            process,
            serial: q.ev.serial,
            poolserial: q.poolserial,
            cause,
        });
        self.buffer.push_front(q);
    }

    fn on_listener(
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
    fn dispatch(&mut self, now: Millis, fx: &mut Vec<Effect>) {
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
    pools: Vec<Pool>,
    serial: SerialCounter,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Exit;
    use crate::rules::{CheckStatus, Status};
    use crate::trading::{TradingState, Values};
    use proptest::prelude::*;

    // ---------------------------------------------------------------- helpers

    fn pt(from: ProcessState, to: ProcessState, tries: u32, pid: u32) -> ProcessTransition {
        ProcessTransition {
            from,
            to,
            tries,
            pid,
            expected: None,
            exit: None,
            reason: None,
        }
    }

    /// `childutils.get_headers`: `dict([x.split(':') for x in line.split()])`, which fails
    /// unless every token holds exactly one `:`.
    fn childutils_headers(line: &str) -> Option<Vec<(String, String)>> {
        line.split_whitespace()
            .map(|tok| {
                let parts: Vec<&str> = tok.split(':').collect();
                (parts.len() == 2).then(|| (parts[0].to_owned(), parts[1].to_owned()))
            })
            .collect()
    }

    fn cfg(name: &str, events: &str, buffer_size: usize, numprocs: usize) -> PoolConfig {
        PoolConfig {
            name: name.into(),
            server: "supervisor".into(),
            buffer_size,
            numprocs,
            events: Subscriptions::parse(events).unwrap(),
            retry_delay_ms: 0,
        }
    }

    fn remote(i: u64) -> Notification {
        remote_communication("t", &format!("event {i}"))
    }

    fn ev(seq: u64, serial: u64) -> PoolEvent {
        PoolEvent {
            seq: Some(seq),
            serial,
            notification: remote(seq),
        }
    }

    /// Spawn listener `i`, report RUNNING, and have it say READY.
    fn start(pool: &mut Pool, i: usize) -> Vec<Effect> {
        let mut fx = pool.on(Input::Spawned { process: i }, 0);
        fx.extend(pool.on(
            Input::ProcessState {
                process: i,
                state: ProcessState::Running,
            },
            0,
        ));
        fx.extend(pool.on(
            Input::Output {
                process: i,
                bytes: b"READY\n",
            },
            0,
        ));
        fx
    }

    fn output(pool: &mut Pool, i: usize, bytes: &[u8]) -> Vec<Effect> {
        pool.on(Input::Output { process: i, bytes }, 0)
    }

    /// `(process, serial, poolserial)` of every Send.
    fn sends(fx: &[Effect]) -> Vec<(usize, u64, u64)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send {
                    process,
                    serial,
                    poolserial,
                    ..
                } => Some((*process, *serial, *poolserial)),
                _ => None,
            })
            .collect()
    }

    fn sent_text(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send { bytes, .. } => Some(String::from_utf8(bytes.clone()).unwrap()),
                _ => None,
            })
            .collect()
    }

    // ---------------------------------------------------------------- event types

    #[test]
    fn event_type_names_round_trip_and_parse_case_insensitively() {
        assert_eq!(EventType::ALL.len(), 22);
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert_eq!(EventType::parse(&t.name().to_lowercase()), Some(t));
            assert_eq!(
                Subscription::parse(&format!("  {}  ", t.name().to_lowercase())),
                Ok(Subscription::Concrete(t))
            );
            assert!(!t.name().contains(':') && !t.name().contains(' '));
        }
        for a in AbstractType::ALL {
            assert_eq!(EventType::parse(a.name()), None, "abstract is not concrete");
            assert_eq!(
                Subscription::parse(&a.name().to_lowercase()),
                Ok(Subscription::Abstract(a))
            );
        }
        assert_eq!(
            Subscription::parse("EVENT_BUFFER_OVERFLOW"),
            Err(UnknownEventType::BufferOverflowRemoved)
        );
        assert_eq!(
            Subscription::parse("PROCESS_STATE_RUNNINGX"),
            Err(UnknownEventType::Unknown("PROCESS_STATE_RUNNINGX".into()))
        );
        assert_eq!(
            Subscriptions::parse("PROCESS_STATE,"),
            Err(UnknownEventType::Empty)
        );
        let s = Subscriptions::parse("PROCESS_STATE_EXITED, tick").unwrap();
        assert!(s.matches(EventType::ProcessStateExited));
        assert!(!s.matches(EventType::ProcessStateFatal));
        assert!(s.matches(EventType::Tick3600));
        assert!(!s.matches(EventType::RemoteCommunication));
    }

    #[test]
    fn hierarchy_is_supervisords_plus_vigil() {
        use AbstractType as A;
        // (abstract, the concrete types it delivers)
        let table: &[(A, &[&str])] = &[
            (
                A::ProcessState,
                &[
                    "PROCESS_STATE_STOPPED",
                    "PROCESS_STATE_STARTING",
                    "PROCESS_STATE_RUNNING",
                    "PROCESS_STATE_BACKOFF",
                    "PROCESS_STATE_STOPPING",
                    "PROCESS_STATE_EXITED",
                    "PROCESS_STATE_FATAL",
                    "PROCESS_STATE_UNKNOWN",
                ],
            ),
            (A::ProcessLog, &["PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR"]),
            (
                A::ProcessCommunication,
                &[
                    "PROCESS_COMMUNICATION_STDOUT",
                    "PROCESS_COMMUNICATION_STDERR",
                ],
            ),
            (
                A::SupervisorStateChange,
                &[
                    "SUPERVISOR_STATE_CHANGE_RUNNING",
                    "SUPERVISOR_STATE_CHANGE_STOPPING",
                ],
            ),
            (A::Tick, &["TICK_5", "TICK_60", "TICK_3600"]),
            (
                A::ProcessGroup,
                &["PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED"],
            ),
            (A::Vigil, &["VIGIL_TRADING_STATE", "VIGIL_CHECK"]),
        ];
        for (a, names) in table {
            let got: Vec<&str> = EventType::ALL
                .into_iter()
                .filter(|t| t.is_subtype_of(*a))
                .map(EventType::name)
                .collect();
            assert_eq!(&got, names, "{a}");
        }
        assert!(EventType::ALL.iter().all(|t| t.is_subtype_of(A::Event)));
        // REMOTE_COMMUNICATION hangs directly under EVENT.
        let only_event: Vec<EventType> = EventType::ALL
            .into_iter()
            .filter(|t| t.parent() == A::Event)
            .collect();
        assert_eq!(only_event, vec![EventType::RemoteCommunication]);
        for s in ProcessState::ALL {
            let t = EventType::process_state(s);
            assert_eq!(t.name(), format!("PROCESS_STATE_{}", s.name()));
        }
    }

    // ---------------------------------------------------------------- payloads (golden)

    #[test]
    fn payloads_match_supervisord_byte_for_byte() {
        use ProcessState::*;
        let exited = ProcessTransition {
            expected: Some(false),
            exit: Some(Exit::Code(1)),
            ..pt(Running, Exited, 0, 4285)
        };
        // (built, eventname, payload) — payloads copied from SUPERVISORD.md §3.4.
        let cases: Vec<(Notification, &str, &str)> = vec![
            (
                process_state("raw", "raw", &pt(Stopped, Starting, 0, 0)),
                "PROCESS_STATE_STARTING",
                "processname:raw groupname:raw from_state:STOPPED tries:0",
            ),
            (
                process_state("quick", "quick", &pt(Starting, Backoff, 1, 0)),
                "PROCESS_STATE_BACKOFF",
                "processname:quick groupname:quick from_state:STARTING tries:1",
            ),
            (
                process_state("sleeper", "sleeper", &pt(Starting, Running, 0, 4285)),
                "PROCESS_STATE_RUNNING",
                "processname:sleeper groupname:sleeper from_state:STARTING pid:4285",
            ),
            (
                process_state("sleeper", "sleeper", &exited),
                "PROCESS_STATE_EXITED",
                "processname:sleeper groupname:sleeper from_state:RUNNING expected:0 pid:4285",
            ),
            (
                process_state("sleeper", "sleeper", &pt(Running, Stopping, 0, 4857)),
                "PROCESS_STATE_STOPPING",
                "processname:sleeper groupname:sleeper from_state:RUNNING pid:4857",
            ),
            (
                process_state("sleeper", "sleeper", &pt(Stopping, Stopped, 0, 4857)),
                "PROCESS_STATE_STOPPED",
                "processname:sleeper groupname:sleeper from_state:STOPPING pid:4857",
            ),
            (
                process_state("sleeper", "sleeper", &pt(Backoff, Stopped, 2, 0)),
                "PROCESS_STATE_STOPPED",
                "processname:sleeper groupname:sleeper from_state:BACKOFF pid:0",
            ),
            (
                process_state("quick", "quick", &pt(Backoff, Fatal, 4, 0)),
                "PROCESS_STATE_FATAL",
                "processname:quick groupname:quick from_state:BACKOFF",
            ),
            (
                process_state("x", "x", &pt(Stopping, Unknown, 0, 77)),
                "PROCESS_STATE_UNKNOWN",
                "processname:x groupname:x from_state:STOPPING",
            ),
            (
                process_log(Channel::Stdout, "comm", "comm", 4282, b"before\n"),
                "PROCESS_LOG_STDOUT",
                "processname:comm groupname:comm pid:4282 channel:stdout\nbefore\n",
            ),
            (
                process_log(Channel::Stderr, "comm", "comm", 4282, b"to stderr\n"),
                "PROCESS_LOG_STDERR",
                "processname:comm groupname:comm pid:4282 channel:stderr\nto stderr\n",
            ),
            (
                process_communication(Channel::Stdout, "comm", "comm", 4282, b"hello comm"),
                "PROCESS_COMMUNICATION_STDOUT",
                "processname:comm groupname:comm pid:4282\nhello comm",
            ),
            (
                process_communication(Channel::Stderr, "comm", "comm", 4282, b"hello comm"),
                "PROCESS_COMMUNICATION_STDERR",
                "processname:comm groupname:comm pid:4282\nhello comm",
            ),
            (
                remote_communication("mytype", "some data"),
                "REMOTE_COMMUNICATION",
                "type:mytype\nsome data",
            ),
            (
                supervisor_state_change(true),
                "SUPERVISOR_STATE_CHANGE_RUNNING",
                "",
            ),
            (
                supervisor_state_change(false),
                "SUPERVISOR_STATE_CHANGE_STOPPING",
                "",
            ),
            (tick(Tick::Tick5, 1795429215), "TICK_5", "when:1795429215"),
            (tick(Tick::Tick60, 1795429200), "TICK_60", "when:1795429200"),
            (
                tick(Tick::Tick3600, 1795428000),
                "TICK_3600",
                "when:1795428000",
            ),
            (
                process_group(true, "raw"),
                "PROCESS_GROUP_ADDED",
                "groupname:raw\n",
            ),
            (
                process_group(false, "comm"),
                "PROCESS_GROUP_REMOVED",
                "groupname:comm\n",
            ),
        ];
        for (n, name, payload) in cases {
            assert_eq!(n.event_type.name(), name);
            assert_eq!(&*n.payload, payload, "{name}");
            assert_eq!(n.payload_len(), payload.len(), "{name}: ASCII len is bytes");
            // superlance parses with childutils.eventdata(payload + '\n').
            if !payload.is_empty() {
                let first = payload.split('\n').next().unwrap();
                assert!(childutils_headers(first).is_some(), "{name}: {first}");
            }
        }
        // expected:1 for an expected exit, and supervisord's default when unknown.
        let ok = ProcessTransition {
            expected: Some(true),
            ..pt(Running, Exited, 0, 9)
        };
        assert!(
            process_state("a", "g", &ok)
                .payload
                .ends_with("expected:1 pid:9")
        );
        let unknown = pt(Running, Exited, 0, 9);
        assert!(
            process_state("a", "g", &unknown)
                .payload
                .ends_with("expected:1 pid:9")
        );
    }

    #[test]
    fn header_matches_the_verified_capture() {
        // SUPERVISORD.md §3.1, byte for byte.
        let n = process_state(
            "sleeper",
            "sleeper",
            &pt(ProcessState::Starting, ProcessState::Running, 0, 4285),
        );
        let bytes = envelope("supervisor", 21, "raw", 21, &n);
        assert_eq!(
            bytes,
            "ver:3.0 server:supervisor serial:21 pool:raw poolserial:21 eventname:PROCESS_STATE_RUNNING len:66\n\
             processname:sleeper groupname:sleeper from_state:STARTING pid:4285"
        );
        // Header tokens as childutils reads them, in order.
        let line = bytes.split('\n').next().unwrap();
        let keys: Vec<String> = childutils_headers(line)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "ver",
                "server",
                "serial",
                "pool",
                "poolserial",
                "eventname",
                "len"
            ]
        );
        // Empty payloads: len:0 and nothing after the header.
        let e = envelope("supervisor", 0, "p", 0, &supervisor_state_change(true));
        assert_eq!(
            e,
            "ver:3.0 server:supervisor serial:0 pool:p poolserial:0 eventname:SUPERVISOR_STATE_CHANGE_RUNNING len:0\n"
        );
    }

    #[test]
    fn len_counts_code_points_not_bytes() {
        // The verified case: é and ö give len:67 for 69 bytes.
        let n = process_log(
            Channel::Stdout,
            "comm",
            "comm",
            4282,
            "héllo wörld".as_bytes(),
        );
        assert_eq!(n.payload.len(), 69, "bytes");
        assert_eq!(n.payload_len(), 67, "code points");
        let e = envelope("supervisor", 3, "p", 1, &n);
        assert!(e.starts_with(
            "ver:3.0 server:supervisor serial:3 pool:p poolserial:1 eventname:PROCESS_LOG_STDOUT len:67\n"
        ));
        assert!(e.ends_with("channel:stdout\nhéllo wörld"));
        // Astral characters are one code point each (Python 3 str), not two UTF-16 units.
        assert_eq!(code_points("a😀b"), 3);
    }

    #[test]
    fn undecodable_output_is_python_repr() {
        // (data, what Python's 'Undecodable: %r' % data gives)
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfeab", r"Undecodable: b'\xff\xfeab'"),
            (b"it's \xff", r#"Undecodable: b"it's \xff""#),
            (b"'\"\xff", r#"Undecodable: b'\'"\xff'"#),
            (
                b"a\\b\x00\x7f\t\r\n\x80",
                r"Undecodable: b'a\\b\x00\x7f\t\r\n\x80'",
            ),
            // a UTF-8 character split across two reads: both halves are undecodable
            (&"é".as_bytes()[..1], r"Undecodable: b'\xc3'"),
        ];
        for (data, want) in cases {
            assert_eq!(decode_output(data), *want);
        }
        assert_eq!(decode_output(b"plain"), "plain");
        let n = process_log(Channel::Stderr, "p", "g", 1, b"\xff\n");
        assert_eq!(
            &*n.payload,
            "processname:p groupname:g pid:1 channel:stderr\nUndecodable: b'\\xff\\n'"
        );
    }

    #[test]
    fn vigil_payloads_are_childutils_safe() {
        let t = TradingTransition {
            from: TradingState::Active,
            to: TradingState::Halted,
            reason: "drawdown 12.5% > 10%\nsecond line".into(),
            source: Source::Rule("dd".into()),
            actor: "vigil".into(),
            values: Values::new(),
            at_ms: 1795429215123,
        };
        let n = vigil_trading_state(&t);
        assert_eq!(n.event_type, EventType::VigilTradingState);
        assert_eq!(
            &*n.payload,
            "from:ACTIVE to:HALTED source_kind:rule source:dd actor:vigil at_ms:1795429215123\ndrawdown 12.5% > 10%\nsecond line"
        );
        // An operator with an awkward name stays one token with one colon.
        let t2 = TradingTransition {
            source: Source::Operator("jo doe:ops".into()),
            actor: "jo doe:ops".into(),
            ..t
        };
        let n2 = vigil_trading_state(&t2);
        assert!(n2.payload.starts_with(
            "from:ACTIVE to:HALTED source_kind:operator source:jo%20doe%3Aops actor:jo%20doe%3Aops "
        ));
        let c = StatusChange {
            source: Source::Rule("dd".into()),
            action: Action::Halt,
            auto_resume_after_ms: None,
            previous: Status::Ok,
            current: CheckStatus {
                subject: Some("BTC/USD".into()),
                ..CheckStatus::new(
                    Status::Critical,
                    Some(12.5),
                    Some(10.0),
                    "drawdown 12.5% exceeds 10%".into(),
                )
            },
        };
        let n3 = vigil_check(&c, "drawdown");
        assert_eq!(n3.event_type, EventType::VigilCheck);
        assert_eq!(
            &*n3.payload,
            "source_kind:rule source:dd kind:drawdown status:critical previous:ok action:halt value:12.5 threshold:10 subject:BTC/USD\ndrawdown 12.5% exceeds 10%"
        );
        let unknown = StatusChange {
            current: CheckStatus::unknown("no data"),
            previous: Status::Critical,
            action: Action::Warn,
            source: Source::Check("feed".into()),
            ..c
        };
        assert_eq!(
            &*vigil_check(&unknown, "freshness").payload,
            "source_kind:check source:feed kind:freshness status:unknown previous:critical action:warn\nno data"
        );
        for n in [n, n2, n3] {
            let first = n.payload.split('\n').next().unwrap();
            assert!(childutils_headers(first).is_some(), "{first}");
        }
        assert_eq!(token("a%b c\td:e\u{85}"), "a%25b%20c%09d%3Ae%C2%85");
        assert!(matches!(token("plain-id_1.x/y"), Cow::Borrowed(_)));
        assert!(is_valid_token("supervisor") && !is_valid_token("a b") && !is_valid_token("a:b"));
    }

    #[test]
    fn ticker_emits_when_the_slice_changes_never_at_startup() {
        let mut t = Ticker::new();
        assert!(t.on_time(1795427999).is_empty(), "no tick at startup");
        assert!(t.on_time(1795427999).is_empty());
        let fx = t.on_time(1795428000); // a multiple of 5, 60 and 3600
        let got: Vec<(&str, &str)> = fx
            .iter()
            .map(|n| (n.event_type.name(), &*n.payload))
            .collect();
        assert_eq!(
            got,
            vec![
                ("TICK_5", "when:1795428000"),
                ("TICK_60", "when:1795428000"),
                ("TICK_3600", "when:1795428000"),
            ]
        );
        let fx = t.on_time(1795428007);
        assert_eq!(fx, vec![tick(Tick::Tick5, 1795428005)]);
        assert!(t.on_time(1795428009).is_empty());
        assert_eq!(
            t.on_time(1795428060),
            vec![
                tick(Tick::Tick5, 1795428060),
                tick(Tick::Tick60, 1795428060)
            ]
        );
    }

    #[test]
    fn serial_counters_start_at_zero_and_wrap_at_maxsize() {
        let mut s = SerialCounter::new();
        assert_eq!((s.next_serial(), s.next_serial()), (0, 1));
        let mut w = SerialCounter::after(SerialCounter::MAX - 1);
        assert_eq!(w.next_serial(), SerialCounter::MAX);
        assert_eq!(w.next_serial(), 0);
    }

    // ---------------------------------------------------------------- listener

    fn busy(serial: u64) -> Listener {
        let mut l = Listener::new();
        assert_eq!(l.feed(b"READY\n"), vec![ListenerEffect::BecameReady]);
        l.sent(serial).unwrap();
        l
    }

    #[test]
    fn listener_transitions_table() {
        use ListenerEffect as E;
        use ListenerState::*;
        // (start busy with serial 7?, reads, effects, final state)
        let pe = |error| E::ProtocolError {
            error,
            in_flight: None,
        };
        let pe7 = |error| E::ProtocolError {
            error,
            in_flight: Some(7),
        };
        type Case = (
            bool,
            &'static [&'static [u8]],
            Vec<ListenerEffect>,
            ListenerState,
        );
        let cases: Vec<Case> = vec![
            // ACKNOWLEDGED
            (false, &[b"READY\n"], vec![E::BecameReady], Ready),
            (false, &[b"REA", b"DY", b"\n"], vec![E::BecameReady], Ready),
            (false, &[b"READY"], vec![], Acknowledged),
            (
                false,
                &[b"READX\n"],
                vec![pe(ProtocolError::NotReady {
                    got: b"READX".to_vec(),
                })],
                Unknown,
            ),
            (
                false,
                &[b"ready\n"],
                vec![pe(ProtocolError::NotReady { got: b"r".to_vec() })],
                Unknown,
            ),
            // READY: any byte is spurious
            (
                false,
                &[b"READY\nREADY\n"],
                vec![E::BecameReady, pe(ProtocolError::Spurious { byte: b'R' })],
                Unknown,
            ),
            (
                false,
                &[b"READY\n", b"\n"],
                vec![E::BecameReady, pe(ProtocolError::Spurious { byte: b'\n' })],
                Unknown,
            ),
            // BUSY
            (
                true,
                &[b"RESULT 2\nOK"],
                vec![E::Accepted { serial: 7 }],
                Acknowledged,
            ),
            (
                true,
                &[b"RES", b"ULT 2", b"\n", b"O", b"K"],
                vec![E::Accepted { serial: 7 }],
                Acknowledged,
            ),
            (
                true,
                &[b"RESULT 2\nOKREADY\n"],
                vec![E::Accepted { serial: 7 }, E::BecameReady],
                Ready,
            ),
            (
                true,
                &[b"RESULT 4\nFAIL"],
                vec![E::Rejected {
                    serial: 7,
                    body: b"FAIL".to_vec(),
                }],
                Acknowledged,
            ),
            (
                true,
                &[b"RESULT 3\nOK\n"],
                vec![E::Rejected {
                    serial: 7,
                    body: b"OK\n".to_vec(),
                }],
                Acknowledged,
            ),
            (
                true,
                &[b"RESULT 0\n"],
                vec![E::Rejected {
                    serial: 7,
                    body: vec![],
                }],
                Acknowledged,
            ),
            // supervisord skips 7 bytes without checking the word, and Python's int()
            // allows whitespace, a sign and underscores.
            (
                true,
                &[b"XXXXXX 2\nOK"],
                vec![E::Accepted { serial: 7 }],
                Acknowledged,
            ),
            (
                true,
                &[b"RESULT  +2\r\nOK"],
                vec![E::Accepted { serial: 7 }],
                Acknowledged,
            ),
            (
                true,
                &[b"RESULT 0_2\nOK"],
                vec![E::Accepted { serial: 7 }],
                Acknowledged,
            ),
            // RESULT 2\nOK followed by a stray \n: the \n precedes the next READY.
            (
                true,
                &[b"RESULT 2\nOK\nREADY\n"],
                vec![
                    E::Accepted { serial: 7 },
                    pe(ProtocolError::NotReady {
                        got: b"\n".to_vec(),
                    }),
                ],
                Unknown,
            ),
            (
                true,
                &[b"RESULT x\n"],
                vec![pe7(ProtocolError::BadResultLine {
                    line: b"RESULT x".to_vec(),
                })],
                Unknown,
            ),
            (
                true,
                &[b"OK\n"],
                vec![pe7(ProtocolError::BadResultLine {
                    line: b"OK".to_vec(),
                })],
                Unknown,
            ),
            (
                true,
                &[b"RESULT -1\nOK"],
                vec![pe7(ProtocolError::BadResultLine {
                    line: b"RESULT -1".to_vec(),
                })],
                Unknown,
            ),
            (true, &[b"RESULT 2"], vec![], Busy),
            (true, &[b"RESULT 2\nO"], vec![], Busy),
            // UNKNOWN swallows everything after the violation
            (
                true,
                &[b"garbage\n", b"RESULT 2\nOK", b"READY\n"],
                vec![pe7(ProtocolError::BadResultLine {
                    line: b"garbage".to_vec(),
                })],
                Unknown,
            ),
        ];
        for (is_busy, reads, want, state) in cases {
            let mut l = if is_busy { busy(7) } else { Listener::new() };
            let got: Vec<ListenerEffect> = reads.iter().flat_map(|r| l.feed(r)).collect();
            assert_eq!(got, want, "{reads:?}");
            assert_eq!(l.state(), state, "{reads:?}");
        }
    }

    #[test]
    fn long_result_line_and_big_bodies_are_bounded() {
        let mut l = busy(1);
        let fx = l.feed(&vec![b'9'; MAX_RESULT_LINE + 1]);
        assert_eq!(
            fx,
            vec![ListenerEffect::ProtocolError {
                error: ProtocolError::ResultLineTooLong,
                in_flight: Some(1)
            }]
        );
        // A big body is counted, not stored.
        let mut l = busy(2);
        assert!(l.feed(b"RESULT 100000\n").is_empty());
        for _ in 0..99 {
            assert!(l.feed(&[b'x'; 1000]).is_empty());
        }
        let fx = l.feed(&[b'x'; 1000]);
        assert_eq!(
            fx,
            vec![ListenerEffect::Rejected {
                serial: 2,
                body: vec![b'x'; MAX_BODY_KEPT]
            }]
        );
    }

    #[test]
    fn listener_reset_abort_and_sent_guard() {
        let mut l = Listener::new();
        assert_eq!(l.sent(1), Err(ListenerState::Acknowledged));
        let mut l = busy(5);
        assert_eq!(l.in_flight(), Some(5));
        assert_eq!(l.abort(), Some(5));
        assert_eq!(l.state(), ListenerState::Ready);
        l.sent(6).unwrap();
        l.feed(b"junk\n");
        assert_eq!(l.state(), ListenerState::Unknown);
        assert_eq!(l.reset(), None, "in-flight was handed over with the error");
        assert_eq!(l.state(), ListenerState::Acknowledged);
        assert_eq!(l.feed(b"READY\n"), vec![ListenerEffect::BecameReady]);
    }

    #[test]
    fn python_int_rules() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"2", Some(2)),
            (b" 2 ", Some(2)),
            (b"\t+2\x0c", Some(2)),
            (b"002", Some(2)),
            (b"1_000", Some(1000)),
            (b"-0", Some(0)),
            (b"-1", None),
            (b"", None),
            (b" ", None),
            (b"_1", None),
            (b"1_", None),
            (b"1__0", None),
            (b"0x10", None),
            (b"2 2", None),
            (b"99999999999999999999999999", None),
        ];
        for (b, want) in cases {
            assert_eq!(parse_python_int(b), *want, "{b:?}");
        }
    }

    // ---------------------------------------------------------------- pool

    #[test]
    fn dispatches_only_to_ready_and_running_listeners() {
        let mut p = Pool::new(cfg("raw", "REMOTE_COMMUNICATION", 10, 1));
        let fx = p.on(Input::Offer(ev(1, 21)), 0);
        assert!(matches!(
            fx[..],
            [Effect::Buffered {
                serial: 21,
                poolserial: 0,
                ..
            }]
        ));
        // spawned, READY, but still STARTING: nothing sent
        p.on(Input::Spawned { process: 0 }, 0);
        let fx = output(&mut p, 0, b"READY\n");
        assert_eq!(fx, vec![Effect::Ready { process: 0 }]);
        // RUNNING: sent, with the exact envelope
        let fx = p.on(
            Input::ProcessState {
                process: 0,
                state: ProcessState::Running,
            },
            0,
        );
        assert_eq!(
            sent_text(&fx),
            vec![
                "ver:3.0 server:supervisor serial:21 pool:raw poolserial:0 eventname:REMOTE_COMMUNICATION len:14\ntype:t\nevent 1"
                    .to_string()
            ]
        );
        assert_eq!(p.listener_state(0), Some(ListenerState::Busy));
        assert_eq!(p.in_flight(0), Some((21, 0)));
        // while BUSY, new events wait
        let fx = p.on(Input::Offer(ev(2, 22)), 0);
        assert!(sends(&fx).is_empty());
        assert_eq!(p.buffered(), 1);
        // OK + READY in one read: accepted, and the next event goes out at once
        let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
        assert_eq!(
            fx[..2],
            [
                Effect::Accepted {
                    process: 0,
                    serial: 21,
                    poolserial: 0,
                    seq: Some(1)
                },
                Effect::Ready { process: 0 },
            ]
        );
        assert_eq!(sends(&fx), vec![(0, 22, 1)]);
        // a listener that is not RUNNING (STOPPING) gets nothing even when READY
        output(&mut p, 0, b"RESULT 2\nOK");
        p.on(
            Input::ProcessState {
                process: 0,
                state: ProcessState::Stopping,
            },
            0,
        );
        p.on(Input::Offer(ev(3, 23)), 0);
        let fx = output(&mut p, 0, b"READY\n");
        assert!(sends(&fx).is_empty());
        assert_eq!(p.stats().accepted, 2);
    }

    #[test]
    fn numprocs_process_in_parallel_in_creation_order() {
        let mut p = Pool::new(cfg("multi", "EVENT", 10, 3));
        for i in 1..=4 {
            p.on(Input::Offer(ev(i, i + 100)), 0);
        }
        let mut all = Vec::new();
        for i in [2, 0, 1] {
            all.extend(sends(&start(&mut p, i)));
        }
        // whoever becomes READY first takes the oldest; one event each
        assert_eq!(all, vec![(2, 101, 0), (0, 102, 1), (1, 103, 2)]);
        assert_eq!(p.buffered(), 1);
        // two READY at once: the first in creation order wins
        let mut q = Pool::new(cfg("multi", "EVENT", 10, 2));
        for i in [1, 0] {
            q.on(Input::Spawned { process: i }, 0);
            output(&mut q, i, b"READY\n");
        }
        for i in [1, 0] {
            q.on(
                Input::ProcessState {
                    process: i,
                    state: ProcessState::Running,
                },
                0,
            );
        }
        let fx = q.on(Input::Offer(ev(1, 1)), 0);
        assert_eq!(sends(&fx), vec![(0, 1, 0)]);
    }

    #[test]
    fn fail_redelivers_at_the_head_of_the_same_pool_only() {
        // The upstream bug (SUPERVISORD.md §3.6): pool a FAILs a REMOTE_COMMUNICATION and
        // supervisord re-queues it into b as well (equal priority), although b subscribes
        // to PROCESS_GROUP_ADDED only. Here b never sees it.
        let mut pools = Pools::new(
            vec![
                Pool::new(cfg("a", "REMOTE_COMMUNICATION", 10, 1)),
                Pool::new(cfg("b", "PROCESS_GROUP_ADDED", 10, 1)),
                Pool::new(cfg("c", "EVENT", 10, 1)),
            ],
            SerialCounter::new(),
        );
        let (a, b, c) = (0, 1, 2);
        // no subscriber, no serial consumed
        let mut lonely = Pools::new(
            vec![Pool::new(cfg("x", "TICK", 10, 1))],
            SerialCounter::new(),
        );
        assert_eq!(lonely.serial_for(EventType::RemoteCommunication), None);
        assert_eq!(lonely.serial_for(EventType::Tick5), Some(0));

        let on = |pools: &mut Pools, pool: usize, input: Input<'_>| pools.on(pool, input, 0);
        for pool in [a, b, c] {
            on(&mut pools, pool, Input::Spawned { process: 0 });
            on(
                &mut pools,
                pool,
                Input::ProcessState {
                    process: 0,
                    state: ProcessState::Running,
                },
            );
            on(
                &mut pools,
                pool,
                Input::Output {
                    process: 0,
                    bytes: b"READY\n",
                },
            );
        }
        let e1 = PoolEvent {
            seq: Some(1),
            serial: pools.serial_for(EventType::RemoteCommunication).unwrap(),
            notification: remote_communication("mytype", "some data"),
        };
        let e2 = PoolEvent {
            seq: Some(2),
            serial: pools.serial_for(EventType::RemoteCommunication).unwrap(),
            notification: remote_communication("mytype", "more"),
        };
        let fx = pools.offer(&e1, 0);
        let who: Vec<(usize, u64)> = fx
            .iter()
            .filter_map(|(p, e)| match e {
                Effect::Send { serial, .. } => Some((*p, *serial)),
                _ => None,
            })
            .collect();
        assert_eq!(who, vec![(a, 0), (c, 0)], "b does not subscribe");
        pools.offer(&e2, 0);
        // a FAILs serial 0 three times; it comes back at the head, same serials, each time
        for attempt in 1..=3 {
            let fx = on(
                &mut pools,
                a,
                Input::Output {
                    process: 0,
                    bytes: b"RESULT 4\nFAIL",
                },
            );
            assert_eq!(
                fx,
                vec![
                    Effect::Rejected {
                        process: 0,
                        serial: 0,
                        poolserial: 0,
                        body: b"FAIL".to_vec(),
                        attempts: attempt
                    },
                    Effect::Requeued {
                        process: 0,
                        serial: 0,
                        poolserial: 0,
                        cause: Requeue::Rejected
                    },
                ]
            );
            let fx = on(
                &mut pools,
                a,
                Input::Output {
                    process: 0,
                    bytes: b"READY\n",
                },
            );
            // immediate retry (supervisord's default), ahead of serial 1
            assert_eq!(sends(&fx), vec![(0, 0, 0)]);
        }
        let b_pool = pools.get(b).unwrap();
        assert_eq!(b_pool.buffered(), 0);
        assert_eq!(b_pool.in_flight(0), None);
        assert_eq!(b_pool.stats(), PoolStats::default(), "b never touched");
        let c_pool = pools.get(c).unwrap();
        assert_eq!(
            c_pool.in_flight(0),
            Some((0, 0)),
            "c holds only its own copy"
        );
        assert_eq!(c_pool.buffered(), 1);
        assert_eq!(c_pool.stats().rejected, 0);
        assert_eq!(c_pool.stats().redelivered, 0);
        let a_pool = pools.get(a).unwrap();
        assert_eq!(a_pool.stats().rejected, 3);
        assert_eq!(a_pool.stats().redelivered, 3);
        assert_eq!(a_pool.stats().sent, 4);
    }

    #[test]
    fn death_mid_event_redelivers_to_the_next_incarnation_first() {
        let mut p = Pool::new(cfg("raw", "EVENT", 10, 1));
        start(&mut p, 0);
        p.on(Input::Offer(ev(1, 21)), 0);
        p.on(Input::Offer(ev(2, 22)), 0);
        assert_eq!(p.in_flight(0), Some((21, 0)));
        output(&mut p, 0, b"RESULT 2\nO"); // dies halfway through its answer
        let fx = p.on(Input::Exited { process: 0 }, 0);
        assert_eq!(
            fx,
            vec![Effect::Requeued {
                process: 0,
                serial: 21,
                poolserial: 0,
                cause: Requeue::Died
            }]
        );
        assert_eq!(p.buffered(), 2);
        let fx = start(&mut p, 0);
        assert_eq!(
            sends(&fx),
            vec![(0, 21, 0)],
            "same serial and poolserial, first"
        );
        let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
        assert_eq!(sends(&fx), vec![(0, 22, 1)]);
        assert_eq!(p.stats().lost, 0);
    }

    #[test]
    fn protocol_error_requeues_and_the_listener_stays_deaf_until_respawned() {
        let mut p = Pool::new(cfg("raw", "EVENT", 10, 2));
        start(&mut p, 0);
        p.on(Input::Offer(ev(1, 1)), 0);
        let fx = output(&mut p, 0, b"garbage\n");
        assert_eq!(
            fx,
            vec![
                Effect::ProtocolError {
                    process: 0,
                    error: ProtocolError::BadResultLine {
                        line: b"garbage".to_vec()
                    }
                },
                Effect::Requeued {
                    process: 0,
                    serial: 1,
                    poolserial: 0,
                    cause: Requeue::ProtocolError
                },
            ]
        );
        assert_eq!(p.listener_state(0), Some(ListenerState::Unknown));
        // the other process of the same pool gets it
        let fx = start(&mut p, 1);
        assert_eq!(sends(&fx), vec![(1, 1, 0)]);
        // process 0 says READY again: ignored while UNKNOWN
        p.on(Input::Offer(ev(2, 2)), 0);
        assert!(sends(&output(&mut p, 0, b"READY\n")).is_empty());
        assert_eq!(p.buffered(), 1);
        // a respawn recovers it
        let fx = start(&mut p, 0);
        assert_eq!(sends(&fx), vec![(0, 2, 1)]);
    }

    #[test]
    fn write_failure_requeues_and_skips_that_process() {
        let mut p = Pool::new(cfg("raw", "EVENT", 10, 2));
        start(&mut p, 0);
        p.on(Input::Offer(ev(1, 1)), 0);
        let fx = p.on(Input::WriteFailed { process: 0 }, 0);
        assert_eq!(
            fx,
            vec![Effect::Requeued {
                process: 0,
                serial: 1,
                poolserial: 0,
                cause: Requeue::WriteFailed
            }]
        );
        assert_eq!(p.buffered(), 1, "not resent to the broken pipe");
        let fx = start(&mut p, 1);
        assert_eq!(sends(&fx), vec![(1, 1, 0)]);
    }

    #[test]
    fn optional_retry_delay_holds_the_pool_after_a_fail() {
        let mut p = Pool::new(PoolConfig {
            retry_delay_ms: 250,
            ..cfg("raw", "EVENT", 10, 1)
        });
        start(&mut p, 0);
        p.on(Input::Offer(ev(1, 1)), 1000);
        let fx = p.on(
            Input::Output {
                process: 0,
                bytes: b"RESULT 4\nFAILREADY\n",
            },
            1000,
        );
        assert!(fx.contains(&Effect::RetryAfter { ms: 250 }));
        assert!(sends(&fx).is_empty());
        assert_eq!(p.next_deadline(), Some(1250));
        assert!(sends(&p.on(Input::Timer, 1249)).is_empty());
        assert_eq!(sends(&p.on(Input::Timer, 1250)), vec![(0, 1, 0)]);
        assert_eq!(p.next_deadline(), None);
    }

    /// A stand-in for the shell: a store, live offers, replays on request, and listeners
    /// that answer as told.
    struct Shell {
        pool: Pool,
        store: Vec<PoolEvent>,
        accepted: Vec<u64>,
        effects: Vec<Effect>,
        replay_wanted: bool,
    }

    impl Shell {
        fn new(pool: Pool) -> Self {
            Shell {
                pool,
                store: Vec::new(),
                accepted: Vec::new(),
                effects: Vec::new(),
                replay_wanted: false,
            }
        }

        fn feed(&mut self, input: Input<'_>) {
            let fx = self.pool.on(input, 0);
            for e in &fx {
                match e {
                    Effect::Accepted { seq: Some(s), .. } => self.accepted.push(*s),
                    Effect::ReplayFrom { .. } => self.replay_wanted = true,
                    _ => {}
                }
            }
            self.effects.extend(fx);
            if self.replay_wanted {
                self.replay_wanted = false;
                self.replay();
            }
        }

        /// Store a new event, then offer it live.
        fn publish(&mut self) {
            let seq = self.store.len() as u64 + 1;
            let e = ev(seq, seq + 1000);
            self.store.push(e.clone());
            self.feed(Input::Offer(e));
        }

        fn replay(&mut self) {
            while let Some(from) = self.pool.wants_replay_from() {
                let mut s = from;
                loop {
                    if self.pool.wants_replay_from().is_none() {
                        return;
                    }
                    match self.store.get(s as usize - 1).cloned() {
                        Some(e) => {
                            let fx = self.pool.on(Input::Replay(e), 0);
                            for e in &fx {
                                if let Effect::Accepted { seq: Some(x), .. } = e {
                                    self.accepted.push(*x);
                                }
                            }
                            self.effects.extend(fx);
                            s += 1;
                        }
                        None => {
                            let fx = self.pool.on(Input::ReplayEnd { next_seq: s }, 0);
                            self.effects.extend(fx);
                            break;
                        }
                    }
                }
            }
        }

        fn answer(&mut self, process: usize, ok: bool) {
            if self.pool.in_flight(process).is_some() {
                let bytes: &[u8] = if ok {
                    b"RESULT 2\nOKREADY\n"
                } else {
                    b"RESULT 4\nFAILREADY\n"
                };
                self.feed(Input::Output { process, bytes });
            }
        }

        fn restart(&mut self, process: usize) {
            self.feed(Input::Exited { process });
            self.feed(Input::Spawned { process });
            self.feed(Input::ProcessState {
                process,
                state: ProcessState::Running,
            });
            self.feed(Input::Output {
                process,
                bytes: b"READY\n",
            });
        }

        fn drain(&mut self) {
            for _ in 0..10_000 {
                let n = self.pool.config().numprocs;
                for i in 0..n {
                    if self.pool.listener_state(i) != Some(ListenerState::Busy)
                        && self.pool.listener_state(i) != Some(ListenerState::Ready)
                    {
                        self.restart(i);
                    }
                    self.answer(i, true);
                }
                self.replay();
                if self.pool.buffered() == 0
                    && self.pool.backlog() == 0
                    && (0..n).all(|i| self.pool.in_flight(i).is_none())
                {
                    return;
                }
            }
            panic!("did not drain");
        }
    }

    #[test]
    fn overflow_defers_to_the_store_and_replays_without_loss() {
        let mut sh = Shell::new(Pool::new(cfg("raw", "EVENT", 2, 1)));
        // 12 events before the listener is up (supervisord's startup case: it would drop 10)
        for _ in 0..12 {
            sh.publish();
        }
        let overflowed: Vec<&Effect> = sh
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Overflowed { .. }))
            .collect();
        assert_eq!(overflowed, vec![&Effect::Overflowed { from_seq: 3 }]);
        assert_eq!(sh.pool.buffered(), 2);
        assert_eq!(sh.pool.backlog(), 10);
        assert_eq!(sh.pool.wants_replay_from(), None, "no room yet");
        assert!(
            !sh.effects
                .iter()
                .any(|e| matches!(e, Effect::ReplayFrom { .. }))
        );

        sh.restart(0);
        // one at a time: each OK makes room, the shell replays, more live events interleave
        for round in 0..30 {
            sh.answer(0, round % 4 != 3); // every fourth answer is a FAIL
            if round % 5 == 0 {
                sh.publish();
            }
        }
        sh.drain();
        let all: Vec<u64> = (1..=sh.store.len() as u64).collect();
        assert_eq!(sh.accepted, all, "every event once, in order");
        let st = sh.pool.stats();
        assert_eq!(st.lost, 0);
        assert!(st.overflows >= 1, "{st:?}");
        assert!(st.replayed >= 10, "{st:?}");
        assert_eq!(
            st.buffered,
            sh.store.len() as u64,
            "each buffered exactly once"
        );
        // poolserials follow acceptance order with no gaps
        let poolserials: Vec<u64> = sh
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Accepted { poolserial, .. } => Some(*poolserial),
                _ => None,
            })
            .collect();
        assert_eq!(poolserials, (0..sh.store.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn replayed_events_are_never_buffered_twice() {
        let mut p = Pool::new(cfg("raw", "EVENT", 2, 1));
        for s in 1..=3 {
            p.on(Input::Offer(ev(s, s)), 0);
        }
        assert_eq!(p.backlog(), 1);
        // replays of what it already holds are ignored
        for s in 1..=2 {
            assert!(p.on(Input::Replay(ev(s, s)), 0).is_empty());
        }
        assert_eq!(p.stats().duplicates, 2);
        let fx = start(&mut p, 0); // takes 1: room for one, and 3 is asked for once
        assert_eq!(fx.last(), Some(&Effect::ReplayFrom { seq: 3 }));
        let fx = output(&mut p, 0, b"RESULT 2\nOK");
        assert!(!fx.iter().any(|e| matches!(e, Effect::ReplayFrom { .. })));
        let fx = p.on(Input::Replay(ev(3, 3)), 0);
        assert!(matches!(
            fx[..],
            [Effect::Buffered {
                seq: Some(3),
                replayed: true,
                ..
            }]
        ));
        // the same event arriving live late, or replayed again: duplicate
        assert!(p.on(Input::Offer(ev(3, 3)), 0).is_empty());
        assert!(p.on(Input::Replay(ev(3, 3)), 0).is_empty());
        assert_eq!(p.stats().buffered, 3);
        assert_eq!(p.backlog(), 0);
        assert_eq!(p.wants_replay_from(), None);
    }

    #[test]
    fn order_is_kept_while_a_backlog_exists() {
        let mut p = Pool::new(cfg("raw", "EVENT", 1, 1));
        p.on(Input::Offer(ev(1, 1)), 0);
        let fx = p.on(Input::Offer(ev(2, 2)), 0);
        assert_eq!(
            fx,
            vec![
                Effect::Overflowed { from_seq: 2 },
                Effect::Deferred { seq: 2 }
            ]
        );
        start(&mut p, 0); // 1 in flight, buffer empty → ReplayFrom 2
        // a live event 3 arrives before the shell has replayed 2: it must wait its turn
        let fx = p.on(Input::Offer(ev(3, 3)), 0);
        assert_eq!(fx, vec![Effect::Deferred { seq: 3 }]);
        assert_eq!(p.wants_replay_from(), Some(2));
        let fx = p.on(Input::Replay(ev(2, 2)), 0);
        assert!(matches!(fx[0], Effect::Buffered { seq: Some(2), .. }));
        // full again: replaying 3 now is deferred, and asked for again when there is room
        assert_eq!(
            p.on(Input::Replay(ev(3, 3)), 0),
            vec![Effect::Deferred { seq: 3 }]
        );
        assert_eq!(p.stats().deferred, 2, "3 counted once");
        let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
        assert_eq!(sends(&fx), vec![(0, 2, 1)]);
        assert_eq!(fx.last(), Some(&Effect::ReplayFrom { seq: 3 }));
    }

    #[test]
    fn losses_are_reported_and_counted() {
        let mut p = Pool::new(cfg("raw", "EVENT", 1, 1));
        p.on(Input::Offer(ev(1, 1)), 0);
        // an event the shell did not store cannot be replayed: dropped, loudly
        let unstored = PoolEvent {
            seq: None,
            serial: 9,
            notification: tick(Tick::Tick5, 5),
        };
        assert_eq!(
            p.on(Input::Offer(unstored), 0),
            vec![Effect::Dropped { serial: 9 }]
        );
        p.on(Input::Offer(ev(2, 2)), 0);
        start(&mut p, 0);
        // the store no longer has seq 2 (retention): the replay pass ends without it
        // 2 is not below next_seq 2 (the shell read a stale end): not lost, asked for again
        let fx = p.on(Input::ReplayEnd { next_seq: 2 }, 0);
        assert_eq!(fx, vec![Effect::ReplayFrom { seq: 2 }]);
        let fx = p.on(Input::ReplayEnd { next_seq: 3 }, 0);
        assert_eq!(fx, vec![Effect::Missing { seq: 2 }]);
        assert_eq!(p.stats().lost, 2);
        assert_eq!(p.backlog(), 0);
    }

    // ---------------------------------------------------------------- properties

    /// Split `bytes` at the given cut points.
    fn chunks<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        if bytes.is_empty() {
            return vec![];
        }
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.dedup();
        at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"READY\n".to_vec()),
            Just(b"RESULT 2\n".to_vec()),
            Just(b"RESULT 4\n".to_vec()),
            Just(b"RESULT 0\n".to_vec()),
            Just(b"OK".to_vec()),
            Just(b"FAIL".to_vec()),
            Just(b"\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    /// One listener cycle's bytes: the answer to the event in flight, then READY.
    fn session_bytes(results: &[bool]) -> Vec<Vec<u8>> {
        let mut cycles = vec![b"READY\n".to_vec()];
        for ok in results {
            let mut c = if *ok {
                b"RESULT 2\nOK".to_vec()
            } else {
                b"RESULT 4\nFAIL".to_vec()
            };
            c.extend_from_slice(b"READY\n");
            cycles.push(c);
        }
        cycles
    }

    fn run_session(cycles: &[Vec<u8>], cuts: &[Vec<prop::sample::Index>]) -> Vec<Effect> {
        let mut p = Pool::new(cfg("raw", "EVENT", 50, 1));
        let mut fx = Vec::new();
        for s in 1..=5 {
            fx.extend(p.on(Input::Offer(ev(s, s)), 0));
        }
        fx.extend(p.on(Input::Spawned { process: 0 }, 0));
        fx.extend(p.on(
            Input::ProcessState {
                process: 0,
                state: ProcessState::Running,
            },
            0,
        ));
        for (i, cycle) in cycles.iter().enumerate() {
            // a listener only answers once it was sent something
            if i > 0 && p.in_flight(0).is_none() {
                break;
            }
            let none = Vec::new();
            for chunk in chunks(cycle, cuts.get(i).unwrap_or(&none)) {
                fx.extend(p.on(
                    Input::Output {
                        process: 0,
                        bytes: chunk,
                    },
                    0,
                ));
            }
        }
        fx
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any byte stream, any chunking, from ACKNOWLEDGED or BUSY: the same effects and
        /// the same final state as one big read.
        #[test]
        fn listener_effects_do_not_depend_on_chunking(
            frags in proptest::collection::vec(fragment(), 0..12),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
            start_busy in any::<bool>(),
        ) {
            let bytes: Vec<u8> = frags.concat();
            let fresh = || if start_busy { busy(7) } else { Listener::new() };
            let mut whole = fresh();
            let want = whole.feed(&bytes);
            let mut split = fresh();
            let got: Vec<ListenerEffect> =
                chunks(&bytes, &cuts).into_iter().flat_map(|c| split.feed(c)).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(split.state(), whole.state());
        }

        /// A valid listener session (READY, then answer + READY per event), each cycle's
        /// bytes split anywhere: the pool's effects equal those of one read per cycle.
        #[test]
        fn pool_session_does_not_depend_on_chunking(
            results in proptest::collection::vec(any::<bool>(), 0..10),
            cuts in proptest::collection::vec(
                proptest::collection::vec(any::<prop::sample::Index>(), 0..6), 0..11),
        ) {
            let cycles = session_bytes(&results);
            let want = run_session(&cycles, &[]);
            let got = run_session(&cycles, &cuts);
            prop_assert_eq!(got, want);
        }

        /// Random schedules of publishes, OK / FAIL answers, deaths and protocol errors with
        /// a tiny buffer: once drained, every stored event was accepted exactly once, in
        /// order for one process, with nothing lost.
        #[test]
        fn nothing_is_lost(
            numprocs in 1usize..3,
            buffer_size in 1usize..4,
            ops in proptest::collection::vec((0u8..6, 0usize..2), 0..80),
        ) {
            let mut sh = Shell::new(Pool::new(cfg("p", "EVENT", buffer_size, numprocs)));
            for (op, who) in ops {
                let who = who % numprocs;
                match op {
                    0 | 1 => sh.publish(),
                    2 => sh.answer(who, true),
                    3 => sh.answer(who, false),
                    4 => sh.restart(who),
                    _ => sh.feed(Input::Output { process: who, bytes: b"junk\n" }),
                }
            }
            sh.drain();
            let all: Vec<u64> = (1..=sh.store.len() as u64).collect();
            let mut got = sh.accepted.clone();
            if numprocs > 1 {
                got.sort_unstable();
            }
            prop_assert_eq!(got, all);
            prop_assert_eq!(sh.pool.stats().lost, 0);
            prop_assert_eq!(sh.pool.stats().buffered, sh.store.len() as u64);
        }
    }
}
