//! The information family: ProcessInfo structs, descriptions, `getAllConfigInfo`.

use super::*;

/// supervisord's ProcessInfo struct: the 14 keys, always all present.
pub fn process_info(p: &ProcessInfo) -> Value {
    let now = Utc::now().timestamp();
    let start = p.start.map_or(0, |t| t.timestamp());
    let stop = p.stop.map_or(0, |t| t.timestamp());
    let pid = p.pid.map_or(0, i64::from);
    let spawnerr = p.spawnerr.clone().unwrap_or_default();
    let description = describe(p.state, start, stop, now, pid, &spawnerr, &p.name);
    let stdout = p.stdout_logfile.clone().unwrap_or_default();
    let stderr = p.stderr_logfile.clone().unwrap_or_default();
    Value::record([
        ("name", Value::str(p.name.clone())),
        ("group", Value::str(p.group.clone())),
        ("start", Value::Int(start)),
        ("stop", Value::Int(stop)),
        ("now", Value::Int(now)),
        ("state", Value::Int(i64::from(p.state.code()))),
        ("statename", Value::str(p.state.name())),
        ("spawnerr", Value::str(spawnerr)),
        ("exitstatus", Value::Int(i64::from(p.exitstatus))),
        ("logfile", Value::str(stdout.clone())),
        ("stdout_logfile", Value::str(stdout)),
        ("stderr_logfile", Value::str(stderr)),
        ("pid", Value::Int(pid)),
        ("description", Value::str(description)),
    ])
}

