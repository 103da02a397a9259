//! `vigil convert`: a loaded supervisord config written as vigil.toml, the program options
//! in the option table's order.

use super::*;
use vigil_core::program::CrashLoop;

/// A TOML basic string.
pub(crate) fn q(s: &str) -> String {
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

/// Text for a TOML comment, which may hold neither a line break nor another control
/// character except tab: those are written as `\u{..}` (a config value quoted in a note may
/// contain any of them).
pub(crate) fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c != '\t' && (c.is_control()) {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A TOML key: bare when it can be.
pub(crate) fn k(s: &str) -> String {
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
pub(crate) fn qp(p: &Path) -> String {
    q(&esc(&p.to_string_lossy()))
}

/// Milliseconds as TOML seconds.
pub(crate) fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

pub(crate) fn to_toml(c: &Config, hints: &Hints) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# vigil.toml converted from {} by `vigil convert`.",
        comment_text(&c.source.display().to_string())
    );
    o.push_str("# Paths are absolute; %(ENV_X)s still reads vigil's environment at start.\n");
    for n in &hints.notes {
        let _ = writeln!(
            o,
            "# Not carried over (accepted as is): {}",
            comment_text(n)
        );
    }
    o.push('\n');
    o.push_str("[vigil]\n");
    let _ = writeln!(o, "listen = {}", q(&c.vigil.listen.to_string()));
    let _ = writeln!(o, "data_dir = {}", qp(&c.vigil.data_dir));
    let _ = writeln!(o, "log_level = {}", q(&c.vigil.log_level));
    if c.vigil.reload != crate::config::ReloadMode::Apply {
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
        let creds = |o: &mut String, a: &Option<crate::config::Credentials>| {
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
        write_program(&mut o, &l.program, h, Some(l));
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

/// The options of a program (or of a listener pool's program) that differ from the
/// defaults, in the option table's order.
pub(crate) fn write_program(
    o: &mut String,
    p: &ProgramConfig,
    logs: Option<&[LogHint; 2]>,
    listener: Option<&EventListenerConfig>,
) {
    use std::fmt::Write as _;
    for opt in options::OPTIONS
        .iter()
        .filter(|opt| opt.applies_to(listener.is_some()))
        .filter(|opt| opt.origin != options::Origin::SupervisordOnly)
    {
        if let Some(v) = toml_value(opt.name, p, logs, listener) {
            let _ = writeln!(o, "{} = {v}", opt.name);
        }
    }
}

/// The TOML value of option `name` of `p`, when it is not the default.
pub(crate) fn toml_value(
    name: &str,
    p: &ProgramConfig,
    logs: Option<&[LogHint; 2]>,
    listener: Option<&EventListenerConfig>,
) -> Option<String> {
    let first = p.processes.first();
    let chan = |name: &str| usize::from(name.starts_with("stderr"));
    let log_of = |i: usize| {
        first.map(|proc| {
            if i == 0 {
                &proc.stdout_log
            } else {
                &proc.stderr_log
            }
        })
    };
    let flag = |b: bool| b.then(|| "true".to_string());
    match name {
        "command" => Some(q(&p.command)),
        "process_name" => (p.process_name != "%(program_name)s").then(|| q(&p.process_name)),
        "numprocs" => (p.numprocs != 1).then(|| p.numprocs.to_string()),
        "numprocs_start" => (p.numprocs_start != 0).then(|| p.numprocs_start.to_string()),
        // A listener's `priority` sets the pool's and the processes'.
        "priority" => match listener {
            Some(l) => ((l.priority, p.priority) != (-1, 999)).then(|| l.priority.to_string()),
            None => (p.priority != 999).then(|| p.priority.to_string()),
        },
        "directory" => p.directory.as_ref().map(|d| qp(d)),
        "user" => p.user.as_ref().map(|u| q(u)),
        "environment" => (!p.environment.is_empty()).then(|| {
            let vars: Vec<String> = p
                .environment
                .iter()
                .map(|(var, v)| format!("{} = {}", k(var), q(&esc(v))))
                .collect();
            format!("{{ {} }}", vars.join(", "))
        }),
        "autostart" => (!p.autostart).then(|| "false".to_string()),
        "autorestart" => match p.autorestart {
            AutoRestart::Unexpected => None,
            AutoRestart::Always => Some("true".to_string()),
            AutoRestart::Never => Some("false".to_string()),
        },
        "startsecs" => (p.startsecs != 1).then(|| p.startsecs.to_string()),
        "startretries" => (p.startretries != 3).then(|| p.startretries.to_string()),
        "exitcodes" => (p.exitcodes != [0]).then(|| {
            let codes: Vec<String> = p.exitcodes.iter().map(i32::to_string).collect();
            format!("[{}]", codes.join(", "))
        }),
        "stopsignal" => (p.stopsignal != TERM).then(|| q(p.stopsignal.name)),
        "stopwaitsecs" => (p.stopwaitsecs != 10).then(|| p.stopwaitsecs.to_string()),
        "stopasgroup" => flag(p.stopasgroup),
        "killasgroup" => (p.killasgroup != p.stopasgroup).then(|| p.killasgroup.to_string()),
        "redirect_stderr" => flag(p.redirect_stderr),
        // No stderr log when it is redirected.
        n if n.starts_with("stderr_logfile") && p.redirect_stderr => None,
        "stdout_logfile" | "stderr_logfile" => match logs.and_then(|h| h.get(chan(name))) {
            Some(LogHint::Off) => Some("\"NONE\"".to_string()),
            Some(LogHint::Template(t)) => Some(q(t)),
            _ => None,
        },
        "stdout_logfile_maxbytes" | "stderr_logfile_maxbytes" => log_of(chan(name))
            .filter(|l| l.maxbytes != DEFAULT_LOG_MAXBYTES)
            .map(|l| l.maxbytes.to_string()),
        "stdout_logfile_backups" | "stderr_logfile_backups" => log_of(chan(name))
            .filter(|l| l.backups != DEFAULT_LOG_BACKUPS)
            .map(|l| l.backups.to_string()),
        "stdout_capture_maxbytes" => {
            (p.stdout_capture_maxbytes != 0).then(|| p.stdout_capture_maxbytes.to_string())
        }
        "stderr_capture_maxbytes" => {
            (p.stderr_capture_maxbytes != 0).then(|| p.stderr_capture_maxbytes.to_string())
        }
        "stdout_events_enabled" => flag(p.stdout_events_enabled),
        "stderr_events_enabled" => flag(p.stderr_events_enabled),
        "backoff" => p.backoff.exponential.then(|| "\"exponential\"".to_string()),
        "backoff_max" => p.backoff.max_ms.map(|m| (m / 1000).to_string()),
        "restart_limit" => (p.crash_loop.restarts != CrashLoop::default().restarts)
            .then(|| p.crash_loop.restarts.to_string()),
        "restart_window" => (p.crash_loop.window_ms != CrashLoop::default().window_ms)
            .then(|| (p.crash_loop.window_ms / 1000).to_string()),
        "events" => match listener {
            Some(l) => {
                let events: Vec<String> = l.events.iter().map(|e| q(e)).collect();
                Some(format!("[{}]", events.join(", ")))
            }
            None => p.events_from_stdout.then(|| "\"stdout\"".to_string()),
        },
        "buffer_size" => listener
            .filter(|l| l.buffer_size != DEFAULT_BUFFER_SIZE)
            .map(|l| l.buffer_size.to_string()),
        "critical" => flag(p.critical),
        "ready_command" | "ready_http" | "ready_tcp" => {
            let r = p.ready.as_ref()?;
            match (&r.probe, name) {
                (ReadinessProbe::Command { argv }, "ready_command") => {
                    let line = shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default();
                    Some(q(&esc(&line)))
                }
                (ReadinessProbe::Http { url }, "ready_http") => Some(q(&esc(url))),
                (ReadinessProbe::Tcp { host, port }, "ready_tcp") => {
                    let hp = if host.contains(':') {
                        format!("[{host}]:{port}")
                    } else {
                        format!("{host}:{port}")
                    };
                    Some(q(&esc(&hp)))
                }
                _ => None,
            }
        }
        "ready_interval" => p
            .ready
            .as_ref()
            .filter(|r| r.interval_ms != DEFAULT_READY_INTERVAL_MS)
            .map(|r| secs(r.interval_ms)),
        "ready_timeout" => p
            .ready
            .as_ref()
            .filter(|r| r.timeout_ms != DEFAULT_READY_TIMEOUT_MS)
            .map(|r| secs(r.timeout_ms)),
        "ready_retries" => p
            .ready
            .as_ref()
            .filter(|r| r.retries != DEFAULT_READY_RETRIES)
            .map(|r| r.retries.to_string()),
        "depends_on" => (!p.depends_on.is_empty()).then(|| {
            let deps: Vec<String> = p.depends_on.iter().map(|d| q(d)).collect();
            format!("[{}]", deps.join(", "))
        }),
        // `result_handler`: only the default exists.
        _ => None,
    }
}

/// The first part of two configs that differs, named.
pub(crate) fn first_difference(a: &Config, b: &Config) -> Option<String> {
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
