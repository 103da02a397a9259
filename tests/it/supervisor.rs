//! Supervision end to end: real processes under the real binary.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::*;

const T: Duration = Duration::from_secs(20);

fn pid_of(d: &TestDaemon, name: &str) -> i32 {
    d.process(name)["pid"].as_i64().unwrap_or(0) as i32
}

#[test]
fn crash_is_respawned_at_once() {
    let d = TestDaemon::start(
        "[program.sleeper]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = true\n",
    );
    let first = d.wait_state(0, "sleeper", "RUNNING", T);
    let pid = first["pid"].as_i64().unwrap() as i32;
    let since = d.last_seq();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let exited = d.wait_state(since, "sleeper", "EXITED", T);
    assert_eq!(exited["expected"], false);
    assert_eq!(exited["signal"], "SIGKILL");
    assert_eq!(exited["exit_status"], -1);
    let again = d.wait_state(since, "sleeper", "RUNNING", T);
    let new_pid = again["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, pid);
    assert!(alive(new_pid));
    assert_eq!(d.process("sleeper")["restarts"], 1);
}

#[test]
fn crash_loop_goes_fatal_after_startretries_with_linear_backoff() {
    let d = TestDaemon::start(
        "[program.crashy]\ncommand = \"sh -c 'echo boom >&2; exit 3'\"\nstartsecs = 1\nstartretries = 2\n",
    );
    let fatal = d.wait_state(0, "crashy", "FATAL", Duration::from_secs(30));
    assert_eq!(fatal["from"], "BACKOFF");
    let evs = d.events(0);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|e| {
            e["type"] == "process_state" && e["process"] == "crashy" && e["to"] == "STARTING"
        })
        .collect();
    // startretries + 1 spawn attempts
    assert_eq!(starts.len(), 3, "{evs:?}");
    let backoffs: Vec<&Value> = evs
        .iter()
        .filter(|e| {
            e["type"] == "process_state" && e["process"] == "crashy" && e["to"] == "BACKOFF"
        })
        .collect();
    assert_eq!(backoffs.len(), 3);
    assert_eq!(
        backoffs[0]["reason"],
        "Exited too quickly (process log may have details)"
    );
    // The gap from the n-th BACKOFF to the next STARTING is n seconds (supervisord's linear backoff).
    for n in 0..2 {
        let gap = ts_ms(starts[n + 1]) - ts_ms(backoffs[n]);
        let want = 1000 * (n as i64 + 1);
        assert!(
            gap >= want - 5 && gap < want + 500,
            "backoff {n}: gap {gap} ms, want {want} ms"
        );
    }
    let p = d.process("crashy");
    assert_eq!(p["state"], "FATAL");
    assert_eq!(p["health"], "fatal");
    let health = d.get("/health");
    assert_eq!(health["programs"]["crashy"]["status"], "fatal");
    assert_eq!(health["programs"]["crashy"]["stderr_tail"][0], "boom");
    assert_eq!(health["status"], "degraded");
}

