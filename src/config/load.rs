//! Loading `vigil.toml`: a spanned TOML parse, then validation of every section into typed
//! values, then the path checks. Every problem is collected (never only the first) and
//! located at the offending key or value as `FILE:LINE:COL` (1-based, columns in characters);
//! a missing required key is located at its section's header. The reference for every key is
//! `docs/config.md`.

mod expand;
mod suggest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};
use vigil_core::program::{AutoRestart, BackoffPolicy};

use super::{
    Config, ConfigError, ConfigErrors, GroupConfig, LogConfig, ProcessConfig, ProgramConfig,
    SIGNALS, Signal, VigilSection, resolve,
};
use expand::{Names, Value};
pub(crate) use suggest::did_you_mean;

/// Top-level tables that belong to other modules. This loader skips them without a word (not
/// even an unknown-key check); each is parsed and validated by the module that owns it:
/// `checks`, `rules` and `halt` (monitoring and the halt latch), `alerts`, `auth`, `jobs`,
/// `ingest` (tailed event files), `eventlistener` (supervisord-style listeners), `cluster` and
/// `monitoring`. Any other unknown top-level table is an error with a did-you-mean.
pub const RESERVED_SECTIONS: &[&str] = &[
    "checks",
    "rules",
    "halt",
    "alerts",
    "auth",
    "jobs",
    "ingest",
    "eventlistener",
    "cluster",
    "monitoring",
];

/// The sections this loader owns.
const SECTIONS: &[&str] = &["vigil", "program", "group"];

const VIGIL_KEYS: &[&str] = &["listen", "data_dir", "log_level"];

const PROGRAM_KEYS: &[&str] = &[
    "command",
    "directory",
    "environment",
    "user",
    "numprocs",
    "numprocs_start",
    "process_name",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "backoff",
    "backoff_max",
    "events",
    "critical",
];

/// supervisord `[program:x]` options vigil does not implement: still unknown keys, but the
/// message says why.
const SUPERVISORD_ONLY: &[&str] = &[
    "umask",
    "serverurl",
    "stdout_capture_maxbytes",
    "stderr_capture_maxbytes",
    "stdout_events_enabled",
    "stderr_events_enabled",
    "stdout_syslog",
    "stderr_syslog",
];

const GROUP_KEYS: &[&str] = &["programs", "priority"];

const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Default `[vigil] listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default `*_logfile_maxbytes`: 50 MB.
pub const DEFAULT_LOG_MAXBYTES: u64 = 50 * 1024 * 1024;
/// Default `*_logfile_backups`.
pub const DEFAULT_LOG_BACKUPS: u32 = 10;
/// `numprocs` is capped so a typo cannot ask for billions of processes.
pub const MAX_NUMPROCS: u32 = 10_000;

const TERM: Signal = Signal {
    number: 15,
    name: "TERM",
};

/// Names that exist in supervisord but not in per-program options of vigil.
const NOT_PER_PROCESS: &[(&str, &str)] = &[(
    "process_num",
    "this option is per program in vigil, not per process",
)];

/// Load and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    load_str(path, &text)
}

/// Validate config text as if read from `path` (relative paths and `%(here)s` resolve against
/// its directory). Creates `data_dir`, its `logs` directory and the directories of the
/// configured log files.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    load_with(path, text, &Env::from_process())
}

/// 1-based line and column (in characters) of a byte offset in `text`. For modules that parse
/// the reserved sections and must report errors in the same format.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while off > 0 && !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = text.get(..off).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let col = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, col)
}

/// What the expansions see of the world: vigil's environment and the host name.
pub(crate) struct Env {
    pub vars: BTreeMap<String, String>,
    pub host_node_name: String,
}

impl Env {
    fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let host_node_name = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| u.nodename().to_str().map(str::to_string))
            .unwrap_or_default();
        Env {
            vars,
            host_node_name,
        }
    }
}

/// The error sink: the file, its text (for locations) and every problem found so far.
struct Ctx<'t> {
    file: PathBuf,
    text: &'t str,
    errors: Vec<ConfigError>,
}

/// One table being validated: its dotted path and where its header is.
struct Sec<'a, 'i> {
    table: &'a DeTable<'i>,
    path: String,
    at: usize,
}

impl<'a, 'i> Sec<'a, 'i> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.path)
    }

    fn get(&self, k: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(k)
    }

    /// Where errors about `k` go: its value, else the header.
    fn anchor(&self, k: &str) -> usize {
        self.get(k).map_or(self.at, |v| v.span().start)
    }
}

type Entry<'a, 'i> = (&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>);

/// A table's entries in file order (the parsed map is sorted by key).
fn entries<'a, 'i>(t: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut v: Vec<Entry<'a, 'i>> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// `string "abc"`, `integer 5`, `array`, … for "expected X, found Y".
fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let s: &str = s;
            if s.chars().count() > 60 {
                let short: String = s.chars().take(57).collect();
                format!("string {:?}", short + "...")
            } else {
                format!("string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "array".to_string(),
        DeValue::Table(_) => "table".to_string(),
    }
}

fn int_of(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`.
fn one_of(choices: &[&str]) -> String {
    let q: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match q.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", q.join(", ")),
    }
}

/// `p` made absolute against `here`, with `.` components dropped (`..` is kept: it may cross
/// a symlink).
fn resolve_clean(here: &Path, p: &str) -> PathBuf {
    resolve(here, Path::new(p)).components().collect()
}

/// Why a program, group or process name is invalid (supervisord's rule).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.contains('/') {
        Some("contains '/'")
    } else {
        None
    }
}

/// `1024`, `"50MB"`, `"10KB"`, `"1GB"` (1024-based, case-insensitive).
fn parse_bytes(s: &str) -> Option<u64> {
    let upper = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = upper.strip_suffix("KB") {
        (n, 1u64 << 10)
    } else if let Some(n) = upper.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = upper.strip_suffix("GB") {
        (n, 1 << 30)
    } else {
        (upper.as_str(), 1)
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mult)
}

/// Write a probe file into `dir` and remove it.
fn probe(dir: &Path) -> Result<(), String> {
    let p = dir.join(format!(".vigil-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&p);
            Ok(())
        }
        Err(e) => Err(format!("directory {} is not writable: {e}", dir.display())),
    }
}

/// Create `dir` (and its parents) and check that it is a writable directory.
fn ensure_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(format!("cannot create directory {}: {e}", dir.display()));
    }
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    probe(dir)
}

fn check_user(name: &str) -> Result<(), String> {
    use nix::unistd::{Uid, User};
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("no such user \"{name}\"")),
        Err(e) => Err(format!("cannot look up user \"{name}\": {e}")),
    }
}

impl<'t> Ctx<'t> {
    fn at(&mut self, offset: usize, key: impl Into<String>, message: impl Into<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            col,
            key: key.into(),
            message: message.into(),
        });
    }

    /// File order, duplicates (the same error met once per process) dropped.
    fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| (e.line, e.col));
        let mut seen = HashSet::new();
        self.errors
            .retain(|e| seen.insert((e.line, e.col, e.key.clone(), e.message.clone())));
        ConfigErrors(self.errors)
    }

    fn type_error(&mut self, key: String, v: &Spanned<DeValue<'_>>, expected: &str) {
        self.at(
            v.span().start,
            key,
            format!("expected {expected}, found {}", found(v.get_ref())),
        );
    }

    fn missing(&mut self, sec: &Sec<'_, '_>, k: &str) {
        self.at(sec.at, sec.key(k), "required key is missing");
    }

    fn unknown_keys(&mut self, sec: &Sec<'_, '_>, known: &[&str]) {
        for (k, _) in entries(sec.table) {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            let message = if known == PROGRAM_KEYS && SUPERVISORD_ONLY.contains(&name) {
                "unknown key (a supervisord option vigil does not support)".to_string()
            } else if let Some(s) = did_you_mean(name, known) {
                format!("unknown key, did you mean \"{s}\"?")
            } else if known.len() <= 4 {
                format!("unknown key; known keys: {}", known.join(", "))
            } else {
                "unknown key".to_string()
            };
            self.at(k.span().start, sec.key(name), message);
        }
    }

    /// A table value, or a type error.
    fn table<'a, 'i>(
        &mut self,
        key: String,
        v: &'a Spanned<DeValue<'i>>,
        expected: &str,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(key, v, expected);
                None
            }
        }
    }

    fn get_str<'a>(&mut self, sec: &Sec<'a, '_>, k: &str) -> Option<(&'a str, Range<usize>)> {
        let v = sec.get(k)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.type_error(sec.key(k), v, "a string");
                None
            }
        }
    }

    fn get_bool(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<bool> {
        let v = sec.get(k)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(sec.key(k), v, "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer in `lo..=hi`; `what` describes the lower bound ("a non-negative integer").
    fn get_int(
        &mut self,
        sec: &Sec<'_, '_>,
        k: &str,
        lo: i128,
        hi: i128,
        what: &str,
    ) -> Option<i128> {
        let v = sec.get(k)?;
        match int_of(v.get_ref()) {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) if n > hi => {
                self.at(
                    v.span().start,
                    sec.key(k),
                    format!("expected {what} no larger than {hi}, found integer {n}"),
                );
                None
            }
            _ => {
                self.type_error(sec.key(k), v, what);
                None
            }
        }
    }

    fn get_u32(&mut self, sec: &Sec<'_, '_>, k: &str, lo: u32, hi: u32, what: &str) -> Option<u32> {
        self.get_int(sec, k, lo.into(), hi.into(), what)
            .and_then(|n| u32::try_from(n).ok())
    }

    fn get_u64(&mut self, sec: &Sec<'_, '_>, k: &str, lo: u64, what: &str) -> Option<u64> {
        self.get_int(sec, k, lo.into(), u64::MAX.into(), what)
            .and_then(|n| u64::try_from(n).ok())
    }

    /// A string among `choices` (case-insensitive), returned in its canonical spelling.
    fn get_choice(
        &mut self,
        sec: &Sec<'_, '_>,
        k: &str,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let v = sec.get(k)?;
        if let DeValue::String(s) = v.get_ref()
            && let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(s))
        {
            return Some(c);
        }
        self.type_error(sec.key(k), v, &one_of(choices));
        None
    }

    /// A size in bytes: a non-negative integer or a string like `"50MB"`.
    fn get_bytes(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<u64> {
        let v = sec.get(k)?;
        let n = match v.get_ref() {
            DeValue::Integer(_) => int_of(v.get_ref()).and_then(|n| u64::try_from(n).ok()),
            DeValue::String(s) => parse_bytes(s),
            _ => None,
        };
        if n.is_none() {
            self.type_error(
                sec.key(k),
                v,
                "a size in bytes (an integer, or a string such as \"50MB\", \"10KB\", \"1GB\")",
            );
        }
        n
    }

    /// Expand `template` (the string value at `span`); errors are located at the offending
    /// `%` when the value is written without escapes, else at the value.
    fn expand(
        &mut self,
        template: &str,
        span: &Range<usize>,
        key: &str,
        names: &Names<'_>,
    ) -> Option<String> {
        match expand::expand(template, names) {
            Ok(s) => Some(s),
            Err(e) => {
                let at = self.offset_in_string(span, template, e.offset);
                self.at(at, key, e.message);
                None
            }
        }
    }

    /// The source offset of byte `idx` of the decoded string `decoded` written at `span`.
    fn offset_in_string(&self, span: &Range<usize>, decoded: &str, idx: usize) -> usize {
        let Some(raw) = self.text.get(span.clone()) else {
            return span.start;
        };
        for q in ['"', '\''] {
            let triple: String = std::iter::repeat_n(q, 3).collect();
            let simple = raw.len() >= 2
                && raw.starts_with(q)
                && raw.ends_with(q)
                && !raw.starts_with(&triple);
            if simple && raw.get(1..raw.len() - 1) == Some(decoded) {
                return span.start + 1 + idx;
            }
        }
        span.start
    }
}

/// The program's log output channel as configured.
enum LogSpec<'a> {
    /// Not set or `AUTO`: `data_dir/logs/<process>.{out,err}.log`.
    Auto,
    /// `NONE` / `OFF`.
    Off,
    Path(&'a str, Range<usize>),
}

/// One use of a log file, for the cross-program checks.
struct LogUse {
    path: PathBuf,
    /// `None` for the default location (whose directory is checked once, with `data_dir`).
    at: Option<usize>,
    key: String,
    /// `program.bot.stdout_logfile (process bot_01)`.
    owner: String,
    maxbytes: u64,
}

/// Read-only inputs shared by every program.
struct Shared<'e> {
    env: &'e Env,
    here: PathBuf,
    here_str: String,
    logs_dir: PathBuf,
}

