//! The real superlance 2.0.0 listeners (from PyPI, installed by scripts/setup-test-deps)
//! driving a real vigil: memmon, httpok, crashmail. A missing venv fails, never skips.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(40);

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("VIGIL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let p = venv.join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-deps (it installs superlance 2.0.0 into .venv)",
        p.display()
    );
    p
}

#[test]
fn memmon_restarts_a_program_past_its_limit() {
    let d = TestDaemon::start(&format!(
        "[program.hog]\ncommand = \"python3 -c 'x = bytearray(80 * 1024 * 1024); x[::4096] = b\\\"1\\\" * len(x[::4096]); import time; time.sleep(1000)'\"\nstartsecs = 0\n\n\
         [eventlistener.memmon]\ncommand = \"{} -p hog=20MB\"\nevents = [\"TICK_5\"]\nstartsecs = 0\n",
        venv_bin("memmon").display()
    ));
    let first = d.wait_state(0, "hog", "RUNNING", T);
    // memmon stops and starts it through XML-RPC on the next TICK_5.
    d.wait_for(first["seq"].as_u64().unwrap(), T, |e| {
        e["type"] == "process_state" && e["process"] == "hog" && e["to"] == "STOPPING"
    });
    let again = d.wait_state(first["seq"].as_u64().unwrap(), "hog", "RUNNING", T);
    assert_ne!(again["pid"], first["pid"]);
    let out = d.get("/api/programs/memmon/log?channel=stderr&lines=50");
    let text = out["lines"].to_string();
    assert!(text.contains("Restarting hog:hog"), "{text}");
}

#[test]
fn httpok_restarts_a_program_whose_url_answers_wrong() {
    // Answers 200 to every GET; httpok expects 201.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    });
    let d = TestDaemon::start(&format!(
        "[program.victim]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [eventlistener.httpok]\ncommand = \"{} -p victim -c 201 -t 5 http://{addr}/\"\nevents = [\"TICK_5\"]\nstartsecs = 0\n",
        venv_bin("httpok").display()
    ));
    let first = d.wait_state(0, "victim", "RUNNING", T);
    let since = first["seq"].as_u64().unwrap();
    d.wait_for(since, T, |e| {
        e["type"] == "process_state" && e["process"] == "victim" && e["to"] == "STOPPED"
    });
    let again = d.wait_state(since, "victim", "RUNNING", T);
    assert_ne!(again["pid"], first["pid"]);
}

#[test]
fn crashmail_reports_an_unexpected_exit() {
    let dir = tempdir();
    let mail = dir.path().join("mail.txt");
    let sendmail = script(
        dir.path(),
        "sendmail.sh",
        &format!("cat >> {}", mail.display()),
    );
    let d = TestDaemon::start(&format!(
        "[program.crashy]\ncommand = \"sh -c 'sleep 1; exit 3'\"\nstartsecs = 0\nautorestart = false\n\n\
         [eventlistener.crashmail]\ncommand = \"{} -a -m ops@example.invalid -s {}\"\nevents = [\"PROCESS_STATE\"]\nstartsecs = 0\n",
        venv_bin("crashmail").display(),
        sendmail.display()
    ));
    d.wait_state(0, "crashy", "EXITED", T);
    eventually(T, "the crash mail", || {
        std::fs::read_to_string(&mail).is_ok_and(|m| m.contains("crashy"))
    });
    let m = std::fs::read_to_string(&mail).unwrap();
    assert!(m.contains("To: ops@example.invalid"), "{m}");
    assert!(
        m.contains("Process crashy in group crashy exited unexpectedly (pid"),
        "{m}"
    );
}

/// Seed 003's failure monitor, exactly as the users wrote it (tests/data/seed003/), under its
/// own config: two listener processes on PROCESS_STATE_FATAL/_EXITED, buffer 100.
#[test]
fn the_seed_003_failure_monitor_runs_unchanged() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed003/failure_monitor.py");
    let d = TestDaemon::start(&format!(
        "[eventlistener.failure_monitor]\ncommand = \"{} {}\"\nevents = [\"PROCESS_STATE_FATAL\", \"PROCESS_STATE_EXITED\"]\n\
         numprocs = 2\nprocess_name = \"%(program_name)s_%(process_num)d\"\nbuffer_size = 100\npriority = 10\nstartsecs = 0\n\n\
         [program.risk_manager]\ncommand = \"sh -c 'exit 1'\"\nstartretries = 0\n",
        venv_bin("python").display(),
        script.display()
    ));
    d.wait_state(0, "risk_manager", "FATAL", T);
    let stderr_of = |p: &str| {
        d.get(&format!("/api/programs/{p}/log?channel=stderr&lines=50"))["lines"].to_string()
    };
    eventually(T, "the monitor's reaction", || {
        let all = stderr_of("failure_monitor_0") + &stderr_of("failure_monitor_1");
        all.contains("CRITICAL: Process risk_manager entered FATAL state")
            && all.contains("EMERGENCY: Risk manager failed - stopping all trading")
    });
    // It answered OK (no redelivery loop), and both listener processes are still up.
    assert_eq!(d.process("failure_monitor_0")["state"], "RUNNING");
    assert_eq!(d.process("failure_monitor_1")["state"], "RUNNING");
    assert!(!d.stderr_text().contains("listener rejected an event"));
}