/// supervisord's `_interpretProcessInfo`: the description column of `status`.
pub fn describe(
    state: ProcessState,
    start: i64,
    stop: i64,
    now: i64,
    pid: i64,
    spawnerr: &str,
    name: &str,
) -> String {
    match state {
        ProcessState::Running => {
            format!("pid {pid}, uptime {}", timedelta((now - start).max(0)))
        }
        ProcessState::Fatal | ProcessState::Backoff => {
            if spawnerr.is_empty() {
                format!("unknown error (try \"tail {name}\")")
            } else {
                spawnerr.to_string()
            }
        }
        ProcessState::Stopped | ProcessState::Exited => {
            if start == 0 {
                return "Not started".into();
            }
            DateTime::<Utc>::from_timestamp(stop, 0)
                .map(|t| t.with_timezone(&Local).format("%b %d %I:%M %p").to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// Python's `str(datetime.timedelta(seconds=s))` for s >= 0: `H:MM:SS`, `N day(s), H:MM:SS`.
pub fn timedelta(secs: i64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let hms = format!("{}:{:02}:{:02}", rem / 3600, (rem / 60) % 60, rem % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

/// `getAllConfigInfo`: one struct per process of the configuration as last read, sorted by
/// process name; `inuse` when its group is active. `None` is `'none'`, AUTO `'auto'`.
pub(crate) fn config_info(cx: &Compat) -> Value {
    let view = cx.daemon.view();
    let active_groups = groups::names(&view.active);
    let loaded = &view.loaded;
    let mut out: Vec<(String, Value)> = Vec::new();
    let programs = loaded
        .programs
        .iter()
        .map(|p| (p, loaded.group_of(&p.name).to_string()))
        .chain(
            loaded
                .eventlisteners
                .iter()
                .map(|l| (&l.program, l.program.name.clone())),
        );
    for (prog, group) in programs {
        let group_prio = groups::priority(loaded, &group).unwrap_or(prog.priority);
        let inuse = active_groups.contains(&group);
        let uid = prog
            .user
            .as_deref()
            .and_then(|u| nix::unistd::User::from_name(u).ok().flatten())
            .map_or(Value::str("none"), |u| {
                Value::Int(i64::from(u.uid.as_raw()))
            });
        // Freshly read by reloadConfig and not added since: supervisord's AUTO logs are
        // `Automatic` there (`'auto'`) until addProcessGroup creates them.
        let fresh = view
            .reread
            .as_ref()
            .is_some_and(|added| !added.contains(&group));
        for proc_ in &prog.processes {
            let path = |p: &Option<PathBuf>, channel: &str| match p {
                Some(p) if fresh && is_auto_log(loaded, &proc_.name, channel, p) => {
                    "auto".to_string()
                }
                Some(p) => p.display().to_string(),
                None => "none".to_string(),
            };
            let v = Value::record([
                ("autostart", Value::Bool(prog.autostart)),
                (
                    "directory",
                    Value::str(
                        prog.directory
                            .as_ref()
                            .map_or_else(|| "none".to_string(), |d| d.display().to_string()),
                    ),
                ),
                ("uid", uid.clone()),
                ("command", Value::str(prog.command.clone())),
                (
                    "exitcodes",
                    Value::Array(
                        prog.exitcodes
                            .iter()
                            .map(|c| Value::Int(i64::from(*c)))
                            .collect(),
                    ),
                ),
                ("group", Value::str(group.clone())),
                ("group_prio", Value::Int(i64::from(group_prio))),
                ("inuse", Value::Bool(inuse)),
                ("killasgroup", Value::Bool(prog.killasgroup)),
                ("name", Value::str(proc_.name.clone())),
                ("process_prio", Value::Int(i64::from(prog.priority))),
                ("redirect_stderr", Value::Bool(prog.redirect_stderr)),
                ("startretries", Value::Int(i64::from(prog.startretries))),
                ("startsecs", Value::Int(clamp(prog.startsecs))),
                (
                    "stdout_capture_maxbytes",
                    Value::Int(clamp(prog.stdout_capture_maxbytes)),
                ),
                (
                    "stdout_events_enabled",
                    Value::Bool(prog.stdout_events_enabled),
                ),
                (
                    "stdout_logfile",
                    Value::str(path(&proc_.stdout_log.path, "stdout")),
                ),
                (
                    "stdout_logfile_backups",
                    Value::Int(i64::from(proc_.stdout_log.backups)),
                ),
                (
                    "stdout_logfile_maxbytes",
                    Value::Int(clamp(proc_.stdout_log.maxbytes)),
                ),
                ("stdout_syslog", Value::Bool(false)),
                ("stopsignal", Value::Int(i64::from(prog.stopsignal.number))),
                ("stopwaitsecs", Value::Int(clamp(prog.stopwaitsecs))),
                (
                    "stderr_capture_maxbytes",
                    Value::Int(clamp(prog.stderr_capture_maxbytes)),
                ),
                (
                    "stderr_events_enabled",
                    Value::Bool(prog.stderr_events_enabled),
                ),
                (
                    "stderr_logfile",
                    Value::str(path(&proc_.stderr_log.path, "stderr")),
                ),
                (
                    "stderr_logfile_backups",
                    Value::Int(i64::from(proc_.stderr_log.backups)),
                ),
                (
                    "stderr_logfile_maxbytes",
                    Value::Int(clamp(proc_.stderr_log.maxbytes)),
                ),
                ("stderr_syslog", Value::Bool(false)),
                // `serverurl = AUTO` (the default) reads as None in supervisord.
                ("serverurl", Value::str("none")),
            ]);
            out.push((proc_.name.clone(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

/// Whether `path` is where an AUTO log of `process` goes: vigil's default
/// (`data_dir/logs/NAME.out.log`) or, with `childlogdir`, supervisord's name there
/// (`NAME-stdout---IDENTIFIER.log`).
pub(crate) fn is_auto_log(
    c: &crate::config::Config,
    process: &str,
    channel: &str,
    path: &Path,
) -> bool {
    let ext = if channel == "stdout" { "out" } else { "err" };
    let supervisord_name = format!("{process}-{channel}---{}.log", c.identifier());
    path == c.logs_dir().join(format!("{process}.{ext}.log"))
        || path
            .file_name()
            .is_some_and(|f| f.to_string_lossy() == supervisord_name)
}
