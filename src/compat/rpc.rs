//! supervisord's XML-RPC methods (`supervisor.*`, `system.*`, SUPERVISORD.md §4.3) over
//! vigil's handles: the supervisor actor for processes, the daemon loop for shutdown, reload
//! and groups, the event log for remote communication, log files for the log methods.
//!
//! Names are resolved as supervisord resolves them (`split_namespec`: `name` is group `name`
//! process `name`; `group:*` and `group:` are the whole group), faults carry supervisord's
//! codes and texts (`BAD_NAME: foo`), and group operations answer supervisord's result
//! structs `{name, group, status, description}`.

use std::fmt::Display;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use futures::future::join_all;
use vigil_core::program::ProcessState;

use super::Compat;
use super::groups::{self, GroupError};
use super::mainlog::main_log;
use super::methods::METHODS;
use super::xmlrpc::{Fault, Value};
use crate::daemon::DaemonState;
use crate::supervisor::{ActionResult, ProcessInfo, StdinError, SupervisorError};

/// `supervisor.getAPIVersion` / `getVersion`: supervisorctl refuses any other answer.
pub const API_VERSION: &str = "3.0";
/// `supervisor.getSupervisorVersion`: the supervisord release whose interface vigil serves.
pub const SUPERVISOR_VERSION: &str = "4.3.0";
/// Reads of log files answer at most this many bytes (supervisord has no limit).
pub const MAX_READ: u64 = 64 * 1024 * 1024;

/// supervisord's fault codes (`supervisor.xmlrpc.Faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    UnknownMethod,
    IncorrectParameters,
    BadArguments,
    SignatureUnsupported,
    ShutdownState,
    BadName,
    BadSignal,
    NoFile,
    NotExecutable,
    Failed,
    AbnormalTermination,
    SpawnError,
    AlreadyStarted,
    NotRunning,
    Success,
    AlreadyAdded,
    StillRunning,
    CantReread,
}

impl Code {
    pub const ALL: [Code; 18] = [
        Code::UnknownMethod,
        Code::IncorrectParameters,
        Code::BadArguments,
        Code::SignatureUnsupported,
        Code::ShutdownState,
        Code::BadName,
        Code::BadSignal,
        Code::NoFile,
        Code::NotExecutable,
        Code::Failed,
        Code::AbnormalTermination,
        Code::SpawnError,
        Code::AlreadyStarted,
        Code::NotRunning,
        Code::Success,
        Code::AlreadyAdded,
        Code::StillRunning,
        Code::CantReread,
    ];

