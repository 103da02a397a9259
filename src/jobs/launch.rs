//! Starting a job's process without the actor waiting for it: `clone3` with
//! `CLONE_INTO_CGROUP` (the child is created inside the job's v2 cgroup: no migration, no
//! RCU grace period of `cgroup.procs` writes) and `CLONE_PIDFD` (its exit is awaited on the
//! pidfd). std's `Command` with a `pre_exec` closure forks and then blocks the parent until
//! the child has run that closure and exec'd — with a cgroup join inside, a grace period of
//! 10–40 ms on a loaded host, during which the (current-thread) runtime did nothing else.
//!
//! Here the parent returns as soon as the child exists. The child, before exec and still
//! running no job code: parent-death SIGKILL (and a check that vigil is still its parent),
//! its own process group, default SIGPIPE and an empty signal mask (as std does), the v1
//! memory cgroup join on hybrid hosts, `oom_score_adj = 1000`, nice 10, stdio, cwd, then
//! `execve`. A failure of any step is written (step, errno) to a close-on-exec pipe that the
//! waiter reads: EOF means exec'd.
//!
//! When `clone3` is unavailable (an old kernel, a seccomp filter) [`launch`] says
//! [`Launch::Unsupported`] and the caller uses std's `Command` (`exec.rs`).

#![allow(unsafe_code)] // clone3, and the child's async-signal-safe steps before exec.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

/// The kernel's `struct clone_args` (CLONE_ARGS_SIZE_VER2, Linux 5.7+).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What a launch needs, all of it built before the clone (the child allocates nothing).
pub struct Plan<'a> {
    pub exe: &'a Path,
    pub argv: &'a [String],
    /// The whole environment of the job.
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    pub dir: &'a Path,
    /// The job's v2 cgroup directory: the child is created in it.
    pub cgroup_v2: Option<&'a Path>,
    /// `cgroup.procs` files the child writes `0` to (the v1 memory cgroup on hybrid hosts).
    pub joins: Vec<CString>,
    /// A spare: the child does every step, then execs vigil itself as [`SPARE_ARG0`] (a
    /// small process that shares no memory with the daemon and holds none of its
    /// descriptors), which waits on a gate until [`release`] — or exits when the gate closes
    /// unreleased — and then execs the job's command.
    pub gated: bool,
}

pub struct Child {
    pub pid: u32,
    pub pidfd: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Read end of the exec-error pipe: EOF once the child exec'd, else (step, errno).
    pub errors: OwnedFd,
    /// The write end of a spare's gate.
    pub gate: Option<OwnedFd>,
}

/// Let a spare exec (one byte through its gate). False when it is already gone (it failed a
/// step: its report says which).
pub fn release(gate: OwnedFd) -> bool {
    // SAFETY: a valid fd and a one-byte buffer.
    let n = unsafe { libc::write(gate.as_raw_fd(), b"1".as_ptr().cast(), 1) };
    n == 1
}

pub enum Launch {
    Started(Child),
    /// `clone3` failed: use std's `Command` (for good when [`never_here`] says so).
    Unsupported(std::io::Error),
    Failed(String),
}

/// Whether a `clone3` error means it (or `CLONE_INTO_CGROUP`) is unavailable on this host
/// (no such call, a seccomp filter, an older `clone_args`, an unknown flag), rather than a
/// problem of this one job (its cgroup, resources).
pub fn never_here(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
    )
}

