//! Event listeners end to end: the supervisord protocol over real pipes to real listener
//! processes (Python, written the way supervisord's own docs and seed 003 write them).

use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(20);

/// A protocol-level listener. It appends `serial eventname payload` for every event to LOG.
/// MODE: `ok`; `fail-first` (FAIL the first delivery of each serial, then OK);
/// `die-first` (exit without answering the first event it ever gets, once per MARK file);
/// `garbage` (answers nonsense).
const LISTENER: &str = r#"
import os, sys
log, mode, mark = sys.argv[1], sys.argv[2], sys.argv[3]
seen = set()
def out(s):
    sys.stdout.write(s); sys.stdout.flush()
while True:
    out('READY\n')
    line = sys.stdin.readline()
    if not line:
        break
    h = dict(x.split(':', 1) for x in line.split())
    payload = sys.stdin.read(int(h['len']))
    with open(log, 'a') as f:
        f.write('%s %s %s\n' % (h['serial'], h['eventname'], payload.replace('\n', '|')))
    if mode == 'die-first' and not os.path.exists(mark):
        open(mark, 'w').close()
        os._exit(3)
    if mode == 'garbage':
        out('what is this\n')
        continue
    if mode == 'fail-first' and h['serial'] not in seen:
        seen.add(h['serial'])
        out('RESULT 4\nFAIL')
        continue
    out('RESULT 2\nOK')
"#;

fn setup(mode: &str, events: &str, extra: &str) -> (TestDaemon, std::path::PathBuf) {
    setup_with(mode, events, "", extra)
}

fn setup_with(
    mode: &str,
    events: &str,
    listener_extra: &str,
    extra: &str,
) -> (TestDaemon, std::path::PathBuf) {
    let tmp = tempdir();
    let dir = tmp.path().to_path_buf();
    std::mem::forget(tmp); // kept for the test's life (the daemon writes into it)
    let script = dir.join("listener.py");
    std::fs::write(&script, LISTENER).unwrap();
    let log = dir.join("events.log");
    let mark = dir.join("died-once");
    let d = TestDaemon::start_in(
        &dir,
        &format!(
            "[eventlistener.watch]\ncommand = \"python3 -u {} {} {mode} {}\"\nevents = [{events}]\nstartsecs = 0\nautorestart = true\n{listener_extra}\n{extra}",
            script.display(),
            log.display(),
            mark.display()
        ),
    );
    (d, log)
}