    pub fn number(self) -> i32 {
        match self {
            Code::UnknownMethod => 1,
            Code::IncorrectParameters => 2,
            Code::BadArguments => 3,
            Code::SignatureUnsupported => 4,
            Code::ShutdownState => 6,
            Code::BadName => 10,
            Code::BadSignal => 11,
            Code::NoFile => 20,
            Code::NotExecutable => 21,
            Code::Failed => 30,
            Code::AbnormalTermination => 40,
            Code::SpawnError => 50,
            Code::AlreadyStarted => 60,
            Code::NotRunning => 70,
            Code::Success => 80,
            Code::AlreadyAdded => 90,
            Code::StillRunning => 91,
            Code::CantReread => 92,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Code::UnknownMethod => "UNKNOWN_METHOD",
            Code::IncorrectParameters => "INCORRECT_PARAMETERS",
            Code::BadArguments => "BAD_ARGUMENTS",
            Code::SignatureUnsupported => "SIGNATURE_UNSUPPORTED",
            Code::ShutdownState => "SHUTDOWN_STATE",
            Code::BadName => "BAD_NAME",
            Code::BadSignal => "BAD_SIGNAL",
            Code::NoFile => "NO_FILE",
            Code::NotExecutable => "NOT_EXECUTABLE",
            Code::Failed => "FAILED",
            Code::AbnormalTermination => "ABNORMAL_TERMINATION",
            Code::SpawnError => "SPAWN_ERROR",
            Code::AlreadyStarted => "ALREADY_STARTED",
            Code::NotRunning => "NOT_RUNNING",
            Code::Success => "SUCCESS",
            Code::AlreadyAdded => "ALREADY_ADDED",
            Code::StillRunning => "STILL_RUNNING",
            Code::CantReread => "CANT_REREAD",
        }
    }

    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// `NAME: extra`, as supervisord's `RPCError(code, extra)`.
pub fn fault(code: Code, extra: impl Display) -> Fault {
    Fault {
        code: code.number(),
        string: format!("{}: {extra}", code.name()),
    }
}

/// `NAME` alone, as supervisord's `RPCError(code)`.
pub fn bare(code: Code) -> Fault {
    Fault {
        code: code.number(),
        string: code.name().to_string(),
    }
}

type R = Result<Value, Fault>;

/// Call one method (`system.multicall` included).
pub async fn dispatch(cx: &Compat, method: &str, params: Vec<Value>) -> R {
    if method == "system.multicall" {
        return multicall(cx, &params).await;
    }
    call(cx, method, &params).await
}

async fn multicall(cx: &Compat, params: &[Value]) -> R {
    let p = Params(params);
    p.arity(1, 1)?;
    let Some(Value::Array(calls)) = params.first() else {
        return Err(fault(
            Code::IncorrectParameters,
            "system.multicall takes an array of {methodName, params} structs",
        ));
    };
    let mut results = Vec::with_capacity(calls.len());
    for c in calls {
        let r = match (c, c.member("methodName"), c.member("params")) {
            (Value::Struct(_), Some(Value::String(name)), params) => {
                if name == "system.multicall" {
                    Err(fault(
                        Code::IncorrectParameters,
                        "Recursive system.multicall forbidden",
                    ))
                } else {
                    match params {
                        None => call(cx, name, &[]).await,
                        Some(Value::Array(ps)) => call(cx, name, ps).await,
                        Some(_) => Err(bare(Code::IncorrectParameters)),
                    }
                }
            }
            (Value::Struct(_), _, _) => Err(fault(Code::IncorrectParameters, "No methodName")),
            _ => Err(fault(
                Code::IncorrectParameters,
                "each call must be a struct {methodName, params}",
            )),
        };
        // supervisord quirk (SUPERVISORD.md §9 #7): results are not wrapped in arrays.
        results.push(match r {
            Ok(v) => v,
            Err(f) => Value::record([
                ("faultCode", Value::Int(i64::from(f.code))),
                ("faultString", Value::str(f.string)),
            ]),
        });
    }
    Ok(Value::Array(results))
}

/// Positional parameters with Python's leniency (ints from numeric strings, truthiness).
struct Params<'a>(&'a [Value]);

impl Params<'_> {
    /// Python's TypeError on a wrong argument count is INCORRECT_PARAMETERS.
    fn arity(&self, min: usize, max: usize) -> Result<(), Fault> {
        if (min..=max).contains(&self.0.len()) {
            Ok(())
        } else {
            Err(bare(Code::IncorrectParameters))
        }
    }

    fn string(&self, i: usize) -> Result<String, Fault> {
        match self.0.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Base64(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            _ => Err(bare(Code::IncorrectParameters)),
        }
    }

    fn int(&self, i: usize) -> Result<i64, Fault> {
        match self.0.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            Some(Value::Bool(b)) => Ok(i64::from(*b)),
            Some(Value::Double(d)) if d.is_finite() => Ok(d.trunc() as i64),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| fault(Code::IncorrectParameters, format!("{s:?} is not an int"))),
            _ => Err(bare(Code::IncorrectParameters)),
        }
    }

    fn flag(&self, i: usize, default: bool) -> Result<bool, Fault> {
        match self.0.get(i) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Int(n)) => Ok(*n != 0),
            Some(Value::String(s)) => Ok(!s.is_empty()),
            Some(Value::Nil) => Ok(false),
            Some(_) => Err(bare(Code::IncorrectParameters)),
        }
    }
}

