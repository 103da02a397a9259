//! `[program:x]` and `[eventlistener:x]`: the scalar options through the option table
//! (`crate::config::crate::config::options`), the templates, paths, `environment` and log files here.

use super::*;

/// What an `[eventlistener:x]` adds to the program options.
/// A `[program:x]` / `[eventlistener:x]` section as an [`options::Source`]: every value is
/// text, expanded with the section's names.
pub(crate) struct IniSource<'s, 'd> {
    pub(crate) sec: &'s Sect<'d>,
    pub(crate) names: &'s Names<'s>,
}

impl options::Source for IniSource<'_, '_> {
    fn ini(&self) -> bool {
        true
    }

    fn key(&self, name: &str) -> String {
        self.sec.key(name)
    }

    fn header_at(&self) -> usize {
        self.sec.s.header_at
    }

    fn written(&self) -> Vec<(String, usize)> {
        self.sec
            .s
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.key_at))
            .collect()
    }

    fn value_at(&self, name: &str) -> Option<usize> {
        self.sec.get(name).map(|e| e.span.start)
    }

    fn raw(&self, cx: &mut Ctx, name: &str) -> Option<(options::Raw, usize)> {
        expanded(cx, self.sec, name, self.names).map(|(v, at)| (options::Raw::Text(v), at))
    }

    fn unknown(&self, cx: &mut Ctx, name: &str, at: usize, known: &[&str]) {
        cx.warn(
            at,
            format!("{} {name}", self.sec.kp.prefix),
            unknown_option_message(name, known),
        );
    }
}

pub(crate) struct ListenerExtra {
    pub(crate) events: Vec<&'static str>,
    pub(crate) buffer_size: usize,
    pub(crate) priority: i32,
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
pub(crate) fn ini_program(
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
    let common = options::read_common(
        cx,
        &IniSource {
            sec: &sec,
            names: &names,
        },
        &mut spec,
        is_listener,
    );

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
        && umask_against(mask) != Some(mask)
    {
        unsupported_value(
            cx,
            e,
            &format!(
                "vigil's children inherit vigil's umask ({}); start vigil with umask {mask:03o} instead",
                umask_against(mask).map_or_else(|| "unknown".to_string(), |c| format!("{c:03o}"))
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
        environment_into(cx, &sec.key("environment"), &v, at, &mut env_map);
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
        extra.priority = common.priority.unwrap_or(-1);
        extra.buffer_size = common.buffer_size;
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
        if let Some((v, at)) = expanded(cx, &sec, "depends_on", &names) {
            spec.depends_on = name_list(&v)
                .into_iter()
                .map(|d| (d.to_string(), at..at))
                .collect();
        }
    }
    (spec, hints)
}
