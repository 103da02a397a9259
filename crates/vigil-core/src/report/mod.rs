//! The session report (`vigil analyze`, `GET /api/report`): pure statistics over events.
//!
//! [`Acc`] is the one-pass state. The shell feeds it chunks of JSONL ([`Acc::feed_chunk`]) or
//! single objects ([`Acc::feed_map`]); chunks can be read by several threads, each into its
//! own `Acc`, and [`Acc::merge_after`] joins two states of consecutive stretches of input
//! (heartbeat gaps across the seam, "last" values, line numbers). [`Acc::finish`] turns it
//! into the [`Report`], whose JSON form is the documented schema (docs/analyze.md).
//!
//! Memory is bounded: per cycle series [`series::EXACT_CAP`] samples then a sketch; at most
//! [`MAX_ERROR_GROUPS`] error groups (the rest counted in `errors_other`), [`MAX_TRANSITIONS`]
//! halts/resumes, [`BAD_LINE_EXAMPLES`] located bad lines (all counted), one bin per minute
//! for the timeline.

pub mod findings;
pub mod scan;
pub mod series;
pub mod template;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::Millis;
use scan::{Fields, Level, Line, Mapping, Rec};
use series::Series;

/// Default bucket edges (ms) of the cycle-duration distribution; the last bucket is "above".
pub const DEFAULT_BUCKETS_MS: [f64; 12] = [
    10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 7000.0, 10_000.0, 30_000.0, 60_000.0,
];
/// Located bad lines kept for the report (all are counted).
pub const BAD_LINE_EXAMPLES: usize = 10;
/// Distinct (level, kind, template) groups kept; further ones are only counted.
pub const MAX_ERROR_GROUPS: usize = 10_000;
/// Trading-state transitions kept.
pub const MAX_TRANSITIONS: usize = 10_000;
/// Largest heartbeat gaps kept per source for the timeline.
const TOP_GAPS: usize = 32;
/// Heartbeat timeout when nothing else gives one and a source has fewer than two beats (s).
pub const DEFAULT_HEARTBEAT_TIMEOUT_S: f64 = 60.0;
/// The derived default: this many times the source's median interval (at least 1 s).
pub const HEARTBEAT_MEDIAN_FACTOR: f64 = 3.0;

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Bucket edges in ms, ascending; empty = [`DEFAULT_BUCKETS_MS`].
    pub buckets_ms: Vec<f64>,
    /// `--heartbeat-timeout S` for every source.
    pub heartbeat_timeout_s: Option<f64>,
    /// `--heartbeat-timeout SOURCE=S`.
    pub heartbeat_timeouts: BTreeMap<String, f64>,
    /// `--expect-heartbeat SOURCE`.
    pub expect_heartbeat: Vec<String>,
    /// Only events at or after / before these times (ms).
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

impl Options {
    fn edges(&self) -> Vec<f64> {
        if self.buckets_ms.is_empty() {
            DEFAULT_BUCKETS_MS.to_vec()
        } else {
            self.buckets_ms.clone()
        }
    }
}

/// Where a chunk comes from: the input's label (file name) and the default `source`.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub input: usize,
    pub default_source: &'a str,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BadLine {
    #[serde(skip)]
    pub input: usize,
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
struct CycleAcc {
    target_ms: Option<f64>,
    series: Series,
    /// Durations of cycles that named no target (judged at the end against a known one).
    untargeted: Series,
    overruns: u64,
    buckets: Vec<u64>,
}

#[derive(Clone, Debug, Default)]
struct BeatAcc {
    count: u64,
    first: Millis,
    last: Millis,
    gaps: Series,
    /// (gap ms, gap start) — the largest ones.
    top: Vec<(Millis, Millis)>,
    backwards: u64,
}