impl Shared<'_> {
    fn names(
        &self,
        program: &str,
        group: &str,
        numprocs: u32,
        num: Option<u32>,
    ) -> BTreeMap<&'static str, Value> {
        let mut m = BTreeMap::new();
        m.insert("program_name", Value::Str(program.to_string()));
        m.insert("group_name", Value::Str(group.to_string()));
        m.insert("numprocs", Value::Int(numprocs.into()));
        m.insert("here", Value::Str(self.here_str.clone()));
        m.insert(
            "host_node_name",
            Value::Str(self.env.host_node_name.clone()),
        );
        if let Some(n) = num {
            m.insert("process_num", Value::Int(n.into()));
        }
        m
    }
}

/// Validate `text` as read from `path`, with the environment `env`.
pub(crate) fn load_with(path: &Path, text: &str, env: &Env) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx {
        file: path.to_path_buf(),
        text,
        errors: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in &syntax {
            let at = e.span().map_or(0, |s| s.start);
            cx.at(at, "", format!("TOML syntax error: {}", e.message()));
        }
        return Err(cx.finish());
    }
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let here = source
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);

    let mut vigil_v = None;
    let mut program_v = None;
    let mut group_v = None;
    for (k, v) in entries(doc.get_ref()) {
        let name: &str = k.get_ref();
        match name {
            "vigil" => vigil_v = Some(v),
            "program" => program_v = Some(v),
            "group" => group_v = Some(v),
            // Owned by other modules, which parse them from the same file (see
            // RESERVED_SECTIONS); nothing to check here.
            _ if RESERVED_SECTIONS.contains(&name) => {}
            _ if !v.get_ref().is_table() => {
                let message = if VIGIL_KEYS.contains(&name) {
                    format!("unknown top-level key; \"{name}\" belongs in the [vigil] section")
                } else {
                    "unknown top-level key (keys belong in a section such as [vigil] or [program.NAME])"
                        .to_string()
                };
                cx.at(k.span().start, name, message);
            }
            _ => {
                let known: Vec<&str> = SECTIONS.iter().chain(RESERVED_SECTIONS).copied().collect();
                let message = match did_you_mean(name, &known) {
                    Some(s) => format!("unknown section, did you mean \"{s}\"?"),
                    None => format!("unknown section; known sections: {}", known.join(", ")),
                };
                cx.at(k.span().start, name, message);
            }
        }
    }

    let (vigil, logs_ok) = parse_vigil(&mut cx, vigil_v, &here, env);
    let shared = Shared {
        env,
        here_str: here.to_string_lossy().into_owned(),
        here,
        logs_dir: vigil.data_dir.join("logs"),
    };

    // Program names first: groups refer to them.
    let program_entries = match program_v {
        Some(v) => match cx.table(
            "program".to_string(),
            v,
            "a table of programs ([program.NAME] sections)",
        ) {
            Some(t) => entries(t),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let program_names: Vec<&str> = program_entries
        .iter()
        .map(|(k, _)| k.get_ref().as_ref())
        .collect();

    let (groups, member_of) = parse_groups(&mut cx, group_v, &program_names);

    let mut programs = Vec::new();
    let mut logs: Vec<LogUse> = Vec::new();
    let mut process_names: HashMap<String, String> = HashMap::new();
    for (k, v) in &program_entries {
        let name: &str = k.get_ref();
        let before = cx.errors.len();
        if let Some(p) = name_problem(name) {
            cx.at(
                k.span().start,
                format!("program.{name}"),
                format!("invalid program name: {p}"),
            );
        }
        let group = member_of.get(name).map_or(name, String::as_str);
        let Some((program, uses, name_at)) = parse_program(&mut cx, &shared, name, v, group) else {
            continue;
        };
        if cx.errors.len() == before {
            for proc in &program.processes {
                match process_names.get(&proc.name) {
                    Some(other) => cx.at(
                        name_at,
                        format!("program.{name}.process_name"),
                        format!(
                            "process name \"{}\" is also used by program \"{other}\"",
                            proc.name
                        ),
                    ),
                    None => {
                        process_names.insert(proc.name.clone(), name.to_string());
                    }
                }
            }
            logs.extend(uses);
        }
        programs.push(program);
    }

    check_logs(&mut cx, &logs, &shared.logs_dir, logs_ok);

    if cx.errors.is_empty() {
        Ok(Config {
            source,
            vigil,
            programs,
            groups,
        })
    } else {
        Err(cx.finish())
    }
}

/// `[vigil]`; also creates and checks `data_dir` and `data_dir/logs`. Returns whether the logs
/// directory is usable.
fn parse_vigil(
    cx: &mut Ctx<'_>,
    v: Option<&Spanned<DeValue<'_>>>,
    here: &Path,
    env: &Env,
) -> (VigilSection, bool) {
    let empty = DeTable::new();
    let (table, at) = match v {
        Some(v) => match cx.table("vigil".to_string(), v, "a table ([vigil])") {
            Some(t) => (t, v.span().start),
            None => (&empty, v.span().start),
        },
        None => (&empty, 0),
    };
    let sec = Sec {
        table,
        path: "vigil".to_string(),
        at,
    };
    cx.unknown_keys(&sec, VIGIL_KEYS);

    let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], 7070));
    let listen = match sec.get("listen") {
        None => default_listen,
        Some(v) => match v.get_ref().as_str().map(|s| s.trim().parse()) {
            Some(Ok(addr)) => addr,
            _ => {
                cx.type_error(
                    sec.key("listen"),
                    v,
                    "a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\"",
                );
                default_listen
            }
        },
    };
    let log_level = cx
        .get_choice(&sec, "log_level", LOG_LEVELS)
        .unwrap_or("info")
        .to_string();

    let mut data_dir_ok = true;
    let data_dir = match cx.get_str(&sec, "data_dir") {
        None => {
            if sec.get("data_dir").is_some() {
                data_dir_ok = false;
            }
            here.join("vigil-data")
        }
        Some((raw, span)) => {
            let names = Names {
                values: {
                    let mut m = BTreeMap::new();
                    m.insert("here", Value::Str(here.to_string_lossy().into_owned()));
                    m.insert("host_node_name", Value::Str(env.host_node_name.clone()));
                    m
                },
                env: vec![&env.vars],
                unavailable: &[],
            };
            match cx.expand(raw, &span, "vigil.data_dir", &names) {
                Some(s) if s.is_empty() => {
                    cx.at(
                        span.start,
                        "vigil.data_dir",
                        "expected a directory path, found string \"\"",
                    );
                    data_dir_ok = false;
                    here.join("vigil-data")
                }
                Some(s) => resolve_clean(here, &s),
                None => {
                    data_dir_ok = false;
                    here.join("vigil-data")
                }
            }
        }
    };
    let mut logs_ok = false;
    if data_dir_ok {
        let anchor = sec.anchor("data_dir");
        match ensure_dir(&data_dir).and_then(|()| ensure_dir(&data_dir.join("logs"))) {
            Ok(()) => logs_ok = true,
            Err(e) => cx.at(anchor, "vigil.data_dir", e),
        }
    }
    (
        VigilSection {
            listen,
            data_dir,
            log_level,
        },
        logs_ok,
    )
}

