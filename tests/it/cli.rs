//! `vigil ctl` and `vigil check-config` as scripts see them: output and exit codes.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn ctl_status_start_stop_and_exit_codes() {
    let d = TestDaemon::start(
        "[program.web]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [program.idle]\ncommand = \"sleep 1000\"\nautostart = false\n",
    );
    d.wait_state(0, "web", "RUNNING", T);
    let out = d.ctl(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("web") && text.contains("RUNNING") && text.contains("pid "),
        "{text}"
    );
    assert!(
        text.contains("idle") && text.contains("STOPPED") && text.contains("Not started"),
        "{text}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "a stopped process makes status exit 3"
    );

    let out = d.ctl(&["start", "idle"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "idle: started");
    assert_eq!(out.status.code(), Some(0));
    let out = d.ctl(&["start", "idle"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "idle: ERROR (already started)"
    );
    assert_eq!(out.status.code(), Some(1));
    let out = d.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(0));

    let pid = d.ctl(&["pid", "web"]);
    let pid: i32 = String::from_utf8_lossy(&pid.stdout).trim().parse().unwrap();
    assert!(alive(pid));

    let out = d.ctl(&["stop", "all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("web: stopped") && text.contains("idle: stopped"),
        "{text}"
    );

    let out = d.ctl(&["start", "nosuch"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "nosuch: ERROR (no such process)"
    );
    assert_eq!(out.status.code(), Some(4));
    let out = d.ctl(&["status", "nosuch"]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn ctl_signal_and_unreachable_daemon() {
    let dir = tempdir();
    let marker = dir.path().join("got-usr1");
    let s = script(
        dir.path(),
        "trap.sh",
        &format!(
            "trap 'touch {}' USR1\nwhile true; do sleep 0.05; done",
            marker.display()
        ),
    );
    let d = TestDaemon::start(&format!(
        "[program.t]\ncommand = \"{}\"\nstartsecs = 0\n",
        s.display()
    ));
    d.wait_state(0, "t", "RUNNING", T);
    let out = d.ctl(&["signal", "USR1", "t"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eventually(T, "USR1 delivered", || marker.exists());
    let out = d.ctl(&["signal", "NOPE", "t"]);
    assert_ne!(out.status.code(), Some(0));

    let out = Command::new(vigil_bin())
        .args(["ctl", "--url", "http://127.0.0.1:9", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach vigil"));
}

#[test]
fn check_config_reports_every_error_with_location() {
    let dir = tempdir();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[vigil]\nlisten = \"127.0.0.1:7070\"\n\n[program.a]\ncommand = \"sleep 1\"\nstartsecs = \"soon\"\nautorestrat = true\n\n[program.b]\nprority = 3\n",
    )
    .unwrap();
    let out = Command::new(vigil_bin())
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = f.display().to_string();
    assert!(err.contains(&format!("{file}:6:")), "{err}");
    assert!(err.contains("program.a.startsecs"), "{err}");
    assert!(
        err.contains(&format!("{file}:7:1: program.a.autorestrat")),
        "{err}"
    );
    assert!(err.contains("did you mean \"autorestart\"?"), "{err}");
    assert!(err.contains("program.b.prority"), "{err}");
    assert!(
        err.contains(&format!(
            "{file}:9:1: program.b.command: required key is missing"
        )),
        "{err}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[program.a]\ncommand = \"sleep 1\"\n").unwrap();
    let out = Command::new(vigil_bin())
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_refuses_bad_config_and_non_loopback() {
    let dir = tempdir();
    let f = dir.path().join("v.toml");
    std::fs::write(
        &f,
        "[vigil]\nlisten = \"0.0.0.0:0\"\n[program.a]\ncommand = \"sleep 1\"\n",
    )
    .unwrap();
    let out = Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(&f)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
    std::fs::write(&f, "[program.a]\ncommand = 5\n").unwrap();
    let out = Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn events_history_and_follow() {
    let d = TestDaemon::start("[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state(0, "a", "RUNNING", T);
    let out = Command::new(vigil_bin())
        .args([
            "events",
            "--since",
            "0",
            "--type",
            "process_state",
            "--url",
            &d.url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["to"], "RUNNING");
    // --follow prints history, then what happens next.
    let mut child = Command::new(vigil_bin())
        .args([
            "events",
            "--follow",
            "--type",
            "process_state",
            "--url",
            &d.url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    use std::io::BufRead;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    reader.read_line(&mut line).unwrap();
    let (s, _) = d.post("/api/programs/a/stop");
    assert_eq!(s, 200);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        seen.push(v["to"].as_str().unwrap().to_string());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, vec!["STOPPING", "STOPPED"]);
}

/// `vigil convert` of a config with a misspelt option (the fuzzers' first find): the TOML on
/// stdout, the ignored option once on stderr with its line, no "warning" about the
/// translation, exit 0; and the TOML passes `check-config`.
#[test]
fn convert_reports_an_ignored_option_once_and_the_translation_as_exact() {
    let dir = tempdir();
    let f = dir.path().join("supervisord.conf");
    std::fs::write(
        &f,
        "[supervisord]\n[program:bot]\ncommand=sleep 1000\nspopsignal=INT\n",
    )
    .unwrap();
    let out = Command::new(vigil_bin())
        .arg("convert")
        .arg(&f)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let file = f.display().to_string();
    assert_eq!(
        err.trim_end(),
        format!(
            "{file}:4:1: [program:bot] spopsignal: unknown option, ignored (did you mean \"stopsignal\"?)"
        )
    );
    let toml = dir.path().join("vigil.toml");
    std::fs::write(&toml, &out.stdout).unwrap();
    let out = Command::new(vigil_bin())
        .arg("check-config")
        .arg(&toml)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