#[test]
fn missing_command_is_a_spawn_error_and_the_daemon_carries_on() {
    let d = TestDaemon::start(
        "[program.ghost]\ncommand = \"/nonexistent/bin/ghost\"\nstartretries = 1\n\n\
         [program.ok]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    let fatal = d.wait_state(0, "ghost", "FATAL", T);
    assert_eq!(fatal["type"], "process_state");
    let p = d.process("ghost");
    assert_eq!(p["spawnerr"], "can't find command '/nonexistent/bin/ghost'");
    d.wait_state(0, "ok", "RUNNING", T);
    assert_eq!(d.process("ok")["state"], "RUNNING");
}

#[test]
fn autorestart_unexpected_distinguishes_exit_codes() {
    let dir = tempdir();
    let flag = dir.path().join("ran-once");
    // First run exits 0 (expected): no restart. The `bad` one exits 5 (unexpected): restarted.
    let d = TestDaemon::start(&format!(
        "[program.good]\ncommand = \"sh -c 'sleep 0.2; exit 0'\"\nstartsecs = 0\nautorestart = \"unexpected\"\n\n\
         [program.bad]\ncommand = \"sh -c 'if [ -e {f} ]; then exec sleep 1000; fi; touch {f}; sleep 0.2; exit 5'\"\n\
         startsecs = 0\nautorestart = \"unexpected\"\nexitcodes = [0, 2]\n",
        f = flag.display()
    ));
    let good = d.wait_state(0, "good", "EXITED", T);
    assert_eq!(good["expected"], true);
    assert_eq!(good["exit_status"], 0);
    let bad = d.wait_state(0, "bad", "EXITED", T);
    assert_eq!(bad["expected"], false);
    assert_eq!(bad["exit_status"], 5);
    let since = bad["seq"].as_u64().unwrap();
    d.wait_state(since, "bad", "RUNNING", T);
    // good stayed EXITED
    assert_eq!(d.process("good")["state"], "EXITED");
    assert_eq!(d.process("good")["health"], "stopped");
}

#[test]
fn stopwaitsecs_escalates_to_sigkill() {
    let dir = tempdir();
    let s = script(
        dir.path(),
        "stubborn.sh",
        "trap '' TERM\nwhile true; do sleep 0.1; done",
    );
    let d = TestDaemon::start(&format!(
        "[program.stubborn]\ncommand = \"{}\"\nstartsecs = 0\nstopwaitsecs = 1\n",
        s.display()
    ));
    d.wait_state(0, "stubborn", "RUNNING", T);
    let since = d.last_seq();
    let t0 = std::time::Instant::now();
    let (status, body) = d.post("/api/programs/stubborn/stop");
    assert_eq!(status, 200, "{body}");
    let elapsed = t0.elapsed();
    let stopped = d.wait_state(since, "stubborn", "STOPPED", T);
    assert_eq!(stopped["signal"], "SIGKILL");
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert!(d.stderr_text().contains("killing 'stubborn'"));
}

#[test]
fn stopasgroup_reaches_grandchildren() {
    let dir = tempdir();
    let pidfile = dir.path().join("grandchild.pid");
    let s = script(
        dir.path(),
        "parent.sh",
        &format!("sleep 1000 &\necho $! > {}\nwait", pidfile.display()),
    );
    let d = TestDaemon::start(&format!(
        "[program.fam]\ncommand = \"{}\"\nstartsecs = 0\nstopasgroup = true\n",
        s.display()
    ));
    d.wait_state(0, "fam", "RUNNING", T);
    eventually(T, "grandchild pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty())
    });
    let gc: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(gc));
    let (status, _) = d.post("/api/programs/fam/stop");
    assert_eq!(status, 200);
    eventually(T, "grandchild to die", || !alive(gc));
}

#[test]
fn priority_orders_start_and_reverse_stop() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        "[program.c]\ncommand = \"sleep 1000\"\npriority = 30\nstartsecs = 0\n\n\
         [program.a]\ncommand = \"sleep 1000\"\npriority = 10\nstartsecs = 0\n\n\
         [program.b]\ncommand = \"sleep 1000\"\npriority = 20\nstartsecs = 0\n",
    );
    d.wait_state(0, "c", "RUNNING", T);
    let order = |evs: &[Value], to: &str| -> Vec<String> {
        evs.iter()
            .filter(|e| e["type"] == "process_state" && e["to"] == to)
            .map(|e| e["process"].as_str().unwrap().to_string())
            .collect()
    };
    let evs = d.events(0);
    assert_eq!(order(&evs, "STARTING"), vec!["a", "b", "c"]);
    let dir = d.dir.clone();
    let status = d.stop();
    assert!(status.success(), "{status:?}");
    // After exit, read the store through a new daemon on the same data dir.
    let d2 = TestDaemon::start_in(&dir, "");
    let evs = d2.events(0);
    assert_eq!(order(&evs, "STOPPING"), vec!["c", "b", "a"]);
    assert_eq!(order(&evs, "STOPPED"), vec!["c", "b", "a"]);
}