/// `[group.NAME]` sections. Returns the groups and each member program's group.
fn parse_groups(
    cx: &mut Ctx<'_>,
    v: Option<&Spanned<DeValue<'_>>>,
    program_names: &[&str],
) -> (Vec<GroupConfig>, HashMap<String, String>) {
    let mut groups = Vec::new();
    let mut member_of: HashMap<String, String> = HashMap::new();
    let Some(v) = v else {
        return (groups, member_of);
    };
    let Some(t) = cx.table(
        "group".to_string(),
        v,
        "a table of groups ([group.NAME] sections)",
    ) else {
        return (groups, member_of);
    };
    let mut name_spans = Vec::new();
    for (k, gv) in entries(t) {
        let name: &str = k.get_ref();
        let key = format!("group.{name}");
        if let Some(p) = name_problem(name) {
            cx.at(
                k.span().start,
                key.clone(),
                format!("invalid group name: {p}"),
            );
        }
        let Some(table) = cx.table(key.clone(), gv, "a table ([group.NAME])") else {
            continue;
        };
        let sec = Sec {
            table,
            path: key,
            at: gv.span().start,
        };
        cx.unknown_keys(&sec, GROUP_KEYS);
        let priority = cx
            .get_int(
                &sec,
                "priority",
                i32::MIN.into(),
                i32::MAX.into(),
                "an integer",
            )
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(999);
        let mut members = Vec::new();
        match sec.get("programs") {
            None => cx.missing(&sec, "programs"),
            Some(pv) => match pv.get_ref() {
                DeValue::Array(a) if a.is_empty() => {
                    cx.at(
                        pv.span().start,
                        sec.key("programs"),
                        "expected at least one program name, found an empty array",
                    );
                }
                DeValue::Array(a) => {
                    for item in a.iter() {
                        let Some(p) = item.get_ref().as_str() else {
                            cx.type_error(sec.key("programs"), item, "a program name (string)");
                            continue;
                        };
                        if !program_names.contains(&p) {
                            let message = match did_you_mean(p, program_names) {
                                Some(s) => format!("no program \"{p}\", did you mean \"{s}\"?"),
                                None => {
                                    format!("no program \"{p}\" (each must be a [program.NAME])")
                                }
                            };
                            cx.at(item.span().start, sec.key("programs"), message);
                            continue;
                        }
                        if let Some(other) = member_of.get(p) {
                            let message = if other == name {
                                format!("program \"{p}\" is listed twice")
                            } else {
                                format!(
                                    "program \"{p}\" is already in group \"{other}\" (a program belongs to at most one group)"
                                )
                            };
                            cx.at(item.span().start, sec.key("programs"), message);
                            continue;
                        }
                        member_of.insert(p.to_string(), name.to_string());
                        members.push(p.to_string());
                    }
                }
                _ => cx.type_error(sec.key("programs"), pv, "an array of program names"),
            },
        }
        name_spans.push((name.to_string(), k.span().start));
        groups.push(GroupConfig {
            name: name.to_string(),
            programs: members,
            priority,
        });
    }
    // A program outside any group is its own group: a group may not take its name.
    for (name, at) in name_spans {
        if program_names.contains(&name.as_str()) && member_of.get(&name) != Some(&name) {
            cx.at(
                at,
                format!("group.{name}"),
                format!("group name \"{name}\" is also the name of program \"{name}\", which is not in this group"),
            );
        }
    }
    (groups, member_of)
}

/// One `[program.NAME]`. Returns the program, its log uses and where errors about its process
/// names go; `None` when it is not even a table.
fn parse_program(
    cx: &mut Ctx<'_>,
    sh: &Shared<'_>,
    name: &str,
    v: &Spanned<DeValue<'_>>,
    group: &str,
) -> Option<(ProgramConfig, Vec<LogUse>, usize)> {
    let path = format!("program.{name}");
    let table = cx.table(path.clone(), v, "a table ([program.NAME])")?;
    let sec = Sec {
        table,
        path,
        at: v.span().start,
    };
    cx.unknown_keys(&sec, PROGRAM_KEYS);

    let command = cx.get_str(&sec, "command");
    if sec.get("command").is_none() {
        cx.missing(&sec, "command");
    }
    let process_name = cx.get_str(&sec, "process_name");
    let numprocs = cx
        .get_u32(&sec, "numprocs", 1, MAX_NUMPROCS, "a positive integer")
        .unwrap_or(1);
    let numprocs_start = cx
        .get_u32(
            &sec,
            "numprocs_start",
            0,
            u32::MAX,
            "a non-negative integer",
        )
        .unwrap_or(0);
    let priority = cx
        .get_int(
            &sec,
            "priority",
            i32::MIN.into(),
            i32::MAX.into(),
            "an integer",
        )
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(999);
    let autostart = cx.get_bool(&sec, "autostart").unwrap_or(true);
    let autorestart = match sec.get("autorestart") {
        None => AutoRestart::Unexpected,
        Some(av) => {
            let parsed = match av.get_ref() {
                DeValue::Boolean(true) => Some(AutoRestart::Always),
                DeValue::Boolean(false) => Some(AutoRestart::Never),
                DeValue::String(s) if s.eq_ignore_ascii_case("unexpected") => {
                    Some(AutoRestart::Unexpected)
                }
                DeValue::String(s) if s.eq_ignore_ascii_case("true") => Some(AutoRestart::Always),
                DeValue::String(s) if s.eq_ignore_ascii_case("false") => Some(AutoRestart::Never),
                _ => None,
            };
            parsed.unwrap_or_else(|| {
                cx.type_error(sec.key("autorestart"), av, "true, false or \"unexpected\"");
                AutoRestart::Unexpected
            })
        }
    };
    let startsecs = cx
        .get_u64(&sec, "startsecs", 0, "a non-negative integer")
        .unwrap_or(1);
    let startretries = cx
        .get_u32(&sec, "startretries", 0, u32::MAX, "a non-negative integer")
        .unwrap_or(3);
    let exitcodes = match sec.get("exitcodes") {
        None => vec![0],
        Some(ev) => match ev.get_ref() {
            DeValue::Array(a) => a
                .iter()
                .filter_map(|item| match int_of(item.get_ref()) {
                    Some(n) if (0..=255).contains(&n) => i32::try_from(n).ok(),
                    _ => {
                        cx.type_error(
                            sec.key("exitcodes"),
                            item,
                            "an exit code (an integer from 0 to 255)",
                        );
                        None
                    }
                })
                .collect(),
            _ => {
                cx.type_error(
                    sec.key("exitcodes"),
                    ev,
                    "an array of exit codes such as [0, 2]",
                );
                vec![0]
            }
        },
    };
    let stopsignal = match sec.get("stopsignal") {
        None => TERM,
        Some(sv) => {
            let parsed = match sv.get_ref() {
                DeValue::String(s) => Signal::parse(s),
                DeValue::Integer(_) => {
                    int_of(sv.get_ref()).and_then(|n| Signal::parse(&n.to_string()))
                }
                _ => None,
            };
            parsed.unwrap_or_else(|| {
                let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
                cx.type_error(
                    sec.key("stopsignal"),
                    sv,
                    &format!("a signal name or number ({})", names.join(", ")),
                );
                TERM
            })
        }
    };
    let stopwaitsecs = cx
        .get_u64(&sec, "stopwaitsecs", 0, "a non-negative integer")
        .unwrap_or(10);
    let stopasgroup = cx.get_bool(&sec, "stopasgroup").unwrap_or(false);
    let killasgroup_set = cx.get_bool(&sec, "killasgroup");
    if stopasgroup && killasgroup_set == Some(false) {
        cx.at(
            sec.anchor("killasgroup"),
            sec.key("killasgroup"),
            "cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
        );
    }
    let killasgroup = killasgroup_set.unwrap_or(stopasgroup);
    let redirect_stderr = cx.get_bool(&sec, "redirect_stderr").unwrap_or(false);
    let exponential =
        cx.get_choice(&sec, "backoff", &["linear", "exponential"]) == Some("exponential");
    let backoff_max = cx.get_u64(&sec, "backoff_max", 1, "a positive integer (seconds)");
    let backoff = BackoffPolicy {
        exponential,
        max_ms: backoff_max.map(|s| s.saturating_mul(1000)),
        ..BackoffPolicy::default()
    };
    let events_from_stdout = cx.get_choice(&sec, "events", &["stdout"]).is_some();
    let critical = cx.get_bool(&sec, "critical").unwrap_or(false);

    let mut log_specs = Vec::new();
    for (chan, ext) in [("stdout", "out"), ("stderr", "err")] {
        let k = format!("{chan}_logfile");
        let spec = match cx.get_str(&sec, &k) {
            None => LogSpec::Auto,
            Some((s, span)) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("NONE") || t.eq_ignore_ascii_case("OFF") {
                    LogSpec::Off
                } else if t.eq_ignore_ascii_case("AUTO") {
                    LogSpec::Auto
                } else if t.is_empty() || t.eq_ignore_ascii_case("syslog") {
                    cx.at(
                        span.start,
                        sec.key(&k),
                        format!("expected a file path, \"AUTO\" or \"NONE\", found string {s:?}"),
                    );
                    LogSpec::Off
                } else {
                    LogSpec::Path(s, span)
                }
            }
        };
        let maxbytes = cx
            .get_bytes(&sec, &format!("{k}_maxbytes"))
            .unwrap_or(DEFAULT_LOG_MAXBYTES);
        let backups = cx
            .get_u32(
                &sec,
                &format!("{k}_backups"),
                0,
                u32::MAX,
                "a non-negative integer",
            )
            .unwrap_or(DEFAULT_LOG_BACKUPS);
        log_specs.push((k, ext, spec, maxbytes, backups));
    }

    // Per-program options: every name but process_num.
    let per_program = |numprocs| Names {
        values: sh.names(name, group, numprocs, None),
        env: vec![&sh.env.vars],
        unavailable: NOT_PER_PROCESS,
    };

    let mut environment = BTreeMap::new();
    if let Some(ev) = sec.get("environment")
        && let Some(t) = cx.table(
            sec.key("environment"),
            ev,
            "a table of strings such as { PORT = \"8080\" }",
        )
    {
        for (ek, evv) in entries(t) {
            let var: &str = ek.get_ref();
            let key = format!("{}.environment.{var}", sec.path);
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                cx.at(
                    ek.span().start,
                    key.clone(),
                    "invalid variable name (empty, or contains '=' or NUL)",
                );
                continue;
            }
            let Some(raw) = evv.get_ref().as_str() else {
                let hint = match evv.get_ref() {
                    DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                        format!(
                            " (quote it: \"{}\")",
                            found(evv.get_ref()).split_once(' ').map_or("", |(_, v)| v)
                        )
                    }
                    _ => String::new(),
                };
                cx.at(
                    evv.span().start,
                    key,
                    format!("expected a string{hint}, found {}", found(evv.get_ref())),
                );
                continue;
            };
            if let Some(val) = cx.expand(raw, &evv.span(), &key, &per_program(numprocs)) {
                if val.contains('\0') {
                    cx.at(evv.span().start, key, "value contains a NUL character");
                } else {
                    environment.insert(var.to_string(), val);
                }
            }
        }
    }

    let mut directory = None;
    if let Some((raw, span)) = cx.get_str(&sec, "directory") {
        let key = sec.key("directory");
        if let Some(d) = cx.expand(raw, &span, &key, &per_program(numprocs)) {
            let d = resolve_clean(&sh.here, &d);
            match std::fs::metadata(&d) {
                Ok(m) if m.is_dir() => directory = Some(d),
                Ok(_) => cx.at(
                    span.start,
                    key,
                    format!("{} is not a directory", d.display()),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => cx.at(
                    span.start,
                    key,
                    format!("directory {} does not exist", d.display()),
                ),
                Err(e) => cx.at(
                    span.start,
                    key,
                    format!("cannot access directory {}: {e}", d.display()),
                ),
            }
        }
    }

    let mut user = None;
    if let Some((u, span)) = cx.get_str(&sec, "user") {
        let u = u.trim();
        match if u.is_empty() {
            Err("expected a user name or uid, found string \"\"".to_string())
        } else {
            check_user(u)
        } {
            Ok(()) => user = Some(u.to_string()),
            Err(e) => cx.at(span.start, sec.key("user"), e),
        }
    }

    let name_at = sec.anchor("process_name");
    let template = process_name.as_ref().map_or("%(program_name)s", |(t, _)| t);
    let mut per_process_ok = true;
    if numprocs > 1 && !template.contains("%(process_num)") {
        cx.at(
            name_at,
            sec.key("process_name"),
            format!(
                "numprocs = {numprocs} needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\""
            ),
        );
        per_process_ok = false;
    }

    let mut processes = Vec::new();
    let mut uses = Vec::new();
    for i in 0..numprocs {
        let Some(num) = numprocs_start.checked_add(i) else {
            cx.at(
                sec.anchor("numprocs_start"),
                sec.key("numprocs_start"),
                "numprocs_start + numprocs does not fit in 32 bits",
            );
            break;
        };
        let before = cx.errors.len();
        let values = sh.names(name, group, numprocs, Some(num));
        let names = Names {
            values: values.clone(),
            env: vec![&sh.env.vars],
            unavailable: &[],
        };
        let pname = match &process_name {
            None => Some(name.to_string()),
            Some((t, span)) => cx.expand(t, span, &sec.key("process_name"), &names),
        };
        // (The default, the program's name, is checked as such.)
        if let Some(pn) = pname.as_ref().filter(|_| process_name.is_some())
            && let Some(p) = name_problem(pn)
        {
            cx.at(
                name_at,
                sec.key("process_name"),
                format!("invalid process name \"{pn}\": {p}"),
            );
        }
        // The program's own environment is visible to command and log paths, as in supervisord.
        let with_env = Names {
            values,
            env: vec![&sh.env.vars, &environment],
            unavailable: &[],
        };
        let mut argv = Vec::new();
        if let Some((c, span)) = &command {
            let key = sec.key("command");
            if let Some(line) = cx.expand(c, span, &key, &with_env) {
                match shlex::split(&line) {
                    None => cx.at(
                        span.start,
                        key,
                        "cannot split the command line: unbalanced quotes or a trailing backslash",
                    ),
                    Some(words) if words.is_empty() => {
                        cx.at(span.start, key, "the command is empty")
                    }
                    Some(words) => argv = words,
                }
            }
        }
        let pn = pname.clone().unwrap_or_else(|| name.to_string());
        let mut logs = Vec::new();
        for (k, ext, spec, maxbytes, backups) in &log_specs {
            let off = *ext == "err" && redirect_stderr;
            let path = match spec {
                _ if off => None,
                LogSpec::Off => None,
                LogSpec::Auto => {
                    let p = sh.logs_dir.join(format!("{pn}.{ext}.log"));
                    uses.push(LogUse {
                        path: p.clone(),
                        at: None,
                        key: sec.key(k),
                        owner: format!("{} (process {pn})", sec.key(k)),
                        maxbytes: *maxbytes,
                    });
                    Some(p)
                }
                LogSpec::Path(t, span) => {
                    let key = sec.key(k);
                    match cx.expand(t, span, &key, &with_env) {
                        Some(s) if s.trim().is_empty() => {
                            cx.at(
                                span.start,
                                key,
                                "the log file path expands to an empty string",
                            );
                            None
                        }
                        Some(s) => {
                            let p = resolve_clean(&sh.here, &s);
                            uses.push(LogUse {
                                path: p.clone(),
                                at: Some(span.start),
                                key: key.clone(),
                                owner: format!("{key} (process {pn})"),
                                maxbytes: *maxbytes,
                            });
                            Some(p)
                        }
                        None => None,
                    }
                }
            };
            logs.push(LogConfig {
                path,
                maxbytes: *maxbytes,
                backups: *backups,
            });
        }
        let mut logs = logs.into_iter();
        let stdout_log = logs.next().unwrap_or(LogConfig {
            path: None,
            maxbytes: DEFAULT_LOG_MAXBYTES,
            backups: DEFAULT_LOG_BACKUPS,
        });
        let stderr_log = logs.next().unwrap_or(LogConfig {
            path: None,
            maxbytes: DEFAULT_LOG_MAXBYTES,
            backups: DEFAULT_LOG_BACKUPS,
        });
        processes.push(ProcessConfig {
            name: pn,
            num,
            argv,
            stdout_log,
            stderr_log,
        });
        // Every process would repeat the same errors: report them once.
        if cx.errors.len() > before || !per_process_ok {
            break;
        }
    }

    Some((
        ProgramConfig {
            name: name.to_string(),
            command: command.map(|(c, _)| c.to_string()).unwrap_or_default(),
            directory,
            environment,
            user,
            numprocs,
            numprocs_start,
            process_name: template.to_string(),
            priority,
            autostart,
            autorestart,
            startsecs,
            startretries,
            exitcodes,
            stopsignal,
            stopwaitsecs,
            stopasgroup,
            killasgroup,
            redirect_stderr,
            backoff,
            events_from_stdout,
            critical,
            processes,
        },
        uses,
        name_at,
    ))
}

