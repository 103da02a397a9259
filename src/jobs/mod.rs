//! Background jobs (issue 10, seed 004): the jobs actor.
//!
//! One tokio task owns the queue, the reservation ledger and every job. It `select!`s on
//! commands (submit, cancel, progress, reads), on notes from the jobs' processes (exit,
//! progress lines), on `check` events of the event log (to pause jobs for the bots) and on
//! the single earliest deadline (a timeout, the end of a cancel grace, the next aging step,
//! a host sample while something waits). Admission runs on submit, on every exit, on cancel
//! and on each host sample taken while jobs wait — there is no periodic worker.
//!
//! Every transition is written to the job's row (`store::jobs`, one row write), recorded as
//! a `job_state` event in the main event log, and broadcast to `/api/system/task-events`.

pub mod cgroup;
pub mod exec;
pub mod host;
mod launch;
mod restore;
mod submit;
mod view;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use vigil_core::jobs::outcome::{Ending, classify};
use vigil_core::jobs::queue::Order;
use vigil_core::jobs::{HostReading, JobState, Ledger, Pauser, Policy, Queue, Queued, Resources};

use crate::config::jobs::JobsConfig;
use crate::events::{EventLog, rfc3339};
use crate::store::jobs::{JobFilter, JobWriter};
use crate::store::{Store, StoreError};

pub use launch::{SPARE_ARG0, spare_main};
pub use submit::{JobError, SubmitRequest};
pub use view::{Caller, Job, QueueSnapshot, ResourcesView, TaskEvent};

use cgroup::{Cgroups, JobCgroup};
use exec::Note;

/// Metric names (docs/metrics.md).
pub mod names {
    pub const JOBS: &str = "vigil_jobs";
    pub const COMPLETED: &str = "vigil_jobs_completed_total";
    pub const DURATION: &str = "vigil_job_duration_seconds";
    pub const WAIT: &str = "vigil_job_queue_wait_seconds";
    pub const DECISIONS: &str = "vigil_job_admission_decisions_total";

    pub fn describe() {
        metrics::describe_gauge!(JOBS, "Jobs queued, running or paused, by state.");
        metrics::describe_counter!(
            COMPLETED,
            "Jobs finished, by type and result (the final state)."
        );
        metrics::describe_histogram!(
            DURATION,
            metrics::Unit::Seconds,
            "Run time of finished jobs, by type."
        );
        metrics::describe_histogram!(
            WAIT,
            metrics::Unit::Seconds,
            "Time from submission to start, by type."
        );
        metrics::describe_counter!(
            DECISIONS,
            "Admission decisions: admitted, deferred (a waiting job re-checked and left waiting), rejected (larger than the host)."
        );
    }
}

/// A submission's answer: the job, and the commit of its queued row.
type Submitted = Result<(Job, oneshot::Receiver<Result<(), String>>), JobError>;

enum Cmd {
    Submit(submit::Prepared, oneshot::Sender<Submitted>),
    Cancel(u64, Caller, oneshot::Sender<Result<Job, JobError>>),
    Progress {
        id: u64,
        token: Option<String>,
        caller: Option<Caller>,
        description: Option<String>,
        percent: Option<f64>,
        reply: oneshot::Sender<Result<Job, JobError>>,
    },
    Get(u64, oneshot::Sender<Option<Job>>),
    Active(oneshot::Sender<Vec<Job>>),
    Queue(oneshot::Sender<QueueSnapshot>),
    Resources(oneshot::Sender<ResourcesView>),
    Follow(
        u64,
        oneshot::Sender<Option<(PathBuf, Option<watch::Receiver<u64>>)>>,
    ),
    Shutdown(oneshot::Sender<()>),
}

/// The handle the API, the CLI's daemon side and the demo use; cheap to clone.
#[derive(Clone)]
pub struct JobsHandle {
    tx: mpsc::Sender<Cmd>,
    live: broadcast::Sender<Arc<TaskEvent>>,
    store: Store,
    cfg: Arc<JobsConfig>,
    host: Arc<host::Host>,
    cgroup_mode: cgroup::Mode,
}

impl JobsHandle {
    pub fn config(&self) -> &JobsConfig {
        &self.cfg
    }

