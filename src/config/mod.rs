//! Configuration: `vigil.toml` or supervisord's INI dialect (`*.conf`, `*.ini`) → a validated
//! [`Config`].
//!
//! Two phases, as ripgrep's flags: the file is parsed into a spanned tree (TOML, or the INI
//! reader in [`supervisord`]), then every section is validated into typed values, collecting
//! **all** errors, each located as `FILE:LINE:COL: key: message` (`FILE:LINE: …` for INI files).
//! Both formats share one validator, so a supervisord config and its `vigil convert` output load
//! to equal [`Config`]s. Paths are resolved against the config file's directory, checked and
//! created at load, so nothing downstream ever meets a missing path.

pub mod auth;
pub mod jobs;
mod load;
pub mod monitor;
mod options;
pub mod supervisord;
pub mod venue;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vigil_core::program::{AutoRestart, BackoffPolicy, CrashLoop, Policy};

pub use load::{
    DEFAULT_BUFFER_SIZE, DEFAULT_LISTEN, DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAXBYTES,
    DEFAULT_READY_INTERVAL_MS, DEFAULT_READY_RETRIES, DEFAULT_READY_TIMEOUT_MS, MAX_NUMPROCS,
    RESERVED_SECTIONS, line_col, load, load_str,
};
#[doc(hidden)]
pub use load::{convert_str_without_io, load_str_without_io};

/// The closest of `candidates` to a misspelt `word`, for "did you mean" hints.
pub fn suggest<'c>(word: &str, candidates: &'c [&'c str]) -> Option<&'c str> {
    load::did_you_mean(word, candidates)
}

/// One located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: usize,
    /// 1-based, in characters; 0 when not shown (INI files are located by line only).
    pub col: usize,
    /// Dotted key, e.g. `program.bot.startsecs` (`[program:bot] startsecs` in INI files).
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `FILE:LINE:COL: key: message`; without a position (line 0: the file could not be
        // read) `FILE: message`, without a column (col 0: INI files) `FILE:LINE: key: message`,
        // and without a key (syntax errors, unsupported options) `FILE:LINE:COL: message`.
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (absolute).
    pub source: PathBuf,
    pub vigil: VigilSection,
    /// Programs in file order.
    pub programs: Vec<ProgramConfig>,
    pub groups: Vec<GroupConfig>,
    /// `[auth]`: users, machine tokens, JWT settings (read by `config::auth`). `None`: no
    /// authentication, loopback only.
    pub auth: Option<crate::auth::AuthConfig>,
    /// Event listener pools (`[eventlistener.NAME]`, supervisord's `[eventlistener:NAME]`), in
    /// file order.
    pub eventlisteners: Vec<EventListenerConfig>,
    /// supervisord compatibility: its XML-RPC servers (`[inet_http_server]`,
    /// `[unix_http_server]`) and `[supervisord]` settings. Always `Some` for a supervisord
    /// config; for vigil.toml `Some` iff it has an `[rpc]` section.
    pub rpc: Option<RpcConfig>,
    /// What the load ignored but reports, located (`FILE:LINE:COL: [program:x] opt: unknown
    /// option, ignored`): supervisord's INI dialect ignores unknown options and sections as
    /// supervisord does (its plugins add options of their own). Logged at start and reload;
    /// `vigil check-config --strict` makes them errors. Always empty for vigil.toml, where an
    /// unknown key is an error.
    pub warnings: Vec<ConfigError>,
    /// `[venue.ID]`: exchange accounts whose dead-man switch vigil keeps armed
    /// (`config::venue`), in file order. Always empty for a supervisord config.
    pub venues: Vec<venue::VenueConfig>,
    /// `[jobs]`: background job types and admission (`config::jobs`).
    pub jobs: jobs::JobsConfig,
    /// The monitor's tables: checks, rules, halt actions, alerts, ingest sources, event
    /// retention (`config::monitor`). The defaults for a supervisord config.
    pub monitor: monitor::MonitorConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VigilSection {
    /// Default `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// Absolute; created at load. Default `./vigil-data` relative to the config file.
    pub data_dir: PathBuf,
    /// `error|warn|info|debug|trace`, default `info`.
    pub log_level: String,
    /// What SIGHUP and `supervisor.restart` (`supervisorctl reload`) do: `reload = "apply"`
    /// (vigil.toml's default) or `"restart"` (a supervisord config's default,
    /// `[supervisord] vigil_reload`).
    pub reload: ReloadMode,
}

/// `[vigil] reload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadMode {
    /// Re-read the file and apply the difference: unchanged processes keep running, changed
    /// ones restart, removed ones stop, added ones start.
    Apply,
    /// supervisord's: stop everything in reverse priority, then start the re-read
    /// configuration as at start (SUPERVISOR_STATE_CHANGE_STOPPING / _RUNNING).
    Restart,
}

impl ReloadMode {
    pub const NAMES: &'static [&'static str] = &["apply", "restart"];

    pub fn from_name(s: &str) -> Option<ReloadMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "apply" => Some(ReloadMode::Apply),
            "restart" => Some(ReloadMode::Restart),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ReloadMode::Apply => "apply",
            ReloadMode::Restart => "restart",
        }
    }
}

