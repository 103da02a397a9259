//! One JSONL line → one [`Line`]: the fast scanner, the strict fallback, and the field
//! mapping that both share.
//!
//! The fast path ([`scan_fast`]) walks the raw bytes of a line once, validating the JSON
//! grammar of the whole object, and keeps the top-level keys with borrowed values. It gives
//! up — and the line goes through `serde_json` ([`Fields::Full`]) — on anything it does not
//! fully understand: a backslash escape, a control byte, a number with an exponent or more
//! than 15 digits, nesting deeper than 32, a line that is not an object or not valid JSON. So
//! whenever it answers, the line is valid JSON and the top-level values it hands out are the
//! ones `serde_json` would give (duplicate keys: the last wins, as in `serde_json::Map`).
//! Both paths then go through the same [`extract`], so they cannot count differently; a test
//! compares them on odd and fuzzed lines.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::event::Millis;

/// A top-level value, borrowed from the line (fast path) or from the parsed value (full).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Null,
    /// An object or array, as raw text (fast path) or parsed.
    Nested(Nested<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nested<'a> {
    Raw(&'a str),
    Value(&'a Value),
}

impl Nested<'_> {
    pub fn to_value(self) -> Value {
        match self {
            Nested::Raw(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            Nested::Value(v) => v.clone(),
        }
    }
}

impl Val<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Num(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::Null => "null",
            Val::Nested(Nested::Raw(s)) if s.starts_with('[') => "an array",
            Val::Nested(Nested::Value(Value::Array(_))) => "an array",
            Val::Nested(_) => "an object",
        }
    }
}

/// Most top-level keys the fast path keeps; a line with more goes the full way.
const MAX_FAST_KEYS: usize = 16;
const MAX_FAST_DEPTH: usize = 32;

/// The top-level fields of one line (the fast variant lives on the stack on purpose).
#[allow(clippy::large_enum_variant)]
pub enum Fields<'a> {
    Fast(&'a FastFields<'a>),
    Full(&'a Map<String, Value>),
}

pub struct FastFields<'a> {
    line: &'a str,
    n: usize,
    keys: [(&'a str, Val<'a>); MAX_FAST_KEYS],
}

impl<'a> Fields<'a> {
    /// The value of `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        let v = match self {
            Fields::Fast(f) => f.keys[..f.n]
                .iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v),
            Fields::Full(m) => m.get(key).map(|v| match v {
                Value::String(s) => Val::Str(s.as_str()),
                Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(b) => Val::Bool(*b),
                Value::Null => Val::Null,
                other => Val::Nested(Nested::Value(other)),
            }),
        };
        v.filter(|v| *v != Val::Null)
    }

    /// The whole object.
    pub fn to_map(&self) -> Map<String, Value> {
        match self {
            Fields::Fast(f) => match serde_json::from_str(f.line) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            },
            Fields::Full(m) => (*m).clone(),
        }
    }
}

impl Default for FastFields<'_> {
    fn default() -> Self {
        FastFields {
            line: "",
            n: 0,
            keys: [("", Val::Null); MAX_FAST_KEYS],
        }
    }
}

/// The fast scanner into a reusable `out` (all lines of a chunk share one); `false` means
/// "take the full path".
pub fn scan_fast_into<'a>(line: &'a str, out: &mut FastFields<'a>) -> bool {
    out.line = line;
    out.n = 0;
    scan_object(line, out).is_some()
}

/// [`scan_fast_into`] with its own buffer.
pub fn scan_fast(line: &str) -> Option<FastFields<'_>> {
    let mut out = FastFields::default();
    scan_fast_into(line, &mut out).then_some(out)
}

fn scan_object<'a>(line: &'a str, out: &mut FastFields<'a>) -> Option<()> {
    let b = line.as_bytes();
    // Any control byte (tabs, CR, raw newlines in strings…) goes the full way.
    if b.iter().fold(false, |acc, &c| acc | (c < 0x20)) {
        return None;
    }
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key, next) = string_at(line, i)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (val, next) = value_at(line, i, 0)?;
            if out.n == MAX_FAST_KEYS {
                return None;
            }
            out.keys[out.n] = (key, val);
            out.n += 1;
            i = skip_ws(b, next);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// A string starting at the quote at `i`: its content (no escapes) and the index after it.