    pub fn cgroup_mode(&self) -> cgroup::Mode {
        self.cgroup_mode
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, JobError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| JobError::Closed)?;
        rx.await.map_err(|_| JobError::Closed)
    }

    /// Validate, then queue (and admit at once if it fits). Nothing is queued when any field
    /// is wrong.
    pub async fn submit(&self, caller: &Caller, req: SubmitRequest) -> Result<Job, JobError> {
        let prepared = submit::prepare(&self.cfg, caller, req)?;
        let (job, committed) = self.ask(|r| Cmd::Submit(prepared, r)).await??;
        // Acknowledged = stored: the queued row is committed before the caller hears back.
        match committed.await {
            Ok(Ok(())) => Ok(job),
            Ok(Err(e)) => Err(JobError::Stored(e)),
            Err(_) => Err(JobError::Closed),
        }
    }

    pub async fn cancel(&self, id: u64, caller: &Caller) -> Result<Job, JobError> {
        self.ask(|r| Cmd::Cancel(id, caller.clone(), r)).await?
    }

    /// A description/percent update, by the job itself (its token) or its owner / an admin.
    pub async fn progress(
        &self,
        id: u64,
        token: Option<String>,
        caller: Option<Caller>,
        description: Option<String>,
        percent: Option<f64>,
    ) -> Result<Job, JobError> {
        if let Some(d) = &description
            && d.chars().count() > self.cfg.max_description
        {
            return Err(JobError::Invalid {
                field: "description".into(),
                reason: format!("longer than {} characters", self.cfg.max_description),
            });
        }
        if let Some(p) = percent
            && (!p.is_finite() || !(0.0..=100.0).contains(&p))
        {
            return Err(JobError::Invalid {
                field: "percent".into(),
                reason: format!("expected a number from 0 to 100, found {p}"),
            });
        }
        self.ask(|reply| Cmd::Progress {
            id,
            token,
            caller,
            description,
            percent,
            reply,
        })
        .await?
    }

    /// A job by id (active ones from memory, finished ones from the store).
    pub async fn get(&self, id: u64) -> Result<Option<Job>, JobError> {
        if let Some(j) = self.ask(|r| Cmd::Get(id, r)).await? {
            return Ok(Some(j));
        }
        let store = self.store.clone();
        let row = tokio::task::spawn_blocking(move || crate::store::jobs::get(&store, id))
            .await
            .map_err(|_| JobError::Closed)?
            .map_err(JobError::Store)?;
        Ok(row.and_then(|d| serde_json::from_str(&d).ok()))
    }

    /// A page of jobs, newest first; active jobs as the actor holds them.
    pub async fn list(&self, f: JobFilter) -> Result<Vec<Job>, JobError> {
        let active: HashMap<u64, Job> = self
            .ask(Cmd::Active)
            .await?
            .into_iter()
            .map(|j| (j.id, j))
            .collect();
        let store = self.store.clone();
        let f2 = f.clone();
        let rows = tokio::task::spawn_blocking(move || crate::store::jobs::list(&store, &f2))
            .await
            .map_err(|_| JobError::Closed)?
            .map_err(JobError::Store)?;
        let mut out: Vec<Job> = rows
            .iter()
            .filter_map(|d| serde_json::from_str::<Job>(d).ok())
            .map(|j| active.get(&j.id).cloned().unwrap_or(j))
            .filter(|j| f.states.is_empty() || f.states.iter().any(|s| s == j.state.as_str()))
            .collect();
        // Rows the writer has not committed yet.
        for j in active.values() {
            let matches = (f.states.is_empty() || f.states.iter().any(|s| s == j.state.as_str()))
                && f.kind.as_ref().is_none_or(|k| k == &j.task_type)
                && f.user_id.as_ref().is_none_or(|u| u == &j.user_id)
                && f.before.is_none_or(|b| j.id < b);
            if matches && !out.iter().any(|o| o.id == j.id) {
                out.push(j.clone());
            }
        }
        out.sort_by_key(|j| std::cmp::Reverse(j.id));
        out.truncate(f.limit);
        Ok(out)
    }

    pub async fn queue(&self) -> Result<QueueSnapshot, JobError> {
        self.ask(Cmd::Queue).await
    }

    pub async fn resources(&self) -> Result<ResourcesView, JobError> {
        self.ask(Cmd::Resources).await
    }

    /// A fresh host reading (for heartbeats); CPU busy since the previous reading.
    pub fn read_host(&self) -> HostReading {
        self.host.read()
    }

    /// The job's output directory and, while it runs, a watch of bytes written.
    pub async fn follow(
        &self,
        id: u64,
    ) -> Result<Option<(PathBuf, Option<watch::Receiver<u64>>)>, JobError> {
        self.ask(|r| Cmd::Follow(id, r)).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.live.subscribe()
    }

    /// Stop: running jobs are terminated (SIGTERM, grace, SIGKILL) and end `interrupted`;
    /// queued jobs stay queued in the store and are queued again at the next start.
    pub async fn shutdown(&self) {
        let _ = self.ask(Cmd::Shutdown).await;
    }
}

/// A job the actor holds.
struct Entry {
    job: Job,
    booking: Resources,
    token: String,
    timeout_at: Option<Instant>,
    /// SIGKILL at this instant (end of a cancel/timeout grace).
    kill_at: Option<Instant>,
    ending: Ending,
    written: Option<watch::Receiver<u64>>,
    /// vigil froze it (cgroup freezer or SIGSTOP).
    frozen: bool,
    admitted_at: Option<Instant>,
}

impl Entry {
    /// A job waiting in the queue (submitted now, or queued again at start): nothing booked,
    /// its own job-scoped token.
    fn queued(id: u64, job: Job) -> Entry {
        Entry {
            job,
            booking: Resources::default(),
            token: format!("job{id}.{}", crate::auth::random_hex(24)),
            timeout_at: None,
            kill_at: None,
            ending: Ending::default(),
            written: None,
            frozen: false,
            admitted_at: None,
        }
    }
}

/// What is made ahead for a job likely to start next.
struct Ahead {
    cg: JobCgroup,
    /// Its process, forked and in its cgroups, waiting before exec (where `clone3` is used).
    spare: Option<exec::Spare>,
}

impl Ahead {
    /// Not needed after all: the spare exits without exec, then the cgroups go.
    fn discard(self) {
        let cg = self.cg;
        match self.spare {
            Some(sp) => exec::discard(sp, move || {
                if !cg.remove() {
                    tracing::debug!(?cg, "cgroup of a discarded spare not removed");
                }
            }),
            None => {
                cg.remove();
            }
        }
    }
}

/// The variables vigil adds to a job's environment.
/// What `exec` needs to start job `e` (its output in `dir`, its cgroups `cg`).
fn exec_spec<'a>(
    url: &str,
    max_output: u64,
    e: &'a Entry,
    dir: &'a std::path::Path,
    cg: &'a JobCgroup,
) -> exec::Spec<'a> {
    exec::Spec {
        id: e.job.id,
        argv: &e.job.argv,
        env: job_env(url, e.job.id, e),
        dir,
        cgroup: cg,
        max_output,
    }
}

