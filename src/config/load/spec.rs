//! A program as written ([`ProgramSpec`], what each front end produces) and the shared step
//! that turns it into a [`ProgramConfig`]: expansions, per-process values, paths, readiness.

use super::*;

/// The program's log output channel as configured.
pub(crate) enum LogSpec {
    /// Not set or `AUTO`: `data_dir/logs/<process>.{out,err}.log`.
    Auto,
    /// `NONE` / `OFF`.
    Off,
    /// A path template (expanded per process, resolved against the config file's directory).
    Path(Str),
}

/// One output channel of a program: `stdout_logfile` and its rotation.
pub(crate) struct ChanSpec {
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
pub(crate) struct EnvSpec {
    pub var: String,
    pub key: String,
    pub value: Str,
}

/// Readiness options as written.
#[derive(Default)]
pub(crate) struct ReadySpec {
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
pub(crate) struct ProgramSpec {
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
    pub(crate) fn new(name: &str, kp: KeyPath, header_at: usize) -> ProgramSpec {
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
pub(crate) struct ListenerSpec {
    pub program: ProgramSpec,
    pub events: Vec<&'static str>,
    pub buffer_size: usize,
    /// The pool priority (`priority`, else -1).
    pub priority: i32,
}

/// One use of a log file, for the cross-program checks.
pub(crate) struct LogUse {
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
pub(crate) struct Shared<'e> {
    pub env: &'e Env,
    pub here: PathBuf,
    pub here_str: String,
    pub logs_dir: PathBuf,
}

impl Shared<'_> {
    pub(crate) fn names(
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
pub(crate) fn here_of(path: &Path) -> (PathBuf, PathBuf) {
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let here = source
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    (source, here)
}

/// `AUTO`, `NONE`/`OFF` (any case), else `None`.
pub(crate) fn log_keyword(s: &str) -> Option<LogSpec> {
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
pub(crate) fn env_var_problem(var: &str) -> Option<&'static str> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        Some("invalid variable name (empty, or contains '=' or NUL)")
    } else {
        None
    }
}

/// "a signal name or number (HUP, INT, …)".
pub(crate) fn signal_expected() -> String {
    let names: Vec<&str> = SIGNALS.iter().map(|(n, _)| *n).collect();
    format!("a signal name or number ({})", names.join(", "))
}

/// Turn a program spec into its config: expansions, per-process names, argv and log paths,
/// directory and user checks, readiness. Returns the program, its log uses and where (and under
/// which key) errors about its process names go.
pub(crate) fn build_program(
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
pub(crate) fn build_ready(
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
pub(crate) fn parse_ready_url(s: &str) -> Result<String, String> {
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
pub(crate) fn parse_host_port(s: &str) -> Result<(String, u16), String> {
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
pub(crate) fn check_logs(cx: &mut Ctx, logs: &[LogUse], logs_dir: &Path, logs_ok: bool) {
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
        let meta = if io_allowed() {
            std::fs::metadata(&u.path)
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        };
        match meta {
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
