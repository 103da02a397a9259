//! The `vigil.toml` front end: `[vigil]`, `[group.*]`, `[rpc]`, and the program and
//! event-listener tables (their scalar options through the option table, `crate::config::options`).

use super::*;

/// `[vigil]`; also creates and checks `data_dir` and `data_dir/logs`. Returns whether the logs
/// directory is usable.
pub(crate) fn parse_vigil(
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
        .get_choice(&sec, "reload", crate::config::ReloadMode::NAMES)
        .and_then(crate::config::ReloadMode::from_name)
        .unwrap_or(crate::config::ReloadMode::Apply);

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

/// `[group.NAME]` sections. Returns the groups and each member program's group.
pub(crate) fn parse_groups(
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

/// `[rpc]`, `[rpc.inet]`, `[rpc.unix]`.
pub(crate) fn parse_rpc(
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
pub(crate) fn toml_credentials(cx: &mut Ctx, sec: &Sec<'_, '_>) -> Option<Credentials> {
    let user = cx.get_string(sec, "username");
    let pass = cx.get_string(sec, "password");
    credentials(cx, user, pass, sec.at, &sec.key_path())
}

/// The typed options of one `[program.NAME]` table.
/// A `[program.NAME]` / `[eventlistener.NAME]` table as a [`options::Source`].
pub(crate) struct TomlSource<'s, 'a, 'i> {
    sec: &'s Sec<'a, 'i>,
}

/// A TOML value as a raw option value.
pub(crate) fn raw_of(v: &Spanned<DeValue<'_>>) -> options::Raw {
    use options::Raw;
    match v.get_ref() {
        DeValue::String(s) => Raw::Str(s.to_string()),
        DeValue::Integer(_) => match int_of(v.get_ref()) {
            Some(n) => Raw::Int(n),
            None => Raw::Other(found(v.get_ref())),
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) => Raw::Float(x, f.as_str().to_string()),
            Err(_) => Raw::Other(found(v.get_ref())),
        },
        DeValue::Boolean(b) => Raw::Bool(*b),
        DeValue::Array(a) => Raw::List(a.iter().map(|i| (raw_of(i), i.span().start)).collect()),
        _ => Raw::Other(found(v.get_ref())),
    }
}

impl options::Source for TomlSource<'_, '_, '_> {
    fn ini(&self) -> bool {
        false
    }

    fn key(&self, name: &str) -> String {
        self.sec.key(name)
    }

    fn header_at(&self) -> usize {
        self.sec.at
    }

    fn written(&self) -> Vec<(String, usize)> {
        entries(self.sec.table)
            .into_iter()
            .map(|(k, _)| (k.get_ref().to_string(), k.span().start))
            .collect()
    }

    fn value_at(&self, name: &str) -> Option<usize> {
        self.sec.get(name).map(|v| v.span().start)
    }

    fn raw(&self, _cx: &mut Ctx, name: &str) -> Option<(options::Raw, usize)> {
        let v = self.sec.get(name)?;
        Some((raw_of(v), v.span().start))
    }

    fn unknown(&self, cx: &mut Ctx, name: &str, at: usize, known: &[&str]) {
        let message = match did_you_mean(name, known) {
            Some(s) => format!("unknown key, did you mean \"{s}\"?"),
            None => "unknown key".to_string(),
        };
        cx.at(at, self.sec.key(name), message);
    }
}

/// The typed options of one `[program.NAME]` table.
pub(crate) fn toml_program(cx: &mut Ctx, sec: &Sec<'_, '_>, name: &str) -> ProgramSpec {
    let (spec, _) = toml_common(cx, sec, name, false);
    spec
}

/// The typed options of one `[eventlistener.NAME]` table.
pub(crate) fn toml_listener(cx: &mut Ctx, sec: &Sec<'_, '_>, name: &str) -> ListenerSpec {
    let (program, common) = toml_common(cx, sec, name, true);
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
        buffer_size: common.buffer_size,
        priority: common.priority.unwrap_or(-1),
    }
}

pub(crate) const REDIRECT_STDERR_LISTENER: &str =
    "cannot be true for an event listener: stdout is the protocol channel (as in supervisord)";

pub(crate) const RESULT_HANDLER_UNSUPPORTED: &str = "only supervisor.dispatchers:default_handler is supported (a listener's reply OK accepts the event, anything else rejects it)";

/// Validate event type names: canonical, without duplicates; an empty list is an error.
pub(crate) fn listener_events(
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

/// The options programs and listeners share: the scalars through the option table, the
/// strings, paths and tables here.
pub(crate) fn toml_common(
    cx: &mut Ctx,
    sec: &Sec<'_, '_>,
    name: &str,
    listener: bool,
) -> (ProgramSpec, options::Common) {
    let mut spec = ProgramSpec::new(name, sec.key_path(), sec.at);
    let common = options::read_common(cx, &TomlSource { sec }, &mut spec, listener);
    spec.command = cx.get_string(sec, "command");
    if sec.get("command").is_none() {
        cx.missing(sec, "command");
    }
    spec.process_name = cx.get_string(sec, "process_name");
    if !listener {
        for k in READY_PROBES {
            if let Some(s) = cx.get_string(sec, k) {
                spec.ready.probes.push((k, s));
            }
        }
        spec.depends_on = cx.get_str_list(sec, "depends_on", "program name (string)");
    }

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
    (spec, common)
}