fn job_env(url: &str, id: u64, e: &Entry) -> Vec<(String, String)> {
    vec![
        ("VIGIL_URL".to_string(), url.to_string()),
        ("VIGIL_JOB_ID".to_string(), id.to_string()),
        ("VIGIL_JOB_TOKEN".to_string(), e.token.clone()),
        ("VIGIL_JOB_TYPE".to_string(), e.job.task_type.clone()),
    ]
}

pub struct Options {
    pub data_dir: PathBuf,
    pub url: String,
    /// `None`: detect; `Some(cg)`: use these (tests).
    pub cgroups: Option<Cgroups>,
}

/// Start the actor: recover what the store holds (queued jobs queued again in order; jobs
/// recorded as running checked against reality, killed if left over, marked `interrupted`).
pub fn start(cfg: JobsConfig, events: EventLog, opts: Options) -> Result<JobsHandle, StoreError> {
    names::describe();
    for st in [JobState::Queued, JobState::Running, JobState::Paused] {
        metrics::gauge!(names::JOBS, "state" => st.as_str()).set(0.0);
    }
    let store = events.store().clone();
    let last_id = crate::store::jobs::open(&store)?;
    let writer = JobWriter::start(&store)?;
    let unfinished = crate::store::jobs::unfinished(&store)?;
    let dev = cfg.dev_mode_with_env(|k| std::env::var(k).ok());
    let policy = cfg.policy(dev);
    let order = cfg.order();
    let host = Arc::new(host::Host::new(cfg.cpu_cores, cfg.ram_gb));
    let tag = data_dir_tag(&opts.data_dir);
    let cgroups = opts.cgroups.unwrap_or_else(|| {
        if cfg.no_cgroups {
            Cgroups::none("[jobs] cgroups = \"none\": jobs run in their own process group; memory is sampled from /proc")
        } else {
            Cgroups::detect(&tag)
        }
    });
    if !cgroups.note.is_empty() {
        tracing::info!(mode = cgroups.mode.as_str(), "jobs: {}", cgroups.note);
    }
    let (tx, rx) = mpsc::channel(256); // each caller waits for its reply; more wait to send
    let (live, _) = broadcast::channel(4096);
    let (notes_tx, notes_rx) = mpsc::channel(exec::NOTES_QUEUE);
    let cfg = Arc::new(cfg);
    let handle = JobsHandle {
        tx,
        live: live.clone(),
        store,
        cfg: cfg.clone(),
        host: host.clone(),
        cgroup_mode: cgroups.mode,
    };
    let pauser = Pauser::new(cfg.pause_cpu_pct, cfg.pause_cpu_sustain_s);
    let mut actor = Actor {
        cfg,
        policy,
        order,
        host,
        cgroups,
        queue: Queue::new(),
        ledger: Ledger::default(),
        jobs: HashMap::new(),
        active: BTreeSet::new(),
        prepared: HashMap::new(),
        recent: VecDeque::new(),
        next_id: last_id,
        writer,
        events: events.clone(),
        live,
        notes_tx,
        pauser,
        paused_reason: None,
        data_dir: opts.data_dir,
        url: opts.url,
        finished_since_prune: 0,
        last_reading: None,
        jobs_cpu: None,
    };
    actor.recover(unfinished);
    let ev_rx = events.subscribe();
    tokio::spawn(actor.run(rx, notes_rx, ev_rx));
    Ok(handle)
}

fn data_dir_tag(dir: &std::path::Path) -> String {
    // FNV-1a of the data_dir: one parent cgroup per data_dir (one daemon per data_dir).
    let mut h: u64 = 0xcbf29ce484222325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h & 0xffff_ffff)
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn now_str() -> String {
    rfc3339(Utc::now())
}

