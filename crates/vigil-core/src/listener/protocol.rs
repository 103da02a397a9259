//! One listener's protocol: its state and the reply parser (any chunking).

use super::*;

/// supervisord's `new_serial`: 0, 1, 2, …, wrapping from Python's `sys.maxsize` to 0.
/// The global counter survives a reload (keep it); pool counters restart with the pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SerialCounter {
    pub(crate) last: Option<u64>,
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

pub(crate) const READY_TOKEN: &[u8] = b"READY\n";

/// supervisord skips this many bytes of the result line without looking (`RESULT `).
pub(crate) const RESULT_TOKEN_START_LEN: usize = 7;

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
pub(crate) struct ResultBody {
    pub(crate) len: usize,
    pub(crate) seen: usize,
    pub(crate) head: Vec<u8>,
}

/// The protocol state of one listener process, fed with its raw stdout bytes in whatever
/// chunks they are read: the effects do not depend on where the reads split the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub(crate) state: ListenerState,
    /// ACKNOWLEDGED: the part of `READY\n` seen; BUSY: the result line so far.
    pub(crate) line: Vec<u8>,
    /// BUSY, after the result line.
    pub(crate) body: Option<ResultBody>,
    /// The serial of the event sent, while BUSY.
    pub(crate) in_flight: Option<u64>,
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

    pub(crate) fn finish_if_complete(&mut self, fx: &mut Vec<ListenerEffect>) {
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

    pub(crate) fn fail(&mut self, error: ProtocolError, fx: &mut Vec<ListenerEffect>) {
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
pub(crate) fn parse_python_int(b: &[u8]) -> Option<usize> {
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
