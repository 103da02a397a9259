//! The program and event-listener options, declared once: name, kind (with its range or
//! allowed values), where it applies, its supervisord counterpart, and its reference text
//! (type, default, meaning — the rows of docs/config.md's `[program.NAME]` and
//! `[eventlistener.NAME]` tables, kept equal by a test).
//!
//! Both front ends read the scalar options through [`read_common`]: `vigil.toml` and
//! supervisord's INI dialect only hand over raw values ([`Raw`]) through a [`Source`], so the
//! validation, the defaults and the error texts are the same for the same mistake. What is
//! dialect-specific (templates, paths, `environment`, the log files, `events`) stays in the
//! front ends.
//!
//! **Adding a program option:** a row in [`OPTIONS`], a field in `ProgramSpec` (filled in
//! [`read_common`] for a scalar, else in both front ends), its use in `build_program`, its
//! line in `convert`'s `write_program`, and its row in docs/config.md (the test
//! `docs_match_the_table` says what is missing).

use vigil_core::program::{AutoRestart, BackoffPolicy, CrashLoop};

use super::load::{
    Ctx, DEFAULT_BUFFER_SIZE, DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAXBYTES, MAX_BUFFER_SIZE,
    MAX_NUMPROCS, ProgramSpec, SECS_EXPECTED, TERM, one_of, parse_bytes, secs_to_ms, short_quoted,
    signal_expected,
};

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    /// A string the front end reads itself (templates, paths, names).
    Text,
    /// `true` / `false` (INI also `yes`/`no`, `on`/`off`, `1`/`0`).
    Bool,
    /// An integer in `lo..=hi`; `what` is the expected-value text.
    Int {
        lo: i64,
        hi: i64,
        what: &'static str,
    },
    /// A size in bytes: an integer, or with a `KB`/`MB`/`GB` suffix.
    Bytes,
    /// Positive seconds, fractions allowed (kept as milliseconds).
    Secs,
    /// One of these strings (any case).
    Choice(&'static [&'static str]),
    /// `true`, `false` or `unexpected`.
    AutoRestart,
    /// A signal name or number.
    Signal,
    /// Exit codes 0–255 (TOML array, INI comma list).
    ExitCodes,
    /// Program names (TOML array, INI comma/space list).
    Names,
    /// Event type names (TOML array or comma string, INI comma list).
    Events,
    /// Environment variables (TOML table, INI `K=v,K2=v2`).
    Env,
    /// A log file path, `AUTO` or `NONE`.
    Log,
}

/// Which sections take an option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Applies {
    /// `[program.*]` and `[eventlistener.*]`.
    Both,
    /// Only `[program.*]` (a listener's stdout is the protocol channel).
    Program,
    /// Only `[eventlistener.*]`.
    Listener,
}

/// The option's supervisord counterpart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Origin {
    /// supervisord's option of the same name, in both dialects.
    Supervisord,
    /// A vigil extension: in vigil.toml, and under the same name in a supervisord config.
    Vigil,
    /// A supervisord option vigil accepts only in a supervisord config, and only with a value
    /// that restates what vigil does anyway; in vigil.toml it is an unknown key.
    SupervisordOnly,
}

/// One option.
#[derive(Debug)]
// The reference text is read by the test that keeps docs/config.md equal to it.
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct Opt {
    pub name: &'static str,
    pub kind: Kind,
    pub applies: Applies,
    pub origin: Origin,
    /// The reference's "type" column.
    pub ty: &'static str,
    /// The reference's "default" column.
    pub default: &'static str,
    /// The reference's "meaning" column.
    pub help: &'static str,
}

impl Opt {
    /// Whether a `[program.*]` (`listener == false`) or `[eventlistener.*]` section takes it.
    pub(super) fn applies_to(&self, listener: bool) -> bool {
        match self.applies {
            Applies::Both => true,
            Applies::Program => !listener,
            Applies::Listener => listener,
        }
    }
}

const NON_NEG: &str = "a non-negative integer";
const U32: i64 = u32::MAX as i64;
const I32_MIN: i64 = i32::MIN as i64;
const I32_MAX: i64 = i32::MAX as i64;

