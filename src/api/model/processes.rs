//! Processes: `GET /api/programs`, `POST /api/programs/{name}/{action}`,
//! `GET /api/programs/{name}/log` and `GET /health`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigil_core::program::Exit;

use crate::supervisor::{ActionResult, Health, ProcessInfo};

/// One process as `GET /api/programs` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub autostart: bool,
    pub consecutive_failures: u32,
    pub critical: bool,
    /// supervisorctl's description column.
    pub description: String,
    pub exitstatus: i32,
    pub group: String,
    /// [`health_name`]: `not_started`, `running`, `stopped`, `crashed`, `fatal`.
    pub health: String,
    pub last_exit: Option<LastExit>,
    /// `group:name`, or the program's name when the group has one process.
    pub name: String,
    pub pid: Option<u32>,
    pub priority: i32,
    pub program: String,
    pub restarts: u64,
    pub spawnerr: Option<String>,
    pub start: Option<DateTime<Utc>>,
    /// supervisord's state name: `STOPPED`, `STARTING`, `RUNNING`, `BACKOFF`, `STOPPING`,
    /// `EXITED`, `FATAL`, `UNKNOWN`.
    pub state: String,
    /// supervisord's numeric state code.
    pub statecode: i32,
    pub stderr_logfile: Option<String>,
    pub stdout_logfile: Option<String>,
    pub stop: Option<DateTime<Utc>>,
    pub tries: u32,
    pub uptime_secs: Option<u64>,
}

/// How the last child ended: `{"kind": "code", "value": 0}` or `{"kind": "signal", "value": 9}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum LastExit {
    Code(i32),
    Signal(i32),
}

impl From<Exit> for LastExit {
    fn from(e: Exit) -> Self {
        match e {
            Exit::Code(c) => LastExit::Code(c),
            Exit::Signal(s) => LastExit::Signal(s),
        }
    }
}

/// The health vocabulary (seed 001) on the wire.
pub fn health_name(h: Health) -> &'static str {
    match h {
        Health::NotStarted => "not_started",
        Health::Running => "running",
        Health::Stopped => "stopped",
        Health::Crashed => "crashed",
        Health::Fatal => "fatal",
    }
}

impl From<&ProcessInfo> for Process {
    fn from(p: &ProcessInfo) -> Self {
        Process {
            name: p.name.clone(),
            group: p.group.clone(),
            program: p.program.clone(),
            state: p.state.name().to_string(),
            statecode: p.statecode,
            health: health_name(p.health).to_string(),
            pid: p.pid,
            priority: p.priority,
            start: p.start,
            stop: p.stop,
            uptime_secs: p.uptime_secs,
            exitstatus: p.exitstatus,
            last_exit: p.last_exit.map(LastExit::from),
            spawnerr: p.spawnerr.clone(),
            tries: p.tries,
            consecutive_failures: p.consecutive_failures,
            restarts: p.restarts,
            autostart: p.autostart,
            critical: p.critical,
            stdout_logfile: p.stdout_logfile.clone(),
            stderr_logfile: p.stderr_logfile.clone(),
            description: p.description.clone(),
        }
    }
}

/// `GET /api/programs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramList {
    pub programs: Vec<Process>,
}

/// The outcome of an action on one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// supervisord's fault name when not ok: `ALREADY_STARTED`, `NOT_RUNNING`, `SPAWN_ERROR`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `group:process`.
    pub name: String,
    pub ok: bool,
}

impl From<&ActionResult> for Outcome {
    fn from(r: &ActionResult) -> Self {
        Outcome {
            name: r.name.clone(),
            ok: r.ok,
            fault: r.fault.clone(),
            message: r.message.clone(),
        }
    }
}

/// `POST /api/programs/{name}/{action}`: 200 when every outcome is ok, else 409.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResponse {
    pub ok: bool,
    pub results: Vec<Outcome>,
}

impl ActionResponse {
    pub fn new(results: &[ActionResult]) -> Self {
        ActionResponse {
            ok: results.iter().all(|r| r.ok),
            results: results.iter().map(Outcome::from).collect(),
        }
    }
}

/// `GET /api/programs/{name}/log` (without `follow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLines {
    /// `stdout` or `stderr`.
    pub channel: String,
    pub lines: Vec<String>,
    pub process: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub jobs: JobsHealth,
    /// What degrades vigil itself (store, persistence, load shedding).
    pub problems: Vec<Problem>,
    pub programs: BTreeMap<String, ProgramHealth>,
    /// `ok` or `degraded`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsHealth {
    pub cgroup_mode: String,
    pub memory_enforcement: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

/// One program in `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramHealth {
    pub consecutive_failures: u32,
    /// `null` while running or not started.
    pub last_error: Option<LastError>,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub state: String,
    /// [`health_name`].
    pub status: String,
    /// The last lines of stderr (or stdout when stderr is empty): authenticated callers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<Vec<String>>,
    pub uptime_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// When the process last stopped (RFC 3339).
    pub at: Option<String>,
    pub exit_status: Option<i32>,
    /// The signal's name (`SIGKILL`) when a signal ended it.
    pub signal: Option<String>,
    pub spawnerr: Option<String>,
}

