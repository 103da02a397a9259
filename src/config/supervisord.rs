//! supervisord's INI dialect (`supervisord.conf`): read as supervisord 4.3 reads it, validated
//! by the same code as vigil.toml, and translated to vigil.toml by `vigil convert`.
//!
//! The reader mimics Python's `RawConfigParser` as supervisord configures it: `;` and `#`
//! start a comment at the start of a line or after whitespace (so `sh -c 'a;b'` keeps its
//! `;`), values continue on more-indented lines (joined with `\n`), keys are case-insensitive,
//! `key: value` works like `key = value`, and a repeated section or key merges / wins last.
//! `[include] files` are read in sorted glob order. `%(here)s` is the directory of the file that
//! holds the value.
//!
//! Every option supervisord accepts is either honoured (mapped into [`Config`]) or an error
//! `FILE:LINE: option X is not supported` (with the reason); options whose value only
//! restates what vigil does anyway (`nodaemon`, `silent=false`, an `umask` equal to vigil's, …)
//! are accepted. Unknown options and sections are located warnings with a did-you-mean (as
//! supervisord ignores them). Errors are located by line only
//! (`FILE:LINE: [program:bot] startsecs: …`). The reference is the "supervisord configs"
//! section of docs/config.md.
//!
//! Files: `reader.rs` (the INI reader, includes and globs), `program.rs` (program and listener
//! sections), `convert.rs` (`vigil convert`); this file has the entry points, `[supervisord]`,
//! the HTTP servers and groups.

mod convert;
mod program;
mod reader;
use convert::*;
use program::*;
use reader::*;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use vigil_core::program::AutoRestart;

use super::load::expand::{self, Names, Value};
use super::load::suggest::did_you_mean;
use super::load::{
    self, Ctx, DEFAULT_BUFFER_SIZE, DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAXBYTES,
    DEFAULT_READY_INTERVAL_MS, DEFAULT_READY_RETRIES, DEFAULT_READY_TIMEOUT_MS,
    DEFAULT_RESULT_HANDLER, Env, EnvSpec, KeyPath, ListenerSpec, LogSpec, LogUse, Parts,
    ProgramSpec, READY_PROBES, Shared, Str, TERM, add_member, assemble, check_group_names,
    check_parent_dir, credentials, ensure_dir, env_var_problem, existing_dir, expand_data_dir,
    here_of, listener_events, log_keyword, name_problem, parse_bytes, parse_inet, parse_octal,
    resolve_clean, setup_data_dir, short_quoted,
};
use super::options::{self, BOOL_EXPECTED, BYTES_EXPECTED, parse_bool, parse_int};
use super::{
    Config, ConfigErrors, EventListenerConfig, InetServerConfig, LogConfig, ProgramConfig,
    ReadinessProbe, RpcConfig, UnixServerConfig, VigilSection,
};

/// `[supervisord]` options: supervisord 4.3's, then vigil's extensions.
const SUPERVISORD_OPTIONS: &[&str] = &[
    "logfile",
    "logfile_maxbytes",
    "logfile_backups",
    "loglevel",
    "pidfile",
    "umask",
    "nodaemon",
    "silent",
    "minfds",
    "minprocs",
    "nocleanup",
    "childlogdir",
    "user",
    "directory",
    "strip_ansi",
    "environment",
    "identifier",
    "vigil_data_dir",
    "vigil_listen",
    "vigil_reload",
];

const GROUP_OPTIONS: &[&str] = &["programs", "priority"];
const UNIX_HTTP_OPTIONS: &[&str] = &["file", "chmod", "chown", "username", "password"];
const INET_HTTP_OPTIONS: &[&str] = &["port", "username", "password"];
const RPCINTERFACE_FACTORY: &str = "supervisor.rpcinterface_factory";
const MAIN_RPCINTERFACE: &str = "supervisor.rpcinterface:make_main_rpcinterface";

/// Section kinds, for did-you-mean on unknown sections.
const SECTION_NAMES: &[&str] = &[
    "supervisord",
    "include",
    "unix_http_server",
    "inet_http_server",
    "supervisorctl",
    "rpcinterface:supervisor",
];
const SECTION_PREFIXES: &[&str] = &[
    "program",
    "eventlistener",
    "group",
    "fcgi-program",
    "rpcinterface",
    "ctlplugin",
];

/// supervisord's log levels → vigil's.
const LOG_LEVELS: &[(&str, &str)] = &[
    ("critical", "error"),
    ("error", "error"),
    ("warn", "warn"),
    ("info", "info"),
    ("debug", "debug"),
    ("trace", "trace"),
    ("blather", "trace"),
];

// ------------------------------------------------------------------------------------------
// Entry points

/// Load a supervisord config file (with its `[include]`s).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = load::read_config(path)?;
    load_with(path, &text, &Env::from_process())
}

/// Validate supervisord config text as if read from `path`, with the environment `env`.
pub(crate) fn load_with(path: &Path, text: &str, env: &Env) -> Result<Config, ConfigErrors> {
    load_inner(path, text, env).map(|(c, _)| c)
}

