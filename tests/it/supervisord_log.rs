//! supervisord's log lines that its own end-to-end suite (`scripts/supervisord-e2e`) waits
//! for: `supervisord started with pid N` with the pidfile, child output at `loglevel=debug`
//! (`Undecodable: b'…'` when it is not UTF-8; a listener's protocol bytes as their repr), the
//! listener state changes, SIGCHLD; and `vigil run --listen`/`--identifier` (supervisord's
//! `-i`), which hold across reloads.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(30);

fn wait_log(d: &TestDaemon, what: &str) {
    eventually(T, what, || d.stderr_text().contains(what));
}

#[test]
fn supervisord_log_lines_at_debug() {
    let tmp = tempdir();
    let dir = tmp.path();
    let d = dir.display();
    let conf = dir.join("supervisord.conf");
    // The listener answers in one write, so that the chunk logged is deterministic.
    std::fs::write(
        &conf,
        format!(
            "[supervisord]\nloglevel=debug\npidfile={d}/sd.pid\nlogfile={d}/main.log\n\
             vigil_listen=127.0.0.1:0\n\n\
             [program:echo]\ncommand=/bin/echo hello world\nstartsecs=0\nautorestart=false\n\n\
             [program:bad]\ncommand=printf '\\210\\n'\nstartsecs=0\nautorestart=false\n\n\
             [eventlistener:listener]\nevents=PROCESS_STATE_EXITED\n\
             command=sh -c 'printf \"READY\\n\"; while read line; do \
             len=${{line##*len:}}; head -c \"$len\" >/dev/null; \
             printf \"RESULT 2\\nOKREADY\\n\"; done'\n"
        ),
    )
    .expect("write");
    let daemon = TestDaemon::start_config(dir, &conf);
    let pid = daemon.pid();
    wait_log(
        &daemon,
        &format!(" INFO supervisord started with pid {pid}\n"),
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sd.pid")).expect("pidfile"),
        format!("{pid}\n")
    );
    wait_log(&daemon, "DEBUG 'echo' stdout output:\nhello world\n");
    wait_log(
        &daemon,
        "DEBUG 'bad' stdout output:\nUndecodable: b'\\x88\\n'\n",
    );
    wait_log(&daemon, "DEBUG received SIGCHLD indicating a child quit\n");
    wait_log(&daemon, "DEBUG 'listener' stdout output:\nb'READY\\n'\n");
    wait_log(&daemon, "DEBUG listener: ACKNOWLEDGED -> READY\n");
    wait_log(
        &daemon,
        "DEBUG 'listener' stdout output:\nb'RESULT 2\\nOKREADY\\n'\n",
    );
    wait_log(&daemon, "DEBUG listener: event was processed\n");
    wait_log(&daemon, "DEBUG listener: BUSY -> ACKNOWLEDGED\n");
    // The main log gets the same lines.
    let main = std::fs::read_to_string(dir.join("main.log")).expect("main log");
    assert!(
        main.contains("'echo' stdout output:\nhello world\n"),
        "{main}"
    );
    let text = daemon.stderr_text();
    assert!(daemon.stop().success());
    assert!(
        !dir.join("sd.pid").exists(),
        "the pidfile is removed at exit"
    );
    assert!(text.contains(" sent to listener listener\n"), "{text}");
}

#[test]
fn at_info_child_output_is_not_logged() {
    let tmp = tempdir();
    let dir = tmp.path();
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        "[supervisord]\nvigil_listen=127.0.0.1:0\n\n\
         [program:echo]\ncommand=/bin/echo hello world\nstartsecs=0\nautorestart=false\n",
    )
    .expect("write");
    let daemon = TestDaemon::start_config(dir, &conf);
    wait_log(&daemon, "exited: echo (exit status 0; expected)");
    let text = daemon.stderr_text();
    assert!(!text.contains("output:"), "{text}");
    assert!(
        !text.contains("started with pid"),
        "no pidfile, no line: {text}"
    );
}

fn xmlrpc(url: &str, method: &str) -> String {
    let body = format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n\
         <params>\n</params>\n</methodCall>\n"
    );
    reqwest::blocking::Client::new()
        .post(format!("{url}/RPC2"))
        .header("Content-Type", "text/xml")
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