fn cstr(s: &OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("{s:?} contains a NUL byte"))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds are fresh and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// A descriptor numbered `min` or more.
fn at_least(fd: OwnedFd, min: RawFd) -> Result<OwnedFd, String> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(format!("fcntl: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// A descriptor numbered 3 or more (so the child's dup2 onto 0–2 never clobbers another).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, String> {
    at_least(fd, 3)
}

fn open(path: &CString, flags: libc::c_int) -> Result<OwnedFd, String> {
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "opening {}: {}",
            path.to_string_lossy(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fresh fd.
    above_stdio(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The steps of the child, named in the error it reports.
pub const STEPS: [&str; 9] = [
    "setting the parent-death signal",
    "vigil exited",
    "creating the process group",
    "joining the memory cgroup",
    "redirecting stdio",
    "changing to the job directory",
    "exec",
    "resetting signals",
    "starting the spare process",
];

/// The text of a (step, errno) report from the child.
pub fn describe(report: &[u8], exe: &Path) -> Option<String> {
    let step = u32::from_ne_bytes(report.get(0..4)?.try_into().ok()?) as usize;
    let errno = i32::from_ne_bytes(report.get(4..8)?.try_into().ok()?);
    let err = std::io::Error::from_raw_os_error(errno);
    Some(match STEPS.get(step).copied() {
        Some("exec") if err.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("no permission to run command '{}': {err}", exe.display())
        }
        Some("exec") => format!("couldn't exec {}: {err}", exe.display()),
        Some(s) => format!("{s}: {err}"),
        None => format!("step {step}: {err}"),
    })
}

/// Create the job's process (see the module doc). Returns at once; the child's own steps
/// and exec run concurrently with the caller.
pub fn launch(plan: &Plan<'_>) -> Launch {
    match prepare_and_clone(plan) {
        Ok(Ok(c)) => Launch::Started(c),
        Ok(Err(e)) => Launch::Unsupported(e),
        Err(e) => Launch::Failed(e),
    }
}

fn prepare_and_clone(plan: &Plan<'_>) -> Result<Result<Child, std::io::Error>, String> {
    let exe = cstr(plan.exe.as_os_str())?;
    let argv: Vec<CString> = plan
        .argv
        .iter()
        .map(|a| cstr(OsStr::new(a)))
        .collect::<Result<_, _>>()?;
    let envs: Vec<CString> = plan
        .env
        .iter()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).map_err(|_| format!("environment variable {k:?} contains a NUL byte"))
        })
        .collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = envs.iter().map(|a| a.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let dir = cstr(plan.dir.as_os_str())?;
    let null = open(&CString::from(c"/dev/null"), libc::O_RDWR)?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    // A spare's gate and report go to 3 and 4 of the trampoline: keep them off 0–4 here.
    let rep_w = if plan.gated {
        at_least(rep_w, 5)?
    } else {
        rep_w
    };
    let (gate_r, gate_w) = if plan.gated {
        let (r, w) = pipe()?;
        (Some(at_least(r, 5)?), Some(w))
    } else {
        (None, None)
    };
    // The trampoline's argv: SPARE_ARG0, the resolved program, then the job's argv.
    let spare_argv: Vec<CString> = if plan.gated {
        let mut v = vec![
            CString::new(SPARE_ARG0).map_err(|e| e.to_string())?,
            exe.clone(),
        ];
        v.extend(argv.iter().cloned());
        v
    } else {
        Vec::new()
    };
    let mut spare_p: Vec<*const libc::c_char> = spare_argv.iter().map(|a| a.as_ptr()).collect();
    spare_p.push(std::ptr::null());
    let cg = match plan.cgroup_v2 {
        Some(p) => Some(open(
            &cstr(p.as_os_str())?,
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?),
        None => None,
    };
    let joins: Vec<*const libc::c_char> = plan.joins.iter().map(|j| j.as_ptr()).collect();
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: an all-zero sigset is valid storage; sigemptyset initialises it.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is valid storage.
    unsafe { libc::sigemptyset(&mut empty) };
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = &cg {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    let child = ChildFds {
        null: null.as_raw_fd(),
        out: out_w.as_raw_fd(),
        err: err_w.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        gate: gate_r.as_ref().map_or(-1, |g| g.as_raw_fd()),
    };
    // SAFETY: clone3 without CLONE_VM is fork: the child gets a copy of this thread only and
    // runs `child_steps`, which uses only async-signal-safe system calls on data built above
    // (no allocation, no locks) and never returns.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // SAFETY: see above; in the child.
        unsafe {
            child_steps(
                parent,
                &child,
                &joins,
                &empty,
                dir.as_ptr(),
                exe.as_ptr(),
                if plan.gated {
                    spare_p.as_ptr()
                } else {
                    argv_p.as_ptr()
                },
                env_p.as_ptr(),
            )
        }
    }
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Ok(Err(e));
    }
    let pid = r as i32;
    // The job's own process group from the parent's side too (the child does it as well):
    // a killpg right after this returns reaches it whichever runs first.
    // SAFETY: plain syscall; an error (the child already exec'd) is harmless.
    unsafe { libc::setpgid(pid, pid) };
    drop((null, out_w, err_w, rep_w, cg, gate_r));
    // SAFETY: CLONE_PIDFD stored a fresh close-on-exec fd.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Ok(Child {
        pid: pid as u32,
        pidfd,
        stdout: out_r,
        stderr: err_r,
        errors: rep_r,
        gate: gate_w,
    }))
}

struct ChildFds {
    null: RawFd,
    out: RawFd,
    err: RawFd,
    report: RawFd,
    /// A spare's gate (read end), or -1.
    gate: RawFd,
}

