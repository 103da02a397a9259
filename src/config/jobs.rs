//! `[jobs]` and `[jobs.types.NAME]`: background jobs (issue 10, seed 004).
//!
//! The seed's built-in types (`backtest` 1.0 core / 0.5 GB, `model_training` 2.0 / 1.5,
//! `prediction` 0.5 / 0.3) always exist; a `[jobs.types.NAME]` table overrides or adds one. A
//! type may carry an argv template (`command = ["python3", "bt.py", "--symbol", "{symbol}"]`)
//! whose `{name}` placeholders are typed parameters (`[jobs.types.NAME.params.P]` with
//! `pattern` (a regex the whole value must match) or `enum`, `default`, `max_len`), so that a
//! non-admin submits `{"type", "params"}` and never a command line.
//!
//! Every error is located (`FILE:LINE:COL: jobs.types.x.cpu_cores: …`). Reference:
//! docs/config.md.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{ConfigError, ConfigErrors, line_col};

/// One parameter of a job type's argv template.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    /// The value must match this (anchored) regex.
    pub pattern: Option<regex::Regex>,
    pub pattern_src: Option<String>,
    /// Or be one of these.
    pub choices: Option<Vec<String>>,
    pub default: Option<String>,
    pub max_len: usize,
}

impl PartialEq for ParamSpec {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.pattern_src == o.pattern_src
            && self.choices == o.choices
            && self.default == o.default
            && self.max_len == o.max_len
    }
}

/// A job type.
#[derive(Debug, Clone, PartialEq)]
pub struct JobType {
    pub name: String,
    pub cpu_cores: f64,
    pub ram_gb: f64,
    pub priority: i32,
    /// Seconds; 0 = none.
    pub timeout_s: f64,
    /// SIGTERM → this long → SIGKILL on cancel/timeout.
    pub cancel_grace_s: f64,
    /// May be frozen while the bots need the host.
    pub pausable: bool,
    /// The argv template; `None`: raw commands only (admins).
    pub command: Option<Vec<String>>,
    pub params: Vec<ParamSpec>,
}

impl JobType {
    fn builtin(name: &str, cpu: f64, ram: f64) -> JobType {
        JobType {
            name: name.to_string(),
            cpu_cores: cpu,
            ram_gb: ram,
            priority: 0,
            timeout_s: 0.0,
            cancel_grace_s: 10.0,
            pausable: true,
            command: None,
            params: Vec::new(),
        }
    }