#[test]
fn run_listen_and_identifier_override_the_file_across_reloads() {
    let tmp = tempdir();
    let dir: &Path = tmp.path();
    let conf = dir.join("supervisord.conf");
    // No vigil_listen: the file alone would listen on 127.0.0.1:7070.
    std::fs::write(
        &conf,
        format!(
            "[supervisord]\nidentifier=from_file\nvigil_data_dir={}/data\n\n\
             [program:sleeper]\ncommand=sleep 1000\n",
            dir.display()
        ),
    )
    .expect("write");
    let daemon = TestDaemon::start_config_args(
        dir,
        &conf,
        &["--listen", "127.0.0.1:0", "--identifier", "from_cli"],
    );
    assert_ne!(daemon.url, "http://127.0.0.1:7070");
    let ident = "<string>from_cli</string>";
    let got = xmlrpc(&daemon.url, "supervisor.getIdentification");
    assert!(got.contains(ident), "{got}");
    // supervisor.restart is the SIGHUP path: the file is read again, the overrides still win.
    let got = xmlrpc(&daemon.url, "supervisor.restart");
    assert!(got.contains("<boolean>1</boolean>"), "{got}");
    let got = xmlrpc(&daemon.url, "supervisor.getIdentification");
    assert!(got.contains(ident), "{got}");
    let text = daemon.stderr_text();
    assert!(!text.contains("need a restart"), "{text}");
}

#[test]
fn a_childs_last_output_is_logged_before_its_exit() {
    let tmp = tempdir();
    let dir = tmp.path();
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        "[supervisord]\nloglevel=debug\nvigil_listen=127.0.0.1:0\n\n\
         [program:p]\ncommand=/bin/echo last words\nnumprocs=20\n\
         process_name=p_%(process_num)02d\nstartsecs=0\nautorestart=false\n",
    )
    .expect("write");
    let daemon = TestDaemon::start_config(dir, &conf);
    let exited = |n: u32| format!("exited: p_{n:02} (exit status 0; expected)");
    for n in 0..20 {
        wait_log(&daemon, &exited(n));
    }
    let text = daemon.stderr_text();
    for n in 0..20 {
        let out = text
            .find(&format!("'p_{n:02}' stdout output:\nlast words\n"))
            .unwrap_or_else(|| panic!("no output of p_{n:02}:\n{text}"));
        let exit = text.find(&exited(n)).expect("exit line");
        assert!(
            out < exit,
            "p_{n:02}: exit logged before its output:\n{text}"
        );
    }
    // The k-th exit noticed comes after k outputs (supervisord's tests expect a child's output
    // before `received SIGCHLD`; without waiting for the pipes, about one exit in five was seen
    // first).
    let (mut outputs, mut exits) = (0, 0);
    for line in text.lines() {
        if line.ends_with("stdout output:") {
            outputs += 1;
        } else if line.ends_with("received SIGCHLD indicating a child quit") {
            exits += 1;
            assert!(exits <= outputs, "an exit seen before its output:\n{text}");
        }
    }
    assert_eq!((outputs, exits), (20, 20), "{text}");
}

/// More output than a pipe holds, then a last line, then exit: the last line's `process_log`
/// event (what PROCESS_LOG listeners get) is stored before the `EXITED` transition.
#[test]
fn output_written_before_an_exit_is_stored_before_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    let spew = script(
        dir,
        "spew.sh",
        "head -c 300000 /dev/zero | tr '\\0' x\necho\necho LAST-$1",
    );
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        format!(
            "[supervisord]\nvigil_listen=127.0.0.1:0\n\n\
             [program:p]\ncommand={} %(process_num)d\nnumprocs=4\n\
             process_name=p_%(process_num)d\nstartsecs=0\nautorestart=false\n\
             stdout_events_enabled=true\n",
            spew.display()
        ),
    )
    .expect("write");
    let daemon = TestDaemon::start_config(dir, &conf);
    for n in 0..4 {
        daemon.wait_state(0, &format!("p_{n}"), "EXITED", T);
    }
    let events = daemon.events(0);
    for n in 0..4 {
        let seq_of = |pred: &dyn Fn(&serde_json::Value) -> bool| {
            events
                .iter()
                .find(|e| pred(e))
                .and_then(|e| e["seq"].as_u64())
                .unwrap_or_else(|| panic!("p_{n}: event missing"))
        };
        let last = seq_of(&|e| {
            e["type"] == "process_log"
                && e["data"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("LAST-{n}")))
        });
        let exited = seq_of(&|e| {
            e["type"] == "process_state" && e["process"] == format!("p_{n}") && e["to"] == "EXITED"
        });
        assert!(last < exited, "p_{n}: output {last} after exit {exited}");
    }
}
