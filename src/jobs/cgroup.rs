//! A cgroup per job where the host allows it (JOBS-AND-PAGE.md §3).
//!
//! Modes, detected at start from `/proc/self/mountinfo` and `/proc/self/cgroup`:
//! - `v2`: the unified hierarchy with the memory controller usable for a child cgroup:
//!   `memory.max`, `memory.events` (`oom_kill`), `cgroup.kill`, `cgroup.freeze`.
//! - `hybrid`: a v2 child for membership, `cgroup.kill` and `cgroup.freeze`, and a v1 memory
//!   child (under vigil's own memory cgroup) for `memory.limit_in_bytes` and
//!   `memory.oom_control`'s `oom_kill`.
//! - `none`: the job's process group only; memory is sampled from `/proc` and enforced by
//!   vigil (`memory_enforcement: sampled`).
//!
//! A job is created inside its v2 cgroup (`clone3` with `CLONE_INTO_CGROUP`, `launch.rs`)
//! and joins its v1 memory cgroup (hybrid) in the child before exec (it writes `0` to its
//! `cgroup.procs`), so even its first instruction runs inside; a `setsid` grandchild stays
//! in. Without `clone3`, the forked child joins both before exec. The cgroups of the next
//! jobs in order are made ahead (`Actor::prepare_next`), and an ended job's are killed and
//! removed after the next job is spawned.

use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    V2,
    Hybrid,
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::V2 => "v2",
            Mode::Hybrid => "hybrid",
            Mode::None => "none",
        }
    }
    /// How a job's memory limit is enforced.
    pub fn memory_enforcement(self) -> &'static str {
        match self {
            Mode::V2 | Mode::Hybrid => "cgroup",
            Mode::None => "sampled",
        }
    }
}

/// Where this daemon's job cgroups live.
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub mode: Mode,
    /// v2 parent of the job cgroups.
    v2: Option<PathBuf>,
    /// v1 memory parent (hybrid) — or None.
    v1_mem: Option<PathBuf>,
    /// Whether v2 job cgroups get `memory.max` (full v2).
    v2_memory: bool,
    /// Why the mode is what it is.
    pub note: String,
}

fn mounts() -> (Option<PathBuf>, Option<PathBuf>) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v2 = None;
    let mut v1_mem = None;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split_whitespace().collect();
        let Some(mount_point) = fields.get(4) else {
            continue;
        };
        let r: Vec<&str> = right.split_whitespace().collect();
        match r.first() {
            Some(&"cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(mount_point)),
            Some(&"cgroup")
                if r.get(2)
                    .is_some_and(|o| o.split(',').any(|x| x == "memory")) =>
            {
                v1_mem = Some(PathBuf::from(mount_point));
            }
            _ => {}
        }
    }
    (v2, v1_mem)
}

/// vigil's own cgroup paths: (v2 path, v1 memory path).
fn own() -> (Option<String>, Option<String>) {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut v2 = None;
    let mut mem = None;
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrl.is_empty() {
            v2 = Some(path.to_string());
        } else if ctrl.split(',').any(|c| c == "memory") {
            mem = Some(path.to_string());
        }
    }
    (v2, mem)
}

fn join(base: &Path, rel: &str) -> PathBuf {
    base.join(rel.trim_start_matches('/'))
}

/// Remove what daemons that were SIGKILLed left: empty `vigil-jobs-*/job-*` cgroups and
/// empty `vigil-jobs-*` parents, older than a minute (a live daemon's just-created leaf is
/// never touched; a cgroup with processes cannot be removed).
fn sweep(parent: &Path) {
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60))
    };
    let Ok(dirs) = std::fs::read_dir(parent) else {
        return;
    };
    for d in dirs.flatten() {
        let p = d.path();
        if !d.file_name().to_string_lossy().starts_with("vigil-jobs-") || !p.is_dir() {
            continue;
        }
        if let Ok(leaves) = std::fs::read_dir(&p) {
            for l in leaves.flatten() {
                let lp = l.path();
                if l.file_name().to_string_lossy().starts_with("job-")
                    && lp.is_dir()
                    && old(&lp)
                    && std::fs::read_to_string(lp.join("cgroup.procs"))
                        .is_ok_and(|t| t.trim().is_empty())
                {
                    let _ = std::fs::remove_dir(&lp);
                }
            }
        }
        if old(&p) {
            let _ = std::fs::remove_dir(&p);
        }
    }
}

