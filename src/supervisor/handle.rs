//! The supervisor's public face: [`SupervisorHandle`] (commands over a channel to the actor),
//! its errors, results and the [`Snapshot`] of every process read through a `watch`.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("no such process: {0}")]
    NoSuchProcess(String),
    #[error("no such group: {0}")]
    NoSuchGroup(String),
    #[error("supervisor is shutting down or restarting")]
    ShuttingDown,
}

/// The outcome of an action on one process.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActionResult {
    /// `group:process`.
    pub name: String,
    pub ok: bool,
    /// supervisord-style fault name when not ok: ALREADY_STARTED, NOT_RUNNING, SPAWN_ERROR, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ActionResult {
    pub(crate) fn ok(name: String) -> Self {
        ActionResult {
            name,
            ok: true,
            fault: None,
            message: None,
        }
    }
    pub(crate) fn fail(name: String, fault: &str, message: impl Into<String>) -> Self {
        ActionResult {
            name,
            ok: false,
            fault: Some(fault.into()),
            message: Some(message.into()),
        }
    }
}

pub(crate) type Reply<T> = oneshot::Sender<T>;

pub(crate) type ActionReply = Reply<Result<Vec<ActionResult>, SupervisorError>>;

/// Requests to the actor.
pub enum Command {
    Start {
        target: String,
        wait: bool,
        reply: ActionReply,
    },
    Stop {
        target: String,
        wait: bool,
        reply: ActionReply,
    },
    Restart {
        target: String,
        reply: ActionReply,
    },
    Signal {
        target: String,
        signal: i32,
        reply: ActionReply,
    },
    Reload {
        config: Box<Config>,
        reply: Reply<ReloadReport>,
    },
    /// supervisord's restart: stop everything, then start `config` as at start-up.
    FullRestart {
        config: Box<Config>,
        reply: Reply<ReloadReport>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    Ping {
        reply: Reply<()>,
    },
    /// Write to a process's stdin (supervisord's `sendProcessStdin`).
    WriteStdin {
        name: String,
        data: Vec<u8>,
        reply: Reply<Result<(), StdinError>>,
    },
}

/// Why `write_stdin` failed (supervisord's BAD_NAME, NOT_RUNNING, NO_FILE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StdinError {
    #[error("no such process: {0}")]
    NoSuchProcess(String),
    #[error("{0} is not running")]
    NotRunning(String),
    #[error("the stdin of {0} is closed: {1}")]
    Closed(String, String),
}

pub(crate) type StdinWrite = (Vec<u8>, Reply<Result<(), StdinError>>);

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    /// Restarted: an option that shapes the running child changed.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Updated in place without a restart: only supervision options changed (priority,
    /// autorestart, startsecs, startretries, exitcodes, stop*, backoff, critical, readiness,
    /// depends_on, autostart) — vigil's fix for supervisord #214/#1154.
    pub updated: Vec<String>,
}

/// Health-endpoint status of one process (seed 001's vocabulary).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    NotStarted,
    Running,
    Stopped,
    Crashed,
    Fatal,
}

/// A read-only view of one process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    pub name: String,
    pub group: String,
    pub program: String,
    pub state: ProcessState,
    pub statecode: i32,
    pub health: Health,
    pub pid: Option<u32>,
    pub priority: i32,
    /// When the current (or last) child was spawned.
    pub start: Option<DateTime<Utc>>,
    /// When it last entered a stopped state.
    pub stop: Option<DateTime<Utc>>,
    pub uptime_secs: Option<u64>,
    pub exitstatus: i32,
    pub last_exit: Option<Exit>,
    pub spawnerr: Option<String>,
    pub tries: u32,
    pub consecutive_failures: u32,
    pub restarts: u64,
    /// Illegal transitions refused (`vigil_illegal_transitions_total`; not in the JSON).
    #[serde(skip)]
    pub illegal_transitions: u64,
    pub autostart: bool,
    pub critical: bool,
    pub stdout_logfile: Option<String>,
    pub stderr_logfile: Option<String>,
    /// supervisorctl's description column.
    pub description: String,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub processes: Vec<ProcessInfo>,
    /// True once every autostart process has left STARTING (RUNNING, or failed for good).
    pub started: bool,
}