impl BeatAcc {
    fn gap(&mut self, from: Millis, to: Millis) {
        if to < from {
            self.backwards += 1;
            self.gaps.push(0.0);
            return;
        }
        let g = to - from;
        self.gaps.push(g as f64);
        if self.top.len() < TOP_GAPS {
            self.top.push((g, from));
        } else if let Some(min) = self.top.iter_mut().min()
            && g > min.0
        {
            *min = (g, from);
        }
    }
    fn beat(&mut self, ts: Millis) {
        if self.count == 0 {
            self.first = ts;
        } else {
            self.gap(self.last, ts);
        }
        self.last = self.last.max(ts);
        if self.count == 0 {
            self.last = ts;
        }
        self.count += 1;
    }
    fn merge_after(&mut self, later: BeatAcc) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = later;
            return;
        }
        self.gap(self.last, later.first);
        self.gaps.merge(later.gaps);
        for t in later.top {
            if self.top.len() < TOP_GAPS {
                self.top.push(t);
            } else if let Some(min) = self.top.iter_mut().min()
                && t > *min
            {
                *min = t;
            }
        }
        self.count += later.count;
        self.backwards += later.backwards;
        self.last = self.last.max(later.last);
    }
}

#[derive(Clone, Debug)]
struct ErrAcc {
    count: u64,
    first: Millis,
    last: Millis,
    example: String,
    stack: Option<String>,
    source: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct TransitionRec {
    ts: Millis,
    from: Option<String>,
    to: String,
    reason: Option<String>,
    source: Option<String>,
}

/// The one-pass state.
#[derive(Clone, Debug)]
pub struct Acc {
    edges: Vec<f64>,
    since: Option<Millis>,
    until: Option<Millis>,
    lines: u64,
    blank: u64,
    events: u64,
    bad: u64,
    filtered: u64,
    bad_examples: Vec<BadLine>,
    start: Option<Millis>,
    end: Option<Millis>,
    session_id: Option<String>,
    run_id: Option<String>,
    by_type: BTreeMap<String, u64>,
    cycles: BTreeMap<String, CycleAcc>,
    beats: BTreeMap<String, BeatAcc>,
    errors: HashMap<(Level, String, String), ErrAcc>,
    errors_other: u64,
    levels: BTreeMap<Level, u64>,
    orders: BTreeMap<String, u64>,
    fills: u64,
    pnl: f64,
    pnl_fills: u64,
    positions: BTreeMap<String, f64>,
    transitions: Vec<TransitionRec>,
    config: Option<(Millis, Map<String, Value>)>,
    /// minute → [overruns, errors, warnings]
    timeline: BTreeMap<u64, [u64; 3]>,
}

impl Acc {
    pub fn new(opts: &Options) -> Acc {
        Acc {
            edges: opts.edges(),
            since: opts.since,
            until: opts.until,
            lines: 0,
            blank: 0,
            events: 0,
            bad: 0,
            filtered: 0,
            bad_examples: Vec::new(),
            start: None,
            end: None,
            session_id: None,
            run_id: None,
            by_type: BTreeMap::new(),
            cycles: BTreeMap::new(),
            beats: BTreeMap::new(),
            errors: HashMap::new(),
            errors_other: 0,
            levels: BTreeMap::new(),
            orders: BTreeMap::new(),
            fills: 0,
            pnl: 0.0,
            pnl_fills: 0,
            positions: BTreeMap::new(),
            transitions: Vec::new(),
            config: None,
            timeline: BTreeMap::new(),
        }
    }

    /// Lines read so far (for the caller's progress and for locating bad input).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Count a line that could not be read at all (e.g. a truncated gzip member) at the
    /// current position.
    pub fn bad_at_end(&mut self, input: usize, reason: String) {
        self.lines += 1;
        self.note_bad(input, self.lines, reason);
    }

    fn note_bad(&mut self, input: usize, line: u64, reason: String) {
        self.bad += 1;
        if self.bad_examples.len() < BAD_LINE_EXAMPLES {
            self.bad_examples.push(BadLine {
                input,
                file: String::new(),
                line,
                reason,
            });
        }
    }