/// In the child: close every descriptor from `lo` up.
unsafe fn close_from(lo: RawFd) {
    // SAFETY: close_range on descriptors this process owns; on failure (a kernel before
    // 5.9) each is closed in turn.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            lo as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if r != 0 {
        for fd in lo..65_536 {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
}

/// argv[0] of a spare: `vigil` exec'd as a trampoline (`main` hands it to [`spare_main`]).
pub const SPARE_ARG0: &str = "vigil-job-spare";

/// The spare trampoline (argv: [`SPARE_ARG0`], program, the job's argv; the job's
/// environment; its cgroups, process group, priority, stdio and directory already set): wait
/// on the gate (fd 3), then exec the job; a failure is reported (step, errno) on fd 4.
pub fn spare_main() -> ! {
    // SAFETY: plain syscalls on the two descriptors the launcher left at 3 and 4.
    unsafe {
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(4, libc::F_SETFD, libc::FD_CLOEXEC);
        let mut b = [0u8; 1];
        loop {
            match libc::read(3, b.as_mut_ptr().cast(), 1) {
                1 => break,
                0 => libc::_exit(0), // not needed after all
                _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
                _ => fail(4, 8),
            }
        }
        libc::close(3);
    }
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os().skip(1);
    let (Some(exe), Some(arg0)) = (args.next(), args.next()) else {
        // SAFETY: errno set for the report.
        unsafe {
            *libc::__errno_location() = libc::EINVAL;
            fail(4, 6)
        }
    };
    // std's exec: default SIGPIPE (ignored by Rust's runtime here), the environment as is.
    let err = std::process::Command::new(exe).arg0(arg0).args(args).exec();
    // SAFETY: errno from the failed exec, for the report.
    unsafe {
        *libc::__errno_location() = err.raw_os_error().unwrap_or(libc::EIO);
        fail(4, 6)
    }
}

/// In the child: report (step, errno) and exit 127.
unsafe fn fail(report: RawFd, step: u32) -> ! {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write/_exit are async-signal-safe.
    unsafe {
        libc::write(report, buf.as_ptr().cast(), buf.len());
        libc::_exit(127)
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn child_steps(
    parent: libc::pid_t,
    fds: &ChildFds,
    joins: &[*const libc::c_char],
    empty: &libc::sigset_t,
    dir: *const libc::c_char,
    exe: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> ! {
    // SAFETY: every call below is an async-signal-safe system call on memory the parent
    // built before the clone.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(fds.report, 0);
        }
        if libc::getppid() != parent {
            fail(fds.report, 1);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(fds.report, 2);
        }
        // std's children start with default SIGPIPE and nothing blocked; so do jobs.
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR
            || libc::sigprocmask(libc::SIG_SETMASK, empty, std::ptr::null_mut()) != 0
        {
            fail(fds.report, 7);
        }
        for p in joins {
            let fd = libc::open(*p, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail(fds.report, 3);
            }
            libc::close(fd);
        }
        // The kernel picks a job before any bot; and jobs yield the CPU to the bots.
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            libc::write(fd, b"1000".as_ptr().cast(), 4);
            libc::close(fd);
        }
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        if libc::dup2(fds.null, 0) < 0 || libc::dup2(fds.out, 1) < 0 || libc::dup2(fds.err, 2) < 0 {
            fail(fds.report, 4);
        }
        if libc::chdir(dir) != 0 {
            fail(fds.report, 5);
        }
        if fds.gate >= 0 {
            // The trampoline gets its gate on 3 and its report on 4 (dup2 clears
            // close-on-exec), and nothing else of vigil's.
            if libc::dup2(fds.gate, 3) < 0 || libc::dup2(fds.report, 4) < 0 {
                fail(fds.report, 8);
            }
            close_from(5);
            libc::execve(c"/proc/self/exe".as_ptr(), argv, envp);
            fail(4, 8)
        }
        libc::execve(exe, argv, envp);
        fail(fds.report, 6)
    }
}

/// Wait for the child's exit on its pidfd (no SIGCHLD, no polling): (code, signal).
pub async fn wait(pidfd: OwnedFd) -> (Option<i32>, Option<i32>) {
    // SAFETY: an OwnedFd stays open and is the same descriptor for the AsyncFd's lifetime.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    };
    let Ok(fd) = registered else {
        return (None, None);
    };
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return (None, None);
        };
        // SAFETY: an all-zero siginfo_t is valid storage for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pidfd and storage; WNOHANG: readiness may be spurious.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.get_ref().as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if r != 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return (None, None);
        }
        // SAFETY: waitid filled `info` (si_pid 0: not exited yet).
        if unsafe { info.si_pid() } == 0 {
            guard.clear_ready();
            continue;
        }
        // SAFETY: as above.
        let status = unsafe { info.si_status() };
        return match info.si_code {
            libc::CLD_EXITED => (Some(status), None),
            libc::CLD_KILLED | libc::CLD_DUMPED => (None, Some(status)),
            _ => (None, None),
        };
    }
}
