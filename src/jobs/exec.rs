//! Running one job: spawn in its own process group (and cgroups), `oom_score_adj = 1000`,
//! nice 10, parent-death SIGKILL; pump stdout/stderr into `data_dir/jobs/<id>/` with a size
//! limit, consuming `VIGIL_PROGRESS {…}` lines; report the exit to the actor.

#![allow(unsafe_code)] // pre_exec (the fallback): async-signal-safe calls only, justified below.

use crate::queues::{Queue, send_waiting};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use super::cgroup::JobCgroup;
use super::launch;

/// What the pumps and the waiter tell the actor.
/// Notes queued to the jobs actor at most; a job's output reader (and exit reporter) waits
/// while it is full.
pub const NOTES_QUEUE: usize = 1024;

#[derive(Debug)]
pub enum Note {
    Progress {
        id: u64,
        description: Option<String>,
        percent: Option<f64>,
    },
    Exited {
        id: u64,
        code: Option<i32>,
        signal: Option<i32>,
        /// The child could not exec (or failed a step before it): the OS error.
        error: Option<String>,
    },
}

pub struct Spec<'a> {
    pub id: u64,
    pub argv: &'a [String],
    pub env: Vec<(String, String)>,
    pub dir: &'a Path,
    pub cgroup: &'a JobCgroup,
    pub max_output: u64,
}

pub struct Running {
    pub pid: u32,
    /// Bytes written to stdout.log and stderr.log so far (followers wait on it).
    pub written: watch::Receiver<u64>,
}

/// The process start time (`/proc/PID/stat` field 22, clock ticks since boot): with the pid
/// it identifies a process across a restart of vigil.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The variables vigil's own service manager set for vigil, not for its children.
const NOT_INHERITED: [&str; 6] = [
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "VIGIL_TOKEN",
];

/// Set once `clone3` turned out to be unavailable: std's `Command` from then on.
static NO_CLONE3: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Spawn; returns the pid or the OS error (the job then ends `failed` with it). With
/// `clone3` (`launch.rs`) this returns as soon as the child exists, inside its v2 cgroup; an
/// exec failure then arrives with the exit note. Without it, std's `Command`.
pub fn spawn(spec: Spec<'_>, notes: mpsc::Sender<Note>) -> Result<Running, String> {
    let exe = resolve(&spec)?;
    if clone3_usable() {
        match launch::launch(&plan(&spec, &exe, false)) {
            launch::Launch::Started(c) => {
                let logs = open_logs(spec.dir);
                return Ok(watch_launched(c, exe, logs, &spec, notes));
            }
            launch::Launch::Failed(e) => return Err(e),
            launch::Launch::Unsupported(e) => unsupported(&e),
        }
    }
    spawn_std(&spec, &exe, notes)
}

/// A job's process made ahead, waiting before exec (`launch.rs`): its cgroup joins, and the
/// fork itself, are off the exit → spawn path. [`start`] lets it exec; [`discard`] ends it.
pub struct Spare {
    child: launch::Child,
    exe: PathBuf,
    logs: Logs,
}

/// Make a spare for a job that is likely next; `None` where `clone3` is not used.
pub fn spare(spec: &Spec<'_>) -> Result<Option<Spare>, String> {
    if !spares_wanted() {
        return Ok(None);
    }
    let exe = resolve(spec)?;
    match launch::launch(&plan(spec, &exe, true)) {
        launch::Launch::Started(child) => Ok(Some(Spare {
            child,
            exe,
            logs: open_logs(spec.dir),
        })),
        launch::Launch::Failed(e) => Err(e),
        launch::Launch::Unsupported(e) => {
            unsupported(&e);
            Ok(None)
        }
    }
}

/// Start a spare: it execs now (a step it failed arrives with its exit note, as an exec
/// error does).
pub fn start(mut spare: Spare, spec: &Spec<'_>, notes: mpsc::Sender<Note>) -> Running {
    if let Some(g) = spare.child.gate.take() {
        launch::release(g);
    }
    watch_launched(spare.child, spare.exe, spare.logs, spec, notes)
}

/// End a spare that is not needed (its job was canceled, or is no longer next): the gate
/// closes, it exits without exec; then it is reaped and `then` runs (remove its cgroup).
pub fn discard(mut spare: Spare, then: impl FnOnce() + Send + 'static) {
    drop(spare.child.gate.take());
    tokio::spawn(async move {
        let _ = launch::wait(spare.child.pidfd).await;
        then();
    });
}

fn resolve(spec: &Spec<'_>) -> Result<PathBuf, String> {
    let Some(argv0) = spec.argv.first() else {
        return Err("empty command".into());
    };
    let env: std::collections::BTreeMap<String, String> = spec.env.iter().cloned().collect();
    let exe = crate::supervisor::spawn::resolve_command(argv0, &env)?;
    std::fs::create_dir_all(spec.dir)
        .map_err(|e| format!("creating {}: {e}", spec.dir.display()))?;
    Ok(exe)
}