    /// Fill the argv template from `params`. `Err((field, reason))` names `params.KEY`.
    pub fn expand(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, (String, String)> {
        let Some(template) = &self.command else {
            return Err((
                "type".into(),
                format!(
                    "job type {:?} has no command template; submit a raw command (admins only)",
                    self.name
                ),
            ));
        };
        for k in params.keys() {
            if !self.params.iter().any(|p| &p.name == k) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err((
                    format!("params.{k}"),
                    format!(
                        "unknown parameter of job type {:?}; known: {}",
                        self.name,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        let mut values = BTreeMap::new();
        for p in &self.params {
            let v = match params.get(&p.name).or(p.default.as_ref()) {
                Some(v) => v,
                None => {
                    return Err((
                        format!("params.{}", p.name),
                        "required parameter is missing".into(),
                    ));
                }
            };
            if v.chars().count() > p.max_len {
                return Err((
                    format!("params.{}", p.name),
                    format!("longer than {} characters", p.max_len),
                ));
            }
            if let Some(re) = &p.pattern
                && !re.is_match(v)
            {
                return Err((
                    format!("params.{}", p.name),
                    format!(
                        "{v:?} does not match the pattern {}",
                        p.pattern_src.as_deref().unwrap_or("")
                    ),
                ));
            }
            if let Some(c) = &p.choices
                && !c.contains(v)
            {
                return Err((
                    format!("params.{}", p.name),
                    format!("{v:?} is not one of {}", c.join(", ")),
                ));
            }
            values.insert(p.name.as_str(), v.as_str());
        }
        Ok(template
            .iter()
            .map(|arg| substitute(arg, &values))
            .collect())
    }
}

/// Replace each `{name}` by its value (`{{`/`}}` are literal braces). Every placeholder was
/// checked at load to name a parameter.
fn substitute(arg: &str, values: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let Some(stripped) = tail.strip_prefix('{')
            && let Some(end) = stripped.find('}')
        {
            let name = &stripped[..end];
            out.push_str(values.get(name).copied().unwrap_or(""));
            rest = &stripped[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn placeholders(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix("{{") {
            rest = r;
            continue;
        }
        match tail[1..].find('}') {
            Some(end) => {
                out.push(tail[1..1 + end].to_string());
                rest = &tail[end + 2..];
            }
            None => break,
        }
    }
    out
}

/// `[jobs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// Relaxed admission (5 % buffer, 50 % consumption factor). Also switched on by
    /// `TRADING_BOT_DEV_MODE=true` or `VIGIL_DEV_MODE=true` in vigil's environment.
    pub dev_mode: bool,
    /// Overrides of the mode's buffer and consumption factor (fractions).
    pub buffer: Option<f64>,
    pub consumption_factor: Option<f64>,
    /// Check the measured host reading besides the ledger (default true).
    pub check_measured: bool,
    /// Capacity overrides (default: the host's cores and MemTotal).
    pub cpu_cores: Option<f64>,
    pub ram_gb: Option<f64>,
    /// The memory limit is `ram_gb × memory_headroom` (default 1.5).
    pub memory_headroom: f64,
    pub aging_step_s: f64,
    pub aging_cap: i64,
    pub max_wait_s: f64,
    /// Finished jobs kept (the newest this many; 0 = all).
    pub history_max: u64,
    /// Per job and stream (stdout, stderr): output beyond this is dropped with a note.
    pub max_output_bytes: u64,
    /// Descriptions longer than this are refused (characters).
    pub max_description: usize,
    /// Pause pausable jobs when host CPU stays above this (percent) for `pause_cpu_sustain_s`.
    pub pause_cpu_pct: Option<f64>,
    pub pause_cpu_sustain_s: f64,
    /// Checks that pause jobs at warn/critical; `None`: every `cycles` check.
    pub pause_on_checks: Option<Vec<String>>,
    /// `cgroups = "none"`: process groups only, memory sampled from /proc (default "auto":
    /// a cgroup per job where the host allows).
    pub no_cgroups: bool,
    /// Job types by name (built-ins first, then the file's, in file order).
    pub types: Vec<JobType>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            dev_mode: false,
            buffer: None,
            consumption_factor: None,
            check_measured: true,
            cpu_cores: None,
            ram_gb: None,
            memory_headroom: 1.5,
            aging_step_s: 60.0,
            aging_cap: 10,
            max_wait_s: 600.0,
            history_max: 10_000,
            max_output_bytes: 16 * 1024 * 1024,
            max_description: 1000,
            pause_cpu_pct: None,
            pause_cpu_sustain_s: 10.0,
            pause_on_checks: None,
            no_cgroups: false,
            types: vec![
                JobType::builtin("backtest", 1.0, 0.5),
                JobType::builtin("model_training", 2.0, 1.5),
                JobType::builtin("prediction", 0.5, 0.3),
            ],
        }
    }
}

impl JobsConfig {
    pub fn job_type(&self, name: &str) -> Option<&JobType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Dev mode from the config or the environment (`TRADING_BOT_DEV_MODE`, `VIGIL_DEV_MODE`).
    pub fn dev_mode_with_env(&self, env: impl Fn(&str) -> Option<String>) -> bool {
        self.dev_mode
            || ["TRADING_BOT_DEV_MODE", "VIGIL_DEV_MODE"]
                .iter()
                .any(|k| env(k).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"))
    }

    /// The admission policy for the mode, with the file's overrides.
    pub fn policy(&self, dev: bool) -> vigil_core::jobs::Policy {
        let mut p = vigil_core::jobs::Policy::for_mode(dev);
        if let Some(b) = self.buffer {
            p.buffer = b;
        }
        if let Some(c) = self.consumption_factor {
            p.consumption_factor = c;
        }
        p.check_measured = self.check_measured;
        p
    }

    pub fn order(&self) -> vigil_core::jobs::queue::Order {
        vigil_core::jobs::queue::Order {
            aging_step_s: self.aging_step_s,
            aging_cap: self.aging_cap,
            max_wait_s: self.max_wait_s,
        }
    }
}

struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Cx<'_> {
    fn err(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(ConfigError {
            file: self.path.to_path_buf(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn num(&mut self, key: &str, v: &Spanned<DeValue<'_>>, min: f64, max: f64) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n >= min && n <= max => Some(n),
            Some(n) => {
                self.err(
                    v.span().start,
                    key,
                    format!("expected a number from {min} to {max}, found {n}"),
                );
                None
            }
            None => {
                self.err(v.span().start, key, "expected a number");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.err(v.span().start, key, "expected true or false");
                None
            }
        }
    }

    fn string(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.err(v.span().start, key, "expected a string");
                None
            }
        }
    }

    fn strings(&mut self, key: &str, v: &Spanned<DeValue<'_>>) -> Option<Vec<String>> {
        match v.get_ref() {
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(s.to_string()),
                        _ => {
                            self.err(item.span().start, key, "expected an array of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.err(v.span().start, key, "expected an array of strings");
                None
            }
        }
    }

    fn table<'a, 'i>(&mut self, key: &str, v: &'a Spanned<DeValue<'i>>) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.err(v.span().start, key, "expected a table");
                None
            }
        }
    }

    fn unknown(&mut self, key: &str, at: usize, known: &[&str]) {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        let msg = match crate::config::suggest(leaf, known) {
            Some(s) => format!("unknown key, did you mean \"{s}\"?"),
            None => format!("unknown key; known keys: {}", known.join(", ")),
        };
        self.err(at, key, msg);
    }
}

const JOBS_KEYS: &[&str] = &[
    "dev_mode",
    "buffer_pct",
    "consumption_factor_pct",
    "check_measured",
    "cpu_cores",
    "ram_gb",
    "memory_headroom",
    "aging_step_s",
    "aging_cap",
    "max_wait_s",
    "history_max",
    "max_output_bytes",
    "max_description",
    "pause_cpu_pct",
    "pause_cpu_sustain_s",
    "pause_on_checks",
    "cgroups",
    "types",
];

const TYPE_KEYS: &[&str] = &[
    "cpu_cores",
    "ram_gb",
    "priority",
    "timeout_s",
    "cancel_grace_s",
    "pausable",
    "command",
    "params",
];

const PARAM_KEYS: &[&str] = &["pattern", "enum", "default", "max_len"];

/// Parse `[jobs]` from the config file's text (a supervisord `.conf`/`.ini` has none: the
/// defaults). Syntax errors are the main loader's to report.
pub fn parse(path: &Path, text: &str) -> Result<JobsConfig, ConfigErrors> {
    if path.extension().is_some_and(|e| e == "conf" || e == "ini") {
        return Ok(JobsConfig::default());
    }
    let Ok(doc) = DeTable::parse(text) else {
        return Ok(JobsConfig::default());
    };
    parse_value(path, text, doc.get_ref().get("jobs"))
}

/// Parse the `[jobs]` value `v` of the already parsed `text` (the main loader's tree, so the
/// file is parsed once); `None`: the defaults.
pub(super) fn parse_value(
    path: &Path,
    text: &str,
    v: Option<&Spanned<DeValue<'_>>>,
) -> Result<JobsConfig, ConfigErrors> {
    let mut out = JobsConfig::default();
    let mut cx = Cx {
        path,
        text,
        errors: Vec::new(),
    };
    if let Some(v) = v
        && let Some(t) = cx.table("jobs", v)
    {
        parse_jobs(&mut cx, t, &mut out);
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(cx.errors))
    }
}

fn parse_jobs(cx: &mut Cx<'_>, t: &DeTable<'_>, out: &mut JobsConfig) {
    for (k, v) in t.iter() {
        let name: &str = k.get_ref();
        let key = format!("jobs.{name}");
        match name {
            "dev_mode" => out.dev_mode = cx.boolean(&key, v).unwrap_or(out.dev_mode),
            "buffer_pct" => out.buffer = cx.num(&key, v, 0.0, 90.0).map(|p| p / 100.0),
            "consumption_factor_pct" => {
                out.consumption_factor = cx.num(&key, v, 1.0, 100.0).map(|p| p / 100.0)
            }
            "check_measured" => {
                out.check_measured = cx.boolean(&key, v).unwrap_or(out.check_measured)
            }
            "cpu_cores" => out.cpu_cores = cx.num(&key, v, 0.01, 1e6),
            "ram_gb" => out.ram_gb = cx.num(&key, v, 0.001, 1e9),
            "memory_headroom" => {
                out.memory_headroom = cx.num(&key, v, 1.0, 100.0).unwrap_or(out.memory_headroom)
            }
            "aging_step_s" => {
                out.aging_step_s = cx.num(&key, v, 0.0, 1e9).unwrap_or(out.aging_step_s)
            }
            "aging_cap" => {
                out.aging_cap = cx
                    .num(&key, v, 0.0, 1e6)
                    .map_or(out.aging_cap, |n| n as i64)
            }
            "max_wait_s" => out.max_wait_s = cx.num(&key, v, 0.0, 1e9).unwrap_or(out.max_wait_s),
            "history_max" => {
                out.history_max = cx
                    .num(&key, v, 0.0, 1e12)
                    .map_or(out.history_max, |n| n as u64)
            }
            "max_output_bytes" => {
                out.max_output_bytes = cx
                    .num(&key, v, 1024.0, 1e13)
                    .map_or(out.max_output_bytes, |n| n as u64)
            }
            "max_description" => {
                out.max_description = cx
                    .num(&key, v, 1.0, 1e6)
                    .map_or(out.max_description, |n| n as usize)
            }
            "pause_cpu_pct" => out.pause_cpu_pct = cx.num(&key, v, 1.0, 100.0),
            "pause_cpu_sustain_s" => {
                out.pause_cpu_sustain_s =
                    cx.num(&key, v, 0.0, 1e6).unwrap_or(out.pause_cpu_sustain_s)
            }
            "pause_on_checks" => out.pause_on_checks = cx.strings(&key, v),
            "cgroups" => match cx.string(&key, v).as_deref() {
                Some("auto") => out.no_cgroups = false,
                Some("none") => out.no_cgroups = true,
                Some(other) => cx.err(
                    v.span().start,
                    &key,
                    format!("expected \"auto\" or \"none\", found {other:?}"),
                ),
                None => {}
            },
            "types" => {
                if let Some(types) = cx.table(&key, v) {
                    let mut named: Vec<_> = types.iter().collect();
                    named.sort_by_key(|(k, _)| k.span().start);
                    for (tk, tv) in named {
                        parse_type(cx, tk.get_ref(), tv, out);
                    }
                }
            }
            _ => cx.unknown(&key, k.span().start, JOBS_KEYS),
        }
    }
}

fn valid_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_type(cx: &mut Cx<'_>, name: &str, v: &Spanned<DeValue<'_>>, out: &mut JobsConfig) {
    let base = format!("jobs.types.{name}");
    let Some(t) = cx.table(&base, v) else { return };
    if !valid_type_name(name) {
        cx.err(
            v.span().start,
            &base,
            "a job type name is 1–64 characters of letters, digits, _ and -",
        );
        return;
    }
    let mut jt = out
        .job_type(name)
        .cloned()
        .unwrap_or_else(|| JobType::builtin(name, 1.0, 0.5));
    let mut command_at = v.span().start;
    for (k, fv) in t.iter() {
        let key_name: &str = k.get_ref();
        let key = format!("{base}.{key_name}");
        match key_name {
            "cpu_cores" => jt.cpu_cores = cx.num(&key, fv, 0.0, 1e6).unwrap_or(jt.cpu_cores),
            "ram_gb" => jt.ram_gb = cx.num(&key, fv, 0.0, 1e9).unwrap_or(jt.ram_gb),
            "priority" => {
                jt.priority = cx
                    .num(&key, fv, -1_000_000.0, 1_000_000.0)
                    .map_or(jt.priority, |n| n as i32)
            }
            "timeout_s" => jt.timeout_s = cx.num(&key, fv, 0.0, 1e9).unwrap_or(jt.timeout_s),
            "cancel_grace_s" => {
                jt.cancel_grace_s = cx.num(&key, fv, 0.0, 3600.0).unwrap_or(jt.cancel_grace_s)
            }
            "pausable" => jt.pausable = cx.boolean(&key, fv).unwrap_or(jt.pausable),
            "command" => {
                command_at = fv.span().start;
                match cx.strings(&key, fv) {
                    Some(c) if c.is_empty() => cx.err(
                        fv.span().start,
                        &key,
                        "expected the program and its arguments, found an empty array",
                    ),
                    Some(c) => jt.command = Some(c),
                    None => {}
                }
            }
            "params" => {
                if let Some(pt) = cx.table(&key, fv) {
                    jt.params.clear();
                    let mut named: Vec<_> = pt.iter().collect();
                    named.sort_by_key(|(k, _)| k.span().start);
                    for (pk, pv) in named {
                        if let Some(p) = parse_param(cx, &key, pk.get_ref(), pv) {
                            jt.params.push(p);
                        }
                    }
                }
            }
            _ => cx.unknown(&key, k.span().start, TYPE_KEYS),
        }
    }
    // Every placeholder names a parameter.
    if let Some(cmd) = &jt.command {
        for arg in cmd {
            for ph in placeholders(arg) {
                if !jt.params.iter().any(|p| p.name == ph) {
                    cx.err(
                        command_at,
                        &format!("{base}.command"),
                        format!(
                            "placeholder {{{ph}}} names no parameter (add [{base}.params.{ph}])"
                        ),
                    );
                }
            }
        }
    }
    match out.types.iter_mut().find(|x| x.name == name) {
        Some(slot) => *slot = jt,
        None => out.types.push(jt),
    }
}

fn parse_param(
    cx: &mut Cx<'_>,
    base: &str,
    name: &str,
    v: &Spanned<DeValue<'_>>,
) -> Option<ParamSpec> {
    let key = format!("{base}.{name}");
    let t = cx.table(&key, v)?;
    let mut p = ParamSpec {
        name: name.to_string(),
        pattern: None,
        pattern_src: None,
        choices: None,
        default: None,
        max_len: 256,
    };
    for (k, fv) in t.iter() {
        let kn: &str = k.get_ref();
        let fkey = format!("{key}.{kn}");
        match kn {
            "pattern" => {
                if let Some(src) = cx.string(&fkey, fv) {
                    match regex::Regex::new(&format!("^(?:{src})$")) {
                        Ok(re) => {
                            p.pattern = Some(re);
                            p.pattern_src = Some(src);
                        }
                        Err(e) => cx.err(fv.span().start, &fkey, format!("invalid regex: {e}")),
                    }
                }
            }
            "enum" => match cx.strings(&fkey, fv) {
                Some(c) if c.is_empty() => {
                    cx.err(fv.span().start, &fkey, "expected at least one value")
                }
                Some(c) => p.choices = Some(c),
                None => {}
            },
            "default" => p.default = cx.string(&fkey, fv),
            "max_len" => {
                p.max_len = cx
                    .num(&fkey, fv, 1.0, 65536.0)
                    .map_or(p.max_len, |n| n as usize)
            }
            _ => cx.unknown(&fkey, k.span().start, PARAM_KEYS),
        }
    }
    if p.pattern.is_none() && p.choices.is_none() {
        cx.err(
            v.span().start,
            &key,
            "a parameter needs a `pattern` or an `enum`: values are checked before they reach a command line",
        );
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<JobsConfig, ConfigErrors> {
        parse(Path::new("/x/vigil.toml"), text)
    }

    #[test]
    fn builtins_are_the_seeds() {
        let c = parse_str("").unwrap();
        let bt = c.job_type("backtest").unwrap();
        assert_eq!((bt.cpu_cores, bt.ram_gb), (1.0, 0.5));
        let mt = c.job_type("model_training").unwrap();
        assert_eq!((mt.cpu_cores, mt.ram_gb), (2.0, 1.5));
        let p = c.job_type("prediction").unwrap();
        assert_eq!((p.cpu_cores, p.ram_gb), (0.5, 0.3));
    }

    #[test]
    fn a_template_with_typed_params() {
        let c = parse_str(
            r#"
[jobs.types.backtest]
command = ["python3", "bt.py", "--symbol", "{symbol}", "--days={days}"]
timeout_s = 60
[jobs.types.backtest.params.symbol]
pattern = "[A-Z]+_[A-Z]+"
[jobs.types.backtest.params.days]
enum = ["7", "30"]
default = "30"
"#,
        )
        .unwrap();
        let bt = c.job_type("backtest").unwrap();
        assert_eq!(bt.cpu_cores, 1.0, "the built-in's resources are kept");
        let mut p = BTreeMap::new();
        p.insert("symbol".to_string(), "BTC_USDT".to_string());
        assert_eq!(
            bt.expand(&p).unwrap(),
            vec!["python3", "bt.py", "--symbol", "BTC_USDT", "--days=30"]
        );
        p.insert("symbol".into(), "BTC; rm -rf /".into());
        let e = bt.expand(&p).unwrap_err();
        assert_eq!(e.0, "params.symbol");
        assert!(
            e.1.contains("does not match the pattern [A-Z]+_[A-Z]+"),
            "{}",
            e.1
        );
        p.insert("symbol".into(), "BTC_USDT".into());
        p.insert("days".into(), "9".into());
        assert_eq!(bt.expand(&p).unwrap_err().0, "params.days");
        p.remove("days");
        p.insert("bogus".into(), "1".into());
        assert_eq!(bt.expand(&p).unwrap_err().0, "params.bogus");
        p.clear();
        assert_eq!(
            bt.expand(&p).unwrap_err(),
            (
                "params.symbol".into(),
                "required parameter is missing".into()
            )
        );
    }

    #[test]
    fn errors_are_located() {
        let e = parse_str(
            "[jobs]\nbufer_pct = 5\n[jobs.types.x]\ncpu_cores = -1\ncommand = [\"a\", \"{nope}\"]\n[jobs.types.x.params.y]\ndefault = \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("vigil.toml:2:1: jobs.bufer_pct: unknown key, did you mean \"buffer_pct\"?"),
            "{e}"
        );
        assert!(
            e.contains(
                ":4:13: jobs.types.x.cpu_cores: expected a number from 0 to 1000000, found -1"
            ),
            "{e}"
        );
        assert!(
            e.contains("jobs.types.x.command: placeholder {nope} names no parameter"),
            "{e}"
        );
        assert!(
            e.contains("jobs.types.x.params.y: a parameter needs a `pattern` or an `enum`"),
            "{e}"
        );
    }

    #[test]
    fn dev_mode_from_the_environment() {
        let c = JobsConfig::default();
        assert!(!c.dev_mode_with_env(|_| None));
        assert!(c.dev_mode_with_env(|k| (k == "TRADING_BOT_DEV_MODE").then(|| "true".into())));
        assert!(c.dev_mode_with_env(|k| (k == "VIGIL_DEV_MODE").then(|| "TRUE".into())));
        assert!(!c.dev_mode_with_env(|_| Some("false".into())));
        assert_eq!(c.policy(true).buffer, 0.05);
        assert_eq!(c.policy(false).consumption_factor, 0.8);
    }
}