/// `[program.NAME]`: supervisord's program options with supervisord's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramConfig {
    pub name: String,
    /// The command line as written.
    pub command: String,
    /// `directory`, absolute, checked to exist at load.
    pub directory: Option<PathBuf>,
    pub environment: BTreeMap<String, String>,
    /// `user`: only honoured when vigil runs as root (checked to exist at load).
    pub user: Option<String>,
    pub numprocs: u32,
    pub numprocs_start: u32,
    /// The `process_name` template, default `%(program_name)s`.
    pub process_name: String,
    /// Default 999; lower starts first, stops last.
    pub priority: i32,
    pub autostart: bool,
    pub autorestart: AutoRestart,
    pub startsecs: u64,
    pub startretries: u32,
    pub exitcodes: Vec<i32>,
    pub stopsignal: Signal,
    pub stopwaitsecs: u64,
    pub stopasgroup: bool,
    pub killasgroup: bool,
    pub redirect_stderr: bool,
    /// vigil extensions to supervisord's backoff: `backoff_max`, `backoff = "exponential"`.
    pub backoff: BackoffPolicy,
    /// vigil extension `restart_limit`/`restart_window`: crash-loop throttling.
    pub crash_loop: CrashLoop,
    /// `events = "stdout"`: the program's stdout lines are also events in (issue 4).
    pub events_from_stdout: bool,
    /// `critical = true`: this program reaching FATAL halts trading (issue 4).
    pub critical: bool,
    /// supervisord's `stdout_events_enabled`: emit a PROCESS_LOG_STDOUT event per chunk read.
    pub stdout_events_enabled: bool,
    /// supervisord's `stderr_events_enabled`: emit a PROCESS_LOG_STDERR event per chunk read.
    pub stderr_events_enabled: bool,
    /// supervisord's `stdout_capture_maxbytes`: > 0 enables PROCESS_COMMUNICATION_STDOUT capture
    /// (`<!--XSUPERVISOR:BEGIN-->` … `<!--XSUPERVISOR:END-->`) with a buffer of this many bytes.
    pub stdout_capture_maxbytes: u64,
    /// As `stdout_capture_maxbytes`, for stderr (PROCESS_COMMUNICATION_STDERR).
    pub stderr_capture_maxbytes: u64,
    /// vigil extension (`ready_command`/`ready_http`/`ready_tcp`, …): with a check, a process
    /// counts as RUNNING only once the check succeeds.
    pub ready: Option<ReadinessCheck>,
    /// vigil extension `depends_on`: programs (names of `[program.X]`) that must be ready before
    /// this one starts, and that stop after it. Each exists; the graph has no cycle.
    pub depends_on: Vec<String>,
    /// One entry per process (numprocs), names and paths already expanded.
    pub processes: Vec<ProcessConfig>,
}