struct Actor {
    cfg: Arc<JobsConfig>,
    policy: Policy,
    order: Order,
    host: Arc<host::Host>,
    cgroups: Cgroups,
    queue: Queue,
    ledger: Ledger,
    /// Queued, running and paused jobs.
    jobs: HashMap<u64, Entry>,
    /// The running and paused ones (what deadlines, pauses and samples look at: never the
    /// whole queue).
    active: BTreeSet<u64>,
    /// Cgroups and spare processes made ahead for the next jobs in order, so that an exit →
    /// spawn neither creates cgroups nor forks (`prepare_next`).
    prepared: HashMap<u64, Ahead>,
    /// Recently finished jobs (reads until the store has them).
    recent: VecDeque<Job>,
    next_id: u64,
    writer: JobWriter,
    events: EventLog,
    live: broadcast::Sender<Arc<TaskEvent>>,
    notes_tx: mpsc::Sender<Note>,
    pauser: Pauser,
    paused_reason: Option<String>,
    data_dir: PathBuf,
    url: String,
    finished_since_prune: u64,
    last_reading: Option<HostReading>,
    /// When the running jobs' CPU ticks were last read, and the ticks by process group.
    jobs_cpu: Option<(Instant, HashMap<i32, u64>)>,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(500);
const RECENT: usize = 1000;
/// Cgroups made ahead for the next jobs in order.
const PREPARED: usize = 4;

impl Actor {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut notes: mpsc::Receiver<Note>,
        mut events: broadcast::Receiver<Arc<crate::events::Event>>,
    ) {
        self.admit();
        let mut next_sample = Instant::now() + SAMPLE_EVERY;
        loop {
            let deadline = self.next_deadline(next_sample);
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Cmd::Shutdown(reply)) => {
                        self.shutdown(&mut notes).await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(c) => self.command(c),
                    None => return,
                },
                Some(n) = notes.recv() => self.note(n),
                e = events.recv() => match e {
                    Ok(ev) => self.event(&ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    if now >= next_sample {
                        next_sample = now + SAMPLE_EVERY;
                        self.sample();
                        if self.cgroups.mode == cgroup::Mode::None {
                            self.sample_memory();
                        }
                    }
                    self.timers(now);
                    self.admit();
                }
            }
        }
    }

    fn next_deadline(&self, next_sample: Instant) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut put = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        for e in self.active_jobs() {
            if let Some(t) = e.timeout_at {
                put(t);
            }
            if let Some(t) = e.kill_at {
                put(t);
            }
        }
        // Host samples only while something waits (or CPU may pause running jobs).
        let watch_cpu = self.pauser.watching_cpu() && self.active_jobs().any(|e| e.job.pausable);
        // Without a memory cgroup, running jobs' memory is sampled from /proc.
        let sample_memory = self.cgroups.mode == cgroup::Mode::None && !self.active.is_empty();
        if !self.queue.is_empty() || watch_cpu || sample_memory {
            put(next_sample);
        }
        let now_wall = now_ms();
        let at = |ms: i64| Instant::now() + Duration::from_millis((ms - now_wall).max(0) as u64);
        // Aging reorders the queue; that decides an admission only while a job blocks
        // (otherwise each change of resources runs a pass over the current order anyway).
        if self.queue.blocked_by().is_some()
            && let Some(t) = self.queue.next_aging_deadline(now_wall, &self.order)
        {
            put(at(t));
        }
        if !self.queue.is_empty()
            && let Some(t) = self.queue.next_block_deadline(now_wall, &self.order)
        {
            put(at(t));
        }
        if let Some(t) = self.pauser.next_deadline(now_wall) {
            put(at(t));
        }
        d
    }

    /// The running and paused jobs.
    fn active_jobs(&self) -> impl Iterator<Item = &Entry> {
        self.active.iter().filter_map(|id| self.jobs.get(id))
    }

    fn sample(&mut self) {
        let r = self.host.read();
        self.last_reading = Some(r);
        if self.pauser.watching_cpu() {
            // The bots' CPU: the host's busy share minus what vigil's own running jobs used
            // in the same interval — a busy backtest must not pause itself.
            let jobs_pct = self.jobs_cpu_percent(r.total_cores);
            self.pauser
                .on_cpu(now_ms(), (r.cpu_percent - jobs_pct).max(0.0));
        }
        self.apply_pause();
    }

    /// The share of the host's CPU (percent of all cores) that running jobs used since the
    /// previous call.
    fn jobs_cpu_percent(&mut self, cores: f64) -> f64 {
        let pgids: Vec<i32> = self
            .active_jobs()
            .filter(|e| e.job.state == JobState::Running)
            .filter_map(|e| e.job.pid.map(|p| p as i32))
            .collect();
        let now = Instant::now();
        let ticks = cgroup::cpu_ticks_by_pgid(&pgids);
        let Some((at, before)) = self.jobs_cpu.replace((now, ticks.clone())) else {
            return 0.0;
        };
        let dt = now.duration_since(at).as_secs_f64();
        if dt <= 0.0 || cores <= 0.0 {
            return 0.0;
        }
        // A group that started since counts whole; one that ended took its ticks along.
        let used: u64 = ticks
            .iter()
            .map(|(g, t)| t.saturating_sub(before.get(g).copied().unwrap_or(0)))
            .sum();
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let used_s = used as f64 / hz;
        (used_s / (dt * cores) * 100.0).clamp(0.0, 100.0)
    }

    /// `memory_enforcement: sampled`: the resident memory of each running job's process
    /// group; over its limit, the job is killed and ends `oom_killed`.
    fn sample_memory(&mut self) {
        let active: Vec<i32> = self
            .active_jobs()
            .filter(|e| e.job.state == JobState::Running && e.kill_at.is_none())
            .filter_map(|e| e.job.pid.map(|p| p as i32))
            .collect();
        if active.is_empty() {
            return;
        }
        let rss = cgroup::rss_by_pgid(&active);
        for id in &self.active {
            let Some(e) = self.jobs.get_mut(id) else {
                continue;
            };
            let Some(pid) = e.job.pid.map(|p| p as i32) else {
                continue;
            };
            let Some(bytes) = rss.get(&pid).copied() else {
                continue;
            };
            e.job.peak_memory_bytes = Some(e.job.peak_memory_bytes.unwrap_or(0).max(bytes));
            if bytes > e.job.memory_limit_bytes && e.kill_at.is_none() {
                tracing::warn!(
                    job = e.job.id,
                    rss = bytes,
                    limit = e.job.memory_limit_bytes,
                    "job over its memory limit (sampled); killing it"
                );
                e.ending.oom = true;
                Self::kill_now(e);
                e.kill_at = Some(Instant::now() + Duration::from_secs(3600));
            }
        }
    }

    fn reading(&mut self) -> HostReading {
        let r = self.host.read();
        self.last_reading = Some(r);
        r
    }

    // ---- transitions ------------------------------------------------------------------

    /// Persist (one row write), record in the event log, broadcast.
    fn record(&mut self, job: &Job, from: Option<JobState>) {
        self.writer.write(job.row());
        self.log_transition(job, from);
    }

    fn log_transition(&self, job: &Job, from: Option<JobState>) {
        let mut data = crate::fields! {
            "id" => job.id,
            "task_id" => job.id.to_string(),
            "task_type" => job.task_type,
            "from" => from.map(JobState::as_str),
            "to" => job.state.as_str(),
            "user_id" => job.user_id,
            "priority" => job.priority,
        };
        let opt = |d: &mut serde_json::Map<String, Value>, k: &str, v: Value| {
            if !v.is_null() {
                d.insert(k.into(), v);
            }
        };
        opt(&mut data, "pid", json!(job.pid));
        opt(&mut data, "exit_code", json!(job.exit_code));
        opt(&mut data, "signal", json!(job.signal));
        opt(&mut data, "message", json!(job.message));
        opt(&mut data, "canceled_by", json!(job.canceled_by));
        opt(&mut data, "reason", json!(job.reason));
        opt(&mut data, "paused_reason", json!(job.paused_reason));
        self.events.submit("job_state", data);
        // vigil_jobs{state}: the active states, kept by the transitions themselves.
        for (st, d) in [(from, -1.0), (Some(job.state), 1.0)] {
            if let Some(st) = st.filter(|s| !s.is_final()) {
                metrics::gauge!(names::JOBS, "state" => st.as_str()).increment(d);
            }
        }
        if job.state.is_final() {
            metrics::counter!(names::COMPLETED, "type" => job.task_type.clone(), "result" => job.state.as_str())
                .increment(1);
        }
        let (kind, payload) = match job.state {
            JobState::Queued => {
                let pos = self.queue.position(job.id, now_ms(), &self.order);
                let mut p = job.task(pos);
                if let Some(o) = p.as_object_mut() {
                    o.insert("queue_position".into(), json!(pos.unwrap_or(0)));
                }
                ("task_queued", p)
            }
            JobState::Running | JobState::Paused => ("task_running", job.task(None)),
            _ => (
                "task_completed",
                json!({
                    "task_id": job.id.to_string(),
                    "task_type": job.task_type,
                    "success": job.state == JobState::Succeeded,
                    "state": job.state,
                    "exit_code": job.exit_code,
                    "signal": job.signal,
                    "message": job.message,
                    "user_id": job.user_id,
                    "description": job.description,
                    "completed_at": job.ended_at,
                }),
            ),
        };
        let _ = self.live.send(Arc::new(TaskEvent {
            kind,
            user_id: job.user_id.clone(),
            data: payload,
            timestamp: now_str(),
        }));
    }

    fn finish(&mut self, id: u64, state: JobState, message: String) {
        let Some(mut e) = self.jobs.remove(&id) else {
            return;
        };
        let from = e.job.state;
        if from.is_active() {
            self.ledger.release(e.booking);
        }
        self.active.remove(&id);
        if let Some(a) = self.prepared.remove(&id) {
            a.discard();
        }
        self.queue.remove(id);
        e.job.state = state;
        e.job.message = Some(message);
        e.job.ended_at = Some(now_str());
        e.job.paused_reason = None;
        if e.job.cgroup.is_some() {
            e.job.peak_memory_bytes = e.job.cgroup.peak_bytes();
            e.job.cpu_seconds = e.job.cgroup.cpu_seconds();
            let cg = e.job.cgroup.clone();
            // After this turn of the actor, so after the next job is spawned: nothing of a
            // finished job lives on (a setsid grandchild included), then its cgroup goes.
            tokio::spawn(async move {
                cg.kill();
                for _ in 0..50 {
                    if cg.remove() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tracing::warn!(?cg, "job cgroup could not be removed");
            });
        } else if let Some(pid) = e.job.pid {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(t) = e.admitted_at {
            metrics::histogram!(names::DURATION, "type" => e.job.task_type.clone())
                .record(t.elapsed().as_secs_f64());
        }
        let job = e.job;
        self.record(&job, Some(from));
        self.recent.push_back(job);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.finished_since_prune += 1;
        if self.finished_since_prune >= 100 {
            self.finished_since_prune = 0;
            self.writer.prune(self.cfg.history_max);
        }
    }

    // ---- admission --------------------------------------------------------------------

    fn admit(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        if self.paused_reason.is_some() {
            // While the bots need the host, nothing new starts (`reason_of` says so).
            return;
        }
        // Ledger-only admission needs no fresh /proc reading on the exit → spawn path (the
        // totals come from the last one, or the config).
        let reading = match self.last_reading {
            Some(r) if !self.policy.check_measured => r,
            _ => self.reading(),
        };
        let now = now_ms();
        let admitted = self
            .queue
            .admit(now, &self.policy, &reading, &mut self.ledger, &self.order);
        let deferred = self.queue.len();
        if deferred > 0 {
            metrics::counter!(names::DECISIONS, "decision" => "deferred")
                .increment(deferred as u64);
        }
        if !admitted.is_empty() {
            metrics::counter!(names::DECISIONS, "decision" => "admitted")
                .increment(admitted.len() as u64);
        }
        for (q, d) in admitted {
            self.dispatch(q, d.reason);
        }
        self.prepare_next();
    }

    /// Make the cgroups and spare processes of the next jobs in order now, after this pass's
    /// spawns, so the spawn that follows an exit finds them ready. At most `PREPARED` exist;
    /// one whose job is no longer among the next is discarded when room is needed.
    fn prepare_next(&mut self) {
        if self.cgroups.mode == cgroup::Mode::None && !exec::spares_wanted() {
            return;
        }
        let next = self.queue.ordered_first(PREPARED, now_ms(), &self.order);
        for id in &next {
            if self.prepared.contains_key(id) {
                continue;
            }
            if self.prepared.len() >= PREPARED {
                let stale = self.prepared.keys().copied().find(|p| !next.contains(p));
                match stale.and_then(|p| self.prepared.remove(&p)) {
                    Some(a) => a.discard(),
                    None => break,
                }
            }
            match self.ahead(*id) {
                Some(a) => {
                    self.prepared.insert(*id, a);
                }
                None => return,
            }
        }
    }

    fn ahead(&self, id: u64) -> Option<Ahead> {
        let e = self.jobs.get(&id)?;
        let cg = if self.cgroups.mode == cgroup::Mode::None {
            JobCgroup::default()
        } else {
            match self.cgroups.create(id, e.job.memory_limit_bytes) {
                Ok(cg) => cg,
                Err(err) => {
                    tracing::debug!(job = id, error = %err, "job cgroup not made ahead");
                    return None;
                }
            }
        };
        let dir = PathBuf::from(&e.job.output_dir);
        let spec = exec_spec(&self.url, self.cfg.max_output_bytes, e, &dir, &cg);
        // A job whose spare cannot be made gets its error from the spawn when it starts.
        let spare = exec::spare(&spec).unwrap_or(None);
        Some(Ahead { cg, spare })
    }

    /// A job as shown: a waiting one carries why it waits, worked out now (held for the
    /// bots, behind a blocking job, or the admission check's text against the ledger and the
    /// latest reading), not stored per pass.
    fn shown(&self, mut job: Job) -> Job {
        if job.state == JobState::Queued {
            job.reason = match &self.paused_reason {
                Some(why) => Some(format!("Held: {why}")),
                None => self
                    .queue
                    .explain(
                        job.id,
                        now_ms(),
                        &self.policy,
                        &self.last_reading.unwrap_or_else(|| self.host.read()),
                        &self.ledger,
                        &self.order,
                    )
                    .or(job.reason),
            };
        }
        job
    }

    fn dispatch(&mut self, q: Queued, reason: String) {
        let id = q.id;
        let Some(e) = self.jobs.get_mut(&id) else {
            self.ledger.release(self.policy.booking(q.req));
            return;
        };
        e.booking = self.policy.booking(q.req);
        e.job.reason = Some(reason);
        let waited = (now_ms() - e.job.queued_at_ms).max(0) as f64 / 1000.0;
        metrics::histogram!(names::WAIT, "type" => e.job.task_type.clone()).record(waited);
        let dir = PathBuf::from(&e.job.output_dir);
        let (made, spare) = match self.prepared.remove(&id) {
            Some(a) => (Ok(a.cg), a.spare),
            None => (self.cgroups.create(id, e.job.memory_limit_bytes), None),
        };
        let cg = match made {
            Ok(cg) => cg,
            Err(err) => {
                tracing::warn!(job = id, error = %err, "job cgroup not created; process group only");
                JobCgroup::default()
            }
        };
        let spec = exec_spec(&self.url, self.cfg.max_output_bytes, e, &dir, &cg);
        let spawned = match spare {
            Some(sp) => Ok(exec::start(sp, &spec, self.notes_tx.clone())),
            None => exec::spawn(spec, self.notes_tx.clone()),
        };
        match spawned {
            Ok(r) => {
                self.active.insert(id);
                e.job.pid = Some(r.pid);
                e.job.start_time = exec::start_time(r.pid as i32);
                e.job.cgroup = cg;
                e.job.state = JobState::Running;
                e.job.started_at = Some(now_str());
                e.written = Some(r.written);
                e.admitted_at = Some(Instant::now());
                if e.job.timeout_s > 0.0 {
                    e.timeout_at = Some(Instant::now() + Duration::from_secs_f64(e.job.timeout_s));
                }
                let job = e.job.clone();
                self.record(&job, Some(JobState::Queued));
                // A pause in force applies to a job that just started, too.
                self.apply_pause();
            }
            Err(err) => {
                // Running, then failed with the OS error: the ledger is released at once.
                e.job.state = JobState::Running;
                e.job.started_at = Some(now_str());
                cg.remove();
                let job = e.job.clone();
                self.log_transition(&job, Some(JobState::Queued));
                self.finish(id, JobState::Failed, format!("could not start: {err}"));
            }
        }
    }

    // ---- commands ---------------------------------------------------------------------

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Submit(p, reply) => {
                let r = self.submit(p);
                let _ = reply.send(r);
            }
            Cmd::Cancel(id, caller, reply) => {
                let _ = reply.send(self.cancel(id, &caller));
            }
            Cmd::Progress {
                id,
                token,
                caller,
                description,
                percent,
                reply,
            } => {
                let r = match self.jobs.get(&id) {
                    None => Err(if self.recent.iter().any(|j| j.id == id) {
                        JobError::Finished(id)
                    } else {
                        JobError::NotFound(id)
                    }),
                    Some(e) => {
                        let by_token = token.as_deref().is_some_and(|t| {
                            crate::auth::constant_time_eq(t.as_bytes(), e.token.as_bytes())
                        });
                        let by_caller = caller.as_ref().is_some_and(|c| c.sees(&e.job.user_id));
                        if by_token || by_caller {
                            self.set_progress(id, description, percent);
                            Ok(self.jobs.get(&id).map(|e| e.job.clone()))
                                .and_then(|j| j.ok_or(JobError::NotFound(id)))
                        } else {
                            Err(JobError::Forbidden(format!(
                                "job {id}: a progress update needs the job's own token (VIGIL_JOB_TOKEN, header X-Vigil-Job-Token) or its owner"
                            )))
                        }
                    }
                };
                let _ = reply.send(r);
            }
            Cmd::Get(id, reply) => {
                let j = self
                    .jobs
                    .get(&id)
                    .map(|e| self.shown(e.job.clone()))
                    .or_else(|| self.recent.iter().rev().find(|j| j.id == id).cloned());
                let _ = reply.send(j);
            }
            Cmd::Active(reply) => {
                let mut v: Vec<Job> = self
                    .jobs
                    .values()
                    .map(|e| self.shown(e.job.clone()))
                    .collect();
                v.extend(self.recent.iter().rev().take(200).cloned());
                let _ = reply.send(v);
            }
            Cmd::Queue(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Cmd::Resources(reply) => {
                let reading = self.reading();
                let _ = reply.send(ResourcesView {
                    reading,
                    policy: self.policy,
                    ledger: self.ledger,
                    cgroup_mode: self.cgroups.mode.as_str(),
                    memory_enforcement: self.cgroups.mode.memory_enforcement(),
                    cgroup_note: self.cgroups.note.clone(),
                    paused_reason: self.paused_reason.clone(),
                });
            }
            Cmd::Follow(id, reply) => {
                let r = match self.jobs.get(&id) {
                    Some(e) => Some((PathBuf::from(&e.job.output_dir), e.written.clone())),
                    None => Some((self.data_dir.join("jobs").join(id.to_string()), None)),
                };
                let _ = reply.send(r);
            }
            Cmd::Shutdown(_) => {}
        }
    }

    fn snapshot(&self) -> QueueSnapshot {
        let now = now_ms();
        let queued = self
            .queue
            .ordered(now, &self.order)
            .iter()
            .filter_map(|q| self.jobs.get(&q.id).map(|e| self.shown(e.job.clone())))
            .collect();
        // `active` is ordered by id.
        let running: Vec<Job> = self.active_jobs().map(|e| e.job.clone()).collect();
        QueueSnapshot { queued, running }
    }

    fn submit(&mut self, p: submit::Prepared) -> Submitted {
        if self.queue.len() >= self.cfg.max_queued {
            metrics::counter!(names::DECISIONS, "decision" => "queue_full").increment(1);
            return Err(JobError::QueueFull(self.cfg.max_queued));
        }
        let reading = self.last_reading.unwrap_or_else(|| self.reading());
        let req = Resources {
            cpu_cores: p.cpu_cores,
            ram_gb: p.ram_gb,
        };
        if let Err((field, reason)) =
            vigil_core::jobs::admission::fits_host(&self.policy, &reading, req)
        {
            metrics::counter!(names::DECISIONS, "decision" => "rejected").increment(1);
            return Err(JobError::ExceedsHost {
                field: field.to_string(),
                reason,
            });
        }
        self.next_id += 1;
        let id = self.next_id;
        let now = now_ms();
        let job = Job {
            id,
            task_type: p.task_type,
            state: JobState::Queued,
            priority: p.priority,
            user_id: p.user_id,
            argv: p.argv,
            params: p.params,
            cpu_cores: p.cpu_cores,
            ram_gb: p.ram_gb,
            description: p.description,
            percent: None,
            queued_at: now_str(),
            queued_at_ms: now,
            started_at: None,
            ended_at: None,
            pid: None,
            start_time: None,
            cgroup: JobCgroup::default(),
            exit_code: None,
            signal: None,
            message: None,
            canceled_by: None,
            reason: None,
            paused_reason: None,
            timeout_s: p.timeout_s,
            cancel_grace_s: p.cancel_grace_s,
            pausable: p.pausable,
            memory_limit_bytes: (p.ram_gb * self.cfg.memory_headroom * 1024.0 * 1024.0 * 1024.0)
                .max(16.0 * 1024.0 * 1024.0) as u64,
            peak_memory_bytes: None,
            cpu_seconds: None,
            output_dir: self
                .data_dir
                .join("jobs")
                .join(id.to_string())
                .display()
                .to_string(),
        };
        // The queued row goes to the writer first; the handle waits for its commit.
        let committed = self.writer.write_acked(job.row());
        self.queue.push(Queued {
            id,
            priority: job.priority,
            queued_at_ms: now,
            req,
        });
        self.jobs.insert(id, Entry::queued(id, job.clone()));
        self.log_transition(&job, None);
        self.admit();
        let now = self
            .jobs
            .get(&id)
            .map(|e| self.shown(e.job.clone()))
            .or_else(|| self.recent.iter().rev().find(|j| j.id == id).cloned())
            .unwrap_or(job);
        Ok((now, committed))
    }

    fn cancel(&mut self, id: u64, caller: &Caller) -> Result<Job, JobError> {
        let Some(e) = self.jobs.get_mut(&id) else {
            return match self.recent.iter().rev().find(|j| j.id == id) {
                Some(j) if !caller.sees(&j.user_id) => Err(JobError::NotYours(id)),
                Some(_) => Err(JobError::Finished(id)),
                None => Err(JobError::NotFound(id)),
            };
        };
        if !caller.sees(&e.job.user_id) {
            return Err(JobError::NotYours(id));
        }
        match e.job.state {
            JobState::Queued => {
                e.job.canceled_by = Some(caller.name.clone());
                self.queue.remove(id);
                self.finish(
                    id,
                    JobState::Canceled,
                    format!("canceled by {} while queued", caller.name),
                );
                self.admit();
            }
            _ => {
                e.job.canceled_by = Some(caller.name.clone());
                e.ending.canceled_by = Some(caller.name.clone());
                let grace = e.job.cancel_grace_s;
                Self::terminate(e, grace);
                let job = e.job.clone();
                self.writer.write(job.row());
            }
        }
        self.jobs
            .get(&id)
            .map(|e| e.job.clone())
            .or_else(|| self.recent.iter().rev().find(|j| j.id == id).cloned())
            .ok_or(JobError::NotFound(id))
    }

    /// SIGCONT (thaw), SIGTERM to the whole group and cgroup, SIGKILL after the grace.
    fn terminate(e: &mut Entry, grace_s: f64) {
        use nix::sys::signal::Signal;
        if e.kill_at.is_some() {
            return;
        }
        Self::thaw(e);
        if let Some(pid) = e.job.pid {
            let pg = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(pg, Signal::SIGCONT);
            let _ = nix::sys::signal::killpg(pg, Signal::SIGTERM);
        }
        e.job.cgroup.signal(Signal::SIGCONT);
        e.job.cgroup.signal(Signal::SIGTERM);
        e.kill_at = Some(Instant::now() + Duration::from_secs_f64(grace_s.max(0.0)));
    }

    fn kill_now(e: &Entry) {
        e.job.cgroup.kill();
        if let Some(pid) = e.job.pid {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    fn set_progress(&mut self, id: u64, description: Option<String>, percent: Option<f64>) {
        let max = self.cfg.max_description;
        let Some(e) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(d) = description {
            e.job.description = d.chars().take(max).collect();
        }
        if percent.is_some() {
            e.job.percent = percent;
        }
        let job = e.job.clone();
        self.writer.write(job.row());
        let mut data = json!({
            "task_id": job.id.to_string(),
            "task_type": job.task_type,
            "description": job.description,
            "user_id": job.user_id,
        });
        if let (Some(p), Some(o)) = (job.percent, data.as_object_mut()) {
            o.insert("percent".into(), json!(p));
        }
        let _ = self.live.send(Arc::new(TaskEvent {
            kind: "task_description_update",
            user_id: job.user_id.clone(),
            data,
            timestamp: now_str(),
        }));
    }

    // ---- notes from processes -----------------------------------------------------------

    fn note(&mut self, n: Note) {
        match n {
            Note::Progress {
                id,
                description,
                percent,
            } => self.set_progress(id, description, percent),
            Note::Exited {
                id,
                code,
                signal,
                error,
            } => {
                let Some(e) = self.jobs.get_mut(&id) else {
                    return;
                };
                if let Some(err) = error {
                    // It never ran job code: a start failure, as when the spawn itself fails.
                    self.finish(id, JobState::Failed, format!("could not start: {err}"));
                    self.admit();
                    return;
                }
                e.job.exit_code = code;
                e.job.signal = signal;
                let mut ending = e.ending.clone();
                ending.code = code;
                ending.signal = signal;
                if e.job.cgroup.oom_kills() > 0 {
                    ending.oom = true;
                }
                let out = classify(&ending);
                let msg = if out.state == JobState::OomKilled {
                    format!(
                        "{} (limit {} MiB = ram_gb {} × headroom {})",
                        out.message,
                        e.job.memory_limit_bytes / (1024 * 1024),
                        e.job.ram_gb,
                        self.cfg.memory_headroom
                    )
                } else {
                    out.message
                };
                self.finish(id, out.state, msg);
                self.admit();
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        for id in &self.active {
            let Some(e) = self.jobs.get_mut(id) else {
                continue;
            };
            if e.kill_at.is_some_and(|t| t <= now) {
                e.kill_at = Some(now + Duration::from_secs(3600));
                Self::kill_now(e);
            }
            if e.timeout_at.is_some_and(|t| t <= now) {
                e.timeout_at = None;
                e.ending.timed_out = true;
                let grace = e.job.cancel_grace_s;
                Self::terminate(e, grace);
            }
        }
    }

    // ---- the bots come first ------------------------------------------------------------

    fn event(&mut self, ev: &crate::events::Event) {
        if ev.kind != "check" {
            return;
        }
        let name = ev.str_field("name").unwrap_or("");
        let watched = match &self.cfg.pause_on_checks {
            Some(list) => list.iter().any(|c| c == name),
            None => ev.str_field("kind") == Some("cycles"),
        };
        if !watched {
            return;
        }
        self.pauser.on_check(
            name,
            ev.str_field("status").unwrap_or("unknown"),
            ev.str_field("message").unwrap_or(""),
        );
        self.apply_pause();
        self.admit();
    }

    fn thaw(e: &mut Entry) {
        if !e.frozen {
            return;
        }
        if !e.job.cgroup.freeze(false)
            && let Some(pid) = e.job.pid
        {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
        e.frozen = false;
    }

    fn apply_pause(&mut self) {
        let why = self.pauser.reason(now_ms());
        let changed = why != self.paused_reason;
        self.paused_reason = why.clone();
        let mut transitions = Vec::new();
        if why.is_none()
            && !changed
            && !self
                .active_jobs()
                .any(|e| e.frozen || e.job.state == JobState::Paused)
        {
            return; // nothing to pause, nothing paused
        }
        for id in &self.active {
            let Some(e) = self.jobs.get_mut(id) else {
                continue;
            };
            if !e.job.pausable || e.kill_at.is_some() {
                continue;
            }
            match (&why, e.job.state) {
                (Some(r), JobState::Running) => {
                    if !e.job.cgroup.freeze(true)
                        && let Some(pid) = e.job.pid
                    {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGSTOP,
                        );
                    }
                    e.frozen = true;
                    e.job.state = JobState::Paused;
                    e.job.paused_reason = Some(r.clone());
                    transitions.push((e.job.clone(), JobState::Running));
                }
                (Some(r), JobState::Paused) if changed => {
                    e.job.paused_reason = Some(r.clone());
                }
                (None, JobState::Paused) => {
                    Self::thaw(e);
                    e.job.state = JobState::Running;
                    e.job.paused_reason = None;
                    transitions.push((e.job.clone(), JobState::Paused));
                }
                _ => {}
            }
        }
        transitions.sort_by_key(|(j, _)| j.id);
        for (j, from) in transitions {
            self.record(&j, Some(from));
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