/// Every log file: no two processes (or channels) share one, and each can be written —
/// its directory is created and probed now, not at the first write.
fn check_logs(cx: &mut Ctx<'_>, logs: &[LogUse], logs_dir: &Path, logs_ok: bool) {
    let mut dirs: HashMap<PathBuf, Result<(), String>> = HashMap::new();
    // Checked with data_dir (and reported there when it failed).
    dirs.insert(logs_dir.to_path_buf(), Ok(()));
    let mut owners: HashMap<&Path, &str> = HashMap::new();
    for u in logs {
        if u.at.is_none() && !logs_ok {
            continue;
        }
        if let Some(other) = owners.get(u.path.as_path()) {
            if let Some(at) = u.at {
                cx.at(
                    at,
                    u.key.clone(),
                    format!("log file {} is also used by {other}", u.path.display()),
                );
            }
            continue;
        }
        owners.insert(&u.path, &u.owner);
        let Some(at_custom) = u.at else { continue };
        match std::fs::metadata(&u.path) {
            Ok(m) if m.is_dir() => {
                cx.at(
                    at_custom,
                    u.key.clone(),
                    format!("{} is a directory", u.path.display()),
                );
                continue;
            }
            Ok(m) if !m.is_file() => {
                // /dev/stdout and the like: written as is, never rotated.
                if u.maxbytes != 0 {
                    cx.at(
                        at_custom,
                        u.key.clone(),
                        format!(
                            "{} is not a regular file and cannot be rotated; set {}_maxbytes = 0",
                            u.path.display(),
                            u.key.rsplit('.').next().unwrap_or("")
                        ),
                    );
                }
                continue;
            }
            Ok(_) => {
                if let Err(e) = std::fs::OpenOptions::new().append(true).open(&u.path) {
                    cx.at(
                        at_custom,
                        u.key.clone(),
                        format!("cannot write to {}: {e}", u.path.display()),
                    );
                    continue;
                }
            }
            Err(_) => {}
        }
        let Some(parent) = u.path.parent() else {
            continue;
        };
        let result = dirs.entry(parent.to_path_buf()).or_insert_with(|| {
            ensure_dir(parent).map_err(|e| format!("cannot use log directory: {e}"))
        });
        if let Err(e) = result {
            let e = e.clone();
            cx.at(at_custom, u.key.clone(), e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;
    use vigil_core::program::Policy;

    fn test_env() -> Env {
        let mut vars = BTreeMap::new();
        vars.insert("HOME".to_string(), "/home/tester".to_string());
        vars.insert("VIGIL_TEST_TOKEN".to_string(), "s3cret".to_string());
        Env {
            vars,
            host_node_name: "testhost".to_string(),
        }
    }

    fn tmp() -> TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn load_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
        load_with(&dir.join("vigil.toml"), text, &test_env())
    }

    /// Load `text` from a fresh temp dir; panic with the errors if it fails.
    fn ok(text: &str) -> (TempDir, Config) {
        let dir = tmp();
        match load_in(dir.path(), text) {
            Ok(c) => (dir, c),
            Err(e) => panic!("unexpected errors:\n{e}"),
        }
    }

    /// `LINE:COL: key: message` for each error (the file name left out).
    fn render(e: &ConfigErrors) -> Vec<String> {
        e.0.iter()
            .map(|e| {
                if e.key.is_empty() {
                    format!("{}:{}: {}", e.line, e.col, e.message)
                } else {
                    format!("{}:{}: {}: {}", e.line, e.col, e.key, e.message)
                }
            })
            .collect()
    }

    fn errs_in(dir: &Path, text: &str) -> Vec<String> {
        match load_in(dir, text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => render(&e),
        }
    }

    fn errs(text: &str) -> Vec<String> {
        errs_in(tmp().path(), text)
    }

    /// Exactly one error, equal to `want`.
    fn err1(text: &str, want: &str) {
        assert_eq!(errs(text), vec![want.to_string()], "for:\n{text}");
    }

    fn prog<'c>(c: &'c Config, name: &str) -> &'c ProgramConfig {
        match c.program(name) {
            Some(p) => p,
            None => panic!("no program {name}"),
        }
    }

    fn sig(s: &str) -> Signal {
        match Signal::parse(s) {
            Some(s) => s,
            None => panic!("bad signal {s}"),
        }
    }

    // ---------------------------------------------------------------- defaults

    #[test]
    fn empty_file_is_valid() {
        let (dir, c) = ok("");
        assert!(c.programs.is_empty());
        assert!(c.groups.is_empty());
        assert_eq!(c.vigil.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.vigil.data_dir, dir.path().join("vigil-data"));
        assert_eq!(c.vigil.log_level, "info");
        assert!(c.vigil.data_dir.is_dir());
        assert!(c.logs_dir().is_dir());
        assert_eq!(c.source, dir.path().join("vigil.toml"));
    }

    #[test]
    fn program_defaults_match_supervisord() {
        let (dir, c) = ok("[program.bot]\ncommand = \"sleep 10\"\n");
        let p = prog(&c, "bot");
        assert_eq!(p.command, "sleep 10");
        assert_eq!(p.directory, None);
        assert!(p.environment.is_empty());
        assert_eq!(p.user, None);
        assert_eq!(p.numprocs, 1);
        assert_eq!(p.numprocs_start, 0);
        assert_eq!(p.process_name, "%(program_name)s");
        assert_eq!(p.priority, 999);
        assert!(p.autostart);
        assert_eq!(p.autorestart, AutoRestart::Unexpected);
        assert_eq!(p.startsecs, 1);
        assert_eq!(p.startretries, 3);
        assert_eq!(p.exitcodes, vec![0]);
        assert_eq!(p.stopsignal, TERM);
        assert_eq!(p.stopwaitsecs, 10);
        assert!(!p.stopasgroup);
        assert!(!p.killasgroup);
        assert!(!p.redirect_stderr);
        assert_eq!(p.backoff, BackoffPolicy::default());
        assert!(!p.events_from_stdout);
        assert!(!p.critical);
        assert_eq!(p.policy(), Policy::default());
        assert_eq!(p.processes.len(), 1);
        let proc = &p.processes[0];
        assert_eq!(proc.name, "bot");
        assert_eq!(proc.num, 0);
        assert_eq!(proc.argv, vec!["sleep", "10"]);
        let logs = dir.path().join("vigil-data").join("logs");
        assert_eq!(
            proc.stdout_log,
            LogConfig {
                path: Some(logs.join("bot.out.log")),
                maxbytes: 50 * 1024 * 1024,
                backups: 10,
            }
        );
        assert_eq!(proc.stderr_log.path, Some(logs.join("bot.err.log")));
        assert_eq!(c.group_of("bot"), "bot");
    }

    #[test]
    fn programs_and_groups_keep_file_order() {
        let (_d, c) = ok(concat!(
            "[program.zeta]\ncommand = \"z\"\n",
            "[program.alpha]\ncommand = \"a\"\n",
            "[program.mid]\ncommand = \"m\"\n",
            "[group.zz]\nprograms = [\"zeta\"]\n",
            "[group.aa]\nprograms = [\"alpha\", \"mid\"]\n",
        ));
        let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "mid"]);
        let groups: Vec<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(groups, ["zz", "aa"]);
    }

    // ---------------------------------------------------------------- every option

    #[test]
    fn every_option_parsed() {
        let dir = tmp();
        std::fs::create_dir(dir.path().join("work")).expect("mkdir");
        let text = r#"
[vigil]
listen = "0.0.0.0:9090"
data_dir = "state"
log_level = "DEBUG"

[program.bot]
command = "/usr/bin/env python3 -u 'bot main.py' --token %(ENV_TOKEN)s"
directory = "work"
environment = { TOKEN = "%(ENV_VIGIL_TEST_TOKEN)s", MODE = "live" }
user = "root"
numprocs = 1
numprocs_start = 3
process_name = "trader_%(process_num)d"
priority = -5
autostart = false
autorestart = true
startsecs = 0
startretries = 7
exitcodes = [0, 2, 255]
stopsignal = "sigint"
stopwaitsecs = 30
stopasgroup = true
killasgroup = true
redirect_stderr = false
stdout_logfile = "logs/%(process_name)s.stdout"
stdout_logfile_maxbytes = "10KB"
stdout_logfile_backups = 0
stderr_logfile = "NONE"
stderr_logfile_maxbytes = 0
stderr_logfile_backups = 2
backoff = "exponential"
backoff_max = 60
events = "stdout"
critical = true
"#
        .replace("%(process_name)s", "%(program_name)s_%(process_num)d");
        let c = match load_in(dir.path(), &text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.vigil.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(c.vigil.data_dir, dir.path().join("state"));
        assert!(dir.path().join("state/logs").is_dir());
        assert_eq!(c.vigil.log_level, "debug");
        let p = prog(&c, "bot");
        assert_eq!(p.directory, Some(dir.path().join("work")));
        assert_eq!(
            p.environment.get("TOKEN").map(String::as_str),
            Some("s3cret")
        );
        assert_eq!(p.environment.get("MODE").map(String::as_str), Some("live"));
        assert_eq!(p.user.as_deref(), Some("root"));
        assert_eq!(p.numprocs_start, 3);
        assert_eq!(p.process_name, "trader_%(process_num)d");
        assert_eq!(p.priority, -5);
        assert!(!p.autostart);
        assert_eq!(p.autorestart, AutoRestart::Always);
        assert_eq!(p.startsecs, 0);
        assert_eq!(p.startretries, 7);
        assert_eq!(p.exitcodes, vec![0, 2, 255]);
        assert_eq!(
            p.stopsignal,
            Signal {
                number: 2,
                name: "INT"
            }
        );
        assert_eq!(p.stopwaitsecs, 30);
        assert!(p.stopasgroup && p.killasgroup);
        assert!(!p.redirect_stderr);
        assert_eq!(
            p.backoff,
            BackoffPolicy {
                step_ms: 1000,
                exponential: true,
                max_ms: Some(60_000),
            }
        );
        assert!(p.events_from_stdout);
        assert!(p.critical);
        let policy = p.policy();
        assert_eq!(policy.startsecs_ms, 0);
        assert_eq!(policy.stopwait_ms, 30_000);
        let proc = &p.processes[0];
        assert_eq!(proc.name, "trader_3");
        assert_eq!(proc.num, 3);
        // The program's own environment is visible to its command.
        assert_eq!(
            proc.argv,
            vec![
                "/usr/bin/env",
                "python3",
                "-u",
                "bot main.py",
                "--token",
                "s3cret"
            ]
        );
        assert_eq!(
            proc.stdout_log,
            LogConfig {
                path: Some(dir.path().join("logs/bot_3.stdout")),
                maxbytes: 10 * 1024,
                backups: 0,
            }
        );
        assert!(
            dir.path().join("logs").is_dir(),
            "log directory created at load"
        );
        assert_eq!(
            proc.stderr_log,
            LogConfig {
                path: None,
                maxbytes: 0,
                backups: 2,
            }
        );
    }

    #[test]
    fn autorestart_forms() {
        for (v, want) in [
            ("true", AutoRestart::Always),
            ("false", AutoRestart::Never),
            ("\"unexpected\"", AutoRestart::Unexpected),
            ("\"UNEXPECTED\"", AutoRestart::Unexpected),
            ("\"true\"", AutoRestart::Always),
            ("\"false\"", AutoRestart::Never),
        ] {
            let (_d, c) = ok(&format!(
                "[program.a]\ncommand = \"x\"\nautorestart = {v}\n"
            ));
            assert_eq!(prog(&c, "a").autorestart, want, "{v}");
        }
    }

    #[test]
    fn stopsignal_forms() {
        for (v, want) in [
            ("\"TERM\"", "TERM"),
            ("\"SIGHUP\"", "HUP"),
            ("\"usr1\"", "USR1"),
            ("\"sigkill\"", "KILL"),
            ("9", "KILL"),
            ("\"15\"", "TERM"),
        ] {
            let (_d, c) = ok(&format!("[program.a]\ncommand = \"x\"\nstopsignal = {v}\n"));
            assert_eq!(prog(&c, "a").stopsignal, sig(want), "{v}");
        }
    }

    #[test]
    fn byte_sizes() {
        for (v, want) in [
            ("0", 0),
            ("1024", 1024),
            ("\"2048\"", 2048),
            ("\"10KB\"", 10 * 1024),
            ("\"50MB\"", 50 * 1024 * 1024),
            ("\"1GB\"", 1024 * 1024 * 1024),
            ("\"1gb\"", 1024 * 1024 * 1024),
            ("\" 5 mb \"", 5 * 1024 * 1024),
        ] {
            let (_d, c) = ok(&format!(
                "[program.a]\ncommand = \"x\"\nstdout_logfile_maxbytes = {v}\nstderr_logfile_maxbytes = {v}\n"
            ));
            let proc = &prog(&c, "a").processes[0];
            assert_eq!(proc.stdout_log.maxbytes, want, "{v}");
            assert_eq!(proc.stderr_log.maxbytes, want, "{v}");
        }
        assert_eq!(parse_bytes("5TB"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("99999999999999GB"), None);
    }

    #[test]
    fn killasgroup_defaults_to_stopasgroup() {
        let (_d, c) = ok("[program.a]\ncommand = \"x\"\nstopasgroup = true\n");
        assert!(prog(&c, "a").killasgroup);
        let (_d, c) = ok("[program.a]\ncommand = \"x\"\nkillasgroup = true\n");
        let p = prog(&c, "a");
        assert!(p.killasgroup && !p.stopasgroup);
    }

    #[test]
    fn log_none_off_auto_and_redirect() {
        let (dir, c) = ok(concat!(
            "[program.a]\ncommand = \"x\"\nstdout_logfile = \"off\"\nstderr_logfile = \"None\"\n",
            "[program.b]\ncommand = \"x\"\nstdout_logfile = \"AUTO\"\nredirect_stderr = true\n",
            "stderr_logfile = \"/nonexistent/ignored.log\"\n",
        ));
        let a = &prog(&c, "a").processes[0];
        assert_eq!(
            (a.stdout_log.path.clone(), a.stderr_log.path.clone()),
            (None, None)
        );
        let b = prog(&c, "b");
        assert!(b.redirect_stderr);
        assert_eq!(
            b.processes[0].stdout_log.path,
            Some(dir.path().join("vigil-data/logs/b.out.log"))
        );
        assert_eq!(b.processes[0].stderr_log.path, None);
    }

    #[test]
    fn absolute_log_path_and_data_dir() {
        let dir = tmp();
        let data = dir.path().join("abs-data");
        let log = dir.path().join("deep/er/out.log");
        let text = format!(
            "[vigil]\ndata_dir = {:?}\n[program.a]\ncommand = \"x\"\nstdout_logfile = {:?}\n",
            data.display().to_string(),
            log.display().to_string()
        );
        // Loaded from a different directory: absolute paths are kept.
        let other = tmp();
        let c = match load_in(other.path(), &text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.vigil.data_dir, data);
        assert_eq!(
            prog(&c, "a").processes[0].stdout_log.path,
            Some(log.clone())
        );
        assert!(log.parent().is_some_and(Path::is_dir));
    }

    // ---------------------------------------------------------------- expansion

    #[test]
    fn numprocs_expansion() {
        let (dir, c) = ok(concat!(
            "[program.bot]\n",
            "command = \"bot --id %(process_num)d --of %(numprocs)d\"\n",
            "numprocs = 2\n",
            "process_name = \"bot_%(process_num)02d\"\n",
            "stdout_logfile = \"out/%(program_name)s-%(process_num)d.log\"\n",
        ));
        let p = prog(&c, "bot");
        let names: Vec<&str> = p.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bot_00", "bot_01"]);
        let nums: Vec<u32> = p.processes.iter().map(|p| p.num).collect();
        assert_eq!(nums, [0, 1]);
        assert_eq!(p.processes[1].argv, vec!["bot", "--id", "1", "--of", "2"]);
        assert_eq!(
            p.processes[1].stdout_log.path,
            Some(dir.path().join("out/bot-1.log"))
        );
        assert_eq!(
            p.processes[0].stderr_log.path,
            Some(dir.path().join("vigil-data/logs/bot_00.err.log"))
        );

        let (_d, c) = ok(concat!(
            "[program.w]\ncommand = \"w\"\nnumprocs = 3\nnumprocs_start = 8\n",
            "process_name = \"%(program_name)s-%(process_num)d\"\n",
        ));
        let names: Vec<String> = prog(&c, "w")
            .processes
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["w-8", "w-9", "w-10"]);
    }

    #[test]
    fn all_expansion_names() {
        let dir = tmp();
        let here = dir.path().display().to_string();
        let c = match load_in(
            dir.path(),
            concat!(
                "[program.a]\n",
                "command = \"run %(program_name)s %(group_name)s %(here)s %(host_node_name)s %(ENV_HOME)s 100%% %(numprocs)d\"\n",
                "directory = \"%(here)s\"\n",
                "environment = { WHERE = \"%(here)s/%(program_name)s\", G = \"%(group_name)s\" }\n",
                "[group.g]\nprograms = [\"a\"]\n",
            ),
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let p = prog(&c, "a");
        assert_eq!(
            p.processes[0].argv,
            vec![
                "run",
                "a",
                "g",
                here.as_str(),
                "testhost",
                "/home/tester",
                "100%",
                "1"
            ]
        );
        assert_eq!(p.directory.as_deref(), Some(dir.path()));
        assert_eq!(p.environment.get("WHERE"), Some(&format!("{here}/a")));
        assert_eq!(p.environment.get("G").map(String::as_str), Some("g"));
        assert_eq!(c.group_of("a"), "g");
    }

    #[test]
    fn data_dir_expansion_and_relative_resolution() {
        let (dir, c) = ok("[vigil]\ndata_dir = \"%(here)s/d1/../d2\"\n");
        assert_eq!(c.vigil.data_dir, dir.path().join("d1/../d2"));
        // `.` components are dropped, `..` kept.
        let (dir, c) = ok("[vigil]\ndata_dir = \"./d0/./d1/../d2\"\n");
        assert_eq!(
            c.vigil.data_dir.to_string_lossy(),
            format!("{}/d0/d1/../d2", dir.path().display())
        );
        let (dir, c) = ok("[vigil]\ndata_dir = \"sub/data\"\n");
        assert_eq!(c.vigil.data_dir, dir.path().join("sub/data"));
        assert!(dir.path().join("sub/data/logs").is_dir());
    }

    #[test]
    fn expansion_errors_are_located_at_the_percent() {
        err1(
            "[program.a]\ncommand = \"run %(nope)s\"\n",
            "2:16: program.a.command: unknown name %(nope); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
        );
        err1(
            "[program.a]\ncommand = 'x %(ENV_VIGIL_UNSET)s'\n",
            "2:14: program.a.command: %(ENV_VIGIL_UNSET): VIGIL_UNSET is not set in vigil's environment",
        );
        err1(
            "[program.a]\ncommand = \"date +%Y\"\n",
            "2:18: program.a.command: '%' must start \"%(name)s\" or be doubled as '%%' for a literal '%'",
        );
        // With escapes in the string the error points at the value.
        err1(
            "[program.a]\ncommand = \"a\\tb %(x)s\"\n",
            "2:11: program.a.command: unknown name %(x); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
        );
        err1(
            "[program.a]\ncommand = \"x\"\nenvironment = { PORT = \"80%(process_num)02d\" }\n",
            "3:27: program.a.environment.PORT: %(process_num) is not available here (this option is per program in vigil, not per process); available names: group_name, here, host_node_name, numprocs, program_name, ENV_<NAME>",
        );
        err1(
            "[program.a]\ncommand = \"x\"\ndirectory = \"/srv/%(process_num)d\"\n",
            "3:19: program.a.directory: %(process_num) is not available here (this option is per program in vigil, not per process); available names: group_name, here, host_node_name, numprocs, program_name, ENV_<NAME>",
        );
        err1(
            "[program.a]\ncommand = \"x\"\nprocess_name = \"%(program_name)d\"\n",
            "3:17: program.a.process_name: %(program_name)d needs a number, but program_name is a string (use %(program_name)s)",
        );
        err1(
            "[vigil]\ndata_dir = \"%(program_name)s\"\n",
            "2:13: vigil.data_dir: unknown name %(program_name); available names: here, host_node_name, ENV_<NAME>",
        );
    }

    #[test]
    fn numprocs_errors_reported_once() {
        // Two processes would each hit the same error; it is reported once.
        err1(
            "[program.a]\ncommand = \"%(bad)s\"\nnumprocs = 2\nprocess_name = \"a%(process_num)d\"\n",
            "2:12: program.a.command: unknown name %(bad); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
        );
    }

    // ---------------------------------------------------------------- type errors

    #[test]
    fn type_errors_say_expected_and_found() {
        let cases: &[(&str, &str)] = &[
            (
                "startsecs = \"abc\"",
                "program.bot.startsecs: expected a non-negative integer, found string \"abc\"",
            ),
            (
                "startsecs = -1",
                "program.bot.startsecs: expected a non-negative integer, found integer -1",
            ),
            (
                "startretries = 1.5",
                "program.bot.startretries: expected a non-negative integer, found float 1.5",
            ),
            (
                "startretries = 4294967296",
                "program.bot.startretries: expected a non-negative integer no larger than 4294967295, found integer 4294967296",
            ),
            (
                "stopwaitsecs = true",
                "program.bot.stopwaitsecs: expected a non-negative integer, found boolean true",
            ),
            (
                "numprocs = 0",
                "program.bot.numprocs: expected a positive integer, found integer 0",
            ),
            (
                "numprocs = 100000",
                "program.bot.numprocs: expected a positive integer no larger than 10000, found integer 100000",
            ),
            (
                "numprocs_start = -3",
                "program.bot.numprocs_start: expected a non-negative integer, found integer -3",
            ),
            (
                "priority = \"high\"",
                "program.bot.priority: expected an integer, found string \"high\"",
            ),
            (
                "autostart = \"yes\"",
                "program.bot.autostart: expected a boolean (true or false), found string \"yes\"",
            ),
            (
                "autorestart = \"sometimes\"",
                "program.bot.autorestart: expected true, false or \"unexpected\", found string \"sometimes\"",
            ),
            (
                "autorestart = 1",
                "program.bot.autorestart: expected true, false or \"unexpected\", found integer 1",
            ),
            (
                "exitcodes = 0",
                "program.bot.exitcodes: expected an array of exit codes such as [0, 2], found integer 0",
            ),
            (
                "exitcodes = [\"0\"]",
                "program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found string \"0\"",
            ),
            (
                "exitcodes = [-1]",
                "program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found integer -1",
            ),
            (
                "stopsignal = \"SIGFOO\"",
                "program.bot.stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found string \"SIGFOO\"",
            ),
            (
                "stopsignal = 99",
                "program.bot.stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found integer 99",
            ),
            (
                "stopasgroup = 1",
                "program.bot.stopasgroup: expected a boolean (true or false), found integer 1",
            ),
            (
                "killasgroup = \"true\"",
                "program.bot.killasgroup: expected a boolean (true or false), found string \"true\"",
            ),
            (
                "redirect_stderr = []",
                "program.bot.redirect_stderr: expected a boolean (true or false), found array",
            ),
            (
                "stdout_logfile = 5",
                "program.bot.stdout_logfile: expected a string, found integer 5",
            ),
            (
                "stdout_logfile = \"\"",
                "program.bot.stdout_logfile: expected a file path, \"AUTO\" or \"NONE\", found string \"\"",
            ),
            (
                "stderr_logfile = \"syslog\"",
                "program.bot.stderr_logfile: expected a file path, \"AUTO\" or \"NONE\", found string \"syslog\"",
            ),
            (
                "stdout_logfile_maxbytes = \"5TB\"",
                "program.bot.stdout_logfile_maxbytes: expected a size in bytes (an integer, or a string such as \"50MB\", \"10KB\", \"1GB\"), found string \"5TB\"",
            ),
            (
                "stderr_logfile_maxbytes = -1",
                "program.bot.stderr_logfile_maxbytes: expected a size in bytes (an integer, or a string such as \"50MB\", \"10KB\", \"1GB\"), found integer -1",
            ),
            (
                "stdout_logfile_backups = -1",
                "program.bot.stdout_logfile_backups: expected a non-negative integer, found integer -1",
            ),
            (
                "stderr_logfile_backups = \"3\"",
                "program.bot.stderr_logfile_backups: expected a non-negative integer, found string \"3\"",
            ),
            (
                "backoff = \"quadratic\"",
                "program.bot.backoff: expected \"linear\" or \"exponential\", found string \"quadratic\"",
            ),
            (
                "backoff_max = 0",
                "program.bot.backoff_max: expected a positive integer (seconds), found integer 0",
            ),
            (
                "events = \"stderr\"",
                "program.bot.events: expected \"stdout\", found string \"stderr\"",
            ),
            (
                "events = true",
                "program.bot.events: expected \"stdout\", found boolean true",
            ),
            (
                "critical = \"no\"",
                "program.bot.critical: expected a boolean (true or false), found string \"no\"",
            ),
            (
                "environment = \"A=1\"",
                "program.bot.environment: expected a table of strings such as { PORT = \"8080\" }, found string \"A=1\"",
            ),
            (
                "environment = { PORT = 8080 }",
                "program.bot.environment.PORT: expected a string (quote it: \"8080\"), found integer 8080",
            ),
            (
                "environment = { L = [1] }",
                "program.bot.environment.L: expected a string, found array",
            ),
            (
                "directory = 1979-05-27",
                "program.bot.directory: expected a string, found datetime 1979-05-27",
            ),
            (
                "user = 0",
                "program.bot.user: expected a string, found integer 0",
            ),
            (
                "process_name = { a = 1 }",
                "program.bot.process_name: expected a string, found table",
            ),
        ];
        for (line, want) in cases {
            let text = format!("[program.bot]\ncommand = \"x\"\n{line}\n");
            let got = errs(&text);
            assert_eq!(got.len(), 1, "{line}: {got:?}");
            let (pos, rest) = got[0].split_once(' ').unwrap_or_default();
            assert_eq!(rest, *want, "{line}");
            // Located at the value: line 3, after `key = ` (or inside it, for nested values).
            assert!(pos.starts_with("3:"), "{line}: {pos}");
        }
    }

    #[test]
    fn type_error_columns() {
        err1(
            "[program.bot]\ncommand = \"x\"\nstartsecs = \"abc\"\n",
            "3:13: program.bot.startsecs: expected a non-negative integer, found string \"abc\"",
        );
        err1(
            "[program.bot]\ncommand = \"x\"\nexitcodes = [0, 1, 300]\n",
            "3:20: program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found integer 300",
        );
        err1(
            "[program.bot]\ncommand = \"x\"\n  environment = { A = \"1\", B = false }\n",
            "3:32: program.bot.environment.B: expected a string (quote it: \"false\"), found boolean false",
        );
        err1(
            "[program.bot]\ncommand = 42\n",
            "2:11: program.bot.command: expected a string, found integer 42",
        );
        err1(
            "[program]\nbot = 3\n",
            "2:7: program.bot: expected a table ([program.NAME]), found integer 3",
        );
        err1(
            "[[program]]\ncommand = \"x\"\n",
            "1:1: program: expected a table of programs ([program.NAME] sections), found array",
        );
        err1(
            "vigil = \"x\"\n",
            "1:9: vigil: expected a table ([vigil]), found string \"x\"",
        );
    }

    #[test]
    fn vigil_section_errors() {
        err1(
            "[vigil]\nlisten = \"localhost:7070\"\n",
            "2:10: vigil.listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found string \"localhost:7070\"",
        );
        err1(
            "[vigil]\nlisten = 7070\n",
            "2:10: vigil.listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found integer 7070",
        );
        err1(
            "[vigil]\nlog_level = \"verbose\"\n",
            "2:13: vigil.log_level: expected one of \"error\", \"warn\", \"info\", \"debug\", \"trace\", found string \"verbose\"",
        );
        err1(
            "[vigil]\ndata_dir = 5\n",
            "2:12: vigil.data_dir: expected a string, found integer 5",
        );
        err1(
            "[vigil]\ndata_dir = \"\"\n",
            "2:12: vigil.data_dir: expected a directory path, found string \"\"",
        );
        let (_d, c) = ok("[vigil]\nlisten = \"[::1]:8000\"\nlog_level = \"trace\"\n");
        assert_eq!(c.vigil.listen.to_string(), "[::1]:8000");
        assert_eq!(c.vigil.log_level, "trace");
    }

    // ---------------------------------------------------------------- unknown keys and sections

    #[test]
    fn unknown_keys_with_did_you_mean() {
        assert_eq!(
            errs(concat!(
                "[vigil]\nlisen = \"127.0.0.1:1\"\nfoo = 1\n",
                "[program.bot]\ncomand = \"x\"\nautorestrat = true\nstdout_logfile_maxbyte = 1\n",
                "umask = \"022\"\nzzzzzz = 1\n",
                "[group.g]\nprogram = [\"bot\"]\n",
            )),
            vec![
                "2:1: vigil.lisen: unknown key, did you mean \"listen\"?",
                "3:1: vigil.foo: unknown key; known keys: listen, data_dir, log_level",
                "4:1: program.bot.command: required key is missing",
                "5:1: program.bot.comand: unknown key, did you mean \"command\"?",
                "6:1: program.bot.autorestrat: unknown key, did you mean \"autorestart\"?",
                "7:1: program.bot.stdout_logfile_maxbyte: unknown key, did you mean \"stdout_logfile_maxbytes\"?",
                "8:1: program.bot.umask: unknown key (a supervisord option vigil does not support)",
                "9:1: program.bot.zzzzzz: unknown key",
                "10:1: group.g.programs: required key is missing",
                "11:1: group.g.program: unknown key, did you mean \"programs\"?",
            ]
        );
    }

    #[test]
    fn unknown_sections() {
        assert_eq!(
            errs(concat!(
                "listen = \"127.0.0.1:1\"\n",
                "junk = 1\n",
                "[programs.bot]\ncommand = \"x\"\n",
                "[alert]\nx = 1\n",
                "[zzz]\n",
            )),
            vec![
                "1:1: listen: unknown top-level key; \"listen\" belongs in the [vigil] section",
                "2:1: junk: unknown top-level key (keys belong in a section such as [vigil] or [program.NAME])",
                "3:2: programs: unknown section, did you mean \"program\"?",
                "5:2: alert: unknown section, did you mean \"alerts\"?",
                "7:2: zzz: unknown section; known sections: vigil, program, group, checks, rules, halt, alerts, auth, jobs, ingest, eventlistener, cluster, monitoring",
            ]
        );
    }

    #[test]
    fn reserved_sections_are_skipped() {
        let (_d, c) = ok(concat!(
            "[checks.feed]\nanything = \"goes\"\n",
            "[[rules]]\nwhen = 1\n",
            "[halt]\nposition = \"close\"\n",
            "[alerts]\nx = 1\n[auth]\nusers = []\n[jobs]\ny = 2\n[ingest]\nfiles = []\n",
            "[eventlistener.l]\ncommand = 1\n[cluster]\n[monitoring]\nz = true\n",
        ));
        assert!(c.programs.is_empty());
        assert_eq!(RESERVED_SECTIONS.len(), 10);
    }

    // ---------------------------------------------------------------- program semantics

    #[test]
    fn missing_command_points_at_header() {
        err1(
            "[vigil]\n\n  [program.bot]\nautostart = true\n",
            "3:3: program.bot.command: required key is missing",
        );
    }

    #[test]
    fn command_splitting_errors() {
        err1(
            "[program.a]\ncommand = \"\"\n",
            "2:11: program.a.command: the command is empty",
        );
        err1(
            "[program.a]\ncommand = \"   \"\n",
            "2:11: program.a.command: the command is empty",
        );
        err1(
            "[program.a]\ncommand = \"echo 'unterminated\"\n",
            "2:11: program.a.command: cannot split the command line: unbalanced quotes or a trailing backslash",
        );
        let (_d, c) = ok("[program.a]\ncommand = '''sh -c \"echo hi; exit 3\"'''\n");
        assert_eq!(
            prog(&c, "a").processes[0].argv,
            vec!["sh", "-c", "echo hi; exit 3"]
        );
    }

    #[test]
    fn invalid_names() {
        assert_eq!(
            errs(concat!(
                "[program.\"a b\"]\ncommand = \"x\"\n",
                "[program.\"c:d\"]\ncommand = \"x\"\n",
                "[program.\"\"]\ncommand = \"x\"\n",
                "[program.ok]\ncommand = \"x\"\nprocess_name = \"p/%(process_num)d\"\n",
                "[group.\"g/h\"]\nprograms = [\"ok\"]\n",
            )),
            vec![
                "1:10: program.a b: invalid program name: contains whitespace",
                "3:10: program.c:d: invalid program name: contains ':'",
                "5:10: program.: invalid program name: is empty",
                "9:16: program.ok.process_name: invalid process name \"p/0\": contains '/'",
                "10:8: group.g/h: invalid group name: contains '/'",
            ]
        );
    }

    #[test]
    fn numprocs_needs_process_num() {
        err1(
            "[program.a]\ncommand = \"x\"\nnumprocs = 2\n",
            "1:1: program.a.process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
        );
        err1(
            "[program.a]\ncommand = \"x\"\nnumprocs = 3\nprocess_name = \"a_%(numprocs)d\"\n",
            "4:16: program.a.process_name: numprocs = 3 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
        );
    }

    #[test]
    fn duplicate_process_names() {
        assert_eq!(
            errs(concat!(
                "[program.a]\ncommand = \"x\"\nprocess_name = \"w%(process_num)d\"\nnumprocs = 2\n",
                "[program.b]\ncommand = \"x\"\nprocess_name = \"w1\"\n",
                "[program.w0]\ncommand = \"x\"\n",
            )),
            vec![
                "7:16: program.b.process_name: process name \"w1\" is also used by program \"a\"",
                "8:1: program.w0.process_name: process name \"w0\" is also used by program \"a\"",
            ]
        );
    }

    #[test]
    fn stopasgroup_without_killasgroup_is_an_error() {
        err1(
            "[program.a]\ncommand = \"x\"\nstopasgroup = true\nkillasgroup = false\n",
            "4:15: program.a.killasgroup: cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
        );
    }

    #[test]
    fn environment_variable_names() {
        err1(
            "[program.a]\ncommand = \"x\"\nenvironment = { \"A=B\" = \"1\" }\n",
            "3:17: program.a.environment.A=B: invalid variable name (empty, or contains '=' or NUL)",
        );
    }

    #[test]
    fn directory_checks() {
        let dir = tmp();
        std::fs::write(dir.path().join("afile"), "x").expect("write");
        let got = errs_in(
            dir.path(),
            "[program.a]\ncommand = \"x\"\ndirectory = \"missing\"\n[program.b]\ncommand = \"x\"\ndirectory = \"afile\"\n",
        );
        assert_eq!(
            got,
            vec![
                format!(
                    "3:13: program.a.directory: directory {} does not exist",
                    dir.path().join("missing").display()
                ),
                format!(
                    "6:13: program.b.directory: {} is not a directory",
                    dir.path().join("afile").display()
                ),
            ]
        );
    }

    #[test]
    fn user_must_exist() {
        err1(
            "[program.a]\ncommand = \"x\"\nuser = \"no-such-user-vigil-test\"\n",
            "3:8: program.a.user: no such user \"no-such-user-vigil-test\"",
        );
        err1(
            "[program.a]\ncommand = \"x\"\nuser = \"\"\n",
            "3:8: program.a.user: expected a user name or uid, found string \"\"",
        );
        let (_d, c) = ok("[program.a]\ncommand = \"x\"\nuser = \"root\"\n");
        assert_eq!(prog(&c, "a").user.as_deref(), Some("root"));
        let (_d, c) = ok("[program.a]\ncommand = \"x\"\nuser = \"0\"\n");
        assert_eq!(prog(&c, "a").user.as_deref(), Some("0"));
    }

    // ---------------------------------------------------------------- groups

    #[test]
    fn group_membership() {
        let (_d, c) = ok(concat!(
            "[program.feed]\ncommand = \"f\"\n",
            "[program.bot]\ncommand = \"b\"\n",
            "[program.solo]\ncommand = \"s\"\n",
            "[group.trading]\nprograms = [\"feed\", \"bot\"]\npriority = 10\n",
            "[group.other]\nprograms = [\"solo\"]\n",
        ));
        assert_eq!(
            c.groups,
            vec![
                GroupConfig {
                    name: "trading".into(),
                    programs: vec!["feed".into(), "bot".into()],
                    priority: 10,
                },
                GroupConfig {
                    name: "other".into(),
                    programs: vec!["solo".into()],
                    priority: 999,
                },
            ]
        );
        assert_eq!(c.group_of("bot"), "trading");
        assert_eq!(c.group_of("solo"), "other");
        // A group may carry the name of its own member.
        let (_d, c) = ok("[program.bot]\ncommand = \"b\"\n[group.bot]\nprograms = [\"bot\"]\n");
        assert_eq!(c.group_of("bot"), "bot");
    }

    #[test]
    fn group_errors() {
        assert_eq!(
            errs(concat!(
                "[program.feed]\ncommand = \"f\"\n",
                "[program.bot]\ncommand = \"b\"\n",
                "[group.a]\nprograms = [\"feed\", \"bto\", \"nothing\", 3, \"feed\"]\n",
                "[group.b]\nprograms = [\"feed\"]\npriority = \"x\"\n",
                "[group.c]\nprograms = []\n",
                "[group.d]\nprograms = \"bot\"\n",
                "[group.bot]\nprograms = [\"bot\"]\n",
                "[group.feed]\nprograms = [\"bot\"]\n",
            )),
            vec![
                "6:21: group.a.programs: no program \"bto\", did you mean \"bot\"?",
                "6:28: group.a.programs: no program \"nothing\" (each must be a [program.NAME])",
                "6:39: group.a.programs: expected a program name (string), found integer 3",
                "6:42: group.a.programs: program \"feed\" is listed twice",
                "8:13: group.b.programs: program \"feed\" is already in group \"a\" (a program belongs to at most one group)",
                "9:12: group.b.priority: expected an integer, found string \"x\"",
                "11:12: group.c.programs: expected at least one program name, found an empty array",
                "13:12: group.d.programs: expected an array of program names, found string \"bot\"",
                "16:8: group.feed: group name \"feed\" is also the name of program \"feed\", which is not in this group",
                "17:13: group.feed.programs: program \"bot\" is already in group \"bot\" (a program belongs to at most one group)",
            ]
        );
    }

    // ---------------------------------------------------------------- paths

    #[test]
    fn unwritable_log_dir_is_an_error_at_load() {
        let dir = tmp();
        // A regular file where a directory is expected: fails even for root.
        std::fs::write(dir.path().join("blocker"), "x").expect("write");
        let got = errs_in(
            dir.path(),
            "[program.a]\ncommand = \"x\"\nstdout_logfile = \"blocker/sub/a.log\"\nstderr_logfile = \"blocker/a.err\"\n",
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with(&format!(
                "3:18: program.a.stdout_logfile: cannot use log directory: cannot create directory {}:",
                dir.path().join("blocker/sub").display()
            )),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("4:18: program.a.stderr_logfile: cannot use log directory: "),
            "{got:?}"
        );
    }

    #[test]
    fn unusable_data_dir() {
        let dir = tmp();
        std::fs::write(dir.path().join("blocker"), "x").expect("write");
        let got = errs_in(
            dir.path(),
            "[vigil]\ndata_dir = \"blocker\"\n[program.a]\ncommand = \"x\"\n",
        );
        assert_eq!(
            got,
            vec![format!(
                "2:12: vigil.data_dir: {} is not a directory",
                dir.path().join("blocker").display()
            )]
        );
        // The default data_dir: the error points at [vigil], or at 1:1 without one.
        let dir = tmp();
        std::fs::write(dir.path().join("vigil-data"), "x").expect("write");
        let got = errs_in(dir.path(), "# comment\n[program.a]\ncommand = \"x\"\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("1:1: vigil.data_dir: "), "{got:?}");
        let got = errs_in(dir.path(), "\n[vigil]\nlisten = \"127.0.0.1:1\"\n");
        assert!(got[0].starts_with("2:1: vigil.data_dir: "), "{got:?}");
        // A file where the logs directory goes.
        let dir = tmp();
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/logs"), "x").expect("write");
        let got = errs_in(dir.path(), "[vigil]\ndata_dir = \"d\"\n");
        assert_eq!(
            got,
            vec![format!(
                "2:12: vigil.data_dir: {} is not a directory",
                dir.path().join("d/logs").display()
            )]
        );
    }

    #[test]
    fn log_file_checks() {
        let dir = tmp();
        std::fs::create_dir(dir.path().join("adir")).expect("mkdir");
        let got = errs_in(
            dir.path(),
            concat!(
                "[program.a]\ncommand = \"x\"\nstdout_logfile = \"adir\"\n",
                "[program.b]\ncommand = \"x\"\nstdout_logfile = \"shared.log\"\n",
                "[program.c]\ncommand = \"x\"\nstderr_logfile = \"shared.log\"\n",
                "[program.d]\ncommand = \"x\"\nstdout_logfile = \"/dev/null\"\n",
                "[program.e]\ncommand = \"x\"\nnumprocs = 2\nprocess_name = \"e%(process_num)d\"\nstdout_logfile = \"e.log\"\n",
            ),
        );
        assert_eq!(
            got,
            vec![
                format!("3:18: program.a.stdout_logfile: {} is a directory", dir.path().join("adir").display()),
                format!(
                    "9:18: program.c.stderr_logfile: log file {} is also used by program.b.stdout_logfile (process b)",
                    dir.path().join("shared.log").display()
                ),
                "12:18: program.d.stdout_logfile: /dev/null is not a regular file and cannot be rotated; set stdout_logfile_maxbytes = 0".to_string(),
                format!(
                    "17:18: program.e.stdout_logfile: log file {} is also used by program.e.stdout_logfile (process e0)",
                    dir.path().join("e.log").display()
                ),
            ]
        );
        let (_d, c) = ok(
            "[program.d]\ncommand = \"x\"\nstdout_logfile = \"/dev/stdout\"\nstdout_logfile_maxbytes = 0\n",
        );
        assert_eq!(
            prog(&c, "d").processes[0].stdout_log.path,
            Some(PathBuf::from("/dev/stdout"))
        );
    }

    // ---------------------------------------------------------------- all errors at once

    #[test]
    fn all_errors_reported_together_in_file_order() {
        let got = errs(concat!(
            "[program.b]\n",           // 1
            "command = \"x\"\n",       // 2
            "startsecs = \"slow\"\n",  // 3
            "stopsignal = \"NOPE\"\n", // 4
            "[vigil]\n",               // 5
            "listen = \"x\"\n",        // 6
            "[program.a]\n",           // 7
            "numprocs = 0\n",          // 8
            "[group.g]\n",             // 9
            "programs = [\"zzz\"]\n",  // 10
            "[bogus]\n",               // 11
        ));
        let positions: Vec<&str> = got.iter().filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(
            positions,
            [
                "3:13:", "4:14:", "6:10:", "7:1:", "8:12:", "10:13:", "11:2:"
            ],
            "{got:#?}"
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        assert_eq!(
            errs("[vigil]\nlisten = \n"),
            vec!["2:10: TOML syntax error: string values must be quoted, expected literal string"]
        );
        let got = errs("[program.a]\ncommand = \"x\"\ncommand = \"y\"\n");
        assert_eq!(got, vec!["3:1: TOML syntax error: duplicate key"]);
        let got = errs("[program.a\ncommand = 'a'\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("1:11: TOML syntax error: "), "{got:?}");
    }

    #[test]
    fn display_and_unreadable_file() {
        let dir = tmp();
        let missing = dir.path().join("nope.toml");
        let e = match load(&missing) {
            Ok(_) => panic!("loaded a missing file"),
            Err(e) => e,
        };
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 0);
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read the config file: ",
                missing.display()
            )),
            "{e}"
        );
        let path = dir.path().join("v.toml");
        std::fs::write(
            &path,
            "[program.bot]\ncommand = \"x\"\nstartsecs = \"abc\"\nnumprocs = 0\n",
        )
        .expect("write");
        let e = match load(&path) {
            Ok(_) => panic!("loaded a bad file"),
            Err(e) => e,
        };
        let p = path.display();
        assert_eq!(
            e.to_string(),
            format!(
                "{p}:3:13: program.bot.startsecs: expected a non-negative integer, found string \"abc\"\n\
                 {p}:4:12: program.bot.numprocs: expected a positive integer, found integer 0"
            )
        );
        std::fs::write(&path, "a = = 1\n").expect("write");
        let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.starts_with(&format!("{p}:1:5: TOML syntax error: ")),
            "{e}"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        let t = "ab\r\né=\"x\"\n\nlast";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (1, 3));
        assert_eq!(line_col(t, 4), (2, 1));
        // After the two-byte 'é'.
        assert_eq!(line_col(t, 6), (2, 2));
        // Inside 'é': snapped back to its start.
        assert_eq!(line_col(t, 5), (2, 1));
        assert_eq!(line_col(t, t.len()), (4, 5));
        assert_eq!(line_col(t, 1000), (4, 5));
        // Columns after non-ASCII text in a real error.
        err1(
            "[program.a]\ncommand = \"x\"\nenvironment = { GREETING = \"héllo\", N = 1 }\n",
            "3:41: program.a.environment.N: expected a string (quote it: \"1\"), found integer 1",
        );
    }

    // ---------------------------------------------------------------- tests/data/config

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config")
    }

    /// Copy an example to a temp dir (so nothing is created in the source tree) and load it.
    fn load_example(name: &str) -> (TempDir, Result<Config, ConfigErrors>) {
        let dir = tmp();
        let text = std::fs::read_to_string(data_dir().join(name)).expect("read example");
        let r = load_with(&dir.path().join(name), &text, &test_env());
        (dir, r)
    }

    #[test]
    fn example_full_toml_loads() {
        let (dir, r) = load_example("full.toml");
        let c = match r {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(c.programs.len() >= 3);
        let feed = prog(&c, "feed");
        let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["feed_00", "feed_01"]);
        assert_eq!(c.group_of("bot"), "trading");
        assert!(dir.path().join("vigil-data/logs").is_dir());
    }

    #[test]
    fn docs_example_loads() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
        let doc = std::fs::read_to_string(doc).expect("read docs/config.md");
        let example: String = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_default()
            .to_string();
        assert!(example.contains("[program.bot]"));
        let dir = tmp();
        let mut env = test_env();
        env.vars.insert("KRAKEN_API_KEY".into(), "k".into());
        let c = match load_with(&dir.path().join("vigil.toml"), &example, &env) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let feed = prog(&c, "feed");
        let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["feed_00", "feed_01"]);
        assert_eq!(
            prog(&c, "bot")
                .environment
                .get("API_KEY")
                .map(String::as_str),
            Some("k")
        );
    }

    /// Each bad example fails with exactly the lines its README section lists.
    #[test]
    fn example_bad_files_match_readme() {
        let readme = std::fs::read_to_string(data_dir().join("README.md")).expect("read README");
        let mut checked = 0;
        let mut current: Option<String> = None;
        let mut in_block = false;
        let mut expected: Vec<String> = Vec::new();
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
        for line in readme.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                current = Some(h.trim().trim_matches('`').to_string());
            } else if line.starts_with("```") {
                if in_block && let Some(f) = current.take() {
                    sections.push((f, std::mem::take(&mut expected)));
                }
                in_block = !in_block;
            } else if in_block && current.is_some() {
                expected.push(line.to_string());
            }
        }
        for (file, want) in sections {
            if !file.ends_with(".toml") || file == "full.toml" {
                continue;
            }
            let (_d, r) = load_example(&file);
            let got: Vec<String> = match r {
                Ok(_) => panic!("{file} loaded without errors"),
                Err(e) => {
                    e.0.iter()
                        .map(|e| {
                            let e = ConfigError {
                                file: PathBuf::from(&file),
                                ..e.clone()
                            };
                            e.to_string()
                        })
                        .collect()
                }
            };
            assert_eq!(got, want, "{file}");
            checked += 1;
        }
        assert!(checked >= 3, "README lists {checked} bad files");
    }
}
