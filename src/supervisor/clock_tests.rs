//! The supervisor actor on tokio's paused clock, with real children: its deadlines
//! (startsecs, stopwaitsecs) fire exactly when the clock reaches them, and a child that
//! exits during a stop ends STOPPED. Time moves only by `tokio::time::advance` (the clock
//! is held: `crate::clock::paused`); waits for a child are bounded on the real clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::advance;
use vigil_core::program::{Exit, ProcessState};

use super::*;
use crate::clock::paused::{Hold, hold};

const REAL_BOUND: Duration = Duration::from_secs(60);
const MS: Duration = Duration::from_millis(1);

struct Harness {
    sup: SupervisorHandle,
    events: EventLog,
    dir: tempfile::TempDir,
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A real event log in a temporary data_dir and a supervisor with one program `p`, not
/// autostarted; `program` is the rest of its section.
fn harness(command: impl FnOnce(&Path) -> String, program: &str) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let command = command(d);
    let text = format!(
        "[vigil]\ndata_dir = \"{}\"\n\n[program.p]\ncommand = \"{command}\"\nautostart = false\n{program}",
        d.join("data").display()
    );
    let config = crate::config::load_str(&d.join("vigil.toml"), &text).expect("config");
    let events = event_log(&d.join("data"));
    let sup = start(&config, events.clone(), Options::default());
    Harness { sup, events, dir }
}

/// [`harness`] whose program is the sh script `body`.
fn harness_script(body: &'static str, program: &str) -> Harness {
    harness(|d| script(d, "p.sh", body).display().to_string(), program)
}

/// A real event log (and state record) in `data`, as the daemon opens it.
pub(super) fn event_log(data: &Path) -> EventLog {
    let (record, _) =
        crate::store::record::StateRecord::open(&data.join("vigil.state")).expect("record");
    let store = crate::store::Store::open(&data.join("vigil.db")).expect("store");
    EventLog::start(store, Arc::new(record)).expect("event log")
}

fn process(sup: &SupervisorHandle) -> ProcessInfo {
    sup.snapshot()
        .processes
        .iter()
        .find(|p| p.name == "p")
        .cloned()
        .expect("process p")
}

async fn wait_state(h: &Hold, sup: &SupervisorHandle, state: ProcessState) -> ProcessInfo {
    let mut w = sup.watch();
    h.within(&format!("p {state:?}"), async {
        w.wait_for(|s| {
            s.processes
                .iter()
                .any(|p| p.name == "p" && p.state == state)
        })
        .await
        .expect("supervisor running");
    })
    .await;
    process(sup)
}

/// Start `p` and wait (real time) until it printed `ready` (its signal handling is set).
async fn start_ready(h: &Hold, sup: &SupervisorHandle) -> u32 {
    let mut out = sup.output("p").expect("p's output").stdout.follow();
    let r = sup.start("p", false).await.expect("start");
    assert!(r[0].ok, "{:?}", r[0]);
    h.within("p to print ready", async {
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("ready") {
            seen.extend_from_slice(&out.recv().await.expect("p's stdout"));
        }
    })
    .await;
    process(sup).pid.expect("p runs")
}

/// `for_` later (and every deadline in it looked at), `p` is still STOPPED, never restarted.
async fn stays_stopped(sup: &SupervisorHandle, for_: Duration) {
    advance(for_).await;
    assert!(sup.ping().await);
    let p = process(sup);
    assert_eq!(
        (p.state, p.pid, p.restarts),
        (ProcessState::Stopped, None, 0),
        "{p:?}"
    );
}

/// SIGKILL sent to `pid` (pending, dying, a zombie, or reaped): read from the kernel,
/// which has it as soon as kill(2) returned in the actor.
fn killed(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let pending = |name: &str| u64::from_str_radix(&field(name), 16).unwrap_or(0) & (1 << 8) != 0;
    let state = field("State:");
    state.starts_with('Z') || state.starts_with('X') || pending("SigPnd:") || pending("ShdPnd:")
}

