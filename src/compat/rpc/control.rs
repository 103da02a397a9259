//! The process-control family: start, stop and signal (one, a group, all), with
//! supervisord's faults.

use super::*;

/// supervisord's per-process result struct of group operations.
pub(crate) fn result(p: &ProcessInfo, r: &Result<(), Fault>) -> Value {
    let (status, description) = match r {
        Ok(()) => (Code::Success.number(), "OK".to_string()),
        Err(f) => (f.code, f.string.clone()),
    };
    Value::record([
        ("name", Value::str(p.name.clone())),
        ("group", Value::str(p.group.clone())),
        ("status", Value::Int(i64::from(status))),
        ("description", Value::str(description)),
    ])
}

pub(crate) fn supervisor_fault(e: &SupervisorError, spec: &str) -> Fault {
    match e {
        SupervisorError::ShuttingDown => bare(Code::ShutdownState),
        SupervisorError::NoSuchProcess(_) | SupervisorError::NoSuchGroup(_) => {
            fault(Code::BadName, spec)
        }
    }
}

/// The fault for a failed [`ActionResult`]: supervisord's code, with the name as the text
/// (FAILED carries the reason).
pub(crate) fn action_fault(r: &ActionResult, spec: &str) -> Fault {
    match r.fault.as_deref().and_then(Code::from_name) {
        Some(Code::Failed) | None => fault(
            Code::Failed,
            r.message.clone().unwrap_or_else(|| spec.to_string()),
        ),
        Some(code) => fault(code, spec),
    }
}

pub(crate) fn group_fault(e: GroupError, name: &str) -> Fault {
    match e {
        GroupError::BadName(_) => fault(Code::BadName, name),
        GroupError::AlreadyAdded(_) => fault(Code::AlreadyAdded, name),
        GroupError::StillRunning(_) => fault(Code::StillRunning, name),
        GroupError::Failed(m) => fault(Code::Failed, m),
    }
}

// ---------------------------------------------------------------------------------------
// Start, stop, signal

/// Why `startProcess` refuses before touching the process: the command cannot be run
/// (NO_FILE / NOT_EXECUTABLE, checked first as supervisord does), or its state.
pub(crate) fn check_start(cx: &Compat, p: &ProcessInfo, spec: &str) -> Result<(), Fault> {
    if let Some(why) = command_problem(cx, p) {
        return Err(if why.starts_with("can't find command") {
            fault(Code::NoFile, why)
        } else {
            fault(Code::NotExecutable, why)
        });
    }
    match p.state {
        s if s.is_running() => Err(fault(Code::AlreadyStarted, spec)),
        ProcessState::Unknown => Err(fault(
            Code::Failed,
            format!("{spec} is in an unknown process state"),
        )),
        // supervisord's spawn() refuses while the old child lives; its waiter then reports
        // ABNORMAL_TERMINATION.
        ProcessState::Stopping => Err(fault(Code::AbnormalTermination, spec)),
        _ => Ok(()),
    }
}

pub(crate) fn command_problem(cx: &Compat, p: &ProcessInfo) -> Option<String> {
    let view = cx.daemon.view();
    let program = view.active.program(&p.program).or_else(|| {
        view.active
            .eventlistener(&p.group)
            .map(|l| &l.program)
            .filter(|prog| prog.name == p.program)
    })?;
    let process = program.processes.iter().find(|x| x.name == p.name)?;
    let argv0 = process.argv.first()?;
    crate::supervisor::spawn::resolve_command(argv0, &program.environment).err()
}