pub fn clone3_usable() -> bool {
    !NO_CLONE3.load(std::sync::atomic::Ordering::Relaxed) && !fork_asked()
}

fn unsupported(e: &std::io::Error) {
    if launch::never_here(e) {
        NO_CLONE3.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(error = %e, "clone3 with CLONE_INTO_CGROUP unavailable; jobs are spawned with fork and join their cgroups before exec");
    } else {
        tracing::warn!(error = %e, "clone3 failed; this job is spawned with fork");
    }
}

fn plan<'a>(spec: &'a Spec<'_>, exe: &'a Path, gated: bool) -> launch::Plan<'a> {
    let mut vars: std::collections::BTreeMap<std::ffi::OsString, std::ffi::OsString> =
        std::env::vars_os()
            .filter(|(k, _)| !NOT_INHERITED.iter().any(|n| k == n))
            .collect();
    vars.extend(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
    launch::Plan {
        exe,
        argv: spec.argv,
        env: vars.into_iter().collect(),
        dir: spec.dir,
        cgroup_v2: spec.cgroup.v2.as_deref(),
        joins: spec.cgroup.v1_join_paths(),
        gated,
    }
}

/// `VIGIL_JOBS_SPAWN` in vigil's environment: `fork` (always std's `Command`), `clone3`
/// (no spares), `spare`; unset: the default.
fn spawn_mode() -> &'static str {
    static MODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MODE.get_or_init(|| std::env::var("VIGIL_JOBS_SPAWN").unwrap_or_default())
}

fn fork_asked() -> bool {
    spawn_mode() == "fork"
}

/// Whether spares are made.
pub fn spares_wanted() -> bool {
    clone3_usable() && spawn_mode() == "spare"
}

/// The waiter of a `clone3` child: exec errors, the exit (on the pidfd), the output pumps.
fn watch_launched(
    c: launch::Child,
    exe: PathBuf,
    logs: Logs,
    spec: &Spec<'_>,
    notes: mpsc::Sender<Note>,
) -> Running {
    let (wtx, wrx) = watch::channel(0u64);
    let id = spec.id;
    let max = spec.max_output;
    let pid = c.pid;
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        use tokio::net::unix::pipe::Receiver;
        let wtx = std::sync::Arc::new(wtx);
        let a = Receiver::from_owned_fd(c.stdout).ok().map(|o| {
            tokio::spawn(pump(
                o,
                logs.out,
                max,
                Some((id, notes.clone())),
                wtx.clone(),
            ))
        });
        let b = Receiver::from_owned_fd(c.stderr)
            .ok()
            .map(|e| tokio::spawn(pump(e, logs.err, max, None, wtx.clone())));
        let mut report = Vec::new();
        if let Ok(mut r) = Receiver::from_owned_fd(c.errors) {
            let _ = r.read_to_end(&mut report).await;
        }
        let error = launch::describe(&report, &exe);
        let (code, signal) = launch::wait(c.pidfd).await;
        finish_pumps([a, b]).await;
        let note = Note::Exited {
            id,
            code,
            signal,
            error,
        };
        let _ = send_waiting(Queue::JobNotes, &notes, note).await;
    });
    Running { pid, written: wrx }
}

/// What the job wrote before it exited is stored before its exit is reported; a grandchild
/// holding the pipes open is not waited for long.
async fn finish_pumps(pumps: [Option<tokio::task::JoinHandle<()>>; 2]) {
    for h in pumps.into_iter().flatten() {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), h).await;
    }
}

