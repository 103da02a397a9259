//! supervisord's process state machine, as a pure function of (state, input, now).
//!
//! The shell (`src/supervisor`) owns the real child, feeds every observation in as an
//! [`Input`] with the current monotonic time in milliseconds, carries out the returned
//! [`Effect`]s, and calls [`Process::on`] with [`Input::Timer`] when
//! [`Process::next_deadline`] is reached. Nothing here reads a clock, sleeps or spawns.
//!
//! The transitions are supervisord 4.3's (see `SUPERVISORD.md` §1.2), with two fixes that
//! no client depends on: exits are handled the moment they happen (no 1 s poll), and the
//! "reap race" cannot turn an instant exit into RUNNING → EXITED.

use serde::Serialize;

/// Monotonic milliseconds, supplied by the caller.
pub type Millis = u64;

/// supervisord's process states, with its numeric codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessState {
    Stopped,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
    Unknown,
}

impl ProcessState {
    pub const ALL: [ProcessState; 8] = [
        ProcessState::Stopped,
        ProcessState::Starting,
        ProcessState::Running,
        ProcessState::Backoff,
        ProcessState::Stopping,
        ProcessState::Exited,
        ProcessState::Fatal,
        ProcessState::Unknown,
    ];

    /// supervisord's numeric state code (`getProcessInfo().state`).
    pub fn code(self) -> i32 {
        match self {
            ProcessState::Stopped => 0,
            ProcessState::Starting => 10,
            ProcessState::Running => 20,
            ProcessState::Backoff => 30,
            ProcessState::Stopping => 40,
            ProcessState::Exited => 100,
            ProcessState::Fatal => 200,
            ProcessState::Unknown => 1000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Stopped => "STOPPED",
            ProcessState::Starting => "STARTING",
            ProcessState::Running => "RUNNING",
            ProcessState::Backoff => "BACKOFF",
            ProcessState::Stopping => "STOPPING",
            ProcessState::Exited => "EXITED",
            ProcessState::Fatal => "FATAL",
            ProcessState::Unknown => "UNKNOWN",
        }
    }

    pub fn from_name(name: &str) -> Option<ProcessState> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// `STOPPED_STATES` in supervisord.
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            ProcessState::Stopped
                | ProcessState::Exited
                | ProcessState::Fatal
                | ProcessState::Unknown
        )
    }

    /// `RUNNING_STATES` in supervisord (BACKOFF counts as running).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            ProcessState::Running | ProcessState::Backoff | ProcessState::Starting
        )
    }

    /// `SIGNALLABLE_STATES` in supervisord.
    pub fn is_signallable(self) -> bool {
        matches!(
            self,
            ProcessState::Running | ProcessState::Starting | ProcessState::Stopping
        )
    }
}

impl std::fmt::Display for ProcessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The legal transitions, one screen: anything else is refused by [`Process::on`] (in every
/// build, see [`IllegalTransition`]).
pub const ALLOWED: &[(ProcessState, &[ProcessState])] = {
    use ProcessState::*;
    &[
        (Stopped, &[Starting]),
        (Starting, &[Running, Backoff, Stopping, Unknown]),
        (Running, &[Stopping, Exited, Unknown]),
        (Backoff, &[Starting, Fatal, Stopped]),
        (Stopping, &[Stopped, Unknown]),
        (Exited, &[Starting]),
        (Fatal, &[Starting]),
        (Unknown, &[]),
    ]
};

pub fn is_allowed(from: ProcessState, to: ProcessState) -> bool {
    ALLOWED
        .iter()
        .any(|(f, tos)| *f == from && tos.contains(&to))
}

/// `autorestart`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoRestart {
    Always,
    Never,
    Unexpected,
}

/// How the BACKOFF delay grows with consecutive failures. supervisord's is linear,
/// one second per failure, uncapped; `max_ms` and `exponential` are vigil extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BackoffPolicy {
    pub step_ms: u64,
    pub exponential: bool,
    pub max_ms: Option<u64>,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            step_ms: 1000,
            exponential: false,
            max_ms: None,
        }
    }
}

impl BackoffPolicy {
    /// Delay before the next spawn after `tries` consecutive failures (tries >= 1).
    pub fn delay_ms(&self, tries: u32) -> u64 {
        let raw = if self.exponential {
            let shift = tries.saturating_sub(1).min(40);
            self.step_ms.saturating_mul(1u64 << shift)
        } else {
            self.step_ms.saturating_mul(u64::from(tries))
        };
        match self.max_ms {
            Some(max) => raw.min(max),
            None => raw,
        }
    }
}

/// Crash-loop throttling (vigil extension), independent of `startsecs`: a process restarted
/// (EXITED → STARTING) more than `restarts` times within `window_ms` is in a crash loop:
/// from then on each restart waits in EXITED for the program's backoff delay at the loop's
/// level (1, 2, 3, … steps for the linear backoff, doubling for the exponential one), capped
/// at `backoff_max` or [`CRASH_LOOP_MAX_MS`], until a child stays up for `window_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CrashLoop {
    pub restarts: u32,
    pub window_ms: u64,
}

impl Default for CrashLoop {
    fn default() -> Self {
        CrashLoop {
            restarts: 5,
            window_ms: 10_000,
        }
    }
}

/// The crash-loop delay cap when the program sets no `backoff_max`.
pub const CRASH_LOOP_MAX_MS: u64 = 60_000;