#[tokio::test(start_paused = true)]
async fn startsecs_makes_a_process_running_exactly_at_its_deadline() {
    let h = hold(REAL_BOUND);
    let x = harness(|_| "sleep 1000".into(), "startsecs = 5\n");
    let r = x.sup.start("p", false).await.expect("start");
    assert!(r[0].ok, "{:?}", r[0]);
    assert_eq!(process(&x.sup).state, ProcessState::Starting);
    advance(Duration::from_secs(5) - MS).await;
    assert!(x.sup.ping().await);
    assert_eq!(
        process(&x.sup).state,
        ProcessState::Starting,
        "RUNNING before startsecs"
    );
    advance(MS).await;
    let p = wait_state(&h, &x.sup, ProcessState::Running).await;
    assert!(p.pid.is_some());
    h.within("the shutdown", x.sup.shutdown()).await;
}

#[tokio::test(start_paused = true)]
async fn a_child_ignoring_sigterm_is_killed_exactly_at_stopwaitsecs() {
    let h = hold(REAL_BOUND);
    let x = harness_script(
        "trap '' TERM\necho ready\nexec sleep 1000\n",
        "startsecs = 0\nstopwaitsecs = 10\nautorestart = true\n",
    );
    let pid = start_ready(&h, &x.sup).await;
    assert_eq!(process(&x.sup).state, ProcessState::Running);
    let r = x.sup.stop("p", false).await.expect("stop");
    assert!(r[0].ok, "{:?}", r[0]);
    assert_eq!(process(&x.sup).state, ProcessState::Stopping);

    advance(Duration::from_secs(10) - MS).await;
    assert!(x.sup.ping().await);
    assert!(!killed(pid), "SIGKILL before stopwaitsecs");
    assert_eq!(process(&x.sup).state, ProcessState::Stopping);

    advance(MS).await;
    let p = wait_state(&h, &x.sup, ProcessState::Stopped).await;
    assert_eq!(p.last_exit, Some(Exit::Signal(9)), "{p:?}");
    // Stopped for good: autorestart does not apply to a stop.
    stays_stopped(&x.sup, Duration::from_secs(60)).await;
    h.within("the shutdown", x.sup.shutdown()).await;
    drop(x.dir);
}

#[tokio::test(start_paused = true)]
async fn a_child_exiting_on_its_own_during_a_stop_ends_stopped_not_restarted() {
    let h = hold(REAL_BOUND);
    // On SIGTERM it exits 3 (not an expected code): out of RUNNING that would be EXITED and
    // a restart; during a stop it is STOPPED.
    let x = harness_script(
        "trap 'kill $!; exit 3' TERM\necho ready\nsleep 1000 &\nwait\n",
        "startsecs = 0\nstopwaitsecs = 10\nautorestart = true\nstartretries = 5\n",
    );
    start_ready(&h, &x.sup).await;
    x.events.flush().await;
    let mut log = x.events.subscribe();
    let r = x.sup.stop("p", false).await.expect("stop");
    assert!(r[0].ok, "{:?}", r[0]);
    let p = wait_state(&h, &x.sup, ProcessState::Stopped).await;
    assert_eq!(
        p.last_exit,
        Some(Exit::Code(3)),
        "it exited by itself: {p:?}"
    );
    // No BACKOFF, no STARTING later: past any backoff and the stop's SIGKILL deadline.
    stays_stopped(&x.sup, Duration::from_secs(120)).await;
    // Every transition since the stop, from the event log: exactly STOPPING, STOPPED.
    x.events.flush().await;
    let mut seen = Vec::new();
    while let Ok(e) = log.try_recv() {
        if e.kind == "process_state" {
            seen.push(format!("{}->{}", e.data["from"], e.data["to"]).replace('"', ""));
        }
    }
    assert_eq!(seen, ["RUNNING->STOPPING", "STOPPING->STOPPED"]);
    h.within("the shutdown", x.sup.shutdown()).await;
}