/// The result of `vigil convert`.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The equivalent vigil.toml.
    pub toml: String,
    /// What the input itself has that supervisord (and so vigil) ignores: unknown options and
    /// sections, located in the input ([`Config::warnings`] of its load). They are not in the
    /// TOML, which is still equivalent: the original load ignored them too.
    pub ignored: Vec<super::ConfigError>,
    /// Problems with the translation: empty when the TOML loads, without a warning of its own,
    /// to the same [`Config`].
    pub warnings: Vec<String>,
}

/// `vigil convert FILE`: the vigil.toml equivalent to a supervisord config. The output is
/// self-contained (absolute paths, `%(here)s` and `[supervisord] environment` resolved), and
/// loading it yields the same [`Config`] (except `source`); that is checked, and any difference
/// is a warning.
pub fn convert(path: &Path) -> Result<Converted, ConfigErrors> {
    let text = load::read_config(path)?;
    convert_with(path, &text, &Env::from_process())
}

pub(crate) fn convert_with(path: &Path, text: &str, env: &Env) -> Result<Converted, ConfigErrors> {
    let (config, hints) = load_inner(path, text, env)?;
    let toml = to_toml(&config, &hints);
    // Loaded as if saved beside the original (nothing in it depends on where it is).
    let toml_path = path.with_extension("toml");
    // What the original load ignored (unknown options and sections) is not in the TOML: the
    // input's own warnings, kept apart from the translation's.
    let mut warnings = Vec::new();
    match load::load_with(&toml_path, &toml, env) {
        Ok(mut back) => {
            // vigil.toml has no ignored keys (an unknown key is an error), so any warning
            // here is the converter's.
            for w in &back.warnings {
                warnings.push(format!("the converted file has a warning: {w}"));
            }
            back.source = config.source.clone();
            back.warnings = config.warnings.clone();
            if let Some(d) = first_difference(&config, &back) {
                warnings.push(format!(
                    "the converted file does not behave exactly like the original: {d} differs"
                ));
            }
        }
        Err(e) => warnings.push(format!("the converted file does not load:\n{e}")),
    }
    Ok(Converted {
        toml,
        ignored: config.warnings,
        warnings,
    })
}

/// What `vigil convert` needs besides the [`Config`].
#[derive(Default)]
struct Hints {
    /// Per program / listener name: how to write `stdout_logfile`, `stderr_logfile`.
    logs: HashMap<String, [LogHint; 2]>,
    listener_logs: HashMap<String, [LogHint; 2]>,
    /// Accepted options that have no vigil.toml counterpart, as comments.
    notes: Vec<String>,
}

#[derive(Clone, Debug)]
enum LogHint {
    Default,
    Off,
    /// An absolute path template.
    Template(String),
}

// ------------------------------------------------------------------------------------------
// The INI reader

/// supervisord ignores options it does not know (plugins such as supervisord-dependent-startup
/// add their own): a located warning, not an error (`--strict` makes it one).
fn unknown_option(cx: &mut Ctx, e: &IniEntry, section: &str, known: &[&str]) {
    cx.warn(
        e.key_at,
        format!("{section} {}", e.key),
        unknown_option_message(&e.key, known),
    );
}

fn unknown_option_message(name: &str, known: &[&str]) -> String {
    match did_you_mean(name, known) {
        Some(s) => format!("unknown option, ignored (did you mean \"{s}\"?)"),
        None if known.len() <= 6 => format!(
            "unknown option, ignored (known options: {})",
            known.join(", ")
        ),
        None => "unknown option, ignored".to_string(),
    }
}

/// `FILE:LINE: option X is not supported: why`.
fn unsupported(cx: &mut Ctx, e: &IniEntry, why: &str) {
    unsupported_as(cx, e, &e.key, why);
}

/// `FILE:LINE: option X=VALUE is not supported: why`, for an option vigil accepts only with
/// some values.
fn unsupported_value(cx: &mut Ctx, e: &IniEntry, why: &str) {
    let shown = format!("{}={}", e.key, e.value.trim());
    unsupported_as(cx, e, &shown, why);
}

fn unsupported_as(cx: &mut Ctx, e: &IniEntry, opt: &str, why: &str) {
    if why.is_empty() {
        cx.at(e.key_at, "", format!("option {opt} is not supported"));
    } else {
        cx.at(
            e.key_at,
            "",
            format!("option {opt} is not supported: {why}"),
        );
    }
}

/// supervisord's `list_of_strings`: comma-separated, each trimmed; empty items dropped.
fn list_of_strings(s: &str) -> Vec<&str> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

/// A `depends_on` list: names separated by commas and/or whitespace.
fn name_list(s: &str) -> Vec<&str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .collect()
}