fn string_at(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    // Most keys and values are short: a plain loop beats memchr's setup for them.
    let mut end = i + 1;
    let short = (i + 33).min(b.len());
    while end < short && b[end] != b'"' && b[end] != b'\\' {
        end += 1;
    }
    if end == short {
        end += memchr::memchr2(b'"', b'\\', &b[end..])?;
    }
    if b[end] == b'\\' {
        return None;
    }
    Some((&line[i + 1..end], end + 1))
}

fn value_at(line: &str, i: usize, depth: usize) -> Option<(Val<'_>, usize)> {
    let b = line.as_bytes();
    match *b.get(i)? {
        b'"' => string_at(line, i).map(|(s, n)| (Val::Str(s), n)),
        b't' => lit(b, i, b"true").map(|n| (Val::Bool(true), n)),
        b'f' => lit(b, i, b"false").map(|n| (Val::Bool(false), n)),
        b'n' => lit(b, i, b"null").map(|n| (Val::Null, n)),
        b'-' | b'0'..=b'9' => number_at(b, i),
        b'{' | b'[' => {
            let end = skip_nested(line, i, depth + 1)?;
            Some((Val::Nested(Nested::Raw(&line[i..end])), end))
        }
        _ => None,
    }
}

fn lit(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b.get(i..i + word.len())
        .filter(|s| *s == word)
        .map(|_| i + word.len())
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A JSON number without exponent and with at most 15 digits: exactly `serde_json`'s value
/// (an integer below 2^53, or such an integer divided by an exact power of ten: one IEEE
/// division either way).
fn number_at(b: &[u8], mut i: usize) -> Option<(Val<'static>, usize)> {
    let neg = b[i] == b'-';
    if neg {
        i += 1;
    }
    let mut sig: u64 = 0;
    let mut digits = 0usize;
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            digits = 1;
        }
        Some(b'1'..=b'9') => {
            while let Some(&c @ b'0'..=b'9') = b.get(i) {
                sig = sig * 10 + u64::from(c - b'0');
                digits += 1;
                i += 1;
                if digits > 15 {
                    return None;
                }
            }
        }
        _ => return None,
    }
    let mut frac = 0usize;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            sig = sig * 10 + u64::from(c - b'0');
            digits += 1;
            frac += 1;
            i += 1;
            if digits > 15 {
                return None;
            }
        }
        if frac == 0 {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E' | b'0'..=b'9')) {
        return None;
    }
    let mag = sig as f64 / POW10[frac];
    Some((Val::Num(if neg { -mag } else { mag }), i))
}

/// Validates a nested object or array (strings without escapes only); the index after it.
fn skip_nested(line: &str, i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_FAST_DEPTH {
        return None;
    }
    let b = line.as_bytes();
    let close = if b[i] == b'{' { b'}' } else { b']' };
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&close) {
        return Some(j + 1);
    }
    loop {
        if close == b'}' {
            if b.get(j) != Some(&b'"') {
                return None;
            }
            let (_, n) = string_at(line, j)?;
            j = skip_ws(b, n);
            if b.get(j) != Some(&b':') {
                return None;
            }
            j = skip_ws(b, j + 1);
        }
        let (_, n) = value_at(line, j, depth)?;
        j = skip_ws(b, n);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(&c) if c == close => return Some(j + 1),
            _ => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Time

/// How a numeric time is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeUnit {
    /// Unix milliseconds (vigil's schema).
    #[default]
    Millis,
    /// Unix seconds (Python's `time.time()`).
    Seconds,
    /// Seconds below 10^11, milliseconds from there on.
    Auto,
}

