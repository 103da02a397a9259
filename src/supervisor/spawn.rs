//! Spawning one child the way supervisord does (SUPERVISORD.md §1.5): own process group,
//! command looked up in PATH (the program's `environment` PATH first), no shell, the
//! environment supervisord children get, `directory`, `user` when root — plus a
//! parent-death signal so children do not live on unsupervised if vigil is SIGKILLed.

#![allow(unsafe_code)] // pre_exec: async-signal-safe calls only, justified below.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, ChildStdin};

/// What to run.
pub struct SpawnSpec<'a> {
    pub argv: &'a [String],
    pub directory: Option<&'a Path>,
    pub environment: &'a BTreeMap<String, String>,
    pub user: Option<&'a str>,
    pub redirect_stderr: bool,
    pub process_name: &'a str,
    pub group_name: &'a str,
    /// Extra variables (SUPERVISOR_SERVER_URL, VIGIL_URL, …).
    pub extra_env: &'a [(String, String)],
}

pub struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdin: Option<ChildStdin>,
    pub stdout: tokio::net::unix::pipe::Receiver,
    pub stderr: Option<tokio::net::unix::pipe::Receiver>,
}

/// Find the executable as supervisord does; the error strings are supervisord's.
pub fn resolve_command(argv0: &str, env: &BTreeMap<String, String>) -> Result<PathBuf, String> {
    let candidate = if argv0.contains('/') {
        PathBuf::from(argv0)
    } else {
        let path = env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let found = path
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(argv0))
            .find(|p| p.exists());
        match found {
            Some(p) => p,
            None => return Err(format!("can't find command '{argv0}'")),
        }
    };
    let meta = match std::fs::metadata(&candidate) {
        Ok(m) => m,
        Err(_) => return Err(format!("can't find command '{}'", candidate.display())),
    };
    if meta.is_dir() {
        return Err(format!(
            "command at '{}' is a directory",
            candidate.display()
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "command at '{}' is not executable",
            candidate.display()
        ));
    }
    Ok(candidate)
}

fn receiver(fd: std::io::PipeReader) -> std::io::Result<tokio::net::unix::pipe::Receiver> {
    let fd: std::os::fd::OwnedFd = fd.into();
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
}

/// Spawn; must be called from a thread that lives as long as vigil (the parent-death
/// signal fires when the spawning *thread* exits). The daemon runs on a current-thread
/// runtime whose only worker is the main thread, so this holds.
pub fn spawn(spec: &SpawnSpec<'_>) -> Result<Spawned, String> {
    let Some(argv0) = spec.argv.first() else {
        return Err("empty command".into());
    };
    let exe = resolve_command(argv0, spec.environment)?;
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.arg0(argv0);
    cmd.args(&spec.argv[1..]);
    // The service manager talks to vigil, not to its children.
    for k in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("SUPERVISOR_ENABLED", "1")
        .env("SUPERVISOR_PROCESS_NAME", spec.process_name)
        .env("SUPERVISOR_GROUP_NAME", spec.group_name);
    for (k, v) in spec.extra_env {
        cmd.env(k, v);
    }
    cmd.envs(spec.environment);
    if let Some(dir) = spec.directory {
        cmd.current_dir(dir);
    }
    cmd.process_group(0);
    cmd.kill_on_drop(false);

    let (out_r, out_w) = std::io::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
    let (err_r, err_w) = if spec.redirect_stderr {
        let w2 = out_w
            .try_clone()
            .map_err(|e| format!("cannot create pipe: {e}"))?;
        (None, w2)
    } else {
        let (r, w) = std::io::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
        (Some(r), w)
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));

    let mut drop_to: Option<(nix::unistd::Uid, nix::unistd::Gid, std::ffi::CString)> = None;
    if let Some(user) = spec.user
        && nix::unistd::geteuid().is_root()
    {
        match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => {
                let name = std::ffi::CString::new(u.name.clone())
                    .map_err(|_| format!("bad user name '{user}'"))?;
                drop_to = Some((u.uid, u.gid, name));
            }
            _ => return Err(format!("couldn't setuid to {user}: no such user")),
        }
    }
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid, initgroups/setgid/setuid); it does
    // not allocate (the CString was built before fork) and does not touch locks.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            // vigil died between fork and prctl: do not run unsupervised.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("supervisor exited"));
            }
            if let Some((uid, gid, name)) = &drop_to {
                nix::unistd::initgroups(name, *gid).map_err(std::io::Error::from)?;
                nix::unistd::setgid(*gid).map_err(std::io::Error::from)?;
                nix::unistd::setuid(*uid).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("no permission to run command '{}'", exe.display())
        }
        std::io::ErrorKind::NotFound => match spec.directory {
            Some(d) if !d.is_dir() => format!("couldn't chdir to {}: ENOENT", d.display()),
            _ => format!("can't find command '{argv0}'"),
        },
        _ => format!("couldn't exec {}: {e}", exe.display()),
    })?;
    // The Command still holds the write ends; drop it so EOF arrives when the child exits.
    drop(cmd);
    let pid = child
        .id()
        .ok_or_else(|| "child exited before its pid was read".to_string())?;
    let stdin = child.stdin.take();
    let stdout = receiver(out_r).map_err(|e| format!("cannot watch stdout: {e}"))?;
    let stderr = match err_r {
        Some(r) => Some(receiver(r).map_err(|e| format!("cannot watch stderr: {e}"))?),
        None => None,
    };
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_reports_supervisord_errors() {
        let env = BTreeMap::new();
        assert!(resolve_command("sh", &env).is_ok());
        assert_eq!(
            resolve_command("no-such-cmd-xyz", &env).unwrap_err(),
            "can't find command 'no-such-cmd-xyz'"
        );
        assert_eq!(
            resolve_command("/tmp", &env).unwrap_err(),
            "command at '/tmp' is a directory"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("plain");
        std::fs::write(&f, "x").unwrap();
        assert!(
            resolve_command(f.to_str().unwrap(), &env)
                .unwrap_err()
                .contains("is not executable")
        );
    }
}
