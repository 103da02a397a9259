//! Loading `vigil.toml`: a spanned TOML parse, then validation of every section into typed
//! values, then the path checks. Every problem is collected (never only the first) and
//! located at the offending key or value as `FILE:LINE:COL` (1-based, columns in characters);
//! a missing required key is located at its section's header. The reference for every key is
//! `docs/config.md`.
//!
//! The validation is shared with supervisord's INI dialect (`super::supervisord`): each format
//! has a front end that turns its sections into typed, located specs ([`ProgramSpec`]), and
//! [`build_program`] / [`assemble`] turn specs into the [`Config`] (expansions, per-process
//! values, path checks, cross-program checks). Error positions are offsets into a [`Ctx`]
//! holding every file read, so one load can report errors in several (included) files.

pub(super) mod expand;
pub(super) mod suggest;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};
use vigil_core::program::{AutoRestart, BackoffPolicy, CrashLoop};

use super::{
    Config, ConfigError, ConfigErrors, Credentials, EVENT_TYPES, EventListenerConfig, GroupConfig,
    InetServerConfig, LogConfig, Password, ProcessConfig, ProgramConfig, ReadinessCheck,
    ReadinessProbe, RpcConfig, SIGNALS, Signal, UnixServerConfig, VigilSection, resolve,
};
use expand::{Names, Value};
pub(crate) use suggest::did_you_mean;

/// Top-level tables that belong to other modules. This loader skips them without a word (not
/// even an unknown-key check); each is parsed and validated by the module that owns it:
/// `checks`, `rules` and `halt` (monitoring and the halt latch), `alerts`, `auth`, `jobs`,
/// `ingest` (tailed event files), `cluster`, `monitoring` and `events` (retention). Any other unknown top-level table
/// is an error with a did-you-mean.
pub const RESERVED_SECTIONS: &[&str] = &[
    "checks",
    "rules",
    "halt",
    "alerts",
    "auth",
    "jobs",
    "ingest",
    "cluster",
    "monitoring",
    "venue",
    "events",
];

/// The sections this loader owns.
const SECTIONS: &[&str] = &["vigil", "program", "group", "eventlistener", "rpc"];

const VIGIL_KEYS: &[&str] = &["listen", "data_dir", "log_level", "reload"];

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
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "backoff",
    "backoff_max",
    "restart_limit",
    "restart_window",
    "events",
    "critical",
    "ready_command",
    "ready_http",
    "ready_tcp",
    "ready_interval",
    "ready_timeout",
    "ready_retries",
    "depends_on",
];

/// Program keys that make no sense for an event listener (stdout is the protocol channel).
pub(super) const NOT_FOR_LISTENERS: &[&str] = &[
    "events",
    "ready_command",
    "ready_http",
    "ready_tcp",
    "ready_interval",
    "ready_timeout",
    "ready_retries",
    "depends_on",
];

/// Keys of an event listener besides the program keys it shares.
pub(super) const LISTENER_ONLY_KEYS: &[&str] = &["events", "buffer_size", "result_handler"];

/// The only `result_handler` supervisord ships, and the only one vigil accepts.
pub(super) const DEFAULT_RESULT_HANDLER: &str = "supervisor.dispatchers:default_handler";

/// The readiness probe keys.
pub(super) const READY_PROBES: &[&str] = &["ready_command", "ready_http", "ready_tcp"];

/// supervisord `[program:x]` options vigil does not implement: still unknown keys, but the
/// message says why.
const SUPERVISORD_ONLY: &[&str] = &["umask", "serverurl", "stdout_syslog", "stderr_syslog"];

const GROUP_KEYS: &[&str] = &["programs", "priority"];

const RPC_KEYS: &[&str] = &[
    "identifier",
    "logfile",
    "logfile_maxbytes",
    "logfile_backups",
    "pidfile",
    "inet",
    "unix",
];
const RPC_INET_KEYS: &[&str] = &["port", "username", "password"];
const RPC_UNIX_KEYS: &[&str] = &["file", "chmod", "username", "password"];

const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Default `[vigil] listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default `*_logfile_maxbytes`: 50 MB.
pub const DEFAULT_LOG_MAXBYTES: u64 = 50 * 1024 * 1024;
/// Default `*_logfile_backups`.
pub const DEFAULT_LOG_BACKUPS: u32 = 10;
/// `numprocs` is capped so a typo cannot ask for billions of processes.
pub const MAX_NUMPROCS: u32 = 10_000;
/// Default event listener `buffer_size`.
pub const DEFAULT_BUFFER_SIZE: usize = 10;
/// Default `ready_interval`.
pub const DEFAULT_READY_INTERVAL_MS: u64 = 1000;
/// Default `ready_timeout`.
pub const DEFAULT_READY_TIMEOUT_MS: u64 = 5000;
/// Default `ready_retries`.
pub const DEFAULT_READY_RETRIES: u32 = 60;
/// `ready_interval` / `ready_timeout` at most one day.
pub(super) const MAX_READY_MS: u64 = 86_400_000;
/// `buffer_size` is capped like `numprocs`.
pub(super) const MAX_BUFFER_SIZE: usize = 1_000_000;

pub(super) const TERM: Signal = Signal {
    number: 15,
    name: "TERM",
};

/// Names that exist in supervisord but not in per-program options of vigil.
pub(super) const NOT_PER_PROCESS: &[(&str, &str)] = &[(
    "process_num",
    "this option is per program in vigil, not per process",
)];

/// Whether `path` is read as supervisord's INI dialect: a `.conf` or `.ini` extension.
pub fn is_supervisord_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("conf") || e.eq_ignore_ascii_case("ini"))
}

/// Load and validate a config file: supervisord's INI dialect for `*.conf` / `*.ini`,
/// vigil.toml otherwise.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = read_config(path)?;
    load_str(path, &text)
}

/// Longest config file read (a config is text; anything bigger is a mistake).
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Read a config file that must be a regular file of at most 16 MiB, so that naming a FIFO,
/// a device such as `/dev/zero`, or a huge file is an error instead of a hang.
pub(super) fn read_text_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_CONFIG_BYTES / 1024 / 1024
        )));
    }
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    Ok(text)
}

/// Read a config file, or the error `FILE: cannot read the config file: …`.
pub(super) fn read_config(path: &Path) -> Result<String, ConfigErrors> {
    read_text_file(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })
}

/// Validate config text as if read from `path` (relative paths and `%(here)s` resolve against
/// its directory; `*.conf`/`*.ini` are supervisord's format, whose `[include]`d files are read
/// from disk). Creates `data_dir`, its `logs` directory and the directories of the configured
/// log files.
pub fn load_str(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let env = Env::from_process();
    if is_supervisord_path(path) {
        super::supervisord::load_with(path, text, &env)
    } else {
        load_with(path, text, &env)
    }
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
#[derive(Clone)]
pub(crate) struct Env {
    pub vars: BTreeMap<String, String>,
    pub host_node_name: String,
}

impl Env {
    pub(super) fn from_process() -> Env {
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

/// One file read during a load. Its bytes occupy the offsets `base .. base + text.len()` of
/// the load's single offset space, so a span locates both the file and the place in it.
pub(super) struct SrcFile {
    pub path: PathBuf,
    pub text: String,
    pub base: usize,
    /// Whether errors show a column (TOML) or only the line (INI).
    pub columns: bool,
}

/// The error sink: every file read (for locations) and every problem found so far, with the
/// offset it was found at (for file order).
pub(super) struct Ctx {
    pub files: Vec<SrcFile>,
    pub errors: Vec<(usize, ConfigError)>,
    /// What is ignored but reported (supervisord's INI dialect: unknown options and
    /// sections, which supervisord ignores and its plugins rely on); `--strict` makes them
    /// errors.
    pub warnings: Vec<(usize, ConfigError)>,
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

    fn key_path(&self) -> KeyPath {
        KeyPath {
            prefix: self.path.clone(),
            sep: ".",
        }
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
        DeValue::String(s) => format!("string {}", short_quoted(s)),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "array".to_string(),
        DeValue::Table(_) => "table".to_string(),
    }
}

/// `"abc"`, cut to 60 characters.
pub(super) fn short_quoted(s: &str) -> String {
    if s.chars().count() > 60 {
        let short: String = s.chars().take(57).collect();
        format!("{:?}", short + "...")
    } else {
        format!("{s:?}")
    }
}

fn int_of(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`.
pub(super) fn one_of(choices: &[&str]) -> String {
    let q: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match q.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", q.join(", ")),
    }
}

/// `p` made absolute against `here`, with `.` components dropped (`..` is kept: it may cross
/// a symlink).
pub(super) fn resolve_clean(here: &Path, p: &str) -> PathBuf {
    resolve(here, Path::new(p)).components().collect()
}