async fn call(cx: &Compat, method: &str, params: &[Value]) -> R {
    let mut parts = method.split('.');
    let (Some(ns), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bare(Code::UnknownMethod));
    };
    if name.starts_with('_') || !METHODS.iter().any(|(m, _, _)| *m == method) {
        return Err(bare(Code::UnknownMethod));
    }
    // supervisord's `_update`: while shutting down or restarting (`mood < RUNNING`),
    // `supervisor.*` answers SHUTDOWN_STATE (not sendRemoteCommEvent, which skips the check).
    // vigil lets getState through, so that it can say RESTARTING or SHUTDOWN (supervisord's
    // own getState is refused then).
    if ns == "supervisor"
        && name != "sendRemoteCommEvent"
        && name != "getState"
        && cx.daemon.view().state != DaemonState::Running
    {
        return Err(bare(Code::ShutdownState));
    }
    let p = Params(params);
    match name {
        "listMethods" if ns == "system" => {
            p.arity(0, 0)?;
            Ok(Value::Array(
                METHODS.iter().map(|(m, _, _)| Value::str(*m)).collect(),
            ))
        }
        "methodHelp" if ns == "system" => {
            p.arity(1, 1)?;
            let m = p.string(0)?;
            METHODS
                .iter()
                .find(|(n, _, _)| *n == m)
                .map(|(_, _, help)| Value::str(*help))
                .ok_or_else(|| bare(Code::SignatureUnsupported))
        }
        "methodSignature" if ns == "system" => {
            p.arity(1, 1)?;
            let m = p.string(0)?;
            METHODS
                .iter()
                .find(|(n, _, _)| *n == m)
                .map(|(_, sig, _)| Value::Array(sig.iter().map(|t| Value::str(*t)).collect()))
                .ok_or_else(|| bare(Code::SignatureUnsupported))
        }
        "getAPIVersion" | "getVersion" => {
            p.arity(0, 0)?;
            Ok(Value::str(API_VERSION))
        }
        "getSupervisorVersion" => {
            p.arity(0, 0)?;
            Ok(Value::str(SUPERVISOR_VERSION))
        }
        "getIdentification" => {
            p.arity(0, 0)?;
            Ok(Value::str(cx.daemon.view().active.identifier()))
        }
        "getState" => {
            p.arity(0, 0)?;
            let st = cx.daemon.view().state;
            Ok(Value::record([
                ("statecode", Value::Int(st.code())),
                ("statename", Value::str(st.name())),
            ]))
        }
        "getPID" => {
            p.arity(0, 0)?;
            Ok(Value::Int(i64::from(std::process::id())))
        }
        "readLog" | "readMainLog" => {
            p.arity(2, 2)?;
            read_main_log(cx, p.int(0)?, p.int(1)?).await
        }
        "clearLog" => {
            p.arity(0, 0)?;
            clear_main_log(cx)
        }
        "shutdown" => {
            p.arity(0, 0)?;
            cx.daemon.shutdown().await;
            Ok(Value::Bool(true))
        }
        "restart" => {
            p.arity(0, 0)?;
            match cx.daemon.reload().await {
                Ok(_) => Ok(Value::Bool(true)),
                Err(e) => Err(fault(Code::CantReread, e)),
            }
        }
        "reloadConfig" => {
            p.arity(0, 0)?;
            cx.daemon
                .reread()
                .await
                .map_err(|e| fault(Code::CantReread, e))?;
            let view = cx.daemon.view();
            let c = groups::changes(&view.active, &view.loaded);
            let names = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
            Ok(Value::Array(vec![Value::Array(vec![
                names(c.added),
                names(c.changed),
                names(c.removed),
            ])]))
        }
        "addProcessGroup" => {
            p.arity(1, 1)?;
            let g = p.string(0)?;
            cx.daemon
                .add_group(&g)
                .await
                .map_err(|e| group_fault(e, &g))?;
            Ok(Value::Bool(true))
        }
        "removeProcessGroup" => {
            p.arity(1, 1)?;
            let g = p.string(0)?;
            cx.daemon
                .remove_group(&g)
                .await
                .map_err(|e| group_fault(e, &g))?;
            Ok(Value::Bool(true))
        }
        "startProcess" => {
            p.arity(1, 2)?;
            let spec = p.string(0)?;
            let wait = p.flag(1, true)?;
            match lookup(cx, &spec)? {
                Found::Group(g) => start_many(cx, members_by_priority(cx, &g), wait).await,
                Found::Process(proc_) => {
                    check_start(cx, &proc_, &spec)?;
                    start_checked(cx, &proc_, &spec, wait).await?;
                    Ok(Value::Bool(true))
                }
            }
        }
        "startProcessGroup" => {
            p.arity(1, 2)?;
            let g = p.string(0)?;
            let wait = p.flag(1, true)?;
            let members = group_members(cx, &g)?;
            start_many(cx, members, wait).await
        }
        "startAllProcesses" => {
            p.arity(0, 1)?;
            let wait = p.flag(0, true)?;
            start_many(cx, all_by_priority(cx), wait).await
        }
        "stopProcess" => {
            p.arity(1, 2)?;
            let spec = p.string(0)?;
            let wait = p.flag(1, true)?;
            match lookup(cx, &spec)? {
                Found::Group(g) => stop_many(cx, members_by_priority(cx, &g), wait).await,
                Found::Process(proc_) => {
                    check_stop(&proc_, &spec)?;
                    stop_checked(cx, &proc_, &spec, wait).await?;
                    Ok(Value::Bool(true))
                }
            }
        }
        "stopProcessGroup" => {
            p.arity(1, 2)?;
            let g = p.string(0)?;
            let wait = p.flag(1, true)?;
            let members = group_members(cx, &g)?;
            stop_many(cx, members, wait).await
        }
        "stopAllProcesses" => {
            p.arity(0, 1)?;
            let wait = p.flag(0, true)?;
            // vigil fixes supervisord#217: `stop all` goes in reverse priority order.
            let mut all = all_by_priority(cx);
            all.reverse();
            stop_many(cx, all, wait).await
        }
        "signalProcess" => {
            p.arity(2, 2)?;
            let spec = p.string(0)?;
            let sig = params.get(1).cloned().unwrap_or(Value::Nil);
            match lookup(cx, &spec)? {
                Found::Group(g) => signal_many(cx, members_by_priority(cx, &g), &sig).await,
                Found::Process(proc_) => {
                    signal_one(cx, &proc_, &spec, &sig).await?;
                    Ok(Value::Bool(true))
                }
            }
        }
        "signalProcessGroup" => {
            p.arity(2, 2)?;
            let g = p.string(0)?;
            let sig = params.get(1).cloned().unwrap_or(Value::Nil);
            let members = group_members(cx, &g)?;
            signal_many(cx, members, &sig).await
        }
        "signalAllProcesses" => {
            p.arity(1, 1)?;
            let sig = params.first().cloned().unwrap_or(Value::Nil);
            signal_many(cx, all_by_priority(cx), &sig).await
        }
        "getProcessInfo" => {
            p.arity(1, 1)?;
            let spec = p.string(0)?;
            match lookup(cx, &spec)? {
                Found::Group(_) => Err(fault(Code::BadName, &spec)),
                Found::Process(proc_) => Ok(process_info(&proc_)),
            }
        }
        "getAllProcessInfo" => {
            p.arity(0, 0)?;
            let snap = cx.supervisor.snapshot();
            let mut all: Vec<&ProcessInfo> = snap.processes.iter().collect();
            all.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
            Ok(Value::Array(all.into_iter().map(process_info).collect()))
        }
        "getAllConfigInfo" => {
            p.arity(0, 0)?;
            Ok(config_info(cx))
        }
        "readProcessStdoutLog" | "readProcessLog" | "readProcessStderrLog" => {
            p.arity(3, 3)?;
            let spec = p.string(0)?;
            let (offset, length) = (p.int(1)?, p.int(2)?);
            let proc_ = process_only(cx, &spec)?;
            let path = if name == "readProcessStderrLog" {
                proc_.stderr_logfile
            } else {
                proc_.stdout_logfile
            };
            read_log_file(path, offset, length).await
        }
        "tailProcessStdoutLog" | "tailProcessLog" | "tailProcessStderrLog" => {
            p.arity(3, 3)?;
            let spec = p.string(0)?;
            let (offset, length) = (p.int(1)?, p.int(2)?);
            let proc_ = process_only(cx, &spec)?;
            let path = if name == "tailProcessStderrLog" {
                proc_.stderr_logfile
            } else {
                proc_.stdout_logfile
            };
            Ok(tail_log_file(path, offset, length).await)
        }
        "clearProcessLogs" | "clearProcessLog" => {
            p.arity(1, 1)?;
            let spec = p.string(0)?;
            let proc_ = process_only(cx, &spec)?;
            clear_logs(cx, &proc_).map_err(|_| fault(Code::Failed, &spec))?;
            Ok(Value::Bool(true))
        }
        "clearAllProcessLogs" => {
            p.arity(0, 0)?;
            let results = all_by_priority(cx)
                .iter()
                .map(|proc_| {
                    let r = clear_logs(cx, proc_).map_err(|_| fault(Code::Failed, namespec(proc_)));
                    result(proc_, &r)
                })
                .collect();
            Ok(Value::Array(results))
        }
        "sendProcessStdin" => {
            p.arity(2, 2)?;
            let spec = p.string(0)?;
            let data = match params.get(1) {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Base64(b)) => b.clone(),
                Some(other) => return Err(fault(Code::IncorrectParameters, py_str(other))),
                None => return Err(bare(Code::IncorrectParameters)),
            };
            let proc_ = process_only(cx, &spec)?;
            match cx.supervisor.write_stdin(&proc_.name, data).await {
                Ok(()) => Ok(Value::Bool(true)),
                Err(StdinError::NoSuchProcess(_)) => Err(fault(Code::BadName, &spec)),
                Err(StdinError::NotRunning(_)) => Err(fault(Code::NotRunning, &spec)),
                Err(StdinError::Closed(..)) => Err(fault(Code::NoFile, &spec)),
            }
        }
        "sendRemoteCommEvent" => {
            p.arity(2, 2)?;
            // supervisord formats both with `%s`: any value is accepted, as Python's str().
            let (kind, data) = (
                python_str(params.first().unwrap_or(&Value::Nil)),
                python_str(params.get(1).unwrap_or(&Value::Nil)),
            );
            cx.events.submit(
                "remote_communication",
                crate::fields! {"kind" => kind, "data" => data},
            );
            Ok(Value::Bool(true))
        }
        _ => Err(bare(Code::UnknownMethod)),
    }
}