impl ProgramConfig {
    /// The state-machine policy of this program.
    pub fn policy(&self) -> Policy {
        Policy {
            startsecs_ms: self.startsecs.saturating_mul(1000),
            startretries: self.startretries,
            exitcodes: self.exitcodes.clone(),
            autorestart: self.autorestart,
            stopwait_ms: self.stopwaitsecs.saturating_mul(1000),
            backoff: self.backoff,
            ready_retries: self.ready.as_ref().map(|r| r.retries),
            crash_loop: self.crash_loop,
        }
    }
}

/// A readiness check (vigil extension; supervisord issue #584): while a process is STARTING,
/// vigil runs the probe every `interval_ms`, each attempt bounded by `timeout_ms`. The process
/// enters RUNNING at the first success (and not before `startsecs`); `retries` failed probes in
/// a row count as a failed start (BACKOFF, then FATAL after `startretries`, as an early exit).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadinessCheck {
    pub probe: ReadinessProbe,
    /// `ready_interval`, default 1 s.
    pub interval_ms: u64,
    /// `ready_timeout`, default 5 s.
    pub timeout_ms: u64,
    /// `ready_retries` (≥ 1), default 60.
    pub retries: u32,
}

/// What a readiness check does.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadinessProbe {
    /// `ready_command`: run this argv (no shell, the program's environment and directory);
    /// ready when it exits 0.
    Command { argv: Vec<String> },
    /// `ready_http`: `GET url` (an `http://` URL, validated at load); ready on a 2xx or 3xx
    /// status (redirects are not followed).
    Http { url: String },
    /// `ready_tcp`: ready when a TCP connection to `host:port` succeeds. `host` is an IP address
    /// or a name resolved at each attempt (IPv6 without brackets).
    Tcp { host: String, port: u16 },
}

/// `[eventlistener.NAME]` (supervisord's `[eventlistener:NAME]`): a pool of listener processes.
/// The pool is a process group named `NAME`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventListenerConfig {
    /// The program-like options (`program.name` is the pool name). `program.priority` is each
    /// listener *process*'s priority (default 999); `redirect_stderr` is always false, and
    /// `events_from_stdout`, `ready` and `depends_on` are unset (stdout is the protocol channel).
    pub program: ProgramConfig,
    /// Subscribed event types, canonical upper case (see [`EVENT_TYPES`]), in the order written,
    /// without duplicates. Abstract types (`PROCESS_STATE`, `EVENT`, …) stand for all their
    /// sub-types.
    pub events: Vec<String>,
    /// `buffer_size`: events queued per pool (≥ 1, default 10).
    pub buffer_size: usize,
    /// The pool's (group's) priority: `priority` when set, else -1 (started first, stopped last).
    pub priority: i32,
}

/// The event type names a listener may subscribe to: supervisord 4.3's (abstract ones included)
/// and vigil's own (`VIGIL_TRADING_STATE`, `VIGIL_CHECK`).
pub const EVENT_TYPES: &[&str] = &[
    "EVENT",
    "PROCESS_STATE",
    "PROCESS_STATE_STOPPED",
    "PROCESS_STATE_EXITED",
    "PROCESS_STATE_STARTING",
    "PROCESS_STATE_STOPPING",
    "PROCESS_STATE_BACKOFF",
    "PROCESS_STATE_FATAL",
    "PROCESS_STATE_RUNNING",
    "PROCESS_STATE_UNKNOWN",
    "PROCESS_COMMUNICATION",
    "PROCESS_COMMUNICATION_STDOUT",
    "PROCESS_COMMUNICATION_STDERR",
    "PROCESS_LOG",
    "PROCESS_LOG_STDOUT",
    "PROCESS_LOG_STDERR",
    "REMOTE_COMMUNICATION",
    "SUPERVISOR_STATE_CHANGE",
    "SUPERVISOR_STATE_CHANGE_RUNNING",
    "SUPERVISOR_STATE_CHANGE_STOPPING",
    "TICK",
    "TICK_5",
    "TICK_60",
    "TICK_3600",
    "PROCESS_GROUP",
    "PROCESS_GROUP_ADDED",
    "PROCESS_GROUP_REMOVED",
    "VIGIL_TRADING_STATE",
    "VIGIL_CHECK",
];

