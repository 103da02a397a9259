//! The inbound event schema (PRODUCT.md "Events in") and its validation.
//!
//! Trading processes send one JSON object per event, batches as NDJSON. This module turns
//! one line into a typed [`InboundEvent`] or a located [`LineError`] (`line`, `field`,
//! `reason`), and a batch into `(valid events, errors)`. It never panics on input.
//!
//! # Common fields
//!
//! | field | rule |
//! |---|---|
//! | `type` | required, a non-empty string. A type not in the table below is accepted as [`EventKind::Other`] with the whole object kept, to be counted by the caller |
//! | `source` | optional string; the shell fills in the program or token name when absent |
//! | `ts` | optional: an RFC 3339 string (`2024-05-01T12:00:00.250Z`, any offset) or Unix milliseconds as a non-negative number (a fractional part, as Python's `time.time() * 1000` gives, is truncated). Stored as Unix ms. Freshness is never judged on it: the shell records the receive time |
//!
//! `null` counts as absent for every optional field. Fields not listed are ignored, so
//! producers can add their own. Numbers must be JSON numbers (not strings) and finite.
//!
//! # Per type
//!
//! | type | required | optional | checks |
//! |---|---|---|---|
//! | `tick` | `pair`, `price` | `bid`, `ask` | prices > 0 |
//! | `fill` | `pair`, `side`, `qty`, `price` | `realized_pnl`, `order_id` | `side` is `buy`\|`sell`; `qty` ≠ 0; `price` > 0 |
//! | `order` | `order_id`, `status` | `pair`, `reason` | `status` is `new`\|`filled`\|`canceled` (alias `cancelled`)\|`rejected`\|`failed` |
//! | `position` | `pair`, `qty` | — | `qty` signed (0 = flat) |
//! | `equity` | `equity` | — | finite (may be ≤ 0: a blown account must still be seen) |
//! | `api_error` | `code` | `venue`, `message`, `critical` (bool, default false) | — |
//! | `heartbeat` | — | — | — |
//! | `cycle` | `duration_ms` | `name`, `target_ms` | `duration_ms` ≥ 0, `target_ms` > 0 |
//! | `log` | — | `level`, `message`, `error_kind`, `stack` | strings |
//! | `metric` | `name`, `value` | — | — |
//!
//! Identifiers (`pair`, `name`, `code`, `order_id`, …) must be non-empty strings;
//! `order_id` may also be an integer (kept as its decimal string).

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unix milliseconds.
pub type Millis = u64;

/// Buy or sell (`fill.side`, `close_position.side`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `order.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    New,
    Filled,
    Canceled,
    Rejected,
    Failed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::New,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "new",
            OrderStatus::Filled => "filled",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Failed => "failed",
        }
    }

    /// Exact lowercase names, plus the British `cancelled`.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        if s == "cancelled" {
            return Some(OrderStatus::Canceled);
        }
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub pair: String,
    pub price: f64,
    pub bid: Option<f64>,
    pub ask: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    pub pair: String,
    pub side: Side,
    pub qty: f64,
    pub price: f64,
    pub realized_pnl: Option<f64>,
    pub order_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub order_id: String,
    pub pair: Option<String>,
    pub status: OrderStatus,
    pub reason: Option<String>,
}

