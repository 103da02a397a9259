//! supervisord's XML-RPC methods (`supervisor.*`, `system.*`, SUPERVISORD.md §4.3) over
//! vigil's handles: the supervisor actor for processes, the daemon loop for shutdown, reload
//! and groups, the event log for remote communication, log files for the log methods.
//!
//! Names are resolved as supervisord resolves them (`split_namespec`: `name` is group `name`
//! process `name`; `group:*` and `group:` are the whole group), faults carry supervisord's
//! codes and texts (`BAD_NAME: foo`), and group operations answer supervisord's result
//! structs `{name, group, status, description}`.

mod control;
mod info;
mod logs;
mod lookup;
pub use control::*;
pub use info::*;
pub use logs::*;
pub use lookup::*;

use std::fmt::Display;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use futures::future::join_all;
use vigil_core::program::ProcessState;

use super::Compat;
use super::DaemonState;
use super::groups::{self, GroupError};
use super::mainlog::main_log;
use super::methods::METHODS;
use super::xmlrpc::{Fault, Value};
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