/// An `environment` value (`K=v,K2="v2"`, already expanded, written at `at`) into `out`:
/// each variable name checked, every problem reported under `key`.
fn environment_into(
    cx: &mut Ctx,
    key: &str,
    v: &str,
    at: usize,
    out: &mut BTreeMap<String, String>,
) {
    match parse_kv_pairs(v) {
        Ok(pairs) => {
            for (k, val) in pairs {
                match env_var_problem(&k) {
                    Some(p) => cx.at(at, key, format!("{k}: {p}")),
                    None => {
                        out.insert(k, val);
                    }
                }
            }
        }
        Err(m) => cx.at(at, key, m),
    }
}

/// supervisord's `dict_of_key_value_pairs`: `K=v,K2="v, with, commas"` tokenized like Python's
/// non-POSIX `shlex` (quotes kept in the token, then stripped; `#` starts a comment). vigil
/// requires a `,` between pairs (supervisord skips any one token there).
fn parse_kv_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || "/.+-():".contains(c);
    let chars: Vec<char> = s.chars().collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while chars.get(i).is_some_and(|c| *c != '\n') {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let mut tok = String::from(c);
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(format!("no closing quotation ({c}) in {}", short_quoted(s)));
                };
                tok.push(d);
                i += 1;
                if d == c {
                    break;
                }
            }
            tokens.push(tok);
        } else if word(c) {
            let mut tok = String::new();
            while let Some(&d) = chars.get(i) {
                if !(word(d) || d == '"' || d == '\'') {
                    break;
                }
                tok.push(d);
                i += 1;
            }
            tokens.push(tok);
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    let mut out = Vec::new();
    let mut j = 0;
    while j < tokens.len() {
        match tokens.get(j..j + 3) {
            Some([k, eq, v]) if eq == "=" => {
                out.push((k.clone(), v.trim_matches(['"', '\'']).to_string()));
            }
            _ => {
                return Err(format!(
                    "expected KEY=value pairs separated by commas (quote values with spaces or commas: KEY=\"a, b\"), found {}",
                    short_quoted(s)
                ));
            }
        }
        if let Some(sep) = tokens.get(j + 3)
            && sep != ","
        {
            return Err(format!(
                "expected ',' between KEY=value pairs, found {} (quote values with spaces: KEY=\"a b\")",
                short_quoted(sep)
            ));
        }
        j += 4;
    }
    Ok(out)
}

/// vigil's umask, to compare with a configured `wanted` one: [`current_umask`], except that
/// without I/O (the pure fuzz targets) the host is not read and the check passes (`wanted`).
fn umask_against(wanted: u32) -> Option<u32> {
    if load::io_allowed() {
        current_umask()
    } else {
        Some(wanted)
    }
}

/// vigil's current umask, from `/proc/self/status` (Linux ≥ 4.7).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// The soft limit named `what` in `/proc/self/limits` (`None`: unknown; `Some(None)`:
/// unlimited). Without I/O the host is not read and the check passes: unlimited.
fn soft_limit(what: &str) -> Option<Option<u64>> {
    if !load::io_allowed() {
        return Some(None);
    }
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find_map(|l| l.strip_prefix(what))?;
    let soft = line.split_whitespace().next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// `~` and `~/x` → the home directory (supervisord's `expanduser` on file paths).
fn expand_user(s: &str, env: &Env) -> String {
    match (s.strip_prefix('~'), env.vars.get("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => s.to_string(),
    }
}

/// A section being validated: its entries and how its error keys are spelled.
struct Sect<'d> {
    s: &'d IniSection,
    kp: KeyPath,
}

impl<'d> Sect<'d> {
    fn new(s: &'d IniSection) -> Sect<'d> {
        Sect {
            s,
            kp: KeyPath {
                prefix: format!("[{}]", s.name),
                sep: " ",
            },
        }
    }

    fn get(&self, k: &str) -> Option<&'d IniEntry> {
        self.s.get(k)
    }

    fn key(&self, k: &str) -> String {
        self.kp.key(k)
    }
}

/// Expanded value of `k`, or `None` (absent, or an expansion error reported).
fn expanded(cx: &mut Ctx, sec: &Sect<'_>, k: &str, names: &Names<'_>) -> Option<(String, usize)> {
    let e = sec.get(k)?;
    let v = cx.expand(&e.value, &e.span, &sec.key(k), names)?;
    Some((v, e.span.start))
}

/// A typed value: expanded, then parsed; a parse failure is `expected …, found "…"`.
fn typed<T>(
    cx: &mut Ctx,
    sec: &Sect<'_>,
    k: &str,
    names: &Names<'_>,
    expected: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let (v, at) = expanded(cx, sec, k, names)?;
    match parse(&v) {
        Some(t) => Some(t),
        None => {
            cx.at(
                at,
                sec.key(k),
                format!("expected {expected}, found {}", short_quoted(&v)),
            );
            None
        }
    }
}

fn typed_bool(cx: &mut Ctx, sec: &Sect<'_>, k: &str, names: &Names<'_>) -> Option<bool> {
    typed(cx, sec, k, names, BOOL_EXPECTED, parse_bool)
}

fn typed_int(
    cx: &mut Ctx,
    sec: &Sect<'_>,
    k: &str,
    names: &Names<'_>,
    lo: i64,
    hi: i64,
    what: &str,
) -> Option<i64> {
    typed(cx, sec, k, names, what, |s| {
        parse_int(s).filter(|n| (lo..=hi).contains(n))
    })
}

fn typed_u32(
    cx: &mut Ctx,
    sec: &Sect<'_>,
    k: &str,
    names: &Names<'_>,
    lo: u32,
    what: &str,
) -> Option<u32> {
    typed_int(cx, sec, k, names, lo.into(), u32::MAX.into(), what)
        .and_then(|n| u32::try_from(n).ok())
}

fn typed_u64(
    cx: &mut Ctx,
    sec: &Sect<'_>,
    k: &str,
    names: &Names<'_>,
    lo: u64,
    what: &str,
) -> Option<u64> {
    typed(cx, sec, k, names, what, |s| {
        parse_int(s)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n >= lo)
    })
}