impl ProgramHealth {
    /// `tail`: the output tail to show, `None` for an unauthenticated caller.
    pub fn new(p: &ProcessInfo, tail: Option<Vec<String>>) -> Self {
        let last_error = match p.health {
            Health::Running | Health::NotStarted => None,
            _ => Some(LastError {
                at: crate::supervisor::ts(p.stop),
                exit_status: p.last_exit.and_then(|e| match e {
                    Exit::Code(c) => Some(c),
                    Exit::Signal(_) => None,
                }),
                signal: p.last_exit.and_then(|e| match e {
                    Exit::Signal(s) => Some(crate::supervisor::signal_name(s)),
                    Exit::Code(_) => None,
                }),
                spawnerr: p.spawnerr.clone(),
            }),
        };
        ProgramHealth {
            consecutive_failures: p.consecutive_failures,
            last_error,
            pid: p.pid,
            restarts: p.restarts,
            state: p.state.name().to_string(),
            status: health_name(p.health).to_string(),
            stderr_tail: tail,
            uptime_secs: p.uptime_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::golden::assert_wire;
    use vigil_core::program::ProcessState;

    fn info(health: Health, last_exit: Option<Exit>) -> ProcessInfo {
        let t = |s: &str| Some(s.parse::<DateTime<Utc>>().expect("a time"));
        ProcessInfo {
            name: "web:web_0".into(),
            group: "web".into(),
            program: "web".into(),
            state: ProcessState::Exited,
            statecode: 100,
            health,
            pid: None,
            priority: 999,
            start: t("2026-12-03T20:48:15.123456789Z"),
            stop: t("2026-12-03T20:49:00Z"),
            uptime_secs: None,
            exitstatus: 3,
            last_exit,
            spawnerr: None,
            tries: 1,
            consecutive_failures: 2,
            restarts: 4,
            autostart: true,
            critical: false,
            stdout_logfile: Some("/tmp/web.out".into()),
            stderr_logfile: None,
            description: "Dec 03 08:49 PM".into(),
            illegal_transitions: 0,
        }
    }

    #[test]
    fn a_process_is_served_as_before() {
        let p = info(Health::Crashed, Some(Exit::Code(3)));
        assert_wire(
            &ProgramList {
                programs: vec![Process::from(&p)],
            },
            r#"{"programs":[{"autostart":true,"consecutive_failures":2,"critical":false,"description":"Dec 03 08:49 PM","exitstatus":3,"group":"web","health":"crashed","last_exit":{"kind":"code","value":3},"name":"web:web_0","pid":null,"priority":999,"program":"web","restarts":4,"spawnerr":null,"start":"2026-12-03T20:48:15.123456789Z","state":"EXITED","statecode":100,"stderr_logfile":null,"stdout_logfile":"/tmp/web.out","stop":"2026-12-03T20:49:00Z","tries":1,"uptime_secs":null}]}"#,
        );
        let list = ProgramList {
            programs: vec![Process::from(&info(Health::NotStarted, None))],
        };
        let json = serde_json::to_string(&list).expect("serialises");
        assert!(json.contains(r#""health":"not_started""#), "{json}");
        assert!(json.contains(r#""last_exit":null"#), "{json}");
    }

    #[test]
    fn action_results_are_served_as_before() {
        let results = [
            ActionResult::ok("web:web_0".into()),
            ActionResult::fail("db".into(), "NOT_RUNNING", "db is not running"),
        ];
        assert_wire(
            &ActionResponse::new(&results),
            r#"{"ok":false,"results":[{"name":"web:web_0","ok":true},{"fault":"NOT_RUNNING","message":"db is not running","name":"db","ok":false}]}"#,
        );
        assert!(ActionResponse::new(&results[..1]).ok);
    }

    #[test]
    fn log_lines_are_served_as_before() {
        assert_wire(
            &LogLines {
                channel: "stderr".into(),
                lines: vec!["a".into(), "b".into()],
                process: "web".into(),
            },
            r#"{"channel":"stderr","lines":["a","b"],"process":"web"}"#,
        );
    }

    #[test]
    fn health_is_served_as_before() {
        let crashed = info(Health::Crashed, Some(Exit::Signal(9)));
        let mut running = info(Health::Running, None);
        running.state = ProcessState::Running;
        running.pid = Some(42);
        running.uptime_secs = Some(7);
        let report = HealthReport {
            jobs: JobsHealth {
                cgroup_mode: "none".into(),
                memory_enforcement: "rss".into(),
            },
            problems: vec![Problem {
                code: "state_not_persisted".into(),
                message: "m".into(),
            }],
            programs: BTreeMap::from([
                ("db".to_string(), ProgramHealth::new(&running, None)),
                (
                    "web".to_string(),
                    ProgramHealth::new(&crashed, Some(vec!["boom".into()])),
                ),
            ]),
            status: "degraded".into(),
        };
        assert_wire(
            &report,
            r#"{"jobs":{"cgroup_mode":"none","memory_enforcement":"rss"},"problems":[{"code":"state_not_persisted","message":"m"}],"programs":{"db":{"consecutive_failures":2,"last_error":null,"pid":42,"restarts":4,"state":"RUNNING","status":"running","uptime_secs":7},"web":{"consecutive_failures":2,"last_error":{"at":"2026-12-03T20:49:00.000Z","exit_status":null,"signal":"SIGKILL","spawnerr":null},"pid":null,"restarts":4,"state":"EXITED","status":"crashed","stderr_tail":["boom"],"uptime_secs":null}},"status":"degraded"}"#,
        );
    }
}