/// A time string: RFC 3339 (any offset), or `YYYY-MM-DD HH:MM:SS[.fff]` / with `T` and no
/// offset, read as UTC. Instants before 1970 are refused.
pub fn parse_time_str(s: &str) -> Result<Millis, String> {
    if let Some(ms) = fast_rfc3339(s.as_bytes()) {
        return Ok(ms);
    }
    match crate::event::parse_rfc3339_ms(s) {
        Ok(ms) => Ok(ms),
        Err(e) => {
            let t = s.trim();
            for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
                    return u64::try_from(n.and_utc().timestamp_millis())
                        .map_err(|_| "before 1970-01-01".to_owned());
                }
            }
            Err(e)
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` only; anything else → `None` (chrono decides).
fn fast_rfc3339(b: &[u8]) -> Option<Millis> {
    fn num(b: &[u8], from: usize, len: usize) -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(from..from + len)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, s) = (num(b, 11, 2)?, num(b, 14, 2)?, num(b, 17, 2)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        let from = i + 1;
        let mut j = from;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let n = j - from;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = num(b, from, n)? * 10i64.pow((9 - n) as u32);
        i = j;
    }
    let offset_s = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(b, i + 1, 2)?, num(b, i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    let ms = secs.checked_mul(1000)? + nanos / 1_000_000;
    u64::try_from(ms).ok()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------
// Mapping

/// What a line stands for in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cycle,
    Heartbeat,
    Log,
    Order,
    Fill,
    Position,
    /// vigil's `trading_state` (`from`, `to`, `reason`, `source`).
    TradingState,
    /// A bot's own halt / resume line (the reason is its message).
    Halt,
    Resume,
    /// A configuration snapshot: its `config` object, or the line's other fields.
    Config,
    ApiError,
    /// vigil's `check` status changes (`warn`/`critical` become warnings/errors).
    Check,
    Other,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "cycle" => Kind::Cycle,
            "heartbeat" => Kind::Heartbeat,
            "log" => Kind::Log,
            "order" => Kind::Order,
            "fill" => Kind::Fill,
            "position" => Kind::Position,
            "trading_state" => Kind::TradingState,
            "halt" => Kind::Halt,
            "resume" => Kind::Resume,
            "config" => Kind::Config,
            "api_error" => Kind::ApiError,
            "check" => Kind::Check,
            "other" | "ignore" => Kind::Other,
            _ => return None,
        })
    }
}

/// A bot's own event type mapped onto a report kind (`[types]` of the mapping file).
#[derive(Clone, Debug, PartialEq)]
pub struct TypeMap {
    pub kind: Kind,
    /// For cycles: the cycle name to use instead of the line's own.
    pub name: Option<String>,
    /// For orders: the status to use instead of the line's own.
    pub status: Option<String>,
}

/// Which key holds what. The default is vigil's own event schema (docs/events.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    /// Time keys, the first present one wins.
    pub time: Vec<String>,
    pub time_unit: TimeUnit,
    pub r#type: String,
    /// The type of a line without one (`None`: such a line is bad).
    pub default_type: Option<String>,
    pub types: BTreeMap<String, TypeMap>,
    pub source: String,
    pub level: String,
    pub message: String,
    pub error_kind: String,
    pub stack: String,
    pub name: String,
    pub duration: String,
    /// Multiplier to milliseconds (1 for ms, 1000 for seconds).
    pub duration_scale: f64,
    pub target: String,
    pub target_scale: f64,
    /// Targets by cycle name for cycles without one.
    pub targets: BTreeMap<String, f64>,
    /// Targets by cycle name taken from a key of the configuration snapshot (in ms, or in
    /// seconds when the key ends in `_S`/`_s`).
    pub target_keys: BTreeMap<String, String>,
    /// Config snapshot key holding the heartbeat timeout in seconds.
    pub heartbeat_timeout_key: Option<String>,
    pub order_id: String,
    pub status: String,
    pub pnl: String,
    pub pair: String,
    pub qty: String,
    pub session: Vec<String>,
    pub run: Vec<String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            time: vec!["ts".into()],
            time_unit: TimeUnit::Millis,
            r#type: "type".into(),
            default_type: None,
            types: BTreeMap::new(),
            source: "source".into(),
            level: "level".into(),
            message: "message".into(),
            error_kind: "error_kind".into(),
            stack: "stack".into(),
            name: "name".into(),
            duration: "duration_ms".into(),
            duration_scale: 1.0,
            target: "target_ms".into(),
            target_scale: 1.0,
            targets: BTreeMap::new(),
            target_keys: BTreeMap::new(),
            heartbeat_timeout_key: None,
            order_id: "order_id".into(),
            status: "status".into(),
            pnl: "realized_pnl".into(),
            pair: "pair".into(),
            qty: "qty".into(),
            session: vec!["session_id".into(), "session".into()],
            run: vec!["run_id".into()],
        }
    }
}

/// Severity of a log line, normalised (`warn` → warning, `fatal`/`crit` → critical).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Level::Debug,
            "info" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warning,
            "error" | "err" => Level::Error,
            "critical" | "crit" | "fatal" | "panic" | "alert" | "emergency" => Level::Critical,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

/// One line, extracted.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    pub ts: Millis,
    pub type_name: &'a str,
    pub source: Option<&'a str>,
    pub session: Option<&'a str>,
    pub run: Option<&'a str>,
    pub rec: Rec<'a>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Rec<'a> {
    Cycle {
        name: Cow<'a, str>,
        duration_ms: f64,
        target_ms: Option<f64>,
    },
    Heartbeat,
    Log {
        level: Level,
        kind: Option<Cow<'a, str>>,
        message: Cow<'a, str>,
        stack: Option<&'a str>,
    },
    Order {
        status: Cow<'a, str>,
    },
    Fill {
        pnl: Option<f64>,
    },
    Position {
        pair: &'a str,
        qty: f64,
    },
    Transition {
        from: Option<&'a str>,
        to: Cow<'a, str>,
        reason: Option<Cow<'a, str>>,
        source: Option<&'a str>,
    },
    Config(Map<String, Value>),
    Other,
}

/// Why a line could not be used (`field: reason`).
pub fn bad(field: &str, reason: impl std::fmt::Display) -> String {
    format!("{field}: {reason}")
}

fn opt_str<'a>(f: &Fields<'a>, key: &str) -> Result<Option<&'a str>, String> {
    match f.get(key) {
        None => Ok(None),
        Some(Val::Str(s)) => Ok(Some(s)),
        Some(v) => Err(bad(key, format!("expected a string, got {}", v.kind()))),
    }
}

fn opt_num(f: &Fields<'_>, key: &str) -> Result<Option<f64>, String> {
    match f.get(key) {
        None => Ok(None),
        Some(Val::Num(n)) if n.is_finite() => Ok(Some(n)),
        Some(v) => Err(bad(key, format!("expected a number, got {}", v.kind()))),
    }
}

fn req_num(f: &Fields<'_>, key: &str) -> Result<f64, String> {
    opt_num(f, key)?.ok_or_else(|| bad(key, "missing"))
}

/// The time of a line.
fn time_of(f: &Fields<'_>, m: &Mapping) -> Result<Millis, String> {
    for key in &m.time {
        match f.get(key) {
            None => continue,
            Some(Val::Str(s)) => return parse_time_str(s).map_err(|e| bad(key, e)),
            Some(Val::Num(n)) if n.is_finite() && n >= 0.0 => {
                let ms = match m.time_unit {
                    TimeUnit::Millis => n,
                    TimeUnit::Seconds => n * 1000.0,
                    TimeUnit::Auto if n < 1e11 => n * 1000.0,
                    TimeUnit::Auto => n,
                };
                return if ms < 1.8e19 {
                    Ok(ms as Millis)
                } else {
                    Err(bad(key, "out of range"))
                };
            }
            Some(v) => {
                return Err(bad(
                    key,
                    format!("expected an RFC 3339 string or Unix time, got {}", v.kind()),
                ));
            }
        }
    }
    Err(bad(m.time.first().map_or("ts", String::as_str), "missing"))
}

/// The time of one raw line, if it is readable (used to put input files in time order).
pub fn line_time(line: &str, m: &Mapping) -> Option<Millis> {
    match scan_fast(line) {
        Some(f) => time_of(&Fields::Fast(&f), m).ok(),
        None => match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => time_of(&Fields::Full(&map), m).ok(),
            _ => None,
        },
    }
}

/// `"AttributeError: …"` → `AttributeError`.
fn kind_from_message(msg: &str) -> Option<&str> {
    let (head, _) = msg.split_once(':')?;
    let ok = head.len() <= 64
        && head.starts_with(|c: char| c.is_ascii_uppercase())
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && [
            "Error",
            "Exception",
            "Warning",
            "Interrupt",
            "Exit",
            "Fault",
        ]
        .iter()
        .any(|s| head.ends_with(s));
    ok.then_some(head)
}

/// Fields → [`Line`], the same for both paths.
pub fn extract<'a>(f: &Fields<'a>, m: &'a Mapping) -> Result<Line<'a>, String> {
    extract_with(f, m, true)
}

/// [`extract`]; `want_ids: false` skips the session and run id lookups.
pub fn extract_with<'a>(
    f: &Fields<'a>,
    m: &'a Mapping,
    want_ids: bool,
) -> Result<Line<'a>, String> {
    let ts = time_of(f, m)?;
    let type_name: &'a str = match f.get(&m.r#type) {
        Some(Val::Str(s)) if !s.is_empty() => s,
        Some(Val::Str(_)) => return Err(bad(&m.r#type, "empty")),
        None => match &m.default_type {
            Some(d) => d.as_str(),
            None => return Err(bad(&m.r#type, "missing")),
        },
        Some(v) => {
            return Err(bad(
                &m.r#type,
                format!("expected a string, got {}", v.kind()),
            ));
        }
    };
    let lookup = type_name;
    let mapped = m.types.get(lookup);
    let kind = mapped
        .map(|t| t.kind)
        .or_else(|| Kind::parse(lookup))
        .unwrap_or(Kind::Other);
    let source = opt_str(f, &m.source)?;
    // Ids that are not strings are ignored (not an error), so a reader that already has
    // them may skip the lookups without changing any count.
    let first_str = |keys: &[String]| {
        keys.iter().find_map(|k| match f.get(k) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        })
    };
    let (session, run) = if want_ids {
        (first_str(&m.session), first_str(&m.run))
    } else {
        (None, None)
    };
    let level = |f: &Fields<'a>| -> Result<Option<Level>, String> {
        Ok(opt_str(f, &m.level)?.and_then(Level::parse))
    };
    let rec = match kind {
        Kind::Cycle => {
            let name = match mapped.and_then(|t| t.name.as_deref()) {
                Some(n) => Cow::Owned(n.to_owned()),
                None => Cow::Borrowed(opt_str(f, &m.name)?.unwrap_or("cycle")),
            };
            let d = req_num(f, &m.duration)?;
            if d < 0.0 {
                return Err(bad(&m.duration, "negative"));
            }
            let target = match opt_num(f, &m.target)? {
                Some(t) if t <= 0.0 => return Err(bad(&m.target, "must be > 0")),
                Some(t) => Some(t * m.target_scale),
                None => None,
            };
            Rec::Cycle {
                name,
                duration_ms: d * m.duration_scale,
                target_ms: target,
            }
        }
        Kind::Heartbeat => Rec::Heartbeat,
        Kind::Other if f.get(&m.level).is_none() => Rec::Other,
        Kind::Log | Kind::Other => {
            let lvl = level(f)?;
            let message = opt_str(f, &m.message)?;
            let stack = opt_str(f, &m.stack)?;
            let ekind = opt_str(f, &m.error_kind)?;
            let lvl = match (kind, lvl) {
                (_, Some(l)) => Some(l),
                (Kind::Log, None) if stack.is_some() || ekind.is_some() => Some(Level::Error),
                (Kind::Log, None) => Some(Level::Info),
                _ => None,
            };
            match lvl {
                Some(level) if kind == Kind::Log || level >= Level::Warning => {
                    let message = message.unwrap_or("");
                    let ekind = ekind
                        .or_else(|| kind_from_message(message))
                        .map(Cow::Borrowed)
                        .or_else(|| (kind == Kind::Other).then_some(Cow::Borrowed(type_name)));
                    Rec::Log {
                        level,
                        kind: ekind,
                        message: Cow::Borrowed(message),
                        stack,
                    }
                }
                _ => Rec::Other,
            }
        }
        Kind::ApiError => {
            let critical = matches!(f.get("critical"), Some(Val::Bool(true)));
            let code = opt_str(f, "code")?.unwrap_or("api_error");
            Rec::Log {
                level: if critical {
                    Level::Critical
                } else {
                    Level::Error
                },
                kind: Some(Cow::Borrowed(code)),
                message: Cow::Borrowed(opt_str(f, &m.message)?.unwrap_or(code)),
                stack: None,
            }
        }
        Kind::Check => {
            let status = opt_str(f, "status")?.unwrap_or("");
            let level = match status {
                "warn" => Level::Warning,
                "critical" => Level::Error,
                _ => Level::Info,
            };
            if level == Level::Info {
                Rec::Other
            } else {
                let name = opt_str(f, "name")?.unwrap_or("check");
                let msg = opt_str(f, "message")?.unwrap_or(status);
                Rec::Log {
                    level,
                    kind: Some(Cow::Owned(format!("check:{name}"))),
                    message: Cow::Owned(format!("{name}: {msg}")),
                    stack: None,
                }
            }
        }
        Kind::Order => {
            let status = match mapped.and_then(|t| t.status.as_deref()) {
                Some(s) => Cow::Owned(s.to_owned()),
                None => match opt_str(f, &m.status)? {
                    Some("cancelled") => Cow::Borrowed("canceled"),
                    Some(s) => Cow::Borrowed(s),
                    None => return Err(bad(&m.status, "missing")),
                },
            };
            Rec::Order { status }
        }
        Kind::Fill => Rec::Fill {
            pnl: opt_num(f, &m.pnl)?,
        },
        Kind::Position => Rec::Position {
            pair: opt_str(f, &m.pair)?.ok_or_else(|| bad(&m.pair, "missing"))?,
            qty: req_num(f, &m.qty)?,
        },
        Kind::TradingState => Rec::Transition {
            from: opt_str(f, "from")?,
            to: Cow::Borrowed(opt_str(f, "to")?.ok_or_else(|| bad("to", "missing"))?),
            reason: opt_str(f, "reason")?.map(Cow::Borrowed),
            source: opt_str(f, "source")?,
        },
        Kind::Halt | Kind::Resume => Rec::Transition {
            from: None,
            to: Cow::Borrowed(if kind == Kind::Halt {
                "HALTED"
            } else {
                "ACTIVE"
            }),
            reason: opt_str(f, &m.message)?
                .or(opt_str(f, "reason")?)
                .map(Cow::Borrowed),
            source,
        },
        Kind::Config => {
            let mut map = f.to_map();
            match map.remove("config") {
                Some(Value::Object(inner)) => Rec::Config(inner),
                _ => {
                    for k in m.time.iter().chain([&m.r#type, &m.source]) {
                        map.remove(k);
                    }
                    Rec::Config(map)
                }
            }
        }
    };
    Ok(Line {
        ts,
        type_name,
        source,
        session,
        run,
        rec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(line: &str) -> Option<Map<String, Value>> {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// Whenever the fast path answers, it agrees with serde_json on every top-level key.
    fn agree(line: &str) {
        let Some(fast) = scan_fast(line) else { return };
        let m = full(line).unwrap_or_else(|| panic!("fast path accepted invalid JSON: {line}"));
        let ff = Fields::Fast(&fast);
        let fm = Fields::Full(&m);
        for k in m.keys() {
            let (a, b) = (ff.get(k), fm.get(k));
            match (a, b) {
                (Some(Val::Nested(x)), Some(Val::Nested(y))) => {
                    assert_eq!(x.to_value(), y.to_value(), "{line}")
                }
                (Some(Val::Num(x)), Some(Val::Num(y))) => {
                    assert_eq!(x.to_bits(), y.to_bits(), "{k} in {line}")
                }
                _ => assert_eq!(a, b, "{k} in {line}"),
            }
        }
        assert_eq!(ff.to_map(), m);
        let mp = Mapping::default();
        assert_eq!(extract(&ff, &mp), extract(&fm, &mp), "{line}");
    }

    #[test]
    fn the_fast_path_reads_the_common_lines() {
        let l = r#"{"type":"cycle","name":"md_poll","duration_ms":6012.25,"target_ms":1500,"ts":"2025-10-26T18:06:33.120Z"}"#;
        let fast = scan_fast(l).unwrap_or_else(|| panic!("fast path refused {l}"));
        let f = Fields::Fast(&fast);
        assert_eq!(f.get("duration_ms"), Some(Val::Num(6012.25)));
        let mp = Mapping::default();
        let line = extract(&f, &mp).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(line.ts, 1_761_501_993_120);
        assert!(matches!(
            line.rec,
            Rec::Cycle {
                duration_ms: 6012.25,
                target_ms: Some(1500.0),
                ..
            }
        ));
        agree(l);
    }

    #[test]
    fn odd_lines_agree_or_take_the_full_path() {
        let lines = [
            r#"{}"#,
            r#" { "a" : 1 , "b" : [1, {"c": [true, false, null]}] } "#,
            r#"{"type":"cycle","duration_ms":-0,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":-0.0,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":0.1,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":123456789012345,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":1234567890123456,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":1e3,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":1e999,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":01,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":1.,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":.5,"ts":1}"#,
            r#"{"type":"cycle","duration_ms":"5","ts":1}"#,
            r#"{"type":"cycle","duration_ms":5,"duration_ms":7,"ts":1}"#,
            r#"{"type":"log","message":"a\"b","ts":1}"#,
            r#"{"type":"log","message":"tab	in","ts":1}"#,
            r#"{"type":"log","message":"é ✓","ts":"2025-01-01T00:00:00Z"}"#,
            r#"{"type":"log","ts":1,}"#,
            r#"{"type":"log","ts":1} x"#,
            r#"{"type":"log","ts":1"#,
            r#"[1,2]"#,
            r#"{"type":"heartbeat","ts":"2024-02-29T23:59:59.999+01:00"}"#,
            r#"{"type":"heartbeat","ts":"2023-02-29T23:59:59Z"}"#,
            r#"{"type":"heartbeat","ts":"2016-12-31T23:59:60Z"}"#,
            r#"{"type":"heartbeat","ts":"1969-12-31T23:59:59Z"}"#,
            r#"{"type":"heartbeat","ts":"2024-01-01t00:00:00z"}"#,
            r#"{"type":"heartbeat","ts":"2024-01-01T00:00:00.1234567891Z"}"#,
            r#"{"type":"heartbeat","ts":"2024-01-01 00:00:00"}"#,
            r#"{"type":"heartbeat","ts":1.5}"#,
            r#"{"type":"heartbeat","ts":-1}"#,
            r#"{"type":"heartbeat","ts":null}"#,
            r#"{"type":"heartbeat"}"#,
            r#"{"type":null,"ts":1}"#,
            r#"{"type":"","ts":1}"#,
            r#"{"type":"order","order_id":"o1","status":"cancelled","ts":1}"#,
            r#"{"type":"config","ts":1,"config":{"MD_POLL_MS":1500}}"#,
            r#"{"type":"trading_state","ts":1,"from":"ACTIVE","to":"HALTED","values":{"v":[1,2]}}"#,
            r#"{"type":"x","ts":1,"level":"ERROR","message":"KeyError: 'a'"}"#,
            r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"type":"x","ts":2}"#,
            r#"{"type":"metric","name":"m","value":tru,"ts":1}"#,
            r#"{"type":"metric","name":"m","value":true,"ts":1}"#,
        ];
        for l in lines {
            agree(l);
        }
    }

    /// Mutations of valid lines (bytes dropped, swapped and replaced by JSON's special
    /// characters), deterministic.
    #[test]
    fn fuzzed_lines_agree() {
        let seeds = [
            r#"{"type":"cycle","name":"md_poll","duration_ms":6012.25,"target_ms":1500,"ts":"2025-10-26T18:06:33.120Z","source":"bot"}"#,
            r#"{"type":"log","level":"error","message":"Log cleanup error: expected str, not NoneType","error_kind":"TypeError","ts":1761501993120,"stack":"x"}"#,
            r#"{"type":"fill","pair":"BTC/USD","side":"buy","qty":0.01,"price":65000.5,"realized_pnl":-1.25,"order_id":"o1","ts":1}"#,
            r#"{"type":"config","ts":"2025-10-26T18:06:21Z","config":{"MD_POLL_MS":1500,"list":[1,2.5,"x"],"n":null}}"#,
        ];
        let alphabet = b"{}[]\":,.-+eE0123456789 \\tnul";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            for _ in 0..4000 {
                let mut b = seed.as_bytes().to_vec();
                for _ in 0..(1 + next() % 3) {
                    let at = (next() as usize) % b.len();
                    match next() % 3 {
                        0 => {
                            b.remove(at);
                        }
                        1 => b[at] = alphabet[(next() as usize) % alphabet.len()],
                        _ => b.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                if let Ok(s) = std::str::from_utf8(&b) {
                    agree(s);
                }
            }
        }
    }

    #[test]
    fn fast_times_agree_with_chrono() {
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let y = 1960 + (x >> 33) % 120;
            let mo = 1 + (x >> 20) % 13;
            let d = 1 + (x >> 10) % 31;
            let h = (x >> 5) % 25;
            let frac = match x % 4 {
                0 => String::new(),
                1 => ".5".into(),
                2 => format!(".{:03}", x % 1000),
                _ => format!(".{:09}", x % 1_000_000_000),
            };
            let off = match (x >> 40) % 3 {
                0 => "Z".to_string(),
                1 => format!("+{:02}:{:02}", (x >> 45) % 25, (x >> 50) % 61),
                _ => "-05:30".into(),
            };
            let s = format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{:02}:{:02}{frac}{off}",
                (x >> 3) % 61,
                (x >> 7) % 61
            );
            let fast = fast_rfc3339(s.as_bytes());
            let slow = crate::event::parse_rfc3339_ms(&s).ok();
            if let Some(f) = fast {
                assert_eq!(Some(f), slow, "{s}");
            }
        }
    }
}