fn lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn process_state_payloads_reach_a_listener_byte_exact() {
    let (d, log) = setup(
        "ok",
        "\"PROCESS_STATE\"",
        "[program.target]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    let running = d.wait_state(0, "target", "RUNNING", T);
    let pid = running["pid"].as_u64().unwrap();
    let want = format!(
        "{} PROCESS_STATE_RUNNING processname:target groupname:target from_state:STARTING pid:{pid}",
        running["seq"]
    );
    eventually(T, "the RUNNING event at the listener", || {
        lines(&log).contains(&want)
    });
    let starting =
        "PROCESS_STATE_STARTING processname:target groupname:target from_state:STOPPED tries:0";
    assert!(
        lines(&log).iter().any(|l| l.ends_with(starting)),
        "{:?}",
        lines(&log)
    );
}

#[test]
fn a_failed_event_is_redelivered_to_the_same_pool() {
    let (d, log) = setup(
        "fail-first",
        "\"PROCESS_STATE_RUNNING\"",
        "[program.target]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    let running = d.wait_state(0, "target", "RUNNING", T);
    let serial = running["seq"].as_u64().unwrap().to_string();
    eventually(T, "two deliveries of the same serial", || {
        lines(&log)
            .iter()
            .filter(|l| l.split(' ').next() == Some(serial.as_str()))
            .count()
            >= 2
    });
    // The warning is logged as the redelivery goes out: wait for it, do not race it.
    eventually(T, "the rejection in vigil's log", || {
        d.stderr_text().contains("listener rejected an event")
    });
}

#[test]
fn a_listener_dying_mid_event_gets_the_same_event_again() {
    let (d, log) = setup(
        "die-first",
        "\"PROCESS_STATE_RUNNING\"",
        "[program.target]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state(0, "target", "RUNNING", T);
    eventually(T, "redelivery after the listener's death", || {
        lines(&log).len() >= 2
    });
    let l = lines(&log);
    let first: Vec<&str> = l[0].splitn(3, ' ').collect();
    let second: Vec<&str> = l[1].splitn(3, ' ').collect();
    assert_eq!(first, second, "same serial, same event: {l:?}");
    // The listener itself was restarted.
    let evs = d.events(0);
    assert!(
        evs.iter()
            .any(|e| e["process"] == "watch" && e["to"] == "EXITED")
    );
}

#[test]
fn a_listener_that_breaks_the_protocol_is_unknown_and_loses_nothing_for_others() {
    let (d, _log) = setup(
        "garbage",
        "\"PROCESS_STATE_RUNNING\"",
        "[program.target]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state(0, "target", "RUNNING", T);
    eventually(T, "UNKNOWN logged", || {
        d.stderr_text().contains("has entered the UNKNOWN state")
    });
    // The daemon is fine and the listener process is still RUNNING (as in supervisord).
    assert_eq!(d.process("watch")["state"], "RUNNING");
}

#[test]
fn a_full_buffer_defers_to_the_store_and_delivers_everything_in_order() {
    let mut programs = String::new();
    for i in 0..8 {
        programs.push_str(&format!(
            "[program.p{i}]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n"
        ));
    }
    let (d, log) = setup_with(
        "ok",
        "\"PROCESS_STATE_RUNNING\"",
        "buffer_size = 1\n",
        &programs,
    );
    for i in 0..8 {
        d.wait_state(0, &format!("p{i}"), "RUNNING", T);
    }
    let since_start = d.events(0);
    let want: Vec<u64> = since_start
        .iter()
        .filter(|e| e["type"] == "process_state" && e["to"] == "RUNNING")
        .filter(|e| e["seq"].as_u64().unwrap() > 0)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect::<Vec<_>>();
    eventually(T, "every RUNNING event delivered", || {
        let got: Vec<u64> = lines(&log)
            .iter()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        want.iter().all(|w| got.contains(w))
    });
    let got: Vec<u64> = lines(&log)
        .iter()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(got, sorted, "in order, each once");
}

#[test]
fn program_output_reaches_a_process_log_listener() {
    let (d, log) = setup(
        "ok",
        "\"PROCESS_LOG\"",
        "[program.talker]\ncommand = \"sh -c 'sleep 0.5; echo hello; exec sleep 1000'\"\nstartsecs = 0\nstdout_events_enabled = true\n",
    );
    let running = d.wait_state(0, "talker", "RUNNING", T);
    let pid = running["pid"].as_u64().unwrap();
    let want = format!(
        "PROCESS_LOG_STDOUT processname:talker groupname:talker pid:{pid} channel:stdout|hello|"
    );
    eventually(T, "the PROCESS_LOG event", || {
        lines(&log).iter().any(|l| l.ends_with(&want))
    });
}

#[test]
fn captured_output_reaches_a_process_communication_listener() {
    let (d, log) = setup(
        "ok",
        "\"PROCESS_COMMUNICATION\"",
        "[program.strategy]\ncommand = \"sh -c 'sleep 0.5; printf \\\"plain <!--XSUPERVISOR:BEGIN-->{\\\\\\\"signal\\\\\\\":\\\\\\\"entry\\\\\\\"}<!--XSUPERVISOR:END--> tail\\\\\\\\n\\\"; exec sleep 1000'\"\nstartsecs = 0\nstdout_capture_maxbytes = \"1KB\"\n",
    );
    let running = d.wait_state(0, "strategy", "RUNNING", T);
    let pid = running["pid"].as_u64().unwrap();
    let want = format!(
        "PROCESS_COMMUNICATION_STDOUT processname:strategy groupname:strategy pid:{pid}|{{\"signal\":\"entry\"}}"
    );
    eventually(T, "the PROCESS_COMMUNICATION event", || {
        lines(&log).iter().any(|l| l.ends_with(&want))
    });
    // The tagged text is taken out of the ordinary output.
    eventually(T, "the plain output", || {
        d.get("/api/programs/strategy/log?lines=5")["lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "plain  tail"))
    });
}

#[test]
fn process_group_events_at_start_and_on_reload() {
    let (d, log) = setup(
        "ok",
        "\"PROCESS_GROUP\"",
        "[program.first]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    eventually(T, "PROCESS_GROUP_ADDED for the group at start", || {
        lines(&log)
            .iter()
            .any(|l| l.ends_with("PROCESS_GROUP_ADDED groupname:first|"))
    });
    let cfg = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        cfg.replace("[program.first]", "[program.second]"),
    )
    .unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    eventually(T, "ADDED second and REMOVED first", || {
        let l = lines(&log);
        l.iter()
            .any(|l| l.ends_with("PROCESS_GROUP_ADDED groupname:second|"))
            && l.iter()
                .any(|l| l.ends_with("PROCESS_GROUP_REMOVED groupname:first|"))
    });
}