/// Why a program, group or process name is invalid (supervisord's rule).
pub(super) fn name_problem(name: &str) -> Option<&'static str> {
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
pub(super) fn parse_bytes(s: &str) -> Option<u64> {
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

/// A readiness interval or timeout: positive seconds, fractions allowed, to milliseconds.
pub(super) fn secs_to_ms(secs: f64) -> Option<u64> {
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let ms = (secs * 1000.0).round();
    // At least 1 ms, at most a day.
    if ms < 1.0 || ms > MAX_READY_MS as f64 {
        return None;
    }
    Some(ms as u64)
}

/// The expected-value text for readiness durations.
pub(super) const SECS_EXPECTED: &str =
    "a positive number of seconds (at most 86400, e.g. 1 or 0.5)";

/// A listener's `events`: each a known type (case-insensitive), canonical, without duplicates.
/// Errors: the offending names with a suggestion each.
pub(super) fn event_type(name: &str) -> Result<&'static str, String> {
    let t = name.trim();
    if let Some(c) = EVENT_TYPES.iter().find(|c| c.eq_ignore_ascii_case(t)) {
        return Ok(c);
    }
    if t.is_empty() {
        return Err("empty event type name".to_string());
    }
    let upper = t.to_ascii_uppercase();
    match did_you_mean(&upper, EVENT_TYPES) {
        Some(s) => Err(format!("unknown event type {t}, did you mean {s}?")),
        None if upper == "EVENT_BUFFER_OVERFLOW" => Err(
            "unknown event type EVENT_BUFFER_OVERFLOW (supervisord removed it in 3.0; vigil never drops events)"
                .to_string(),
        ),
        None => Err(format!(
            "unknown event type {t}; known types: {}",
            EVENT_TYPES.join(", ")
        )),
    }
}

/// supervisord's `[inet_http_server] port`: `host:port` or `port`; an empty host or `*` means
/// every interface; `localhost` and other names are resolved now.
pub(super) fn parse_inet(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("", s),
    };
    let port: u16 = match port.trim().parse() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "expected a port (1-65535) or HOST:PORT such as \"127.0.0.1:9001\", found {s:?}"
            ));
        }
    };
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host == "*" {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| format!("host name {host:?} has no address"))
        }
        Err(e) => Err(format!("cannot resolve host name {host:?}: {e}")),
    }
}

/// A `chmod` value: octal digits such as `0700` or `700`.
pub(super) fn parse_octal(s: &str) -> Option<u32> {
    let t = s.trim();
    let t = t
        .strip_prefix("0o")
        .or_else(|| t.strip_prefix("0O"))
        .unwrap_or(t);
    if t.is_empty() {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o7777)
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
pub(super) fn ensure_dir(dir: &Path) -> Result<(), String> {
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

/// An existing directory, or why not.
pub(super) fn existing_dir(d: &Path) -> Result<(), String> {
    match std::fs::metadata(d) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", d.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("directory {} does not exist", d.display()))
        }
        Err(e) => Err(format!("cannot access directory {}: {e}", d.display())),
    }
}