/// Every program and event-listener option, in the reference's order.
pub(super) const OPTIONS: &[Opt] = &[
    Opt {
        name: "command",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string, *expanded*",
        default: "**required**",
        help: "The command line. Expanded, then split into words like a POSIX shell line (quotes and backslashes; no variables, globs, pipes or redirections: there is no shell — use `sh -c '…'` for that). An empty command is an error.",
    },
    Opt {
        name: "directory",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string, path, *expanded*",
        default: "none (vigil's cwd)",
        help: "Working directory of the processes. Relative to the config file's directory. Must exist and be a directory at load.",
    },
    Opt {
        name: "environment",
        kind: Kind::Env,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "table of strings, values *expanded*",
        default: "`{}`",
        help: "Added to the environment vigil passes on, e.g. `{ PORT = \"8080\" }`. Values must be strings (quote numbers). supervisord's `K=v,K2=v2` list.",
    },
    Opt {
        name: "user",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string (name or uid)",
        default: "none",
        help: "Run the processes as this user. Must exist at load. Only honoured when vigil runs as root (as in supervisord, a non-root vigil cannot switch users).",
    },
    Opt {
        name: "numprocs",
        kind: Kind::Int {
            lo: 1,
            hi: MAX_NUMPROCS as i64,
            what: "a positive integer (at most 10000)",
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 1 (≤ 10000)",
        default: "`1`",
        help: "How many processes of this program. With more than one, `process_name` must contain `%(process_num)`.",
    },
    Opt {
        name: "numprocs_start",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 0",
        default: "`0`",
        help: "The first `process_num`.",
    },
    Opt {
        name: "process_name",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string, *expanded*",
        default: "`\"%(program_name)s\"`",
        help: "Name of each process, e.g. `\"%(program_name)s_%(process_num)02d\"` → `bot_00`, `bot_01`. Same naming rule as `NAME`; process names must be unique across all programs.",
    },
    Opt {
        name: "priority",
        kind: Kind::Int {
            lo: I32_MIN,
            hi: I32_MAX,
            what: "an integer",
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer",
        default: "`999`",
        help: "Lower starts first and stops last.",
    },
    Opt {
        name: "autostart",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "`true`",
        help: "Start when vigil starts.",
    },
    Opt {
        name: "autorestart",
        kind: Kind::AutoRestart,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "`true`, `false` or `\"unexpected\"`",
        default: "`\"unexpected\"`",
        help: "After a process exits from RUNNING: `true` always restart, `false` never, `\"unexpected\"` restart only if the exit code is not in `exitcodes` (or it died by a signal). The strings `\"true\"` and `\"false\"` are accepted too.",
    },
    Opt {
        name: "startsecs",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 0, seconds",
        default: "`1`",
        help: "How long a process must stay up to count as started (STARTING → RUNNING).",
    },
    Opt {
        name: "startretries",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 0",
        default: "`3`",
        help: "Failed starts in a row before giving up (FATAL).",
    },
    Opt {
        name: "exitcodes",
        kind: Kind::ExitCodes,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "array of integers 0–255",
        default: "`[0]`",
        help: "The \"expected\" exit codes, for `autorestart = \"unexpected\"`. supervisord's comma list.",
    },
    Opt {
        name: "stopsignal",
        kind: Kind::Signal,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string or integer",
        default: "`\"TERM\"`",
        help: "Signal sent to stop: `TERM`, `HUP`, `INT`, `QUIT`, `KILL`, `USR1`, `USR2`, `ABRT`, `ALRM`, `CONT`, `STOP`, `TSTP`, `WINCH`, with or without `SIG`, any case, or the number.",
    },
    Opt {
        name: "stopwaitsecs",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 0, seconds",
        default: "`10`",
        help: "Time to wait after the stop signal before SIGKILL.",
    },
    Opt {
        name: "stopasgroup",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "`false`",
        help: "Send the stop signal to the process group (children too).",
    },
    Opt {
        name: "killasgroup",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "= `stopasgroup`",
        help: "Send the final SIGKILL to the process group. `stopasgroup = true` with `killasgroup = false` is an error, as in supervisord.",
    },
    Opt {
        name: "redirect_stderr",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "`false`",
        help: "Send stderr into the stdout log; `stderr_logfile` is then ignored (no stderr log).",
    },
    Opt {
        name: "stdout_logfile",
        kind: Kind::Log,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "string, path, *expanded*",
        default: "`\"AUTO\"`",
        help: "Where stdout goes. `\"AUTO\"`: `data_dir/logs/<process_name>.out.log`. `\"NONE\"` or `\"OFF\"` (any case): discarded. A path: relative to the config file's directory; its directory is created at load and must be writable. A non-regular file such as `/dev/stdout` is allowed with `stdout_logfile_maxbytes = 0`. Two processes may not share a log file.",
    },
    Opt {
        name: "stdout_logfile_maxbytes",
        kind: Kind::Bytes,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer or string",
        default: "`\"50MB\"`",
        help: "Rotate when the log would exceed this size; `0` = never. Strings take a `KB`, `MB` or `GB` suffix (1024-based, any case): `\"10KB\"`, `\"50MB\"`, `\"1GB\"`.",
    },
    Opt {
        name: "stdout_logfile_backups",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer ≥ 0",
        default: "`10`",
        help: "Rotated files kept: `path.1` … `path.N`.",
    },
    Opt {
        name: "stderr_logfile",
        kind: Kind::Log,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "as `stdout_logfile`",
        default: "`\"AUTO\"`",
        help: "Where stderr goes; `AUTO` is `data_dir/logs/<process_name>.err.log`.",
    },
    Opt {
        name: "stderr_logfile_maxbytes",
        kind: Kind::Bytes,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "as above",
        default: "`\"50MB\"`",
        help: "",
    },
    Opt {
        name: "stderr_logfile_backups",
        kind: Kind::Int {
            lo: 0,
            hi: U32,
            what: NON_NEG,
        },
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "as above",
        default: "`10`",
        help: "",
    },
    Opt {
        name: "backoff",
        kind: Kind::Choice(&["linear", "exponential"]),
        applies: Applies::Both,
        origin: Origin::Vigil,
        ty: "`\"linear\"` or `\"exponential\"`",
        default: "`\"linear\"`",
        help: "*vigil extension.* Delay before retry *n* after a failed start: linear is *n* seconds (supervisord's behaviour), exponential is 2^(*n*−1) seconds.",
    },
    Opt {
        name: "backoff_max",
        kind: Kind::Int {
            lo: 1,
            hi: U32,
            what: "a positive integer (seconds)",
        },
        applies: Applies::Both,
        origin: Origin::Vigil,
        ty: "integer ≥ 1, seconds",
        default: "none",
        help: "*vigil extension.* Cap on that delay.",
    },
    Opt {
        name: "restart_limit",
        kind: Kind::Int {
            lo: 1,
            hi: U32,
            what: "a positive integer (restarts)",
        },
        applies: Applies::Both,
        origin: Origin::Vigil,
        ty: "integer ≥ 1",
        default: "`5`",
        help: "*vigil extension.* Crash-loop throttling, whatever `startsecs`: after more than this many automatic restarts (EXITED → STARTING) within `restart_window`, every further restart waits in EXITED for the `backoff` delay at the loop's level (1 s, 2 s, 3 s … linear; doubling for exponential), capped at `backoff_max` or 60 s, until a child stays up for `restart_window`. The EXITED event's `reason` says `crash loop: … next start in N ms`; a stop cancels the pending restart.",
    },
    Opt {
        name: "restart_window",
        kind: Kind::Int {
            lo: 1,
            hi: U32,
            what: "a positive integer (seconds)",
        },
        applies: Applies::Both,
        origin: Origin::Vigil,
        ty: "integer ≥ 1, seconds",
        default: "`10`",
        help: "*vigil extension.* The window of `restart_limit`.",
    },
    Opt {
        name: "events",
        kind: Kind::Choice(&["stdout"]),
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "`\"stdout\"`",
        default: "absent",
        help: "*vigil extension.* The program's stdout lines are also read as events (one JSON object per line, see the events reference).",
    },
    Opt {
        name: "critical",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Vigil,
        ty: "boolean",
        default: "`false`",
        help: "*vigil extension.* When this program goes FATAL, trading is halted.",
    },
    Opt {
        name: "stdout_capture_maxbytes",
        kind: Kind::Bytes,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "integer or string (as `_maxbytes`)",
        default: "`0`",
        help: "More than 0 turns on capture mode: text between `<!--XSUPERVISOR:BEGIN-->` and `<!--XSUPERVISOR:END-->` on stdout becomes a PROCESS_COMMUNICATION_STDOUT event for event listeners (at most this many bytes are buffered).",
    },
    Opt {
        name: "stdout_events_enabled",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "`false`",
        help: "Emit a PROCESS_LOG_STDOUT event to listeners for each chunk of stdout.",
    },
    Opt {
        name: "stderr_capture_maxbytes",
        kind: Kind::Bytes,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "as above",
        default: "`0`",
        help: "The same for stderr (PROCESS_COMMUNICATION_STDERR).",
    },
    Opt {
        name: "stderr_events_enabled",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::Supervisord,
        ty: "boolean",
        default: "`false`",
        help: "PROCESS_LOG_STDERR events.",
    },
    Opt {
        name: "ready_command",
        kind: Kind::Text,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "string, *expanded*",
        default: "none",
        help: "*vigil extension (readiness check).* A command line (split like `command`, no shell) run in the program's environment and directory; the process is ready when it exits 0.",
    },
    Opt {
        name: "ready_http",
        kind: Kind::Text,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "string, `http://` URL, *expanded*",
        default: "none",
        help: "*vigil extension.* `GET` this URL; ready on a 2xx or 3xx answer (redirects are not followed). `https://` is refused (vigil is built without TLS).",
    },
    Opt {
        name: "ready_tcp",
        kind: Kind::Text,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "string, `HOST:PORT`, *expanded*",
        default: "none",
        help: "*vigil extension.* Ready when a TCP connection succeeds; IPv6 as `\"[::1]:5432\"`; names are resolved at each attempt.",
    },
    Opt {
        name: "ready_interval",
        kind: Kind::Secs,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "number of seconds > 0 (fractions allowed)",
        default: "`1`",
        help: "*vigil extension.* Time between probes.",
    },
    Opt {
        name: "ready_timeout",
        kind: Kind::Secs,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "number of seconds > 0",
        default: "`5`",
        help: "*vigil extension.* Bound on one probe.",
    },
    Opt {
        name: "ready_retries",
        kind: Kind::Int {
            lo: 1,
            hi: U32,
            what: "a positive integer",
        },
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "integer ≥ 1",
        default: "`60`",
        help: "*vigil extension.* Failed probes in a row after which the start counts as failed.",
    },
    Opt {
        name: "depends_on",
        kind: Kind::Names,
        applies: Applies::Program,
        origin: Origin::Vigil,
        ty: "array of program names",
        default: "`[]`",
        help: "*vigil extension.* Programs that must be ready (RUNNING, and their readiness check passed) before this one starts, and that are stopped after it. Each must be another `[program.X]`, listed once; a cycle is an error that shows it (`dependency cycle: a -> b -> a`).",
    },
    Opt {
        name: "events",
        kind: Kind::Events,
        applies: Applies::Listener,
        origin: Origin::Supervisord,
        ty: "array of event type names (or one comma-separated string)",
        default: "**required**",
        help: "Event types to receive, any case, without duplicates: supervisord's (below) and vigil's own. An abstract type receives all its sub-types. Unknown names are errors (with a suggestion).",
    },
    Opt {
        name: "buffer_size",
        kind: Kind::Int {
            lo: 1,
            hi: MAX_BUFFER_SIZE as i64,
            what: "a positive integer",
        },
        applies: Applies::Listener,
        origin: Origin::Supervisord,
        ty: "integer ≥ 1",
        default: "`10`",
        help: "Events queued for the pool.",
    },
    Opt {
        name: "result_handler",
        kind: Kind::Text,
        applies: Applies::Listener,
        origin: Origin::Supervisord,
        ty: "string",
        default: "`\"supervisor.dispatchers:default_handler\"`",
        help: "Only supervisord's default is accepted (`OK` accepts an event, anything else rejects it).",
    },
    Opt {
        name: "umask",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::SupervisordOnly,
        ty: "octal",
        default: "vigil's umask",
        help: "Accepted when it equals vigil's own umask (children inherit it).",
    },
    Opt {
        name: "serverurl",
        kind: Kind::Text,
        applies: Applies::Both,
        origin: Origin::SupervisordOnly,
        ty: "string",
        default: "`AUTO`",
        help: "Accepted as `AUTO`: vigil sets SUPERVISOR_SERVER_URL to its own server.",
    },
    Opt {
        name: "stdout_syslog",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::SupervisordOnly,
        ty: "boolean",
        default: "`false`",
        help: "Accepted as false: vigil has no syslog output.",
    },
    Opt {
        name: "stderr_syslog",
        kind: Kind::Bool,
        applies: Applies::Both,
        origin: Origin::SupervisordOnly,
        ty: "boolean",
        default: "`false`",
        help: "Accepted as false: vigil has no syslog output.",
    },
];

/// The option `name` of a program (`listener == false`) or event-listener section.
pub(super) fn find(name: &str, listener: bool) -> Option<&'static Opt> {
    OPTIONS
        .iter()
        .find(|o| o.name == name && o.applies_to(listener))
}

/// The option names a section of this dialect takes (for did-you-mean): vigil.toml's
/// (`ini == false`) or a supervisord config's (also the [`Origin::SupervisordOnly`] ones).
pub(super) fn names(listener: bool, ini: bool) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = OPTIONS
        .iter()
        .filter(|o| o.applies_to(listener) && (ini || o.origin != Origin::SupervisordOnly))
        .map(|o| o.name)
        .collect();
    v.dedup();
    v
}

