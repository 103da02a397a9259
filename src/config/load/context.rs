//! The error sink ([`Ctx`]: every file read, every problem with its offset, located as
//! `FILE:LINE:COL`), the spanned TOML table being read ([`Sec`]) with its typed getters, and
//! the value parsers both dialects use.

use super::*;

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

/// The byte offsets at which the lines of `text` start (the first is 0): built once per file,
/// so that locating each of many problems is a binary search, not a scan from the start.
pub(crate) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// [`line_col`] with the file's [`line_starts`].
pub(crate) fn line_col_in(text: &str, starts: &[usize], offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while off > 0 && !text.is_char_boundary(off) {
        off -= 1;
    }
    // The lines starting at or before `off`; there is always the first.
    let line = starts.partition_point(|s| *s <= off).max(1);
    let line_start = starts.get(line - 1).copied().unwrap_or(0);
    let col = text.get(line_start..off).unwrap_or("").chars().count() + 1;
    (line, col)
}

/// What the expansions see of the world: vigil's environment and the host name.
#[derive(Clone)]
pub(crate) struct Env {
    pub vars: BTreeMap<String, String>,
    pub host_node_name: String,
}

impl Env {
    pub(crate) fn from_process() -> Env {
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
pub(crate) struct SrcFile {
    pub path: PathBuf,
    pub text: String,
    pub base: usize,
    /// Whether errors show a column (TOML) or only the line (INI).
    pub columns: bool,
    /// Where its lines start ([`line_starts`]).
    pub lines: Vec<usize>,
}

/// The error sink: every file read (for locations) and every problem found so far, with the
/// offset it was found at (for file order).
pub(crate) struct Ctx {
    pub files: Vec<SrcFile>,
    pub errors: Vec<(usize, ConfigError)>,
    /// What is ignored but reported (supervisord's INI dialect: unknown options and
    /// sections, which supervisord ignores and its plugins rely on); `--strict` makes them
    /// errors.
    pub warnings: Vec<(usize, ConfigError)>,
}

/// One table being validated: its dotted path and where its header is.
pub(crate) struct Sec<'a, 'i> {
    pub(crate) table: &'a DeTable<'i>,
    pub(crate) path: String,
    pub(crate) at: usize,
}

impl<'a, 'i> Sec<'a, 'i> {
    pub(crate) fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.path)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(k)
    }

    /// Where errors about `k` go: its value, else the header.
    pub(crate) fn anchor(&self, k: &str) -> usize {
        self.get(k).map_or(self.at, |v| v.span().start)
    }

    pub(crate) fn key_path(&self) -> KeyPath {
        KeyPath {
            prefix: self.path.clone(),
            sep: ".",
        }
    }
}

pub(crate) type Entry<'a, 'i> = (&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>);

