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
//! are accepted. Unknown options and sections are errors with a did-you-mean. Errors are
//! located by line only (`FILE:LINE: [program:bot] startsecs: …`). The reference is the
//! "supervisord configs" section of docs/config.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use vigil_core::program::{AutoRestart, BackoffPolicy};

use super::load::expand::{self, Names, Value};
use super::load::suggest::did_you_mean;
use super::load::{
    self, Ctx, DEFAULT_BUFFER_SIZE, DEFAULT_LOG_BACKUPS, DEFAULT_LOG_MAXBYTES,
    DEFAULT_READY_INTERVAL_MS, DEFAULT_READY_RETRIES, DEFAULT_READY_TIMEOUT_MS,
    DEFAULT_RESULT_HANDLER, Env, EnvSpec, KeyPath, ListenerSpec, LogSpec, LogUse, MAX_BUFFER_SIZE,
    MAX_NUMPROCS, NOT_FOR_LISTENERS, Parts, ProgramSpec, READY_PROBES, REDIRECT_STDERR_LISTENER,
    SECS_EXPECTED, Shared, Str, TERM, add_member, assemble, check_group_names, check_parent_dir,
    credentials, ensure_dir, env_var_problem, existing_dir, expand_data_dir, here_of,
    listener_events, log_keyword, name_problem, parse_bytes, parse_inet, parse_octal,
    resolve_clean, secs_to_ms, setup_data_dir, short_quoted, signal_expected,
};
use super::{
    Config, ConfigErrors, InetServerConfig, LogConfig, ProgramConfig, ReadinessProbe, RpcConfig,
    Signal, UnixServerConfig, VigilSection,
};

/// `[program:x]` options: supervisord 4.3's, then vigil's extensions.
const PROGRAM_OPTIONS: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
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
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "environment",
    "directory",
    "umask",
    "serverurl",
    // vigil extensions
    "backoff",
    "backoff_max",
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