fn typed_i32(cx: &mut Ctx, sec: &Sect<'_>, k: &str, names: &Names<'_>) -> Option<i32> {
    typed_int(
        cx,
        sec,
        k,
        names,
        i32::MIN.into(),
        i32::MAX.into(),
        "an integer",
    )
    .and_then(|n| i32::try_from(n).ok())
}

fn typed_bytes(cx: &mut Ctx, sec: &Sect<'_>, k: &str, names: &Names<'_>) -> Option<u64> {
    typed(cx, sec, k, names, BYTES_EXPECTED, parse_bytes)
}

/// The names every option of a `[supervisord]`-like section may use.
fn global_names<'a>(sh_here: &str, env: &'a Env) -> Names<'a> {
    let mut values = BTreeMap::new();
    values.insert("here", Value::Str(sh_here.to_string()));
    values.insert("host_node_name", Value::Str(env.host_node_name.clone()));
    Names {
        values,
        env: vec![&env.vars],
        unavailable: &[],
    }
}

/// Names not available in per-program options of a program section.
const NOT_HERE: &[(&str, &str)] = &[
    (
        "process_num",
        "only process_name, command, directory, environment and the log files are per process",
    ),
    (
        "numprocs",
        "only process_name, command, directory, environment and the log files may use it",
    ),
];

// ------------------------------------------------------------------------------------------
// The front end

/// What `[supervisord]` configures.
struct Sup {
    vigil: VigilSection,
    logs_ok: bool,
    /// `environment`, expanded: added to every program's and to `%(ENV_X)s`.
    env: BTreeMap<String, String>,
    /// `childlogdir`: absolute, escaped, and where it is written.
    childlogdir: Option<(String, Range<usize>)>,
    identifier: String,
    /// `directory` (unless `nodaemon`): every program's default working directory.
    directory: Option<Str>,
    logfile: Option<LogConfig>,
    pidfile: Option<PathBuf>,
    extra_logs: Vec<LogUse>,
}