pub(crate) async fn start_checked(
    cx: &Compat,
    p: &ProcessInfo,
    spec: &str,
    wait: bool,
) -> Result<(), Fault> {
    let results = cx
        .supervisor
        .start(&target(p), wait)
        .await
        .map_err(|e| supervisor_fault(&e, spec))?;
    match results.first() {
        Some(r) if !r.ok => Err(action_fault(r, spec)),
        _ if !wait => {
            // supervisord reaps right after spawning: a spawn that failed at once is a
            // SPAWN_ERROR even without waiting.
            let snap = cx.supervisor.snapshot();
            let failed = snap.processes.iter().any(|x| {
                x.name == p.name && x.state == ProcessState::Backoff && x.spawnerr.is_some()
            });
            if failed {
                Err(fault(Code::SpawnError, spec))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Start each process that is not running; refusals first, then the started ones in order.
pub(crate) async fn start_many(cx: &Compat, procs: Vec<ProcessInfo>, wait: bool) -> R {
    let mut out = Vec::new();
    let mut go = Vec::new();
    for p in procs.into_iter().filter(|p| !p.state.is_running()) {
        match check_start(cx, &p, &namespec(&p)) {
            Err(f) => out.push(result(&p, &Err(f))),
            Ok(()) => go.push(p),
        }
    }
    let done = join_all(
        go.iter()
            .map(|p| async move { start_checked(cx, p, &namespec(p), wait).await }),
    )
    .await;
    out.extend(go.iter().zip(done).map(|(p, r)| result(p, &r)));
    Ok(Value::Array(out))
}

pub(crate) fn check_stop(p: &ProcessInfo, spec: &str) -> Result<(), Fault> {
    if p.state.is_running() {
        Ok(())
    } else {
        Err(fault(Code::NotRunning, spec))
    }
}

pub(crate) async fn stop_checked(
    cx: &Compat,
    p: &ProcessInfo,
    spec: &str,
    wait: bool,
) -> Result<(), Fault> {
    let results = cx
        .supervisor
        .stop(&target(p), wait)
        .await
        .map_err(|e| supervisor_fault(&e, spec))?;
    match results.first() {
        Some(r) if !r.ok => Err(action_fault(r, spec)),
        _ => Ok(()),
    }
}

/// Stop each running process (RUNNING_STATES), in the order given.
pub(crate) async fn stop_many(cx: &Compat, procs: Vec<ProcessInfo>, wait: bool) -> R {
    let go: Vec<ProcessInfo> = procs.into_iter().filter(|p| p.state.is_running()).collect();
    let done = join_all(
        go.iter()
            .map(|p| async move { stop_checked(cx, p, &namespec(p), wait).await }),
    )
    .await;
    Ok(Value::Array(
        go.iter().zip(done).map(|(p, r)| result(p, &r)).collect(),
    ))
}

/// supervisord's `signal_number`: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(v: &Value) -> Option<i32> {
    let n = match v {
        Value::Int(n) => i32::try_from(*n).ok()?,
        Value::String(s) => match s.trim().parse::<i32>() {
            Ok(n) => n,
            Err(_) => {
                let upper = s.trim().to_ascii_uppercase();
                let name = if upper.starts_with("SIG") {
                    upper
                } else {
                    format!("SIG{upper}")
                };
                return name
                    .parse::<nix::sys::signal::Signal>()
                    .ok()
                    .map(|s| s as i32);
            }
        },
        _ => return None,
    };
    nix::sys::signal::Signal::try_from(n).ok().map(|s| s as i32)
}

/// Roughly Python's `str()` of a parameter, for fault texts.
pub(crate) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Double(d) => format!("{d:?}"),
        Value::Nil => "None".into(),
        other => other.type_name().to_string(),
    }
}

/// Python's `str()` of what `xmlrpc.client` makes of a value (`'%s' % v` in supervisord):
/// `5`, `True`, `1.5`, `None`, `[1, 'a']`, `{'k': 2}`, a `DateTime` as `20260101T10:00:00`,
/// `base64` as its bytes read as Latin-1 (`Binary.__str__`).
pub fn python_str(v: &Value) -> String {
    fn repr(v: &Value) -> String {
        match v {
            Value::String(s) => python_repr_str(s),
            Value::DateTime(d) => format!("<DateTime '{}'>", d.format("%Y%m%dT%H:%M:%S")),
            Value::Base64(b) => format!("<xmlrpc.client.Binary '{}'>", latin1(b)),
            other => python_str(other),
        }
    }
    fn latin1(b: &[u8]) -> String {
        b.iter().map(|c| char::from(*c)).collect()
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e16 => {
            format!("{d:.1}")
        }
        Value::Double(d) => format!("{d:?}"),
        Value::Nil => "None".into(),
        Value::DateTime(d) => d.format("%Y%m%dT%H:%M:%S").to_string(),
        Value::Base64(b) => latin1(b),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Struct(members) => {
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}: {}", python_repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a str: single quotes unless the text has one and no double quote.
pub(crate) fn python_repr_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

pub(crate) async fn signal_one(
    cx: &Compat,
    p: &ProcessInfo,
    spec: &str,
    sig: &Value,
) -> Result<(), Fault> {
    let Some(n) = parse_signal(sig) else {
        return Err(fault(Code::BadSignal, py_str(sig)));
    };
    if !p.state.is_signallable() {
        return Err(fault(Code::NotRunning, spec));
    }
    let results = cx
        .supervisor
        .signal(&target(p), n)
        .await
        .map_err(|e| supervisor_fault(&e, spec))?;
    match results.first() {
        Some(r) if !r.ok => Err(action_fault(r, spec)),
        _ => Ok(()),
    }
}

/// Signal each signallable process (RUNNING, STARTING, STOPPING).
pub(crate) async fn signal_many(cx: &Compat, procs: Vec<ProcessInfo>, sig: &Value) -> R {
    let mut out = Vec::new();
    for p in procs.iter().filter(|p| p.state.is_signallable()) {
        let r = signal_one(cx, p, &namespec(p), sig).await;
        out.push(result(p, &r));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------
// Info
