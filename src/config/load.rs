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

mod context;
pub(super) mod expand;
mod spec;
pub(super) mod suggest;
mod toml_front;
mod values;
pub use context::*;
pub(crate) use spec::*;
pub(crate) use toml_front::*;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};
use vigil_core::program::{AutoRestart, BackoffPolicy, CrashLoop};

use super::options;
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

/// The only `result_handler` supervisord ships, and the only one vigil accepts.
pub(super) const DEFAULT_RESULT_HANDLER: &str = "supervisor.dispatchers:default_handler";

/// The readiness probe keys.
pub(super) const READY_PROBES: &[&str] = &["ready_command", "ready_http", "ready_tcp"];

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

/// Fuzzing only: [`load_str`] as a pure function of the text — no directory is created or
/// probed, no file is read (an `[include]` reads nothing, a log file is taken as new), no user
/// or host name is looked up (every such check passes). What is parsed and validated is
/// otherwise exactly what [`load_str`] does. Not for the daemon or the CLI.
#[doc(hidden)]
pub fn load_str_without_io(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    without_io(|| load_str(path, text))
}

/// Fuzzing only: `vigil convert` of `text` (as if read from `path`) without I/O, as
/// [`load_str_without_io`].
#[doc(hidden)]
pub fn convert_str_without_io(
    path: &Path,
    text: &str,
) -> Result<super::supervisord::Converted, ConfigErrors> {
    without_io(|| super::supervisord::convert_with(path, text, &Env::from_process()))
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
    let mut jobs_v = None;
    for (k, v) in entries(doc.get_ref()) {
        let name: &str = k.get_ref();
        match name {
            // Parsed by crate::config::jobs, below.
            "jobs" => jobs_v = Some(v),
            // Parsed by config::auth, below.
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

    let auth = super::auth::parse(&mut cx, auth_v, &env.vars);
    let venues = super::venue::parse(&mut cx, venue_v, &shared.here, &env.vars);
    // The monitor's tables, from the same tree into the same error sink.
    let monitor = super::monitor::parse(&mut cx, doc.get_ref(), &shared.here);
    // [jobs] (issue 10), from the same tree into the same error sink.
    let jobs = super::jobs::parse(&mut cx, jobs_v);

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
    .map(|c| Config { jobs, monitor, ..c })
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
            monitor: Default::default(),
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
    let names = Names::paths(here, env);
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

#[cfg(test)]
mod tests;
