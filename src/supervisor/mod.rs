//! The supervisor actor: owns every process's [`vigil_core::program::Process`] state
//! machine and the real children. One tokio task; it `select!`s on commands, child exits
//! (tokio's SIGCHLD-driven `Child::wait`, no polling) and the earliest state-machine
//! deadline (startsecs, backoff, stopwaitsecs), so every reaction happens when its cause
//! does. Reads go through a `watch` snapshot published after every change.

#[cfg(test)]
mod clock_tests;
mod handle;
mod lifecycle;
#[cfg(test)]
mod listener_tests;
pub mod output;
mod readiness;
mod restart;
pub mod spawn;
pub use handle::*;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

// tokio's clock: the same as std's in production, and a paused test clock drives the
// deadlines (startsecs, backoff, stopwaitsecs) and the actor's `now` alike.
use tokio::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use vigil_core::program::{
    Effect, Exit, Input, Policy, Process, ProcessState, Refused, Transition,
};

use crate::config::{Config, ProcessConfig, ProgramConfig};
use crate::events::{EventLog, rfc3339};
use crate::fields;
use output::{Output, RotatingFile, Sink};

/// How long a child's exit waits for its output pipes to reach EOF (they normally already have:
/// a process's descriptors close before its parent learns that it exited); longer only when a
/// grandchild keeps them open.
const OUTPUT_DRAIN: Duration = Duration::from_millis(50);

/// Whether a new spec changes the child itself (so it must be restarted to apply).
fn needs_restart(old: &Spec, new: &Spec) -> bool {
    let (a, b) = (&old.program, &new.program);
    old.process != new.process
        || old.group != new.group
        || old.listener != new.listener
        || a.directory != b.directory
        || a.environment != b.environment
        || a.user != b.user
        || a.redirect_stderr != b.redirect_stderr
        || a.events_from_stdout != b.events_from_stdout
        || a.stdout_events_enabled != b.stdout_events_enabled
        || a.stderr_events_enabled != b.stderr_events_enabled
        || a.stdout_capture_maxbytes != b.stdout_capture_maxbytes
        || a.stderr_capture_maxbytes != b.stderr_capture_maxbytes
}

enum AfterStop {
    Start,
    Remove,
    Replace(Box<Spec>, bool),
}

/// The configuration of one process entry.
#[derive(Clone, PartialEq)]
struct Spec {
    program: Arc<ProgramConfig>,
    process: ProcessConfig,
    group: String,
    group_priority: i32,
    /// For an event-listener process: (pool index, process index in the pool).
    listener: Option<(usize, usize)>,
    /// 0 without `depends_on`, else 1 + the highest rank of its dependencies.
    rank: u32,
}

struct Entry {
    spec: Spec,
    policy: Policy,
    fsm: Process,
    generation: u64,
    output: Arc<Output>,
    stdin: Option<tokio::process::ChildStdin>,
    /// Once something was written to stdin: the task that owns `stdin` and writes in order.
    stdin_writer: Option<mpsc::Sender<StdinWrite>>,
    start_wall: Option<DateTime<Utc>>,
    stop_wall: Option<DateTime<Utc>>,
    start_mono: Option<Instant>,
    restarts: u64,
    /// Transitions the state machine refused as illegal (see `vigil_illegal_transitions_total`).
    illegal_transitions: u64,
    spawned_once: bool,
    after_stop: Option<AfterStop>,
    start_waiters: Vec<Reply<Result<(), (String, String)>>>,
    stop_waiters: Vec<Reply<()>>,
    /// A start is held until every `depends_on` program is RUNNING (ready).
    waiting_deps: bool,
    /// Stops the readiness probe of the current child.
    probe: Option<tokio_util::sync::CancellationToken>,
}

impl Entry {
    fn new(spec: Spec) -> Entry {
        Entry {
            policy: spec.program.policy(),
            spec,
            fsm: Process::new(),
            generation: 0,
            output: Arc::new(Output::default()),
            stdin: None,
            stdin_writer: None,
            start_wall: None,
            stop_wall: None,
            start_mono: None,
            restarts: 0,
            illegal_transitions: 0,
            spawned_once: false,
            after_stop: None,
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            waiting_deps: false,
            probe: None,
        }
    }

    fn full_name(&self) -> String {
        format!("{}:{}", self.spec.group, self.spec.process.name)
    }

    /// Start order: dependencies first (`depends_on` rank), then supervisord's priorities.
    fn order(&self) -> (u32, i32, i32, String) {
        (
            self.spec.rank,
            self.spec.group_priority,
            self.spec.program.priority,
            self.spec.process.name.clone(),
        )
    }
}

/// Writes to one process's stdin queued at most (`supervisor.sendProcessStdin`); more are
/// refused with a fault until the process reads.
const STDIN_QUEUE: usize = 64;

enum Internal {
    Exited {
        name: String,
        generation: u64,
        exit: Exit,
    },
    Probe {
        name: String,
        generation: u64,
        ready: Result<(), String>,
    },
}