/// The per-program options the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub startsecs_ms: u64,
    pub startretries: u32,
    pub exitcodes: Vec<i32>,
    pub autorestart: AutoRestart,
    pub stopwait_ms: u64,
    pub backoff: BackoffPolicy,
    /// With a readiness check (vigil extension): RUNNING needs `startsecs` **and** a passing
    /// probe ([`Input::Ready`]); this many failed probes in a row ([`Input::NotReady`]) kill
    /// the child and count as a failed start.
    pub ready_retries: Option<u32>,
    pub crash_loop: CrashLoop,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            startsecs_ms: 1000,
            startretries: 3,
            exitcodes: vec![0],
            autorestart: AutoRestart::Unexpected,
            stopwait_ms: 10_000,
            backoff: BackoffPolicy::default(),
            ready_retries: None,
            crash_loop: CrashLoop::default(),
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// supervisord's `exitstatus`: the code, or -1 for a death by signal.
    pub fn exitstatus(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(_) => -1,
        }
    }
}

/// An observation or request fed to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Operator or autostart asks for the process to run.
    Start,
    /// Operator or shutdown asks for the process to stop.
    Stop,
    /// The shell spawned the child that [`Effect::Spawn`] asked for.
    Spawned { pid: u32 },
    /// The shell could not spawn it (command not found, not executable, …).
    SpawnFailed { error: String },
    /// The child was reaped.
    Exited(Exit),
    /// Sending a signal failed with an unexpected OS error.
    SignalFailed { error: String },
    /// [`Process::next_deadline`] was reached.
    Timer,
    /// The readiness probe passed (only with [`Policy::ready_retries`]).
    Ready,
    /// The readiness probe failed.
    NotReady { detail: String },
}