// ---------------------------------------------------------------------------------------
// Names

/// supervisord's `split_namespec`.
pub fn split_namespec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((g, p)) if p.is_empty() || p == "*" => (g, None),
        Some((g, p)) => (g, Some(p)),
        None => (spec, Some(spec)),
    }
}

/// supervisord's `make_namespec`: `name`, or `group:name` when they differ.
pub fn namespec(p: &ProcessInfo) -> String {
    if p.group == p.name {
        p.name.clone()
    } else {
        format!("{}:{}", p.group, p.name)
    }
}

/// The actor's unambiguous target for one process.
fn target(p: &ProcessInfo) -> String {
    format!("{}:{}", p.group, p.name)
}

enum Found {
    Process(Box<ProcessInfo>),
    Group(String),
}

fn lookup(cx: &Compat, spec: &str) -> Result<Found, Fault> {
    let (group, process) = split_namespec(spec);
    let snap = cx.supervisor.snapshot();
    let members: Vec<&ProcessInfo> = snap.processes.iter().filter(|p| p.group == group).collect();
    if members.is_empty() {
        return Err(fault(Code::BadName, spec));
    }
    match process {
        None => Ok(Found::Group(group.to_string())),
        Some(name) => members
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| Found::Process(Box::new(p.clone())))
            .ok_or_else(|| fault(Code::BadName, spec)),
    }
}