/// A value as a front end hands it over.
#[derive(Debug, Clone)]
pub(super) enum Raw {
    /// A TOML string: only a string (never read as a number or a boolean).
    Str(String),
    /// An INI value (expanded): text, read as whatever the option's kind is.
    Text(String),
    Int(i128),
    /// A TOML float and its source text.
    Float(f64, String),
    Bool(bool),
    /// A TOML array: the items and where each is written.
    List(Vec<(Raw, usize)>),
    /// Anything else, described (`datetime …`, `table`).
    Other(String),
}

impl Raw {
    /// `string "abc"`, `integer 5`, … for "expected X, found Y" (the same for both dialects).
    pub(super) fn found(&self) -> String {
        match self {
            Raw::Str(s) => format!("string {}", short_quoted(s)),
            Raw::Text(s) => match parse_int(s) {
                Some(n) => format!("integer {n}"),
                None => format!("string {}", short_quoted(s.trim())),
            },
            Raw::Int(n) => format!("integer {n}"),
            Raw::Float(_, s) => format!("float {s}"),
            Raw::Bool(b) => format!("boolean {b}"),
            Raw::List(_) => "array".to_string(),
            Raw::Other(s) => s.clone(),
        }
    }

    fn int(&self) -> Option<i128> {
        match self {
            Raw::Int(n) => Some(*n),
            Raw::Text(s) => parse_int(s).map(i128::from),
            _ => None,
        }
    }