impl Input {
    /// A short name of the input, for logs ("the cause" of an [`IllegalTransition`]).
    pub fn name(&self) -> &'static str {
        match self {
            Input::Start => "start",
            Input::Stop => "stop",
            Input::Spawned { .. } => "spawned",
            Input::SpawnFailed { .. } => "spawn failed",
            Input::Exited(_) => "exited",
            Input::SignalFailed { .. } => "signal failed",
            Input::Timer => "timer",
            Input::Ready => "ready",
            Input::NotReady { .. } => "not ready",
        }
    }
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Spawn the child now and feed back `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send `stopsignal` (to the process group when `stopasgroup`).
    SendStopSignal { pid: u32 },
    /// Send SIGKILL (to the process group when `killasgroup`).
    Kill { pid: u32 },
    /// A state change, to record and announce.
    Transition(Transition),
    /// The process failed `after_failures` times in a row and now stays up again.
    Recovered { after_failures: u32 },
}

/// A recorded state change, carrying what supervisord's event payloads need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: ProcessState,
    pub to: ProcessState,
    /// The backoff counter at the time of the change (`tries` in the payload).
    pub tries: u32,
    /// The pid at the time of the change (0 if none).
    pub pid: u32,
    /// Only on EXITED: whether the exit status is in `exitcodes`.
    pub expected: Option<bool>,
    /// Only on EXITED / STOPPED / BACKOFF-after-exit: how the child ended.
    pub exit: Option<Exit>,
    /// Why: a spawn error, "Exited too quickly", "too many start retries", …
    pub reason: Option<String>,
}

/// A request the current state does not allow; the variants map to supervisord faults.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("already started")]
    AlreadyStarted,
    #[error("not running")]
    NotRunning,
    #[error("in an unknown process state")]
    UnknownState,
    #[error("busy: process is stopping")]
    Stopping,
    /// The input would have made a transition that is not in [`ALLOWED`]: refused, nothing
    /// applied (not a supervisord fault: a bug to log and count).
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
}

/// A transition outside the table [`ALLOWED`], refused in every build: the process keeps the
/// state (and every other field) it had before the input that caused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition {from} -> {to} (on {cause})")]
pub struct IllegalTransition {
    pub from: ProcessState,
    pub to: ProcessState,
    /// The input that led to it ([`Input::name`]).
    pub cause: &'static str,
}

/// What one step of [`Process::on`] ends with (an `Err` is undone by `on`).
type Step = Result<(), Refused>;

/// One supervised process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub state: ProcessState,
    /// Consecutive start failures (supervisord's `backoff`).
    pub tries: u32,
    pub pid: Option<u32>,
    /// Monotonic time of the last spawn.
    pub laststart: Option<Millis>,
    /// Monotonic time of the last transition into a stopped state.
    pub laststop: Option<Millis>,
    pub spawnerr: Option<String>,
    pub last_exit: Option<Exit>,
    /// Unexpected exits and start failures since the process last stayed up.
    pub consecutive_failures: u32,
    deadline: Option<Millis>,
    /// The readiness probe passed for the current child.
    ready: bool,
    /// Failed readiness probes in a row for the current child.
    not_ready: u32,
    /// The current child is being killed because it never became ready: the reason.
    abandon: Option<String>,
    /// Times of the recent automatic restarts (at most `crash_loop.restarts + 1`).
    recent_restarts: std::collections::VecDeque<Millis>,
    /// How many throttled restarts in a row (0 = not in a crash loop).
    loop_level: u32,
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

impl Process {
    pub fn new() -> Self {
        Process {
            state: ProcessState::Stopped,
            tries: 0,
            pid: None,
            laststart: None,
            laststop: None,
            spawnerr: None,
            last_exit: None,
            consecutive_failures: 0,
            deadline: None,
            ready: false,
            not_ready: 0,
            abandon: None,
            recent_restarts: std::collections::VecDeque::new(),
            loop_level: 0,
        }
    }

    /// Restart after an exit, or wait first when it is looping (see [`CrashLoop`]).
    fn restart(&mut self, p: &Policy, now: Millis, fx: &mut Vec<Effect>) -> Step {
        let cl = p.crash_loop;
        let up = now.saturating_sub(self.laststart.unwrap_or(now));
        if up >= cl.window_ms {
            self.loop_level = 0;
            self.recent_restarts.clear();
        }
        self.recent_restarts.push_back(now);
        while self
            .recent_restarts
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= cl.window_ms)
            || self.recent_restarts.len() > cl.restarts as usize + 1
        {
            self.recent_restarts.pop_front();
        }
        // In a loop, every restart waits (longer each time) until a child stays up.
        if self.loop_level > 0 || self.recent_restarts.len() > cl.restarts as usize {
            self.loop_level = self.loop_level.saturating_add(1);
            let delay = p
                .backoff
                .delay_ms(self.loop_level)
                .min(p.backoff.max_ms.unwrap_or(CRASH_LOOP_MAX_MS));
            self.deadline = Some(now.saturating_add(delay));
            let note = format!(
                "crash loop: more than {} restarts within {} s, next start in {} ms",
                cl.restarts,
                cl.window_ms / 1000,
                delay
            );
            Self::set_last(fx, |t| {
                t.reason = Some(match t.reason.take() {
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                })
            });
        } else {
            self.begin_start(now, fx)?;
        }
        Ok(())
    }

    /// When the shell must feed [`Input::Timer`], if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadline
    }

    /// supervisord's `exitstatus` as `getProcessInfo` reports it: 0 after "Exited too quickly",
    /// and 0 from a spawn on (STARTING, RUNNING, STOPPING: the last exit belongs to an earlier
    /// child; `last_exit` keeps it).
    pub fn exitstatus(&self) -> i32 {
        match (self.state, self.last_exit) {
            (ProcessState::Backoff | ProcessState::Fatal, _) => 0,
            (ProcessState::Starting | ProcessState::Running | ProcessState::Stopping, _) => 0,
            (_, Some(e)) => e.exitstatus(),
            (_, None) => 0,
        }
    }

    /// Apply one transition, if the table allows it; otherwise leave `self` and `effects`
    /// as they are and say why ([`Process::on`] then undoes the rest of the input).
    fn go(
        &mut self,
        to: ProcessState,
        now: Millis,
        effects: &mut Vec<Effect>,
    ) -> Result<Transition, IllegalTransition> {
        let from = self.state;
        if !is_allowed(from, to) {
            return Err(IllegalTransition {
                from,
                to,
                cause: "",
            });
        }
        self.state = to;
        if to.is_stopped() {
            self.laststop = Some(now);
        }
        let t = Transition {
            from,
            to,
            tries: self.tries,
            pid: self.pid.unwrap_or(0),
            expected: None,
            exit: None,
            reason: None,
        };
        effects.push(Effect::Transition(t.clone()));
        Ok(t)
    }

    fn set_last(effects: &mut [Effect], f: impl FnOnce(&mut Transition)) {
        if let Some(Effect::Transition(t)) = effects.last_mut() {
            f(t);
        }
    }

    fn begin_start(&mut self, now: Millis, effects: &mut Vec<Effect>) -> Step {
        self.laststart = Some(now);
        self.spawnerr = None;
        self.pid = None;
        self.deadline = None;
        self.go(ProcessState::Starting, now, effects)?;
        effects.push(Effect::Spawn);
        Ok(())
    }

    /// Enter BACKOFF (and FATAL right away when the retries are used up).
    fn fail_start(
        &mut self,
        p: &Policy,
        reason: String,
        now: Millis,
        effects: &mut Vec<Effect>,
    ) -> Step {
        self.tries = self.tries.saturating_add(1);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.spawnerr = Some(reason.clone());
        self.go(ProcessState::Backoff, now, effects)?;
        self.pid = None;
        let exit = self.last_exit;
        Self::set_last(effects, |t| {
            t.reason = Some(reason);
            t.exit = exit;
        });
        if self.tries > p.startretries {
            self.deadline = None;
            self.go(ProcessState::Fatal, now, effects)?;
            Self::set_last(effects, |t| {
                t.reason = Some("too many start retries too quickly".into())
            });
            self.tries = 0;
        } else {
            self.deadline = Some(now.saturating_add(p.backoff.delay_ms(self.tries)));
        }
        Ok(())
    }

    fn become_running(&mut self, now: Millis, effects: &mut Vec<Effect>) -> Step {
        self.deadline = None;
        self.tries = 0;
        self.go(ProcessState::Running, now, effects)?;
        if self.consecutive_failures > 0 {
            effects.push(Effect::Recovered {
                after_failures: self.consecutive_failures,
            });
            self.consecutive_failures = 0;
        }
        Ok(())
    }

    /// Feed one input at monotonic time `now`; returns the effects to carry out, in order.
    ///
    /// An `Err` leaves the process exactly as it was: a request the state does not allow, or
    /// ([`Refused::Illegal`]) an input that would have made a transition outside [`ALLOWED`]
    /// — refused in release builds too, with none of its effects.
    pub fn on(&mut self, p: &Policy, input: Input, now: Millis) -> Result<Vec<Effect>, Refused> {
        let before = self.clone();
        let cause = input.name();
        let mut fx = Vec::new();
        match self.step(p, input, now, &mut fx) {
            Ok(()) => Ok(fx),
            Err(e) => {
                *self = before;
                Err(match e {
                    Refused::Illegal(t) => Refused::Illegal(IllegalTransition { cause, ..t }),
                    other => other,
                })
            }
        }
    }

    fn step(&mut self, p: &Policy, input: Input, now: Millis, fx: &mut Vec<Effect>) -> Step {
        use ProcessState::*;
        match (self.state, input) {
            // ---- requests
            (Stopped | Exited | Fatal, Input::Start) => {
                self.tries = 0;
                self.begin_start(now, fx)?;
            }
            (Starting | Running | Backoff, Input::Start) => return Err(Refused::AlreadyStarted),
            (Stopping, Input::Start) => return Err(Refused::Stopping),
            (Unknown, Input::Start | Input::Stop) => return Err(Refused::UnknownState),
            (Starting | Running, Input::Stop) => {
                let pid = self.pid.unwrap_or(0);
                self.deadline = Some(now.saturating_add(p.stopwait_ms));
                self.go(Stopping, now, fx)?;
                if pid != 0 {
                    fx.push(Effect::SendStopSignal { pid });
                } else {
                    // Spawn not yet confirmed: nothing to signal; the spawn result settles it.
                }
            }
            (Backoff, Input::Stop) => {
                self.deadline = None;
                self.pid = None;
                self.go(Stopped, now, fx)?;
            }
            (Stopping, Input::Stop) => {}
            // A throttled restart is pending: stopping cancels it.
            (Exited, Input::Stop) if self.deadline.is_some() => self.deadline = None,
            (Stopped | Exited | Fatal, Input::Stop) => return Err(Refused::NotRunning),

            // ---- spawn results
            (Starting, Input::Spawned { pid }) => {
                self.pid = Some(pid);
                self.ready = false;
                self.not_ready = 0;
                self.abandon = None;
                if p.startsecs_ms == 0 {
                    if p.ready_retries.is_none() {
                        self.become_running(now, fx)?;
                    }
                } else {
                    self.deadline = Some(now.saturating_add(p.startsecs_ms));
                }
            }
            (Starting, Input::Ready) if self.pid.is_some() && self.abandon.is_none() => {
                self.ready = true;
                let up = now.saturating_sub(self.laststart.unwrap_or(now));
                if up >= p.startsecs_ms {
                    self.become_running(now, fx)?;
                }
            }
            (Starting, Input::NotReady { detail }) if self.abandon.is_none() => {
                self.not_ready = self.not_ready.saturating_add(1);
                if let (Some(retries), Some(pid)) = (p.ready_retries, self.pid)
                    && self.not_ready >= retries
                {
                    self.abandon = Some(format!(
                        "not ready after {} probes (last: {detail})",
                        self.not_ready
                    ));
                    self.deadline = None;
                    fx.push(Effect::Kill { pid });
                }
            }
            (Stopping, Input::Spawned { pid }) => {
                // Stop arrived between spawn request and spawn: stop the new child now.
                self.pid = Some(pid);
                fx.push(Effect::SendStopSignal { pid });
            }
            (Starting, Input::SpawnFailed { error }) => {
                self.last_exit = None;
                self.fail_start(p, error, now, fx)?;
            }
            (Stopping, Input::SpawnFailed { error }) => {
                self.spawnerr = Some(error);
                self.deadline = None;
                self.pid = None;
                self.go(Stopped, now, fx)?;
            }

            // ---- child exits
            (Starting, Input::Exited(exit)) => {
                self.last_exit = Some(exit);
                let up = now.saturating_sub(self.laststart.unwrap_or(now));
                if let Some(reason) = self.abandon.take() {
                    self.fail_start(p, reason, now, fx)?;
                } else if up < p.startsecs_ms || (p.ready_retries.is_some() && !self.ready) {
                    self.fail_start(
                        p,
                        "Exited too quickly (process log may have details)".into(),
                        now,
                        fx,
                    )?;
                } else {
                    // It stayed up long enough before the timer fired: RUNNING, then EXITED.
                    self.become_running(now, fx)?;
                    self.exited(p, exit, now, fx)?;
                }
            }
            (Running, Input::Exited(exit)) => {
                self.last_exit = Some(exit);
                self.exited(p, exit, now, fx)?;
            }
            (Stopping, Input::Exited(exit)) => {
                self.last_exit = Some(exit);
                self.deadline = None;
                self.go(Stopped, now, fx)?;
                Self::set_last(fx, |t| t.exit = Some(exit));
                self.pid = None;
            }
            (Unknown, Input::Exited(exit)) => {
                // UNKNOWN is sticky in supervisord; we still forget the dead pid.
                self.last_exit = Some(exit);
                self.pid = None;
            }

            // ---- signal errors
            (Starting | Running | Stopping, Input::SignalFailed { error }) => {
                self.deadline = None;
                self.spawnerr = Some(error.clone());
                self.go(Unknown, now, fx)?;
                Self::set_last(fx, |t| t.reason = Some(error));
            }

            // ---- deadlines
            (Starting, Input::Timer) if self.due(now) && self.pid.is_some() => {
                self.deadline = None;
                if p.ready_retries.is_none() || self.ready {
                    self.become_running(now, fx)?;
                }
            }
            (Backoff | Exited, Input::Timer) if self.due(now) => {
                self.begin_start(now, fx)?;
            }
            (Stopping, Input::Timer) if self.due(now) => {
                self.deadline = None;
                if let Some(pid) = self.pid {
                    fx.push(Effect::Kill { pid });
                }
            }
            // Anything else is stale or impossible in this state: ignored, never applied.
            _ => {}
        }
        Ok(())
    }

    fn due(&self, now: Millis) -> bool {
        matches!(self.deadline, Some(d) if now >= d)
    }

    fn exited(&mut self, p: &Policy, exit: Exit, now: Millis, fx: &mut Vec<Effect>) -> Step {
        let expected = matches!(exit, Exit::Code(c) if p.exitcodes.contains(&c));
        let pid = self.pid.take();
        self.deadline = None;
        self.pid = pid;
        self.go(ProcessState::Exited, now, fx)?;
        self.pid = None;
        Self::set_last(fx, |t| {
            t.expected = Some(expected);
            t.exit = Some(exit);
            if !expected {
                t.reason = Some(match exit {
                    Exit::Code(c) => format!("Bad exit code {c}"),
                    Exit::Signal(s) => format!("terminated by signal {s}"),
                });
            }
        });
        if !expected {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        let restart = match p.autorestart {
            AutoRestart::Always => true,
            AutoRestart::Never => false,
            AutoRestart::Unexpected => !expected,
        };
        if restart {
            self.restart(p, now, fx)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessState::*;
    use super::*;

    fn transitions(fx: &[Effect]) -> Vec<(ProcessState, ProcessState)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Transition(t) => Some((t.from, t.to)),
                _ => None,
            })
            .collect()
    }

    fn policy() -> Policy {
        Policy::default()
    }

    /// Start and confirm a spawn at `now`; returns the process in STARTING.
    fn started(p: &Policy, now: Millis) -> Process {
        let mut pr = Process::new();
        let fx = pr.on(p, Input::Start, now).unwrap();
        assert_eq!(transitions(&fx), vec![(Stopped, Starting)]);
        assert!(fx.contains(&Effect::Spawn));
        pr.on(p, Input::Spawned { pid: 42 }, now).unwrap();
        pr
    }

    fn running(p: &Policy) -> Process {
        let mut pr = started(p, 0);
        let fx = pr.on(p, Input::Timer, p.startsecs_ms).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Running)]);
        pr
    }

    #[test]
    fn table_is_consistent_with_state_groups() {
        for s in ProcessState::ALL {
            assert_eq!(ProcessState::from_name(s.name()), Some(s));
            // no state is both running and stopped
            assert!(!(s.is_running() && s.is_stopped()), "{s}");
        }
        assert!(!Stopping.is_running() && !Stopping.is_stopped());
        assert_eq!(Backoff.code(), 30);
        assert_eq!(Unknown.code(), 1000);
    }

    #[test]
    fn starting_to_running_at_startsecs() {
        let p = policy();
        let mut pr = started(&p, 100);
        assert_eq!(pr.next_deadline(), Some(1100));
        // early timer is ignored
        assert!(pr.on(&p, Input::Timer, 1099).unwrap().is_empty());
        let fx = pr.on(&p, Input::Timer, 1100).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Running)]);
        assert_eq!(pr.next_deadline(), None);
    }

    #[test]
    fn startsecs_zero_runs_at_once() {
        let p = Policy {
            startsecs_ms: 0,
            ..policy()
        };
        let mut pr = Process::new();
        pr.on(&p, Input::Start, 0).unwrap();
        let fx = pr.on(&p, Input::Spawned { pid: 7 }, 0).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Running)]);
    }

    #[test]
    fn a_restart_loop_is_throttled_whatever_startsecs() {
        // startsecs = 0 and autorestart: every exit is a RUNNING → EXITED → STARTING loop
        // that supervisord's own backoff never sees.
        let p = Policy {
            startsecs_ms: 0,
            autorestart: AutoRestart::Always,
            ..policy()
        };
        let mut pr = Process::new();
        let mut now = 0;
        pr.on(&p, Input::Start, now).unwrap();
        let mut immediate = 0;
        let mut delays = Vec::new();
        let mut starts = Vec::new();
        let mut pid = 1;
        for _ in 0..70 {
            pr.on(&p, Input::Spawned { pid }, now).unwrap();
            pid += 1;
            now += 2; // exits 2 ms after it started
            let fx = pr.on(&p, Input::Exited(Exit::Code(1)), now).unwrap();
            if fx.iter().any(|e| matches!(e, Effect::Spawn)) {
                immediate += 1;
                starts.push(now);
                continue;
            }
            assert_eq!(pr.state, Exited);
            let due = pr.next_deadline().expect("a delayed restart");
            let reason = match fx.last() {
                Some(Effect::Transition(t)) => t.reason.clone().unwrap_or_default(),
                _ => String::new(),
            };
            assert!(reason.contains("crash loop"), "{reason}");
            delays.push(due - now);
            // Nothing happens before the deadline; at it, a start.
            assert!(pr.on(&p, Input::Timer, due - 1).unwrap().is_empty());
            now = due;
            let fx = pr.on(&p, Input::Timer, now).unwrap();
            assert!(fx.iter().any(|e| matches!(e, Effect::Spawn)));
            starts.push(now);
        }
        // The first `restarts` are immediate; then every one waits.
        assert_eq!(immediate, p.crash_loop.restarts, "{starts:?}");
        // Linear backoff steps growing while the loop lasts, up to the cap.
        assert_eq!(delays[..3], [1000, 2000, 3000]);
        assert!(delays.windows(2).all(|d| d[1] >= d[0]), "{delays:?}");
        assert_eq!(delays.last(), Some(&CRASH_LOOP_MAX_MS), "{delays:?}");
        // Stop while a throttled restart is pending: it is cancelled.
        pr.on(&p, Input::Spawned { pid }, now).unwrap();
        now += 2;
        pr.on(&p, Input::Exited(Exit::Code(1)), now).unwrap();
        assert!(pr.next_deadline().is_some());
        assert!(pr.on(&p, Input::Stop, now).unwrap().is_empty());
        assert_eq!(pr.next_deadline(), None);
        // A child that stays up for the window resets the loop.
        pr.on(&p, Input::Start, now).unwrap();
        pr.on(&p, Input::Spawned { pid: 99 }, now).unwrap();
        now += p.crash_loop.window_ms;
        let fx = pr.on(&p, Input::Exited(Exit::Code(1)), now).unwrap();
        assert!(fx.iter().any(|e| matches!(e, Effect::Spawn)));
    }

    #[test]
    fn crash_loop_backs_off_linearly_then_fatal() {
        let p = Policy {
            startretries: 3,
            ..policy()
        };
        let mut pr = started(&p, 0);
        let mut now = 0;
        let mut spawns = vec![0];
        for attempt in 1..=4u32 {
            now += 100; // dies 100 ms after each spawn
            let fx = pr.on(&p, Input::Exited(Exit::Code(3)), now).unwrap();
            if attempt <= 3 {
                assert_eq!(transitions(&fx), vec![(Starting, Backoff)]);
                assert_eq!(pr.tries, attempt);
                let due = pr.next_deadline().unwrap();
                assert_eq!(due - now, 1000 * u64::from(attempt), "linear backoff");
                let fx = pr.on(&p, Input::Timer, due).unwrap();
                assert_eq!(transitions(&fx), vec![(Backoff, Starting)]);
                assert!(fx.contains(&Effect::Spawn));
                now = due;
                spawns.push(now);
                pr.on(&p, Input::Spawned { pid: 42 + attempt }, now)
                    .unwrap();
            } else {
                assert_eq!(
                    transitions(&fx),
                    vec![(Starting, Backoff), (Backoff, Fatal)]
                );
                assert_eq!(pr.tries, 0, "counter reset on FATAL");
                assert_eq!(pr.next_deadline(), None);
            }
        }
        // startretries + 1 spawns, at t=0, +1.1 s, +3.2 s, +6.3 s
        assert_eq!(spawns, vec![0, 1100, 3200, 6300]);
        assert_eq!(pr.consecutive_failures, 4);
        assert_eq!(
            pr.spawnerr.as_deref(),
            Some("Exited too quickly (process log may have details)")
        );
    }

    #[test]
    fn spawn_failure_goes_to_backoff_with_the_error() {
        let p = Policy {
            startretries: 0,
            ..policy()
        };
        let mut pr = Process::new();
        pr.on(&p, Input::Start, 0).unwrap();
        let fx = pr
            .on(
                &p,
                Input::SpawnFailed {
                    error: "can't find command 'nope'".into(),
                },
                0,
            )
            .unwrap();
        assert_eq!(
            transitions(&fx),
            vec![(Starting, Backoff), (Backoff, Fatal)]
        );
        assert_eq!(pr.spawnerr.as_deref(), Some("can't find command 'nope'"));
        // FATAL can be started again by hand
        let fx = pr.on(&p, Input::Start, 10).unwrap();
        assert_eq!(transitions(&fx), vec![(Fatal, Starting)]);
    }

    #[test]
    fn autorestart_policies_matrix() {
        // (autorestart, exit, expected?, restarts?)
        let cases = [
            (AutoRestart::Always, Exit::Code(0), true, true),
            (AutoRestart::Always, Exit::Code(2), false, true),
            (AutoRestart::Never, Exit::Code(2), false, false),
            (AutoRestart::Never, Exit::Code(0), true, false),
            (AutoRestart::Unexpected, Exit::Code(0), true, false),
            (AutoRestart::Unexpected, Exit::Code(2), false, true),
            (AutoRestart::Unexpected, Exit::Signal(9), false, true),
        ];
        for (ar, exit, expected, restarts) in cases {
            let p = Policy {
                autorestart: ar,
                ..policy()
            };
            let mut pr = running(&p);
            let fx = pr.on(&p, Input::Exited(exit), 5000).unwrap();
            let t = transitions(&fx);
            assert_eq!(t[0], (Running, Exited), "{ar:?} {exit:?}");
            let Effect::Transition(tr) = &fx[0] else {
                panic!("first effect is the EXITED transition")
            };
            assert_eq!(tr.expected, Some(expected), "{ar:?} {exit:?}");
            assert_eq!(tr.pid, 42);
            assert_eq!(
                t.len() == 2 && t[1] == (Exited, Starting),
                restarts,
                "{ar:?} {exit:?}"
            );
            assert_eq!(fx.contains(&Effect::Spawn), restarts);
        }
    }

    #[test]
    fn exitcodes_decide_expected() {
        let p = Policy {
            exitcodes: vec![0, 2],
            autorestart: AutoRestart::Unexpected,
            ..policy()
        };
        let mut pr = running(&p);
        let fx = pr.on(&p, Input::Exited(Exit::Code(2)), 5000).unwrap();
        assert_eq!(transitions(&fx), vec![(Running, Exited)]);
        assert_eq!(pr.exitstatus(), 2);
    }

    #[test]
    fn exitstatus_is_reset_by_a_spawn() {
        // supervisord reports 0 for a running child, whatever the previous one did.
        let p = Policy {
            autorestart: AutoRestart::Always,
            ..policy()
        };
        let mut pr = running(&p);
        let fx = pr.on(&p, Input::Exited(Exit::Code(3)), 5000).unwrap();
        assert_eq!(
            transitions(&fx),
            vec![(Running, Exited), (Exited, Starting)]
        );
        assert_eq!(pr.exitstatus(), 0, "STARTING again");
        pr.on(&p, Input::Spawned { pid: 43 }, 5000).unwrap();
        pr.on(&p, Input::Timer, 5000 + p.startsecs_ms).unwrap();
        assert_eq!((pr.state, pr.exitstatus()), (Running, 0));
        assert_eq!(pr.last_exit, Some(Exit::Code(3)), "the last exit is kept");
        pr.on(&p, Input::Stop, 9000).unwrap();
        assert_eq!((pr.state, pr.exitstatus()), (Stopping, 0));
        pr.on(&p, Input::Exited(Exit::Signal(15)), 9001).unwrap();
        assert_eq!((pr.state, pr.exitstatus()), (Stopped, -1));
    }

    #[test]
    fn stop_signals_then_kills_after_stopwait() {
        let p = Policy {
            stopwait_ms: 3000,
            ..policy()
        };
        let mut pr = running(&p);
        let fx = pr.on(&p, Input::Stop, 2000).unwrap();
        assert_eq!(transitions(&fx), vec![(Running, Stopping)]);
        assert!(fx.contains(&Effect::SendStopSignal { pid: 42 }));
        assert_eq!(pr.next_deadline(), Some(5000));
        let fx = pr.on(&p, Input::Timer, 5000).unwrap();
        assert_eq!(fx, vec![Effect::Kill { pid: 42 }]);
        assert_eq!(pr.state, Stopping);
        let fx = pr.on(&p, Input::Exited(Exit::Signal(9)), 5001).unwrap();
        assert_eq!(transitions(&fx), vec![(Stopping, Stopped)]);
        assert_eq!(pr.pid, None);
        assert_eq!(pr.exitstatus(), -1);
    }

    #[test]
    fn stop_in_backoff_is_stopped_without_signal() {
        let p = policy();
        let mut pr = started(&p, 0);
        pr.on(&p, Input::Exited(Exit::Code(1)), 10).unwrap();
        assert_eq!(pr.state, Backoff);
        let fx = pr.on(&p, Input::Stop, 20).unwrap();
        assert_eq!(transitions(&fx), vec![(Backoff, Stopped)]);
        let Effect::Transition(t) = &fx[0] else {
            panic!()
        };
        assert_eq!(t.pid, 0);
        assert_eq!(pr.next_deadline(), None);
    }

    #[test]
    fn stop_during_starting() {
        let p = policy();
        let mut pr = started(&p, 0);
        let fx = pr.on(&p, Input::Stop, 10).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Stopping)]);
        let fx = pr.on(&p, Input::Exited(Exit::Signal(15)), 11).unwrap();
        assert_eq!(transitions(&fx), vec![(Stopping, Stopped)]);
    }

    #[test]
    fn refusals_match_supervisord_faults() {
        let p = policy();
        let mut pr = running(&p);
        assert_eq!(pr.on(&p, Input::Start, 1), Err(Refused::AlreadyStarted));
        let mut stopped = Process::new();
        assert_eq!(stopped.on(&p, Input::Stop, 1), Err(Refused::NotRunning));
        pr.on(
            &p,
            Input::SignalFailed {
                error: "EPERM".into(),
            },
            2,
        )
        .unwrap();
        assert_eq!(pr.state, Unknown);
        assert_eq!(pr.on(&p, Input::Start, 3), Err(Refused::UnknownState));
    }

    #[test]
    fn exit_after_startsecs_but_before_timer_is_running_then_exited() {
        let p = Policy {
            autorestart: AutoRestart::Never,
            ..policy()
        };
        let mut pr = started(&p, 0);
        let fx = pr.on(&p, Input::Exited(Exit::Code(0)), 1000).unwrap();
        assert_eq!(
            transitions(&fx),
            vec![(Starting, Running), (Running, Exited)]
        );
    }

    #[test]
    fn recovered_after_failures() {
        let p = policy();
        let mut pr = running(&p);
        pr.on(&p, Input::Exited(Exit::Signal(9)), 5000).unwrap(); // EXITED -> STARTING
        pr.on(&p, Input::Spawned { pid: 43 }, 5000).unwrap();
        assert_eq!(pr.consecutive_failures, 1);
        let fx = pr.on(&p, Input::Timer, 6000).unwrap();
        assert!(fx.contains(&Effect::Recovered { after_failures: 1 }));
        assert_eq!(pr.consecutive_failures, 0);
    }

    #[test]
    fn readiness_gates_running_and_failed_probes_fail_the_start() {
        let p = Policy {
            startsecs_ms: 1000,
            ready_retries: Some(2),
            startretries: 0,
            ..policy()
        };
        // Ready before startsecs: RUNNING at startsecs.
        let mut pr = started(&p, 0);
        assert!(transitions(&pr.on(&p, Input::Ready, 500).unwrap()).is_empty());
        let fx = pr.on(&p, Input::Timer, 1000).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Running)]);
        // startsecs passed but not ready: still STARTING until the probe passes.
        let mut pr = started(&p, 0);
        assert!(transitions(&pr.on(&p, Input::Timer, 1000).unwrap()).is_empty());
        assert_eq!(pr.state, Starting);
        let fx = pr.on(&p, Input::Ready, 1500).unwrap();
        assert_eq!(transitions(&fx), vec![(Starting, Running)]);
        // Two failed probes: the child is killed and the start fails with the reason.
        let mut pr = started(&p, 0);
        pr.on(
            &p,
            Input::NotReady {
                detail: "refused".into(),
            },
            300,
        )
        .unwrap();
        let fx = pr
            .on(
                &p,
                Input::NotReady {
                    detail: "refused".into(),
                },
                600,
            )
            .unwrap();
        assert_eq!(fx, vec![Effect::Kill { pid: 42 }]);
        let fx = pr.on(&p, Input::Exited(Exit::Signal(9)), 610).unwrap();
        assert_eq!(
            transitions(&fx),
            vec![(Starting, Backoff), (Backoff, Fatal)]
        );
        let Effect::Transition(t) = &fx[0] else {
            panic!()
        };
        assert_eq!(
            t.reason.as_deref(),
            Some("not ready after 2 probes (last: refused)")
        );
        // Exit after startsecs but never ready: a failed start, not RUNNING → EXITED.
        let mut pr = started(&p, 0);
        pr.on(&p, Input::Timer, 1000).unwrap();
        let fx = pr.on(&p, Input::Exited(Exit::Code(0)), 2000).unwrap();
        assert_eq!(transitions(&fx)[0], (Starting, Backoff));
    }

    #[test]
    fn backoff_policy_extensions() {
        let lin = BackoffPolicy::default();
        assert_eq!(
            (1..=4).map(|t| lin.delay_ms(t)).collect::<Vec<_>>(),
            vec![1000, 2000, 3000, 4000]
        );
        let exp = BackoffPolicy {
            step_ms: 500,
            exponential: true,
            max_ms: Some(3000),
        };
        assert_eq!(
            (1..=5).map(|t| exp.delay_ms(t)).collect::<Vec<_>>(),
            vec![500, 1000, 2000, 3000, 3000]
        );
    }

    #[test]
    fn every_emitted_transition_is_in_the_table() {
        // Drive many random-ish sequences and check every transition is allowed.
        let p = Policy {
            startretries: 2,
            ..policy()
        };
        let inputs = [
            Input::Start,
            Input::Stop,
            Input::Spawned { pid: 1 },
            Input::SpawnFailed { error: "x".into() },
            Input::Exited(Exit::Code(0)),
            Input::Exited(Exit::Code(1)),
            Input::Exited(Exit::Signal(9)),
            Input::Timer,
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..200 {
            let mut pr = Process::new();
            let mut now = 0;
            for _ in 0..50 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = inputs[(seed % inputs.len() as u64) as usize].clone();
                now += seed % 3000;
                if let Ok(fx) = pr.on(&p, i, now) {
                    for (f, t) in transitions(&fx) {
                        assert!(is_allowed(f, t), "{f} -> {t}");
                    }
                }
            }
        }
    }

    /// Every (from, to) pair: in the table it applies; outside it is refused and leaves the
    /// process (state and every other field) and the effects untouched. Runs in release
    /// builds too: `cargo test --release -p vigil-core transition_table`.
    #[test]
    fn transition_table_every_pair_applies_or_is_refused() {
        let mut applied = 0;
        let mut refused = 0;
        for from in ProcessState::ALL {
            for to in ProcessState::ALL {
                let mut pr = Process::new();
                pr.state = from;
                pr.pid = Some(7);
                pr.tries = 2;
                let before = pr.clone();
                let mut fx = Vec::new();
                match pr.go(to, 500, &mut fx) {
                    Ok(t) => {
                        assert!(is_allowed(from, to), "{from} -> {to} applied");
                        assert_eq!((t.from, t.to, pr.state), (from, to, to));
                        assert_eq!(fx, vec![Effect::Transition(t)]);
                        applied += 1;
                    }
                    Err(e) => {
                        assert!(!is_allowed(from, to), "{from} -> {to} refused");
                        assert_eq!((e.from, e.to), (from, to));
                        assert_eq!(pr, before, "{from} -> {to} changed the process");
                        assert!(fx.is_empty());
                        refused += 1;
                    }
                }
            }
        }
        let legal: usize = ALLOWED.iter().map(|(_, tos)| tos.len()).sum();
        assert_eq!((applied, refused), (legal, 64 - legal));
    }

    /// An `Err` from `on` leaves the whole process as it was; an illegal transition names
    /// from, to and the input that caused it.
    #[test]
    fn transition_table_refusal_leaves_the_process_untouched() {
        let p = policy();
        let mut pr = started(&p, 0);
        pr.on(&p, Input::Timer, 1000).unwrap();
        let before = pr.clone();
        assert_eq!(pr.on(&p, Input::Start, 1500), Err(Refused::AlreadyStarted));
        assert_eq!(pr, before);
        let e = IllegalTransition {
            from: Running,
            to: Fatal,
            cause: Input::Exited(Exit::Code(1)).name(),
        };
        assert_eq!(
            Refused::from(e).to_string(),
            "illegal transition RUNNING -> FATAL (on exited)"
        );
    }
}