/// One process (a group spec is BAD_NAME, as in supervisord's log and info methods).
fn process_only(cx: &Compat, spec: &str) -> Result<ProcessInfo, Fault> {
    match lookup(cx, spec)? {
        Found::Process(p) => Ok(*p),
        Found::Group(_) => Err(fault(Code::BadName, spec)),
    }
}

fn sort_by_priority(cx: &Compat, mut procs: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    let view = cx.daemon.view();
    procs.sort_by_cached_key(|p| {
        (
            groups::priority(&view.active, &p.group).unwrap_or(p.priority),
            p.group.clone(),
            p.priority,
            p.name.clone(),
        )
    });
    procs
}

fn members_by_priority(cx: &Compat, group: &str) -> Vec<ProcessInfo> {
    let snap = cx.supervisor.snapshot();
    let members = snap
        .processes
        .iter()
        .filter(|p| p.group == group)
        .cloned()
        .collect();
    sort_by_priority(cx, members)
}

/// A group by exact name (`startProcessGroup` and friends), BAD_NAME if absent.
fn group_members(cx: &Compat, group: &str) -> Result<Vec<ProcessInfo>, Fault> {
    let members = members_by_priority(cx, group);
    if members.is_empty() {
        return Err(fault(Code::BadName, group));
    }
    Ok(members)
}