/// A snapshot of the position in one pair (signed; 0 = flat).
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    pub pair: String,
    pub qty: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Equity {
    pub equity: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub venue: Option<String>,
    pub code: String,
    pub message: Option<String>,
    pub critical: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cycle {
    pub name: Option<String>,
    pub duration_ms: f64,
    pub target_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    pub level: Option<String>,
    pub message: Option<String>,
    pub error_kind: Option<String>,
    pub stack: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

/// The typed body of an event, by `type`.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    Tick(Tick),
    Fill(Fill),
    Order(Order),
    Position(Position),
    Equity(Equity),
    ApiError(ApiError),
    Heartbeat,
    Cycle(Cycle),
    Log(Log),
    Metric(Metric),
    /// A `type` this version does not know: kept whole, counted by the caller, not an error.
    Other {
        type_name: String,
        raw: Map<String, Value>,
    },
}

impl EventKind {
    /// The wire `type`.
    pub fn type_name(&self) -> &str {
        match self {
            EventKind::Tick(_) => "tick",
            EventKind::Fill(_) => "fill",
            EventKind::Order(_) => "order",
            EventKind::Position(_) => "position",
            EventKind::Equity(_) => "equity",
            EventKind::ApiError(_) => "api_error",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Cycle(_) => "cycle",
            EventKind::Log(_) => "log",
            EventKind::Metric(_) => "metric",
            EventKind::Other { type_name, .. } => type_name,
        }
    }
}

/// The known `type` values.
pub const KNOWN_TYPES: [&str; 10] = [
    "tick",
    "fill",
    "order",
    "position",
    "equity",
    "api_error",
    "heartbeat",
    "cycle",
    "log",
    "metric",
];

/// One validated inbound event.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    pub source: Option<String>,
    /// The producer's own timestamp, as Unix ms (never used for freshness).
    pub ts_ms: Option<Millis>,
    pub kind: EventKind,
}

impl InboundEvent {
    pub fn new(kind: EventKind) -> Self {
        InboundEvent {
            source: None,
            ts_ms: None,
            kind,
        }
    }

    pub fn type_name(&self) -> &str {
        self.kind.type_name()
    }

    pub fn is_other(&self) -> bool {
        matches!(self.kind, EventKind::Other { .. })
    }

    /// The normalised wire form (`ts` as Unix ms, `null`s dropped); an `Other` event is
    /// returned as it came, with `source` set if the shell filled it in.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let EventKind::Other { raw, .. } = &self.kind {
            m = raw.clone();
            if let Some(s) = &self.source {
                m.insert("source".into(), Value::from(s.as_str()));
            }
            return Value::Object(m);
        }
        m.insert("type".into(), Value::from(self.type_name()));
        if let Some(s) = &self.source {
            m.insert("source".into(), Value::from(s.as_str()));
        }
        if let Some(ts) = self.ts_ms {
            m.insert("ts".into(), Value::from(ts));
        }
        fn put<T: Into<Value>>(m: &mut Map<String, Value>, k: &str, v: Option<T>) {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        match &self.kind {
            EventKind::Tick(t) => {
                put(&mut m, "pair", Some(t.pair.as_str()));
                put(&mut m, "price", Some(t.price));
                put(&mut m, "bid", t.bid);
                put(&mut m, "ask", t.ask);
            }
            EventKind::Fill(f) => {
                put(&mut m, "pair", Some(f.pair.as_str()));
                put(&mut m, "side", Some(f.side.as_str()));
                put(&mut m, "qty", Some(f.qty));
                put(&mut m, "price", Some(f.price));
                put(&mut m, "realized_pnl", f.realized_pnl);
                put(&mut m, "order_id", f.order_id.as_deref());
            }
            EventKind::Order(o) => {
                put(&mut m, "order_id", Some(o.order_id.as_str()));
                put(&mut m, "pair", o.pair.as_deref());
                put(&mut m, "status", Some(o.status.as_str()));
                put(&mut m, "reason", o.reason.as_deref());
            }
            EventKind::Position(p) => {
                put(&mut m, "pair", Some(p.pair.as_str()));
                put(&mut m, "qty", Some(p.qty));
            }
            EventKind::Equity(e) => put(&mut m, "equity", Some(e.equity)),
            EventKind::ApiError(e) => {
                put(&mut m, "venue", e.venue.as_deref());
                put(&mut m, "code", Some(e.code.as_str()));
                put(&mut m, "message", e.message.as_deref());
                put(&mut m, "critical", Some(e.critical));
            }
            EventKind::Heartbeat => {}
            EventKind::Cycle(c) => {
                put(&mut m, "name", c.name.as_deref());
                put(&mut m, "duration_ms", Some(c.duration_ms));
                put(&mut m, "target_ms", c.target_ms);
            }
            EventKind::Log(l) => {
                put(&mut m, "level", l.level.as_deref());
                put(&mut m, "message", l.message.as_deref());
                put(&mut m, "error_kind", l.error_kind.as_deref());
                put(&mut m, "stack", l.stack.as_deref());
            }
            EventKind::Metric(x) => {
                put(&mut m, "name", Some(x.name.as_str()));
                put(&mut m, "value", Some(x.value));
            }
            EventKind::Other { .. } => {}
        }
        Value::Object(m)
    }
}