fn load_inner(path: &Path, text: &str, env: &Env) -> Result<(Config, Hints), ConfigErrors> {
    let mut cx = Ctx::new();
    let (source, here) = here_of(path);
    cx.add_file(path.to_path_buf(), text.to_string(), false);
    let mut doc = IniDoc {
        sections: Vec::new(),
        dirs: vec![here.clone()],
    };
    // Syntax errors stop the load (as TOML syntax errors do); problems with the included
    // files do not.
    let syntax = read_ini(&mut cx, &mut doc, 0, false);
    if syntax > 0 {
        return Err(cx.finish());
    }
    if read_includes(&mut cx, &mut doc, env) > 0 {
        return Err(cx.finish());
    }
    let mut hints = Hints::default();
    let here_str = here.to_string_lossy().into_owned();

    let sup = parse_supervisord(&mut cx, &doc, &here, env, &mut hints);
    let mut vars = env.vars.clone();
    vars.extend(sup.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let aug = Env {
        vars,
        host_node_name: env.host_node_name.clone(),
    };
    let sh = Shared {
        env: &aug,
        here: here.clone(),
        here_str,
        logs_dir: sup.vigil.data_dir.join("logs"),
    };

    // Sections by kind.
    let mut program_secs: Vec<(&IniSection, String)> = Vec::new();
    let mut listener_secs: Vec<(&IniSection, String)> = Vec::new();
    let mut group_secs: Vec<(&IniSection, String)> = Vec::new();
    let mut unix = None;
    let mut inet = None;
    for s in &doc.sections {
        let name = s.name.as_str();
        let (kind, rest) = match name.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (name, None),
        };
        match (kind, rest) {
            ("supervisord", None) => {}
            ("include", None) => {
                for e in &s.entries {
                    if e.key != "files" {
                        unknown_option(&mut cx, e, "[include]", &["files"]);
                    }
                }
            }
            ("program", Some(r)) => program_secs.push((s, r.trim().to_string())),
            ("eventlistener", Some(r)) => listener_secs.push((s, r.trim().to_string())),
            ("group", Some(r)) => group_secs.push((s, r.trim().to_string())),
            ("unix_http_server", None) => unix = Some(s),
            ("inet_http_server", None) => inet = Some(s),
            ("unix_http_server" | "inet_http_server", Some(_)) => cx.at(
                s.header_at,
                "",
                format!(
                    "section [{name}] is not supported: vigil serves one unnamed [{kind}]"
                ),
            ),
            ("rpcinterface", Some("supervisor")) => check_rpcinterface(&mut cx, s, &mut hints),
            ("rpcinterface", Some(_)) => cx.at(
                s.header_at,
                "",
                format!(
                    "section [{name}] is not supported: vigil has no XML-RPC plugins (only [rpcinterface:supervisor])"
                ),
            ),
            ("supervisorctl", None) => hints
                .notes
                .push("[supervisorctl]: supervisorctl's own settings, not vigil's".to_string()),
            ("ctlplugin", Some(_)) => hints
                .notes
                .push(format!("[{name}]: a supervisorctl plugin, not vigil's")),
            ("fcgi-program", Some(_)) => cx.at(
                s.header_at,
                "",
                format!("section [{name}] is not supported: vigil does not manage FastCGI sockets"),
            ),
            ("DEFAULT", None) => cx.at(
                s.header_at,
                "",
                "section [DEFAULT] is not supported: write the options in each section",
            ),
            _ => {
                // supervisord ignores sections it does not know, as it does options.
                let message = match rest.and_then(|r| {
                    did_you_mean(kind, SECTION_PREFIXES).map(|p| format!("[{p}:{r}]"))
                }) {
                    Some(s) => format!("unknown section, ignored (did you mean {s}?)"),
                    None => match did_you_mean(name, SECTION_NAMES) {
                        Some(s) => format!("unknown section, ignored (did you mean [{s}]?)"),
                        None => "unknown section, ignored (known sections: [supervisord], [program:NAME], [eventlistener:NAME], [group:NAME], [include], [unix_http_server], [inet_http_server], [rpcinterface:supervisor], [supervisorctl])".to_string(),
                    },
                };
                cx.warn(s.header_at, format!("[{name}]"), message);
            }
        }
    }

    // Programs named twice (`[program:a]` and `[program: a]`).
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (s, n) in program_secs.iter().chain(listener_secs.iter()) {
        if let Some(other) = seen.insert(n.as_str(), s.name.as_str()) {
            cx.at(
                s.header_at,
                format!("[{}]", s.name),
                format!("\"{n}\" is also defined by [{other}]"),
            );
        }
    }

    // Groups.
    let program_names: Vec<&str> = program_secs.iter().map(|(_, n)| n.as_str()).collect();
    let mut member_of: HashMap<String, String> = HashMap::new();
    let mut groups = Vec::new();
    let mut group_spans = Vec::new();
    let gnames = global_names(&sh.here_str, &aug);
    for (s, gname) in &group_secs {
        let sec = Sect::new(s);
        if let Some(p) = name_problem(gname) {
            cx.at(
                s.header_at,
                sec.kp.prefix.clone(),
                format!("invalid group name: {p}"),
            );
        }
        for e in &s.entries {
            if !GROUP_OPTIONS.contains(&e.key.as_str()) {
                unknown_option(&mut cx, e, &sec.kp.prefix, GROUP_OPTIONS);
            }
        }
        let priority = typed_i32(&mut cx, &sec, "priority", &gnames).unwrap_or(999);
        let mut members = Vec::new();
        match expanded(&mut cx, &sec, "programs", &gnames) {
            None if sec.get("programs").is_none() => {
                cx.at(
                    s.header_at,
                    sec.key("programs"),
                    "required option is missing",
                );
            }
            None => {}
            Some((list, at)) => {
                let items = list_of_strings(&list);
                if items.is_empty() {
                    cx.at(
                        at,
                        sec.key("programs"),
                        "expected at least one program name",
                    );
                }
                for p in items {
                    match add_member(&mut member_of, gname, p, &program_names) {
                        Ok(()) => members.push(p.to_string()),
                        Err(m) => {
                            let m = m.replace("[program.NAME]", "[program:NAME]");
                            let m = if listener_secs.iter().any(|(_, n)| n == p) {
                                format!(
                                    "{m}; \"{p}\" is an event listener, which cannot be in a group"
                                )
                            } else {
                                m
                            };
                            cx.at(at, sec.key("programs"), m);
                        }
                    }
                }
            }
        }
        group_spans.push((gname.clone(), s.header_at, sec.kp.prefix.clone()));
        groups.push(super::GroupConfig {
            name: gname.clone(),
            programs: members,
            priority,
        });
    }
    check_group_names(&mut cx, &group_spans, &program_names, &member_of);

    let mut programs = Vec::new();
    for (s, name) in &program_secs {
        let group = member_of.get(name).cloned().unwrap_or_else(|| name.clone());
        let (spec, hint) = ini_program(&mut cx, &sh, &doc, s, name, &group, &sup, None);
        hints.logs.insert(name.clone(), hint);
        programs.push((spec, s.header_at, group));
    }
    let mut listeners = Vec::new();
    for (s, name) in &listener_secs {
        let mut extra = ListenerExtra::default();
        let (spec, hint) = ini_program(&mut cx, &sh, &doc, s, name, name, &sup, Some(&mut extra));
        hints.listener_logs.insert(name.clone(), hint);
        listeners.push((
            ListenerSpec {
                program: spec,
                events: extra.events,
                buffer_size: extra.buffer_size,
                priority: extra.priority,
            },
            s.header_at,
        ));
    }

    let rpc = RpcConfig {
        identifier: sup.identifier.clone(),
        inet: inet.and_then(|s| parse_inet_server(&mut cx, s, &gnames)),
        unix: unix.and_then(|s| parse_unix_server(&mut cx, &doc, s, &gnames, &aug)),
        logfile: sup.logfile.clone(),
        pidfile: sup.pidfile.clone(),
    };

    let parts = Parts {
        source,
        vigil: sup.vigil,
        logs_ok: sup.logs_ok,
        programs,
        listeners,
        groups,
        rpc: Some(rpc),
        auth: None,
        extra_logs: sup.extra_logs,
        venues: Vec::new(),
    };
    assemble(cx, &sh, parts).map(|c| (c, hints))
}

