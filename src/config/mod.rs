//! Configuration: `vigil.toml` (and, later, supervisord's INI dialect) → a validated [`Config`].
//!
//! Two phases, as ripgrep's flags: the file is parsed into a spanned TOML tree, then every
//! section is validated into typed values, collecting **all** errors, each located as
//! `FILE:LINE:COL: key: message`. Paths are resolved against the config file's directory,
//! checked and created at load, so nothing downstream ever meets a missing path.

mod load;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vigil_core::program::{AutoRestart, BackoffPolicy, Policy};

pub use load::{
    DEFAULT_LISTEN, DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAXBYTES, MAX_NUMPROCS, RESERVED_SECTIONS,
    line_col, load, load_str,
};

/// The closest of `candidates` to a misspelt `word`, for "did you mean" hints.
pub fn suggest<'c>(word: &str, candidates: &'c [&'c str]) -> Option<&'c str> {
    load::did_you_mean(word, candidates)
}

/// One located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Dotted key, e.g. `program.bot.startsecs`.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `FILE:LINE:COL: key: message`; without a position (line 0: the file could not be
        // read) `FILE: message`, and without a key (TOML syntax errors) `FILE:LINE:COL: message`.
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct VigilSection {
    /// Default `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// Absolute; created at load. Default `./vigil-data` relative to the config file.
    pub data_dir: PathBuf,
    /// `error|warn|info|debug|trace`, default `info`.
    pub log_level: String,
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
    /// `events = "stdout"`: the program's stdout lines are also events in (issue 4).
    pub events_from_stdout: bool,
    /// `critical = true`: this program reaching FATAL halts trading (issue 4).
    pub critical: bool,
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
        }
    }
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

    pub fn db_path(&self) -> PathBuf {
        self.vigil.data_dir.join("vigil.db")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.vigil.data_dir.join("logs")
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