/// Start the actor with the config's processes; autostart ones start in priority order.
pub fn start(config: &Config, events: EventLog, options: Options) -> SupervisorHandle {
    let (tx, rx) = mpsc::channel(256);
    // Bounded by construction: `Exited` is sent once per spawned child (by its waiter) and a
    // process is spawned again only after the actor took its exit; `Probe` by a process's
    // readiness probe, one result at a time per interval and at most one probe per spawn. So
    // at most a few messages per configured process are queued.
    let (itx, irx) = mpsc::unbounded_channel();
    let (snap_tx, snap_rx) = watch::channel(Arc::new(Snapshot::default()));
    let outputs = Arc::new(std::sync::RwLock::new(HashMap::new()));
    let mut actor = Actor {
        entries: BTreeMap::new(),
        base: Instant::now(),
        events,
        options,
        internal: itx,
        snapshot: snap_tx,
        outputs: outputs.clone(),
        shutdown: None,
    };
    for spec in specs(config) {
        actor.insert(spec);
    }
    let tasks = actor.options.tasks.clone();
    tasks.spawn(actor.run(rx, irx));
    SupervisorHandle {
        tx,
        snapshot: snap_rx,
        outputs,
    }
}

fn specs(config: &Config) -> Vec<Spec> {
    let mut out = Vec::new();
    for p in &config.programs {
        let group = config.group_of(&p.name).to_string();
        let group_priority = config
            .groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.priority)
            .unwrap_or(p.priority);
        let program = Arc::new(p.clone());
        for proc_cfg in &p.processes {
            out.push(Spec {
                program: program.clone(),
                process: proc_cfg.clone(),
                group: group.clone(),
                group_priority,
                listener: None,
                rank: rank_of(config, &p.name, 0),
            });
        }
    }
    // Event listeners: a pool is a group (priority -1 by default: started first, stopped last).
    for (pool, el) in config.eventlisteners.iter().enumerate() {
        let program = Arc::new(el.program.clone());
        for (i, proc_cfg) in el.program.processes.iter().enumerate() {
            out.push(Spec {
                program: program.clone(),
                process: proc_cfg.clone(),
                group: el.program.name.clone(),
                group_priority: el.priority,
                listener: Some((pool, i)),
                rank: 0,
            });
        }
    }
    out
}

/// Dependency depth of a program (cycles are refused at load; `depth` bounds it anyway).
fn rank_of(config: &Config, program: &str, depth: u32) -> u32 {
    let Some(p) = config.program(program) else {
        return 0;
    };
    if p.depends_on.is_empty() || depth > 64 {
        return 0;
    }
    1 + p
        .depends_on
        .iter()
        .map(|d| rank_of(config, d, depth + 1))
        .max()
        .unwrap_or(0)
}

struct ShutdownState {
    /// Remaining priority levels, highest priority value first.
    levels: Vec<Vec<String>>,
    current: Option<Vec<String>>,
    replies: Vec<Reply<()>>,
    /// A restart, not a shutdown: what runs once everything is stopped.
    restart: Option<restart::Pending>,
}

struct Actor {
    entries: BTreeMap<String, Entry>,
    base: Instant,
    events: EventLog,
    options: Options,
    internal: mpsc::UnboundedSender<Internal>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    outputs: Arc<std::sync::RwLock<HashMap<String, Arc<Output>>>>,
    shutdown: Option<ShutdownState>,
}

impl Actor {
    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn insert(&mut self, spec: Spec) {
        let name = spec.process.name.clone();
        let entry = Entry::new(spec);
        if let Ok(mut o) = self.outputs.write() {
            o.insert(name.clone(), entry.output.clone());
        }
        self.entries.insert(name, entry);
    }