/// Options that do not come from the config file.
#[derive(Clone, Default)]
pub struct Options {
    /// Extra environment for every child (VIGIL_URL, SUPERVISOR_SERVER_URL, …).
    pub extra_env: Vec<(String, String)>,
    /// Where stdout lines of `events = "stdout"` programs go: (process, line).
    pub stdout_events: Option<mpsc::Sender<(String, String)>>,
    /// Where event-listener processes' stdout, stdin, states and exits go.
    pub listener_io: Option<mpsc::UnboundedSender<crate::listeners::ListenerIo>>,
    /// Every task the supervisor spawns (its actor, each child's waiter, output pumps,
    /// readiness probes, stdin writers, action replies) is spawned on this tracker; all of
    /// them end once the actor has shut down (every child reaped, every pipe at EOF).
    pub tasks: tokio_util::task::TaskTracker,
}

/// The API's handle on the supervisor; cheap to clone.
#[derive(Clone)]
pub struct SupervisorHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) snapshot: watch::Receiver<Arc<Snapshot>>,
    pub(crate) outputs: Arc<std::sync::RwLock<HashMap<String, Arc<Output>>>>,
}

impl SupervisorHandle {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// The output taps of a process (by process name or `group:name`).
    pub fn output(&self, name: &str) -> Option<Arc<Output>> {
        let key = name.rsplit(':').next().unwrap_or(name);
        self.outputs.read().ok()?.get(key).cloned()
    }

    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, SupervisorError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SupervisorError::ShuttingDown)?;
        rx.await.map_err(|_| SupervisorError::ShuttingDown)
    }

    pub async fn start(
        &self,
        target: &str,
        wait: bool,
    ) -> Result<Vec<ActionResult>, SupervisorError> {
        let target = target.to_string();
        self.ask(|reply| Command::Start {
            target,
            wait,
            reply,
        })
        .await?
    }

    pub async fn stop(
        &self,
        target: &str,
        wait: bool,
    ) -> Result<Vec<ActionResult>, SupervisorError> {
        let target = target.to_string();
        self.ask(|reply| Command::Stop {
            target,
            wait,
            reply,
        })
        .await?
    }

    pub async fn restart(&self, target: &str) -> Result<Vec<ActionResult>, SupervisorError> {
        let target = target.to_string();
        self.ask(|reply| Command::Restart { target, reply }).await?
    }

    pub async fn signal(
        &self,
        target: &str,
        signal: i32,
    ) -> Result<Vec<ActionResult>, SupervisorError> {
        let target = target.to_string();
        self.ask(|reply| Command::Signal {
            target,
            signal,
            reply,
        })
        .await?
    }

    pub async fn reload(&self, config: Config) -> Result<ReloadReport, SupervisorError> {
        self.ask(|reply| Command::Reload {
            config: Box::new(config),
            reply,
        })
        .await
    }

    /// supervisord's restart: stop every process in reverse priority, then run `config` as
    /// at start-up. Resolves once the new configuration is started (an error if a shutdown
    /// came first).
    pub async fn restart_all(&self, config: Config) -> Result<ReloadReport, SupervisorError> {
        self.ask(|reply| Command::FullRestart {
            config: Box::new(config),
            reply,
        })
        .await
    }

    /// Stop everything in reverse priority order and end the actor.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }

    /// Round-trip through the actor's loop (liveness check for the systemd watchdog).
    pub async fn ping(&self) -> bool {
        self.ask(|reply| Command::Ping { reply }).await.is_ok()
    }

    /// Write `data` to the stdin of process `name`; resolves once written (in order with
    /// other writes to the same process). The actor never blocks on the pipe.
    pub async fn write_stdin(&self, name: &str, data: Vec<u8>) -> Result<(), StdinError> {
        let name = name.to_string();
        let gone = StdinError::NotRunning(name.clone());
        self.ask(|reply| Command::WriteStdin { name, data, reply })
            .await
            .unwrap_or(Err(gone))
    }
}