const BOOL_EXPECTED: &str = "a boolean (true/false, yes/no, on/off or 1/0)";

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
    /// Problems with the translation (empty when the TOML loads to the same [`Config`]).
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
    // What the original load ignored (unknown options and sections) is not in the TOML.
    let mut warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    match load::load_with(&toml_path, &toml, env) {
        Ok(mut back) => {
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
    Ok(Converted { toml, warnings })
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

/// One `key = value` as read.
#[derive(Debug, Clone)]
struct IniEntry {
    /// Lower case.
    key: String,
    key_at: usize,
    /// Continuation lines joined with `\n`, `%(here)s` replaced.
    value: String,
    /// The value on its first line.
    span: Range<usize>,
    /// Index of the file (in the [`Ctx`] and [`IniDoc::dirs`]).
    file: usize,
}

#[derive(Debug)]
struct IniSection {
    /// As written between the brackets.
    name: String,
    header_at: usize,
    entries: Vec<IniEntry>,
}

impl IniSection {
    fn get(&self, key: &str) -> Option<&IniEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Every section of the main file and its includes, merged, in order of first appearance.
struct IniDoc {
    sections: Vec<IniSection>,
    /// The directory of each file read (`%(here)s`), by file index.
    dirs: Vec<PathBuf>,
}

impl IniDoc {
    fn section(&self, name: &str) -> Option<&IniSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    fn dir_of(&self, e: &IniEntry) -> &Path {
        self.dirs
            .get(e.file)
            .map_or(Path::new("/"), PathBuf::as_path)
    }
}

/// Where an inline comment starts, as Python's configparser finds it: each round looks at the
/// next `;` and the next `#`; the first round where one of them starts the line or follows
/// whitespace decides. A line whose text starts with `;` or `#` is all comment.
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return Some(0);
    }
    let mut next: [Option<usize>; 2] = [Some(0), Some(0)];
    loop {
        let mut found_any = false;
        let mut best: Option<usize> = None;
        for (i, prefix) in [';', '#'].into_iter().enumerate() {
            let Some(from) = next[i] else { continue };
            match line.get(from..).and_then(|rest| rest.find(prefix)) {
                None => next[i] = None,
                Some(rel) => {
                    let pos = from + rel;
                    found_any = true;
                    next[i] = Some(pos + 1);
                    let after_space = pos == 0
                        || line
                            .get(..pos)
                            .and_then(|b| b.chars().next_back())
                            .is_some_and(char::is_whitespace);
                    if after_space {
                        best = Some(best.map_or(pos, |b: usize| b.min(pos)));
                    }
                }
            }
        }
        if best.is_some() || !found_any {
            return best;
        }
    }
}

/// Byte offset of `sub` (a slice of `whole`) within `whole`.
fn offset_in(whole: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// `[name]` → `name` (the text up to the last `]`), with any text after it.
fn section_header(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    if end == 0 {
        return None;
    }
    Some((rest.get(..end)?, rest.get(end + 1..)?))
}

/// `%` doubled: a literal for the expansions.
fn esc(s: &str) -> String {
    s.replace('%', "%%")
}

/// Replace each exact `%(NAME)s` for which `f` has a value (already escaped), leaving `%%`
/// and every other `%` form alone.
fn subst(t: &str, f: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('%') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let tail = rest.get(i..).unwrap_or("");
        if let Some(after) = tail.strip_prefix("%%") {
            out.push_str("%%");
            rest = after;
            continue;
        }
        if let Some(inner) = tail.strip_prefix("%(")
            && let Some(close) = inner.find(')')
            && inner.get(close + 1..).is_some_and(|a| a.starts_with('s'))
            && let Some(rep) = inner.get(..close).and_then(f)
        {
            out.push_str(&rep);
            rest = inner.get(close + 2..).unwrap_or("");
            continue;
        }
        out.push('%');
        rest = tail.get(1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Read one file into `doc`; syntax errors go to `cx`. Returns how many there were.
fn read_ini(cx: &mut Ctx, doc: &mut IniDoc, file: usize, included: bool) -> usize {
    let before = cx.errors.len();
    let Some((text, base)) = cx.files.get(file).map(|f| (f.text.clone(), f.base)) else {
        return 0;
    };
    let here = esc(&doc
        .dirs
        .get(file)
        .map_or_else(String::new, |d| d.to_string_lossy().into_owned()));
    let mut cur: Option<usize> = None;
    let mut opt: Option<(usize, usize)> = None;
    let mut indent_level = 0usize;
    let mut line_start = 0usize;
    for raw_line in text.split('\n') {
        let ls = line_start;
        line_start += raw_line.len() + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let cs = comment_start(line);
        let content = line.get(..cs.unwrap_or(line.len())).unwrap_or("");
        let value = content.trim();
        if value.is_empty() {
            // An empty line inside a value is kept (and trailing ones dropped at the end).
            if cs.is_none()
                && let Some((si, ei)) = opt
                && let Some(e) = doc.sections.get_mut(si).and_then(|s| s.entries.get_mut(ei))
            {
                e.value.push('\n');
            }
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        let at = base + ls + offset_in(line, value);
        if cur.is_some()
            && let Some((si, ei)) = opt
            && indent > indent_level
        {
            if let Some(e) = doc.sections.get_mut(si).and_then(|s| s.entries.get_mut(ei)) {
                e.value.push('\n');
                e.value.push_str(value);
            }
            continue;
        }
        indent_level = indent;
        if let Some((name, trailing)) = section_header(value) {
            if !trailing.trim().is_empty() {
                cx.at(
                    at,
                    "",
                    format!(
                        "unexpected text {:?} after the section header",
                        trailing.trim()
                    ),
                );
            }
            if included && name == "include" {
                cx.at(
                    at,
                    "",
                    "section [include] is not supported in an included file (supervisord ignores it; put every include in the main file)",
                );
            }
            let idx = match doc.sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    doc.sections.push(IniSection {
                        name: name.to_string(),
                        header_at: at,
                        entries: Vec::new(),
                    });
                    doc.sections.len() - 1
                }
            };
            cur = Some(idx);
            opt = None;
            continue;
        }
        let Some(si) = cur else {
            cx.at(
                at,
                "",
                "a [section] header must come before any option (this line is outside every section)",
            );
            continue;
        };
        let Some(d) = value.find(['=', ':']) else {
            cx.at(
                at,
                "",
                format!(
                    "cannot parse {}: expected `option = value`, a [section] header, a comment, or a continuation line indented more than its option",
                    short_quoted(value)
                ),
            );
            opt = None;
            continue;
        };
        let key = value.get(..d).unwrap_or("").trim_end();
        if key.is_empty() {
            cx.at(at, "", "an option name is missing before the '=' or ':'");
            opt = None;
            continue;
        }
        let after = value.get(d + 1..).unwrap_or("");
        let v = after.trim();
        let vstart = at + d + 1 + (after.len() - after.trim_start().len());
        let entry = IniEntry {
            key: key.to_lowercase(),
            key_at: at,
            value: v.to_string(),
            span: vstart..vstart + v.len(),
            file,
        };
        let Some(sec) = doc.sections.get_mut(si) else {
            continue;
        };
        let ei = match sec.entries.iter().position(|e| e.key == entry.key) {
            Some(i) => {
                sec.entries[i] = entry;
                i
            }
            None => {
                sec.entries.push(entry);
                sec.entries.len() - 1
            }
        };
        opt = Some((si, ei));
    }
    // This file's values are complete: drop trailing empty lines, then put in %(here)s as
    // supervisord does (textually, per file).
    let here_of_file = |name: &str| (name == "here").then(|| here.clone());
    for s in &mut doc.sections {
        for e in &mut s.entries {
            if e.file == file {
                e.value = subst(e.value.trim_end(), &here_of_file);
            }
        }
    }
    cx.errors.len() - before
}

/// Whether a glob pattern component has wildcards.
fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Python's `fnmatch`: `*`, `?`, `[seq]`, `[!seq]` (with ranges); anything else literal.
fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p[0] == '['; returns (matched, length of the class) or None if unterminated.
        let mut i = 1;
        let negate = matches!(p.get(1), Some('!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while let Some(&ch) = p.get(i) {
            if ch == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                let hi = p[i + 2];
                if ch <= c && c <= hi {
                    matched = true;
                }
                i += 3;
            } else {
                if ch == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (class(p, n.first().copied().unwrap_or('\0')), n.first()) {
                (Some((m, len)), Some(_)) => m && go(&p[len..], &n[1..]),
                (Some(_), None) => false,
                (None, Some(c)) => *c == '[' && go(&p[1..], &n[1..]),
                (None, None) => false,
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// Python's `glob.glob` for an absolute pattern: wildcards in any component; names starting
/// with `.` only match a pattern starting with `.`. Sorted.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for comp in pattern.components() {
        match comp {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if !has_magic(&name) {
                    for p in &mut current {
                        p.push(&*name);
                    }
                    continue;
                }
                let mut next = Vec::new();
                for dir in &current {
                    let Ok(rd) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for e in rd.flatten() {
                        let fname = e.file_name().to_string_lossy().into_owned();
                        if fname.starts_with('.') && !name.starts_with('.') {
                            continue;
                        }
                        if fnmatch(&name, &fname) {
                            next.push(dir.join(&fname));
                        }
                    }
                }
                current = next;
            }
            other => {
                for p in &mut current {
                    p.push(other.as_os_str());
                }
            }
        }
    }
    current.retain(|p| p.exists());
    current.sort_by_key(|p| p.to_string_lossy().into_owned());
    current
}

/// `[include] files`: read each matching file (sorted, relative to the main file's directory).
/// Returns the number of syntax errors in them.
fn read_includes(cx: &mut Ctx, doc: &mut IniDoc, env: &Env) -> usize {
    let Some(sec) = doc.section("include") else {
        return 0;
    };
    let header_at = sec.header_at;
    let entries = sec.entries.clone();
    let Some(files) = entries.iter().find(|e| e.key == "files") else {
        cx.at(header_at, "[include] files", "required option is missing");
        return 0;
    };
    let main_dir = doc
        .dirs
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"));
    let names = Names {
        values: {
            let mut m = BTreeMap::new();
            m.insert("here", Value::Str(main_dir.to_string_lossy().into_owned()));
            m.insert("host_node_name", Value::Str(env.host_node_name.clone()));
            m
        },
        env: vec![&env.vars],
        unavailable: &[],
    };
    let Some(list) = cx.expand(&files.value, &files.span, "[include] files", &names) else {
        return 0;
    };
    let mut syntax = 0;
    let mut read: HashSet<PathBuf> = HashSet::new();
    if let Some(main) = cx.files.first() {
        read.insert(std::fs::canonicalize(&main.path).unwrap_or_else(|_| main.path.clone()));
    }
    for pat in list.split_whitespace() {
        let full = resolve_clean(&main_dir, pat);
        let matches = if has_magic(pat) {
            glob(&full)
        } else if full.exists() {
            vec![full]
        } else {
            cx.at(
                files.span.start,
                "[include] files",
                format!("{} does not exist", full.display()),
            );
            continue;
        };
        for m in matches {
            let canon = std::fs::canonicalize(&m).unwrap_or_else(|_| m.clone());
            if !read.insert(canon) || m.is_dir() {
                continue;
            }
            match super::load::read_text_file(&m) {
                Ok(text) => {
                    let dir = m
                        .parent()
                        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                    cx.add_file(m.clone(), text, false);
                    doc.dirs.push(dir);
                    let idx = cx.files.len() - 1;
                    syntax += read_ini(cx, doc, idx, true);
                }
                Err(e) => cx.at(
                    files.span.start,
                    "[include] files",
                    format!("cannot read {}: {e}", m.display()),
                ),
            }
        }
    }
    syntax
}

// ------------------------------------------------------------------------------------------
// Helpers for typed values

/// supervisord ignores options it does not know (plugins such as supervisord-dependent-startup
/// add their own): a located warning, not an error (`--strict` makes it one).
fn unknown_option(cx: &mut Ctx, e: &IniEntry, section: &str, known: &[&str]) {
    let message = match did_you_mean(&e.key, known) {
        Some(s) => format!("unknown option, ignored (did you mean \"{s}\"?)"),
        None if known.len() <= 6 => format!(
            "unknown option, ignored (known options: {})",
            known.join(", ")
        ),
        None => "unknown option, ignored".to_string(),
    };
    cx.warn(e.key_at, format!("{section} {}", e.key), message);
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

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Python's `int()`: surrounding whitespace, a sign, `_` between digits.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.trim_start_matches(['+', '-']);
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    t.replace('_', "").parse().ok()
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

/// vigil's current umask, from `/proc/self/status` (Linux ≥ 4.7).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// The soft limit named `what` in `/proc/self/limits` (`None`: unknown; `Some(None)`:
/// unlimited).
fn soft_limit(what: &str) -> Option<Option<u64>> {
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
    typed(
        cx,
        sec,
        k,
        names,
        "a size in bytes (an integer, optionally with KB, MB or GB)",
        parse_bytes,
    )
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
        match current_umask() {
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
        match parse_kv_pairs(&v) {
            Ok(pairs) => {
                for (k, val) in pairs {
                    match env_var_problem(&k) {
                        Some(p) => cx.at(at, sec.key("environment"), format!("{k}: {p}")),
                        None => {
                            sup_env.insert(k, val);
                        }
                    }
                }
            }
            Err(m) => cx.at(at, sec.key("environment"), m),
        }
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

/// What an `[eventlistener:x]` adds to the program options.
struct ListenerExtra {
    events: Vec<&'static str>,
    buffer_size: usize,
    priority: i32,
}

impl Default for ListenerExtra {
    fn default() -> Self {
        ListenerExtra {
            events: Vec::new(),
            buffer_size: DEFAULT_BUFFER_SIZE,
            priority: -1,
        }
    }
}

/// `[program:x]` (or, with `listener`, `[eventlistener:x]`) → its spec and log hints.
#[allow(clippy::too_many_arguments)]
fn ini_program(
    cx: &mut Ctx,
    sh: &Shared<'_>,
    doc: &IniDoc,
    s: &IniSection,
    name: &str,
    group: &str,
    sup: &Sup,
    listener: Option<&mut ListenerExtra>,
) -> (ProgramSpec, [LogHint; 2]) {
    let sec = Sect::new(s);
    let is_listener = listener.is_some();
    let mut spec = ProgramSpec::new(name, sec.kp.clone(), s.header_at);
    for e in &s.entries {
        let k = e.key.as_str();
        if is_listener && (k == "buffer_size" || k == "result_handler") {
            continue;
        }
        if is_listener && NOT_FOR_LISTENERS.contains(&k) && k != "events" {
            cx.at(
                e.key_at,
                sec.key(k),
                "not available for event listeners (a listener's stdout is the protocol channel)",
            );
        } else if !PROGRAM_OPTIONS.contains(&k) {
            let mut known: Vec<&str> = PROGRAM_OPTIONS.to_vec();
            if is_listener {
                known.extend(["buffer_size", "result_handler"]);
            }
            unknown_option(cx, e, &sec.kp.prefix, &known);
        }
    }
    // Options other than the per-process templates: expanded with these names first.
    let names = Names {
        values: {
            let mut m = BTreeMap::new();
            m.insert("program_name", Value::Str(name.to_string()));
            m.insert("group_name", Value::Str(group.to_string()));
            m.insert("here", Value::Str(sh.here_str.clone()));
            m.insert("host_node_name", Value::Str(sh.env.host_node_name.clone()));
            m
        },
        env: vec![&sh.env.vars],
        unavailable: NOT_HERE,
    };
    // `%(ENV_X)s` of `[supervisord] environment` put in textually, so that the templates mean
    // the same outside this file (vigil convert).
    let sup_env = |n: &str| {
        n.strip_prefix("ENV_")
            .and_then(|v| sup.env.get(v))
            .map(|v| esc(v))
    };
    let template = |k: &str| -> Option<Str> {
        let e = sec.get(k)?;
        Some((subst(&e.value, &sup_env), e.span.clone()))
    };

    spec.command = sec
        .get("command")
        .map(|e| (e.value.clone(), e.span.clone()));
    if spec.command.is_none() {
        cx.at(
            s.header_at,
            sec.key("command"),
            "required option is missing",
        );
    }
    spec.process_name = template("process_name").map(|(t, span)| (t.trim().to_string(), span));
    spec.numprocs = typed_int(
        cx,
        &sec,
        "numprocs",
        &names,
        1,
        MAX_NUMPROCS.into(),
        "a positive integer (at most 10000)",
    )
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(1);
    spec.numprocs_start = typed_u32(
        cx,
        &sec,
        "numprocs_start",
        &names,
        0,
        "a non-negative integer",
    )
    .unwrap_or(0);
    spec.numprocs_start_at = sec
        .get("numprocs_start")
        .map_or(s.header_at, |e| e.span.start);
    let priority = typed_i32(cx, &sec, "priority", &names);
    spec.priority = priority.unwrap_or(999);
    spec.autostart = typed_bool(cx, &sec, "autostart", &names).unwrap_or(true);
    spec.autorestart = typed(
        cx,
        &sec,
        "autorestart",
        &names,
        "true, false or unexpected",
        |v| match v.trim().to_ascii_lowercase().as_str() {
            "unexpected" => Some(AutoRestart::Unexpected),
            other => parse_bool(other).map(|b| {
                if b {
                    AutoRestart::Always
                } else {
                    AutoRestart::Never
                }
            }),
        },
    )
    .unwrap_or(AutoRestart::Unexpected);
    spec.startsecs =
        typed_u64(cx, &sec, "startsecs", &names, 0, "a non-negative integer").unwrap_or(1);
    spec.startretries = typed_u32(
        cx,
        &sec,
        "startretries",
        &names,
        0,
        "a non-negative integer",
    )
    .unwrap_or(3);
    spec.exitcodes = typed(
        cx,
        &sec,
        "exitcodes",
        &names,
        "a comma-separated list of exit codes (0-255) such as 0,2",
        |v| {
            if v.trim().is_empty() {
                return Some(Vec::new());
            }
            v.split(',')
                .map(|c| {
                    parse_int(c)
                        .filter(|n| (0..=255).contains(n))
                        .and_then(|n| i32::try_from(n).ok())
                })
                .collect()
        },
    )
    .unwrap_or_else(|| vec![0]);
    spec.stopsignal = typed(
        cx,
        &sec,
        "stopsignal",
        &names,
        &signal_expected(),
        Signal::parse,
    )
    .unwrap_or(TERM);
    spec.stopwaitsecs = typed_u64(
        cx,
        &sec,
        "stopwaitsecs",
        &names,
        0,
        "a non-negative integer",
    )
    .unwrap_or(10);
    spec.stopasgroup = typed_bool(cx, &sec, "stopasgroup", &names).unwrap_or(false);
    spec.killasgroup = typed_bool(cx, &sec, "killasgroup", &names);
    spec.killasgroup_at = sec.get("killasgroup").map_or(s.header_at, |e| e.span.start);
    spec.redirect_stderr = typed_bool(cx, &sec, "redirect_stderr", &names).unwrap_or(false);
    spec.stdout_events_enabled =
        typed_bool(cx, &sec, "stdout_events_enabled", &names).unwrap_or(false);
    spec.stderr_events_enabled =
        typed_bool(cx, &sec, "stderr_events_enabled", &names).unwrap_or(false);
    spec.stdout_capture_maxbytes =
        typed_bytes(cx, &sec, "stdout_capture_maxbytes", &names).unwrap_or(0);
    spec.stderr_capture_maxbytes =
        typed_bytes(cx, &sec, "stderr_capture_maxbytes", &names).unwrap_or(0);
    spec.critical = typed_bool(cx, &sec, "critical", &names).unwrap_or(false);
    let exponential = typed(
        cx,
        &sec,
        "backoff",
        &names,
        "linear or exponential",
        |v| match v.trim().to_ascii_lowercase().as_str() {
            "linear" => Some(false),
            "exponential" => Some(true),
            _ => None,
        },
    )
    .unwrap_or(false);
    let backoff_max = typed_u64(
        cx,
        &sec,
        "backoff_max",
        &names,
        1,
        "a positive integer (seconds)",
    );
    spec.backoff = BackoffPolicy {
        exponential,
        max_ms: backoff_max.map(|m| m.saturating_mul(1000)),
        ..BackoffPolicy::default()
    };
    if !is_listener {
        spec.events_from_stdout = typed(cx, &sec, "events", &names, "stdout", |v| {
            v.trim().eq_ignore_ascii_case("stdout").then_some(true)
        })
        .unwrap_or(false);
    }

    // Accepted when they restate what vigil does.
    for k in ["stdout_syslog", "stderr_syslog"] {
        if let Some(true) = typed_bool(cx, &sec, k, &names)
            && let Some(e) = sec.get(k)
        {
            unsupported_value(cx, e, "vigil has no syslog output");
        }
    }
    if let Some((v, _)) = expanded(cx, &sec, "serverurl", &names)
        && !v.trim().eq_ignore_ascii_case("AUTO")
        && let Some(e) = sec.get("serverurl")
    {
        unsupported_value(
            cx,
            e,
            "vigil sets SUPERVISOR_SERVER_URL to its own server (serverurl = AUTO)",
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
        && current_umask() != Some(mask)
    {
        unsupported_value(
            cx,
            e,
            &format!(
                "vigil's children inherit vigil's umask ({}); start vigil with umask {mask:03o} instead",
                current_umask().map_or_else(|| "unknown".to_string(), |c| format!("{c:03o}"))
            ),
        );
    }

    // environment: expanded (per program), then split like supervisord; [supervisord]'s first.
    let mut env_map: BTreeMap<String, String> = sup.env.clone();
    if let Some((v, at)) = expanded(
        cx,
        &sec,
        "environment",
        &Names {
            values: {
                let mut m = names.values.clone();
                m.insert("numprocs", Value::Int(spec.numprocs.into()));
                m
            },
            env: vec![&sh.env.vars],
            unavailable: load::NOT_PER_PROCESS,
        },
    ) {
        match parse_kv_pairs(&v) {
            Ok(pairs) => {
                for (k, val) in pairs {
                    match env_var_problem(&k) {
                        Some(p) => cx.at(at, sec.key("environment"), format!("{k}: {p}")),
                        None => {
                            env_map.insert(k, val);
                        }
                    }
                }
            }
            Err(m) => cx.at(at, sec.key("environment"), m),
        }
    }
    let env_at = sec.get("environment").map_or(s.header_at, |e| e.span.start);
    spec.environment = env_map
        .iter()
        .map(|(k, v)| EnvSpec {
            var: k.clone(),
            key: sec.key("environment"),
            value: (esc(v), env_at..env_at),
        })
        .collect();

    // Paths: absolute (against the file that holds them), so they mean the same anywhere.
    let first = Names {
        values: sh.names(name, group, spec.numprocs, Some(spec.numprocs_start)),
        env: vec![&sh.env.vars, &env_map],
        unavailable: &[],
    };
    let absolute = |t: String, e: &IniEntry| -> String {
        let Ok(trial) = expand::expand(&t, &first) else {
            return t;
        };
        let trimmed = t.trim().to_string();
        if trial.trim_start().starts_with('~') && trimmed.starts_with('~') {
            let home = sh.env.vars.get("HOME").map(|h| esc(h)).unwrap_or_default();
            let rest = trimmed.get(1..).unwrap_or("");
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{home}{rest}");
            }
        }
        if Path::new(trial.trim()).is_absolute() {
            trimmed
        } else {
            let dir = esc(&doc.dir_of(e).to_string_lossy());
            format!("{}/{trimmed}", dir.trim_end_matches('/'))
        }
    };
    spec.directory = match (template("directory"), sec.get("directory")) {
        (Some((t, span)), Some(e)) => Some((absolute(t, e), span)),
        _ => sup.directory.clone(),
    };
    spec.user = expanded(cx, &sec, "user", &names).map(|(u, at)| (u, at..at));

    let pn_template = spec
        .process_name
        .as_ref()
        .map_or_else(|| "%(program_name)s".to_string(), |(t, _)| t.clone());
    let mut hints = [LogHint::Default, LogHint::Default];
    for (i, chan) in spec.logs.iter_mut().enumerate() {
        let k = chan.opt;
        let channel = if i == 0 { "stdout" } else { "stderr" };
        chan.maxbytes =
            typed_bytes(cx, &sec, &format!("{k}_maxbytes"), &names).unwrap_or(DEFAULT_LOG_MAXBYTES);
        chan.backups = typed_u32(
            cx,
            &sec,
            &format!("{k}_backups"),
            &names,
            0,
            "a non-negative integer",
        )
        .unwrap_or(DEFAULT_LOG_BACKUPS);
        let written = sec.get(k);
        chan.spec = match written {
            None => LogSpec::Auto,
            Some(e) => match log_keyword(&e.value) {
                Some(kw) => kw,
                None if e.value.trim().eq_ignore_ascii_case("syslog") => {
                    unsupported_value(
                        cx,
                        e,
                        "vigil has no syslog output; give a file path, AUTO or NONE",
                    );
                    LogSpec::Off
                }
                None if e.value.trim().is_empty() => {
                    cx.at(
                        e.span.start,
                        sec.key(k),
                        "expected a file path, AUTO or NONE, found \"\"",
                    );
                    LogSpec::Off
                }
                None => LogSpec::Path((absolute(e.value.clone(), e), e.span.clone())),
            },
        };
        // AUTO with a childlogdir: a stable file there, named like supervisord's.
        if let LogSpec::Auto = chan.spec
            && let Some((dir, span)) = &sup.childlogdir
        {
            let t = format!(
                "{}/{pn_template}-{channel}---{}.log",
                dir.trim_end_matches('/'),
                esc(&sup.identifier)
            );
            chan.spec = LogSpec::Path((t, span.clone()));
        }
        hints[i] = match &chan.spec {
            LogSpec::Auto => LogHint::Default,
            LogSpec::Off => LogHint::Off,
            LogSpec::Path((t, _)) => LogHint::Template(t.clone()),
        };
    }

    if let Some(extra) = listener {
        extra.priority = priority.unwrap_or(-1);
        if spec.redirect_stderr {
            let at = sec
                .get("redirect_stderr")
                .map_or(s.header_at, |e| e.span.start);
            cx.at(at, sec.key("redirect_stderr"), REDIRECT_STDERR_LISTENER);
        }
        match sec.get("events") {
            None => cx.at(s.header_at, sec.key("events"), "required option is missing"),
            Some(e) => {
                if let Some((v, at)) = expanded(cx, &sec, "events", &names) {
                    let items: Vec<(String, Range<usize>)> =
                        v.split(',').map(|x| (x.to_string(), at..at)).collect();
                    extra.events = listener_events(cx, &sec.key("events"), &items, e.span.start);
                }
            }
        }
        extra.buffer_size = typed_int(
            cx,
            &sec,
            "buffer_size",
            &names,
            1,
            i64::try_from(MAX_BUFFER_SIZE).unwrap_or(i64::MAX),
            "a positive integer",
        )
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_BUFFER_SIZE);
        if let Some((v, _)) = expanded(cx, &sec, "result_handler", &names)
            && v.trim() != DEFAULT_RESULT_HANDLER
            && let Some(e) = sec.get("result_handler")
        {
            unsupported_value(
                cx,
                e,
                &format!(
                    "only {DEFAULT_RESULT_HANDLER} (OK accepts an event, anything else rejects it)"
                ),
            );
        }
    } else {
        for k in READY_PROBES {
            if let Some(t) = template(k) {
                spec.ready.probes.push((k, t));
            }
        }
        let secs = |v: &str| v.trim().parse::<f64>().ok().and_then(secs_to_ms);
        spec.ready.interval_ms = typed(cx, &sec, "ready_interval", &names, SECS_EXPECTED, secs);
        spec.ready.timeout_ms = typed(cx, &sec, "ready_timeout", &names, SECS_EXPECTED, secs);
        spec.ready.retries = typed_u32(cx, &sec, "ready_retries", &names, 1, "a positive integer");
        // Only well-formed values: a bad one is reported as such, not as "needs a probe".
        let tuning = [
            ("ready_interval", spec.ready.interval_ms.is_some()),
            ("ready_timeout", spec.ready.timeout_ms.is_some()),
            ("ready_retries", spec.ready.retries.is_some()),
        ];
        for (k, set) in tuning {
            if set
                && spec.ready.tuning_at.is_none()
                && let Some(e) = sec.get(k)
            {
                spec.ready.tuning_at = Some((k, e.span.start));
            }
        }
        if let Some((v, at)) = expanded(cx, &sec, "depends_on", &names) {
            spec.depends_on = name_list(&v)
                .into_iter()
                .map(|d| (d.to_string(), at..at))
                .collect();
        }
    }
    (spec, hints)
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

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A TOML key: bare when it can be.
fn k(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// A path as an expanded TOML string value.
fn qp(p: &Path) -> String {
    q(&esc(&p.to_string_lossy()))
}

/// Milliseconds as TOML seconds.
fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn to_toml(c: &Config, hints: &Hints) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# vigil.toml converted from {} by `vigil convert`.",
        c.source.display()
    );
    o.push_str("# Paths are absolute; %(ENV_X)s still reads vigil's environment at start.\n");
    for n in &hints.notes {
        let _ = writeln!(o, "# Not carried over (accepted as is): {n}");
    }
    o.push('\n');
    o.push_str("[vigil]\n");
    let _ = writeln!(o, "listen = {}", q(&c.vigil.listen.to_string()));
    let _ = writeln!(o, "data_dir = {}", qp(&c.vigil.data_dir));
    let _ = writeln!(o, "log_level = {}", q(&c.vigil.log_level));
    if c.vigil.reload != super::ReloadMode::Apply {
        let _ = writeln!(o, "reload = {}", q(c.vigil.reload.name()));
    }

    if let Some(r) = &c.rpc {
        o.push_str("\n[rpc]\n");
        let _ = writeln!(o, "identifier = {}", q(&r.identifier));
        if let Some(l) = &r.logfile
            && let Some(p) = &l.path
        {
            let _ = writeln!(o, "logfile = {}", qp(p));
            let _ = writeln!(o, "logfile_maxbytes = {}", l.maxbytes);
            let _ = writeln!(o, "logfile_backups = {}", l.backups);
        }
        if let Some(p) = &r.pidfile {
            let _ = writeln!(o, "pidfile = {}", qp(p));
        }
        let creds = |o: &mut String, a: &Option<super::Credentials>| {
            if let Some(a) = a {
                let _ = writeln!(o, "username = {}", q(&a.username));
                let _ = writeln!(o, "password = {}", q(&a.password.to_config_value()));
            }
        };
        if let Some(i) = &r.inet {
            o.push_str("\n[rpc.inet]\n");
            let _ = writeln!(o, "port = {}", q(&i.addr.to_string()));
            creds(&mut o, &i.auth);
        }
        if let Some(u) = &r.unix {
            o.push_str("\n[rpc.unix]\n");
            let _ = writeln!(o, "file = {}", qp(&u.path));
            let _ = writeln!(o, "chmod = {}", q(&format!("{:04o}", u.chmod)));
            creds(&mut o, &u.auth);
        }
    }

    for p in &c.programs {
        let _ = writeln!(o, "\n[program.{}]", k(&p.name));
        let h = hints.logs.get(&p.name);
        write_program(&mut o, p, h, None);
    }
    for l in &c.eventlisteners {
        let _ = writeln!(o, "\n[eventlistener.{}]", k(&l.program.name));
        let h = hints.listener_logs.get(&l.program.name);
        write_program(&mut o, &l.program, h, Some(l.priority));
        let events: Vec<String> = l.events.iter().map(|e| q(e)).collect();
        let _ = writeln!(o, "events = [{}]", events.join(", "));
        if l.buffer_size != DEFAULT_BUFFER_SIZE {
            let _ = writeln!(o, "buffer_size = {}", l.buffer_size);
        }
    }
    for g in &c.groups {
        let _ = writeln!(o, "\n[group.{}]", k(&g.name));
        let members: Vec<String> = g.programs.iter().map(|m| q(m)).collect();
        let _ = writeln!(o, "programs = [{}]", members.join(", "));
        if g.priority != 999 {
            let _ = writeln!(o, "priority = {}", g.priority);
        }
    }
    o
}

/// The options of a program (or listener, with its pool priority) that differ from the
/// defaults.
fn write_program(
    o: &mut String,
    p: &ProgramConfig,
    logs: Option<&[LogHint; 2]>,
    pool_priority: Option<i32>,
) {
    use std::fmt::Write as _;
    let _ = writeln!(o, "command = {}", q(&p.command));
    if p.process_name != "%(program_name)s" {
        let _ = writeln!(o, "process_name = {}", q(&p.process_name));
    }
    if p.numprocs != 1 {
        let _ = writeln!(o, "numprocs = {}", p.numprocs);
    }
    if p.numprocs_start != 0 {
        let _ = writeln!(o, "numprocs_start = {}", p.numprocs_start);
    }
    match pool_priority {
        // A listener's `priority` sets the pool's and the processes'.
        Some(pool) if (pool, p.priority) != (-1, 999) => {
            let _ = writeln!(o, "priority = {pool}");
        }
        Some(_) => {}
        None if p.priority != 999 => {
            let _ = writeln!(o, "priority = {}", p.priority);
        }
        None => {}
    }
    if let Some(d) = &p.directory {
        let _ = writeln!(o, "directory = {}", qp(d));
    }
    if let Some(u) = &p.user {
        let _ = writeln!(o, "user = {}", q(u));
    }
    if !p.environment.is_empty() {
        let vars: Vec<String> = p
            .environment
            .iter()
            .map(|(var, v)| format!("{} = {}", k(var), q(&esc(v))))
            .collect();
        let _ = writeln!(o, "environment = {{ {} }}", vars.join(", "));
    }
    if !p.autostart {
        let _ = writeln!(o, "autostart = false");
    }
    match p.autorestart {
        AutoRestart::Unexpected => {}
        AutoRestart::Always => o.push_str("autorestart = true\n"),
        AutoRestart::Never => o.push_str("autorestart = false\n"),
    }
    if p.startsecs != 1 {
        let _ = writeln!(o, "startsecs = {}", p.startsecs);
    }
    if p.startretries != 3 {
        let _ = writeln!(o, "startretries = {}", p.startretries);
    }
    if p.exitcodes != [0] {
        let codes: Vec<String> = p.exitcodes.iter().map(i32::to_string).collect();
        let _ = writeln!(o, "exitcodes = [{}]", codes.join(", "));
    }
    if p.stopsignal != TERM {
        let _ = writeln!(o, "stopsignal = {}", q(p.stopsignal.name));
    }
    if p.stopwaitsecs != 10 {
        let _ = writeln!(o, "stopwaitsecs = {}", p.stopwaitsecs);
    }
    if p.stopasgroup {
        o.push_str("stopasgroup = true\n");
    }
    if p.killasgroup != p.stopasgroup {
        let _ = writeln!(o, "killasgroup = {}", p.killasgroup);
    }
    if p.redirect_stderr {
        o.push_str("redirect_stderr = true\n");
    }
    let first = p.processes.first();
    for (i, chan) in ["stdout", "stderr"].into_iter().enumerate() {
        if i == 1 && p.redirect_stderr {
            // No stderr log when it is redirected.
            continue;
        }
        match logs.and_then(|h| h.get(i)) {
            Some(LogHint::Off) => {
                let _ = writeln!(o, "{chan}_logfile = \"NONE\"");
            }
            Some(LogHint::Template(t)) => {
                let _ = writeln!(o, "{chan}_logfile = {}", q(t));
            }
            _ => {}
        }
        if let Some(proc) = first {
            let log = if i == 0 {
                &proc.stdout_log
            } else {
                &proc.stderr_log
            };
            if log.maxbytes != DEFAULT_LOG_MAXBYTES {
                let _ = writeln!(o, "{chan}_logfile_maxbytes = {}", log.maxbytes);
            }
            if log.backups != DEFAULT_LOG_BACKUPS {
                let _ = writeln!(o, "{chan}_logfile_backups = {}", log.backups);
            }
        }
    }
    if p.stdout_capture_maxbytes != 0 {
        let _ = writeln!(o, "stdout_capture_maxbytes = {}", p.stdout_capture_maxbytes);
    }
    if p.stdout_events_enabled {
        o.push_str("stdout_events_enabled = true\n");
    }
    if p.stderr_capture_maxbytes != 0 {
        let _ = writeln!(o, "stderr_capture_maxbytes = {}", p.stderr_capture_maxbytes);
    }
    if p.stderr_events_enabled {
        o.push_str("stderr_events_enabled = true\n");
    }
    if p.backoff.exponential {
        o.push_str("backoff = \"exponential\"\n");
    }
    if let Some(m) = p.backoff.max_ms {
        let _ = writeln!(o, "backoff_max = {}", m / 1000);
    }
    if p.events_from_stdout {
        o.push_str("events = \"stdout\"\n");
    }
    if p.critical {
        o.push_str("critical = true\n");
    }
    if let Some(r) = &p.ready {
        match &r.probe {
            ReadinessProbe::Command { argv } => {
                let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default();
                let _ = writeln!(o, "ready_command = {}", q(&esc(&line)));
            }
            ReadinessProbe::Http { url } => {
                let _ = writeln!(o, "ready_http = {}", q(&esc(url)));
            }
            ReadinessProbe::Tcp { host, port } => {
                let hp = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let _ = writeln!(o, "ready_tcp = {}", q(&esc(&hp)));
            }
        }
        if r.interval_ms != DEFAULT_READY_INTERVAL_MS {
            let _ = writeln!(o, "ready_interval = {}", secs(r.interval_ms));
        }
        if r.timeout_ms != DEFAULT_READY_TIMEOUT_MS {
            let _ = writeln!(o, "ready_timeout = {}", secs(r.timeout_ms));
        }
        if r.retries != DEFAULT_READY_RETRIES {
            let _ = writeln!(o, "ready_retries = {}", r.retries);
        }
    }
    if !p.depends_on.is_empty() {
        let deps: Vec<String> = p.depends_on.iter().map(|d| q(d)).collect();
        let _ = writeln!(o, "depends_on = [{}]", deps.join(", "));
    }
}

/// The first part of two configs that differs, named.
fn first_difference(a: &Config, b: &Config) -> Option<String> {
    if a.vigil != b.vigil {
        return Some("[vigil]".to_string());
    }
    if a.rpc != b.rpc {
        return Some("[rpc]".to_string());
    }
    for (x, y) in a.programs.iter().zip(&b.programs) {
        if x != y {
            return Some(format!("program \"{}\"", x.name));
        }
    }
    for (x, y) in a.eventlisteners.iter().zip(&b.eventlisteners) {
        if x != y {
            return Some(format!("event listener \"{}\"", x.program.name));
        }
    }
    if a.programs.len() != b.programs.len() || a.eventlisteners.len() != b.eventlisteners.len() {
        return Some("the list of programs".to_string());
    }
    if a.groups != b.groups {
        return Some("the groups".to_string());
    }
    (a != b).then(|| "the configuration".to_string())
}

// ------------------------------------------------------------------------------------------
// SHA-1 (for `{SHA}` passwords)

/// Lowercase hex SHA-1 of `data` (FIPS 180-4), as supervisord compares `{SHA}` passwords.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate().take(16) {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, kk) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(kk)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    h.iter().map(|v| format!("{v:08x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Credentials, EventListenerConfig, GroupConfig, Password};
    use tempfile::TempDir;

    fn test_env() -> Env {
        let mut vars = BTreeMap::new();
        vars.insert("HOME".to_string(), "/home/tester".to_string());
        vars.insert("VIGIL_TEST_TOKEN".to_string(), "s3cret".to_string());
        vars.insert("PORT_BASE".to_string(), "80".to_string());
        Env {
            vars,
            host_node_name: "testhost".to_string(),
        }
    }

    fn tmp() -> TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    fn load_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let p = write(dir, "supervisord.conf", text);
        load_with(&p, text, &test_env())
    }

    fn ok(text: &str) -> (TempDir, Config) {
        let dir = tmp();
        match load_in(dir.path(), text) {
            Ok(c) => (dir, c),
            Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
        }
    }

    /// `LINE: key: message` per error (file names left out; `FILE:` kept for other files).
    fn render(dir: &Path, e: &ConfigErrors) -> Vec<String> {
        e.0.iter()
            .map(|e| {
                let mut s = String::new();
                if e.file != dir.join("supervisord.conf") {
                    let rel = e.file.strip_prefix(dir).unwrap_or(&e.file);
                    s.push_str(&format!("{}:", rel.display()));
                }
                assert_eq!(e.col, 0, "INI errors have no column: {e}");
                s.push_str(&e.line.to_string());
                if !e.key.is_empty() {
                    s.push_str(&format!(": {}", e.key));
                }
                s.push_str(&format!(": {}", e.message));
                s
            })
            .collect()
    }

    fn errs_in(dir: &Path, text: &str) -> Vec<String> {
        match load_in(dir, text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => render(dir, &e),
        }
    }

    fn errs(text: &str) -> Vec<String> {
        errs_in(tmp().path(), text)
    }

    /// The warnings of a config that loads: `[FILE:]LINE:COL: key: message`.
    fn warns_in(dir: &Path, text: &str) -> Vec<String> {
        match load_in(dir, text) {
            Ok(c) => c
                .warnings
                .iter()
                .map(|w| {
                    let mut s = String::new();
                    if w.file != dir.join("supervisord.conf") {
                        let rel = w.file.strip_prefix(dir).unwrap_or(&w.file);
                        s.push_str(&format!("{}:", rel.display()));
                    }
                    format!("{s}{}:{}: {}: {}", w.line, w.col, w.key, w.message)
                })
                .collect(),
            Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
        }
    }

    fn prog<'c>(c: &'c Config, name: &str) -> &'c ProgramConfig {
        match c.program(name) {
            Some(p) => p,
            None => panic!("no program {name}"),
        }
    }

    fn listener<'c>(c: &'c Config, name: &str) -> &'c EventListenerConfig {
        match c.eventlistener(name) {
            Some(l) => l,
            None => panic!("no listener {name}"),
        }
    }

    fn argv(c: &Config, name: &str) -> Vec<Vec<String>> {
        prog(c, name)
            .processes
            .iter()
            .map(|p| p.argv.clone())
            .collect()
    }

    // ------------------------------------------------------------------ the reader

    #[test]
    fn inline_comments_need_whitespace_before() {
        assert_eq!(comment_start("command=sh -c 'a;b'"), None);
        assert_eq!(comment_start("command=sh -c 'a;b' ; run"), Some(20));
        assert_eq!(comment_start("url=http://x/#frag"), None);
        assert_eq!(comment_start("a=1\t# tab"), Some(4));
        assert_eq!(comment_start("; full line"), Some(0));
        assert_eq!(comment_start("   # indented comment"), Some(0));
        // Python's rounds: the first qualifying `#` ends the search before a later-found `;`.
        assert_eq!(comment_start("a;b;c ;d #e"), Some(9));
        assert_eq!(comment_start("x #a;b ;c"), Some(2));
    }

    #[test]
    fn values_as_supervisord_reads_them() {
        let (_d, c) = ok(concat!(
            "[supervisord]\n",
            "; a comment\n",
            "# another\n",
            "[program:semi]\n",
            "command=sh -c 'echo a;echo b' ; trailing comment\n",
            "[program:cont]\n",
            "COMMAND = /bin/echo one\n",
            "    two ; comment on a continuation\n",
            "\n",
            "    three\n",
            "AutoStart: no\n",
            "[program:dup]\n",
            "command=first\n",
            "command=second\n",
            "[program:semi]\n",
            "priority=5\n",
        ));
        assert_eq!(argv(&c, "semi"), vec![vec!["sh", "-c", "echo a;echo b"]]);
        assert_eq!(prog(&c, "semi").priority, 5, "sections merge");
        let cont = prog(&c, "cont");
        assert_eq!(cont.command, "/bin/echo one\ntwo\n\nthree");
        assert_eq!(
            argv(&c, "cont"),
            vec![vec!["/bin/echo", "one", "two", "three"]]
        );
        assert!(
            !cont.autostart,
            "keys are case-insensitive; ':' works as '='"
        );
        assert_eq!(prog(&c, "dup").command, "second", "the last value wins");
        let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["semi", "cont", "dup"], "order of first appearance");
    }

    #[test]
    fn syntax_errors_stop_with_their_lines() {
        assert_eq!(
            errs(concat!(
                "command=x\n",
                "[supervisord]\n",
                "this line has no equals sign\n",
                "= no name\n",
                "[program:a] junk\n",
                "command=x\n",
                "[program:b]\n",
                "umask=1\n",
            )),
            vec![
                "1: a [section] header must come before any option (this line is outside every section)",
                "3: cannot parse \"this line has no equals sign\": expected `option = value`, a [section] header, a comment, or a continuation line indented more than its option",
                "4: an option name is missing before the '=' or ':'",
                "5: unexpected text \"junk\" after the section header",
            ]
        );
    }

    // ------------------------------------------------------------------ includes

    #[test]
    fn includes_globs_sorted_relative_no_recursion() {
        let dir = tmp();
        let d = dir.path();
        write(
            d,
            "conf.d/20-b.conf",
            "[program:b]\ncommand=/bin/b %(here)s\n",
        );
        write(
            d,
            "conf.d/10-a.conf",
            "[program:a]\ncommand=/bin/a\n[supervisord]\nidentifier=fromincl\n",
        );
        write(d, "conf.d/skip.txt", "[program:nope]\ncommand=x\n");
        write(d, "other/c.ini", "[program:c]\ncommand=/bin/c\n");
        let text = "[supervisord]\n[include]\nfiles = conf.d/*.conf other/c.ini empty/*.conf\n[program:main]\ncommand=/bin/main %(here)s\n";
        let c = match load_in(d, text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["main", "a", "b", "c"]);
        assert_eq!(c.identifier(), "fromincl");
        let here = d.to_string_lossy().into_owned();
        assert_eq!(
            argv(&c, "main"),
            vec![vec!["/bin/main".to_string(), here.clone()]]
        );
        assert_eq!(
            argv(&c, "b"),
            vec![vec!["/bin/b".to_string(), format!("{here}/conf.d")]],
            "%(here)s is the directory of the file holding the value"
        );

        // An [include] inside an included file, a missing literal file, a bad option there.
        write(
            d,
            "conf.d/30-inc.conf",
            "[include]\nfiles=x.conf\n[program:z]\ncommand=z\nbogus=1\n",
        );
        assert_eq!(
            errs_in(d, "[supervisord]\n[include]\nfiles = conf.d/*.conf missing.conf\n"),
            vec![
                "3: [include] files: ".to_string() + &d.join("missing.conf").display().to_string() + " does not exist",
                "conf.d/30-inc.conf:1: section [include] is not supported in an included file (supervisord ignores it; put every include in the main file)".to_string(),
            ]
        );
        std::fs::remove_file(d.join("conf.d/30-inc.conf")).expect("rm");
        write(d, "conf.d/30-bad.conf", "[program:z]\ncommand=z\nbogus=1\n");
        assert_eq!(
            warns_in(
                d,
                "[supervisord]\n[include]\nfiles = conf.d/*.conf\nfoo=1\n"
            ),
            vec![
                "4:1: [include] foo: unknown option, ignored (known options: files)",
                "conf.d/30-bad.conf:3:1: [program:z] bogus: unknown option, ignored",
            ]
        );
        assert_eq!(
            errs_in(d, "[supervisord]\n[include]\n"),
            vec!["2: [include] files: required option is missing"]
        );
    }

    /// Cases checked against Python 3.11's `RawConfigParser(inline_comment_prefixes=(';', '#'),
    /// strict=False)`: the text, and the value of `k` in `[s]` (`None`: a parse error).
    #[test]
    fn reader_matches_python_configparser() {
        let cases: &[(&str, Option<&str>)] = &[
            ("[s]\nk==a\"b;%%\"\n  cont\n", Some("=a\"b;%%\"\ncont")),
            ("[s]\nk=\"=a;a' #=\n  cont'\n", Some("\"=a;a'\ncont'")),
            (
                "[s]\nk=b\"a\";x%'\n  cont\tx\"\n",
                Some("b\"a\";x%'\ncont\tx\""),
            ),
            (
                "[s]\nk=x\t#; ;b\"#'x\tx#\n  contbb'=\n",
                Some("x\ncontbb'="),
            ),
            ("[s]\nk=\"xbb#x%\n  cont\n", Some("\"xbb#x%\ncont")),
            ("[s]\nk=# ;\n  cont=xb\n", Some("#\ncont=xb")),
            (
                "[s]\nk=;ax\" ##a =\n  cont\t\"\"\t\n",
                Some(";ax\"\ncont\t\"\""),
            ),
            (
                "[s]\nk=ab;\"= %#\t\n  cont\txbb\n",
                Some("ab;\"= %#\ncont\txbb"),
            ),
            ("[s]\nk=xxxx#b b\t#x '\n  cont\n", Some("xxxx#b b\ncont")),
            (
                "[s]\nk=b#'\t \t;'''\t%;\n  cont;;=;\n",
                Some("b#'\ncont;;=;"),
            ),
            ("[s]\nk=;\t;x\"\"a\n  cont%\t%\n", Some(";\ncont%\t%")),
            (
                "[s]\nk==;x =%\tb=x=b  \n  conta\n",
                Some("=;x =%\tb=x=b\nconta"),
            ),
            (
                "[s]\nk=\t '' aa%b' =;;\n  cont\n",
                Some("'' aa%b' =;;\ncont"),
            ),
            ("[s]\nk=;#';\n  cont\"\t#'= \n", Some(";#';\ncont\"")),
            (
                "[s]\nk='a;;#ab'x'abx\t\n  cont'\"';\n",
                Some("'a;;#ab'x'abx\ncont'\"';"),
            ),
            (
                "[s]\nk=#x''x';'#';\n  contx =b=x\n",
                Some("#x''x';'#';\ncontx =b=x"),
            ),
            ("[s]\nk=b%;=b\n  cont%\n", Some("b%;=b\ncont%")),
            (
                "[s]\nk= x;b=x %; ='=\t\n  cont;\t\t\n",
                Some("x;b=x %; ='=\ncont;"),
            ),
            ("[s]\nk='bb;\n  cont\n", Some("'bb;\ncont")),
            ("[s]\nk=#\n  conta \n", Some("#\nconta")),
            ("[s]\nk= =%#\n  cont ''\n", Some("=%#\ncont ''")),
            ("[s]\nk=x\tb#a =b#\n  cont\n", Some("x\tb#a =b#\ncont")),
            (
                "[s]\nk=b#b\";b#bxa\n  cont'=\n",
                Some("b#b\";b#bxa\ncont'="),
            ),
            (
                "[s]\nk=#\" a';b #a ;#%\n  cont';\n",
                Some("#\" a';b\ncont';"),
            ),
            (
                "[s]\nk=xb%%=%x'='#;;\t\n  cont%\n",
                Some("xb%%=%x'='#;;\ncont%"),
            ),
            (
                "[s]\nk= ab%#= ab%='%\n  cont\";\n",
                Some("ab%#= ab%='%\ncont\";"),
            ),
            ("[s]\nk=#ax  #xa#\t\t\n  cont\t;a#\n", Some("#ax\ncont")),
            ("[s]\nk=#'%;;'a\n  cont\n", Some("#'%;;'a\ncont")),
            ("[s]\nk=a##%;b\n  cont' %\"\n", Some("a##%;b\ncont' %\"")),
            ("[s]\nk=\tx #\"%\n  conta\n", Some("x\nconta")),
            (
                "[s]\nk=#;;;%xx=bx%#a\n  cont%%;b\n",
                Some("#;;;%xx=bx%#a\ncont%%;b"),
            ),
            ("[s]\nk= \t#%#\"\" a\n  contax#\n", Some("\ncontax#")),
            (
                "[s]\nk=b;%x#'#xxx\n  contb';#bx\n",
                Some("b;%x#'#xxx\ncontb';#bx"),
            ),
            (
                "[s]\nk='x#=;;b\"b '#\t\n  cont\"\n",
                Some("'x#=;;b\"b '#\ncont\""),
            ),
            (
                "[s]\nk=%'#b\t;xx=a ax\n  contx=# =\n",
                Some("%'#b\ncontx=# ="),
            ),
            ("[s]\nk=;\n  conta##\tb\n", Some(";\nconta##\tb")),
            (
                "[s]\nk==\"b\t=#\n  conta#ba%#\n",
                Some("=\"b\t=#\nconta#ba%#"),
            ),
            ("[s]\nk= ;#='\t;\t=a\n  cont%='';b\n", Some("\ncont%='';b")),
            (
                "[s]\nk=#xa'  x=\t###%\n  cont=%\n",
                Some("#xa'  x=\ncont=%"),
            ),
            ("[s]\nk=#x'\n  cont=b % \n", Some("#x'\ncont=b %")),
        ];
        for (text, want) in cases {
            let mut cx = Ctx::new();
            cx.add_file(PathBuf::from("/x.conf"), (*text).to_string(), false);
            let mut doc = IniDoc {
                sections: Vec::new(),
                dirs: vec![PathBuf::from("/")],
            };
            let got = if read_ini(&mut cx, &mut doc, 0, false) > 0 {
                None
            } else {
                doc.section("s")
                    .and_then(|s| s.get("k"))
                    .map(|e| e.value.clone())
            };
            assert_eq!(got.as_deref(), *want, "{text:?}");
        }
    }

    /// A bounded fuzz of the reader's pieces: random text never makes them panic.
    #[test]
    fn reader_survives_garbage() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "[]=:;# \t\n\r%()sdabc_-,\"'é\\*?!".chars().collect();
        for _ in 0..3000 {
            let len = (next() % 100) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut cx = Ctx::new();
            cx.add_file(PathBuf::from("/fuzz.conf"), text.clone(), false);
            let mut doc = IniDoc {
                sections: Vec::new(),
                dirs: vec![PathBuf::from("/")],
            };
            let _ = read_ini(&mut cx, &mut doc, 0, false);
            let _ = cx.finish();
            for line in text.lines() {
                let _ = comment_start(line);
                let _ = section_header(line);
            }
            let _ = parse_kv_pairs(&text);
            let _ = fnmatch(&text, "ab[c]*");
            let _ = fnmatch("a*b?[!c-d]", &text);
            let _ = subst(&text, &|n| (n == "here").then(|| "/h".to_string()));
            let _ = parse_int(&text);
        }
    }

    #[test]
    fn glob_and_fnmatch() {
        assert!(fnmatch("*.conf", "a.conf"));
        assert!(!fnmatch("*.conf", "a.ini"));
        assert!(fnmatch("a?c", "abc"));
        assert!(fnmatch("[ab]x", "bx"));
        assert!(!fnmatch("[!ab]x", "bx"));
        assert!(fnmatch("[a-c]*", "coffee"));
        assert!(fnmatch("[x", "[x"));
        assert!(fnmatch("*", ""));
        let dir = tmp();
        write(dir.path(), "x/1.conf", "");
        write(dir.path(), "y/2.conf", "");
        write(dir.path(), "y/.hidden.conf", "");
        let found = glob(&dir.path().join("*/*.conf"));
        assert_eq!(
            found,
            vec![dir.path().join("x/1.conf"), dir.path().join("y/2.conf")]
        );
    }

    // ------------------------------------------------------------------ expansions

    #[test]
    fn every_expansion() {
        let (d, c) = ok(concat!(
            "[supervisord]\n",
            "environment=GLOBAL_X=\"g,1\"\n",
            "[program:feed]\n",
            "process_name=%(program_name)s_%(process_num)02d\n",
            "numprocs=2\n",
            "numprocs_start=7\n",
            "command=/bin/feed --n %(process_num)d/%(numprocs)d --g %(group_name)s --h %(host_node_name)s --p %(ENV_PORT_BASE)s%(process_num)02d --x %(ENV_GLOBAL_X)s --own %(ENV_OWN)s 100%%\n",
            "environment=OWN=\"%(program_name)s-%(ENV_HOME)s\"\n",
            "directory=%(here)s\n",
            "[group:trading]\n",
            "programs=feed\n",
        ));
        let feed = prog(&c, "feed");
        let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["feed_07", "feed_08"]);
        assert_eq!(
            feed.processes[1].argv,
            [
                "/bin/feed",
                "--n",
                "8/2",
                "--g",
                "trading",
                "--h",
                "testhost",
                "--p",
                "8008",
                "--x",
                "g,1",
                "--own",
                "feed-/home/tester",
                "100%"
            ]
        );
        assert_eq!(feed.directory.as_deref(), Some(d.path()));
        assert_eq!(
            feed.environment.get("GLOBAL_X").map(String::as_str),
            Some("g,1")
        );
        assert_eq!(
            feed.environment.get("OWN").map(String::as_str),
            Some("feed-/home/tester")
        );
        assert_eq!(c.group_of("feed"), "trading");
    }

    #[test]
    fn expansion_errors() {
        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "identifier=%(nope)s\n",
                "[program:a]\n",
                "command=date +%Y\n",
                "priority=%(process_num)d\n",
                "process_name=%(program_nam)s\n",
            )),
            vec![
                "2: [supervisord] identifier: unknown name %(nope); available names: here, host_node_name, ENV_<NAME>",
                "4: [program:a] command: '%' must start \"%(name)s\" or be doubled as '%%' for a literal '%'",
                "5: [program:a] priority: %(process_num) is not available here (only process_name, command, directory, environment and the log files are per process); available names: group_name, here, host_node_name, program_name, ENV_<NAME>",
                "6: [program:a] process_name: unknown name %(program_nam) (did you mean %(program_name)?); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
            ]
        );
    }

    // ------------------------------------------------------------------ typed values

    #[test]
    fn supervisord_value_syntax() {
        let (_d, c) = ok(concat!(
            "[supervisord]\n",
            "[program:a]\n",
            "command=a\n",
            "autostart=Off\n",
            "autorestart=unexpected\n",
            "stopasgroup=YES\n",
            "redirect_stderr=1\n",
            "stopsignal=sigusr2\n",
            "exitcodes=0, 2,255\n",
            "stdout_logfile_maxbytes=10KB\n",
            "stdout_logfile_backups=0\n",
            "stderr_logfile_maxbytes=1gb\n",
            "stdout_capture_maxbytes=2MB\n",
            "stderr_events_enabled=on\n",
            "environment=A=1,B=\"x, y\",C='z z',PATH=\"/usr/bin:/bin\"\n",
            "startsecs=+0\n",
            "[program:b]\n",
            "command=b\n",
            "autorestart=true\n",
            "exitcodes=\n",
            "stopsignal=9\n",
            "[program:c]\n",
            "command=c\n",
            "autorestart=false\n",
        ));
        let a = prog(&c, "a");
        assert!(!a.autostart);
        assert_eq!(a.autorestart, AutoRestart::Unexpected);
        assert!(a.stopasgroup && a.killasgroup);
        assert!(a.redirect_stderr);
        assert_eq!(a.stopsignal.name, "USR2");
        assert_eq!(a.exitcodes, vec![0, 2, 255]);
        assert_eq!(a.processes[0].stdout_log.maxbytes, 10 * 1024);
        assert_eq!(a.processes[0].stdout_log.backups, 0);
        assert_eq!(a.processes[0].stderr_log.maxbytes, 1 << 30);
        assert_eq!(a.processes[0].stderr_log.path, None, "redirected");
        assert_eq!(a.stdout_capture_maxbytes, 2 << 20);
        assert!(a.stderr_events_enabled && !a.stdout_events_enabled);
        let env: Vec<(&str, &str)> = a
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("A", "1"),
                ("B", "x, y"),
                ("C", "z z"),
                ("PATH", "/usr/bin:/bin")
            ]
        );
        assert_eq!(a.startsecs, 0);
        let b = prog(&c, "b");
        assert_eq!(b.autorestart, AutoRestart::Always);
        assert!(b.exitcodes.is_empty());
        assert_eq!(b.stopsignal.name, "KILL");
        assert_eq!(prog(&c, "c").autorestart, AutoRestart::Never);
    }

    #[test]
    fn kv_pairs_like_supervisord() {
        let ok_pairs = |s: &str| match parse_kv_pairs(s) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        };
        assert_eq!(
            ok_pairs("K=v,K2=\"a, b\""),
            vec![("K".into(), "v".into()), ("K2".into(), "a, b".into())]
        );
        assert_eq!(ok_pairs(""), vec![]);
        assert_eq!(
            ok_pairs("A=1 ,B=2"),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert!(parse_kv_pairs("A=\"open").is_err());
        assert!(parse_kv_pairs("A=1 B=2").is_err());
        assert!(parse_kv_pairs("A").is_err());
        assert!(parse_kv_pairs("A=x y").is_err());
    }

    #[test]
    fn type_errors() {
        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "loglevel=loud\n",
                "vigil_listen=localhost:1\n",
                "[program:a]\n",
                "command=a\n",
                "autostart=maybe\n",
                "autorestart=sometimes\n",
                "startsecs=1.5\n",
                "numprocs=0\n",
                "exitcodes=0,256\n",
                "stopsignal=SIGFOO\n",
                "stdout_logfile_maxbytes=5TB\n",
                "environment=A=1 B=2\n",
                "backoff=quadratic\n",
                "stopasgroup=true\n",
                "killasgroup=false\n",
            )),
            vec![
                "2: [supervisord] loglevel: expected one of critical, error, warn, info, debug, trace, blather, found \"loud\"",
                "3: [supervisord] vigil_listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found \"localhost:1\"",
                "6: [program:a] autostart: expected a boolean (true/false, yes/no, on/off or 1/0), found \"maybe\"",
                "7: [program:a] autorestart: expected true, false or unexpected, found \"sometimes\"",
                "8: [program:a] startsecs: expected a non-negative integer, found \"1.5\"",
                "9: [program:a] numprocs: expected a positive integer (at most 10000), found \"0\"",
                "10: [program:a] exitcodes: expected a comma-separated list of exit codes (0-255) such as 0,2, found \"0,256\"",
                "11: [program:a] stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found \"SIGFOO\"",
                "12: [program:a] stdout_logfile_maxbytes: expected a size in bytes (an integer, optionally with KB, MB or GB), found \"5TB\"",
                "13: [program:a] environment: expected ',' between KEY=value pairs, found \"B\" (quote values with spaces: KEY=\"a b\")",
                "14: [program:a] backoff: expected linear or exponential, found \"quadratic\"",
                "16: [program:a] killasgroup: cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
            ]
        );
    }

    // ------------------------------------------------------------------ unknown and unsupported

    #[test]
    fn unknown_options_and_sections_with_did_you_mean() {
        // supervisord ignores what it does not know: warnings, located with their column.
        let text = concat!(
            "[supervisord]\n",
            "logfle=x\n",
            "[program:a]\n",
            "command=a\n",
            "comand=a\n",
            "autorestrat=true\n",
            "zzzzzz=1\n",
            "dependent_startup=true\n",
            "[programs:b]\n",
            "[supervisor]\n",
            "[group:g]\n",
            "programs=a\n",
            "program=a\n",
            "[weird]\n",
        );
        let dir = tmp();
        assert_eq!(
            warns_in(dir.path(), text),
            vec![
                "2:1: [supervisord] logfle: unknown option, ignored (did you mean \"logfile\"?)",
                "5:1: [program:a] comand: unknown option, ignored (did you mean \"command\"?)",
                "6:1: [program:a] autorestrat: unknown option, ignored (did you mean \"autorestart\"?)",
                "7:1: [program:a] zzzzzz: unknown option, ignored",
                "8:1: [program:a] dependent_startup: unknown option, ignored",
                "9:1: [programs:b]: unknown section, ignored (did you mean [program:b]?)",
                "10:1: [supervisor]: unknown section, ignored (did you mean [supervisord]?)",
                "13:1: [group:g] program: unknown option, ignored (did you mean \"programs\"?)",
                "14:1: [weird]: unknown section, ignored (known sections: [supervisord], [program:NAME], [eventlistener:NAME], [group:NAME], [include], [unix_http_server], [inet_http_server], [rpcinterface:supervisor], [supervisorctl])",
            ]
        );
        let c = load_in(dir.path(), text).expect("loads");
        assert_eq!(argv(&c, "a"), vec![vec!["a".to_string()]]);
        // With an error as well, the errors are what is reported.
        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "logfle=x\n",
                "[program:a]\n",
                "comand=a\n",
                "autorestrat=true\n",
                "zzzzzz=1\n",
                "[programs:b]\n",
                "[supervisor]\n",
                "[group:g]\n",
                "program=a\n",
                "[weird]\n",
            )),
            vec![
                "3: [program:a] command: required option is missing",
                "9: [group:g] programs: required option is missing",
            ]
        );
    }

    #[test]
    fn every_unsupported_option_is_reported_with_its_line() {
        let other_umask = match current_umask() {
            Some(0o077) => "022",
            _ => "077",
        };
        let text = format!(
            concat!(
                "[supervisord]\n",
                "umask={u}\n",
                "logfile=syslog\n",
                "silent=true\n",
                "strip_ansi=true\n",
                "minfds=999999999999\n",
                "user=nobody\n",
                "[program:a]\n",
                "command=a\n",
                "umask={u}\n",
                "serverurl=http://127.0.0.1:9001\n",
                "stdout_syslog=true\n",
                "stderr_syslog=yes\n",
                "stdout_logfile=syslog\n",
                "stderr_logfile=SYSLOG\n",
                "[eventlistener:l]\n",
                "command=l\n",
                "events=TICK_5\n",
                "result_handler=superlance.x:handler\n",
                "[unix_http_server]\n",
                "file=/tmp/vigil-test-x.sock\n",
                "chown=nobody:nogroup\n",
                "[inet_http_server:second]\n",
                "port=1\n",
                "[rpcinterface:supervisor]\n",
                "supervisor.rpcinterface_factory=my.module:factory\n",
                "retries=1\n",
                "[rpcinterface:twiddler]\n",
                "[fcgi-program:f]\n",
                "[DEFAULT]\n",
            ),
            u = other_umask
        );
        let got = errs(&text);
        let cur = current_umask().map_or_else(|| "unknown".to_string(), |c| format!("{c:03o}"));
        let minfds_line = got.get(4).cloned().unwrap_or_default();
        assert!(
            minfds_line.starts_with(
                "6: option minfds=999999999999 is not supported: vigil does not raise its limits"
            ),
            "{minfds_line}"
        );
        assert_eq!(
            got,
            vec![
                format!("2: option umask={other_umask} is not supported: vigil does not change its umask ({cur}); start it with umask {other_umask} instead"),
                "3: option logfile=syslog is not supported: vigil has no syslog output; give a file path".to_string(),
                "4: option silent=true is not supported: vigil always writes its log to stderr (silent = false)".to_string(),
                "5: option strip_ansi=true is not supported: vigil writes child output to the logs as is (strip_ansi = false)".to_string(),
                minfds_line.clone(),
                "7: option user=nobody is not supported: vigil does not switch users; start it as that user (programs may still set user=)".to_string(),
                format!("10: option umask={other_umask} is not supported: vigil's children inherit vigil's umask ({cur}); start vigil with umask {other_umask} instead"),
                "11: option serverurl=http://127.0.0.1:9001 is not supported: vigil sets SUPERVISOR_SERVER_URL to its own server (serverurl = AUTO)".to_string(),
                "12: option stdout_syslog=true is not supported: vigil has no syslog output".to_string(),
                "13: option stderr_syslog=yes is not supported: vigil has no syslog output".to_string(),
                "14: option stdout_logfile=syslog is not supported: vigil has no syslog output; give a file path, AUTO or NONE".to_string(),
                "15: option stderr_logfile=SYSLOG is not supported: vigil has no syslog output; give a file path, AUTO or NONE".to_string(),
                "19: option result_handler=superlance.x:handler is not supported: only supervisor.dispatchers:default_handler (OK accepts an event, anything else rejects it)".to_string(),
                "22: option chown is not supported: vigil creates the socket as the user it runs as; use chmod (and a group-readable directory) instead".to_string(),
                "23: section [inet_http_server:second] is not supported: vigil serves one unnamed [inet_http_server]".to_string(),
                "26: option supervisor.rpcinterface_factory=my.module:factory is not supported: vigil implements supervisor.rpcinterface:make_main_rpcinterface only".to_string(),
                "27: option retries is not supported: make_main_rpcinterface takes no options".to_string(),
                "28: section [rpcinterface:twiddler] is not supported: vigil has no XML-RPC plugins (only [rpcinterface:supervisor])".to_string(),
                "29: section [fcgi-program:f] is not supported: vigil does not manage FastCGI sockets".to_string(),
                "30: section [DEFAULT] is not supported: write the options in each section".to_string(),
            ]
        );
    }

    #[test]
    fn harmless_options_are_accepted() {
        let umask = current_umask().map_or_else(|| "022".to_string(), |u| format!("{u:03o}"));
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".to_string(), |u| u.name);
        let (_d, c) = ok(&format!(
            concat!(
                "[supervisord]\n",
                "nodaemon=true\nsilent=false\nstrip_ansi=false\nnocleanup=true\n",
                "minfds=16\nminprocs=1\numask={u}\nuser={me}\n",
                "[supervisorctl]\nserverurl=unix:///tmp/x.sock\nprompt=mine\n",
                "[ctlplugin:foo]\nsupervisor.ctl_factory=foo:make\n",
                "[rpcinterface:supervisor]\n",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
                "[program:a]\ncommand=a\numask={u}\nserverurl=AUTO\nstdout_syslog=false\n",
            ),
            u = umask,
            me = me
        ));
        assert_eq!(c.programs.len(), 1);
    }

    #[test]
    fn a_supervisord_section_is_required() {
        assert_eq!(
            errs("[program:a]\ncommand=a\n"),
            vec!["1: a [supervisord] section is required (as in supervisord; it may be empty)"]
        );
    }

    // ------------------------------------------------------------------ [supervisord]

    #[test]
    fn supervisord_section_maps() {
        let dir = tmp();
        let d = dir.path();
        std::fs::create_dir(d.join("work")).expect("mkdir");
        let c = match load_in(
            d,
            concat!(
                "[supervisord]\n",
                "logfile=%(here)s/main.log\n",
                "logfile_maxbytes=1MB\n",
                "logfile_backups=3\n",
                "loglevel=blather\n",
                "pidfile=run/supervisord.pid\n",
                "childlogdir=childlogs\n",
                "directory=work\n",
                "identifier=desk1\n",
                "vigil_data_dir=state\n",
                "vigil_listen=127.0.0.1:7171\n",
                "vigil_reload=apply\n",
                "[program:bot]\n",
                "command=bot\n",
                "[program:own]\n",
                "command=own\n",
                "directory=/\n",
                "stdout_logfile=NONE\n",
                "stderr_logfile=own.err\n",
            ),
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(c.vigil.log_level, "trace");
        assert_eq!(c.vigil.listen.to_string(), "127.0.0.1:7171");
        assert_eq!(c.vigil.data_dir, d.join("state"));
        assert_eq!(c.vigil.reload, super::super::ReloadMode::Apply);
        let rpc = c.rpc.as_ref().expect("rpc");
        assert_eq!(rpc.identifier, "desk1");
        assert_eq!(
            rpc.logfile,
            Some(LogConfig {
                path: Some(d.join("main.log")),
                maxbytes: 1 << 20,
                backups: 3
            })
        );
        assert_eq!(rpc.pidfile, Some(d.join("run/supervisord.pid")));
        assert!(d.join("run").is_dir() && d.join("childlogs").is_dir());
        let bot = prog(&c, "bot");
        assert_eq!(
            bot.directory,
            Some(d.join("work")),
            "[supervisord] directory"
        );
        assert_eq!(
            bot.processes[0].stdout_log.path,
            Some(d.join("childlogs/bot-stdout---desk1.log"))
        );
        assert_eq!(
            bot.processes[0].stderr_log.path,
            Some(d.join("childlogs/bot-stderr---desk1.log"))
        );
        let own = prog(&c, "own");
        assert_eq!(own.directory, Some(PathBuf::from("/")));
        assert_eq!(own.processes[0].stdout_log.path, None);
        assert_eq!(own.processes[0].stderr_log.path, Some(d.join("own.err")));
        assert_eq!(c.identifier(), "desk1");

        // Without childlogdir, AUTO is vigil's default; with nodaemon, directory is unused.
        let (d2, c2) = ok("[supervisord]\nnodaemon=true\ndirectory=/\n[program:x]\ncommand=x\n");
        let x = prog(&c2, "x");
        assert_eq!(x.directory, None);
        assert_eq!(
            x.processes[0].stdout_log.path,
            Some(d2.path().join("vigil-data/logs/x.out.log"))
        );
        assert_eq!(c2.vigil.data_dir, d2.path().join("vigil-data"));
        assert_eq!(c2.vigil.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(c2.identifier(), "supervisor");
        assert_eq!(
            c2.vigil.reload,
            super::super::ReloadMode::Restart,
            "supervisord's reload restarts everything"
        );
    }

    #[test]
    fn http_servers_and_credentials() {
        let (d, c) = ok(concat!(
            "[supervisord]\n",
            "[unix_http_server]\n",
            "file=%(here)s/run/supervisor.sock\n",
            "chmod=0770\n",
            "[inet_http_server]\n",
            "port=*:9001\n",
            "username=user\n",
            "password={SHA}A94A8FE5CCB19BA61C4C0873D391E987982FBBD3\n",
        ));
        let rpc = c.rpc.as_ref().expect("rpc");
        let unix = rpc.unix.as_ref().expect("unix");
        assert_eq!(unix.path, d.path().join("run/supervisor.sock"));
        assert_eq!(unix.chmod, 0o770);
        assert_eq!(unix.auth, None);
        let inet = rpc.inet.as_ref().expect("inet");
        assert_eq!(inet.addr.to_string(), "0.0.0.0:9001");
        let auth = inet.auth.as_ref().expect("auth");
        assert_eq!(
            auth,
            &Credentials {
                username: "user".into(),
                password: Password::Sha1Hex("a94a8fe5ccb19ba61c4c0873d391e987982fbbd3".into())
            }
        );
        assert!(auth.verify("user", "test"));
        assert!(!auth.verify("user", "Test"));
        assert!(!auth.verify("other", "test"));
        let dbg = format!("{auth:?}");
        assert!(!dbg.contains("a94a8"), "{dbg}");

        let (_d, c) = ok(
            "[supervisord]\n[inet_http_server]\nport=localhost:9002\nusername=u\npassword=p%%ss ; c\n",
        );
        let inet = c.rpc.and_then(|r| r.inet).expect("inet");
        assert_eq!(inet.addr.to_string(), "127.0.0.1:9002");
        let auth = inet.auth.expect("auth");
        assert_eq!(auth.password, Password::Plain("p%ss".into()));
        assert!(auth.verify("u", "p%ss"));
        assert_eq!(
            format!("{:?}", auth.password),
            "Password::Plain(<redacted>)"
        );

        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "[inet_http_server]\n",
                "username=u\n",
                "[unix_http_server]\n",
                "password={SHA}abc\n",
                "username=u\n",
                "chmod=999\n",
            )),
            vec![
                "2: [inet_http_server]: incomplete authentication: set both username and password, or neither",
                "2: [inet_http_server] port: required option is missing",
                "4: [unix_http_server] file: required option is missing",
                "5: [unix_http_server] password: a {SHA} password must be followed by the 40 hex digits of the SHA-1 of the password",
                "7: [unix_http_server] chmod: expected an octal mode such as 0700, found \"999\"",
            ]
        );
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            sha1_hex(&[b'a'; 1000]),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    // ------------------------------------------------------------------ groups

    #[test]
    fn group_membership() {
        let (_d, c) = ok(concat!(
            "[supervisord]\n",
            "[program:feed]\ncommand=f\n",
            "[program:bot]\ncommand=b\n",
            "[program:solo]\ncommand=s\n",
            "[group:trading]\nprograms=bot, feed,\npriority=5\n",
        ));
        assert_eq!(
            c.groups,
            vec![GroupConfig {
                name: "trading".into(),
                programs: vec!["bot".into(), "feed".into()],
                priority: 5
            }]
        );
        assert_eq!(c.group_of("feed"), "trading");
        assert_eq!(c.group_of("solo"), "solo");
        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "[program:bot]\ncommand=b\n",
                "[program:g2]\ncommand=x\n",
                "[group:g1]\nprograms=bto\n",
                "[group:g2]\nprograms=bot\n",
                "[group:g3]\nprograms=bot,\n",
                "[group:bad name]\nprograms=,\n",
            )),
            vec![
                "7: [group:g1] programs: no program \"bto\", did you mean \"bot\"?",
                "8: [group:g2]: group name \"g2\" is also the name of program \"g2\", which is not in this group",
                "11: [group:g3] programs: program \"bot\" is already in group \"g2\" (a program belongs to at most one group)",
                "12: [group:bad name]: invalid group name: contains whitespace",
                "13: [group:bad name] programs: expected at least one program name",
            ]
        );
    }

    // ------------------------------------------------------------------ event listeners

    #[test]
    fn eventlisteners() {
        let (_d, c) = ok(concat!(
            "[supervisord]\n",
            "[eventlistener:crash]\n",
            "command=crashmail -a\n",
            "events=process_state_exited, TICK_60,PROCESS_STATE_EXITED,vigil_trading_state\n",
            "[eventlistener:pool]\n",
            "command=listener\n",
            "process_name=%(program_name)s_%(process_num)d\n",
            "numprocs=2\n",
            "events=EVENT\n",
            "buffer_size=100\n",
            "priority=5\n",
            "result_handler=supervisor.dispatchers:default_handler\n",
            "stderr_logfile=NONE\n",
        ));
        let crash = listener(&c, "crash");
        assert_eq!(
            crash.events,
            ["PROCESS_STATE_EXITED", "TICK_60", "VIGIL_TRADING_STATE"]
        );
        assert_eq!(crash.buffer_size, 10);
        assert_eq!(crash.priority, -1);
        assert_eq!(crash.program.priority, 999);
        assert_eq!(crash.program.processes[0].argv, ["crashmail", "-a"]);
        let pool = listener(&c, "pool");
        assert_eq!(pool.events, ["EVENT"]);
        assert_eq!(pool.buffer_size, 100);
        assert_eq!((pool.priority, pool.program.priority), (5, 5));
        let names: Vec<&str> = pool
            .program
            .processes
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["pool_0", "pool_1"]);
        assert!(c.programs.is_empty());

        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "[program:x]\ncommand=x\n",
                "[eventlistener:x]\n",
                "command=l\n",
                "events=PROCESS_STAT,,EVENT_BUFFER_OVERFLOW\n",
                "redirect_stderr=true\n",
                "buffer_size=0\n",
                "depends_on=x\n",
                "[eventlistener:noevents]\n",
                "command=l\n",
                "[eventlistener:empty]\n",
                "command=l\n",
                "events=,\n",
            )),
            vec![
                "4: [eventlistener:x]: \"x\" is also defined by [program:x]",
                "4: [eventlistener:x]: the event listener pool \"x\" is a process group, and program \"x\" has the same name",
                "6: [eventlistener:x] events: unknown event type PROCESS_STAT, did you mean PROCESS_STATE?",
                "6: [eventlistener:x] events: unknown event type EVENT_BUFFER_OVERFLOW (supervisord removed it in 3.0; vigil never drops events)",
                "7: [eventlistener:x] redirect_stderr: cannot be true for an event listener: stdout is the protocol channel (as in supervisord)",
                "8: [eventlistener:x] buffer_size: expected a positive integer, found \"0\"",
                "9: [eventlistener:x] depends_on: not available for event listeners (a listener's stdout is the protocol channel)",
                "10: [eventlistener:noevents] events: required option is missing",
                "14: [eventlistener:empty] events: expected at least one event type name",
            ]
        );
    }

    // ------------------------------------------------------------------ vigil extensions

    #[test]
    fn extensions_backoff_readiness_depends_on() {
        let (_d, c) = ok(concat!(
            "[supervisord]\n",
            "[program:db]\n",
            "command=db\n",
            "ready_tcp=127.0.0.1:%(ENV_PORT_BASE)s80\n",
            "[program:api]\n",
            "command=api\n",
            "ready_http=http://127.0.0.1:8080/health\n",
            "ready_interval=0.5\n",
            "ready_timeout=2\n",
            "ready_retries=10\n",
            "depends_on=db\n",
            "backoff=exponential\n",
            "backoff_max=30\n",
            "critical=true\n",
            "events=stdout\n",
            "[program:bot]\n",
            "command=bot\n",
            "ready_command=/bin/check --name '%(program_name)s x'\n",
            "depends_on=api, db\n",
        ));
        let db = prog(&c, "db");
        let r = db.ready.as_ref().expect("ready");
        assert_eq!(
            r.probe,
            ReadinessProbe::Tcp {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(
            (r.interval_ms, r.timeout_ms, r.retries),
            (
                DEFAULT_READY_INTERVAL_MS,
                DEFAULT_READY_TIMEOUT_MS,
                DEFAULT_READY_RETRIES
            )
        );
        let api = prog(&c, "api");
        let r = api.ready.as_ref().expect("ready");
        assert_eq!(
            r.probe,
            ReadinessProbe::Http {
                url: "http://127.0.0.1:8080/health".into()
            }
        );
        assert_eq!((r.interval_ms, r.timeout_ms, r.retries), (500, 2000, 10));
        assert_eq!(api.depends_on, ["db"]);
        assert_eq!(
            api.backoff,
            BackoffPolicy {
                step_ms: 1000,
                exponential: true,
                max_ms: Some(30_000)
            }
        );
        assert!(api.critical && api.events_from_stdout);
        let bot = prog(&c, "bot");
        assert_eq!(
            bot.ready.as_ref().map(|r| r.probe.clone()),
            Some(ReadinessProbe::Command {
                argv: vec!["/bin/check".into(), "--name".into(), "bot x".into()]
            })
        );
        assert_eq!(bot.depends_on, ["api", "db"]);

        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "[program:a]\ncommand=a\ndepends_on=b, c, zz, a, b\nready_tcp=nohost\nready_http=http://x/\n",
                "[program:b]\ncommand=b\ndepends_on=c\nready_interval=0\n",
                "[program:c]\ncommand=c\ndepends_on=a\nready_retries=3\nready_command='\n",
            )),
            vec![
                "4: [program:a] depends_on: no program \"zz\" (each must be a program)",
                "4: [program:a] depends_on: program \"a\" cannot depend on itself",
                "4: [program:a] depends_on: program \"b\" is listed twice",
                "4: [program:a] depends_on: dependency cycle: a -> b -> c -> a",
                "5: [program:a] ready_tcp: expected HOST:PORT such as \"127.0.0.1:8080\", found \"nohost\"",
                "6: [program:a] ready_http: only one readiness probe may be set, and ready_tcp is set already",
                "10: [program:b] ready_interval: expected a positive number of seconds (at most 86400, e.g. 1 or 0.5), found \"0\"",
                "15: [program:c] ready_command: cannot split the command line: unbalanced quotes or a trailing backslash",
            ]
        );
        assert_eq!(
            errs("[supervisord]\n[program:a]\ncommand=a\nready_timeout=3\n"),
            vec![
                "4: [program:a] ready_timeout: ready_timeout needs a readiness probe: ready_command, ready_http or ready_tcp"
            ]
        );
    }

    #[test]
    fn process_names_and_numprocs() {
        assert_eq!(
            errs(concat!(
                "[supervisord]\n",
                "[program:feed]\ncommand=f\nnumprocs=2\n",
                "[program:twin]\ncommand=t\nprocess_name=solo\n",
                "[program:solo]\ncommand=s\n",
                "[program:bad/name]\ncommand=x\n",
            )),
            vec![
                "2: [program:feed] process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
                "8: [program:solo] process_name: process name \"solo\" is also used by program \"twin\"",
                "10: [program:bad/name]: invalid program name: contains '/'",
            ]
        );
    }

    // ------------------------------------------------------------------ vigil convert

    /// Convert, check there is no warning, load the TOML (written beside the original) and
    /// compare.
    fn round_trip(dir: &Path, text: &str) -> (Config, String) {
        let path = write(dir, "supervisord.conf", text);
        let env = test_env();
        let original = match load_with(&path, text, &env) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let converted = match convert_with(&path, text, &env) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(
            converted.warnings.is_empty(),
            "{:?}\n{}",
            converted.warnings,
            converted.toml
        );
        // Saved somewhere else entirely: nothing in it may depend on its location.
        let elsewhere = tmp();
        let toml_path = write(elsewhere.path(), "vigil.toml", &converted.toml);
        let mut back = match load::load_with(&toml_path, &converted.toml, &env) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{}", converted.toml),
        };
        assert_eq!(back.source, toml_path);
        back.source = original.source.clone();
        assert_eq!(back, original, "\n{}", converted.toml);
        (original, converted.toml)
    }

    #[test]
    fn convert_round_trips_a_rich_config() {
        let dir = tmp();
        let d = dir.path();
        std::fs::create_dir(d.join("work")).expect("mkdir");
        write(
            d,
            "conf.d/listeners.conf",
            concat!(
                "[eventlistener:crashmail]\n",
                "command=crashmail -a -m ops@example.com -s \"%(here)s/sendmail\"\n",
                "events=PROCESS_STATE_EXITED\n",
                "stdout_logfile=logs/crashmail.log\n",
                "[eventlistener:memmon]\n",
                "command=memmon -p bot=200MB\n",
                "events=TICK_60\n",
                "buffer_size=50\n",
                "priority=3\n",
            ),
        );
        let text = concat!(
            "; a trading desk\n",
            "[unix_http_server]\n",
            "file=%(here)s/supervisor.sock ; socket\n",
            "chmod=0770\n",
            "username=ops\n",
            "password=plain%%text\n",
            "[inet_http_server]\n",
            "port=127.0.0.1:9001\n",
            "username=user\n",
            "password={SHA}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\n",
            "[supervisord]\n",
            "logfile=%(here)s/supervisord.log\n",
            "logfile_maxbytes=5MB\n",
            "logfile_backups=2\n",
            "loglevel=warn\n",
            "pidfile=%(here)s/supervisord.pid\n",
            "nodaemon=false\n",
            "minfds=16\n",
            "minprocs=1\n",
            "childlogdir=%(here)s/childlogs\n",
            "directory=%(here)s/work\n",
            "identifier=desk-%(ENV_VIGIL_TEST_TOKEN)s\n",
            "environment=MODE=\"paper\",QUOTE=\"a,b\",PCT=\"50%%\"\n",
            "vigil_data_dir=%(here)s/state\n",
            "vigil_listen=127.0.0.1:7072\n",
            "[rpcinterface:supervisor]\n",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
            "[supervisorctl]\n",
            "serverurl=unix://%(here)s/supervisor.sock\n",
            "[program:feed]\n",
            "command=/usr/bin/python3 -u feed.py --shard %(process_num)d --mode %(ENV_MODE)s --port %(ENV_PORT_BASE)s%(process_num)02d\n",
            "process_name=%(program_name)s_%(process_num)02d\n",
            "numprocs=3\n",
            "numprocs_start=1\n",
            "priority=100\n",
            "environment=SHARDS=\"%(numprocs)d\",HOME_DIR=\"%(ENV_HOME)s\"\n",
            "stdout_logfile=logs/%(program_name)s_%(process_num)02d.log\n",
            "stdout_logfile_maxbytes=1MB\n",
            "stdout_logfile_backups=3\n",
            "redirect_stderr=true\n",
            "stopasgroup=true\n",
            "stdout_events_enabled=true\n",
            "ready_tcp=127.0.0.1:%(ENV_PORT_BASE)s80\n",
            "[program:bot]\n",
            "command=sh -c 'exec ./bot --mode=%(ENV_MODE)s; echo done' ; inline comment\n",
            "directory=/\n",
            "autostart=false\n",
            "autorestart=true\n",
            "startsecs=0\n",
            "startretries=7\n",
            "exitcodes=0,2\n",
            "stopsignal=INT\n",
            "stopwaitsecs=30\n",
            "killasgroup=true\n",
            "stdout_capture_maxbytes=1MB\n",
            "stderr_logfile=NONE\n",
            "stderr_capture_maxbytes=64KB\n",
            "stderr_events_enabled=true\n",
            "backoff=exponential\n",
            "backoff_max=60\n",
            "critical=true\n",
            "events=stdout\n",
            "ready_command=/bin/sh -c 'test -e /tmp/%(program_name)s.ready' \"x y\"\n",
            "ready_interval=0.25\n",
            "ready_timeout=3\n",
            "ready_retries=9\n",
            "depends_on=feed\n",
            "[program:report]\n",
            "command=/bin/report 100%%\n",
            "stdout_logfile=AUTO\n",
            "priority=-5\n",
            "ready_http=http://127.0.0.1:8080/ready\n",
            "[group:trading]\n",
            "programs=feed,bot\n",
            "priority=50\n",
            "[include]\n",
            "files=conf.d/*.conf\n",
        );
        let (c, toml) = round_trip(d, text);
        assert_eq!(c.programs.len(), 3);
        assert_eq!(c.eventlisteners.len(), 2);
        assert!(toml.contains("[eventlistener.memmon]"), "{toml}");
        assert!(toml.contains("password = \"plain%text\""), "{toml}");
        assert_eq!(c.identifier(), "desk-s3cret");
        let bot = prog(&c, "bot");
        assert_eq!(
            bot.processes[0].argv,
            ["sh", "-c", "exec ./bot --mode=paper; echo done"]
        );
        assert_eq!(bot.environment.get("PCT").map(String::as_str), Some("50%"));
        let crash = listener(&c, "crashmail");
        assert_eq!(
            crash.program.processes[0].stdout_log.path,
            Some(d.join("conf.d/logs/crashmail.log")),
            "relative to the file that names it"
        );
        assert_eq!(
            crash.program.processes[0].argv[5],
            format!("{}/conf.d/sendmail", d.display())
        );
        let feed = prog(&c, "feed");
        assert_eq!(feed.directory, Some(d.join("work")));
        assert_eq!(
            feed.processes[2].argv.last().map(String::as_str),
            Some("8003")
        );
        assert_eq!(
            feed.environment.get("SHARDS").map(String::as_str),
            Some("3")
        );
        assert_eq!(
            prog(&c, "report").processes[0].stdout_log.path,
            Some(d.join("childlogs/report-stdout---desk-s3cret.log"))
        );
    }

    /// The configs of seed 003 (a trading desk's listeners; the pool with numprocs = 2 gets the
    /// process_name supervisord requires for it).
    #[test]
    fn convert_round_trips_the_seed_listener_configs() {
        let dir = tmp();
        let text = concat!(
            "[supervisord]\n",
            "nodaemon=true\n",
            "\n",
            "# Complete event monitoring for trading system\n",
            "[eventlistener:critical_failure_monitor]\n",
            "command = python /app/monitoring/failure_monitor.py\n",
            "events = PROCESS_STATE_FATAL,PROCESS_STATE_EXITED\n",
            "process_name = %(program_name)s_%(process_num)d\n",
            "numprocs = 2\n",
            "autostart = true\n",
            "autorestart = unexpected\n",
            "priority = 1\n",
            "\n",
            "[eventlistener:performance_monitor]\n",
            "command = python /app/monitoring/performance_monitor.py\n",
            "events = TICK_60\n",
            "numprocs = 1\n",
            "autostart = true\n",
            "autorestart = unexpected\n",
            "\n",
            "[eventlistener:strategy_communication]\n",
            "command = python /app/monitoring/comm_monitor.py\n",
            "events = PROCESS_COMMUNICATION\n",
            "numprocs = 1\n",
            "\n",
            "[eventlistener:heartbeat_monitor]\n",
            "command = python /app/monitoring/heartbeat_monitor.py\n",
            "events = TICK_5\n",
            "buffer_size = 100\n",
            "\n",
            "[eventlistener:startup_monitor]\n",
            "command = python /app/monitoring/startup_monitor.py\n",
            "events = PROCESS_STATE_RUNNING,PROCESS_STATE_STARTING\n",
            "\n",
            "[program:genetic_engine]\n",
            "command = python /app/engine.py\n",
            "stdout_capture_maxbytes = 1MB\n",
        );
        let (c, _) = round_trip(dir.path(), text);
        assert_eq!(c.eventlisteners.len(), 5);
        assert_eq!(listener(&c, "critical_failure_monitor").priority, 1);
        // As written in the seed (numprocs = 2 without process_num): supervisord's error.
        let seed = text.replace("process_name = %(program_name)s_%(process_num)d\n", "");
        assert_eq!(
            errs(&seed),
            vec![
                "5: [eventlistener:critical_failure_monitor] process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\""
            ]
        );
    }

    #[test]
    fn convert_reports_errors_like_load() {
        let dir = tmp();
        let text = "[supervisord]\n[program:a]\nbogus=1\n";
        let path = write(dir.path(), "supervisord.conf", text);
        let e = match convert_with(&path, text, &test_env()) {
            Ok(_) => panic!("converted a bad file"),
            Err(e) => e,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "{p}:2: [program:a] command: required option is missing",
                p = path.display()
            )
        );
    }

    #[test]
    fn convert_reports_what_it_ignored() {
        let dir = tmp();
        let text = "[supervisord]\n[program:a]\ncommand=a\ndependent_startup=true\n";
        let path = write(dir.path(), "supervisord.conf", text);
        let c = convert_with(&path, text, &test_env()).expect("converts");
        assert_eq!(
            c.warnings,
            vec![format!(
                "{}:4:1: [program:a] dependent_startup: unknown option, ignored",
                path.display()
            )]
        );
        assert!(!c.toml.contains("dependent_startup"), "{}", c.toml);
        assert!(c.toml.contains("reload = \"restart\""), "{}", c.toml);
    }

    #[test]
    fn toml_quoting() {
        assert_eq!(q("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(k("bot-1_x"), "bot-1_x");
        assert_eq!(k("a.b"), "\"a.b\"");
        assert_eq!(secs(1500), "1.500");
        assert_eq!(secs(2000), "2");
    }

    // ------------------------------------------------------------------ tests/data/config/supervisord

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/supervisord")
    }

    /// Copy the sample directory to a temp dir (nothing is created in the source tree).
    fn copy_samples() -> TempDir {
        let dir = tmp();
        fn copy(from: &Path, to: &Path) {
            for e in std::fs::read_dir(from).expect("read_dir").flatten() {
                let p = e.path();
                let target = to.join(e.file_name());
                if p.is_dir() {
                    std::fs::create_dir_all(&target).expect("mkdir");
                    copy(&p, &target);
                } else {
                    std::fs::copy(&p, &target).expect("copy");
                }
            }
        }
        copy(&data_dir(), dir.path());
        dir
    }

    #[test]
    fn sample_files_match_readme() {
        let dir = copy_samples();
        let readme = std::fs::read_to_string(data_dir().join("README.md")).expect("README");
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
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
        let mut valid = 0;
        let mut bad = 0;
        for (file, want) in sections {
            let path = dir.path().join(&file);
            let text = std::fs::read_to_string(&path).expect("sample");
            match (load_with(&path, &text, &test_env()), want.as_slice()) {
                (Ok(_), [only]) if only == "ok" => {
                    valid += 1;
                    let converted = convert_with(&path, &text, &test_env()).expect("convert");
                    assert!(
                        converted.warnings.is_empty(),
                        "{file}: {:?}",
                        converted.warnings
                    );
                }
                (Ok(_), _) => panic!("{file} loaded without errors"),
                (Err(e), _) => {
                    let got: Vec<String> =
                        e.0.iter()
                            .map(|e| {
                                let rel = e.file.strip_prefix(dir.path()).unwrap_or(&e.file);
                                crate::config::ConfigError {
                                    file: rel.to_path_buf(),
                                    ..e.clone()
                                }
                                .to_string()
                            })
                            .collect();
                    assert_eq!(got, want, "{file}");
                    bad += 1;
                }
            }
        }
        assert!(
            valid >= 2 && bad >= 2,
            "README lists {valid} valid and {bad} bad files"
        );
    }
}