pub(super) fn check_user(name: &str) -> Result<(), String> {
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

impl Ctx {
    pub(super) fn new() -> Ctx {
        Ctx {
            files: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Register a file's text; returns the offset of its first byte.
    pub(super) fn add_file(&mut self, path: PathBuf, text: String, columns: bool) -> usize {
        let base = self.files.last().map_or(0, |f| f.base + f.text.len() + 1);
        self.files.push(SrcFile {
            path,
            text,
            base,
            columns,
        });
        base
    }

    /// The file holding `offset` and the offset within it.
    fn locate(&self, offset: usize) -> Option<(&SrcFile, usize)> {
        let f = self.files.iter().rev().find(|f| f.base <= offset)?;
        Some((f, offset - f.base))
    }

    /// The source text of a span (within one file).
    pub(super) fn slice(&self, span: &Range<usize>) -> Option<&str> {
        let (f, start) = self.locate(span.start)?;
        f.text.get(start..start + span.len())
    }

    pub(super) fn at(&mut self, offset: usize, key: impl Into<String>, message: impl Into<String>) {
        let e = self.located(offset, key.into(), message.into(), false);
        self.errors.push((offset, e));
    }

    /// A warning at `offset`: always with its column (`FILE:LINE:COL: key: message`).
    pub(super) fn warn(
        &mut self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let e = self.located(offset, key.into(), message.into(), true);
        self.warnings.push((offset, e));
    }

    /// A problem at `offset`, with its column if the file shows columns (TOML) or `column`.
    fn located(&self, offset: usize, key: String, message: String, column: bool) -> ConfigError {
        let (file, line, col) = match self.locate(offset) {
            Some((f, local)) => {
                let (line, col) = line_col(&f.text, local);
                (
                    f.path.clone(),
                    line,
                    if f.columns || column { col } else { 0 },
                )
            }
            None => (PathBuf::new(), 0, 0),
        };
        ConfigError {
            file,
            line,
            col,
            key,
            message,
        }
    }

    /// The warnings in file order.
    fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut w = std::mem::take(&mut self.warnings);
        w.sort_by_key(|(off, _)| *off);
        w.into_iter().map(|(_, e)| e).collect()
    }

    /// An error another module located (line and column in the first file): kept in file
    /// order with the others.
    pub(super) fn push_located(&mut self, e: ConfigError) {
        let offset = self.files.first().map_or(0, |f| {
            let line_start: usize = f
                .text
                .split_inclusive('\n')
                .take(e.line.saturating_sub(1))
                .map(str::len)
                .sum();
            let col_bytes: usize = f
                .text
                .get(line_start..)
                .unwrap_or("")
                .chars()
                .take(e.col.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            f.base + line_start + col_bytes
        });
        self.errors.push((offset, e));
    }

    /// Offset order (file order, included files after the including one), duplicates (the
    /// same error met once per process) dropped.
    pub(super) fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|(off, _)| *off);
        let mut seen = HashSet::new();
        let errors = self
            .errors
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| {
                seen.insert((
                    e.file.clone(),
                    e.line,
                    e.col,
                    e.key.clone(),
                    e.message.clone(),
                ))
            })
            .collect();
        ConfigErrors(errors)
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
            let message = if SUPERVISORD_ONLY.contains(&name) && known.contains(&"command") {
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

    /// A string value as an owned, located [`Str`].
    fn get_string(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<Str> {
        self.get_str(sec, k).map(|(s, span)| (s.to_string(), span))
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

    fn get_i32(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<i32> {
        self.get_int(sec, k, i32::MIN.into(), i32::MAX.into(), "an integer")
            .and_then(|n| i32::try_from(n).ok())
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

    /// Positive seconds (integer or float) as milliseconds.
    fn get_secs_ms(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<u64> {
        let v = sec.get(k)?;
        let secs = match v.get_ref() {
            DeValue::Integer(_) => int_of(v.get_ref()).map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        let ms = secs.and_then(secs_to_ms);
        if ms.is_none() {
            self.type_error(sec.key(k), v, SECS_EXPECTED);
        }
        ms
    }

    /// An array of strings (each located), or a type error.
    fn get_str_list(&mut self, sec: &Sec<'_, '_>, k: &str, what: &str) -> Vec<Str> {
        let Some(v) = sec.get(k) else {
            return Vec::new();
        };
        match v.get_ref() {
            DeValue::Array(a) => a
                .iter()
                .filter_map(|item| match item.get_ref().as_str() {
                    Some(s) => Some((s.to_string(), item.span())),
                    None => {
                        self.type_error(sec.key(k), item, what);
                        None
                    }
                })
                .collect(),
            _ => {
                self.type_error(sec.key(k), v, &format!("an array of {what}s"));
                Vec::new()
            }
        }
    }

    /// Expand `template` (the string value at `span`); errors are located at the offending
    /// `%` when the value is written without escapes, else at the value.
    pub(super) fn expand(
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
        let Some(raw) = self.slice(span) else {
            return span.start;
        };
        // An INI value: the text itself.
        if raw == decoded {
            return span.start + idx;
        }
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

/// A string value and where it is written.
pub(super) type Str = (String, Range<usize>);

/// How error keys are spelled: `program.bot.startsecs` (TOML) or `[program:bot] startsecs`
/// (INI).
#[derive(Debug, Clone)]
pub(super) struct KeyPath {
    pub prefix: String,
    pub sep: &'static str,
}

impl KeyPath {
    pub(super) fn key(&self, k: &str) -> String {
        format!("{}{}{k}", self.prefix, self.sep)
    }
}

/// The program's log output channel as configured.
pub(super) enum LogSpec {
    /// Not set or `AUTO`: `data_dir/logs/<process>.{out,err}.log`.
    Auto,
    /// `NONE` / `OFF`.
    Off,
    /// A path template (expanded per process, resolved against the config file's directory).
    Path(Str),
}

/// One output channel of a program: `stdout_logfile` and its rotation.
pub(super) struct ChanSpec {
    /// `stdout_logfile` / `stderr_logfile`.
    pub opt: &'static str,
    /// `out` / `err` (the AUTO file name).
    pub ext: &'static str,
    pub spec: LogSpec,
    pub maxbytes: u64,
    pub backups: u32,
}

/// One `environment` entry: its variable, where that is written, its error key and its value
/// template.
pub(super) struct EnvSpec {
    pub var: String,
    pub key: String,
    pub value: Str,
}

/// Readiness options as written.
#[derive(Default)]
pub(super) struct ReadySpec {
    /// Each probe key set: its name (`ready_http`, …) and value template.
    pub probes: Vec<(&'static str, Str)>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<u32>,
    /// The first tuning key set (`ready_interval`, …) and where, for "needs a probe".
    pub tuning_at: Option<(&'static str, usize)>,
}

/// A program (or event listener) as written, typed and located: what a format's front end
/// produces and [`build_program`] turns into a [`ProgramConfig`].
pub(super) struct ProgramSpec {
    pub name: String,
    /// Error keys of this section.
    pub kp: KeyPath,
    /// The section header (missing keys, name errors).
    pub header_at: usize,
    pub command: Option<Str>,
    pub process_name: Option<Str>,
    pub numprocs: u32,
    pub numprocs_start: u32,
    pub numprocs_start_at: usize,
    pub priority: i32,
    pub autostart: bool,
    pub autorestart: AutoRestart,
    pub startsecs: u64,
    pub startretries: u32,
    pub exitcodes: Vec<i32>,
    pub stopsignal: Signal,
    pub stopwaitsecs: u64,
    pub stopasgroup: bool,
    /// As written, and where.
    pub killasgroup: Option<bool>,
    pub killasgroup_at: usize,
    pub redirect_stderr: bool,
    pub backoff: BackoffPolicy,
    pub crash_loop: CrashLoop,
    pub events_from_stdout: bool,
    pub critical: bool,
    pub stdout_events_enabled: bool,
    pub stderr_events_enabled: bool,
    pub stdout_capture_maxbytes: u64,
    pub stderr_capture_maxbytes: u64,
    /// Values are templates (expanded by [`build_program`]).
    pub environment: Vec<EnvSpec>,
    pub directory: Option<Str>,
    pub user: Option<Str>,
    /// stdout, then stderr.
    pub logs: [ChanSpec; 2],
    pub ready: ReadySpec,
    pub depends_on: Vec<Str>,
}

impl ProgramSpec {
    /// supervisord's defaults, for a front end to overwrite.
    pub(super) fn new(name: &str, kp: KeyPath, header_at: usize) -> ProgramSpec {
        let chan = |opt, ext| ChanSpec {
            opt,
            ext,
            spec: LogSpec::Auto,
            maxbytes: DEFAULT_LOG_MAXBYTES,
            backups: DEFAULT_LOG_BACKUPS,
        };
        ProgramSpec {
            name: name.to_string(),
            kp,
            header_at,
            command: None,
            process_name: None,
            numprocs: 1,
            numprocs_start: 0,
            numprocs_start_at: header_at,
            priority: 999,
            autostart: true,
            autorestart: AutoRestart::Unexpected,
            startsecs: 1,
            startretries: 3,
            exitcodes: vec![0],
            stopsignal: TERM,
            stopwaitsecs: 10,
            stopasgroup: false,
            killasgroup: None,
            killasgroup_at: header_at,
            redirect_stderr: false,
            backoff: BackoffPolicy::default(),
            crash_loop: CrashLoop::default(),
            events_from_stdout: false,
            critical: false,
            stdout_events_enabled: false,
            stderr_events_enabled: false,
            stdout_capture_maxbytes: 0,
            stderr_capture_maxbytes: 0,
            environment: Vec::new(),
            directory: None,
            user: None,
            logs: [chan("stdout_logfile", "out"), chan("stderr_logfile", "err")],
            ready: ReadySpec::default(),
            depends_on: Vec::new(),
        }
    }
}

/// An event listener pool as written.
pub(super) struct ListenerSpec {
    pub program: ProgramSpec,
    pub events: Vec<&'static str>,
    pub buffer_size: usize,
    /// The pool priority (`priority`, else -1).
    pub priority: i32,
}

/// One use of a log file, for the cross-program checks.
pub(super) struct LogUse {
    pub path: PathBuf,
    /// `None` for the default location (whose directory is checked once, with `data_dir`).
    pub at: Option<usize>,
    pub key: String,
    /// The option's name (`stdout_logfile`), for the `_maxbytes` hint.
    pub opt: String,
    /// `program.bot.stdout_logfile (process bot_01)`.
    pub owner: String,
    pub maxbytes: u64,
}

/// Read-only inputs shared by every program.
pub(super) struct Shared<'e> {
    pub env: &'e Env,
    pub here: PathBuf,
    pub here_str: String,
    pub logs_dir: PathBuf,
}

impl Shared<'_> {
    pub(super) fn names(
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

/// The directory of `path` made absolute: what `%(here)s` is.
pub(super) fn here_of(path: &Path) -> (PathBuf, PathBuf) {
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let here = source
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    (source, here)
}

/// Validate `text` as read from `path`, with the environment `env`.
pub(crate) fn load_with(path: &Path, text: &str, env: &Env) -> Result<Config, ConfigErrors> {
    let mut cx = Ctx::new();
    cx.add_file(path.to_path_buf(), text.to_string(), true);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in &syntax {
            let at = e.span().map_or(0, |s| s.start);
            cx.at(at, "", format!("TOML syntax error: {}", e.message()));
        }
        return Err(cx.finish());
    }
    let (source, here) = here_of(path);

    let mut vigil_v = None;
    let mut program_v = None;
    let mut group_v = None;
    let mut listener_v = None;
    let mut rpc_v = None;
    let mut auth_v = None;
    let mut venue_v = None;
    for (k, v) in entries(doc.get_ref()) {
        let name: &str = k.get_ref();
        match name {
            // Parsed by crate::auth::config, below.
            "auth" => auth_v = Some(v),
            // Parsed by crate::config::venue, below.
            "venue" => venue_v = Some(v),
            "vigil" => vigil_v = Some(v),
            "program" => program_v = Some(v),
            "group" => group_v = Some(v),
            "eventlistener" => listener_v = Some(v),
            "rpc" => rpc_v = Some(v),
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

    // Program names first: groups and dependencies refer to them.
    let program_entries = named_tables(&mut cx, program_v, "program", "programs");
    let program_names: Vec<&str> = program_entries
        .iter()
        .map(|(k, _)| k.get_ref().as_ref())
        .collect();

    let (groups, member_of) = parse_groups(&mut cx, group_v, &program_names);

    let mut programs = Vec::new();
    for (k, v) in &program_entries {
        let name: &str = k.get_ref();
        let path = format!("program.{name}");
        let Some(table) = cx.table(path.clone(), v, "a table ([program.NAME])") else {
            continue;
        };
        let sec = Sec {
            table,
            path,
            at: v.span().start,
        };
        let spec = toml_program(&mut cx, &sec, name);
        let group = member_of.get(name).map_or(name, String::as_str).to_string();
        programs.push((spec, k.span().start, group));
    }

    let mut listeners = Vec::new();
    for (k, v) in named_tables(&mut cx, listener_v, "eventlistener", "event listeners") {
        let name: &str = k.get_ref();
        let path = format!("eventlistener.{name}");
        let Some(table) = cx.table(path.clone(), v, "a table ([eventlistener.NAME])") else {
            continue;
        };
        let sec = Sec {
            table,
            path,
            at: v.span().start,
        };
        let spec = toml_listener(&mut cx, &sec, name);
        listeners.push((spec, k.span().start));
    }

    let mut extra_logs = Vec::new();
    let rpc = rpc_v.and_then(|v| parse_rpc(&mut cx, v, &shared, &mut extra_logs));

    let (auth, auth_errors) = crate::auth::config::parse(path, text, auth_v, &env.vars);
    for e in auth_errors {
        cx.push_located(e);
    }
    let (venues, venue_errors) = super::venue::parse(path, text, venue_v, &env.vars);
    for e in venue_errors {
        cx.push_located(e);
    }
    // [jobs] (issue 10): parsed by crate::config::jobs from the same text.
    let jobs = match super::jobs::parse(path, text) {
        Ok(j) => j,
        Err(errs) => {
            errs.0.into_iter().for_each(|e| cx.push_located(e));
            Default::default()
        }
    };

    assemble(
        cx,
        &shared,
        Parts {
            source,
            vigil,
            logs_ok,
            programs,
            listeners,
            groups,
            rpc,
            auth,
            extra_logs,
            venues,
        },
    )
    .map(|c| Config { jobs, ..c })
}

/// The entries of a table of named tables (`[program.NAME]`), in file order.
fn named_tables<'a, 'i>(
    cx: &mut Ctx,
    v: Option<&'a Spanned<DeValue<'i>>>,
    section: &str,
    what: &str,
) -> Vec<Entry<'a, 'i>> {
    match v {
        Some(v) => match cx.table(
            section.to_string(),
            v,
            &format!("a table of {what} ([{section}.NAME] sections)"),
        ) {
            Some(t) => entries(t),
            None => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// Everything a front end found, for [`assemble`].
pub(super) struct Parts {
    pub source: PathBuf,
    pub vigil: VigilSection,
    /// Whether `data_dir/logs` is usable.
    pub logs_ok: bool,
    /// Each program, where its name is written, and its group.
    pub programs: Vec<(ProgramSpec, usize, String)>,
    /// Each listener and where its name is written.
    pub listeners: Vec<(ListenerSpec, usize)>,
    pub groups: Vec<GroupConfig>,
    pub rpc: Option<RpcConfig>,
    /// `[auth]` (vigil.toml only).
    pub auth: Option<crate::auth::AuthConfig>,
    /// Log files outside programs (supervisord's main log).
    pub extra_logs: Vec<LogUse>,
    /// `[venue.ID]` (vigil.toml only).
    pub venues: Vec<super::venue::VenueConfig>,
}

/// Build every program and listener and run the cross-checks: process names unique, listener
/// pools not named like groups, dependencies exist and have no cycle, log files.
pub(super) fn assemble(mut cx: Ctx, sh: &Shared<'_>, parts: Parts) -> Result<Config, ConfigErrors> {
    let mut logs: Vec<LogUse> = Vec::new();
    let mut process_names: HashMap<String, String> = HashMap::new();
    let mut programs = Vec::new();
    let mut depends: Vec<(String, KeyPath, Vec<Str>)> = Vec::new();
    for (spec, name_at, group) in parts.programs {
        let before = cx.errors.len();
        if let Some(p) = name_problem(&spec.name) {
            cx.at(
                name_at,
                spec.kp.prefix.clone(),
                format!("invalid program name: {p}"),
            );
        }
        let owner = format!("program \"{}\"", spec.name);
        let deps = spec.depends_on.clone();
        let kp = spec.kp.clone();
        let (program, uses, proc_at) = build_program(&mut cx, sh, spec, &group);
        if cx.errors.len() == before {
            claim_process_names(&mut cx, &mut process_names, &program, &owner, proc_at);
            logs.extend(uses);
        }
        depends.push((program.name.clone(), kp, deps));
        programs.push(program);
    }

    let mut eventlisteners = Vec::new();
    for (spec, name_at) in parts.listeners {
        let before = cx.errors.len();
        let name = spec.program.name.clone();
        if let Some(p) = name_problem(&name) {
            cx.at(
                name_at,
                spec.program.kp.prefix.clone(),
                format!("invalid event listener name: {p}"),
            );
        }
        let clash = if parts.groups.iter().any(|g| g.name == name) {
            Some(format!("group \"{name}\""))
        } else if programs.iter().any(|p| p.name == name) {
            Some(format!("program \"{name}\""))
        } else {
            None
        };
        if let Some(other) = clash {
            cx.at(
                name_at,
                spec.program.kp.prefix.clone(),
                format!(
                    "the event listener pool \"{name}\" is a process group, and {other} has the same name"
                ),
            );
        }
        let owner = format!("event listener \"{name}\"");
        let (program, uses, proc_at) = build_program(&mut cx, sh, spec.program, &name);
        if cx.errors.len() == before {
            claim_process_names(&mut cx, &mut process_names, &program, &owner, proc_at);
            logs.extend(uses);
        }
        eventlisteners.push(EventListenerConfig {
            program,
            events: spec.events.iter().map(|e| (*e).to_string()).collect(),
            buffer_size: spec.buffer_size,
            priority: spec.priority,
        });
    }

    check_depends(&mut cx, &depends);
    logs.extend(parts.extra_logs);
    check_logs(&mut cx, &logs, &sh.logs_dir, parts.logs_ok);

    if cx.errors.is_empty() {
        Ok(Config {
            warnings: cx.take_warnings(),
            source: parts.source,
            vigil: parts.vigil,
            programs,
            groups: parts.groups,
            auth: parts.auth,
            venues: parts.venues,
            eventlisteners,
            rpc: parts.rpc,
            jobs: Default::default(),
        })
    } else {
        Err(cx.finish())
    }
}

/// Process names are unique across all programs and listeners.
fn claim_process_names(
    cx: &mut Ctx,
    names: &mut HashMap<String, String>,
    program: &ProgramConfig,
    owner: &str,
    at: (usize, String),
) {
    for proc in &program.processes {
        match names.get(&proc.name) {
            Some(other) => cx.at(
                at.0,
                at.1.clone(),
                format!("process name \"{}\" is also used by {other}", proc.name),
            ),
            None => {
                names.insert(proc.name.clone(), owner.to_string());
            }
        }
    }
}

/// `depends_on`: each name is another program, listed once, not the program itself; the
/// graph has no cycle (each cycle is reported once, at the dependency that starts it, with the
/// cycle shown).
fn check_depends(cx: &mut Ctx, depends: &[(String, KeyPath, Vec<Str>)]) {
    let names: Vec<&str> = depends.iter().map(|(n, _, _)| n.as_str()).collect();
    // Valid edges by index, with where each is written.
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); depends.len()];
    for (i, (name, kp, deps)) in depends.iter().enumerate() {
        let mut seen = HashSet::new();
        for (dep, span) in deps {
            let message = if dep == name {
                Some(format!("program \"{name}\" cannot depend on itself"))
            } else if !seen.insert(dep.as_str()) {
                Some(format!("program \"{dep}\" is listed twice"))
            } else if let Some(j) = names.iter().position(|n| n == dep) {
                edges[i].push((j, span.start));
                None
            } else {
                Some(match did_you_mean(dep, &names) {
                    Some(s) => format!("no program \"{dep}\", did you mean \"{s}\"?"),
                    None => format!("no program \"{dep}\" (each must be a program)"),
                })
            };
            if let Some(m) = message {
                cx.at(span.start, kp.key("depends_on"), m);
            }
        }
    }
    // Depth-first, roots in file order: 0 not seen, 1 on the current path, 2 done.
    let mut color = vec![0u8; depends.len()];
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for root in 0..depends.len() {
        if color[root] != 0 {
            continue;
        }
        color[root] = 1;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&(node, next)) = stack.last() {
            let Some(&(to, _)) = edges[node].get(next) else {
                color[node] = 2;
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match color[to] {
                0 => {
                    color[to] = 1;
                    stack.push((to, 0));
                }
                1 => {
                    let Some(pos) = stack.iter().position(|(n, _)| *n == to) else {
                        continue;
                    };
                    let cycle: Vec<usize> = stack[pos..].iter().map(|(n, _)| *n).collect();
                    let mut set = cycle.clone();
                    set.sort_unstable();
                    if !reported.insert(set) {
                        continue;
                    }
                    let second = cycle.get(1).copied().unwrap_or(to);
                    let Some(&(_, at)) = edges[to].iter().find(|(t, _)| *t == second) else {
                        continue;
                    };
                    let mut shown: Vec<&str> = cycle.iter().map(|n| names[*n]).collect();
                    shown.push(names[to]);
                    cx.at(
                        at,
                        depends[to].1.key("depends_on"),
                        format!("dependency cycle: {}", shown.join(" -> ")),
                    );
                }
                _ => {}
            }
        }
    }
}

/// `[vigil]`; also creates and checks `data_dir` and `data_dir/logs`. Returns whether the logs
/// directory is usable.
fn parse_vigil(
    cx: &mut Ctx,
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
    let reload = cx
        .get_choice(&sec, "reload", super::ReloadMode::NAMES)
        .and_then(super::ReloadMode::from_name)
        .unwrap_or(super::ReloadMode::Apply);

    let mut data_dir_ok = true;
    let data_dir = match cx.get_str(&sec, "data_dir") {
        None => {
            if sec.get("data_dir").is_some() {
                data_dir_ok = false;
            }
            here.join("vigil-data")
        }
        Some((raw, span)) => match expand_data_dir(cx, raw, &span, "vigil.data_dir", here, env) {
            Some(d) => d,
            None => {
                data_dir_ok = false;
                here.join("vigil-data")
            }
        },
    };
    let logs_ok =
        data_dir_ok && setup_data_dir(cx, &data_dir, sec.anchor("data_dir"), "vigil.data_dir");
    (
        VigilSection {
            listen,
            data_dir,
            log_level,
            reload,
        },
        logs_ok,
    )
}

/// A `data_dir` value: expanded (`here`, `host_node_name`, `ENV_*`) and resolved, or `None`
/// after an error.
pub(super) fn expand_data_dir(
    cx: &mut Ctx,
    raw: &str,
    span: &Range<usize>,
    key: &str,
    here: &Path,
    env: &Env,
) -> Option<PathBuf> {
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
    match cx.expand(raw, span, key, &names) {
        Some(s) if s.is_empty() => {
            cx.at(
                span.start,
                key,
                "expected a directory path, found string \"\"",
            );
            None
        }
        Some(s) => Some(resolve_clean(here, &s)),
        None => None,
    }
}

/// Create and probe `data_dir` and `data_dir/logs`; returns whether both are usable.
pub(super) fn setup_data_dir(cx: &mut Ctx, data_dir: &Path, anchor: usize, key: &str) -> bool {
    match ensure_dir(data_dir).and_then(|()| ensure_dir(&data_dir.join("logs"))) {
        Ok(()) => true,
        Err(e) => {
            cx.at(anchor, key, e);
            false
        }
    }
}

/// `[group.NAME]` sections. Returns the groups and each member program's group.
fn parse_groups(
    cx: &mut Ctx,
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
        let priority = cx.get_i32(&sec, "priority").unwrap_or(999);
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
                        if let Err(m) = add_member(&mut member_of, name, p, program_names) {
                            cx.at(item.span().start, sec.key("programs"), m);
                            continue;
                        }
                        members.push(p.to_string());
                    }
                }
                _ => cx.type_error(sec.key("programs"), pv, "an array of program names"),
            },
        }
        name_spans.push((name.to_string(), k.span().start, sec.path.clone()));
        groups.push(GroupConfig {
            name: name.to_string(),
            programs: members,
            priority,
        });
    }
    check_group_names(cx, &name_spans, program_names, &member_of);
    (groups, member_of)
}

/// Put `program` into `group`, or say why not.
pub(super) fn add_member(
    member_of: &mut HashMap<String, String>,
    group: &str,
    program: &str,
    program_names: &[&str],
) -> Result<(), String> {
    if !program_names.contains(&program) {
        return Err(match did_you_mean(program, program_names) {
            Some(s) => format!("no program \"{program}\", did you mean \"{s}\"?"),
            None => format!("no program \"{program}\" (each must be a [program.NAME])"),
        });
    }
    if let Some(other) = member_of.get(program) {
        return Err(if other == group {
            format!("program \"{program}\" is listed twice")
        } else {
            format!(
                "program \"{program}\" is already in group \"{other}\" (a program belongs to at most one group)"
            )
        });
    }
    member_of.insert(program.to_string(), group.to_string());
    Ok(())
}

/// A program outside any group is its own group: a group may not take its name.
pub(super) fn check_group_names(
    cx: &mut Ctx,
    groups: &[(String, usize, String)],
    program_names: &[&str],
    member_of: &HashMap<String, String>,
) {
    for (name, at, key) in groups {
        if program_names.contains(&name.as_str()) && member_of.get(name) != Some(name) {
            cx.at(
                *at,
                key.clone(),
                format!("group name \"{name}\" is also the name of program \"{name}\", which is not in this group"),
            );
        }
    }
}

/// `[rpc]`, `[rpc.inet]`, `[rpc.unix]`.
fn parse_rpc(
    cx: &mut Ctx,
    v: &Spanned<DeValue<'_>>,
    sh: &Shared<'_>,
    logs: &mut Vec<LogUse>,
) -> Option<RpcConfig> {
    let table = cx.table("rpc".to_string(), v, "a table ([rpc])")?;
    let sec = Sec {
        table,
        path: "rpc".to_string(),
        at: v.span().start,
    };
    cx.unknown_keys(&sec, RPC_KEYS);
    let identifier = match cx.get_str(&sec, "identifier") {
        Some((s, span)) if s.trim().is_empty() => {
            cx.at(
                span.start,
                sec.key("identifier"),
                "expected a non-empty string, found string \"\"",
            );
            "supervisor".to_string()
        }
        Some((s, _)) => s.trim().to_string(),
        None => "supervisor".to_string(),
    };
    let maxbytes = cx
        .get_bytes(&sec, "logfile_maxbytes")
        .unwrap_or(DEFAULT_LOG_MAXBYTES);
    let backups = cx
        .get_u32(
            &sec,
            "logfile_backups",
            0,
            u32::MAX,
            "a non-negative integer",
        )
        .unwrap_or(DEFAULT_LOG_BACKUPS);
    let logfile = cx.get_string(&sec, "logfile").and_then(|(raw, span)| {
        let key = sec.key("logfile");
        let p = expand_path(cx, sh, &raw, &span, &key)?;
        logs.push(LogUse {
            path: p.clone(),
            at: Some(span.start),
            key: key.clone(),
            opt: "logfile".to_string(),
            owner: key,
            maxbytes,
        });
        Some(LogConfig {
            path: Some(p),
            maxbytes,
            backups,
        })
    });
    let pidfile = cx.get_string(&sec, "pidfile").and_then(|(raw, span)| {
        let key = sec.key("pidfile");
        let p = expand_path(cx, sh, &raw, &span, &key)?;
        check_parent_dir(cx, &p, span.start, &key);
        Some(p)
    });

    let inet = sec.get("inet").and_then(|iv| {
        let t = cx.table(sec.key("inet"), iv, "a table ([rpc.inet])")?;
        let isec = Sec {
            table: t,
            path: "rpc.inet".to_string(),
            at: iv.span().start,
        };
        cx.unknown_keys(&isec, RPC_INET_KEYS);
        let auth = toml_credentials(cx, &isec);
        let addr = match isec.get("port") {
            None => {
                cx.missing(&isec, "port");
                None
            }
            Some(pv) => {
                let parsed = match pv.get_ref() {
                    DeValue::String(s) => parse_inet(s),
                    DeValue::Integer(_) => int_of(pv.get_ref())
                        .map(|n| n.to_string())
                        .ok_or_else(String::new)
                        .and_then(|s| parse_inet(&s)),
                    _ => Err(format!(
                        "expected a port or \"HOST:PORT\", found {}",
                        found(pv.get_ref())
                    )),
                };
                match parsed {
                    Ok(a) => Some(a),
                    Err(m) => {
                        cx.at(pv.span().start, isec.key("port"), m);
                        None
                    }
                }
            }
        }?;
        Some(InetServerConfig { addr, auth })
    });

    let unix = sec.get("unix").and_then(|uv| {
        let t = cx.table(sec.key("unix"), uv, "a table ([rpc.unix])")?;
        let usec = Sec {
            table: t,
            path: "rpc.unix".to_string(),
            at: uv.span().start,
        };
        cx.unknown_keys(&usec, RPC_UNIX_KEYS);
        let auth = toml_credentials(cx, &usec);
        let chmod = match usec.get("chmod") {
            None => 0o700,
            Some(cv) => {
                let parsed = match cv.get_ref() {
                    DeValue::String(s) => parse_octal(s),
                    DeValue::Integer(i) if i.radix() == 8 => {
                        int_of(cv.get_ref()).and_then(|n| u32::try_from(n).ok())
                    }
                    _ => None,
                };
                match parsed {
                    Some(m) if m <= 0o7777 => m,
                    _ => {
                        cx.type_error(
                            usec.key("chmod"),
                            cv,
                            "an octal mode such as \"0700\" (a string) or 0o700",
                        );
                        0o700
                    }
                }
            }
        };
        let path = match cx.get_string(&usec, "file") {
            None => {
                if usec.get("file").is_none() {
                    cx.missing(&usec, "file");
                }
                None
            }
            Some((raw, span)) => {
                let key = usec.key("file");
                let p = expand_path(cx, sh, &raw, &span, &key);
                if let Some(p) = &p {
                    check_parent_dir(cx, p, span.start, &key);
                }
                p
            }
        }?;
        Some(UnixServerConfig { path, chmod, auth })
    });

    Some(RpcConfig {
        identifier,
        inet,
        unix,
        logfile,
        pidfile,
    })
}

/// `username` and `password` of an `[rpc.*]` table: both or neither.
fn toml_credentials(cx: &mut Ctx, sec: &Sec<'_, '_>) -> Option<Credentials> {
    let user = cx.get_string(sec, "username");
    let pass = cx.get_string(sec, "password");
    credentials(cx, user, pass, sec.at, &sec.key_path())
}

/// Both or neither of a username and a password (as supervisord), the password parsed.
pub(super) fn credentials(
    cx: &mut Ctx,
    user: Option<Str>,
    pass: Option<Str>,
    header_at: usize,
    kp: &KeyPath,
) -> Option<Credentials> {
    match (user, pass) {
        (None, None) => None,
        (Some((u, _)), Some((p, span))) => match Password::parse(&p) {
            Ok(password) => Some(Credentials {
                username: u,
                password,
            }),
            Err(m) => {
                cx.at(span.start, kp.key("password"), m);
                None
            }
        },
        (Some(_), None) | (None, Some(_)) => {
            cx.at(
                header_at,
                kp.prefix.clone(),
                "incomplete authentication: set both username and password, or neither",
            );
            None
        }
    }
}

/// A path option outside programs: expanded (`here`, `host_node_name`, `ENV_*`) and resolved.
pub(super) fn expand_path(
    cx: &mut Ctx,
    sh: &Shared<'_>,
    raw: &str,
    span: &Range<usize>,
    key: &str,
) -> Option<PathBuf> {
    let names = Names {
        values: {
            let mut m = BTreeMap::new();
            m.insert("here", Value::Str(sh.here_str.clone()));
            m.insert("host_node_name", Value::Str(sh.env.host_node_name.clone()));
            m
        },
        env: vec![&sh.env.vars],
        unavailable: &[],
    };
    let s = cx.expand(raw, span, key, &names)?;
    if s.trim().is_empty() {
        cx.at(span.start, key, "expected a file path, found string \"\"");
        return None;
    }
    Some(resolve_clean(&sh.here, s.trim()))
}

/// The directory of a file vigil will create: created now and checked writable.
pub(super) fn check_parent_dir(cx: &mut Ctx, p: &Path, at: usize, key: &str) {
    if let Some(parent) = p.parent()
        && let Err(e) = ensure_dir(parent)
    {
        cx.at(at, key, e);
    }
}

/// The typed options of one `[program.NAME]` table.
fn toml_program(cx: &mut Ctx, sec: &Sec<'_, '_>, name: &str) -> ProgramSpec {
    cx.unknown_keys(sec, PROGRAM_KEYS);
    let mut spec = toml_common(cx, sec, name);
    spec.events_from_stdout = cx.get_choice(sec, "events", &["stdout"]).is_some();
    spec.priority = cx.get_i32(sec, "priority").unwrap_or(999);

    for k in READY_PROBES {
        if let Some(s) = cx.get_string(sec, k) {
            spec.ready.probes.push((k, s));
        }
    }
    spec.ready.interval_ms = cx.get_secs_ms(sec, "ready_interval");
    spec.ready.timeout_ms = cx.get_secs_ms(sec, "ready_timeout");
    spec.ready.retries = cx.get_u32(sec, "ready_retries", 1, u32::MAX, "a positive integer");
    // Only well-formed values: a bad one is reported as such, not as "needs a probe".
    let tuning = [
        ("ready_interval", spec.ready.interval_ms.is_some()),
        ("ready_timeout", spec.ready.timeout_ms.is_some()),
        ("ready_retries", spec.ready.retries.is_some()),
    ];
    for (k, set) in tuning {
        if set
            && spec.ready.tuning_at.is_none()
            && let Some(v) = sec.get(k)
        {
            spec.ready.tuning_at = Some((k, v.span().start));
        }
    }
    spec.depends_on = cx.get_str_list(sec, "depends_on", "program name (string)");
    spec
}

/// The typed options of one `[eventlistener.NAME]` table.
fn toml_listener(cx: &mut Ctx, sec: &Sec<'_, '_>, name: &str) -> ListenerSpec {
    let known: Vec<&str> = PROGRAM_KEYS
        .iter()
        .filter(|k| !NOT_FOR_LISTENERS.contains(k))
        .chain(LISTENER_ONLY_KEYS)
        .copied()
        .collect();
    // Program-only keys get a precise message instead of "unknown key".
    for (k, _) in entries(sec.table) {
        let kn: &str = k.get_ref();
        if NOT_FOR_LISTENERS.contains(&kn) && kn != "events" {
            cx.at(
                k.span().start,
                sec.key(kn),
                "not available for event listeners (a listener's stdout is the protocol channel)",
            );
        }
    }
    let filtered: Vec<&str> = known
        .iter()
        .copied()
        .chain(NOT_FOR_LISTENERS.iter().copied())
        .collect();
    cx.unknown_keys(sec, &filtered);
    let mut program = toml_common(cx, sec, name);
    let explicit_priority = cx.get_i32(sec, "priority");
    program.priority = explicit_priority.unwrap_or(999);
    if program.redirect_stderr {
        cx.at(
            sec.anchor("redirect_stderr"),
            sec.key("redirect_stderr"),
            REDIRECT_STDERR_LISTENER,
        );
    }
    let mut events = Vec::new();
    match sec.get("events") {
        None => cx.missing(sec, "events"),
        Some(ev) => {
            let items: Vec<(String, Range<usize>)> = match ev.get_ref() {
                DeValue::Array(a) => a
                    .iter()
                    .filter_map(|item| match item.get_ref().as_str() {
                        Some(s) => Some((s.to_string(), item.span())),
                        None => {
                            cx.type_error(sec.key("events"), item, "an event type name (string)");
                            None
                        }
                    })
                    .collect(),
                DeValue::String(s) => s.split(',').map(|p| (p.to_string(), ev.span())).collect(),
                _ => {
                    cx.type_error(
                        sec.key("events"),
                        ev,
                        "an array of event type names such as [\"PROCESS_STATE\", \"TICK_60\"]",
                    );
                    Vec::new()
                }
            };
            events = listener_events(cx, &sec.key("events"), &items, ev.span().start);
        }
    }
    let buffer_size = cx
        .get_int(
            sec,
            "buffer_size",
            1,
            MAX_BUFFER_SIZE as i128,
            "a positive integer",
        )
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_BUFFER_SIZE);
    if let Some((h, span)) = cx.get_str(sec, "result_handler")
        && h.trim() != DEFAULT_RESULT_HANDLER
    {
        cx.at(
            span.start,
            sec.key("result_handler"),
            RESULT_HANDLER_UNSUPPORTED,
        );
    }
    ListenerSpec {
        program,
        events,
        buffer_size,
        priority: explicit_priority.unwrap_or(-1),
    }
}

pub(super) const REDIRECT_STDERR_LISTENER: &str =
    "cannot be true for an event listener: stdout is the protocol channel (as in supervisord)";

pub(super) const RESULT_HANDLER_UNSUPPORTED: &str = "only supervisor.dispatchers:default_handler is supported (a listener's reply OK accepts the event, anything else rejects it)";

/// Validate event type names: canonical, without duplicates; an empty list is an error.
pub(super) fn listener_events(
    cx: &mut Ctx,
    key: &str,
    items: &[(String, Range<usize>)],
    at: usize,
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut any = false;
    for (name, span) in items {
        if name.trim().is_empty() {
            continue;
        }
        any = true;
        match event_type(name) {
            Ok(t) => {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Err(m) => cx.at(span.start, key, m),
        }
    }
    if !any {
        cx.at(at, key, "expected at least one event type name");
    }
    out
}

/// The options programs and listeners share, typed.
fn toml_common(cx: &mut Ctx, sec: &Sec<'_, '_>, name: &str) -> ProgramSpec {
    let mut spec = ProgramSpec::new(name, sec.key_path(), sec.at);
    spec.command = cx.get_string(sec, "command");
    if sec.get("command").is_none() {
        cx.missing(sec, "command");
    }
    spec.process_name = cx.get_string(sec, "process_name");
    spec.numprocs = cx
        .get_u32(sec, "numprocs", 1, MAX_NUMPROCS, "a positive integer")
        .unwrap_or(1);
    spec.numprocs_start = cx
        .get_u32(sec, "numprocs_start", 0, u32::MAX, "a non-negative integer")
        .unwrap_or(0);
    spec.numprocs_start_at = sec.anchor("numprocs_start");
    spec.autostart = cx.get_bool(sec, "autostart").unwrap_or(true);
    if let Some(av) = sec.get("autorestart") {
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
        match parsed {
            Some(a) => spec.autorestart = a,
            None => cx.type_error(sec.key("autorestart"), av, "true, false or \"unexpected\""),
        }
    }
    spec.startsecs = cx
        .get_u64(sec, "startsecs", 0, "a non-negative integer")
        .unwrap_or(1);
    spec.startretries = cx
        .get_u32(sec, "startretries", 0, u32::MAX, "a non-negative integer")
        .unwrap_or(3);
    if let Some(ev) = sec.get("exitcodes") {
        spec.exitcodes = match ev.get_ref() {
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
        };
    }
    if let Some(sv) = sec.get("stopsignal") {
        let parsed = match sv.get_ref() {
            DeValue::String(s) => Signal::parse(s),
            DeValue::Integer(_) => int_of(sv.get_ref()).and_then(|n| Signal::parse(&n.to_string())),
            _ => None,
        };
        match parsed {
            Some(s) => spec.stopsignal = s,
            None => cx.type_error(sec.key("stopsignal"), sv, &signal_expected()),
        }
    }
    spec.stopwaitsecs = cx
        .get_u64(sec, "stopwaitsecs", 0, "a non-negative integer")
        .unwrap_or(10);
    spec.stopasgroup = cx.get_bool(sec, "stopasgroup").unwrap_or(false);
    spec.killasgroup = cx.get_bool(sec, "killasgroup");
    spec.killasgroup_at = sec.anchor("killasgroup");
    spec.redirect_stderr = cx.get_bool(sec, "redirect_stderr").unwrap_or(false);
    let exponential =
        cx.get_choice(sec, "backoff", &["linear", "exponential"]) == Some("exponential");
    let backoff_max = cx.get_u64(sec, "backoff_max", 1, "a positive integer (seconds)");
    spec.backoff = BackoffPolicy {
        exponential,
        max_ms: backoff_max.map(|s| s.saturating_mul(1000)),
        ..BackoffPolicy::default()
    };
    let defaults = CrashLoop::default();
    spec.crash_loop = CrashLoop {
        restarts: cx
            .get_u64(sec, "restart_limit", 1, "a positive integer (restarts)")
            .map_or(defaults.restarts, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        window_ms: cx
            .get_u64(sec, "restart_window", 1, "a positive integer (seconds)")
            .map_or(defaults.window_ms, |s| s.saturating_mul(1000)),
    };
    spec.critical = cx.get_bool(sec, "critical").unwrap_or(false);
    spec.stdout_events_enabled = cx.get_bool(sec, "stdout_events_enabled").unwrap_or(false);
    spec.stderr_events_enabled = cx.get_bool(sec, "stderr_events_enabled").unwrap_or(false);
    spec.stdout_capture_maxbytes = cx.get_bytes(sec, "stdout_capture_maxbytes").unwrap_or(0);
    spec.stderr_capture_maxbytes = cx.get_bytes(sec, "stderr_capture_maxbytes").unwrap_or(0);

    for chan in &mut spec.logs {
        let k = chan.opt;
        if let Some((s, span)) = cx.get_str(sec, k) {
            chan.spec = match log_keyword(s) {
                Some(spec) => spec,
                None if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("syslog") => {
                    cx.at(
                        span.start,
                        sec.key(k),
                        format!("expected a file path, \"AUTO\" or \"NONE\", found string {s:?}"),
                    );
                    LogSpec::Off
                }
                None => LogSpec::Path((s.to_string(), span)),
            };
        }
        chan.maxbytes = cx
            .get_bytes(sec, &format!("{k}_maxbytes"))
            .unwrap_or(DEFAULT_LOG_MAXBYTES);
        chan.backups = cx
            .get_u32(
                sec,
                &format!("{k}_backups"),
                0,
                u32::MAX,
                "a non-negative integer",
            )
            .unwrap_or(DEFAULT_LOG_BACKUPS);
    }

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
            if let Some(p) = env_var_problem(var) {
                cx.at(ek.span().start, key.clone(), p);
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
            spec.environment.push(EnvSpec {
                var: var.to_string(),
                key,
                value: (raw.to_string(), evv.span()),
            });
        }
    }
    spec.directory = cx.get_string(sec, "directory");
    spec.user = cx.get_string(sec, "user");
    spec
}

/// `AUTO`, `NONE`/`OFF` (any case), else `None`.
pub(super) fn log_keyword(s: &str) -> Option<LogSpec> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("NONE") || t.eq_ignore_ascii_case("OFF") {
        Some(LogSpec::Off)
    } else if t.eq_ignore_ascii_case("AUTO") {
        Some(LogSpec::Auto)
    } else {
        None
    }
}

/// Why an environment variable name is invalid.
pub(super) fn env_var_problem(var: &str) -> Option<&'static str> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        Some("invalid variable name (empty, or contains '=' or NUL)")
    } else {
        None
    }
}

/// "a signal name or number (HUP, INT, …)".
pub(super) fn signal_expected() -> String {
    let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
    format!("a signal name or number ({})", names.join(", "))
}

/// Turn a program spec into its config: expansions, per-process names, argv and log paths,
/// directory and user checks, readiness. Returns the program, its log uses and where (and under
/// which key) errors about its process names go.
pub(super) fn build_program(
    cx: &mut Ctx,
    sh: &Shared<'_>,
    spec: ProgramSpec,
    group: &str,
) -> (ProgramConfig, Vec<LogUse>, (usize, String)) {
    let kp = spec.kp.clone();
    let name = spec.name.as_str();
    let numprocs = spec.numprocs;

    if spec.stopasgroup && spec.killasgroup == Some(false) {
        cx.at(
            spec.killasgroup_at,
            kp.key("killasgroup"),
            "cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
        );
    }
    let killasgroup = spec.killasgroup.unwrap_or(spec.stopasgroup);

    // Per-program options: every name but process_num.
    let per_program = || Names {
        values: sh.names(name, group, numprocs, None),
        env: vec![&sh.env.vars],
        unavailable: NOT_PER_PROCESS,
    };

    let mut environment = BTreeMap::new();
    for e in &spec.environment {
        if let Some(val) = cx.expand(&e.value.0, &e.value.1, &e.key, &per_program()) {
            if val.contains('\0') {
                cx.at(
                    e.value.1.start,
                    e.key.clone(),
                    "value contains a NUL character",
                );
            } else {
                environment.insert(e.var.clone(), val);
            }
        }
    }

    let mut directory = None;
    if let Some((raw, span)) = &spec.directory {
        let key = kp.key("directory");
        if let Some(d) = cx.expand(raw, span, &key, &per_program()) {
            let d = resolve_clean(&sh.here, &d);
            match existing_dir(&d) {
                Ok(()) => directory = Some(d),
                Err(m) => cx.at(span.start, key, m),
            }
        }
    }

    let mut user = None;
    if let Some((u, span)) = &spec.user {
        let u = u.trim();
        match if u.is_empty() {
            Err("expected a user name or uid, found string \"\"".to_string())
        } else {
            check_user(u)
        } {
            Ok(()) => user = Some(u.to_string()),
            Err(e) => cx.at(span.start, kp.key("user"), e),
        }
    }

    let ready = build_ready(cx, &kp, &spec.ready, &per_program());

    let name_at = spec
        .process_name
        .as_ref()
        .map_or(spec.header_at, |(_, s)| s.start);
    let template = spec
        .process_name
        .as_ref()
        .map_or("%(program_name)s", |(t, _)| t.as_str());
    let mut per_process_ok = true;
    if numprocs > 1 && !template.contains("%(process_num)") {
        cx.at(
            name_at,
            kp.key("process_name"),
            format!(
                "numprocs = {numprocs} needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\""
            ),
        );
        per_process_ok = false;
    }

    let mut processes = Vec::new();
    let mut uses = Vec::new();
    for i in 0..numprocs {
        let Some(num) = spec.numprocs_start.checked_add(i) else {
            cx.at(
                spec.numprocs_start_at,
                kp.key("numprocs_start"),
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
        let pname = match &spec.process_name {
            None => Some(name.to_string()),
            Some((t, span)) => cx.expand(t, span, &kp.key("process_name"), &names),
        };
        // (The default, the program's name, is checked as such.)
        if let Some(pn) = pname.as_ref().filter(|_| spec.process_name.is_some())
            && let Some(p) = name_problem(pn)
        {
            cx.at(
                name_at,
                kp.key("process_name"),
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
        if let Some((c, span)) = &spec.command {
            let key = kp.key("command");
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
        for chan in &spec.logs {
            let off = chan.ext == "err" && spec.redirect_stderr;
            let key = kp.key(chan.opt);
            let path = match &chan.spec {
                _ if off => None,
                LogSpec::Off => None,
                LogSpec::Auto => {
                    let p = sh.logs_dir.join(format!("{pn}.{}.log", chan.ext));
                    uses.push(LogUse {
                        path: p.clone(),
                        at: None,
                        key: key.clone(),
                        opt: chan.opt.to_string(),
                        owner: format!("{key} (process {pn})"),
                        maxbytes: chan.maxbytes,
                    });
                    Some(p)
                }
                LogSpec::Path((t, span)) => match cx.expand(t, span, &key, &with_env) {
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
                            opt: chan.opt.to_string(),
                            owner: format!("{key} (process {pn})"),
                            maxbytes: chan.maxbytes,
                        });
                        Some(p)
                    }
                    None => None,
                },
            };
            logs.push(LogConfig {
                path,
                maxbytes: chan.maxbytes,
                backups: chan.backups,
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

    let program = ProgramConfig {
        name: name.to_string(),
        command: spec
            .command
            .as_ref()
            .map(|(c, _)| c.clone())
            .unwrap_or_default(),
        directory,
        environment,
        user,
        numprocs,
        numprocs_start: spec.numprocs_start,
        process_name: template.to_string(),
        priority: spec.priority,
        autostart: spec.autostart,
        autorestart: spec.autorestart,
        startsecs: spec.startsecs,
        startretries: spec.startretries,
        exitcodes: spec.exitcodes.clone(),
        stopsignal: spec.stopsignal,
        stopwaitsecs: spec.stopwaitsecs,
        stopasgroup: spec.stopasgroup,
        killasgroup,
        redirect_stderr: spec.redirect_stderr,
        backoff: spec.backoff,
        crash_loop: spec.crash_loop,
        events_from_stdout: spec.events_from_stdout,
        critical: spec.critical,
        stdout_events_enabled: spec.stdout_events_enabled,
        stderr_events_enabled: spec.stderr_events_enabled,
        stdout_capture_maxbytes: spec.stdout_capture_maxbytes,
        stderr_capture_maxbytes: spec.stderr_capture_maxbytes,
        ready,
        depends_on: spec.depends_on.iter().map(|(d, _)| d.clone()).collect(),
        processes,
    };
    (program, uses, (name_at, kp.key("process_name")))
}

/// The readiness check: exactly one probe, expanded and validated.
fn build_ready(
    cx: &mut Ctx,
    kp: &KeyPath,
    r: &ReadySpec,
    names: &Names<'_>,
) -> Option<ReadinessCheck> {
    // In file order: the first one written is the probe, the others are errors.
    let mut probes: Vec<&(&'static str, Str)> = r.probes.iter().collect();
    probes.sort_by_key(|(_, (_, span))| span.start);
    let Some((kind, (raw, span))) = probes.first() else {
        if let Some((k, at)) = r.tuning_at {
            cx.at(
                at,
                kp.key(k),
                format!("{k} needs a readiness probe: ready_command, ready_http or ready_tcp"),
            );
        }
        return None;
    };
    for (other, (_, s)) in probes.iter().skip(1) {
        cx.at(
            s.start,
            kp.key(other),
            format!("only one readiness probe may be set, and {kind} is set already"),
        );
    }
    let key = kp.key(kind);
    let value = cx.expand(raw, span, &key, names)?;
    let probe = match *kind {
        "ready_command" => match shlex::split(&value) {
            None => Err(
                "cannot split the command line: unbalanced quotes or a trailing backslash"
                    .to_string(),
            ),
            Some(w) if w.is_empty() => Err("the command is empty".to_string()),
            Some(argv) => Ok(ReadinessProbe::Command { argv }),
        },
        "ready_http" => parse_ready_url(&value).map(|url| ReadinessProbe::Http { url }),
        _ => parse_host_port(&value).map(|(host, port)| ReadinessProbe::Tcp { host, port }),
    };
    match probe {
        Ok(probe) => Some(ReadinessCheck {
            probe,
            interval_ms: r.interval_ms.unwrap_or(DEFAULT_READY_INTERVAL_MS),
            timeout_ms: r.timeout_ms.unwrap_or(DEFAULT_READY_TIMEOUT_MS),
            retries: r.retries.unwrap_or(DEFAULT_READY_RETRIES),
        }),
        Err(m) => {
            cx.at(span.start, key, m);
            None
        }
    }
}

/// An `http://` URL with a host.
pub(super) fn parse_ready_url(s: &str) -> Result<String, String> {
    let t = s.trim();
    match reqwest::Url::parse(t) {
        Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(t.to_string())
        }
        Ok(u) if u.scheme() == "https" => Err(format!(
            "expected an http:// URL, found {t:?} (https is not supported: vigil is built without TLS)"
        )),
        _ => Err(format!(
            "expected an http:// URL such as \"http://127.0.0.1:8080/health\", found {t:?}"
        )),
    }
}

/// `host:port` (`[v6]:port` for IPv6).
pub(super) fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let t = s.trim();
    let bad = || format!("expected HOST:PORT such as \"127.0.0.1:8080\", found {t:?}");
    let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Every log file: no two processes (or channels) share one, and each can be written —
/// its directory is created and probed now, not at the first write.
fn check_logs(cx: &mut Ctx, logs: &[LogUse], logs_dir: &Path, logs_ok: bool) {
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
                            u.opt
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
    use crate::config::ReadinessProbe;
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
    fn devices_and_fifos_are_refused_not_read() {
        let e = super::read_config(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

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
        assert!(!p.stdout_events_enabled && !p.stderr_events_enabled);
        assert_eq!(
            (p.stdout_capture_maxbytes, p.stderr_capture_maxbytes),
            (0, 0)
        );
        assert_eq!(p.ready, None);
        assert!(p.depends_on.is_empty());
        assert!(c.eventlisteners.is_empty());
        assert_eq!(c.rpc, None);
        assert_eq!(c.identifier(), "supervisor");
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
        assert_eq!(
            c.vigil.reload,
            super::super::ReloadMode::Apply,
            "vigil.toml's default"
        );
        let (_d, c) = ok("[vigil]\nreload = \"restart\"\n");
        assert_eq!(c.vigil.reload, super::super::ReloadMode::Restart);
        err1(
            "[vigil]\nreload = \"full\"\n",
            "2:10: vigil.reload: expected \"apply\" or \"restart\", found string \"full\"",
        );
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
                "3:1: vigil.foo: unknown key; known keys: listen, data_dir, log_level, reload",
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
                "7:2: zzz: unknown section; known sections: vigil, program, group, eventlistener, rpc, checks, rules, halt, alerts, auth, jobs, ingest, cluster, monitoring, venue, events",
            ]
        );
    }

    #[test]
    fn reserved_sections_are_skipped() {
        let (_d, c) = ok(concat!(
            "[checks.feed]\nanything = \"goes\"\n",
            "[[rules]]\nwhen = 1\n",
            "[halt]\nposition = \"close\"\n",
            "[alerts]\nx = 1\n[auth]\nusers = []\n[jobs]\ndev_mode = true\n[ingest]\nfiles = []\n",
            "[cluster]\n[monitoring]\nz = true\n[events]\nmax_age_days = 1\n",
        ));
        assert!(c.programs.is_empty());
        assert_eq!(RESERVED_SECTIONS.len(), 11);
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
        assert_eq!(prog(&c, "bot").depends_on, ["feed"]);
        assert!(prog(&c, "bot").ready.is_some());
        assert_eq!(c.eventlisteners.len(), 1);
        assert!(
            c.rpc
                .as_ref()
                .is_some_and(|r| r.inet.is_some() && r.unix.is_some())
        );
    }

    /// The `[eventlistener.NAME]` and `[rpc]` examples of docs/config.md load.
    #[test]
    fn docs_listener_and_rpc_examples_load() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
        let doc = std::fs::read_to_string(doc).expect("read docs/config.md");
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .filter(|b| b.contains("[eventlistener.") || b.contains("[rpc]"))
            .collect();
        assert_eq!(blocks.len(), 2);
        for b in blocks {
            let (_d, c) = ok(b);
            assert!(!c.eventlisteners.is_empty() || c.rpc.is_some());
        }
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

    // ---------------------------------------------------------------- issue 3 additions

    #[test]
    fn capture_and_log_events() {
        let (_d, c) = ok(concat!(
            "[program.bot]\ncommand = \"bot\"\n",
            "stdout_capture_maxbytes = \"1MB\"\nstderr_capture_maxbytes = 512\n",
            "stdout_events_enabled = true\nstderr_events_enabled = false\n",
        ));
        let p = prog(&c, "bot");
        assert_eq!(p.stdout_capture_maxbytes, 1 << 20);
        assert_eq!(p.stderr_capture_maxbytes, 512);
        assert!(p.stdout_events_enabled && !p.stderr_events_enabled);
    }

    #[test]
    fn eventlistener_tables() {
        let (_d, c) = ok(concat!(
            "[eventlistener.crash]\n",
            "command = \"crashmail -a\"\n",
            "events = [\"process_state_exited\", \"TICK_60\", \"PROCESS_STATE_EXITED\"]\n",
            "[eventlistener.pool]\n",
            "command = \"l\"\n",
            "events = \"EVENT, VIGIL_CHECK\"\n",
            "numprocs = 2\n",
            "process_name = \"%(program_name)s_%(process_num)d\"\n",
            "buffer_size = 64\n",
            "priority = 4\n",
            "result_handler = \"supervisor.dispatchers:default_handler\"\n",
        ));
        let crash = c.eventlistener("crash").expect("crash");
        assert_eq!(crash.events, ["PROCESS_STATE_EXITED", "TICK_60"]);
        assert_eq!((crash.priority, crash.program.priority), (-1, 999));
        assert_eq!(crash.buffer_size, DEFAULT_BUFFER_SIZE);
        assert_eq!(crash.program.processes[0].argv, ["crashmail", "-a"]);
        let pool = c.eventlistener("pool").expect("pool");
        assert_eq!(pool.events, ["EVENT", "VIGIL_CHECK"]);
        assert_eq!((pool.priority, pool.program.priority), (4, 4));
        assert_eq!(pool.buffer_size, 64);
        let names: Vec<&str> = pool
            .program
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["pool_0", "pool_1"]);
        assert_eq!(
            errs(concat!(
                "[program.x]\ncommand = \"x\"\n",
                "[eventlistener.x]\n",
                "command = \"l\"\n",
                "events = [\"PROCESS_STAT\", 5]\n",
                "redirect_stderr = true\n",
                "buffer_size = 0\n",
                "result_handler = \"mine:handler\"\n",
                "ready_http = \"http://x/\"\n",
                "critical = true\n",
                "[eventlistener.none]\ncommand = \"l\"\n",
            )),
            vec![
                "3:16: eventlistener.x: the event listener pool \"x\" is a process group, and program \"x\" has the same name",
                "5:11: eventlistener.x.events: unknown event type PROCESS_STAT, did you mean PROCESS_STATE?",
                "5:27: eventlistener.x.events: expected an event type name (string), found integer 5",
                "6:19: eventlistener.x.redirect_stderr: cannot be true for an event listener: stdout is the protocol channel (as in supervisord)",
                "7:15: eventlistener.x.buffer_size: expected a positive integer, found integer 0",
                "8:18: eventlistener.x.result_handler: only supervisor.dispatchers:default_handler is supported (a listener's reply OK accepts the event, anything else rejects it)",
                "9:1: eventlistener.x.ready_http: not available for event listeners (a listener's stdout is the protocol channel)",
                "11:1: eventlistener.none.events: required key is missing",
            ]
        );
    }

    #[test]
    fn rpc_section() {
        let (d, c) = ok(concat!(
            "[rpc]\n",
            "identifier = \"desk\"\n",
            "logfile = \"logs/supervisord.log\"\n",
            "logfile_maxbytes = \"1MB\"\n",
            "logfile_backups = 2\n",
            "pidfile = \"%(here)s/run/vigil.pid\"\n",
            "[rpc.inet]\n",
            "port = 9001\n",
            "username = \"user\"\n",
            "password = \"{SHA}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\"\n",
            "[rpc.unix]\n",
            "file = \"run/supervisor.sock\"\n",
            "chmod = 0o770\n",
        ));
        let rpc = c.rpc.as_ref().expect("rpc");
        assert_eq!(c.identifier(), "desk");
        assert_eq!(
            rpc.logfile,
            Some(LogConfig {
                path: Some(d.path().join("logs/supervisord.log")),
                maxbytes: 1 << 20,
                backups: 2
            })
        );
        assert_eq!(rpc.pidfile, Some(d.path().join("run/vigil.pid")));
        let inet = rpc.inet.as_ref().expect("inet");
        assert_eq!(inet.addr.to_string(), "0.0.0.0:9001");
        assert!(inet.auth.as_ref().is_some_and(|a| a.verify("user", "test")));
        let unix = rpc.unix.as_ref().expect("unix");
        assert_eq!(unix.path, d.path().join("run/supervisor.sock"));
        assert_eq!(unix.chmod, 0o770);
        assert_eq!(unix.auth, None);
        assert_eq!(
            errs(concat!(
                "[rpc]\nidentifer = \"x\"\n",
                "[rpc.inet]\nport = \"localhost:x\"\nusername = \"u\"\n",
                "[rpc.unix]\nchmod = 700\n",
            )),
            vec![
                "2:1: rpc.identifer: unknown key, did you mean \"identifier\"?",
                "3:1: rpc.inet: incomplete authentication: set both username and password, or neither",
                "4:8: rpc.inet.port: expected a port (1-65535) or HOST:PORT such as \"127.0.0.1:9001\", found \"localhost:x\"",
                "6:1: rpc.unix.file: required key is missing",
                "7:9: rpc.unix.chmod: expected an octal mode such as \"0700\" (a string) or 0o700, found integer 700",
            ]
        );
    }

    #[test]
    fn readiness_and_depends_on() {
        let (_d, c) = ok(concat!(
            "[program.db]\ncommand = \"db\"\nready_tcp = \"[::1]:5432\"\n",
            "[program.api]\ncommand = \"api\"\nready_http = \"http://127.0.0.1:8080/health\"\n",
            "ready_interval = 0.5\nready_timeout = 2\nready_retries = 5\ndepends_on = [\"db\"]\n",
            "[program.bot]\ncommand = \"bot\"\nready_command = \"check %(program_name)s\"\n",
            "depends_on = [\"api\", \"db\"]\n",
        ));
        assert_eq!(
            prog(&c, "db").ready.as_ref().map(|r| r.probe.clone()),
            Some(ReadinessProbe::Tcp {
                host: "::1".into(),
                port: 5432
            })
        );
        let api = prog(&c, "api");
        let r = api.ready.as_ref().expect("ready");
        assert_eq!((r.interval_ms, r.timeout_ms, r.retries), (500, 2000, 5));
        assert_eq!(api.depends_on, ["db"]);
        let bot = prog(&c, "bot");
        assert_eq!(
            bot.ready
                .as_ref()
                .map(|r| (r.probe.clone(), r.interval_ms, r.timeout_ms, r.retries)),
            Some((
                ReadinessProbe::Command {
                    argv: vec!["check".into(), "bot".into()]
                },
                DEFAULT_READY_INTERVAL_MS,
                DEFAULT_READY_TIMEOUT_MS,
                DEFAULT_READY_RETRIES
            ))
        );
        assert_eq!(bot.depends_on, ["api", "db"]);
        assert_eq!(
            errs(concat!(
                "[program.a]\ncommand = \"a\"\ndepends_on = [\"b\", \"zz\", 3]\n",
                "ready_http = \"ftp://x\"\nready_interval = -1\n",
                "[program.b]\ncommand = \"b\"\ndepends_on = [\"c\"]\n",
                "[program.c]\ncommand = \"c\"\ndepends_on = [\"b\"]\nready_retries = 0\n",
            )),
            vec![
                "3:20: program.a.depends_on: no program \"zz\" (each must be a program)",
                "3:26: program.a.depends_on: expected program name (string), found integer 3",
                "4:14: program.a.ready_http: expected an http:// URL such as \"http://127.0.0.1:8080/health\", found \"ftp://x\"",
                "5:18: program.a.ready_interval: expected a positive number of seconds (at most 86400, e.g. 1 or 0.5), found integer -1",
                "8:15: program.b.depends_on: dependency cycle: b -> c -> b",
                "12:17: program.c.ready_retries: expected a positive integer, found integer 0",
            ]
        );
    }
}