/// Why one event was refused, without its line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct FieldError {
    /// The top-level field at fault; `None` when the line as a whole is not a JSON object.
    pub field: Option<String>,
    pub reason: String,
}

impl FieldError {
    fn at(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: Some(field.to_owned()),
            reason: reason.into(),
        }
    }

    fn whole(reason: impl Into<String>) -> Self {
        FieldError {
            field: None,
            reason: reason.into(),
        }
    }
}

/// A refused line of a batch: `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}: {}{reason}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct LineError {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

impl FieldError {
    pub fn on_line(self, line: usize) -> LineError {
        LineError {
            line,
            field: self.field,
            reason: self.reason,
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Typed access to the fields of one event object.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The field, with `null` read as absent.
    fn get(&self, k: &str) -> Option<&'a Value> {
        match self.0.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn opt_str(&self, k: &str) -> Result<Option<String>, FieldError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(FieldError::at(
                k,
                format!("expected a string, got {}", json_kind(v)),
            )),
        }
    }

    /// A non-empty string identifier.
    fn opt_id(&self, k: &str) -> Result<Option<String>, FieldError> {
        match self.opt_str(k)? {
            Some(s) if s.trim().is_empty() => Err(FieldError::at(k, "must not be empty")),
            other => Ok(other),
        }
    }

    fn req_id(&self, k: &str) -> Result<String, FieldError> {
        self.opt_id(k)?
            .ok_or_else(|| FieldError::at(k, "missing (required)"))
    }

    /// A string or integer identifier (`order_id`).
    fn opt_str_or_int(&self, k: &str) -> Result<Option<String>, FieldError> {
        match self.get(k) {
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(Value::Number(_)) => Err(FieldError::at(
                k,
                "expected a string or an integer, got a fractional number",
            )),
            _ => self.opt_id(k),
        }
    }

    fn opt_num(&self, k: &str) -> Result<Option<f64>, FieldError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(FieldError::at(k, "must be a finite number")),
            },
            Some(v) => Err(FieldError::at(
                k,
                format!("expected a number, got {}", json_kind(v)),
            )),
        }
    }

    fn req_num(&self, k: &str) -> Result<f64, FieldError> {
        self.opt_num(k)?
            .ok_or_else(|| FieldError::at(k, "missing (required)"))
    }

    fn opt_price(&self, k: &str) -> Result<Option<f64>, FieldError> {
        match self.opt_num(k)? {
            Some(x) if x <= 0.0 => Err(FieldError::at(
                k,
                format!("must be greater than 0, got {x}"),
            )),
            other => Ok(other),
        }
    }

    fn req_price(&self, k: &str) -> Result<f64, FieldError> {
        self.opt_price(k)?
            .ok_or_else(|| FieldError::at(k, "missing (required)"))
    }

    fn opt_bool(&self, k: &str) -> Result<Option<bool>, FieldError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(FieldError::at(
                k,
                format!("expected true or false, got {}", json_kind(v)),
            )),
        }
    }

    fn ts(&self) -> Result<Option<Millis>, FieldError> {
        const HOW: &str =
            "expected an RFC 3339 string (e.g. 2024-05-01T12:00:00Z) or Unix milliseconds";
        match self.get("ts") {
            None => Ok(None),
            Some(Value::String(s)) => parse_rfc3339_ms(s)
                .map(Some)
                .map_err(|e| FieldError::at("ts", format!("{HOW}: {e}"))),
            Some(Value::Number(n)) => {
                if let Some(u) = n.as_u64() {
                    Ok(Some(u))
                } else {
                    match n.as_f64() {
                        Some(x) if (0.0..1.8e19).contains(&x) => Ok(Some(x as u64)),
                        Some(x) if x < 0.0 => Err(FieldError::at("ts", "must not be negative")),
                        _ => Err(FieldError::at("ts", "out of range")),
                    }
                }
            }
            Some(v) => Err(FieldError::at("ts", format!("{HOW}, got {}", json_kind(v)))),
        }
    }
}

