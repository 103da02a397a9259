//! Byte-exact payloads, ticks, tokens, the header and the envelope.

use super::*;

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
    pub(crate) last: [Option<u64>; 3],
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

pub(crate) fn source_kind(s: &Source) -> &'static str {
    s.kind()
}

pub(crate) fn action_name(a: Action) -> &'static str {
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