#[test]
fn logs_rotate_by_size() {
    let dir = tempdir();
    let log = dir.path().join("out.log");
    let d = TestDaemon::start(&format!(
        "[program.chatty]\ncommand = \"sh -c 'i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; exec sleep 1000'\"\n\
         startsecs = 0\nstdout_logfile = \"{}\"\nstdout_logfile_maxbytes = \"4KB\"\nstdout_logfile_backups = 2\n",
        log.display()
    ));
    d.wait_state(0, "chatty", "RUNNING", T);
    eventually(T, "rotation", || dir.path().join("out.log.2").exists());
    eventually(T, "last line", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("line-399-"))
    });
    for f in ["out.log", "out.log.1", "out.log.2"] {
        let len = std::fs::metadata(dir.path().join(f)).unwrap().len();
        assert!(len <= 4096, "{f} is {len} bytes");
    }
    assert!(!dir.path().join("out.log.3").exists());
    // the in-memory tail has the last lines
    let tail = d.get("/api/programs/chatty/log?lines=1");
    assert!(tail["lines"][0].as_str().unwrap().starts_with("line-399-"));
    let out = d.ctl(&["tail", "chatty", "-n", "2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("line-399-"));
}

#[test]
fn sighup_applies_only_what_changed() {
    let tmp = tempdir();
    let dir = tmp.path();
    let d = TestDaemon::start_in(
        dir,
        "[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [program.change]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [program.drop]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    for p in ["keep", "change", "drop"] {
        d.wait_state(0, p, "RUNNING", T);
    }
    let keep_pid = pid_of(&d, "keep");
    let change_pid = pid_of(&d, "change");
    let drop_pid = pid_of(&d, "drop");
    std::fs::write(
        &d.config,
        format!(
            "{}[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
             [program.change]\ncommand = \"sleep 2000\"\nstartsecs = 0\n\n\
             [program.new]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            header(dir)
        ),
    )
    .unwrap();
    let since = d.last_seq();
    d.signal(Signal::SIGHUP);
    let reloaded = d.wait_for(since, T, |e| e["type"] == "config_reloaded");
    assert_eq!(reloaded["added"], serde_json::json!(["new"]));
    assert_eq!(reloaded["changed"], serde_json::json!(["change"]));
    assert_eq!(reloaded["removed"], serde_json::json!(["drop"]));
    d.wait_state(since, "new", "RUNNING", T);
    d.wait_state(since, "change", "RUNNING", T);
    eventually(T, "dropped program gone", || !alive(drop_pid));
    assert_eq!(pid_of(&d, "keep"), keep_pid, "unchanged program untouched");
    assert_ne!(pid_of(&d, "change"), change_pid);
    assert!(!alive(change_pid));
    let names: Vec<String> = d.get("/api/programs")["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["change", "keep", "new"]);
}

#[test]
fn no_children_survive_a_sigkilled_vigil() {
    let d = TestDaemon::start(
        "[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [program.b]\ncommand = \"sleep 1000\"\nstartsecs = 0\nnumprocs = 2\nprocess_name = \"b_%(process_num)d\"\n",
    );
    for p in ["a", "b_0", "b_1"] {
        d.wait_state(0, p, "RUNNING", T);
    }
    let pids: Vec<i32> = ["a", "b_0", "b_1"].iter().map(|p| pid_of(&d, p)).collect();
    assert!(pids.iter().all(|p| alive(*p)));
    d.signal(Signal::SIGKILL);
    for pid in pids {
        eventually(T, "orphan child to die", || !alive(pid));
    }
}

#[test]
fn sigterm_stops_children_and_exits_zero() {
    let d = TestDaemon::start("[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state(0, "a", "RUNNING", T);
    let pid = pid_of(&d, "a");
    let status = d.stop();
    assert_eq!(status.code(), Some(0));
    assert!(!alive(pid));
}

#[test]
fn seq_keeps_increasing_across_restarts() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        "[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state(0, "a", "RUNNING", T);
    let before = d.events(0);
    let max_before = before
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(d.stop().success());
    let d2 = TestDaemon::start_in(
        tmp.path(),
        "[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d2.wait_state(max_before, "a", "RUNNING", T);
    let all = d2.events(0);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(
        all.iter()
            .any(|e| e["type"] == "daemon_started" && e["seq"].as_u64().unwrap() > max_before)
    );
}

#[test]
fn recovered_event_after_failures() {
    let dir = tempdir();
    let flag = dir.path().join("count");
    // Fails twice quickly, then stays up.
    let s = script(
        dir.path(),
        "flaky.sh",
        &format!(
            "n=$(cat {f} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {f}\n\
             if [ $n -le 2 ]; then exit 1; fi\nexec sleep 1000",
            f = flag.display()
        ),
    );
    let d = TestDaemon::start(&format!(
        "[program.flaky]\ncommand = \"{}\"\nstartsecs = 1\nstartretries = 5\n",
        s.display()
    ));
    let rec = d.wait_for(0, Duration::from_secs(30), |e| e["type"] == "recovered");
    assert_eq!(rec["process"], "flaky");
    assert_eq!(rec["after_failures"], 2);
    assert_eq!(d.process("flaky")["consecutive_failures"], 0);
}

#[test]
fn sse_resumes_from_last_event_id_without_loss() {
    let d = TestDaemon::start(
        "[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n[program.b]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state(0, "b", "RUNNING", T);
    let all = d.events(0);
    let n = all.len();
    assert!(n >= 4);
    // Resume from the middle: we must get exactly the rest, in order.
    let mid = all[n / 2]["seq"].as_u64().unwrap();
    let mut got = Vec::new();
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/api/events/stream", d.url))
        .header("Last-Event-ID", mid.to_string())
        .timeout(Duration::from_millis(1500))
        .send()
        .unwrap();
    use std::io::BufRead;
    for line in std::io::BufReader::new(resp).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("id:") {
            got.push(id.trim().parse::<u64>().unwrap());
        }
    }
    let want: Vec<u64> = all
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .filter(|s| *s > mid)
        .collect();
    assert_eq!(&got[..want.len()], &want[..]);
}

#[test]
fn ready_is_notified_once_autostart_programs_are_up() {
    let tmp = tempdir();
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    std::fs::write(
        tmp.path().join("vigil.toml"),
        format!(
            "{}[program.slow]\ncommand = \"sleep 1000\"\nstartsecs = 1\n",
            header(tmp.path())
        ),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let mut child = std::process::Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(tmp.path().join("vigil.toml"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut ready_at = None;
    let mut watchdogs = 0;
    while ready_at.is_none() || watchdogs < 2 {
        let n = sock.recv(&mut buf).expect("a notification");
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        if msg.contains("READY=1") {
            ready_at = Some(t0.elapsed());
        }
        if msg.contains("WATCHDOG=1") {
            watchdogs += 1;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // READY only once the program passed startsecs; WATCHDOG=1 keeps coming (every 200 ms).
    let ready_at = ready_at.unwrap();
    assert!(ready_at >= Duration::from_millis(990), "{ready_at:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn readiness_gates_running_and_dependents_wait_for_it() {
    let port = free_port();
    let tmp = tempdir();
    let d = TestDaemon::start_in(
        tmp.path(),
        &format!(
            "[program.app]\ncommand = \"sleep 1000\"\nstartsecs = 0\ndepends_on = [\"db\"]\n\n\
             [program.db]\ncommand = \"python3 -c 'import socket,time; time.sleep(1); s=socket.socket(); s.bind((\\\"127.0.0.1\\\",{port})); s.listen(); time.sleep(1000)'\"\n\
             startsecs = 0\nready_tcp = \"127.0.0.1:{port}\"\nready_interval = 0.1\n"
        ),
    );
    let waiting = d.wait_for(0, T, |e| e["type"] == "waiting_for_dependencies");
    assert_eq!(waiting["process"], "app");
    let db_running = d.wait_state(0, "db", "RUNNING", T);
    let db_starting = d
        .events(0)
        .into_iter()
        .find(|e| e["process"] == "db" && e["to"] == "STARTING")
        .unwrap();
    // RUNNING means ready: not before the port opened, about 1 s after the spawn.
    let ready_after = ts_ms(&db_running) - ts_ms(&db_starting);
    assert!(ready_after >= 900, "ready after {ready_after} ms");
    let app_starting = d.wait_state(0, "app", "STARTING", T);
    assert!(app_starting["seq"].as_u64() > db_running["seq"].as_u64());
    d.wait_state(0, "app", "RUNNING", T);
    // Stop: the dependent first.
    let dir = d.dir.clone();
    assert!(d.stop().success());
    let d2 = TestDaemon::start_in(&dir, "");
    let stops: Vec<String> = d2
        .events(0)
        .iter()
        .filter(|e| e["type"] == "process_state" && e["to"] == "STOPPED")
        .map(|e| e["process"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stops, vec!["app", "db"]);
}

#[test]
fn a_process_that_never_becomes_ready_is_a_failed_start() {
    let port = free_port();
    let d = TestDaemon::start(&format!(
        "[program.mute]\ncommand = \"sleep 1000\"\nstartsecs = 0\nstartretries = 0\n\
         ready_tcp = \"127.0.0.1:{port}\"\nready_interval = 0.05\nready_retries = 3\n"
    ));
    let fatal = d.wait_state(0, "mute", "FATAL", T);
    assert_eq!(fatal["type"], "process_state");
    let backoff = d
        .events(0)
        .into_iter()
        .find(|e| e["process"] == "mute" && e["to"] == "BACKOFF")
        .unwrap();
    let reason = backoff["reason"].as_str().unwrap();
    assert!(reason.starts_with("not ready after 3 probes"), "{reason}");
}

#[test]
fn update_applies_supervision_options_without_a_restart() {
    let tmp = tempdir();
    let dir = tmp.path();
    let d = TestDaemon::start_in(
        dir,
        "[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    d.wait_state(0, "keep", "RUNNING", T);
    let pid = pid_of(&d, "keep");
    std::fs::write(
        &d.config,
        format!(
            "{}[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\nautorestart = false\nstartretries = 9\nstopwaitsecs = 3\n",
            header(dir)
        ),
    )
    .unwrap();
    let since = d.last_seq();
    d.signal(Signal::SIGHUP);
    let r = d.wait_for(since, T, |e| e["type"] == "config_reloaded");
    assert_eq!(r["updated"], serde_json::json!(["keep"]));
    assert_eq!(r["changed"], serde_json::json!([]));
    assert_eq!(pid_of(&d, "keep"), pid, "not restarted");
    // The new autorestart = false applies: a kill now leaves it EXITED.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let ex = d.wait_state(since, "keep", "EXITED", T);
    assert_eq!(ex["expected"], false);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.process("keep")["state"], "EXITED");
}

#[test]
fn open_event_streams_do_not_hold_up_shutdown() {
    let d = TestDaemon::start("[program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    d.wait_state(0, "a", "RUNNING", T);
    let _stream = reqwest::blocking::Client::new()
        .get(format!("{}/api/events/stream", d.url))
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    let _follow = reqwest::blocking::Client::new()
        .get(format!("{}/api/programs/a/log?follow=true", d.url))
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    let stderr = d.stderr.clone();
    let status = d.stop();
    assert!(status.success());
    let log = stderr.lock().unwrap().clone();
    assert!(!log.contains("did not stop within"), "{log}");
}

#[test]
fn a_second_vigil_on_the_same_data_dir_is_refused() {
    let tmp = tempdir();
    let d = TestDaemon::start_in(tmp.path(), "");
    let out = std::process::Command::new(vigil_bin())
        .args(["run", "-c"])
        .arg(&d.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("another vigil (pid {})", d.pid())),
        "{err}"
    );
    // The first one is untouched.
    assert_eq!(d.get("/health")["status"], "ok");
}
