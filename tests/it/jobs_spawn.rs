//! The job spawn modes besides the default (`clone3` into the job's cgroup, no spares):
//! `VIGIL_JOBS_SPAWN=spare` (a spare process made ahead for the next jobs, waiting before
//! exec) and `VIGIL_JOBS_SPAWN=fork` (std's fork + `pre_exec`). Real binary, real processes.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestDaemon, eventually, header, tempdir};

const T: Duration = Duration::from_secs(60);

fn start(dir: &Path, mode: &str) -> TestDaemon {
    let config = dir.join("vigil.toml");
    let body = "[jobs]\ncpu_cores = 1\nram_gb = 8\nbuffer_pct = 0\nconsumption_factor_pct = 100\ncheck_measured = false\n";
    std::fs::write(&config, format!("{}{body}", header(dir))).expect("config");
    TestDaemon::start_config_env(dir, &config, &[], &[("VIGIL_JOBS_SPAWN", mode)])
}

fn submit(d: &TestDaemon, body: Value) -> u64 {
    let (s, _, b) = d.call("POST", "/api/jobs", None, Some(&body));
    assert_eq!(s, 201, "{b}");
    b["id"].as_u64().unwrap_or_else(|| panic!("no id in {b}"))
}

fn wait_final(d: &TestDaemon, id: u64, state: &str) {
    d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["to"] == state
    });
}

/// Children of `parent` whose argv[0] is vigil's spare trampoline.
fn spares_of(parent: i32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|d| {
            let p = d.path();
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let ppid = std::fs::read_to_string(p.join("status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("PPid:").map(|v| v.trim().to_string()));
            cmd.starts_with(b"vigil-job-spare\0") && ppid == Some(parent.to_string())
        })
        .count()
}

#[test]
fn spares_run_their_jobs_inside_the_cgroups_and_a_canceled_jobs_spare_leaves_nothing() {
    let tmp = tempdir();
    let d = start(tmp.path(), "spare");
    let blocker = submit(&d, json!({"command": ["sleep", "600"], "cpu_cores": 1}));
    let probe = "cat /proc/self/cgroup; echo adj=$(cat /proc/self/oom_score_adj); ls /proc/self/fd | tr '\\n' ' '";
    let a = submit(&d, json!({"command": ["sh", "-c", probe], "cpu_cores": 1}));
    let b = submit(&d, json!({"command": ["true"], "cpu_cores": 1}));
    eventually(T, "a spare for each waiting job", || {
        spares_of(d.pid()) == 2
    });
    // A queued job canceled: its spare exits without running anything.
    let (s, _, body) = d.call("POST", &format!("/api/jobs/{b}/cancel"), None, None);
    assert_eq!(s, 200, "{body}");
    eventually(T, "the canceled job's spare gone", || {
        spares_of(d.pid()) == 1
    });
    let (s, _, body) = d.call("POST", &format!("/api/jobs/{blocker}/cancel"), None, None);
    assert_eq!(s, 200, "{body}");
    wait_final(&d, a, "succeeded");
    let out = std::fs::read_to_string(tmp.path().join(format!("data/jobs/{a}/stdout.log")))
        .expect("a's output");
    assert!(out.contains("adj=1000"), "{out}");
    // Its first instruction ran in its own cgroups (every vigil one is the job's) ...
    for l in out.lines().filter(|l| l.contains("vigil-jobs-")) {
        assert!(l.ends_with(&format!("/job-{a}")), "{out}");
    }
    // ... holding nothing of vigil's open: stdio, and `ls`'s own directory.
    let fds = out.lines().last().unwrap_or("");
    assert_eq!(fds.split_whitespace().count(), 4, "{out}");
    assert_eq!(spares_of(d.pid()), 0, "no spare once nothing waits");
}

#[test]
fn fork_mode_still_runs_jobs() {
    let tmp = tempdir();
    let d = start(tmp.path(), "fork");
    let a = submit(
        &d,
        json!({"command": ["sh", "-c", "echo forked"], "cpu_cores": 1}),
    );
    wait_final(&d, a, "succeeded");
    let out = std::fs::read_to_string(tmp.path().join(format!("data/jobs/{a}/stdout.log")))
        .expect("output");
    assert_eq!(out, "forked\n");
}

#[test]
fn a_command_that_cannot_exec_ends_failed_with_the_os_error() {
    // The default spawn does not wait for the exec: its error arrives with the exit.
    let tmp = tempdir();
    let d = start(tmp.path(), "");
    let bad = tmp.path().join("not-a-program");
    std::fs::write(&bad, [0u8, 1, 2, 3]).expect("write");
    let mut perm = std::fs::metadata(&bad).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&bad, perm).expect("chmod");
    let a = submit(&d, json!({"command": [bad], "cpu_cores": 1}));
    wait_final(&d, a, "failed");
    let (_, _, j) = d.call("GET", &format!("/api/jobs/{a}"), None, None);
    let msg = j["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("could not start: couldn't exec") && msg.contains("Exec format error"),
        "{j}"
    );
}