/// supervisord compatibility settings (`[rpc]` in vigil.toml): the XML-RPC servers supervisorctl
/// and listeners talk to, and the `[supervisord]` values they report.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcConfig {
    /// `[supervisord] identifier`, default `supervisor`: the `server:` token of listener
    /// headers and `supervisor.getIdentification`.
    pub identifier: String,
    /// `[inet_http_server]`: XML-RPC (`POST /RPC2`, `GET /logtail/…`) over TCP. When it equals
    /// `vigil.listen`, serve it on vigil's own listener rather than binding twice.
    pub inet: Option<InetServerConfig>,
    /// `[unix_http_server]`: the same over a Unix socket.
    pub unix: Option<UnixServerConfig>,
    /// `[supervisord] logfile` (with `logfile_maxbytes`/`logfile_backups`): supervisord's main
    /// log, read by `readLog`/`maintail`. `None` when not configured.
    pub logfile: Option<LogConfig>,
    /// `[supervisord] pidfile`: where to write vigil's pid. `None` when not configured.
    pub pidfile: Option<PathBuf>,
}

/// `[inet_http_server]` (`[rpc.inet]`).
#[derive(Debug, Clone, PartialEq)]
pub struct InetServerConfig {
    /// `port`: `host:port` or `port`; an empty host or `*` is `0.0.0.0`; names are resolved at
    /// load.
    pub addr: SocketAddr,
    /// HTTP basic auth; `None`: no authentication.
    pub auth: Option<Credentials>,
}

/// `[unix_http_server]` (`[rpc.unix]`).
#[derive(Debug, Clone, PartialEq)]
pub struct UnixServerConfig {
    /// `file`, absolute. A stale socket file is replaced at start.
    pub path: PathBuf,
    /// `chmod` (octal in the file), default `0o700`.
    pub chmod: u32,
    pub auth: Option<Credentials>,
}

/// A username and password (both or neither, as in supervisord).
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

impl Credentials {
    /// Whether a basic-auth pair matches (password compared in constant time).
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let user_ok = ct_eq(self.username.as_bytes(), username.as_bytes());
        let pass_ok = self.password.verify(password);
        user_ok & pass_ok
    }
}

/// A configured password: as written, or supervisord's `{SHA}` + hex SHA-1 of the plaintext.
/// Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Plain(String),
    /// 40 lowercase hex digits.
    Sha1Hex(String),
}

impl Password {
    /// Parse a config value: `{SHA}<40 hex digits>` (any case) or a plaintext password.
    pub fn parse(s: &str) -> Result<Password, String> {
        match s.strip_prefix("{SHA}") {
            Some(hex) => {
                if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Password::Sha1Hex(hex.to_ascii_lowercase()))
                } else {
                    Err("a {SHA} password must be followed by the 40 hex digits of the SHA-1 of the password".to_string())
                }
            }
            None => Ok(Password::Plain(s.to_string())),
        }
    }

    /// The value as written in a config file (`{SHA}…` or the plaintext).
    pub fn to_config_value(&self) -> String {
        match self {
            Password::Plain(p) => p.clone(),
            Password::Sha1Hex(h) => format!("{{SHA}}{h}"),
        }
    }

    /// Whether `given` (a plaintext password) matches, in constant time.
    pub fn verify(&self, given: &str) -> bool {
        match self {
            Password::Plain(p) => ct_eq(p.as_bytes(), given.as_bytes()),
            Password::Sha1Hex(h) => ct_eq(
                h.as_bytes(),
                supervisord::sha1_hex(given.as_bytes()).as_bytes(),
            ),
        }
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Password::Plain(_) => f.write_str("Password::Plain(<redacted>)"),
            Password::Sha1Hex(_) => f.write_str("Password::Sha1Hex(<redacted>)"),
        }
    }
}

/// Equality without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

/// One process of a program, fully expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessConfig {
    /// `process_name` expanded (e.g. `bot_01`).
    pub name: String,
    /// `process_num` used in the expansion.
    pub num: u32,
    /// argv after expansion and shell-like splitting; never empty.
    pub argv: Vec<String>,
    pub stdout_log: LogConfig,
    pub stderr_log: LogConfig,
}