/// `[rpcinterface:supervisor]`: accepted with supervisord's own factory.
fn check_rpcinterface(cx: &mut Ctx, s: &IniSection, hints: &mut Hints) {
    let sec = Sect::new(s);
    match s.get(RPCINTERFACE_FACTORY) {
        None => cx.at(
            s.header_at,
            sec.key(RPCINTERFACE_FACTORY),
            "required option is missing",
        ),
        Some(e) if e.value.trim() == MAIN_RPCINTERFACE => {}
        Some(e) => unsupported_value(cx, e, &format!("vigil implements {MAIN_RPCINTERFACE} only")),
    }
    for e in &s.entries {
        if e.key != RPCINTERFACE_FACTORY {
            unsupported(cx, e, "make_main_rpcinterface takes no options");
        }
    }
    hints.notes.push(format!(
        "[rpcinterface:supervisor]: vigil always serves the supervisor.* XML-RPC namespace ({MAIN_RPCINTERFACE})"
    ));
}

/// `[supervisord]`.
fn parse_supervisord(cx: &mut Ctx, doc: &IniDoc, here: &Path, env: &Env, hints: &mut Hints) -> Sup {
    let here_str = here.to_string_lossy().into_owned();
    let names = global_names(&here_str, env);
    let empty = IniSection {
        name: "supervisord".to_string(),
        header_at: 0,
        entries: Vec::new(),
    };
    let s = match doc.section("supervisord") {
        Some(s) => s,
        None => {
            cx.at(
                0,
                "",
                "a [supervisord] section is required (as in supervisord; it may be empty)",
            );
            &empty
        }
    };
    let sec = Sect::new(s);
    for e in &s.entries {
        if !SUPERVISORD_OPTIONS.contains(&e.key.as_str()) {
            unknown_option(cx, e, &sec.kp.prefix, SUPERVISORD_OPTIONS);
        }
    }
    let path_of = |cx: &mut Ctx, k: &str| -> Option<(PathBuf, Range<usize>)> {
        let e = sec.get(k)?;
        let (v, _) = expanded(cx, &sec, k, &names)?;
        let v = expand_user(v.trim(), env);
        if v.is_empty() {
            cx.at(e.span.start, sec.key(k), "expected a path, found \"\"");
            return None;
        }
        Some((resolve_clean(doc.dir_of(e), &v), e.span.clone()))
    };

    // vigil's own settings.
    let log_level = match expanded(cx, &sec, "loglevel", &names) {
        None => "info",
        Some((v, at)) => match LOG_LEVELS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(v.trim()))
        {
            Some((_, l)) => l,
            None => {
                let known: Vec<&str> = LOG_LEVELS.iter().map(|(n, _)| *n).collect();
                cx.at(
                    at,
                    sec.key("loglevel"),
                    format!(
                        "expected one of {}, found {}",
                        known.join(", "),
                        short_quoted(&v)
                    ),
                );
                "info"
            }
        },
    }
    .to_string();
    let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], 7070));
    let listen = typed(
        cx,
        &sec,
        "vigil_listen",
        &names,
        "a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\"",
        |s| s.trim().parse().ok(),
    )
    .unwrap_or(default_listen);
    // supervisord's reload is a restart of everything; `vigil_reload = apply` is vigil's.
    let reload = typed(
        cx,
        &sec,
        "vigil_reload",
        &names,
        "apply or restart",
        super::ReloadMode::from_name,
    )
    .unwrap_or(super::ReloadMode::Restart);
    let mut data_dir_ok = true;
    let data_dir = match sec.get("vigil_data_dir") {
        None => here.join("vigil-data"),
        Some(e) => {
            let raw = expand_user(&e.value, env);
            match expand_data_dir(
                cx,
                &raw,
                &e.span,
                &sec.key("vigil_data_dir"),
                doc.dir_of(e),
                env,
            ) {
                Some(d) => d,
                None => {
                    data_dir_ok = false;
                    here.join("vigil-data")
                }
            }
        }
    };
    let anchor = sec
        .get("vigil_data_dir")
        .map_or(s.header_at, |e| e.span.start);
    let logs_ok = data_dir_ok && setup_data_dir(cx, &data_dir, anchor, &sec.key("vigil_data_dir"));

    // Accepted when they restate what vigil does.
    let nodaemon = typed_bool(cx, &sec, "nodaemon", &names);
    if nodaemon.is_some() {
        hints
            .notes
            .push("[supervisord] nodaemon: vigil always runs in the foreground".to_string());
    }
    if let Some(true) = typed_bool(cx, &sec, "silent", &names)
        && let Some(e) = sec.get("silent")
    {
        unsupported_value(
            cx,
            e,
            "vigil always writes its log to stderr (silent = false)",
        );
    }
    if let Some(true) = typed_bool(cx, &sec, "strip_ansi", &names)
        && let Some(e) = sec.get("strip_ansi")
    {
        unsupported_value(
            cx,
            e,
            "vigil writes child output to the logs as is (strip_ansi = false)",
        );
    }
    if typed_bool(cx, &sec, "nocleanup", &names).is_some() {
        hints.notes.push(
            "[supervisord] nocleanup: vigil never deletes old child logs (its AUTO log names are stable)"
                .to_string(),
        );
    }
    if let Some(mask) = typed(
        cx,
        &sec,
        "umask",
        &names,
        "an octal umask such as 022",
        parse_octal,
    ) && let Some(e) = sec.get("umask")
    {
        match umask_against(mask) {
            Some(cur) if cur == mask => hints.notes.push(format!(
                "[supervisord] umask={mask:03o}: vigil's umask already"
            )),
            cur => unsupported_value(
                cx,
                e,
                &format!(
                    "vigil does not change its umask ({}); start it with umask {mask:03o} instead",
                    cur.map_or_else(|| "unknown".to_string(), |c| format!("{c:03o}"))
                ),
            ),
        }
    }
    for (k, limit, hint) in [
        ("minfds", "Max open files", "ulimit -n / LimitNOFILE="),
        ("minprocs", "Max processes", "ulimit -u / LimitNPROC="),
    ] {
        let Some(min) = typed_u64(cx, &sec, k, &names, 0, "a non-negative integer") else {
            continue;
        };
        let Some(e) = sec.get(k) else { continue };
        match soft_limit(limit) {
            Some(Some(soft)) if soft < min => unsupported_value(
                cx,
                e,
                &format!(
                    "vigil does not raise its limits and the current soft limit is {soft} < {min}; raise it before starting vigil ({hint})"
                ),
            ),
            _ => hints.notes.push(format!(
                "[supervisord] {k}={min}: satisfied by the current limits"
            )),
        }
    }
    if let Some((u, _)) = expanded(cx, &sec, "user", &names)
        && let Some(e) = sec.get("user")
    {
        use nix::unistd::{Uid, User, getuid};
        let u = u.trim();
        let uid = match u.parse::<u32>() {
            // Without I/O no user is looked up and the check passes.
            _ if !load::io_allowed() => Some(getuid()),
            Ok(n) => User::from_uid(Uid::from_raw(n))
                .ok()
                .flatten()
                .map(|x| x.uid),
            Err(_) => User::from_name(u).ok().flatten().map(|x| x.uid),
        };
        match uid {
            None => cx.at(
                e.span.start,
                sec.key("user"),
                format!("no such user \"{u}\""),
            ),
            Some(uid) if uid == getuid() => hints
                .notes
                .push(format!("[supervisord] user={u}: vigil runs as {u} already")),
            Some(_) => unsupported_value(
                cx,
                e,
                "vigil does not switch users; start it as that user (programs may still set user=)",
            ),
        }
    }

    // supervisord settings vigil honours.
    let identifier = match expanded(cx, &sec, "identifier", &names) {
        Some((v, at)) if v.trim().is_empty() => {
            cx.at(at, sec.key("identifier"), "expected a non-empty string");
            "supervisor".to_string()
        }
        Some((v, _)) => v.trim().to_string(),
        None => "supervisor".to_string(),
    };
    let mut sup_env = BTreeMap::new();
    if let Some((v, at)) = expanded(cx, &sec, "environment", &names) {
        environment_into(cx, &sec.key("environment"), &v, at, &mut sup_env);
    }
    let childlogdir = path_of(cx, "childlogdir").and_then(|(d, span)| match ensure_dir(&d) {
        Ok(()) => Some((esc(&d.to_string_lossy()), span)),
        Err(m) => {
            cx.at(span.start, sec.key("childlogdir"), m);
            None
        }
    });
    let directory = path_of(cx, "directory").and_then(|(d, span)| {
        if let Err(m) = existing_dir(&d) {
            cx.at(span.start, sec.key("directory"), m);
            return None;
        }
        if nodaemon == Some(true) {
            // supervisord changes directory only when it daemonizes.
            hints.notes.push(
                "[supervisord] directory: unused with nodaemon=true (as in supervisord)"
                    .to_string(),
            );
            None
        } else {
            Some((esc(&d.to_string_lossy()), span))
        }
    });
    let maxbytes =
        typed_bytes(cx, &sec, "logfile_maxbytes", &names).unwrap_or(DEFAULT_LOG_MAXBYTES);
    let backups = typed_u32(
        cx,
        &sec,
        "logfile_backups",
        &names,
        0,
        "a non-negative integer",
    )
    .unwrap_or(DEFAULT_LOG_BACKUPS);
    let mut extra_logs = Vec::new();
    let logfile = match sec.get("logfile") {
        Some(e) if e.value.trim().eq_ignore_ascii_case("syslog") => {
            unsupported_value(cx, e, "vigil has no syslog output; give a file path");
            None
        }
        _ => path_of(cx, "logfile").map(|(p, span)| {
            extra_logs.push(LogUse {
                path: p.clone(),
                at: Some(span.start),
                key: sec.key("logfile"),
                opt: "logfile".to_string(),
                owner: sec.key("logfile"),
                maxbytes,
            });
            LogConfig {
                path: Some(p),
                maxbytes,
                backups,
            }
        }),
    };
    let pidfile = path_of(cx, "pidfile").map(|(p, span)| {
        check_parent_dir(cx, &p, span.start, &sec.key("pidfile"));
        p
    });

    Sup {
        vigil: VigilSection {
            listen,
            data_dir,
            log_level,
            reload,
        },
        logs_ok,
        env: sup_env,
        childlogdir,
        identifier,
        directory,
        logfile,
        pidfile,
        extra_logs,
    }
}