impl Cgroups {
    /// Remove this daemon's (empty) parent cgroups, at shutdown.
    pub fn remove_parents(&self) {
        for p in [&self.v2, &self.v1_mem].into_iter().flatten() {
            let _ = std::fs::remove_dir(p);
        }
    }

    /// Detect the mode and create this daemon's parent cgroups (`vigil-jobs-<tag>`).
    pub fn detect(tag: &str) -> Cgroups {
        let name = format!("vigil-jobs-{tag}");
        let (v2m, v1m) = mounts();
        let (v2own, memown) = own();
        let mut note = Vec::new();
        let v2 = match (v2m, v2own) {
            (Some(m), Some(o)) => {
                sweep(&join(&m, &o));
                let p = join(&join(&m, &o), &name);
                match std::fs::create_dir_all(&p) {
                    Ok(()) => Some(p),
                    Err(e) => {
                        note.push(format!("cannot create {}: {e}", p.display()));
                        None
                    }
                }
            }
            _ => {
                note.push("no cgroup v2 hierarchy".to_string());
                None
            }
        };
        let mut v2_memory = false;
        if let Some(p) = &v2 {
            // Ask for the memory controller in our parent's children.
            let ctl = std::fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default();
            if ctl.split_whitespace().any(|c| c == "memory") {
                let _ = std::fs::write(p.join("cgroup.subtree_control"), "+memory");
                let sub =
                    std::fs::read_to_string(p.join("cgroup.subtree_control")).unwrap_or_default();
                v2_memory = sub.split_whitespace().any(|c| c == "memory");
            }
        }
        let v1_mem = if v2_memory {
            None
        } else {
            match (v1m, memown) {
                (Some(m), Some(o)) => {
                    sweep(&join(&m, &o));
                    let p = join(&join(&m, &o), &name);
                    match std::fs::create_dir_all(&p) {
                        Ok(()) => Some(p),
                        Err(e) => {
                            note.push(format!("cannot create {}: {e}", p.display()));
                            None
                        }
                    }
                }
                _ => None,
            }
        };
        let mode = match (&v2, v2_memory, &v1_mem) {
            (Some(_), true, _) => Mode::V2,
            (Some(_), false, Some(_)) => Mode::Hybrid,
            _ => Mode::None,
        };
        if mode == Mode::None {
            note.push(
                "jobs run in their own process group; memory is sampled from /proc".to_string(),
            );
        }
        Cgroups {
            mode,
            v2: if mode == Mode::None { None } else { v2 },
            v1_mem,
            v2_memory,
            note: note.join("; "),
        }
    }

    /// The process-group-only fallback (tests, or a host without cgroups).
    pub fn none(note: &str) -> Cgroups {
        Cgroups {
            mode: Mode::None,
            v2: None,
            v1_mem: None,
            v2_memory: false,
            note: note.to_string(),
        }
    }

    /// Create the job's cgroups with its memory limit.
    pub fn create(&self, id: u64, mem_limit_bytes: u64) -> Result<JobCgroup, String> {
        let leaf = format!("job-{id}");
        let mut cg = JobCgroup::default();
        if let Some(base) = &self.v2 {
            let p = base.join(&leaf);
            // A leftover of a previous run: empty it and start afresh.
            if p.exists() {
                let _ = std::fs::write(p.join("cgroup.kill"), "1");
                let _ = std::fs::remove_dir(&p);
            }
            std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
            if self.v2_memory {
                std::fs::write(p.join("memory.max"), mem_limit_bytes.to_string())
                    .map_err(|e| format!("setting {}/memory.max: {e}", p.display()))?;
                let _ = std::fs::write(p.join("memory.swap.max"), "0");
                let _ = std::fs::write(p.join("memory.oom.group"), "1");
            }
            cg.v2 = Some(p);
        }
        if let Some(base) = &self.v1_mem {
            let p = base.join(&leaf);
            if p.exists() {
                let _ = std::fs::remove_dir(&p);
            }
            std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
            std::fs::write(p.join("memory.limit_in_bytes"), mem_limit_bytes.to_string())
                .map_err(|e| format!("setting {}/memory.limit_in_bytes: {e}", p.display()))?;
            let _ = std::fs::write(
                p.join("memory.memsw.limit_in_bytes"),
                mem_limit_bytes.to_string(),
            );
            cg.v1_mem = Some(p);
        }
        Ok(cg)
    }
}

/// One job's cgroups (empty in mode `none`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobCgroup {
    pub v2: Option<PathBuf>,
    pub v1_mem: Option<PathBuf>,
}