/// Where one output channel goes.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Absolute path; `None` when the log is `NONE`/`OFF` (or stderr is redirected).
    /// Default: `data_dir/logs/<process>.out.log` / `.err.log`. Its directory exists and is
    /// writable (checked at load).
    pub path: Option<PathBuf>,
    /// Rotate when the file would exceed this many bytes; 0 = never. Default 50 MB.
    pub maxbytes: u64,
    /// Rotated files kept (`path.1` … `path.N`). Default 10.
    pub backups: u32,
}

/// `[group.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    pub name: String,
    /// Program names (each exists; a program belongs to at most one group).
    pub programs: Vec<String>,
    pub priority: i32,
}

/// A signal by number with its canonical name (`TERM`, `HUP`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub number: i32,
    pub name: &'static str,
}

impl Signal {
    /// Parse `TERM`, `SIGTERM`, `term` or `15`.
    pub fn parse(s: &str) -> Option<Signal> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return SIGNALS
                .iter()
                .find(|(_, num)| *num == n)
                .map(|(name, number)| Signal {
                    number: *number,
                    name,
                });
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNALS
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|(name, number)| Signal {
                number: *number,
                name,
            })
    }
}

/// The signals a config may name (Linux numbers).
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ABRT", 6),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("ALRM", 14),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("WINCH", 28),
];

impl Config {
    /// The group each program's processes belong to: its `[group.X]`, else the program itself.
    pub fn group_of<'a>(&'a self, program: &'a str) -> &'a str {
        self.groups
            .iter()
            .find(|g| g.programs.iter().any(|p| p == program))
            .map(|g| g.name.as_str())
            .unwrap_or(program)
    }

    pub fn program(&self, name: &str) -> Option<&ProgramConfig> {
        self.programs.iter().find(|p| p.name == name)
    }

    pub fn eventlistener(&self, name: &str) -> Option<&EventListenerConfig> {
        self.eventlisteners.iter().find(|l| l.program.name == name)
    }

    /// supervisord's identifier (`[supervisord] identifier`, `[rpc] identifier`), default
    /// `supervisor`.
    pub fn identifier(&self) -> &str {
        self.rpc
            .as_ref()
            .map_or("supervisor", |r| r.identifier.as_str())
    }

    pub fn db_path(&self) -> PathBuf {
        self.vigil.data_dir.join("vigil.db")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.vigil.data_dir.join("logs")
    }
}

/// Command-line settings that take precedence over the file's, at start and on every reload
/// (`vigil run --listen`, `--identifier`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `[vigil] listen` (supervisord configs: `vigil_listen`).
    pub listen: Option<SocketAddr>,
    /// supervisord's `-i`/`--identifier`: `[supervisord] identifier` (`[rpc] identifier`).
    pub identifier: Option<String>,
}

impl Overrides {
    pub fn apply(&self, mut c: Config) -> Config {
        if let Some(l) = self.listen {
            c.vigil.listen = l;
        }
        if let Some(id) = &self.identifier {
            match &mut c.rpc {
                Some(r) => r.identifier = id.clone(),
                None => {
                    c.rpc = Some(RpcConfig {
                        identifier: id.clone(),
                        inet: None,
                        unix: None,
                        logfile: None,
                        pidfile: None,
                    })
                }
            }
        }
        c
    }
}

/// Make `p` absolute against `base` (the config file's directory).
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// What the config tests of both front ends share.
#[cfg(test)]
pub(crate) mod test_support {
    /// The sections of a `tests/data/config*/README.md`: each `## FILE` heading with the lines
    /// of the code block under it (what loading FILE must print).
    pub(crate) fn readme_sections(readme: &str) -> Vec<(String, Vec<String>)> {
        let mut sections = Vec::new();
        let mut current: Option<String> = None;
        let mut in_block = false;
        let mut lines = Vec::new();
        for line in readme.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                current = Some(h.trim().trim_matches('`').to_string());
            } else if line.starts_with("```") {
                if in_block && let Some(f) = current.take() {
                    sections.push((f, std::mem::take(&mut lines)));
                }
                in_block = !in_block;
            } else if in_block && current.is_some() {
                lines.push(line.to_string());
            }
        }
        sections
    }
}