    /// Feed whole lines (`\n`-separated; a last line without `\n` counts too).
    pub fn feed_chunk(&mut self, chunk: &[u8], origin: Origin<'_>, m: &Mapping) {
        // One UTF-8 check for the chunk; only a chunk that fails is checked line by line.
        let mut ff = scan::FastFields::default();
        match std::str::from_utf8(chunk) {
            Ok(text) => {
                let mut rest = text;
                while !rest.is_empty() {
                    let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
                        Some(i) => (&rest[..i], &rest[i + 1..]),
                        None => (rest, &rest[rest.len()..]),
                    };
                    rest = next;
                    self.lines += 1;
                    self.feed_text(line, origin, m, &mut ff);
                }
            }
            Err(_) => {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (line, next) = match memchr::memchr(b'\n', rest) {
                        Some(i) => (&rest[..i], &rest[i + 1..]),
                        None => (rest, &rest[rest.len()..]),
                    };
                    rest = next;
                    self.lines += 1;
                    match std::str::from_utf8(line) {
                        Ok(text) => self.feed_text(text, origin, m, &mut ff),
                        Err(_) => self.note_bad(origin.input, self.lines, "not UTF-8".into()),
                    }
                }
            }
        }
    }

    pub fn feed_line(&mut self, raw: &[u8], origin: Origin<'_>, m: &Mapping) {
        self.feed_chunk(raw, origin, m);
    }

    /// One line (already counted in `self.lines`).
    fn feed_text<'a>(
        &mut self,
        text: &'a str,
        origin: Origin<'_>,
        m: &Mapping,
        ff: &mut scan::FastFields<'a>,
    ) {
        let lineno = self.lines;
        if text.bytes().all(|b| b.is_ascii_whitespace()) {
            self.blank += 1;
            return;
        }
        let ids = self.session_id.is_none() || self.run_id.is_none();
        let result = if scan::scan_fast_into(text, ff) {
            scan::extract_with(&Fields::Fast(ff), m, ids).map(|l| self.feed(l, origin))
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => {
                    scan::extract(&Fields::Full(&map), m).map(|l| self.feed(l, origin))
                }
                Ok(other) => Err(format!(
                    "expected a JSON object, got {}",
                    match other {
                        Value::Array(_) => "an array",
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        Value::Bool(_) => "a boolean",
                        _ => "null",
                    }
                )),
                Err(e) => Err(format!("not JSON: {e}")),
            }
        };
        if let Err(reason) = result {
            self.note_bad(origin.input, lineno, reason);
        }
    }

    /// Feed one already-decoded object (the store, a daemon's `/api/events`).
    pub fn feed_map(&mut self, map: &Map<String, Value>, origin: Origin<'_>, m: &Mapping) {
        self.lines += 1;
        let lineno = self.lines;
        match scan::extract(&Fields::Full(map), m) {
            Ok(l) => self.feed(l, origin),
            Err(reason) => self.note_bad(origin.input, lineno, reason),
        }
    }

    fn minute(&mut self, ts: Millis) -> &mut [u64; 3] {
        self.timeline.entry(ts / 60_000).or_default()
    }

    fn feed(&mut self, l: Line<'_>, origin: Origin<'_>) {
        if self.since.is_some_and(|s| l.ts < s) || self.until.is_some_and(|u| l.ts >= u) {
            self.filtered += 1;
            return;
        }
        self.events += 1;
        self.start = Some(self.start.map_or(l.ts, |s| s.min(l.ts)));
        self.end = Some(self.end.map_or(l.ts, |e| e.max(l.ts)));
        if self.session_id.is_none() {
            self.session_id = l.session.map(str::to_owned);
        }
        if self.run_id.is_none() {
            self.run_id = l.run.map(str::to_owned);
        }
        match self.by_type.get_mut(l.type_name) {
            Some(n) => *n += 1,
            None => {
                self.by_type.insert(l.type_name.to_owned(), 1);
            }
        }
        let source = l.source.unwrap_or(origin.default_source);
        match l.rec {
            Rec::Cycle {
                name,
                duration_ms,
                target_ms,
            } => {
                let edges_len = self.edges.len();
                let bucket = self.edges.partition_point(|&e| e < duration_ms);
                let c = match self.cycles.get_mut(name.as_ref()) {
                    Some(c) => c,
                    None => self.cycles.entry(name.into_owned()).or_default(),
                };
                if c.buckets.is_empty() {
                    c.buckets = vec![0; edges_len + 1];
                }
                c.buckets[bucket] += 1;
                c.series.push(duration_ms);
                let over = match target_ms {
                    Some(t) => {
                        c.target_ms = Some(t);
                        duration_ms > t
                    }
                    None => {
                        c.untargeted.push(duration_ms);
                        false
                    }
                };
                if over {
                    c.overruns += 1;
                    self.minute(l.ts)[0] += 1;
                }
            }
            Rec::Heartbeat => match self.beats.get_mut(source) {
                Some(b) => b.beat(l.ts),
                None => self.beats.entry(source.to_owned()).or_default().beat(l.ts),
            },
            Rec::Log {
                level,
                kind,
                message,
                stack,
            } => {
                *self.levels.entry(level).or_default() += 1;
                if level < Level::Warning {
                    return;
                }
                self.minute(l.ts)[if level == Level::Warning { 2 } else { 1 }] += 1;
                let key = (
                    level,
                    kind.map(|k| k.into_owned()).unwrap_or_default(),
                    template::template(&message),
                );
                let full = self.errors.len() >= MAX_ERROR_GROUPS;
                match self.errors.get_mut(&key) {
                    Some(e) => {
                        e.count += 1;
                        e.last = e.last.max(l.ts);
                        if l.ts < e.first {
                            e.first = l.ts;
                        }
                    }
                    None if full => self.errors_other += 1,
                    None => {
                        self.errors.insert(
                            key,
                            ErrAcc {
                                count: 1,
                                first: l.ts,
                                last: l.ts,
                                example: message.into_owned(),
                                stack: stack.map(str::to_owned),
                                source: Some(source.to_owned()),
                            },
                        );
                    }
                }
            }
            Rec::Order { status } => *self.orders.entry(status.into_owned()).or_default() += 1,
            Rec::Fill { pnl } => {
                self.fills += 1;
                if let Some(p) = pnl {
                    self.pnl += p;
                    self.pnl_fills += 1;
                }
            }
            Rec::Position { pair, qty } => {
                self.positions.insert(pair.to_owned(), qty);
            }
            Rec::Transition {
                from,
                to,
                reason,
                source,
            } => {
                if self.transitions.len() < MAX_TRANSITIONS {
                    self.transitions.push(TransitionRec {
                        ts: l.ts,
                        from: from.map(str::to_owned),
                        to: to.into_owned(),
                        reason: reason.map(|r| r.into_owned()),
                        source: source.map(str::to_owned),
                    });
                }
            }
            Rec::Config(map) => {
                if self.config.as_ref().is_none_or(|(t, _)| l.ts >= *t) {
                    self.config = Some((l.ts, map));
                }
            }
            Rec::Other => {}
        }
    }

    /// `later` read the input right after `self`. `same_input`: line numbers of `later` are
    /// counted on from `self`'s (chunks of one file); otherwise they stay its own.
    pub fn merge_after(&mut self, later: Acc, same_input: bool) {
        let offset = if same_input { self.lines } else { 0 };
        self.lines += later.lines;
        self.blank += later.blank;
        self.events += later.events;
        self.bad += later.bad;
        self.filtered += later.filtered;
        for mut b in later.bad_examples {
            if self.bad_examples.len() < BAD_LINE_EXAMPLES {
                b.line += offset;
                self.bad_examples.push(b);
            }
        }
        self.start = min_opt(self.start, later.start);
        self.end = self.end.max(later.end);
        if self.session_id.is_none() {
            self.session_id = later.session_id;
        }
        if self.run_id.is_none() {
            self.run_id = later.run_id;
        }
        for (k, v) in later.by_type {
            *self.by_type.entry(k).or_default() += v;
        }
        for (k, c) in later.cycles {
            let mine = self.cycles.entry(k).or_default();
            if mine.buckets.is_empty() {
                mine.buckets = vec![0; c.buckets.len()];
            }
            for (a, b) in mine.buckets.iter_mut().zip(&c.buckets) {
                *a += b;
            }
            mine.series.merge(c.series);
            mine.untargeted.merge(c.untargeted);
            mine.overruns += c.overruns;
            if c.target_ms.is_some() {
                mine.target_ms = c.target_ms;
            }
        }
        for (k, b) in later.beats {
            self.beats.entry(k).or_default().merge_after(b);
        }
        for (k, e) in later.errors {
            let full = self.errors.len() >= MAX_ERROR_GROUPS;
            match self.errors.get_mut(&k) {
                Some(mine) => {
                    mine.count += e.count;
                    mine.last = mine.last.max(e.last);
                    if e.first < mine.first {
                        mine.first = e.first;
                        mine.example = e.example;
                        mine.stack = e.stack;
                        mine.source = e.source;
                    }
                }
                None if full => self.errors_other += e.count,
                None => {
                    self.errors.insert(k, e);
                }
            }
        }
        self.errors_other += later.errors_other;
        for (k, v) in later.levels {
            *self.levels.entry(k).or_default() += v;
        }
        for (k, v) in later.orders {
            *self.orders.entry(k).or_default() += v;
        }
        self.fills += later.fills;
        self.pnl += later.pnl;
        self.pnl_fills += later.pnl_fills;
        self.positions.extend(later.positions);
        for t in later.transitions {
            if self.transitions.len() < MAX_TRANSITIONS {
                self.transitions.push(t);
            }
        }
        if let Some((t, c)) = later.config
            && self.config.as_ref().is_none_or(|(mine, _)| t >= *mine)
        {
            self.config = Some((t, c));
        }
        for (k, v) in later.timeline {
            let e = self.timeline.entry(k).or_default();
            for i in 0..3 {
                e[i] += v[i];
            }
        }
    }
}