/// RFC 3339 → Unix milliseconds (instants before 1970 are refused).
pub fn parse_rfc3339_ms(s: &str) -> Result<Millis, String> {
    let dt = DateTime::parse_from_rfc3339(s.trim()).map_err(|e| e.to_string())?;
    u64::try_from(dt.timestamp_millis()).map_err(|_| "before 1970-01-01".to_owned())
}

/// Validates one decoded JSON value as an event.
pub fn event_from_value(v: Value) -> Result<InboundEvent, FieldError> {
    let Value::Object(obj) = v else {
        return Err(FieldError::whole(format!(
            "expected a JSON object, got {}",
            json_kind(&v)
        )));
    };
    let f = Fields(&obj);
    let type_name = match obj.get("type") {
        None | Some(Value::Null) => return Err(FieldError::at("type", "missing (required)")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(FieldError::at("type", "must not be empty"));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(v) => {
            return Err(FieldError::at(
                "type",
                format!("expected a string, got {}", json_kind(v)),
            ));
        }
    };
    let source = f.opt_id("source")?;
    let ts_ms = f.ts()?;
    let kind = match type_name {
        "tick" => EventKind::Tick(Tick {
            pair: f.req_id("pair")?,
            price: f.req_price("price")?,
            bid: f.opt_price("bid")?,
            ask: f.opt_price("ask")?,
        }),
        "fill" => {
            let pair = f.req_id("pair")?;
            let side = match f.opt_str("side")? {
                None => return Err(FieldError::at("side", "missing (required)")),
                Some(s) => Side::parse(&s).ok_or_else(|| {
                    FieldError::at("side", format!("expected buy or sell, got {s:?}"))
                })?,
            };
            let qty = f.req_num("qty")?;
            if qty == 0.0 {
                return Err(FieldError::at("qty", "must not be 0"));
            }
            EventKind::Fill(Fill {
                pair,
                side,
                qty,
                price: f.req_price("price")?,
                realized_pnl: f.opt_num("realized_pnl")?,
                order_id: f.opt_str_or_int("order_id")?,
            })
        }
        "order" => {
            let order_id = f
                .opt_str_or_int("order_id")?
                .ok_or_else(|| FieldError::at("order_id", "missing (required)"))?;
            let pair = f.opt_id("pair")?;
            let status = match f.opt_str("status")? {
                None => return Err(FieldError::at("status", "missing (required)")),
                Some(s) => OrderStatus::parse(&s).ok_or_else(|| {
                    FieldError::at(
                        "status",
                        format!(
                            "expected one of new, filled, canceled, rejected, failed; got {s:?}"
                        ),
                    )
                })?,
            };
            EventKind::Order(Order {
                order_id,
                pair,
                status,
                reason: f.opt_str("reason")?,
            })
        }
        "position" => EventKind::Position(Position {
            pair: f.req_id("pair")?,
            qty: f.req_num("qty")?,
        }),
        "equity" => EventKind::Equity(Equity {
            equity: f.req_num("equity")?,
        }),
        "api_error" => EventKind::ApiError(ApiError {
            venue: f.opt_id("venue")?,
            code: f.req_id("code")?,
            message: f.opt_str("message")?,
            critical: f.opt_bool("critical")?.unwrap_or(false),
        }),
        "heartbeat" => EventKind::Heartbeat,
        "cycle" => {
            let name = f.opt_id("name")?;
            let duration_ms = f.req_num("duration_ms")?;
            if duration_ms < 0.0 {
                return Err(FieldError::at(
                    "duration_ms",
                    format!("must not be negative, got {duration_ms}"),
                ));
            }
            EventKind::Cycle(Cycle {
                name,
                duration_ms,
                target_ms: f.opt_price("target_ms")?,
            })
        }
        "log" => EventKind::Log(Log {
            level: f.opt_str("level")?,
            message: f.opt_str("message")?,
            error_kind: f.opt_str("error_kind")?,
            stack: f.opt_str("stack")?,
        }),
        "metric" => EventKind::Metric(Metric {
            name: f.req_id("name")?,
            value: f.req_num("value")?,
        }),
        other => EventKind::Other {
            type_name: other.to_owned(),
            raw: obj.clone(),
        },
    };
    Ok(InboundEvent {
        source,
        ts_ms,
        kind,
    })
}

/// Parses and validates one event (one JSON object, possibly spanning lines).
pub fn parse_event(text: &str) -> Result<InboundEvent, FieldError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| FieldError::whole(format!("invalid JSON: {e}")))?;
    event_from_value(v)
}

