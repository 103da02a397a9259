//! The listener actor (`crate::listeners`) with the supervisor and real listener processes, on tokio's paused
//! clock held still (`crate::clock::paused`): a listener that dies mid-event (after READY,
//! with the event written to it, before its RESULT) does not lose the event — the pool
//! hands it again, to its other listener or to the restarted one — and the pool keeps
//! delivering afterwards. Nothing of it waits for a timer: the clock never moves.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::program::ProcessState;

use crate::supervisor::{self, SupervisorHandle};

/// supervisord's protocol in sh: READY, a header line, `len` bytes of payload, RESULT. Each
/// event is reported on stderr (`got SERIAL PID PAYLOAD`); the first listener to take an
/// event at all (`mkdir` is atomic) dies right after reading it, without answering.
const LISTENER: &str = r#"#!/bin/sh
while :; do
  printf 'READY\n'
  read -r header || exit 0
  len=${header##*len:}
  payload=$(dd bs=1 count="$len" 2>/dev/null)
  serial=$(echo "$header" | sed 's/.*serial:\([0-9]*\).*/\1/')
  echo "got $serial $$ $payload" >&2
  if mkdir "$1/died" 2>/dev/null; then
    echo "dying $serial $$" >&2
    exit 1
  fi
  printf 'RESULT 2\nOK'
done
"#;

struct Harness {
    sup: SupervisorHandle,
    tasks: TaskTracker,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let script = d.join("listener.sh");
    std::fs::write(&script, LISTENER).expect("write listener");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let text = format!(
        "[vigil]\ndata_dir = \"{data}\"\n\n\
         [program.worker]\ncommand = \"sleep 1000\"\nautostart = false\nstartsecs = 0\n\n\
         [eventlistener.watch]\ncommand = \"{script} {dir}\"\nevents = [\"PROCESS_STATE_RUNNING\"]\n\
         numprocs = 2\nprocess_name = \"%(program_name)s_%(process_num)02d\"\n\
         startsecs = 0\nautorestart = true\n",
        data = d.join("data").display(),
        script = script.display(),
        dir = d.display(),
    );
    let config = crate::config::load_str(&d.join("vigil.toml"), &text).expect("config");
    let events = super::clock_tests::event_log(&d.join("data"));
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let listener_io = crate::listeners::start(&config, events.clone(), &tasks, stop.clone());
    assert!(listener_io.is_some(), "a pool is configured");
    let sup = supervisor::start(
        &config,
        events,
        supervisor::Options {
            listener_io,
            tasks: tasks.clone(),
            ..Default::default()
        },
    );
    Harness {
        sup,
        tasks,
        stop,
        _dir: dir,
    }
}

/// One `got`/`dying` line a listener wrote on stderr.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    dying: bool,
    serial: u64,
    pid: u32,
    payload: String,
}

fn parse(line: &str) -> Option<Line> {
    let mut w = line.splitn(4, ' ');
    let dying = match w.next()? {
        "got" => false,
        "dying" => true,
        _ => return None,
    };
    Some(Line {
        dying,
        serial: w.next()?.parse().ok()?,
        pid: w.next()?.parse().ok()?,
        payload: w.next().unwrap_or("").to_string(),
    })
}

/// Both listeners' stderr, as lines, in the order they arrive.
struct Stderr {
    rx: tokio::sync::mpsc::UnboundedReceiver<Line>,
    seen: Vec<Line>,
}

impl Stderr {
    fn follow(sup: &SupervisorHandle, names: &[&str]) -> Stderr {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for name in names {
            let mut follow = sup
                .output(name)
                .expect("a listener's output")
                .stderr
                .follow();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut partial = String::new();
                while let Ok(chunk) = follow.recv().await {
                    partial.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(i) = partial.find('\n') {
                        let line: String = partial.drain(..=i).collect();
                        if let Some(l) = parse(line.trim_end()) {
                            let _ = tx.send(l);
                        }
                    }
                }
            });
        }
        Stderr {
            rx,
            seen: Vec::new(),
        }
    }

    /// Read lines until `done` holds over all of them.
    async fn until(&mut self, done: impl Fn(&[Line]) -> bool) {
        while !done(&self.seen) {
            let l = self.rx.recv().await.expect("the listeners' stderr");
            self.seen.push(l);
        }
    }
}

/// The event `l` took was handed again after it died with it: a later `got` of the same
/// serial from another pid.
fn redelivered(lines: &[Line]) -> Option<(Line, Line)> {
    let died = lines.iter().find(|l| l.dying)?;
    let pos = lines.iter().position(|l| l == died)?;
    let again = lines[pos..]
        .iter()
        .find(|l| !l.dying && l.serial == died.serial && l.pid != died.pid)?;
    Some((died.clone(), again.clone()))
}

#[tokio::test(start_paused = true)]
async fn a_listener_dying_mid_event_loses_nothing_and_the_pool_goes_on() {
    let h = crate::clock::paused::hold(Duration::from_secs(60));
    let t0 = tokio::time::Instant::now();
    let x = harness();
    let mut err = Stderr::follow(&x.sup, &["watch_00", "watch_01"]);

    // The listeners' own RUNNING events come first; one of them kills its taker.
    h.within(
        "the event to be handed again after the death",
        err.until(|l| redelivered(l).is_some()),
    )
    .await;
    let (died, again) = redelivered(&err.seen).expect("redelivered");
    let taken = err
        .seen
        .iter()
        .find(|l| !l.dying && l.serial == died.serial && l.pid == died.pid)
        .expect("what the dead listener had read");
    assert_eq!(taken.payload, again.payload, "the same event");

    // The pool is not wedged: a later event reaches a listener and is answered.
    let r = x.sup.start("worker", false).await.expect("start worker");
    assert!(r[0].ok, "{:?}", r[0]);
    h.within(
        "the worker's RUNNING event",
        err.until(|l| {
            l.iter()
                .any(|l| l.payload.contains("processname:worker") && l.serial > died.serial)
        }),
    )
    .await;
    // The dead listener was restarted (a new pid in its place, RUNNING).
    let mut w = x.sup.watch();
    h.within("both listeners RUNNING", async {
        w.wait_for(|s| {
            s.processes
                .iter()
                .filter(|p| p.group == "watch" && p.state == ProcessState::Running)
                .count()
                == 2
        })
        .await
        .expect("supervisor running");
    })
    .await;
    let pids: BTreeSet<u32> = err.seen.iter().map(|l| l.pid).collect();
    assert!(
        pids.contains(&died.pid) && pids.len() >= 2,
        "{:?}",
        err.seen
    );
    // Each serial answered once at most by a live listener: no duplicates but the redelivery.
    let answered: Vec<u64> = err
        .seen
        .iter()
        .filter(|l| !(l.dying || (l.serial == died.serial && l.pid == died.pid)))
        .map(|l| l.serial)
        .collect();
    let unique: BTreeSet<u64> = answered.iter().copied().collect();
    assert_eq!(
        answered.len(),
        unique.len(),
        "an event handed twice: {:?}",
        err.seen
    );
    assert_eq!(tokio::time::Instant::now(), t0, "no timer was needed");

    h.within("the shutdown", x.sup.shutdown()).await;
    x.stop.cancel();
    x.tasks.close();
    h.within("the actors' tasks", x.tasks.wait()).await;
}