fn min_opt(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

// ---------------------------------------------------------------------------------------
// The report (its JSON form is the documented schema)

/// Version of the JSON schema; bumped only on an incompatible change.
pub const SCHEMA: &str = "vigil.report/1";

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub schema: &'static str,
    pub session: Session,
    pub errors: Vec<ErrorGroup>,
    pub cycles: Vec<CycleStats>,
    pub heartbeats: Vec<HeartbeatStats>,
    pub trading: Trading,
    pub config: Option<Map<String, Value>>,
    pub findings: Vec<findings::Finding>,
    pub timeline: Timeline,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Session {
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration_s: f64,
    pub session_id: Option<String>,
    pub run_id: Option<String>,
    pub inputs: Vec<String>,
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub blank_lines: u64,
    pub filtered: u64,
    pub bad_line_examples: Vec<BadLine>,
    pub by_type: BTreeMap<String, u64>,
    pub by_level: BTreeMap<String, u64>,
    pub errors_other: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ErrorGroup {
    pub level: &'static str,
    pub kind: Option<String>,
    pub template: String,
    pub count: u64,
    pub first: String,
    pub last: String,
    pub example: String,
    pub stack: Option<String>,
    pub location: Option<String>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bucket {
    /// Upper edge (inclusive) in ms; `null` for the last, open bucket.
    pub le_ms: Option<f64>,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CycleStats {
    pub name: String,
    pub target_ms: Option<f64>,
    pub count: u64,
    pub overruns: u64,
    pub overruns_per_min: f64,
    pub overrun_pct: f64,
    pub mean_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// `false` once the series passed [`series::EXACT_CAP`] samples: percentiles are then
    /// within [`series::SKETCH_ALPHA`] relative error.
    pub exact: bool,
    pub buckets: Vec<Bucket>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HeartbeatStats {
    pub source: String,
    pub beats: u64,
    pub timeouts: u64,
    pub timeout_s: f64,
    /// `option`, `option:source`, `config`, `median` or `default`.
    pub timeout_from: String,
    pub max_gap_s: f64,
    pub median_interval_s: Option<f64>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub never_beat: bool,
    pub expected: bool,
    pub out_of_order: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Halt {
    pub at: String,
    pub to: String,
    pub reason: Option<String>,
    pub source: Option<String>,
    pub resumed_at: Option<String>,
    pub resume_reason: Option<String>,
    /// Until the resume, or until the session's end while still halted.
    pub duration_s: f64,
    pub resumed: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Trading {
    pub orders_by_status: BTreeMap<String, u64>,
    pub orders: u64,
    pub fills: u64,
    pub realized_pnl: f64,
    pub positions: BTreeMap<String, f64>,
    pub halts: Vec<Halt>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimelineBin {
    pub t: String,
    pub overruns: u64,
    pub errors: u64,
    pub warnings: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Gap {
    pub source: String,
    pub start: String,
    pub gap_s: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Timeline {
    pub bin_s: u64,
    pub bins: Vec<TimelineBin>,
    /// Heartbeat gaps longer than the source's timeout (the largest ones).
    pub heartbeat_gaps: Vec<Gap>,
}

/// Unix ms → RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The heartbeat timeouts a configuration snapshot names: `checks.*` tables of kind
/// `heartbeat` (`sources`, `period_s` + `grace_s`), and the mapping's key for all sources.
fn config_heartbeat(
    cfg: Option<&Map<String, Value>>,
    m: &Mapping,
) -> (Option<f64>, BTreeMap<String, f64>) {
    let mut per = BTreeMap::new();
    let Some(cfg) = cfg else {
        return (None, per);
    };
    let all = m
        .heartbeat_timeout_key
        .as_deref()
        .or(Some("heartbeat_timeout_s"))
        .and_then(|k| cfg.get(k))
        .and_then(Value::as_f64);
    if let Some(Value::Object(checks)) = cfg.get("checks") {
        for (id, c) in checks {
            let is_hb = c.get("kind").and_then(Value::as_str) == Some("heartbeat")
                || (id == "heartbeat" && c.get("kind").is_none());
            let Some(period) = c.get("period_s").and_then(Value::as_f64).filter(|_| is_hb) else {
                continue;
            };
            let grace = c.get("grace_s").and_then(Value::as_f64).unwrap_or(0.0);
            if let Some(Value::Array(srcs)) = c.get("sources") {
                for s in srcs.iter().filter_map(Value::as_str) {
                    per.insert(s.to_owned(), period + grace);
                }
            }
        }
    }
    (all, per)
}

impl Acc {
    /// The report. `inputs` are the inputs' labels (for bad-line locations).
    pub fn finish(self, opts: &Options, m: &Mapping, inputs: &[String]) -> Report {
        let start = self.start.unwrap_or(0);
        let end = self.end.unwrap_or(start);
        let duration_ms = end.saturating_sub(start);
        let minutes = duration_ms as f64 / 60_000.0;
        let cfg = self.config.as_ref().map(|(_, c)| c);

        // Cycles.
        let mut cycles = Vec::new();
        for (name, mut c) in self.cycles {
            let fallback = m.targets.get(&name).copied().or_else(|| {
                let key = m.target_keys.get(&name)?;
                let v = cfg?.get(key)?.as_f64()?;
                let scale = if key.ends_with("_S") || key.ends_with("_s") {
                    1000.0
                } else {
                    1.0
                };
                Some(v * scale)
            });
            let target = c.target_ms.or(fallback);
            let mut overruns = c.overruns;
            if let Some(t) = fallback.or(c.target_ms) {
                overruns += c.untargeted.count_above(t);
            }
            c.series.prepare();
            let s = &c.series;
            let n = s.count();
            let mut buckets: Vec<Bucket> = self
                .edges
                .iter()
                .map(|&e| Bucket {
                    le_ms: Some(e),
                    count: 0,
                })
                .chain([Bucket {
                    le_ms: None,
                    count: 0,
                }])
                .collect();
            for (b, &k) in buckets.iter_mut().zip(&c.buckets) {
                b.count = k;
            }
            cycles.push(CycleStats {
                name,
                target_ms: target,
                count: n,
                overruns,
                overruns_per_min: if minutes > 0.0 {
                    round3(overruns as f64 / minutes)
                } else {
                    0.0
                },
                overrun_pct: if n > 0 {
                    round3(100.0 * overruns as f64 / n as f64)
                } else {
                    0.0
                },
                mean_ms: s.mean().map(round3),
                min_ms: s.min(),
                max_ms: s.max(),
                p50_ms: s.percentile(5000),
                p95_ms: s.percentile(9500),
                p99_ms: s.percentile(9900),
                exact: s.is_exact(),
                buckets,
            });
        }

        // Heartbeats.
        let (cfg_all, cfg_per) = config_heartbeat(cfg, m);
        let mut sources: Vec<String> = self.beats.keys().cloned().collect();
        let mut expected: Vec<String> = opts.expect_heartbeat.clone();
        expected.extend(cfg_per.keys().cloned());
        for e in &expected {
            if !sources.contains(e) {
                sources.push(e.clone());
            }
        }
        let mut beats = self.beats;
        let mut heartbeats = Vec::new();
        let mut gaps_out = Vec::new();
        for src in sources {
            let mut b = beats.remove(&src).unwrap_or_default();
            b.gaps.prepare();
            let median = b.gaps.percentile(5000).map(|g| g / 1000.0);
            let (timeout_s, from) = if let Some(t) = opts.heartbeat_timeouts.get(&src) {
                (*t, "option:source")
            } else if let Some(t) = opts.heartbeat_timeout_s {
                (t, "option")
            } else if let Some(t) = cfg_per.get(&src).copied().or(cfg_all) {
                (t, "config")
            } else if let Some(md) = median.filter(|_| b.count >= 2) {
                ((HEARTBEAT_MEDIAN_FACTOR * md).max(1.0), "median")
            } else {
                (DEFAULT_HEARTBEAT_TIMEOUT_S, "default")
            };
            let t_ms = timeout_s * 1000.0;
            let (timeouts, max_gap_ms, first, last) = if b.count == 0 {
                let whole = duration_ms as f64;
                (u64::from(whole > t_ms), whole, None, None)
            } else {
                let lead = b.first.saturating_sub(start) as f64;
                let tail = end.saturating_sub(b.last) as f64;
                let inner = b.gaps.count_above(t_ms);
                let t = inner + u64::from(lead > t_ms) + u64::from(tail > t_ms);
                let mut g = b.gaps.max().unwrap_or(0.0).max(lead).max(tail);
                if g.is_nan() {
                    g = 0.0;
                }
                if lead > t_ms {
                    gaps_out.push((src.clone(), start, lead));
                }
                if tail > t_ms {
                    gaps_out.push((src.clone(), b.last, tail));
                }
                for &(gap, at) in &b.top {
                    if gap as f64 > t_ms {
                        gaps_out.push((src.clone(), at, gap as f64));
                    }
                }
                (t, g, Some(rfc3339(b.first)), Some(rfc3339(b.last)))
            };
            heartbeats.push(HeartbeatStats {
                expected: expected.contains(&src),
                never_beat: b.count == 0,
                source: src,
                beats: b.count,
                timeouts,
                timeout_s,
                timeout_from: from.into(),
                max_gap_s: round3(max_gap_ms / 1000.0),
                median_interval_s: median.map(round3),
                first,
                last,
                out_of_order: b.backwards,
            });
        }
        gaps_out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));

        // Errors: by level (worst first), then count, then template.
        let mut errors: Vec<ErrorGroup> = self
            .errors
            .into_iter()
            .map(|((level, kind, template), e)| ErrorGroup {
                level: level.as_str(),
                kind: (!kind.is_empty()).then_some(kind),
                template,
                count: e.count,
                first: rfc3339(e.first),
                last: rfc3339(e.last),
                location: e.stack.as_deref().and_then(template::location),
                example: e.example,
                stack: e.stack,
                source: e.source,
            })
            .collect();
        let rank = |l: &str| match l {
            "critical" => 0,
            "error" => 1,
            _ => 2,
        };
        errors.sort_by(|a, b| {
            rank(a.level)
                .cmp(&rank(b.level))
                .then(b.count.cmp(&a.count))
                .then(a.first.cmp(&b.first))
                .then(a.template.cmp(&b.template))
        });

        // Halts: every transition into HALTED or REDUCING, with the next transition back.
        let mut tr = self.transitions;
        tr.sort_by_key(|t| t.ts);
        let mut halts = Vec::new();
        let mut open: Option<Halt> = None;
        let mut open_ts = 0;
        for t in tr {
            let to = t.to.to_ascii_uppercase();
            if to == "HALTED" || to == "REDUCING" {
                if open.is_some() && to == "REDUCING" {
                    continue;
                }
                if let Some(h) = open.take() {
                    halts.push(h);
                }
                open_ts = t.ts;
                open = Some(Halt {
                    at: rfc3339(t.ts),
                    to,
                    reason: t.reason,
                    source: t.source,
                    resumed_at: None,
                    resume_reason: None,
                    duration_s: 0.0,
                    resumed: false,
                });
            } else if to == "ACTIVE"
                && let Some(mut h) = open.take()
            {
                h.resumed_at = Some(rfc3339(t.ts));
                h.resume_reason = t.reason;
                h.duration_s = round3(t.ts.saturating_sub(open_ts) as f64 / 1000.0);
                h.resumed = true;
                halts.push(h);
            }
        }
        if let Some(mut h) = open {
            h.duration_s = round3(end.saturating_sub(open_ts) as f64 / 1000.0);
            halts.push(h);
        }

        let mut by_level = BTreeMap::new();
        for (l, n) in &self.levels {
            by_level.insert(l.as_str().to_owned(), *n);
        }
        let bad_line_examples = self
            .bad_examples
            .into_iter()
            .map(|mut b| {
                b.file = inputs.get(b.input).cloned().unwrap_or_else(|| "-".into());
                b
            })
            .collect();
        let mut report = Report {
            schema: SCHEMA,
            session: Session {
                start: self.start.map(rfc3339),
                end: self.end.map(rfc3339),
                duration_s: round3(duration_ms as f64 / 1000.0),
                session_id: self.session_id,
                run_id: self.run_id,
                inputs: inputs.to_vec(),
                lines: self.lines,
                events: self.events,
                bad_lines: self.bad,
                blank_lines: self.blank,
                filtered: self.filtered,
                bad_line_examples,
                by_type: self.by_type,
                by_level,
                errors_other: self.errors_other,
            },
            errors,
            cycles,
            heartbeats,
            trading: Trading {
                orders: self.orders.values().sum(),
                orders_by_status: self.orders,
                fills: self.fills,
                realized_pnl: round3(self.pnl),
                positions: self.positions,
                halts,
            },
            config: self.config.map(|(_, c)| c),
            findings: Vec::new(),
            timeline: Timeline {
                bin_s: 60,
                bins: self
                    .timeline
                    .into_iter()
                    .map(|(m, [o, e, w])| TimelineBin {
                        t: rfc3339(m * 60_000),
                        overruns: o,
                        errors: e,
                        warnings: w,
                    })
                    .collect(),
                heartbeat_gaps: gaps_out
                    .into_iter()
                    .map(|(source, at, g)| Gap {
                        source,
                        start: rfc3339(at),
                        gap_s: round3(g / 1000.0),
                    })
                    .collect(),
            },
        };
        report.findings = findings::derive(&report);
        report
    }
}

#[cfg(test)]
mod tests;