    /// A string value: a TOML string or any INI value.
    fn text(&self) -> Option<&str> {
        match self {
            Raw::Str(s) | Raw::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Python's `int()`: surrounding whitespace, a sign, `_` between digits.
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.trim_start_matches(['+', '-']);
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// supervisord's booleans.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub(super) const BOOL_EXPECTED: &str = "a boolean (true or false)";
pub(super) const BYTES_EXPECTED: &str =
    "a size in bytes (an integer, optionally with a KB, MB or GB suffix such as \"50MB\")";
const AUTORESTART_EXPECTED: &str = "true, false or \"unexpected\"";
const EXITCODE_EXPECTED: &str = "an exit code (an integer from 0 to 255)";
const EXITCODES_EXPECTED: &str = "an array of exit codes such as [0, 2]";

/// One program or event-listener section as a front end sees it.
pub(super) trait Source {
    /// Whether this is supervisord's INI dialect.
    fn ini(&self) -> bool;
    /// The error key of option `name` (`program.bot.startsecs`, `[program:bot] startsecs`).
    fn key(&self, name: &str) -> String;
    /// The section header's offset.
    fn header_at(&self) -> usize;
    /// The options written, with where each name is.
    fn written(&self) -> Vec<(String, usize)>;
    /// Where the value of `name` is written.
    fn value_at(&self, name: &str) -> Option<usize>;
    /// The raw value of `name` and where it is; `None` when absent or unreadable (an
    /// expansion error, already reported).
    fn raw(&self, cx: &mut Ctx, name: &str) -> Option<(Raw, usize)>;
    /// Report an option this section does not take (an error in vigil.toml, a warning in a
    /// supervisord config, which ignores it).
    fn unknown(&self, cx: &mut Ctx, name: &str, at: usize, known: &[&str]);
}

/// Every option written is one this section takes, or it is reported.
pub(super) fn check_names(cx: &mut Ctx, src: &dyn Source, listener: bool) {
    let known = names(listener, src.ini());
    for (name, at) in src.written() {
        if find(&name, listener).is_some_and(|o| src.ini() || o.origin != Origin::SupervisordOnly) {
            continue;
        }
        if listener && find(&name, false).is_some_and(|o| o.applies == Applies::Program) {
            cx.at(
                at,
                src.key(&name),
                "not available for event listeners (a listener's stdout is the protocol channel)",
            );
        } else if find(&name, listener).is_some() {
            cx.at(
                at,
                src.key(&name),
                "unknown key (a supervisord option vigil does not support)",
            );
        } else {
            src.unknown(cx, &name, at, &known);
        }
    }
}

/// Reads typed values of one section, reporting `expected …, found …` at the value.
pub(super) struct Reader<'s> {
    pub src: &'s dyn Source,
    pub listener: bool,
}

impl Reader<'_> {
    fn expected(&self, cx: &mut Ctx, name: &str, at: usize, expected: &str, raw: &Raw) {
        cx.at(
            at,
            self.src.key(name),
            format!("expected {expected}, found {}", raw.found()),
        );
    }

    /// A typed value of `name`: `parse` gives `Err(expected)` for a bad one.
    fn get<T>(
        &self,
        cx: &mut Ctx,
        name: &str,
        parse: impl Fn(&Raw) -> Result<T, String>,
    ) -> Option<T> {
        let (raw, at) = self.src.raw(cx, name)?;
        match parse(&raw) {
            Ok(t) => Some(t),
            Err(expected) => {
                self.expected(cx, name, at, &expected, &raw);
                None
            }
        }
    }

    fn kind(&self, name: &str) -> Kind {
        find(name, self.listener).map_or(Kind::Text, |o| o.kind)
    }

    pub(super) fn bool(&self, cx: &mut Ctx, name: &str) -> Option<bool> {
        self.get(cx, name, |raw| {
            match raw {
                Raw::Bool(b) => Some(*b),
                Raw::Text(s) => parse_bool(s),
                _ => None,
            }
            .ok_or_else(|| BOOL_EXPECTED.to_string())
        })
    }

    /// An integer in the option's range.
    pub(super) fn int(&self, cx: &mut Ctx, name: &str) -> Option<i64> {
        let Kind::Int { lo, hi, what } = self.kind(name) else {
            return None;
        };
        self.get(cx, name, |raw| {
            raw.int()
                .filter(|n| (i128::from(lo)..=i128::from(hi)).contains(n))
                .and_then(|n| i64::try_from(n).ok())
                .ok_or_else(|| what.to_string())
        })
    }

    pub(super) fn bytes(&self, cx: &mut Ctx, name: &str) -> Option<u64> {
        self.get(cx, name, |raw| {
            match raw {
                Raw::Int(n) => u64::try_from(*n).ok(),
                Raw::Str(s) | Raw::Text(s) => parse_bytes(s),
                _ => None,
            }
            .ok_or_else(|| BYTES_EXPECTED.to_string())
        })
    }

    /// Positive seconds as milliseconds.
    pub(super) fn secs_ms(&self, cx: &mut Ctx, name: &str) -> Option<u64> {
        self.get(cx, name, |raw| {
            let secs = match raw {
                Raw::Int(n) => Some(*n as f64),
                Raw::Float(f, _) => Some(*f),
                Raw::Text(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            secs.and_then(secs_to_ms)
                .ok_or_else(|| SECS_EXPECTED.to_string())
        })
    }

    /// One of the option's choices, in its canonical spelling.
    pub(super) fn choice(&self, cx: &mut Ctx, name: &str) -> Option<&'static str> {
        let Kind::Choice(choices) = self.kind(name) else {
            return None;
        };
        self.get(cx, name, |raw| {
            raw.text()
                .and_then(|s| choices.iter().find(|c| c.eq_ignore_ascii_case(s.trim())))
                .copied()
                .ok_or_else(|| one_of(choices))
        })
    }

    pub(super) fn autorestart(&self, cx: &mut Ctx, name: &str) -> Option<AutoRestart> {
        self.get(cx, name, |raw| {
            let b = match raw {
                Raw::Bool(b) => Some(*b),
                Raw::Str(s) | Raw::Text(s) if s.trim().eq_ignore_ascii_case("unexpected") => {
                    return Ok(AutoRestart::Unexpected);
                }
                Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                },
                Raw::Text(s) => parse_bool(s),
                _ => None,
            };
            match b {
                Some(true) => Ok(AutoRestart::Always),
                Some(false) => Ok(AutoRestart::Never),
                None => Err(AUTORESTART_EXPECTED.to_string()),
            }
        })
    }

    pub(super) fn signal(&self, cx: &mut Ctx, name: &str) -> Option<super::Signal> {
        self.get(cx, name, |raw| {
            match raw {
                Raw::Str(s) | Raw::Text(s) => super::Signal::parse(s),
                Raw::Int(n) => super::Signal::parse(&n.to_string()),
                _ => None,
            }
            .ok_or_else(signal_expected)
        })
    }

    /// Exit codes: each bad one reported where it is.
    pub(super) fn exitcodes(&self, cx: &mut Ctx, name: &str) -> Option<Vec<i32>> {
        let (raw, at) = self.src.raw(cx, name)?;
        let items: Vec<(Raw, usize)> = match raw {
            Raw::List(items) => items,
            Raw::Text(s) if s.trim().is_empty() => Vec::new(),
            Raw::Text(s) => s
                .split(',')
                .map(|c| (Raw::Text(c.to_string()), at))
                .collect(),
            other => {
                self.expected(cx, name, at, EXITCODES_EXPECTED, &other);
                return None;
            }
        };
        let mut codes = Vec::new();
        let mut ok = true;
        for (item, item_at) in items {
            match item.int().filter(|n| (0..=255).contains(n)) {
                Some(n) => codes.push(n as i32),
                None => {
                    self.expected(cx, name, item_at, EXITCODE_EXPECTED, &item);
                    ok = false;
                }
            }
        }
        ok.then_some(codes)
    }
}

/// What [`read_common`] reads besides the spec's fields.
pub(super) struct Common {
    /// `priority` as written.
    pub priority: Option<i32>,
    /// An event listener's `buffer_size`.
    pub buffer_size: usize,
}

/// The scalar options of a program or event-listener section, into `spec` (whose fields
/// hold the defaults): the same for both dialects.
pub(super) fn read_common(
    cx: &mut Ctx,
    src: &dyn Source,
    spec: &mut ProgramSpec,
    listener: bool,
) -> Common {
    check_names(cx, src, listener);
    let r = Reader { src, listener };
    let header = src.header_at();
    let u32_of = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
    if let Some(n) = u32_of(r.int(cx, "numprocs")) {
        spec.numprocs = n;
    }
    if let Some(n) = u32_of(r.int(cx, "numprocs_start")) {
        spec.numprocs_start = n;
    }
    spec.numprocs_start_at = src.value_at("numprocs_start").unwrap_or(header);
    let priority = r.int(cx, "priority").and_then(|n| i32::try_from(n).ok());
    spec.priority = priority.unwrap_or(999);
    spec.autostart = r.bool(cx, "autostart").unwrap_or(true);
    spec.autorestart = r
        .autorestart(cx, "autorestart")
        .unwrap_or(AutoRestart::Unexpected);
    spec.startsecs = r
        .int(cx, "startsecs")
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(1);
    spec.startretries = u32_of(r.int(cx, "startretries")).unwrap_or(3);
    if let Some(codes) = r.exitcodes(cx, "exitcodes") {
        spec.exitcodes = codes;
    }
    spec.stopsignal = r.signal(cx, "stopsignal").unwrap_or(TERM);
    spec.stopwaitsecs = r
        .int(cx, "stopwaitsecs")
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(10);
    spec.stopasgroup = r.bool(cx, "stopasgroup").unwrap_or(false);
    spec.killasgroup = r.bool(cx, "killasgroup");
    spec.killasgroup_at = src.value_at("killasgroup").unwrap_or(header);
    spec.redirect_stderr = r.bool(cx, "redirect_stderr").unwrap_or(false);
    spec.critical = r.bool(cx, "critical").unwrap_or(false);
    spec.stdout_events_enabled = r.bool(cx, "stdout_events_enabled").unwrap_or(false);
    spec.stderr_events_enabled = r.bool(cx, "stderr_events_enabled").unwrap_or(false);
    spec.stdout_capture_maxbytes = r.bytes(cx, "stdout_capture_maxbytes").unwrap_or(0);
    spec.stderr_capture_maxbytes = r.bytes(cx, "stderr_capture_maxbytes").unwrap_or(0);
    let exponential = r.choice(cx, "backoff") == Some("exponential");
    let backoff_max = r.int(cx, "backoff_max").and_then(|n| u64::try_from(n).ok());
    spec.backoff = BackoffPolicy {
        exponential,
        max_ms: backoff_max.map(|s| s.saturating_mul(1000)),
        ..BackoffPolicy::default()
    };
    let loop_defaults = CrashLoop::default();
    spec.crash_loop = CrashLoop {
        restarts: u32_of(r.int(cx, "restart_limit")).unwrap_or(loop_defaults.restarts),
        window_ms: r
            .int(cx, "restart_window")
            .and_then(|n| u64::try_from(n).ok())
            .map_or(loop_defaults.window_ms, |s| s.saturating_mul(1000)),
    };
    for chan in &mut spec.logs {
        let k = chan.opt;
        chan.maxbytes = r
            .bytes(cx, &format!("{k}_maxbytes"))
            .unwrap_or(DEFAULT_LOG_MAXBYTES);
        chan.backups = u32_of(r.int(cx, &format!("{k}_backups"))).unwrap_or(DEFAULT_LOG_BACKUPS);
    }
    let mut buffer_size = DEFAULT_BUFFER_SIZE;
    if listener {
        if spec.redirect_stderr {
            cx.at(
                src.value_at("redirect_stderr").unwrap_or(header),
                src.key("redirect_stderr"),
                super::load::REDIRECT_STDERR_LISTENER,
            );
        }
        if let Some(n) = r
            .int(cx, "buffer_size")
            .and_then(|n| usize::try_from(n).ok())
        {
            buffer_size = n;
        }
    } else {
        spec.events_from_stdout = r.choice(cx, "events").is_some();
        spec.ready.interval_ms = r.secs_ms(cx, "ready_interval");
        spec.ready.timeout_ms = r.secs_ms(cx, "ready_timeout");
        spec.ready.retries = u32_of(r.int(cx, "ready_retries"));
        // Only well-formed values: a bad one is reported as such, not as "needs a probe".
        let tuning = [
            ("ready_interval", spec.ready.interval_ms.is_some()),
            ("ready_timeout", spec.ready.timeout_ms.is_some()),
            ("ready_retries", spec.ready.retries.is_some()),
        ];
        for (k, set) in tuning {
            if set
                && spec.ready.tuning_at.is_none()
                && let Some(at) = src.value_at(k)
            {
                spec.ready.tuning_at = Some((k, at));
            }
        }
    }
    Common {
        priority,
        buffer_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::Env;
    use crate::config::{ConfigError, supervisord};
    use std::path::Path;

    fn env() -> Env {
        Env {
            vars: std::collections::BTreeMap::new(),
            host_node_name: "testhost".to_string(),
        }
    }

    /// Load `text` as `name` in a fresh directory: its errors (or, when it loads, its
    /// warnings), as (line, key, message).
    fn problems(name: &str, text: &str) -> Vec<(usize, String, String)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let ini = name.ends_with(".conf");
        let r = if ini {
            supervisord::load_with(&path, text, &env())
        } else {
            crate::config::load::load_with(&path, text, &env())
        };
        let list: Vec<ConfigError> = match r {
            Ok(c) => c.warnings,
            Err(e) => e.0,
        };
        list.into_iter()
            .inspect(|e| assert_eq!(e.file, path, "{e}"))
            .map(|e| (e.line, e.key, e.message))
            .collect()
    }

    /// A program section with `line` as its 3rd line, in both dialects.
    fn both(toml_line: &str, ini_line: &str) -> [Vec<(usize, String, String)>; 2] {
        [
            problems(
                "vigil.toml",
                &format!("[program.bot]\ncommand = \"/bin/true\"\n{toml_line}\n"),
            ),
            problems(
                "supervisord.conf",
                &format!("[supervisord]\n[program:bot]\ncommand = /bin/true\n{ini_line}\n"),
            ),
        ]
    }

    /// The same mistake gives the same message, at its line, in both dialects.
    #[test]
    fn the_same_mistake_gives_the_same_message_in_both_dialects() {
        let cases = [
            // wrong type
            (
                "autostart = \"maybe\"",
                "autostart = maybe",
                "startsecs",
                "expected a boolean (true or false), found string \"maybe\"",
            ),
            (
                "startsecs = \"soon\"",
                "startsecs = soon",
                "startsecs",
                "expected a non-negative integer, found string \"soon\"",
            ),
            (
                "stdout_logfile_maxbytes = \"lots\"",
                "stdout_logfile_maxbytes = lots",
                "",
                "expected a size in bytes (an integer, optionally with a KB, MB or GB suffix such as \"50MB\"), found string \"lots\"",
            ),
            // out of range
            (
                "numprocs = 20000",
                "numprocs = 20000",
                "",
                "expected a positive integer (at most 10000), found integer 20000",
            ),
            (
                "ready_retries = 0",
                "ready_retries = 0",
                "",
                "expected a positive integer, found integer 0",
            ),
            (
                "exitcodes = [0, 300]",
                "exitcodes = 0,300",
                "",
                "expected an exit code (an integer from 0 to 255), found integer 300",
            ),
            // bad enum value
            (
                "backoff = \"fast\"",
                "backoff = fast",
                "",
                "expected \"linear\" or \"exponential\", found string \"fast\"",
            ),
            (
                "autorestart = \"sometimes\"",
                "autorestart = sometimes",
                "",
                "expected true, false or \"unexpected\", found string \"sometimes\"",
            ),
            (
                "stopsignal = \"TERMINATE\"",
                "stopsignal = TERMINATE",
                "",
                &format!("expected {}, found string \"TERMINATE\"", signal_expected()),
            ),
        ];
        for (toml_line, ini_line, _, message) in cases {
            let opt = toml_line.split(' ').next().unwrap_or_default();
            let [t, i] = both(toml_line, ini_line);
            assert_eq!(
                t,
                [(3, format!("program.bot.{opt}"), message.to_string())],
                "vigil.toml: {toml_line}"
            );
            assert_eq!(
                i,
                [(4, format!("[program:bot] {opt}"), message.to_string())],
                "supervisord.conf: {ini_line}"
            );
        }
    }

    /// An unknown option: the same suggestion at its line; an error in vigil.toml, a warning
    /// in a supervisord config (supervisord ignores it, and its plugins rely on that).
    #[test]
    fn an_unknown_option_gets_the_same_suggestion_in_both_dialects() {
        let [t, i] = both("startsec = 1", "startsec = 1");
        assert_eq!(
            t,
            [(
                3,
                "program.bot.startsec".to_string(),
                "unknown key, did you mean \"startsecs\"?".to_string()
            )]
        );
        assert_eq!(
            i,
            [(
                4,
                "[program:bot] startsec".to_string(),
                "unknown option, ignored (did you mean \"startsecs\"?)".to_string()
            )]
        );
        // A program-only option in a listener: the same error in both.
        let t = problems(
            "vigil.toml",
            "[eventlistener.l]\ncommand = \"/bin/true\"\nevents = [\"TICK_5\"]\nready_tcp = \"x:1\"\n",
        );
        let i = problems(
            "supervisord.conf",
            "[supervisord]\n[eventlistener:l]\ncommand = /bin/true\nevents = TICK_5\nready_tcp = x:1\n",
        );
        let m = "not available for event listeners (a listener's stdout is the protocol channel)";
        assert_eq!(
            t,
            [(4, "eventlistener.l.ready_tcp".to_string(), m.to_string())]
        );
        assert_eq!(
            i,
            [(5, "[eventlistener:l] ready_tcp".to_string(), m.to_string())]
        );
    }

    /// A repeated section: an error in vigil.toml (TOML forbids it) at the second header;
    /// merged in a supervisord config, as supervisord's parser merges it.
    #[test]
    fn a_duplicate_section() {
        let t = problems(
            "vigil.toml",
            "[program.bot]\ncommand = \"/bin/true\"\n[program.bot]\nstartsecs = 2\n",
        );
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].0, 3, "{t:?}");
        assert!(t[0].2.contains("duplicate key"), "{t:?}");
        let i = problems(
            "supervisord.conf",
            "[supervisord]\n[program:bot]\ncommand = /bin/true\n[program:bot]\nstartsecs = soon\n",
        );
        assert_eq!(
            i,
            [(
                5,
                "[program:bot] startsecs".to_string(),
                "expected a non-negative integer, found string \"soon\"".to_string()
            )]
        );
    }

    /// The rows of a `## HEADER` table of docs/config.md: (key, type, default, meaning).
    fn doc_rows(doc: &str, header: &str) -> Vec<[String; 4]> {
        let mut lines = doc.lines().skip_while(|l| *l != header);
        assert!(lines.next().is_some(), "docs/config.md has no {header}");
        lines
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<String> = l
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect();
                assert_eq!(cells.len(), 4, "{l}");
                [
                    cells[0].trim_matches('`').to_string(),
                    cells[1].clone(),
                    cells[2].clone(),
                    cells[3].clone(),
                ]
            })
            .collect()
    }

    /// docs/config.md's `[program.NAME]` and `[eventlistener.NAME]` references are the table.
    #[test]
    fn docs_match_the_table() {
        let doc =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md"))
                .expect("docs/config.md");
        let row = |o: &Opt| {
            [
                o.name.to_string(),
                o.ty.to_string(),
                o.default.to_string(),
                o.help.to_string(),
            ]
        };
        let documented = |o: &&Opt| o.origin != Origin::SupervisordOnly;
        let program: Vec<[String; 4]> = OPTIONS
            .iter()
            .filter(|o| o.applies != Applies::Listener)
            .filter(documented)
            .map(row)
            .collect();
        assert_eq!(doc_rows(&doc, "## `[program.NAME]`"), program);
        // The listener table: every listener-only option as in the table; the other rows
        // are notes on shared options.
        let listener = doc_rows(&doc, "## `[eventlistener.NAME]`");
        for o in OPTIONS.iter().filter(|o| o.applies == Applies::Listener) {
            assert!(
                listener.contains(&row(o)),
                "{} is not documented as in the table",
                o.name
            );
        }
        for r in &listener {
            assert!(
                find(&r[0], true).is_some(),
                "{} is not a listener option",
                r[0]
            );
        }
        // Every table default that is a plain value is the value the loaders use: a section
        // with just `command` has them.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vigil.toml");
        let text = "[program.bot]\ncommand = \"/bin/true\"\n";
        let c = crate::config::load::load_with(&path, text, &env()).expect("loads");
        let p = &c.programs[0];
        let want = |name: &str, value: String| {
            let o = find(name, false).expect("option");
            assert_eq!(o.default, format!("`{value}`"), "{name}");
        };
        want("numprocs", p.numprocs.to_string());
        want("priority", p.priority.to_string());
        want("autostart", p.autostart.to_string());
        want("startsecs", p.startsecs.to_string());
        want("startretries", p.startretries.to_string());
        want("stopwaitsecs", p.stopwaitsecs.to_string());
        want("stopasgroup", p.stopasgroup.to_string());
        want("stdout_logfile_backups", DEFAULT_LOG_BACKUPS.to_string());
        assert_eq!(DEFAULT_LOG_MAXBYTES, 50 << 20);
        assert_eq!(find("buffer_size", true).map(|o| o.default), Some("`10`"));
        assert_eq!(DEFAULT_BUFFER_SIZE, 10);
    }

    /// `vigil convert` writes every option the table has (here each set to a value other
    /// than its default), in the table's order.
    #[test]
    fn convert_writes_every_option_of_the_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let text = format!(
            "[supervisord]\n\
             [program:dep]\ncommand = /bin/true\n\
             [program:bot]\ncommand = /bin/sleep 5\ndirectory = {d}\nenvironment = A=1\n\
             user = root\nnumprocs = 2\nnumprocs_start = 1\n\
             process_name = %(program_name)s_%(process_num)d\npriority = 5\n\
             autostart = false\nautorestart = true\nstartsecs = 2\nstartretries = 4\n\
             exitcodes = 0,2\nstopsignal = INT\nstopwaitsecs = 3\nstopasgroup = true\n\
             killasgroup = true\nredirect_stderr = false\n\
             stdout_logfile = {d}/%(process_num)d.out\nstdout_logfile_maxbytes = 1KB\n\
             stdout_logfile_backups = 2\nstderr_logfile = {d}/%(process_num)d.err\n\
             stderr_logfile_maxbytes = 2KB\nstderr_logfile_backups = 3\nbackoff = exponential\n\
             backoff_max = 9\nrestart_limit = 7\nrestart_window = 30\nevents = stdout\ncritical = true\nstdout_capture_maxbytes = 1KB\n\
             stdout_events_enabled = true\nstderr_capture_maxbytes = 1KB\n\
             stderr_events_enabled = true\nready_tcp = 127.0.0.1:1\nready_interval = 2\n\
             ready_timeout = 3\nready_retries = 4\ndepends_on = dep\n\
             [eventlistener:l]\ncommand = /bin/cat\nevents = TICK_5\nbuffer_size = 3\n"
        );
        let path = dir.path().join("supervisord.conf");
        let out = supervisord::convert_with(&path, &text, &env()).expect("converts");
        let section = |h: &str| -> Vec<String> {
            out.toml
                .split("\n[")
                .find(|s| s.starts_with(h))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(|l| l.split(" = ").next())
                .map(str::to_string)
                .collect()
        };
        let want = |listener: bool| -> Vec<String> {
            OPTIONS
                .iter()
                .filter(|o| o.applies_to(listener) && o.origin != Origin::SupervisordOnly)
                .map(|o| o.name.to_string())
                .collect()
        };
        // Of the probes one is set; `redirect_stderr = true` would drop the stderr log; a
        // killasgroup equal to stopasgroup is not written (it is its default).
        let skip = [
            "ready_command",
            "ready_http",
            "redirect_stderr",
            "killasgroup",
        ];
        let program: Vec<String> = want(false)
            .into_iter()
            .filter(|n| !skip.contains(&n.as_str()))
            .collect();
        assert_eq!(section("program.bot]"), program, "{}", out.toml);
        let listener: Vec<String> = ["command", "events", "buffer_size"]
            .map(String::from)
            .to_vec();
        assert!(want(true).starts_with(&["command".to_string()]));
        assert_eq!(section("eventlistener.l]"), listener, "{}", out.toml);
    }
}
