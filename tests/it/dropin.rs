//! supervisord drop-in (issue 14): the differences a migrating user trips over, each shown
//! with the real supervisord 4.3.0 and the real `supervisorctl` side by side on the same
//! `supervisord.conf` — unknown options, `supervisorctl reload` as a real restart, `exitstatus`
//! after a restart, the small XML-RPC items — and supervisord-dependent-startup (PyPI) running
//! under vigil as its README configures it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::compat::{Ctl, Supervisord, T, free_port, masked, python, spawn_supervisord, venv_bin};
use crate::support::*;

/// A listener that appends one JSON line per event (`eventname`, the payload) to `argv[1]`.
const RECORDER: &str = r#"
import json, sys
def w(s):
    sys.stdout.write(s); sys.stdout.flush()
while True:
    w('READY\n')
    hdr = dict(x.split(':', 1) for x in sys.stdin.readline().split())
    payload = sys.stdin.read(int(hdr['len']))
    with open(sys.argv[1], 'a') as f:
        f.write(json.dumps({'event': hdr['eventname'], 'payload': payload}) + '\n')
    w('RESULT 2\nOK')
"#;

/// The events a [`RECORDER`] wrote so far.
fn recorded(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["payload"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The same `supervisord.conf` (programs from `body(dir)`) under supervisord and under vigil,
/// each in its own directory with its own inet port.
struct Both {
    vigil: TestDaemon,
    vctl: Ctl,
    vdir: tempfile::TempDir,
    _supervisord: Supervisord,
    sctl: Ctl,
    sdir: tempfile::TempDir,
}

fn conf_text(dir: &Path, port: u16, body: &str) -> String {
    let d = dir.display();
    format!(
        "[supervisord]\nnodaemon=true\nlogfile={d}/main.log\npidfile={d}/sd.pid\n\
         childlogdir={d}/logs\nvigil_listen=127.0.0.1:0\nvigil_data_dir={d}/vigil-data\n\n\
         [inet_http_server]\nport=127.0.0.1:{port}\n\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
         {body}"
    )
}

impl Both {
    fn start(body: impl Fn(&Path) -> String) -> Both {
        let start = |dir: &Path| {
            std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
            std::fs::write(dir.join("recorder.py"), RECORDER).expect("recorder");
            let port = free_port();
            let path = dir.join("supervisord.conf");
            std::fs::write(&path, conf_text(dir, port, &body(dir))).expect("write conf");
            (port, path)
        };
        let vdir = tempdir();
        let (vport, vpath) = start(vdir.path());
        let vigil = TestDaemon::start_config(vdir.path(), &vpath);
        let sdir = tempdir();
        let (sport, spath) = start(sdir.path());
        let child = spawn_supervisord(&spath, sdir.path());
        let supervisord = Supervisord {
            child,
            url: format!("http://127.0.0.1:{sport}"),
            dir: tempdir(),
        };
        let (vctl, sctl) = (
            Ctl::new(&format!("http://127.0.0.1:{vport}")),
            Ctl::new(&format!("http://127.0.0.1:{sport}")),
        );
        eventually(T, "supervisord answers", || {
            sctl.run(&["version"]).code == 0
        });
        Both {
            vigil,
            vctl,
            vdir,
            _supervisord: supervisord,
            sctl,
            sdir,
        }
    }

    /// (vigil's dir and ctl, supervisord's dir and ctl).
    fn each(&self) -> [(&Path, &Ctl); 2] {
        [
            (self.vdir.path(), &self.vctl),
            (self.sdir.path(), &self.sctl),
        ]
    }

    /// Rewrite both config files with `body(dir)`.
    fn rewrite(&self, body: impl Fn(&Path) -> String) {
        for (dir, ctl) in self.each() {
            let port: u16 = ctl
                .url
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
            std::fs::write(
                dir.join("supervisord.conf"),
                conf_text(dir, port, &body(dir)),
            )
            .expect("rewrite");
        }
    }
}

fn vigil_cmd(args: &[&str]) -> std::process::Output {
    Command::new(vigil_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vigil")
}

// ---------------------------------------------------------------------------------------
// 1. Unknown options: warnings, the daemon starts; --strict refuses; vigil.toml refuses.

#[test]
fn unknown_options_are_located_warnings_and_strict_makes_them_errors() {
    let body = |d: &Path| {
        format!(
            "[program:dep_init]\ncommand=sleep 1000\nstartsecs=0\ndependent_startup=true\n\
             dependent_startup_wait_for=other:running\n\n\
             [program:other]\ncommand=sleep 1000\nstartsecs=0\ncomand=typo\n\n\
             [x-plugin:settings]\nanything=1\n\n\
             [eventlistener:rec]\ncommand=python3 {}/recorder.py {}/events.jsonl\n\
             events=TICK_60\nresult_handler_extra=1\n",
            d.display(),
            d.display()
        )
    };
    let both = Both::start(body);
    // supervisord accepts the file; so does vigil, and both run the programs.
    for (_, ctl) in both.each() {
        ctl.wait_status("dep_init and other RUNNING", |t| {
            t.lines()
                .filter(|l| l.starts_with("dep_init") || l.starts_with("other"))
                .all(|l| l.contains("RUNNING"))
                && t.matches("RUNNING").count() == 3
        });
    }
    let file = both.vdir.path().join("supervisord.conf");
    let f = file.display().to_string();
    let want = [
        format!("{f}:18:1: [program:dep_init] dependent_startup: unknown option, ignored"),
        format!("{f}:19:1: [program:dep_init] dependent_startup_wait_for: unknown option, ignored"),
        format!(
            "{f}:24:1: [program:other] comand: unknown option, ignored (did you mean \"command\"?)"
        ),
        format!("{f}:26:1: [x-plugin:settings]: unknown section, ignored"),
        format!("{f}:32:1: [eventlistener:rec] result_handler_extra: unknown option, ignored"),
    ];
    // The daemon logged each warning at start.
    let log = both.vigil.stderr_text();
    for w in &want {
        assert!(log.contains(w.as_str()), "missing {w:?} in:\n{log}");
    }
    // check-config: ok, with the warnings; --strict: the same lines as errors, exit 2.
    let o = vigil_cmd(&["check-config", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(": ok ("));
    for w in &want {
        assert!(err.contains(w.as_str()), "missing {w:?} in:\n{err}");
    }
    let o = vigil_cmd(&["check-config", "--strict", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let mut expected: Vec<String> = want
        .iter()
        .map(|w| w.split(" (did you mean").next().unwrap_or(w).to_string())
        .collect();
    expected[2] = want[2].clone();
    // The [x-plugin:settings] line carries the list of known sections.
    assert_eq!(lines.len(), want.len() + 1, "{err}");
    for (got, w) in lines.iter().zip(&expected) {
        assert!(got.starts_with(w.as_str()), "{got:?} vs {w:?}");
    }
    assert_eq!(
        lines[want.len()],
        format!("{f}: 5 error(s) (--strict: warnings are errors)")
    );
    // In vigil.toml an unknown key stays an error.
    let dir = tempdir();
    let toml = dir.path().join("vigil.toml");
    std::fs::write(
        &toml,
        "[program.bot]\ncommand = \"sleep 1\"\ndependent_startup = true\n",
    )
    .expect("write");
    let o = vigil_cmd(&["check-config", &toml.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "{}:3:1: program.bot.dependent_startup: unknown key",
            toml.display()
        )),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// 2. `supervisorctl reload` restarts everything, as a deploy script expects.

/// `getState` as `CODE NAME`, or the fault as `FAULT CODE STRING`.
const GET_STATE: &str = "import sys, xmlrpc.client as x\n\
    s = x.ServerProxy(sys.argv[1] + '/RPC2').supervisor\n\
    try:\n    st = s.getState(); print(st['statecode'], st['statename'])\n\
    except x.Fault as f:\n    print('FAULT', f.faultCode, f.faultString)\n";

#[test]
fn reload_stops_everything_rereads_and_starts_again_like_supervisord() {
    // `slow` holds its stop until the file `go` exists: the restart is observable meanwhile.
    let body = |version: &'static str| {
        move |d: &Path| {
            format!(
                "[program:app]\ncommand=sh -c 'echo {version} >> versions; exec sleep 1000'\n\
                 directory={d}\nstartsecs=0\n\n\
                 [program:slow]\ncommand=sh -c 'trap \"while [ ! -e go ]; do sleep 0.05; done; exit 0\" TERM; sleep 1000 & wait'\n\
                 directory={d}\nstartsecs=0\npriority=100\nstopasgroup=true\nstopwaitsecs=600\n\n\
                 [eventlistener:rec]\ncommand=python3 {d}/recorder.py {d}/events.jsonl\n\
                 events=SUPERVISOR_STATE_CHANGE,PROCESS_STATE\nbuffer_size=100\n",
                d = d.display()
            )
        }
    };
    let both = Both::start(body("v1"));
    let pids = |ctl: &Ctl| -> Vec<String> {
        ["app", "slow"]
            .iter()
            .map(|p| ctl.run(&["pid", p]).text.trim().to_string())
            .collect()
    };
    let mut before = Vec::new();
    for (dir, ctl) in both.each() {
        ctl.wait_status("app, slow, rec RUNNING", |t| {
            t.matches("RUNNING").count() == 3
        });
        eventually(
            T,
            "the listener saw SUPERVISOR_STATE_CHANGE_RUNNING",
            || {
                recorded(&dir.join("events.jsonl"))
                    .iter()
                    .any(|(e, _)| e == "SUPERVISOR_STATE_CHANGE_RUNNING")
            },
        );
        before.push((pids(ctl), ctl.run(&["pid"]).text));
    }
    // The deploy: a new command in the file, then `supervisorctl reload`.
    both.rewrite(body("v2"));
    for (_, ctl) in both.each() {
        ctl.expect(&["reload"], 0, "Restarted supervisord\n");
    }
    // While `slow` holds the restart: every command answers SHUTDOWN_STATE, on both.
    let (v, s) = (both.vctl.run(&["status"]), both.sctl.run(&["status"]));
    assert_eq!(
        (v.code, masked(&v.text)),
        (s.code, masked(&s.text)),
        "status during the restart\nvigil:\n{}\nsupervisord:\n{}",
        v.text,
        s.text
    );
    assert!(v.text.contains("SHUTDOWN_STATE"), "{}", v.text);
    // getState: supervisord refuses it too; vigil says RESTARTING.
    assert_eq!(
        python(&both.sctl.url, GET_STATE),
        "FAULT 6 SHUTDOWN_STATE\n"
    );
    assert_eq!(python(&both.vctl.url, GET_STATE), "0 RESTARTING\n");
    for (dir, _) in both.each() {
        std::fs::write(dir.join("go"), "").expect("go");
    }
    for ((dir, ctl), (old_pids, daemon_pid)) in both.each().into_iter().zip(&before) {
        ctl.wait_status("everything RUNNING again", |t| {
            t.matches("RUNNING").count() == 3
        });
        // The new command runs; every process is a new one; the daemon is the same.
        assert_eq!(
            std::fs::read_to_string(dir.join("versions")).expect("versions"),
            "v1\nv2\n"
        );
        let now = pids(ctl);
        assert_ne!(now[0], old_pids[0], "app restarted");
        assert_ne!(now[1], old_pids[1], "slow restarted although unchanged");
        assert_eq!(&ctl.run(&["pid"]).text, daemon_pid);
        assert_eq!(python(&ctl.url, GET_STATE), "1 RUNNING\n");
        eventually(
            T,
            "the new listener saw SUPERVISOR_STATE_CHANGE_RUNNING",
            || {
                recorded(&dir.join("events.jsonl"))
                    .iter()
                    .filter(|(e, _)| e.starts_with("SUPERVISOR_STATE_CHANGE"))
                    .count()
                    >= 3
            },
        );
    }
    // The listeners saw the same supervisor state changes, STOPPING before the first stop
    // (app, priority 999, stops first). (slow's STOPPED comes just before the listener itself
    // is stopped: supervisord mostly drops it with the listener's buffer, so it is left out.)
    let story = |dir: &Path| -> Vec<String> {
        recorded(&dir.join("events.jsonl"))
            .into_iter()
            .filter(|(e, p)| {
                e.starts_with("SUPERVISOR_STATE_CHANGE")
                    || (e == "PROCESS_STATE_STOPPED" && p.starts_with("processname:app "))
            })
            .map(|(e, p)| match p.split_whitespace().next() {
                Some(name) if e.starts_with("PROCESS") => format!("{e} {name}"),
                _ => e,
            })
            .collect()
    };
    let (v, s) = (story(both.vdir.path()), story(both.sdir.path()));
    assert_eq!(v, s, "vigil's listener vs supervisord's");
    assert_eq!(
        v,
        [
            "SUPERVISOR_STATE_CHANGE_RUNNING",
            "SUPERVISOR_STATE_CHANGE_STOPPING",
            "PROCESS_STATE_STOPPED processname:app",
            "SUPERVISOR_STATE_CHANGE_RUNNING",
        ]
    );
    assert!(
        both.vigil
            .stderr_text()
            .contains("received restart request via XML-RPC")
    );
}

// ---------------------------------------------------------------------------------------
// 3. The small items: exitstatus, NO_FILE, sendRemoteCommEvent, capture mode's PROCESS_LOG,
//    getAllConfigInfo after reloadConfig.

const SMALL_ITEMS: &str = r#"
import sys, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1] + '/RPC2').supervisor
def show(f):
    try:
        print(repr(f()))
    except x.Fault as e:
        print('FAULT', e.faultCode, e.faultString)
show(lambda: s.readProcessStdoutLog('nolog', 0, 100))
show(lambda: s.readProcessLog('nolog', -10, 0))
show(lambda: s.tailProcessStdoutLog('nolog', 0, 100))
for args in [('kind', 5), (7, True), ('k', 1.5), ('k', 2.0), ('k', [1, 'a', True]),
             ('k', {'a': 1, 'b': 'it\'s'}), ('k', 'plain'), ('k', 'wörld')]:
    show(lambda: s.sendRemoteCommEvent(*args))
"#;

const EXITSTATUS: &str = "import sys, xmlrpc.client as x\n\
    i = x.ServerProxy(sys.argv[1] + '/RPC2').supervisor.getProcessInfo('crash')\n\
    print(i['statename'], i['exitstatus'])\n";

const CONFIG_INFO: &str = r#"
import sys, xmlrpc.client as x
for c in x.ServerProxy(sys.argv[1] + '/RPC2').supervisor.getAllConfigInfo():
    print(c['name'], c['stdout_logfile'], c['stderr_logfile'], c['stdout_capture_maxbytes'],
          c['stdout_events_enabled'], c['stderr_events_enabled'])
"#;

#[test]
fn exitstatus_no_file_remote_comm_capture_and_config_info_like_supervisord() {
    let both = Both::start(|d: &Path| {
        format!(
            "[program:crash]\ncommand=sh -c 'if [ -e crashed ]; then exec sleep 1000; fi; touch crashed; exit 3'\n\
             directory={d}\nstartsecs=0\n\n\
             [program:nolog]\ncommand=sleep 1000\nstdout_logfile=NONE\nstartsecs=0\n\n\
             [program:comm]\ncommand=sh -c 'printf \"before <!--XSUPERVISOR:BEGIN-->hello comm<!--XSUPERVISOR:END--> after the tags, long enough\\n\"; exec sleep 1000'\n\
             stdout_capture_maxbytes=1MB\nstdout_events_enabled=true\nstartsecs=0\nautostart=false\n\n\
             [eventlistener:rec]\ncommand=python3 {d}/recorder.py {d}/events.jsonl\nstartsecs=0\n\
             events=REMOTE_COMMUNICATION,PROCESS_LOG_STDOUT,PROCESS_COMMUNICATION_STDOUT\n\
             buffer_size=100\n",
            d = d.display()
        )
    });
    for (_, ctl) in both.each() {
        ctl.wait_status("crash (after its first exit), nolog, rec RUNNING", |t| {
            t.matches("RUNNING").count() == 3
        });
    }
    let side_by_side = |what: &str, script: &str| {
        let (v, s) = (
            python(&both.vctl.url, script),
            python(&both.sctl.url, script),
        );
        assert_eq!(v, s, "{what}: vigil vs supervisord");
        v
    };
    // exitstatus: 0 once respawned (the crash's 3 belongs to the previous child), also after
    // a restart; -1 after a stop by SIGTERM.
    assert_eq!(side_by_side("exitstatus", EXITSTATUS), "RUNNING 0\n");
    for (_, ctl) in both.each() {
        ctl.expect(&["restart", "crash"], 0, "crash: stopped\ncrash: started\n");
    }
    assert_eq!(side_by_side("exitstatus", EXITSTATUS), "RUNNING 0\n");
    for (_, ctl) in both.each() {
        ctl.expect(&["stop", "crash"], 0, "crash: stopped\n");
    }
    assert_eq!(side_by_side("exitstatus", EXITSTATUS), "STOPPED -1\n");

    // NO_FILE without extra text; sendRemoteCommEvent takes any value, as str() of it.
    let out = side_by_side("small items", SMALL_ITEMS);
    assert!(
        out.starts_with("FAULT 20 NO_FILE\nFAULT 20 NO_FILE\n"),
        "{out}"
    );
    let remote = |dir: &Path| -> Vec<String> {
        recorded(&dir.join("events.jsonl"))
            .into_iter()
            .filter(|(e, _)| e == "REMOTE_COMMUNICATION")
            .map(|(_, p)| p)
            .collect()
    };
    for (dir, _) in both.each() {
        eventually(T, "8 REMOTE_COMMUNICATION events", || {
            remote(dir).len() == 8
        });
    }
    let (v, s) = (remote(both.vdir.path()), remote(both.sdir.path()));
    assert_eq!(v, s);
    assert_eq!(v[0], "type:kind\n5");
    assert_eq!(v[1], "type:7\nTrue");
    assert_eq!(v[4], "type:k\n[1, 'a', True]");

    // Capture mode: the captured text is a PROCESS_COMMUNICATION event and, as in
    // supervisord, also in the PROCESS_LOG_STDOUT events (the tags are not).
    for (_, ctl) in both.each() {
        ctl.expect(&["start", "comm"], 0, "comm: started\n");
    }
    let comm = |dir: &Path| -> (String, Vec<String>) {
        let rec = recorded(&dir.join("events.jsonl"));
        let log: String = rec
            .iter()
            .filter(|(e, _)| e == "PROCESS_LOG_STDOUT")
            .map(|(_, p)| p.split_once('\n').map_or("", |(_, d)| d))
            .collect();
        let caps = rec
            .iter()
            .filter(|(e, _)| e == "PROCESS_COMMUNICATION_STDOUT")
            .map(|(_, p)| p.split_once('\n').map_or("", |(_, d)| d).to_string())
            .collect();
        (log, caps)
    };
    for (dir, _) in both.each() {
        eventually(T, "the capture and the whole line as PROCESS_LOG", || {
            let (log, caps) = comm(dir);
            log.ends_with('\n') && !caps.is_empty()
        });
    }
    let (v, s) = (comm(both.vdir.path()), comm(both.sdir.path()));
    assert_eq!(v, s);
    assert_eq!(
        v,
        (
            "before hello comm after the tags, long enough\n".to_string(),
            vec!["hello comm".to_string()]
        )
    );

    // getAllConfigInfo after reloadConfig: AUTO logs read `auto`, NONE `none`.
    for (_, ctl) in both.each() {
        ctl.expect(&["reread"], 0, "No config updates to processes\n");
    }
    let info = side_by_side("getAllConfigInfo after reloadConfig", CONFIG_INFO);
    assert_eq!(
        info,
        "comm auto auto 1048576 True False\n\
         crash auto auto 0 False False\n\
         nolog none auto 0 False False\n\
         rec auto auto 0 False False\n"
    );
}

// ---------------------------------------------------------------------------------------
// 4. supervisord-dependent-startup (PyPI), configured as its README says.

#[test]
fn supervisord_dependent_startup_starts_the_programs_in_its_order() {
    let python = venv_bin("python");
    assert!(
        Command::new(&python)
            .args(["-c", "import supervisord_dependent_startup"])
            .status()
            .expect("python")
            .success(),
        "supervisord-dependent-startup is missing: run scripts/setup-test-deps"
    );
    // In file order app, db, init; in dependency order init (a one-shot that must have
    // exited), db (must be RUNNING), app. (init takes a moment, as init scripts do: the
    // plugin counts a service as done once it has seen its RUNNING event, and would start a
    // one-shot again that already exited before it handled that event — under supervisord
    // too, whose 1 s loop only makes that less likely.)
    let both = Both::start(|d: &Path| {
        format!(
            "[eventlistener:dependentstartup]\n\
             command={py} -m supervisord_dependent_startup -c {d}/supervisord.conf\n\
             autostart=true\nautorestart=unexpected\nstartretries=0\nexitcodes=0,3\n\
             events=PROCESS_STATE\n\n\
             [program:app]\ncommand=sh -c 'echo app >> order; exec sleep 1000'\ndirectory={d}\n\
             autostart=false\ndependent_startup=true\ndependent_startup_wait_for=db:running\n\n\
             [program:db]\ncommand=sh -c 'echo db >> order; exec sleep 1000'\ndirectory={d}\n\
             autostart=false\ndependent_startup=true\ndependent_startup_wait_for=init:exited\n\n\
             [program:init]\ncommand=sh -c 'echo init >> order; sleep 2'\ndirectory={d}\n\
             autostart=false\nautorestart=false\nstartsecs=0\ndependent_startup=true\n",
            py = python.display(),
            d = d.display()
        )
    });
    for (dir, ctl) in both.each() {
        let status = ctl.wait_status("app and db RUNNING, init EXITED", |t| {
            let state = |name: &str| {
                t.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string()
            };
            state("app ") == "RUNNING" && state("db ") == "RUNNING" && state("init ") == "EXITED"
        });
        assert_eq!(
            std::fs::read_to_string(dir.join("order")).expect("order"),
            "init\ndb\napp\n",
            "{status}"
        );
    }
    // Under vigil its options were ignored with a warning each, and it did the starting.
    let log = both.vigil.stderr_text();
    assert!(
        log.contains("[program:app] dependent_startup_wait_for: unknown option, ignored"),
        "{log}"
    );
    assert!(log.contains("spawned: 'init'"), "{log}");
}

// ---------------------------------------------------------------------------------------
// 5. The restart (SIGHUP too) reads the file first, and a SIGTERM during it wins.

#[test]
fn a_restart_checks_the_file_first_and_yields_to_a_shutdown() {
    use nix::sys::signal::Signal;
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).expect("logs");
    let conf = d.join("supervisord.conf");
    let good = |v: &str| {
        conf_text(
            d,
            free_port(),
            &format!(
                "[program:app]\ncommand=sh -c 'echo {v} >> starts; exec sleep 1000'\n\
                 directory={d}\nstartsecs=0\n\n\
                 [program:slow]\ncommand=sh -c 'trap \"while [ ! -e go ]; do sleep 0.05; done; exit 0\" TERM; sleep 1000 & wait'\n\
                 directory={d}\nstartsecs=0\npriority=100\nstopasgroup=true\nstopwaitsecs=600\n",
                d = d.display()
            ),
        )
    };
    std::fs::write(&conf, good("v1")).expect("write");
    std::fs::write(d.join("go"), "").expect("go");
    let mut vigil = TestDaemon::start_config(d, &conf);
    vigil.wait_state(0, "app", "RUNNING", T);
    vigil.wait_state(0, "slow", "RUNNING", T);
    let starts = || std::fs::read_to_string(d.join("starts")).unwrap_or_default();

    // A file with an error: nothing is stopped, the error is logged.
    let seq = vigil.last_seq();
    std::fs::write(
        &conf,
        good("v2").replace("command=sh -c 'echo v2", "comand=sh -c 'echo v2"),
    )
    .expect("write");
    vigil.signal(Signal::SIGHUP);
    eventually(T, "the reload refused", || {
        vigil
            .stderr_text()
            .contains("reload: keeping the running configuration")
    });
    assert!(
        vigil
            .events(seq)
            .iter()
            .all(|e| e["type"] != "process_state"),
        "{:?}",
        vigil.events(seq)
    );

    // SIGHUP with a good file: supervisord's restart.
    let seq = vigil.last_seq();
    std::fs::write(&conf, good("v2")).expect("write");
    vigil.signal(Signal::SIGHUP);
    let stopping = vigil.wait_for(seq, T, |e| {
        e["type"] == "supervisor_state" && e["state"] == "STOPPING"
    });
    let running = vigil.wait_for(stopping["seq"].as_u64().unwrap(), T, |e| {
        e["type"] == "supervisor_state" && e["state"] == "RUNNING"
    });
    let after = running["seq"].as_u64().unwrap();
    vigil.wait_state(after, "slow", "RUNNING", T);
    vigil.wait_state(after, "app", "RUNNING", T);
    eventually(T, "v2 started", || starts() == "v1\nv2\n");

    // A restart held by `slow`, then SIGTERM: nothing starts again, vigil exits cleanly.
    std::fs::remove_file(d.join("go")).expect("rm go");
    let seq = vigil.last_seq();
    vigil.signal(Signal::SIGHUP);
    vigil.wait_state(seq, "app", "STOPPED", T);
    vigil.wait_state(seq, "slow", "STOPPING", T);
    // Meanwhile the REST API says so too.
    let (code, body) = vigil.post("/api/programs/app/start");
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"], "shutting_down", "{body}");
    assert_eq!(
        body["message"], "supervisor is shutting down or restarting",
        "{body}"
    );
    vigil.signal(Signal::SIGTERM);
    eventually(T, "SIGTERM taken during the restart", || {
        vigil
            .stderr_text()
            .contains("received SIGTERM indicating exit request")
    });
    std::fs::write(d.join("go"), "").expect("go");
    let deadline = std::time::Instant::now() + T;
    let status = loop {
        if let Some(st) = vigil.child.try_wait().expect("wait") {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "vigil did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(starts(), "v1\nv2\n", "nothing started after the SIGTERM");
    assert!(vigil.stderr_text().contains("restart abandoned"));
}