/// A table's entries in file order (the parsed map is sorted by key).
pub(crate) fn entries<'a, 'i>(t: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut v: Vec<Entry<'a, 'i>> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// `string "abc"`, `integer 5`, `array`, … for "expected X, found Y".
pub(crate) fn found(v: &DeValue<'_>) -> String {
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
pub(crate) fn short_quoted(s: &str) -> String {
    if s.chars().count() > 60 {
        let short: String = s.chars().take(57).collect();
        format!("{:?}", short + "...")
    } else {
        format!("{s:?}")
    }
}

pub(crate) fn int_of(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`.
pub(crate) fn one_of(choices: &[&str]) -> String {
    let q: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match q.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", q.join(", ")),
    }
}

/// `p` made absolute against `here`, with `.` components dropped (`..` is kept: it may cross
/// a symlink).
pub(crate) fn resolve_clean(here: &Path, p: &str) -> PathBuf {
    resolve(here, Path::new(p)).components().collect()
}

/// Why a program, group or process name is invalid (supervisord's rule).
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
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
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
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
pub(crate) fn secs_to_ms(secs: f64) -> Option<u64> {
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
pub(crate) const SECS_EXPECTED: &str =
    "a positive number of seconds (at most 86400, e.g. 1 or 0.5)";

/// A listener's `events`: each a known type (case-insensitive), canonical, without duplicates.
/// Errors: the offending names with a suggestion each.
pub(crate) fn event_type(name: &str) -> Result<&'static str, String> {
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
pub(crate) fn parse_inet(s: &str) -> Result<SocketAddr, String> {
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
    if !io_allowed() {
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
pub(crate) fn parse_octal(s: &str) -> Option<u32> {
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

thread_local! {
    /// Set by [`without_io`] (fuzzing only): the loader then touches no filesystem, looks up
    /// no user and resolves no host name on this thread; every such check passes.
    static WITHOUT_IO: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with the loader's filesystem, user and host-name checks skipped on this thread
/// (they pass): the config parsers as pure functions of their text, for the fuzz targets
/// `ini_text` and `toml_text`. Never used by the daemon or the CLI.
pub(crate) fn without_io<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            WITHOUT_IO.with(|w| w.set(self.0));
        }
    }
    let _reset = Reset(WITHOUT_IO.with(|w| w.replace(true)));
    f()
}

/// Whether the loader may touch the world (false inside [`without_io`]).
pub(crate) fn io_allowed() -> bool {
    !WITHOUT_IO.with(std::cell::Cell::get)
}

/// Write a probe file into `dir` and remove it.
pub(crate) fn probe(dir: &Path) -> Result<(), String> {
    if !io_allowed() {
        return Ok(());
    }
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
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), String> {
    if !io_allowed() {
        return Ok(());
    }
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
pub(crate) fn existing_dir(d: &Path) -> Result<(), String> {
    if !io_allowed() {
        return Ok(());
    }
    match std::fs::metadata(d) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", d.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("directory {} does not exist", d.display()))
        }
        Err(e) => Err(format!("cannot access directory {}: {e}", d.display())),
    }
}

pub(crate) fn check_user(name: &str) -> Result<(), String> {
    if !io_allowed() {
        return Ok(());
    }
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
    pub(crate) fn new() -> Ctx {
        Ctx {
            files: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Register a file's text; returns the offset of its first byte.
    pub(crate) fn add_file(&mut self, path: PathBuf, text: String, columns: bool) -> usize {
        let base = self.files.last().map_or(0, |f| f.base + f.text.len() + 1);
        self.files.push(SrcFile {
            path,
            lines: line_starts(&text),
            text,
            base,
            columns,
        });
        base
    }

    /// The file holding `offset` and the offset within it.
    pub(crate) fn locate(&self, offset: usize) -> Option<(&SrcFile, usize)> {
        let f = self.files.iter().rev().find(|f| f.base <= offset)?;
        Some((f, offset - f.base))
    }

    /// The source text of a span (within one file).
    pub(crate) fn slice(&self, span: &Range<usize>) -> Option<&str> {
        let (f, start) = self.locate(span.start)?;
        f.text.get(start..start + span.len())
    }

    pub(crate) fn at(&mut self, offset: usize, key: impl Into<String>, message: impl Into<String>) {
        let e = self.located(offset, key.into(), message.into(), false);
        self.errors.push((offset, e));
    }

    /// A warning at `offset`: always with its column (`FILE:LINE:COL: key: message`).
    pub(crate) fn warn(
        &mut self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let e = self.located(offset, key.into(), message.into(), true);
        self.warnings.push((offset, e));
    }

    /// A problem at `offset`, with its column if the file shows columns (TOML) or `column`.
    pub(crate) fn located(
        &self,
        offset: usize,
        key: String,
        message: String,
        column: bool,
    ) -> ConfigError {
        let (file, line, col) = match self.locate(offset) {
            Some((f, local)) => {
                let (line, col) = line_col_in(&f.text, &f.lines, local);
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
    pub(crate) fn take_warnings(&mut self) -> Vec<ConfigError> {
        let mut w = std::mem::take(&mut self.warnings);
        w.sort_by_key(|(off, _)| *off);
        w.into_iter().map(|(_, e)| e).collect()
    }

    /// Offset order (file order, included files after the including one), duplicates (the
    /// same error met once per process) dropped.
    pub(crate) fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|(off, _)| *off);
        let errors: Vec<ConfigError> = self.errors.into_iter().map(|(_, e)| e).collect();
        let keep: Vec<bool> = {
            let mut seen = HashSet::with_capacity(errors.len());
            errors.iter().map(|e| seen.insert(e)).collect()
        };
        ConfigErrors(
            errors
                .into_iter()
                .zip(keep)
                .filter_map(|(e, k)| k.then_some(e))
                .collect(),
        )
    }

    pub(crate) fn type_error(&mut self, key: String, v: &Spanned<DeValue<'_>>, expected: &str) {
        self.at(
            v.span().start,
            key,
            format!("expected {expected}, found {}", found(v.get_ref())),
        );
    }

    pub(crate) fn missing(&mut self, sec: &Sec<'_, '_>, k: &str) {
        self.at(sec.at, sec.key(k), "required key is missing");
    }

    pub(crate) fn unknown_keys(&mut self, sec: &Sec<'_, '_>, known: &[&str]) {
        for (k, _) in entries(sec.table) {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            let message = if let Some(s) = did_you_mean(name, known) {
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
    pub(crate) fn table<'a, 'i>(
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

    pub(crate) fn get_str<'a>(
        &mut self,
        sec: &Sec<'a, '_>,
        k: &str,
    ) -> Option<(&'a str, Range<usize>)> {
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
    pub(crate) fn get_string(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<Str> {
        self.get_str(sec, k).map(|(s, span)| (s.to_string(), span))
    }

    /// An integer in `lo..=hi`; `what` describes the lower bound ("a non-negative integer").
    pub(crate) fn get_int(
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

    pub(crate) fn get_u32(
        &mut self,
        sec: &Sec<'_, '_>,
        k: &str,
        lo: u32,
        hi: u32,
        what: &str,
    ) -> Option<u32> {
        self.get_int(sec, k, lo.into(), hi.into(), what)
            .and_then(|n| u32::try_from(n).ok())
    }

    pub(crate) fn get_i32(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<i32> {
        self.get_int(sec, k, i32::MIN.into(), i32::MAX.into(), "an integer")
            .and_then(|n| i32::try_from(n).ok())
    }

    /// A string among `choices` (case-insensitive), returned in its canonical spelling.
    pub(crate) fn get_choice(
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
    pub(crate) fn get_bytes(&mut self, sec: &Sec<'_, '_>, k: &str) -> Option<u64> {
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

    /// An array of strings (each located), or a type error.
    pub(crate) fn get_str_list(&mut self, sec: &Sec<'_, '_>, k: &str, what: &str) -> Vec<Str> {
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
    pub(crate) fn expand(
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
    pub(crate) fn offset_in_string(&self, span: &Range<usize>, decoded: &str, idx: usize) -> usize {
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
pub(crate) type Str = (String, Range<usize>);

/// How error keys are spelled: `program.bot.startsecs` (TOML) or `[program:bot] startsecs`
/// (INI).
#[derive(Debug, Clone)]
pub(crate) struct KeyPath {
    pub prefix: String,
    pub sep: &'static str,
}

impl KeyPath {
    pub(crate) fn key(&self, k: &str) -> String {
        format!("{}{}{k}", self.prefix, self.sep)
    }
}