/// [`parse_event`] for line `line` (1-based) of a stream.
pub fn parse_line(line: usize, text: &str) -> Result<InboundEvent, LineError> {
    parse_event(text).map_err(|e| e.on_line(line))
}

/// Whether a line carries nothing (blank lines of NDJSON are skipped, not errors).
fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Parses an NDJSON batch.
///
/// **The batch rule:** every line is judged on its own. Valid lines are accepted (returned
/// with their 1-based line numbers, in order); invalid lines are reported as [`LineError`]s
/// with their line numbers and never stop the rest of the batch. Blank lines are skipped.
/// A trailing `\r` (CRLF files) is ignored. So a batch with one bad line in the middle
/// delivers all the others, and the caller answers with the list of refused lines (HTTP 400
/// when that list is not empty, the accepted count in the body).
pub fn parse_batch(text: &str) -> (Vec<(usize, InboundEvent)>, Vec<LineError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if is_blank(line) {
            continue;
        }
        match parse_line(i + 1, line) {
            Ok(ev) => ok.push((i + 1, ev)),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// An HTTP body: NDJSON, or one JSON object spread over several lines.
///
/// Read as NDJSON ([`parse_batch`]) first. Only when no line of it is valid and the whole
/// body is one JSON object is it read as that single event (reported at the line where it
/// starts); otherwise the NDJSON result stands.
pub fn parse_body(text: &str) -> (Vec<(usize, InboundEvent)>, Vec<LineError>) {
    let (ok, errors) = parse_batch(text);
    if !ok.is_empty() || errors.len() < 2 {
        return (ok, errors);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => {
            let first = text
                .split('\n')
                .position(|l| !is_blank(l))
                .map_or(1, |i| i + 1);
            match event_from_value(v) {
                Ok(ev) => (vec![(first, ev)], Vec::new()),
                Err(e) => (Vec::new(), vec![e.on_line(first)]),
            }
        }
        _ => (ok, errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> InboundEvent {
        match parse_event(text) {
            Ok(e) => e,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn err(text: &str) -> (Option<String>, String) {
        match parse_event(text) {
            Ok(e) => panic!("{text} was accepted as {e:?}"),
            Err(e) => (e.field, e.reason),
        }
    }

    #[test]
    fn every_known_type_parses() {
        let cases: &[(&str, EventKind)] = &[
            (
                r#"{"type":"tick","pair":"BTC/USD","price":37500.5,"bid":37500,"ask":37501}"#,
                EventKind::Tick(Tick {
                    pair: "BTC/USD".into(),
                    price: 37500.5,
                    bid: Some(37500.0),
                    ask: Some(37501.0),
                }),
            ),
            (
                r#"{"type":"fill","pair":"ETH/USD","side":"sell","qty":1.5,"price":2000,"realized_pnl":-12.5,"order_id":"O1"}"#,
                EventKind::Fill(Fill {
                    pair: "ETH/USD".into(),
                    side: Side::Sell,
                    qty: 1.5,
                    price: 2000.0,
                    realized_pnl: Some(-12.5),
                    order_id: Some("O1".into()),
                }),
            ),
            (
                r#"{"type":"order","order_id":42,"pair":"BTC/USD","status":"cancelled","reason":"user"}"#,
                EventKind::Order(Order {
                    order_id: "42".into(),
                    pair: Some("BTC/USD".into()),
                    status: OrderStatus::Canceled,
                    reason: Some("user".into()),
                }),
            ),
            (
                r#"{"type":"position","pair":"BTC/USD","qty":-0.25}"#,
                EventKind::Position(Position {
                    pair: "BTC/USD".into(),
                    qty: -0.25,
                }),
            ),
            (
                r#"{"type":"position","pair":"BTC/USD","qty":0}"#,
                EventKind::Position(Position {
                    pair: "BTC/USD".into(),
                    qty: 0.0,
                }),
            ),
            (
                r#"{"type":"equity","equity":10000}"#,
                EventKind::Equity(Equity { equity: 10000.0 }),
            ),
            (
                r#"{"type":"api_error","venue":"kraken","code":"EService:Unavailable","message":"x"}"#,
                EventKind::ApiError(ApiError {
                    venue: Some("kraken".into()),
                    code: "EService:Unavailable".into(),
                    message: Some("x".into()),
                    critical: false,
                }),
            ),
            (
                r#"{"type":"api_error","code":"EAPI:Invalid key","critical":true}"#,
                EventKind::ApiError(ApiError {
                    venue: None,
                    code: "EAPI:Invalid key".into(),
                    message: None,
                    critical: true,
                }),
            ),
            (r#"{"type":"heartbeat"}"#, EventKind::Heartbeat),
            (
                r#"{"type":"cycle","name":"main","duration_ms":12.5,"target_ms":50}"#,
                EventKind::Cycle(Cycle {
                    name: Some("main".into()),
                    duration_ms: 12.5,
                    target_ms: Some(50.0),
                }),
            ),
            (
                r#"{"type":"log","level":"error","message":"boom","error_kind":"KeyError","stack":"..."}"#,
                EventKind::Log(Log {
                    level: Some("error".into()),
                    message: Some("boom".into()),
                    error_kind: Some("KeyError".into()),
                    stack: Some("...".into()),
                }),
            ),
            (
                r#"{"type":"metric","name":"queue_depth","value":3}"#,
                EventKind::Metric(Metric {
                    name: "queue_depth".into(),
                    value: 3.0,
                }),
            ),
        ];
        for (text, want) in cases {
            let ev = ok(text);
            assert_eq!(&ev.kind, want, "{text}");
            assert!(KNOWN_TYPES.contains(&ev.type_name()));
            // the normalised form parses back to the same event
            let again = ok(&ev.to_json().to_string());
            assert_eq!(again, ev, "{text}");
        }
    }

    #[test]
    fn common_fields() {
        let ev = ok(r#"{"type":"heartbeat","source":"bot-1","ts":"2024-05-01T12:00:00.250Z"}"#);
        assert_eq!(ev.source.as_deref(), Some("bot-1"));
        assert_eq!(ev.ts_ms, Some(1_714_564_800_250));
        let ev = ok(r#"{"type":"heartbeat","ts":"2024-05-01T14:00:00+02:00"}"#);
        assert_eq!(ev.ts_ms, Some(1_714_564_800_000));
        let ev = ok(r#"{"type":"heartbeat","ts":1714564800250}"#);
        assert_eq!(ev.ts_ms, Some(1_714_564_800_250));
        let ev = ok(r#"{"type":"heartbeat","ts":1714564800250.75}"#);
        assert_eq!(ev.ts_ms, Some(1_714_564_800_250), "fraction truncated");
        let ev = ok(r#"{"type":"heartbeat","ts":null,"source":null,"extra":[1,2]}"#);
        assert_eq!((ev.source, ev.ts_ms), (None, None));
    }

    #[test]
    fn unknown_types_are_kept_whole() {
        let ev = ok(r#"{"type":"funding","rate":0.01,"source":"b"}"#);
        let EventKind::Other { type_name, raw } = &ev.kind else {
            panic!("{ev:?}")
        };
        assert_eq!(type_name, "funding");
        assert_eq!(raw.get("rate"), Some(&Value::from(0.01)));
        assert!(ev.is_other());
        assert_eq!(ev.type_name(), "funding");
        assert_eq!(ev.source.as_deref(), Some("b"));
        assert_eq!(ev.to_json()["rate"], Value::from(0.01));
    }

    #[test]
    fn located_errors() {
        // (line, field, reason fragment)
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                r#"{"type":"tick","pair":"X","price":0}"#,
                Some("price"),
                "greater than 0",
            ),
            (
                r#"{"type":"tick","pair":"X","price":-1}"#,
                Some("price"),
                "greater than 0",
            ),
            (r#"{"type":"tick","pair":"X"}"#, Some("price"), "missing"),
            (r#"{"type":"tick","price":1}"#, Some("pair"), "missing"),
            (
                r#"{"type":"tick","pair":"","price":1}"#,
                Some("pair"),
                "empty",
            ),
            (
                r#"{"type":"tick","pair":"X","price":"1.5"}"#,
                Some("price"),
                "expected a number, got string",
            ),
            (
                r#"{"type":"tick","pair":"X","price":1,"bid":0}"#,
                Some("bid"),
                "greater than 0",
            ),
            (
                r#"{"type":"tick","pair":7,"price":1}"#,
                Some("pair"),
                "expected a string, got number",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"hold","qty":1,"price":1}"#,
                Some("side"),
                "expected buy or sell",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"BUY","qty":1,"price":1}"#,
                Some("side"),
                "expected buy or sell",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"buy","qty":0,"price":1}"#,
                Some("qty"),
                "must not be 0",
            ),
            (
                r#"{"type":"fill","pair":"X","qty":1,"price":1}"#,
                Some("side"),
                "missing",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"buy","qty":1,"price":0}"#,
                Some("price"),
                "greater than 0",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"buy","qty":1,"price":1,"realized_pnl":"1"}"#,
                Some("realized_pnl"),
                "expected a number",
            ),
            (
                r#"{"type":"fill","pair":"X","side":"buy","qty":1,"price":1,"order_id":1.5}"#,
                Some("order_id"),
                "fractional",
            ),
            (
                r#"{"type":"order","order_id":"1","status":"open"}"#,
                Some("status"),
                "expected one of new, filled",
            ),
            (
                r#"{"type":"order","status":"new"}"#,
                Some("order_id"),
                "missing",
            ),
            (r#"{"type":"position","pair":"X"}"#, Some("qty"), "missing"),
            (r#"{"type":"equity"}"#, Some("equity"), "missing"),
            (
                r#"{"type":"api_error","venue":"kraken"}"#,
                Some("code"),
                "missing",
            ),
            (
                r#"{"type":"api_error","code":"E","critical":"yes"}"#,
                Some("critical"),
                "expected true or false",
            ),
            (
                r#"{"type":"cycle","duration_ms":-1}"#,
                Some("duration_ms"),
                "negative",
            ),
            (
                r#"{"type":"cycle","duration_ms":1,"target_ms":0}"#,
                Some("target_ms"),
                "greater than 0",
            ),
            (r#"{"type":"metric","name":"x"}"#, Some("value"), "missing"),
            (
                r#"{"type":"log","message":5}"#,
                Some("message"),
                "expected a string",
            ),
            (
                r#"{"type":"heartbeat","ts":"yesterday"}"#,
                Some("ts"),
                "RFC 3339",
            ),
            (r#"{"type":"heartbeat","ts":-5}"#, Some("ts"), "negative"),
            (
                r#"{"type":"heartbeat","ts":true}"#,
                Some("ts"),
                "got boolean",
            ),
            (
                r#"{"type":"heartbeat","ts":"1969-12-31T23:59:59Z"}"#,
                Some("ts"),
                "before 1970",
            ),
            (
                r#"{"type":"heartbeat","source":3}"#,
                Some("source"),
                "expected a string",
            ),
            (r#"{"pair":"X"}"#, Some("type"), "missing"),
            (r#"{"type":""}"#, Some("type"), "empty"),
            (
                r#"{"type":3}"#,
                Some("type"),
                "expected a string, got number",
            ),
            (r#"[1,2]"#, None, "expected a JSON object, got array"),
            (r#"{"type":"tick","#, None, "invalid JSON"),
            (
                r#"{"type":"tick","pair":"X","price":1e999}"#,
                None,
                "invalid JSON",
            ),
        ];
        for (text, field, frag) in cases {
            let (f, reason) = err(text);
            assert_eq!(f.as_deref(), *field, "{text}: {reason}");
            assert!(reason.contains(frag), "{text}: {reason:?} lacks {frag:?}");
        }
    }

    #[test]
    fn batch_keeps_valid_lines_and_locates_bad_ones() {
        let text = concat!(
            "{\"type\":\"heartbeat\"}\n",
            "\n",
            "{\"type\":\"tick\",\"pair\":\"X\",\"price\":0}\r\n",
            "not json\n",
            "{\"type\":\"equity\",\"equity\":5}\r\n",
            "{\"type\":\"mystery\"}\n",
            "   \n",
        );
        let (ok, errors) = parse_batch(text);
        let lines: Vec<usize> = ok.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 5, 6]);
        assert!(ok[2].1.is_other());
        assert_eq!(
            errors
                .iter()
                .map(|e| (e.line, e.field.as_deref()))
                .collect::<Vec<_>>(),
            vec![(3, Some("price")), (4, None)]
        );
        assert_eq!(
            errors[0].to_string(),
            "line 3: price: must be greater than 0, got 0"
        );
        assert!(errors[1].to_string().starts_with("line 4: invalid JSON"));
        let json = serde_json::to_value(&errors[0]).unwrap();
        assert_eq!(json["line"], 3);
        assert_eq!(json["field"], "price");
        let json = serde_json::to_value(&errors[1]).unwrap();
        assert!(json.get("field").is_none());
    }

    #[test]
    fn batch_edge_cases() {
        assert_eq!(parse_batch(""), (vec![], vec![]));
        assert_eq!(parse_batch("\n\n"), (vec![], vec![]));
        let (ok, errors) = parse_batch("{\"type\":\"heartbeat\"}");
        assert_eq!(
            (ok.len(), errors.len()),
            (1, 0),
            "no trailing newline needed"
        );
    }

    #[test]
    fn body_may_be_one_pretty_printed_object() {
        let body = "\n{\n  \"type\": \"equity\",\n  \"equity\": 10\n}\n";
        let (ok, errors) = parse_body(body);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, 2);
        let body = "{\n  \"type\": \"equity\"\n}";
        let (ok, errors) = parse_body(body);
        assert!(ok.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field.as_deref(), Some("equity"));
        // NDJSON with bad lines stays NDJSON
        let (ok, errors) = parse_body("{\"type\":\"heartbeat\"}\nbad\nbad");
        assert_eq!((ok.len(), errors.len()), (1, 2));
        let (ok, errors) = parse_body("bad\nbad");
        assert_eq!((ok.len(), errors.len()), (0, 2));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2023-07-06T18:52:00Z"),
            Ok(1_688_669_520_000)
        );
        assert!(parse_rfc3339_ms("2023-07-06 18:52").is_err());
        assert!(parse_rfc3339_ms("2023-13-06T18:52:00Z").is_err());
    }
}