    fn remove(&mut self, name: &str) {
        self.entries.remove(name);
        if let Ok(mut o) = self.outputs.write() {
            o.remove(name);
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut irx: mpsc::UnboundedReceiver<Internal>,
    ) {
        self.events
            .submit("supervisor_state", fields! {"state" => "RUNNING"});
        self.autostart_all();
        self.publish();
        loop {
            let deadline = self
                .entries
                .values()
                .filter_map(|e| e.fsm.next_deadline())
                .min();
            let sleep = async {
                match deadline {
                    Some(ms) => {
                        tokio::time::sleep_until(self.base + Duration::from_millis(ms)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(msg) = irx.recv() => self.internal_msg(msg),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => {
                        // Every handle is gone: stop the children before going away.
                        if self.shutdown.is_none() {
                            self.begin_shutdown(None);
                        }
                    }
                },
                _ = sleep => {
                    let now = self.now();
                    let due: Vec<String> = self
                        .entries
                        .iter()
                        .filter(|(_, e)| matches!(e.fsm.next_deadline(), Some(d) if d <= now))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for name in due {
                        self.apply(&name, Input::Timer);
                    }
                }
            }
            if self.advance_shutdown() {
                break;
            }
            self.publish();
        }
        self.publish();
        self.events
            .submit("supervisor_state", fields! {"state" => "STOPPED"});
    }

    fn internal_msg(&mut self, msg: Internal) {
        match msg {
            Internal::Probe {
                name,
                generation,
                ready,
            } => {
                let current = self.entries.get(&name).is_some_and(|e| {
                    e.generation == generation && e.fsm.state == ProcessState::Starting
                });
                if current {
                    let input = match ready {
                        Ok(()) => Input::Ready,
                        Err(detail) => {
                            tracing::info!("not ready yet: {name} ({detail})");
                            Input::NotReady { detail }
                        }
                    };
                    self.apply(&name, input);
                }
            }
            Internal::Exited {
                name,
                generation,
                exit,
            } => {
                let current = self
                    .entries
                    .get(&name)
                    .is_some_and(|e| e.generation == generation);
                if current {
                    if let Some(e) = self.entries.get_mut(&name) {
                        e.stdin = None;
                        e.stdin_writer = None;
                        if let (Some((pool, process)), Some(tx)) =
                            (e.spec.listener, &self.options.listener_io)
                        {
                            let _ = tx.send(crate::listeners::ListenerIo::Exited { pool, process });
                        }
                    }
                    self.apply(&name, Input::Exited(exit));
                }
            }
        }
    }

    /// Resolve `all`, `group:*`, `group:name`, a process name, or a program/group name.
    fn resolve(&self, target: &str) -> Result<Vec<String>, SupervisorError> {
        let mut out: Vec<(u32, i32, i32, String)> = Vec::new();
        if target == "all" {
            out = self.entries.values().map(Entry::order).collect();
        } else if let Some((group, name)) = target.split_once(':') {
            let in_group: Vec<&Entry> = self
                .entries
                .values()
                .filter(|e| e.spec.group == group)
                .collect();
            if in_group.is_empty() {
                return Err(SupervisorError::NoSuchGroup(group.to_string()));
            }
            for e in in_group {
                if name == "*" || name.is_empty() || e.spec.process.name == name {
                    out.push(e.order());
                }
            }
        } else if let Some(e) = self.entries.get(target) {
            out.push(e.order());
        } else {
            out = self
                .entries
                .values()
                .filter(|e| e.spec.group == target || e.spec.program.name == target)
                .map(Entry::order)
                .collect();
        }
        if out.is_empty() {
            return Err(SupervisorError::NoSuchProcess(target.to_string()));
        }
        out.sort();
        Ok(out.into_iter().map(|(_, _, _, n)| n).collect())
    }

    fn command(&mut self, cmd: Command) {
        if self.shutdown.is_some() {
            match cmd {
                Command::Shutdown { reply } => {
                    if let Some(s) = self.shutdown.as_mut() {
                        s.replies.push(reply);
                        // A shutdown during a restart: nothing starts again.
                        s.restart = None;
                    }
                }
                Command::Ping { reply } => {
                    let _ = reply.send(());
                }
                Command::Start { reply, .. }
                | Command::Stop { reply, .. }
                | Command::Restart { reply, .. }
                | Command::Signal { reply, .. } => {
                    let _ = reply.send(Err(SupervisorError::ShuttingDown));
                }
                Command::Reload { .. } | Command::FullRestart { .. } => {}
                Command::WriteStdin { name, reply, .. } => {
                    let _ = reply.send(Err(StdinError::NotRunning(name)));
                }
            }
            return;
        }
        match cmd {
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::Start {
                target,
                wait,
                reply,
            } => self.for_each(&target, false, reply, |me, name| me.start_one(name, wait)),
            // vigil fixes supervisord#217: stop in reverse priority order.
            Command::Stop {
                target,
                wait,
                reply,
            } => self.for_each(&target, true, reply, |me, name| {
                me.stop_one(name, wait, None)
            }),
            Command::Restart { target, reply } => {
                self.for_each(&target, false, reply, Self::restart_one)
            }
            Command::Signal {
                target,
                signal,
                reply,
            } => match self.resolve(&target) {
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
                Ok(names) => {
                    let results = names.iter().map(|n| self.signal_one(n, signal)).collect();
                    let _ = reply.send(Ok(results));
                }
            },
            Command::Reload { config, reply } => {
                let report = self.reload(&config);
                let _ = reply.send(report);
            }
            Command::FullRestart { config, reply } => self.begin_restart(config, reply),
            Command::Shutdown { reply } => self.begin_shutdown(Some(reply)),
            Command::WriteStdin { name, data, reply } => self.write_stdin(name, data, reply),
        }
    }

    fn write_stdin(&mut self, name: String, data: Vec<u8>, reply: Reply<Result<(), StdinError>>) {
        let Some(e) = self.entries.get_mut(&name) else {
            let _ = reply.send(Err(StdinError::NoSuchProcess(name)));
            return;
        };
        // supervisord: `not process.pid or process.killing` is NOT_RUNNING.
        if e.fsm.pid.is_none() || e.fsm.state == ProcessState::Stopping {
            let _ = reply.send(Err(StdinError::NotRunning(name)));
            return;
        }
        if e.stdin_writer.is_none()
            && let Some(mut stdin) = e.stdin.take()
        {
            let (tx, mut rx) = mpsc::channel::<StdinWrite>(STDIN_QUEUE);
            let pname = name.clone();
            self.options.tasks.spawn(async move {
                use tokio::io::AsyncWriteExt;
                while let Some((data, reply)) = rx.recv().await {
                    let r = match stdin.write_all(&data).await {
                        Ok(()) => stdin.flush().await,
                        Err(err) => Err(err),
                    };
                    if let Err(err) = r {
                        let _ = reply.send(Err(StdinError::Closed(pname.clone(), err.to_string())));
                        // Closed for good: later writes find the channel gone (NO_FILE).
                        return;
                    }
                    let _ = reply.send(Ok(()));
                }
            });
            e.stdin_writer = Some(tx);
        }
        match &e.stdin_writer {
            Some(tx) => {
                use mpsc::error::TrySendError;
                match tx.try_send((data, reply)) {
                    Ok(()) => {}
                    Err(TrySendError::Closed((_, reply))) => {
                        let _ = reply.send(Err(StdinError::Closed(name, "broken pipe".into())));
                    }
                    Err(TrySendError::Full((_, reply))) => {
                        // The actor never waits on a child: refused, counted.
                        crate::queues::refused(crate::queues::Queue::ProcessStdin, 1);
                        let _ = reply.send(Err(StdinError::Closed(
                            name,
                            format!("{STDIN_QUEUE} writes are already waiting for the process to read its stdin"),
                        )));
                    }
                }
            }
            None => {
                let _ = reply.send(Err(StdinError::Closed(name, "no stdin pipe".into())));
            }
        }
    }

    /// Resolve `target`, act on each process (in priority order, or reversed), and reply once
    /// every waiter has resolved.
    fn for_each(
        &mut self,
        target: &str,
        reverse: bool,
        reply: ActionReply,
        mut act: impl FnMut(&mut Self, &str) -> (ActionResult, Waiter),
    ) {
        match self.resolve(target) {
            Err(e) => {
                let _ = reply.send(Err(e));
            }
            Ok(mut names) => {
                if reverse {
                    names.reverse();
                }
                let (results, waits) = names.iter().map(|n| act(self, n)).unzip();
                finish_after(&self.options.tasks, results, waits, reply);
            }
        }
    }

    /// Stop then start a running process (replying once the new child is RUNNING); start a
    /// stopped one.
    fn restart_one(&mut self, name: &str) -> (ActionResult, Waiter) {
        let running = self
            .entries
            .get(name)
            .is_some_and(|e| !e.fsm.state.is_stopped());
        if !running {
            return self.start_one(name, true);
        }
        let (r, _) = self.stop_one(name, false, Some(AfterStop::Start));
        if !r.ok {
            return (r, Waiter::None);
        }
        let (tx, rx) = oneshot::channel();
        if let Some(e) = self.entries.get_mut(name) {
            e.start_waiters.push(tx);
        }
        (r, Waiter::Start(rx))
    }

    fn start_one(&mut self, name: &str, wait: bool) -> (ActionResult, Waiter) {
        let Some(e) = self.entries.get_mut(name) else {
            return (
                ActionResult::fail(name.into(), "BAD_NAME", "no such process"),
                Waiter::None,
            );
        };
        let full = e.full_name();
        let refused = match e.fsm.state {
            ProcessState::Unknown => {
                Some(("FAILED", format!("{name} is in an unknown process state")))
            }
            ProcessState::Stopping => Some(("FAILED", "process is stopping".to_string())),
            s if s.is_running() => Some(("ALREADY_STARTED", "already started".to_string())),
            _ => None,
        };
        if let Some((fault, msg)) = refused {
            return (ActionResult::fail(full, fault, msg), Waiter::None);
        }
        let waiter = if wait {
            let (tx, rx) = oneshot::channel();
            e.start_waiters.push(tx);
            Waiter::Start(rx)
        } else {
            Waiter::None
        };
        self.apply(name, Input::Start);
        (ActionResult::ok(full), waiter)
    }

    fn stop_one(
        &mut self,
        name: &str,
        wait: bool,
        after: Option<AfterStop>,
    ) -> (ActionResult, Waiter) {
        let Some(e) = self.entries.get_mut(name) else {
            return (
                ActionResult::fail(name.into(), "BAD_NAME", "no such process"),
                Waiter::None,
            );
        };
        let full = e.full_name();
        let state = e.fsm.state;
        if state.is_stopped() {
            return (
                ActionResult::fail(full, "NOT_RUNNING", "not running"),
                Waiter::None,
            );
        }
        if state == ProcessState::Unknown {
            return (
                ActionResult::fail(full, "FAILED", "in an unknown process state"),
                Waiter::None,
            );
        }
        let (tx, rx) = oneshot::channel();
        if wait {
            e.stop_waiters.push(tx);
        }
        if after.is_some() {
            e.after_stop = after;
        }
        self.apply(name, Input::Stop);
        (
            ActionResult::ok(full),
            if wait { Waiter::Stop(rx) } else { Waiter::None },
        )
    }

    fn signal_one(&mut self, name: &str, signal: i32) -> ActionResult {
        let Some(e) = self.entries.get(name) else {
            return ActionResult::fail(name.into(), "BAD_NAME", "no such process");
        };
        let full = e.full_name();
        if !e.fsm.state.is_signallable() {
            return ActionResult::fail(full, "NOT_RUNNING", "not running");
        }
        let Some(pid) = e.fsm.pid else {
            return ActionResult::fail(full, "NOT_RUNNING", "not running");
        };
        let Ok(sig) = nix::sys::signal::Signal::try_from(signal) else {
            return ActionResult::fail(full, "BAD_SIGNAL", format!("bad signal {signal}"));
        };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig) {
            Ok(()) => ActionResult::ok(full),
            Err(nix::errno::Errno::ESRCH) => ActionResult::fail(full, "NOT_RUNNING", "not running"),
            Err(err) => ActionResult::fail(full, "FAILED", err.to_string()),
        }
    }

    /// Whether every `depends_on` program of `name` is RUNNING (with readiness: ready).
    fn deps_ready(&self, name: &str) -> bool {
        let Some(e) = self.entries.get(name) else {
            return true;
        };
        e.spec.program.depends_on.iter().all(|dep| {
            let mut procs = self
                .entries
                .values()
                .filter(|x| x.spec.program.name == *dep)
                .peekable();
            procs.peek().is_some() && procs.all(|x| x.fsm.state == ProcessState::Running)
        })
    }

    /// Start what was waiting for its dependencies, now that they are up.
    fn release_waiting(&mut self) {
        let ready: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.waiting_deps)
            .map(|(n, _)| n.clone())
            .filter(|n| self.deps_ready(n))
            .collect();
        for n in ready {
            if let Some(e) = self.entries.get_mut(&n) {
                e.waiting_deps = false;
            }
            tracing::info!("dependencies of {n} are ready; starting it");
            self.apply(&n, Input::Start);
        }
    }

    /// Feed one input to a process and carry out the effects (spawns feed back at once).
    fn apply(&mut self, name: &str, input: Input) {
        if matches!(input, Input::Start) && !self.deps_ready(name) {
            if let Some(e) = self.entries.get_mut(name)
                && !e.waiting_deps
                && e.fsm.state.is_stopped()
            {
                e.waiting_deps = true;
                let deps = e.spec.program.depends_on.join(", ");
                tracing::info!("waiting for {deps} to be ready before starting {name}");
                self.events.submit(
                    "waiting_for_dependencies",
                    fields! {"process" => name, "depends_on" => e.spec.program.depends_on},
                );
            }
            return;
        }
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let now = self.now();
            let Some(e) = self.entries.get_mut(name) else {
                return;
            };
            let effects = match e.fsm.on(&e.policy, input, now) {
                Ok(fx) => fx,
                Err(Refused::Illegal(t)) => {
                    // A bug, never applied (in any build): the process keeps its state; the
                    // observations still queued are fed as usual.
                    e.illegal_transitions += 1;
                    tracing::warn!(process = name, program = %e.spec.program.name, from = %t.from, to = %t.to, cause = t.cause, "illegal process state transition refused");
                    continue;
                }
                Err(err) => {
                    tracing::debug!(process = name, error = %err, "request refused");
                    return;
                }
            };
            for fx in effects {
                match fx {
                    Effect::Spawn => {
                        let r = self.spawn(name);
                        queue.insert(0, r);
                    }
                    Effect::SendStopSignal { pid } => {
                        if let Some(r) = self.send_stop(name, pid, false) {
                            queue.insert(0, r);
                        }
                    }
                    Effect::Kill { pid } => {
                        tracing::warn!("killing '{name}' ({pid}) with SIGKILL");
                        if let Some(r) = self.send_stop(name, pid, true) {
                            queue.insert(0, r);
                        }
                    }
                    Effect::Transition(t) => {
                        self.transitioned(name, &t);
                        if t.to == ProcessState::Running {
                            self.release_waiting();
                        }
                    }
                    Effect::Recovered { after_failures } => {
                        if let Some(e) = self.entries.get(name) {
                            tracing::info!(
                                "recovered: {name} is up again after {after_failures} consecutive failures"
                            );
                            self.events.submit(
                                "recovered",
                                fields! {
                                    "program" => e.spec.program.name,
                                    "group" => e.spec.group,
                                    "process" => name,
                                    "after_failures" => after_failures,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    fn send_stop(&mut self, name: &str, pid: u32, kill: bool) -> Option<Input> {
        let e = self.entries.get(name)?;
        let program = &e.spec.program;
        let (sig, group) = if kill {
            (nix::sys::signal::Signal::SIGKILL, program.killasgroup)
        } else {
            (
                nix::sys::signal::Signal::try_from(program.stopsignal.number)
                    .unwrap_or(nix::sys::signal::Signal::SIGTERM),
                program.stopasgroup,
            )
        };
        if !kill {
            tracing::info!("waiting for {name} to stop");
        }
        let target = if group {
            nix::unistd::Pid::from_raw(-(pid as i32))
        } else {
            nix::unistd::Pid::from_raw(pid as i32)
        };
        match nix::sys::signal::kill(target, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => None,
            Err(err) => Some(Input::SignalFailed {
                error: format!("couldn't signal {name} ({pid}): {err}"),
            }),
        }
    }

    fn spawn(&mut self, name: &str) -> Input {
        let Some(e) = self.entries.get_mut(name) else {
            return Input::SpawnFailed {
                error: "removed".into(),
            };
        };
        let program = e.spec.program.clone();
        let spec = spawn::SpawnSpec {
            argv: &e.spec.process.argv,
            directory: program.directory.as_deref(),
            environment: &program.environment,
            user: program.user.as_deref(),
            redirect_stderr: program.redirect_stderr,
            process_name: &e.spec.process.name,
            group_name: &e.spec.group,
            extra_env: &self.options.extra_env,
        };
        match spawn::spawn(&spec) {
            Err(error) => {
                tracing::info!("spawnerr: {error}");
                Input::SpawnFailed { error }
            }
            Ok(sp) => {
                e.generation += 1;
                if e.spawned_once {
                    e.restarts += 1;
                }
                e.spawned_once = true;
                e.start_wall = Some(Utc::now());
                e.start_mono = Some(Instant::now());
                e.stdin = sp.stdin;
                e.stdin_writer = None;
                // A listener's stdin belongs to the listener protocol.
                let listener_io = match (e.spec.listener, &self.options.listener_io) {
                    (Some((pool, process)), Some(tx)) => {
                        let _ = tx.send(crate::listeners::ListenerIo::Spawned {
                            pool,
                            process,
                            stdin: e.stdin.take(),
                        });
                        let gate = crate::queues::Gate::new(
                            crate::queues::Queue::ListenerOutput,
                            output::LISTENER_OUTPUT_QUEUE,
                        );
                        Some((tx.clone(), gate, pool, process))
                    }
                    _ => None,
                };
                let pid = sp.pid;
                tracing::info!("spawned: '{name}' with pid {pid}");
                let open = |cfg: &crate::config::LogConfig| {
                    cfg.path.as_ref().and_then(|p| match RotatingFile::open(cfg, p) {
                        Ok(f) => Some(f),
                        Err(err) => {
                            tracing::error!(process = name, path = %p.display(), error = %err, "cannot open log file");
                            None
                        }
                    })
                };
                let log_events = |enabled: bool, channel: &str| {
                    enabled.then(|| {
                        (
                            self.events.clone(),
                            crate::fields! {
                                "program" => program.name,
                                "group" => e.spec.group,
                                "process" => name,
                                "pid" => pid,
                                "channel" => channel,
                            },
                        )
                    })
                };
                let capture = |maxbytes: u64, channel: &str| {
                    (maxbytes > 0).then(|| {
                        (
                            output::Capture::new(maxbytes),
                            self.events.clone(),
                            crate::fields! {
                                "program" => program.name,
                                "group" => e.spec.group,
                                "process" => name,
                                "pid" => pid,
                                "channel" => channel,
                            },
                        )
                    })
                };
                let stdout_sink = Sink {
                    capture: capture(program.stdout_capture_maxbytes, "stdout"),
                    log_events: log_events(program.stdout_events_enabled, "stdout"),
                    listener: listener_io,
                    file: open(&e.spec.process.stdout_log),
                    tap: e.output.clone(),
                    stderr: false,
                    lines: if program.events_from_stdout {
                        (self.options.stdout_events.as_ref())
                            .map(|tx| (tx.clone(), name.to_string()))
                    } else {
                        None
                    },
                };
                let tasks = &self.options.tasks;
                let out_pump = tasks.spawn(output::pump(sp.stdout, stdout_sink, name.to_string()));
                let err_pump = sp.stderr.map(|stderr| {
                    let sink = Sink {
                        capture: capture(program.stderr_capture_maxbytes, "stderr"),
                        log_events: log_events(program.stderr_events_enabled, "stderr"),
                        listener: None,
                        file: open(&e.spec.process.stderr_log),
                        tap: e.output.clone(),
                        stderr: true,
                        lines: None,
                    };
                    tasks.spawn(output::pump(stderr, sink, name.to_string()))
                });
                let mut child = sp.child;
                let tx = self.internal.clone();
                let generation = e.generation;
                let pname = name.to_string();
                tasks.spawn(async move {
                    use std::os::unix::process::ExitStatusExt;
                    let exit = match child.wait().await {
                        Ok(st) => match (st.code(), st.signal()) {
                            (Some(c), _) => Exit::Code(c),
                            (None, Some(s)) => Exit::Signal(s),
                            (None, None) => Exit::Code(-1),
                        },
                        Err(err) => {
                            tracing::error!(process = %pname, error = %err, "waiting for child");
                            Exit::Code(-1)
                        }
                    };
                    // What the child wrote before it exited is read (logged, sent to listeners)
                    // before its exit is handled, as in supervisord. Its pipes are closed by now
                    // unless a grandchild holds them open: hence the bound.
                    let drained = async {
                        let _ = out_pump.await;
                        if let Some(p) = err_pump {
                            let _ = p.await;
                        }
                    };
                    let _ = tokio::time::timeout(OUTPUT_DRAIN, drained).await;
                    // supervisord's debug line (its tests wait for it); the wait is SIGCHLD-driven.
                    tracing::debug!("received SIGCHLD indicating a child quit");
                    let _ = tx.send(Internal::Exited {
                        name: pname,
                        generation,
                        exit,
                    });
                });
                if let Some(check) = &program.ready {
                    let token = tokio_util::sync::CancellationToken::new();
                    if let Some(old) = e.probe.replace(token.clone()) {
                        old.cancel();
                    }
                    tasks.spawn(readiness::probe(
                        check.clone(),
                        program.clone(),
                        name.to_string(),
                        generation,
                        self.internal.clone(),
                        token,
                    ));
                }
                Input::Spawned { pid }
            }
        }
    }

    /// Record a transition: log line, event, waiters, after-stop actions.
    fn transitioned(&mut self, name: &str, t: &Transition) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if t.to.is_stopped() {
            e.stop_wall = Some(Utc::now());
        }
        if t.from == ProcessState::Starting
            && let Some(p) = e.probe.take()
        {
            p.cancel();
        }
        if t.to.is_stopped() {
            e.waiting_deps = false;
        }
        if let (Some((pool, process)), Some(tx)) = (e.spec.listener, &self.options.listener_io) {
            let _ = tx.send(crate::listeners::ListenerIo::State {
                pool,
                process,
                state: t.to,
            });
        }
        match t.to {
            ProcessState::Running => tracing::info!(
                "success: {name} entered RUNNING state, process has stayed up for > than {} seconds (startsecs)",
                e.spec.program.startsecs
            ),
            ProcessState::Exited => {
                let how = match t.exit {
                    Some(Exit::Signal(s)) => format!("terminated by {}", signal_name(s)),
                    Some(Exit::Code(c)) => format!("exit status {c}"),
                    None => "exit status 0".into(),
                };
                let exp = if t.expected == Some(true) {
                    "expected"
                } else {
                    "not expected"
                };
                if t.expected == Some(true) {
                    tracing::info!("exited: {name} ({how}; {exp})");
                } else {
                    tracing::warn!("exited: {name} ({how}; {exp})");
                }
            }
            ProcessState::Stopped => {
                let how = match t.exit {
                    Some(Exit::Signal(s)) => format!("terminated by {}", signal_name(s)),
                    Some(Exit::Code(c)) => format!("exit status {c}"),
                    None => "never started".into(),
                };
                tracing::info!("stopped: {name} ({how})");
            }
            ProcessState::Fatal => tracing::info!(
                "gave up: {name} entered FATAL state, too many start retries too quickly"
            ),
            ProcessState::Backoff => {
                if let Some(r) = &t.reason {
                    tracing::info!("backoff: {name} ({r}), tries {}", t.tries);
                }
            }
            _ => {}
        }
        let mut data = fields! {
            "program" => e.spec.program.name,
            "group" => e.spec.group,
            "process" => name,
            "from" => t.from.name(),
            "to" => t.to.name(),
            "pid" => t.pid,
            "tries" => t.tries,
        };
        if let Some(x) = t.expected {
            data.insert("expected".into(), x.into());
        }
        match t.exit {
            Some(Exit::Code(c)) => {
                data.insert("exit_status".into(), c.into());
            }
            Some(Exit::Signal(s)) => {
                data.insert("exit_status".into(), (-1).into());
                data.insert("signal".into(), signal_name(s).into());
            }
            None => {}
        }
        if let Some(r) = &t.reason {
            data.insert("reason".into(), r.clone().into());
        }
        if e.spec.program.critical {
            data.insert("critical".into(), true.into());
        }
        self.events.submit("process_state", data);

        // Waiters.
        match t.to {
            ProcessState::Running => {
                for w in e.start_waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            ProcessState::Backoff | ProcessState::Fatal | ProcessState::Unknown => {
                let reason = t.reason.clone().unwrap_or_else(|| "spawn error".into());
                let fault = if t.to == ProcessState::Fatal || t.from == ProcessState::Starting {
                    "SPAWN_ERROR"
                } else {
                    "ABNORMAL_TERMINATION"
                };
                for w in e.start_waiters.drain(..) {
                    let _ = w.send(Err((fault.to_string(), reason.clone())));
                }
            }
            ProcessState::Exited if t.from == ProcessState::Running => {
                for w in e.start_waiters.drain(..) {
                    let _ = w.send(Err((
                        "ABNORMAL_TERMINATION".to_string(),
                        "exited before it was confirmed running".into(),
                    )));
                }
            }
            _ => {}
        }
        if t.to.is_stopped() {
            for w in e.stop_waiters.drain(..) {
                let _ = w.send(());
            }
            if let Some(after) = e.after_stop.take() {
                match after {
                    AfterStop::Start => self.apply(name, Input::Start),
                    AfterStop::Remove => {
                        self.remove(name);
                    }
                    AfterStop::Replace(spec, start) => {
                        let outputs = e.output.clone();
                        let mut new = Entry::new(*spec);
                        new.output = outputs;
                        new.restarts = e.restarts;
                        new.illegal_transitions = e.illegal_transitions;
                        self.entries.insert(name.to_string(), new);
                        if start {
                            self.apply(name, Input::Start);
                        }
                    }
                }
            }
        }
    }
}

enum Waiter {
    None,
    Start(oneshot::Receiver<Result<(), (String, String)>>),
    Stop(oneshot::Receiver<()>),
}

/// Reply once every waiter has resolved (start → RUNNING, stop → stopped).
fn finish_after(
    tasks: &tokio_util::task::TaskTracker,
    mut results: Vec<ActionResult>,
    waits: Vec<Waiter>,
    reply: ActionReply,
) {
    tasks.spawn(async move {
        for (i, w) in waits.into_iter().enumerate() {
            match w {
                Waiter::None => {}
                Waiter::Stop(rx) => {
                    let _ = rx.await;
                }
                Waiter::Start(rx) => match rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err((fault, msg))) => {
                        if let Some(r) = results.get_mut(i) {
                            r.ok = false;
                            r.fault = Some(fault);
                            r.message = Some(msg);
                        }
                    }
                    Err(_) => {
                        if let Some(r) = results.get_mut(i) {
                            r.ok = false;
                            r.fault = Some("FAILED".into());
                            r.message = Some("process was removed".into());
                        }
                    }
                },
            }
        }
        let _ = reply.send(Ok(results));
    });
}

pub fn signal_name(n: i32) -> String {
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {n}"),
    }
}

fn info(e: &Entry, now: Instant) -> ProcessInfo {
    let st = e.fsm.state;
    let health = match st {
        ProcessState::Stopped if !e.spawned_once && e.fsm.spawnerr.is_none() => Health::NotStarted,
        ProcessState::Starting | ProcessState::Running | ProcessState::Stopping => Health::Running,
        ProcessState::Stopped => Health::Stopped,
        ProcessState::Exited
            if e.fsm
                .last_exit
                .is_some_and(|x| matches!(x, Exit::Code(c) if e.policy.exitcodes.contains(&c))) =>
        {
            Health::Stopped
        }
        ProcessState::Exited | ProcessState::Backoff => Health::Crashed,
        ProcessState::Fatal | ProcessState::Unknown => Health::Fatal,
    };
    let uptime = match (st, e.start_mono) {
        (ProcessState::Running | ProcessState::Starting | ProcessState::Stopping, Some(t)) => {
            Some(now.saturating_duration_since(t).as_secs())
        }
        _ => None,
    };
    let description = match st {
        ProcessState::Running | ProcessState::Stopping | ProcessState::Starting
            if e.fsm.pid.is_some() =>
        {
            let u = uptime.unwrap_or(0);
            if st == ProcessState::Running {
                format!(
                    "pid {}, uptime {}:{:02}:{:02}",
                    e.fsm.pid.unwrap_or(0),
                    u / 3600,
                    (u / 60) % 60,
                    u % 60
                )
            } else {
                String::new()
            }
        }
        ProcessState::Backoff | ProcessState::Fatal => e.fsm.spawnerr.clone().unwrap_or_default(),
        ProcessState::Stopped | ProcessState::Exited => match e.stop_wall {
            Some(t) if e.spawned_once => t
                .with_timezone(&chrono::Local)
                .format("%b %d %I:%M %p")
                .to_string(),
            _ => "Not started".into(),
        },
        _ => String::new(),
    };
    ProcessInfo {
        name: e.spec.process.name.clone(),
        group: e.spec.group.clone(),
        program: e.spec.program.name.clone(),
        state: st,
        statecode: st.code(),
        health,
        pid: e.fsm.pid,
        priority: e.spec.program.priority,
        start: e.start_wall,
        stop: e.stop_wall,
        uptime_secs: uptime,
        exitstatus: e.fsm.exitstatus(),
        last_exit: e.fsm.last_exit,
        spawnerr: e.fsm.spawnerr.clone(),
        tries: e.fsm.tries,
        consecutive_failures: e.fsm.consecutive_failures,
        restarts: e.restarts,
        illegal_transitions: e.illegal_transitions,
        autostart: e.spec.program.autostart,
        critical: e.spec.program.critical,
        stdout_logfile: e
            .spec
            .process
            .stdout_log
            .path
            .as_ref()
            .map(|p| p.display().to_string()),
        stderr_logfile: e
            .spec
            .process
            .stderr_log
            .path
            .as_ref()
            .map(|p| p.display().to_string()),
        description,
    }
}

pub fn ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(rfc3339)
}