fn all_by_priority(cx: &Compat) -> Vec<ProcessInfo> {
    sort_by_priority(cx, cx.supervisor.snapshot().processes.clone())
}

/// supervisord's per-process result struct of group operations.
fn result(p: &ProcessInfo, r: &Result<(), Fault>) -> Value {
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

fn supervisor_fault(e: &SupervisorError, spec: &str) -> Fault {
    match e {
        SupervisorError::ShuttingDown => bare(Code::ShutdownState),
        SupervisorError::NoSuchProcess(_) | SupervisorError::NoSuchGroup(_) => {
            fault(Code::BadName, spec)
        }
    }
}

/// The fault for a failed [`ActionResult`]: supervisord's code, with the name as the text
/// (FAILED carries the reason).
fn action_fault(r: &ActionResult, spec: &str) -> Fault {
    match r.fault.as_deref().and_then(Code::from_name) {
        Some(Code::Failed) | None => fault(
            Code::Failed,
            r.message.clone().unwrap_or_else(|| spec.to_string()),
        ),
        Some(code) => fault(code, spec),
    }
}

fn group_fault(e: GroupError, name: &str) -> Fault {
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
fn check_start(cx: &Compat, p: &ProcessInfo, spec: &str) -> Result<(), Fault> {
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

fn command_problem(cx: &Compat, p: &ProcessInfo) -> Option<String> {
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

async fn start_checked(cx: &Compat, p: &ProcessInfo, spec: &str, wait: bool) -> Result<(), Fault> {
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
async fn start_many(cx: &Compat, procs: Vec<ProcessInfo>, wait: bool) -> R {
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

fn check_stop(p: &ProcessInfo, spec: &str) -> Result<(), Fault> {
    if p.state.is_running() {
        Ok(())
    } else {
        Err(fault(Code::NotRunning, spec))
    }
}

async fn stop_checked(cx: &Compat, p: &ProcessInfo, spec: &str, wait: bool) -> Result<(), Fault> {
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
async fn stop_many(cx: &Compat, procs: Vec<ProcessInfo>, wait: bool) -> R {
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
fn py_str(v: &Value) -> String {
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
fn python_repr_str(s: &str) -> String {
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

async fn signal_one(cx: &Compat, p: &ProcessInfo, spec: &str, sig: &Value) -> Result<(), Fault> {
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
async fn signal_many(cx: &Compat, procs: Vec<ProcessInfo>, sig: &Value) -> R {
    let mut out = Vec::new();
    for p in procs.iter().filter(|p| p.state.is_signallable()) {
        let r = signal_one(cx, p, &namespec(p), sig).await;
        out.push(result(p, &r));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------
// Info

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
fn config_info(cx: &Compat) -> Value {
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
fn is_auto_log(c: &crate::config::Config, process: &str, channel: &str, path: &Path) -> bool {
    let ext = if channel == "stdout" { "out" } else { "err" };
    let supervisord_name = format!("{process}-{channel}---{}.log", c.identifier());
    path == c.logs_dir().join(format!("{process}.{ext}.log"))
        || path
            .file_name()
            .is_some_and(|f| f.to_string_lossy() == supervisord_name)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------
// Logs

/// supervisord's `readFile` offsets: `(start, max length)` in a file of `size` bytes.
pub fn read_range(offset: i64, length: i64, size: u64) -> Result<(u64, u64), Fault> {
    if offset < 0 {
        // The last -offset bytes; a length is not allowed then.
        if length != 0 {
            return Err(bare(Code::BadArguments));
        }
        let want = offset.unsigned_abs();
        Ok((size.saturating_sub(want), want))
    } else {
        if length < 0 {
            return Err(bare(Code::BadArguments));
        }
        let len = if length == 0 { u64::MAX } else { length as u64 };
        Ok((offset as u64, len))
    }
}

/// supervisord's `tailFile` arithmetic: `(offset, length, overflow)` to read.
pub fn tail_range(offset: i64, length: i64, size: i64) -> (i64, i64, bool) {
    let (mut offset, mut length) = (offset, length);
    let mut overflow = false;
    if size > offset.saturating_add(length) {
        overflow = true;
        offset = size - 1;
    }
    if offset.saturating_add(length) > size {
        if offset > size - 1 {
            length = 0;
        }
        offset = size.saturating_sub(length);
    }
    (offset.max(0), length.max(0), overflow)
}

fn read_at(path: &Path, start: u64, len: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    if start >= size || len == 0 {
        return Ok((Vec::new(), size));
    }
    f.seek(SeekFrom::Start(start))?;
    let n = len.min(size - start).min(MAX_READ);
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok((buf, size))
}

fn file_size(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn read_log_file(path: Option<String>, offset: i64, length: i64) -> R {
    let Some(path) = path else {
        // supervisord's `RPCError(NO_FILE, None)`: no extra text.
        return Err(bare(Code::NoFile));
    };
    if !Path::new(&path).exists() {
        // Configured but not written yet: empty, as supervisord's AUTO log files are (it
        // creates them at start). Offsets are still checked.
        read_range(offset, length, 0)?;
        return Ok(Value::str(""));
    }
    let r = blocking(move || -> Result<Vec<u8>, Fault> {
        let p = Path::new(&path);
        let size = file_size(p).map_err(|_| bare(Code::Failed))?;
        let (start, len) = read_range(offset, length, size)?;
        read_at(p, start, len)
            .map(|(b, _)| b)
            .map_err(|_| bare(Code::Failed))
    })
    .await
    .unwrap_or_else(|| Err(bare(Code::Failed)))?;
    Ok(Value::String(String::from_utf8_lossy(&r).into_owned()))
}

async fn tail_log_file(path: Option<String>, offset: i64, length: i64) -> Value {
    let empty = |o: i64| Value::Array(vec![Value::str(""), Value::Int(o), Value::Bool(false)]);
    let Some(path) = path.filter(|p| Path::new(p).exists()) else {
        return empty(0);
    };
    blocking(move || {
        let p = Path::new(&path);
        let Ok(size) = file_size(p) else {
            return empty(offset);
        };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let (start, len, overflow) = tail_range(offset, length, size);
        match read_at(p, start as u64, len as u64) {
            Ok((data, _)) => Value::Array(vec![
                Value::String(String::from_utf8_lossy(&data).into_owned()),
                Value::Int(size),
                Value::Bool(overflow),
            ]),
            Err(_) => empty(offset),
        }
    })
    .await
    .unwrap_or_else(|| empty(offset))
}

/// Truncate a process's log files (writers append, so they carry on at the new end) and
/// forget its in-memory lines.
fn clear_logs(cx: &Compat, p: &ProcessInfo) -> std::io::Result<()> {
    for path in [&p.stdout_logfile, &p.stderr_logfile].into_iter().flatten() {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(f) => f.set_len(0)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(out) = cx.supervisor.output(&p.name) {
        out.stdout.clear();
        out.stderr.clear();
    }
    Ok(())
}

/// The main log's file, when `[supervisord] logfile` configures one.
pub fn main_log_file(cx: &Compat) -> Option<PathBuf> {
    cx.daemon
        .view()
        .active
        .rpc
        .as_ref()
        .and_then(|r| r.logfile.as_ref())
        .and_then(|l| l.path.clone())
}

async fn read_main_log(cx: &Compat, offset: i64, length: i64) -> R {
    if let Some(path) = main_log_file(cx) {
        return read_log_file(Some(path.display().to_string()), offset, length).await;
    }
    let log = main_log();
    let (start, len) = read_range(offset, length, log.size())?;
    let (data, _) = log.read(start, len.min(MAX_READ));
    Ok(Value::String(String::from_utf8_lossy(&data).into_owned()))
}

fn clear_main_log(cx: &Compat) -> R {
    if let Some(path) = main_log_file(cx) {
        if !path.exists() {
            return Err(bare(Code::NoFile));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .map_err(|_| bare(Code::Failed))?;
    }
    main_log().clear();
    tracing::info!("reopening log file");
    Ok(Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        for c in Code::ALL {
            assert_eq!(Code::from_name(c.name()), Some(c));
        }
        let nums: Vec<i32> = Code::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(
            nums,
            vec![
                1, 2, 3, 4, 6, 10, 11, 20, 21, 30, 40, 50, 60, 70, 80, 90, 91, 92
            ]
        );
        assert_eq!(fault(Code::BadName, "foo").string, "BAD_NAME: foo");
        assert_eq!(
            bare(Code::IncorrectParameters).string,
            "INCORRECT_PARAMETERS"
        );
    }

    #[test]
    fn namespecs_split_like_supervisord() {
        assert_eq!(split_namespec("foo"), ("foo", Some("foo")));
        assert_eq!(split_namespec("g:p"), ("g", Some("p")));
        assert_eq!(split_namespec("g:*"), ("g", None));
        assert_eq!(split_namespec("g:"), ("g", None));
        assert_eq!(split_namespec("g:p:q"), ("g", Some("p:q")));
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal(&Value::str("HUP")), Some(1));
        assert_eq!(parse_signal(&Value::str("sigterm")), Some(15));
        assert_eq!(parse_signal(&Value::str(" 9 ")), Some(9));
        assert_eq!(parse_signal(&Value::Int(10)), Some(10));
        assert_eq!(parse_signal(&Value::str("BOGUS")), None);
        assert_eq!(parse_signal(&Value::str("999")), None);
        assert_eq!(parse_signal(&Value::Bool(true)), None);
    }

    #[test]
    fn timedelta_like_python() {
        assert_eq!(timedelta(0), "0:00:00");
        assert_eq!(timedelta(41), "0:00:41");
        assert_eq!(timedelta(3 * 3600 + 61), "3:01:01");
        assert_eq!(timedelta(86_400 + 5), "1 day, 0:00:05");
        assert_eq!(timedelta(3 * 86_400 + 36_000), "3 days, 10:00:00");
    }

    #[test]
    fn descriptions_like_supervisord() {
        use ProcessState::*;
        assert_eq!(
            describe(Running, 100, 0, 141, 4282, "", "x"),
            "pid 4282, uptime 0:00:41"
        );
        assert_eq!(describe(Stopped, 0, 0, 5, 0, "", "x"), "Not started");
        assert_eq!(
            describe(Fatal, 1, 2, 3, 0, "", "x"),
            "unknown error (try \"tail x\")"
        );
        assert_eq!(
            describe(
                Backoff,
                1,
                2,
                3,
                0,
                "Exited too quickly (process log may have details)",
                "x"
            ),
            "Exited too quickly (process log may have details)"
        );
        assert_eq!(describe(Starting, 1, 0, 3, 9, "", "x"), "");
        assert_eq!(describe(Stopping, 1, 0, 3, 9, "", "x"), "");
        let stopped = describe(Exited, 1, 1_795_429_213, 3, 0, "", "x");
        assert_eq!(stopped.len(), "Nov 23 10:21 AM".len(), "{stopped}");
    }

    #[test]
    fn read_offsets_like_read_file() {
        assert_eq!(read_range(-1600, 0, 100), Ok((0, 1600)));
        assert_eq!(read_range(-10, 0, 100), Ok((90, 10)));
        assert_eq!(read_range(5, 0, 100), Ok((5, u64::MAX)));
        assert_eq!(read_range(5, 10, 100), Ok((5, 10)));
        assert_eq!(read_range(-5, 3, 100), Err(bare(Code::BadArguments)));
        assert_eq!(read_range(5, -3, 100), Err(bare(Code::BadArguments)));
    }

    #[test]
    fn tail_offsets_like_tail_file() {
        // Fits: from offset = size - length (clamped to 0); the read stops at the end.
        assert_eq!(tail_range(0, 100, 50), (0, 100, false));
        assert_eq!(tail_range(40, 100, 50), (0, 100, false));
        assert_eq!(tail_range(45, 5, 50), (45, 5, false));
        // Grown past offset+length: overflow, the last `length` bytes.
        assert_eq!(tail_range(0, 10, 50), (40, 10, true));
        // Offset past the end: nothing.
        assert_eq!(tail_range(60, 10, 50), (50, 0, false));
        // Empty file.
        assert_eq!(tail_range(0, 10, 0), (0, 0, false));
    }
}