/// `[inet_http_server]`.
fn parse_inet_server(cx: &mut Ctx, s: &IniSection, names: &Names<'_>) -> Option<InetServerConfig> {
    let sec = Sect::new(s);
    for e in &s.entries {
        if !INET_HTTP_OPTIONS.contains(&e.key.as_str()) {
            unknown_option(cx, e, &sec.kp.prefix, INET_HTTP_OPTIONS);
        }
    }
    let auth = ini_credentials(cx, &sec, names);
    let addr = match expanded(cx, &sec, "port", names) {
        None => {
            if sec.get("port").is_none() {
                cx.at(s.header_at, sec.key("port"), "required option is missing");
            }
            None
        }
        Some((v, at)) => match parse_inet(&v) {
            Ok(a) => Some(a),
            Err(m) => {
                cx.at(at, sec.key("port"), m);
                None
            }
        },
    }?;
    Some(InetServerConfig { addr, auth })
}

/// `[unix_http_server]`.
fn parse_unix_server(
    cx: &mut Ctx,
    doc: &IniDoc,
    s: &IniSection,
    names: &Names<'_>,
    env: &Env,
) -> Option<UnixServerConfig> {
    let sec = Sect::new(s);
    for e in &s.entries {
        if !UNIX_HTTP_OPTIONS.contains(&e.key.as_str()) {
            unknown_option(cx, e, &sec.kp.prefix, UNIX_HTTP_OPTIONS);
        }
    }
    if let Some(e) = sec.get("chown") {
        unsupported(
            cx,
            e,
            "vigil creates the socket as the user it runs as; use chmod (and a group-readable directory) instead",
        );
    }
    let auth = ini_credentials(cx, &sec, names);
    let chmod = typed(
        cx,
        &sec,
        "chmod",
        names,
        "an octal mode such as 0700",
        parse_octal,
    )
    .unwrap_or(0o700);
    let path = match (sec.get("file"), expanded(cx, &sec, "file", names)) {
        (None, _) => {
            cx.at(s.header_at, sec.key("file"), "required option is missing");
            None
        }
        (Some(_), None) => None,
        (Some(e), Some((v, at))) => {
            let v = expand_user(v.trim(), env);
            if v.is_empty() {
                cx.at(at, sec.key("file"), "expected a path, found \"\"");
                None
            } else {
                let p = resolve_clean(doc.dir_of(e), &v);
                check_parent_dir(cx, &p, at, &sec.key("file"));
                Some(p)
            }
        }
    }?;
    Some(UnixServerConfig { path, chmod, auth })
}

fn ini_credentials(cx: &mut Ctx, sec: &Sect<'_>, names: &Names<'_>) -> Option<super::Credentials> {
    // Expanded like every option (supervisord does): `%%` for a literal `%`.
    let user = expanded(cx, sec, "username", names).map(|(v, at)| (v, at..at));
    let pass = expanded(cx, sec, "password", names).map(|(v, at)| (v, at..at));
    if (user.is_none() && sec.get("username").is_some())
        || (pass.is_none() && sec.get("password").is_some())
    {
        // An expansion error, reported.
        return None;
    }
    credentials(cx, user, pass, sec.s.header_at, &sec.kp)
}

// ------------------------------------------------------------------------------------------
// vigil.toml output

/// Lowercase hex SHA-1 of `data` (FIPS 180-4), as supervisord compares `{SHA}` passwords.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