/// std's `Command` with a `pre_exec` closure (fork; the parent waits until the child exec'd).
fn spawn_std(spec: &Spec<'_>, exe: &Path, notes: mpsc::Sender<Note>) -> Result<Running, String> {
    let Some(argv0) = spec.argv.first() else {
        return Err("empty command".into());
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg0(argv0).args(&spec.argv[1..]);
    for k in NOT_INHERITED {
        cmd.env_remove(k);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.current_dir(spec.dir);
    cmd.process_group(0);
    cmd.kill_on_drop(false);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let joins = spec.cgroup.join_paths();
    let parent = nix::unistd::getpid();
    // SAFETY: runs in the forked child before exec; only async-signal-safe system calls
    // (prctl, getppid, open/write/close on paths built before the fork, setpriority); no
    // allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("vigil exited"));
            }
            for p in &joins {
                let fd = nix::fcntl::open(
                    p.as_c_str(),
                    nix::fcntl::OFlag::O_WRONLY,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(std::io::Error::from)?;
                let r = nix::unistd::write(&fd, b"0");
                drop(fd);
                r.map_err(std::io::Error::from)?;
            }
            // The kernel picks a job before any bot; and jobs yield the CPU to the bots.
            if let Ok(fd) = nix::fcntl::open(
                c"/proc/self/oom_score_adj",
                nix::fcntl::OFlag::O_WRONLY,
                nix::sys::stat::Mode::empty(),
            ) {
                let _ = nix::unistd::write(&fd, b"1000");
            }
            nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 10);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("no permission to run command '{}': {e}", exe.display())
        }
        _ => format!("couldn't exec {}: {e}", exe.display()),
    })?;
    drop(cmd);
    let pid = child
        .id()
        .ok_or_else(|| "the job exited before its pid was read".to_string())?;
    let (wtx, wrx) = watch::channel(0u64);
    let out = child.stdout.take();
    let err = child.stderr.take();
    let id = spec.id;
    let max = spec.max_output;
    let logs = open_logs(spec.dir);
    tokio::spawn(async move {
        let wtx = std::sync::Arc::new(wtx);
        let a = out.map(|o| {
            tokio::spawn(pump(
                o,
                logs.out,
                max,
                Some((id, notes.clone())),
                wtx.clone(),
            ))
        });
        let b = err.map(|e| tokio::spawn(pump(e, logs.err, max, None, wtx.clone())));
        let status = child.wait().await;
        finish_pumps([a, b]).await;
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = match status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        let note = Note::Exited {
            id,
            code,
            signal,
            error: None,
        };
        let _ = send_waiting(Queue::JobNotes, &notes, note).await;
    });
    Ok(Running { pid, written: wrx })
}

const PROGRESS: &str = "VIGIL_PROGRESS ";

/// Parse a progress line's JSON: `{"description": "…", "percent": 42}`, both optional.
pub fn parse_progress(line: &str) -> Option<(Option<String>, Option<f64>)> {
    let rest = line.strip_prefix(PROGRESS)?;
    let v: serde_json::Value = serde_json::from_str(rest.trim()).ok()?;
    let o = v.as_object()?;
    let d = o
        .get("description")
        .and_then(|d| d.as_str())
        .map(str::to_string);
    let p = o
        .get("percent")
        .and_then(serde_json::Value::as_f64)
        .filter(|p| p.is_finite())
        .map(|p| p.clamp(0.0, 100.0));
    Some((d, p))
}

/// The job's `stdout.log` and `stderr.log`, opened (created, appended to) before it starts,
/// so that a pump never waits for the blocking pool to open its file — a short job's exit
/// would wait for that.
pub struct Logs {
    out: Option<std::fs::File>,
    err: Option<std::fs::File>,
}

pub fn open_logs(dir: &Path) -> Logs {
    let open = |name: &str| {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                tracing::warn!(path = %path.display(), error = %e, "cannot open job output");
            })
            .ok()
    };
    Logs {
        out: open("stdout.log"),
        err: open("stderr.log"),
    }
}

async fn pump<R: AsyncRead + Unpin>(
    r: R,
    file: Option<std::fs::File>,
    max: u64,
    progress: Option<(u64, mpsc::Sender<Note>)>,
    written: std::sync::Arc<watch::Sender<u64>>,
) {
    let mut file = file.map(tokio::fs::File::from_std);
    let mut size = 0u64;
    let mut full = false;
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Some((id, tx)) = &progress
            && line.starts_with(PROGRESS.as_bytes())
        {
            let text = String::from_utf8_lossy(&line);
            if let Some((description, percent)) = parse_progress(text.trim_end()) {
                let note = Note::Progress {
                    id: *id,
                    description,
                    percent,
                };
                // Full: the job's stdout is not read until the actor catches up.
                let _ = send_waiting(Queue::JobNotes, tx, note).await;
                continue;
            }
        }
        let Some(f) = file.as_mut() else { continue };
        if full {
            continue;
        }
        if size + line.len() as u64 > max {
            full = true;
            let _ = f
                .write_all(b"\n[vigil: output limit reached; further output dropped]\n")
                .await;
        } else {
            size += line.len() as u64;
            let _ = f.write_all(&line).await;
        }
        let _ = f.flush().await;
        written.send_modify(|w| *w += line.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress(r#"VIGIL_PROGRESS {"description": "day 15 of 30", "percent": 50}"#),
            Some((Some("day 15 of 30".into()), Some(50.0)))
        );
        assert_eq!(
            parse_progress(r#"VIGIL_PROGRESS {"percent": 420}"#),
            Some((None, Some(100.0)))
        );
        assert_eq!(parse_progress("VIGIL_PROGRESS nope"), None);
        assert_eq!(parse_progress("hello"), None);
    }

    #[test]
    fn start_time_of_self() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
    }
}