impl JobCgroup {
    pub fn is_some(&self) -> bool {
        self.v2.is_some() || self.v1_mem.is_some()
    }

    /// The `cgroup.procs` files the forked child writes `0` into (built before fork).
    pub fn join_paths(&self) -> Vec<CString> {
        [&self.v2, &self.v1_mem]
            .into_iter()
            .flatten()
            .filter_map(|p| {
                CString::new(p.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok()
            })
            .collect()
    }

    /// The v1 `cgroup.procs` file a `clone3` child still writes `0` into (it is created in
    /// its v2 cgroup by `CLONE_INTO_CGROUP`).
    pub fn v1_join_paths(&self) -> Vec<CString> {
        self.v1_mem
            .iter()
            .filter_map(|p| {
                CString::new(p.join("cgroup.procs").into_os_string().into_encoded_bytes()).ok()
            })
            .collect()
    }

    /// Every pid in the job's cgroup(s).
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for p in [&self.v2, &self.v1_mem].into_iter().flatten() {
            if let Ok(t) = std::fs::read_to_string(p.join("cgroup.procs")) {
                out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Send `sig` to every member.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }

    /// SIGKILL everything inside (`cgroup.kill` where available).
    pub fn kill(&self) {
        if let Some(p) = &self.v2
            && std::fs::write(p.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }

    /// Freeze (true) or thaw; `false` when there is no v2 cgroup (use SIGSTOP/SIGCONT).
    pub fn freeze(&self, on: bool) -> bool {
        match &self.v2 {
            Some(p) => std::fs::write(p.join("cgroup.freeze"), if on { "1" } else { "0" }).is_ok(),
            None => false,
        }
    }

    /// The kernel's OOM-kill count in this job's memory cgroup.
    pub fn oom_kills(&self) -> u64 {
        let read = |p: &Path, file: &str| std::fs::read_to_string(p.join(file)).unwrap_or_default();
        let count = |text: String| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        if let Some(p) = &self.v1_mem {
            return count(read(p, "memory.oom_control"));
        }
        if let Some(p) = &self.v2 {
            return count(read(p, "memory.events"));
        }
        0
    }

    /// Peak memory in bytes, where the kernel keeps it.
    pub fn peak_bytes(&self) -> Option<u64> {
        let read = |p: &Path, f: &str| {
            std::fs::read_to_string(p.join(f))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        if let Some(p) = &self.v1_mem {
            return read(p, "memory.max_usage_in_bytes");
        }
        self.v2.as_ref().and_then(|p| read(p, "memory.peak"))
    }

    /// CPU seconds used (v2 `cpu.stat usage_usec`).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let p = self.v2.as_ref()?;
        let t = std::fs::read_to_string(p.join("cpu.stat")).ok()?;
        t.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|us| us / 1e6)
    }

    /// Remove the (empty) cgroups; retried briefly while the last members are reaped.
    pub fn remove(&self) -> bool {
        let mut ok = true;
        for p in [&self.v2, &self.v1_mem].into_iter().flatten() {
            if p.exists() && std::fs::remove_dir(p).is_err() {
                ok = false;
            }
        }
        ok
    }
}

/// Resident memory (bytes) of every process whose process group is one of `pgids`, summed
/// per group (`/proc/PID/stat`: field 5 `pgrp`, field 24 `rss` in pages). Over-counts pages
/// shared within a group; good enough to catch a runaway job.
pub fn rss_by_pgid(pgids: &[i32]) -> std::collections::HashMap<i32, u64> {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for d in dir.flatten() {
        let name = d.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: state is field 3, so field N is f[N - 3].
        let (Some(pgrp), Some(rss)) = (
            f.get(2).and_then(|v| v.parse::<i32>().ok()),
            f.get(21).and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if pgids.contains(&pgrp) {
            *out.entry(pgrp).or_insert(0) += rss * page;
        }
    }
    out
}

/// CPU time (clock ticks: utime + stime, plus cutime + cstime of reaped children) of the
/// processes of each given process group, from `/proc/*/stat`.
pub fn cpu_ticks_by_pgid(pgids: &[i32]) -> std::collections::HashMap<i32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for d in dir.flatten() {
        let name = d.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: field N is f[N - 3]; pgrp is 5, utime..cstime are 14..17.
        let Some(pgrp) = f.get(2).and_then(|v| v.parse::<i32>().ok()) else {
            continue;
        };
        if pgids.contains(&pgrp) {
            *out.entry(pgrp).or_insert(0) += (11..=14)
                .filter_map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
                .sum::<u64>();
        }
    }
    out
}
