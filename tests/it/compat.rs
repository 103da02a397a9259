//! supervisord compatibility over the wire: the real `supervisorctl` 4.3.0 and Python's
//! `xmlrpc.client` (from `.venv`, installed by `scripts/setup-test-deps`) against the real
//! vigil — and, for the commands whose output can be compared, against the real supervisord
//! 4.3.0 on the same configuration in the same test (outputs compared with digits masked,
//! i.e. minus pids, uptimes and times).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

pub(crate) const T: Duration = Duration::from_secs(30);

pub(crate) fn venv() -> PathBuf {
    std::env::var_os("VIGIL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// A program from the test venv; a missing one fails the test (never skips it).
pub(crate) fn venv_bin(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-deps (it installs supervisor 4.3.0 into .venv; \
         set VIGIL_TEST_VENV to use another venv)",
        p.display()
    );
    p
}

#[derive(Debug)]
pub(crate) struct Out {
    pub code: i32,
    pub text: String,
}

/// `supervisorctl -s URL …`, run from an empty directory so that no `supervisord.conf` is
/// picked up by its config search.
pub(crate) struct Ctl {
    pub url: String,
    cwd: tempfile::TempDir,
    pub creds: Option<(String, String)>,
}

impl Ctl {
    pub fn new(url: &str) -> Ctl {
        Ctl {
            url: url.to_string(),
            cwd: tempdir(),
            creds: None,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(venv_bin("supervisorctl"));
        c.arg("-s").arg(&self.url);
        if let Some((u, p)) = &self.creds {
            c.arg("-u").arg(u).arg("-p").arg(p);
        }
        c.args(args)
            .current_dir(self.cwd.path())
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let o = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("supervisorctl {args:?}: {e}"));
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&o.stderr));
        Out {
            code: o.status.code().unwrap_or(-1),
            text,
        }
    }

    /// Run and expect exit code `code` and output `want` exactly.
    pub fn expect(&self, args: &[&str], code: i32, want: &str) {
        let o = self.run(args);
        assert_eq!(
            (o.code, o.text.as_str()),
            (code, want),
            "supervisorctl {args:?}"
        );
    }

    /// Poll `status` until `pred` holds.
    pub fn wait_status(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + T;
        loop {
            let o = self.run(&["status"]);
            if pred(&o.text) {
                return o.text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status:\n{}",
                o.text
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A Python snippet with `url` (the server URL) as `sys.argv[1]`; its stdout.
pub(crate) fn python(url: &str, script: &str) -> String {
    let o = Command::new(venv_bin("python"))
        .arg("-c")
        .arg(script)
        .arg(url)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Digits masked: pids, uptimes, dates and times compare equal.
pub(crate) fn masked(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

/// What supervisorctl printed, for comparing vigil with supervisord: digits masked, and
/// for start/stop/restart of a group or `all` the lines sorted — supervisord lists those
/// results in the order the processes happened to finish (SUPERVISORD.md §4.3).
fn comparable(args: &[&str], o: &Out) -> (i32, String) {
    let many = matches!(args.first(), Some(&("start" | "stop" | "restart")))
        && args[1..].iter().any(|a| *a == "all" || a.ends_with(":*"));
    let text = masked(&o.text);
    if !many {
        return (o.code, text);
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    (o.code, lines.join("\n"))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The real supervisord 4.3.0, in the foreground, on a temp dir; SIGTERMed on drop.
pub(crate) struct Supervisord {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Supervisord {
    pub fn start(programs: &str) -> Supervisord {
        let dir = tempdir();
        let port = free_port();
        let d = dir.path();
        std::fs::create_dir_all(d.join("logs")).expect("logs dir");
        let conf = d.join("supervisord.conf");
        std::fs::write(
            &conf,
            format!(
                "[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
                 childlogdir={d}/logs\n\n[inet_http_server]\nport=127.0.0.1:{port}\n\n\
                 [rpcinterface:supervisor]\n\
                 supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
                 {programs}",
                d = d.display()
            ),
        )
        .expect("write supervisord.conf");
        let log = std::fs::File::create(d.join("stdout.log")).expect("log");
        let child = Command::new(venv_bin("supervisord"))
            .arg("-c")
            .arg(&conf)
            .current_dir(d)
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn supervisord");
        let s = Supervisord {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let ctl = Ctl::new(&s.url);
        let deadline = Instant::now() + T;
        while ctl.run(&["version"]).code != 0 {
            assert!(
                Instant::now() < deadline,
                "supervisord did not come up:\n{}",
                std::fs::read_to_string(s.dir.path().join("stdout.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real supervisord on `conf`, its output in `dir/out.log`.
pub(crate) fn spawn_supervisord(conf: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("out.log")).expect("log");
    Command::new(venv_bin("supervisord"))
        .arg("-c")
        .arg(conf)
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("spawn supervisord")
}

/// The same programs for vigil (vigil.toml) …
fn vigil_programs(dir: &Path) -> String {
    format!(
        "[program.sleeper]\ncommand = \"sleep 1000\"\n\n\
         [program.manual]\ncommand = \"sleep 1000\"\nautostart = false\n\n\
         [program.a]\ncommand = \"sleep 1000\"\n[program.b]\ncommand = \"sleep 1000\"\n\
         [group.grp]\nprograms = [\"a\", \"b\"]\n\n\
         [program.multi]\ncommand = \"sleep 1000\"\nnumprocs = 2\n\
         process_name = \"%(program_name)s_%(process_num)02d\"\nautostart = false\n\n\
         [program.nofile]\ncommand = \"no-such-command-xyz\"\nautostart = false\n\n\
         [program.notexec]\ncommand = \"{}\"\nautostart = false\n",
        dir.join("notexec.sh").display()
    )
}

/// … and for supervisord.
fn supervisord_programs(dir: &Path) -> String {
    format!(
        "[program:sleeper]\ncommand=sleep 1000\n\n\
         [program:manual]\ncommand=sleep 1000\nautostart=false\n\n\
         [program:a]\ncommand=sleep 1000\n[program:b]\ncommand=sleep 1000\n\
         [group:grp]\nprograms=a,b\n\n\
         [program:multi]\ncommand=sleep 1000\nnumprocs=2\n\
         process_name=%(program_name)s_%(process_num)02d\nautostart=false\n\n\
         [program:nofile]\ncommand=no-such-command-xyz\nautostart=false\n\n\
         [program:notexec]\ncommand={}\nautostart=false\n",
        dir.join("notexec.sh").display()
    )
}

/// vigil and supervisord on the same programs, both with sleeper, grp:a, grp:b RUNNING.
fn both() -> (TestDaemon, Ctl, Supervisord, Ctl, tempfile::TempDir) {
    let files = tempdir();
    let notexec = files.path().join("notexec.sh");
    std::fs::write(&notexec, "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&notexec, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let d = TestDaemon::start(&vigil_programs(files.path()));
    let s = Supervisord::start(&supervisord_programs(files.path()));
    let (vc, sc) = (Ctl::new(&d.url), Ctl::new(&s.url));
    for c in [&vc, &sc] {
        c.wait_status("three RUNNING processes", |t| {
            t.matches("RUNNING").count() == 3 && !t.contains("STARTING")
        });
    }
    (d, vc, s, sc, files)
}

#[test]
fn supervisorctl_output_matches_supervisord() {
    let (_d, vigil, _s, supervisord, _files) = both();
    let steps: &[&[&str]] = &[
        &["status"],
        &["avail"],
        &["version"],
        &["start", "manual"],
        &["start", "manual"],
        &["start", "multi:*"],
        &["status", "multi:*"],
        &["stop", "grp:*"],
        &["stop", "grp:a"],
        &["stop", "manual", "multi:multi_00"],
        &["status"],
        &["status", "nosuch"],
        &["status", "nosuch:*"],
        &["start", "nosuch"],
        &["start", "nosuch:*"],
        &["stop", "nosuch"],
        &["start", "nofile"],
        &["start", "notexec"],
        &["start"],
        &["pid", "nosuch"],
        &["start", "all"],
        &["status"],
        &["signal", "BOGUS", "sleeper"],
        &["signal", "HUP", "manual:nosuch"],
        &["tail", "nosuch"],
        &["clear", "nosuch"],
        &["reread"],
        &["avail"],
    ];
    for args in steps {
        let (v, s) = (vigil.run(args), supervisord.run(args));
        assert_eq!(
            comparable(args, &v),
            comparable(args, &s),
            "supervisorctl {args:?}\nvigil:\n{}\nsupervisord:\n{}",
            v.text,
            s.text
        );
    }
    // `stop all`: the same lines; vigil also stops in reverse priority order (supervisord#217).
    let (v, s) = (
        vigil.run(&["stop", "all"]),
        supervisord.run(&["stop", "all"]),
    );
    assert_eq!(
        comparable(&["stop", "all"], &v),
        comparable(&["stop", "all"], &s)
    );
    let (v, s) = (vigil.run(&["status"]), supervisord.run(&["status"]));
    assert_eq!((v.code, masked(&v.text)), (s.code, masked(&s.text)));
}

/// The same probes through Python's `xmlrpc.client` against both: fault codes and texts,
/// introspection, ProcessInfo and config-info fields, multicall's unwrapped results.
const PROBE: &str = r#"
import json, sys, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1] + '/RPC2')
sv = s.supervisor
out = {}
def probe(name, f):
    try:
        out[name] = ['ok', f()]
    except x.Fault as e:
        out[name] = ['fault', e.faultCode, e.faultString]
probe('listMethods', lambda: s.system.listMethods())
probe('signatures', lambda: [s.system.methodSignature(m) for m in s.system.listMethods()])
probe('help', lambda: s.system.methodHelp('supervisor.startProcess'))
probe('help_bad', lambda: s.system.methodHelp('nope'))
probe('sig_bad', lambda: s.system.methodSignature('supervisor.nope'))
probe('api', sv.getAPIVersion)
probe('version', sv.getVersion)
probe('supversion', sv.getSupervisorVersion)
probe('ident', sv.getIdentification)
probe('state', sv.getState)
probe('unknown', lambda: sv.nope())
probe('private', lambda: getattr(sv, '_update')('x'))
probe('three_parts', lambda: getattr(s, 'a.b.c')())
probe('no_namespace', lambda: getattr(s, 'nope.getPID')())
probe('bad_arity', lambda: sv.getPID(1))
probe('start_bad_name', lambda: sv.startProcess('nosuch'))
probe('start_bad_proc', lambda: sv.startProcess('grp:nosuch'))
probe('start_running', lambda: sv.startProcess('sleeper'))
probe('start_nofile', lambda: sv.startProcess('nofile'))
probe('start_group_bad', lambda: sv.startProcessGroup('nosuch'))
probe('stop_not_running', lambda: sv.stopProcess('manual'))
probe('stop_group_bad', lambda: sv.stopProcessGroup('nosuch'))
probe('signal_bad', lambda: sv.signalProcess('sleeper', 'BOGUS'))
probe('signal_not_running', lambda: sv.signalProcess('manual', 'HUP'))
probe('signal_group_bad_signal', lambda: sv.signalProcessGroup('grp', 'BOGUS'))
probe('signal_all_nothing', lambda: sv.signalProcessGroup('multi', 'HUP'))
probe('info_group', lambda: sv.getProcessInfo('grp:*'))
probe('info_keys', lambda: sorted(sv.getProcessInfo('sleeper').keys()))
probe('info_running', lambda: {k: v for k, v in sv.getProcessInfo('grp:a').items() if k in ('name', 'group', 'state', 'statename', 'spawnerr', 'exitstatus', 'stop')})
probe('info_manual', lambda: {k: v for k, v in sv.getProcessInfo('manual').items() if k not in ('now', 'logfile', 'stdout_logfile', 'stderr_logfile')})
probe('all', lambda: [(p['group'], p['name'], p['statename']) for p in sv.getAllProcessInfo()])
probe('config_keys', lambda: sorted(sv.getAllConfigInfo()[0].keys()))
probe('config', lambda: [{k: c[k] for k in ('name', 'group', 'inuse', 'autostart', 'group_prio', 'process_prio', 'exitcodes', 'startsecs', 'startretries', 'stopsignal', 'stopwaitsecs', 'killasgroup', 'redirect_stderr', 'uid', 'directory', 'serverurl', 'stdout_logfile_backups', 'stdout_logfile_maxbytes', 'stdout_capture_maxbytes', 'stdout_events_enabled', 'stdout_syslog')} for c in sv.getAllConfigInfo()])
probe('read_bad_args', lambda: sv.readProcessStdoutLog('sleeper', -5, 3))
probe('read_bad_args2', lambda: sv.readProcessStdoutLog('sleeper', 5, -3))
probe('read_bad_name', lambda: sv.readProcessStdoutLog('nosuch', 0, 0))
probe('read_group', lambda: sv.readProcessStderrLog('grp:*', 0, 0))
probe('read_empty', lambda: sv.readProcessStdoutLog('sleeper', 0, 0))
probe('tail_empty', lambda: sv.tailProcessStdoutLog('manual', 0, 10))
probe('readlog_bad', lambda: sv.readLog(-5, 3))
probe('clear_bad', lambda: sv.clearProcessLogs('nosuch'))
probe('clear', lambda: sv.clearProcessLogs('grp:b'))
probe('remove_running', lambda: sv.removeProcessGroup('grp'))
probe('remove_bad', lambda: sv.removeProcessGroup('nosuch'))
probe('add_added', lambda: sv.addProcessGroup('grp'))
probe('add_bad', lambda: sv.addProcessGroup('nosuch'))
probe('stdin_bad', lambda: sv.sendProcessStdin('nosuch', 'x'))
probe('stdin_not_running', lambda: sv.sendProcessStdin('manual', 'x'))
probe('stdin_type', lambda: sv.sendProcessStdin('sleeper', 5))
probe('multicall', lambda: s.system.multicall([
    {'methodName': 'supervisor.getAPIVersion'},
    {'methodName': 'supervisor.nope'},
    {'methodName': 'system.multicall', 'params': [[]]},
    {'methodName': 'supervisor.getProcessInfo', 'params': ['nosuch']},
    {'methodName': 'supervisor.getState', 'params': []},
]))
probe('reread', lambda: sv.reloadConfig())
probe('remote', lambda: sv.sendRemoteCommEvent('type', 'data'))
probe('start_nowait', lambda: sv.startProcess('manual', False))
probe('stop_nowait_group', lambda: sv.stopProcessGroup('manual', False))
print(json.dumps(out, sort_keys=True))
"#;

#[test]
fn xmlrpc_faults_and_fields_match_supervisord() {
    let (d, _vc, s, _sc, _files) = both();
    let v: Value = serde_json::from_str(&python(&d.url, PROBE)).expect("vigil probe json");
    let w: Value = serde_json::from_str(&python(&s.url, PROBE)).expect("supervisord probe json");
    let (v, w) = (v.as_object().expect("obj"), w.as_object().expect("obj"));
    let mut diffs = Vec::new();
    for (k, want) in w {
        if v.get(k) != Some(want) {
            diffs.push(format!(
                "{k}:\n  vigil:       {}\n  supervisord: {want}",
                v.get(k).unwrap_or(&Value::Null)
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    assert_eq!(v.len(), w.len());
    // A few absolute facts on top of "same as supervisord".
    assert_eq!(v["version"], serde_json::json!(["ok", "3.0"]));
    assert_eq!(v["listMethods"][1].as_array().map(Vec::len), Some(41));
    assert_eq!(
        v["multicall"][1][0], "3.0",
        "multicall results are not wrapped"
    );
}

#[test]
fn restart_by_name_group_and_all() {
    let d = TestDaemon::start(
        "[program.one]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         [program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         [program.b]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         [group.grp]\nprograms = [\"a\", \"b\"]\n",
    );
    let c = Ctl::new(&d.url);
    c.wait_status("all RUNNING", |t| t.matches("RUNNING").count() == 3);
    let pid = |name: &str| c.run(&["pid", name]).text.trim().to_string();
    let before = (pid("one"), pid("grp:a"), pid("grp:b"));
    c.expect(&["restart", "one"], 0, "one: stopped\none: started\n");
    assert_ne!(pid("one"), before.0);
    assert_eq!(pid("grp:a"), before.1);
    c.expect(
        &["restart", "grp:*"],
        0,
        "grp:a: stopped\ngrp:b: stopped\ngrp:a: started\ngrp:b: started\n",
    );
    assert_ne!(pid("grp:a"), before.1);
    assert_ne!(pid("grp:b"), before.2);
    let mid = pid("one");
    let o = c.run(&["restart", "all"]);
    assert_eq!(o.code, 0, "{o:?}");
    let mut lines: Vec<&str> = o.text.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "grp:a: started",
            "grp:a: stopped",
            "grp:b: started",
            "grp:b: stopped",
            "one: started",
            "one: stopped"
        ]
    );
    assert_ne!(pid("one"), mid);
    // The same state through vigil's own API and CLI.
    let p = d.process("one");
    assert_eq!(p["state"], "RUNNING");
    assert_eq!(p["pid"].to_string(), pid("one"));
    let out = d.ctl(&["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("one"));
}

#[test]
fn signal_and_pid() {
    let dir = tempdir();
    let trap = script(
        dir.path(),
        "trap.sh",
        "trap 'echo got USR1' USR1\necho ready\nwhile true; do sleep 0.1; done",
    );
    let d = TestDaemon::start(&format!(
        "[program.trapper]\ncommand = \"{}\"\nstartsecs = 0\n\
         [program.a]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         [program.b]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
         [group.grp]\nprograms = [\"a\", \"b\"]\n\
         [program.idle]\ncommand = \"sleep 1000\"\nautostart = false\n",
        trap.display()
    ));
    let c = Ctl::new(&d.url);
    c.wait_status("all RUNNING", |t| t.matches("RUNNING").count() == 3);
    // pid: the daemon's own, one process's, all.
    c.expect(&["pid"], 0, &format!("{}\n", d.pid()));
    let trapper = d.process("trapper")["pid"].as_i64().expect("pid");
    c.expect(&["pid", "trapper"], 0, &format!("{trapper}\n"));
    c.expect(&["pid", "idle"], 7, "0\n");
    let all = c.run(&["pid", "all"]);
    assert_eq!(all.text.lines().count(), 4, "{all:?}");
    assert!(all.text.lines().any(|l| l == trapper.to_string()));
    // signal by name; the program sees it and keeps running.
    c.wait_status("trapper ready", |_| {
        c.run(&["tail", "trapper"]).text.contains("ready")
    });
    c.expect(&["signal", "USR1", "trapper"], 0, "trapper: signalled\n");
    c.wait_status("the trap to fire", |_| {
        c.run(&["tail", "trapper"]).text.contains("got USR1")
    });
    c.expect(&["pid", "trapper"], 0, &format!("{trapper}\n"));
    // … by number, to a group, to all (not-running processes are skipped).
    c.expect(&["signal", "10", "trapper"], 0, "trapper: signalled\n");
    c.expect(
        &["signal", "CONT", "grp:*"],
        0,
        "grp:a: signalled\ngrp:b: signalled\n",
    );
    let o = c.run(&["signal", "CONT", "all"]);
    assert_eq!(o.code, 0);
    assert_eq!(o.text.lines().count(), 3, "{o:?}");
    c.expect(&["signal", "HUP", "idle"], 7, "idle: ERROR (not running)\n");
    c.expect(
        &["signal", "NOPE", "idle"],
        1,
        "idle: ERROR (bad signal name)\n",
    );
    // A signal that ends it: vigil sees the death and restarts it (autorestart=unexpected).
    let since = d.last_seq();
    c.expect(&["signal", "KILL", "grp:a"], 0, "grp:a: signalled\n");
    d.wait_state(since, "a", "EXITED", T);
    d.wait_state(since, "a", "RUNNING", T);
}

#[test]
fn tail_tail_f_and_clear() {
    let dir = tempdir();
    let talker = script(
        dir.path(),
        "talker.sh",
        "i=0\necho err-line >&2\nwhile true; do i=$((i+1)); echo \"line $i\"; sleep 0.01; done",
    );
    let d = TestDaemon::start(&format!(
        "[program.talker]\ncommand = \"{}\"\nstartsecs = 0\n\
         [program.quiet]\ncommand = \"sleep 1000\"\nautostart = false\n\
         [program.nolog]\ncommand = \"sleep 1000\"\nstdout_logfile = \"NONE\"\nautostart = false\n",
        talker.display()
    ));
    let c = Ctl::new(&d.url);
    c.wait_status("talker RUNNING", |t| t.contains("RUNNING"));
    c.wait_status("talker to talk", |_| {
        c.run(&["tail", "talker"]).text.contains("line 250\n")
    });
    // tail: the last 1600 bytes (default), -N bytes, the stderr channel.
    let o = c.run(&["tail", "talker"]);
    assert_eq!(o.code, 0);
    assert!(
        o.text.len() <= 1601 && o.text.len() > 1000,
        "{}",
        o.text.len()
    );
    let o = c.run(&["tail", "-20", "talker"]);
    assert!(o.text.len() <= 21, "{o:?}");
    c.expect(&["tail", "talker", "stderr"], 0, "err-line\n\n");
    c.expect(&["tail", "quiet"], 0, "\n");
    c.expect(&["tail", "nolog"], 1, "nolog: ERROR (no log file)\n");
    c.expect(
        &["tail", "nosuch"],
        1,
        "nosuch: ERROR (no such process name)\n",
    );

    // tail -f: a few consecutive lines as they come, then kill it.
    let mut child = c
        .command(&["tail", "-f", "talker"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tail -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(T).expect("first line"),
        "==> Press Ctrl-C to exit <=="
    );
    let mut numbers = Vec::new();
    while numbers.len() < 40 {
        let line = rx.recv_timeout(T).expect("a line from tail -f");
        if let Some(n) = line
            .strip_prefix("line ")
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbers.push(n);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // The first line may be cut (the stream starts 1024 bytes before the end); after it,
    // every line exactly once and in order: nothing lost, nothing repeated.
    for w in numbers[1..].windows(2) {
        assert_eq!(w[1], w[0] + 1, "{numbers:?}");
    }

    // clear: the files are emptied; the log fills up again.
    c.expect(&["clear", "talker"], 0, "talker: cleared\n");
    let o = c.run(&["tail", "talker", "stderr"]);
    assert_eq!(o.text, "\n", "stderr after clear");
    c.wait_status("new output after clear", |_| {
        let t = c.run(&["tail", "talker"]).text;
        t.contains("line") && t.len() < 1600
    });
    let o = c.run(&["clear", "all"]);
    assert_eq!(o.code, 0);
    let mut lines: Vec<&str> = o.text.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec!["nolog: cleared", "quiet: cleared", "talker: cleared"]
    );
}

#[test]
fn maintail_shows_the_daemon_log() {
    let d = TestDaemon::start("[program.x]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    let c = Ctl::new(&d.url);
    c.wait_status("x RUNNING", |t| t.contains("RUNNING"));
    let o = c.run(&["maintail"]);
    assert_eq!(o.code, 0);
    assert!(o.text.contains("spawned: 'x' with pid"), "{}", o.text);
    assert!(
        o.text.contains("success: x entered RUNNING state"),
        "{}",
        o.text
    );
    assert!(!o.text.contains('\x1b'), "no colour codes in the main log");
    let o = c.run(&["maintail", "-30"]);
    assert!(o.text.len() <= 31, "{o:?}");
    // maintail -f follows: a stop shows up in it.
    let mut child = c
        .command(&["maintail", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("maintail -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(T).expect("banner"),
        "==> Press Ctrl-C to exit <=="
    );
    c.expect(&["stop", "x"], 0, "x: stopped\n");
    let deadline = Instant::now() + T;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the stop in maintail -f");
        if line.contains("stopped: x (terminated by SIGTERM)") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn reread_update_add_remove() {
    let dir = tempdir();
    let base = "[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
                [program.change]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
                [program.gone]\ncommand = \"sleep 1000\"\nstartsecs = 0\n";
    let d = TestDaemon::start_in(dir.path(), base);
    let c = Ctl::new(&d.url);
    c.wait_status("all RUNNING", |t| t.matches("RUNNING").count() == 3);
    c.expect(&["reread"], 0, "No config updates to processes\n");
    let keep_pid = c.run(&["pid", "keep"]).text;
    std::fs::write(
        &d.config,
        format!(
            "{}[program.keep]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
             [program.change]\ncommand = \"sleep 1001\"\nstartsecs = 0\n\
             [program.fresh]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            header(dir.path())
        ),
    )
    .expect("rewrite config");
    c.expect(
        &["reread"],
        0,
        "change: changed\nfresh: available\ngone: disappeared\n",
    );
    // reread changes nothing that runs.
    assert_eq!(c.run(&["status"]).text.matches("RUNNING").count(), 3);
    let avail = c.run(&["avail"]).text;
    let line = format!("{:<32} {:<9} {:<9} {}", "fresh", "avail", "auto", "999:999");
    assert!(avail.lines().any(|l| l == line), "{avail}");
    assert!(!avail.contains("gone"), "{avail}");
    c.expect(
        &["update"],
        0,
        "gone: stopped\ngone: removed process group\nchange: stopped\n\
         change: updated process group\nfresh: added process group\n",
    );
    let status = c.wait_status("change and fresh RUNNING", |t| {
        t.matches("RUNNING").count() == 3 && !t.contains("STARTING")
    });
    assert!(!status.contains("gone"), "{status}");
    assert!(status.contains("fresh"), "{status}");
    assert_eq!(c.run(&["pid", "keep"]).text, keep_pid, "unchanged stays");
    c.expect(&["reread"], 0, "No config updates to processes\n");
    // remove / add by hand.
    c.expect(
        &["remove", "fresh"],
        1,
        "ERROR: process/group still running: fresh\n",
    );
    c.expect(&["stop", "fresh"], 0, "fresh: stopped\n");
    c.expect(&["remove", "fresh"], 0, "fresh: removed process group\n");
    c.expect(&["reread"], 0, "fresh: available\n");
    c.expect(&["add", "fresh"], 0, "fresh: added process group\n");
    c.expect(
        &["add", "fresh"],
        0,
        "ERROR: process group already active\n",
    );
    c.expect(
        &["add", "nosuch"],
        1,
        "ERROR: no such process/group: nosuch\n",
    );
    c.wait_status("fresh RUNNING again", |t| {
        t.lines()
            .any(|l| l.starts_with("fresh ") && l.contains("RUNNING"))
    });
    // A config with an error: reread says so, nothing changes.
    std::fs::write(&d.config, format!("{}[program.bad]\n", header(dir.path()))).expect("write");
    let o = c.run(&["reread"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.text.starts_with("ERROR: CANT_REREAD: "), "{o:?}");
    assert!(o.text.contains("command"), "{o:?}");
}

#[test]
fn reload_applies_the_edited_config() {
    let dir = tempdir();
    let d = TestDaemon::start_in(
        dir.path(),
        "[program.old]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
    );
    let c = Ctl::new(&d.url);
    c.wait_status("old RUNNING", |t| t.contains("RUNNING"));
    std::fs::write(
        &d.config,
        format!(
            "{}[program.old]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\
             [program.new]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            header(dir.path())
        ),
    )
    .expect("rewrite");
    c.expect(&["reload"], 0, "Restarted supervisord\n");
    c.wait_status("new RUNNING", |t| t.matches("RUNNING").count() == 2);
    // Same daemon (an in-process reload, as supervisord's).
    c.expect(&["pid"], 0, &format!("{}\n", d.pid()));
}

#[test]
fn shutdown_stops_vigil_and_its_children() {
    let mut d = TestDaemon::start("[program.x]\ncommand = \"sleep 1000\"\nstartsecs = 0\n");
    let c = Ctl::new(&d.url);
    c.wait_status("x RUNNING", |t| t.contains("RUNNING"));
    let child_pid = d.process("x")["pid"].as_i64().expect("pid") as i32;
    c.expect(&["shutdown"], 0, "Shut down\n");
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(st) = d.child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "vigil did not exit after shutdown"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(!alive(child_pid));
    assert!(
        d.stderr_text()
            .contains("received shutdown request via XML-RPC")
    );
}

#[test]
fn send_process_stdin_via_xmlrpc_client() {
    let d = TestDaemon::start(
        "[program.echo]\ncommand = \"sh -c 'while read l; do echo got:$l; done'\"\nstartsecs = 0\n\
         [program.idle]\ncommand = \"sleep 1000\"\nautostart = false\n\
         [program.closed]\ncommand = \"sh -c 'exec 0<&-; sleep 1000'\"\nstartsecs = 0\n",
    );
    let c = Ctl::new(&d.url);
    c.wait_status("RUNNING", |t| t.matches("RUNNING").count() == 2);
    let out = python(
        &d.url,
        r#"
import sys, time, xmlrpc.client as x
s = x.ServerProxy(sys.argv[1] + '/RPC2').supervisor
print(s.sendProcessStdin('echo', 'hello\n'))
print(s.sendProcessStdin('echo', 'wörld\n'))
for name, data in (('idle', 'x'), ('nosuch', 'x'), ('echo', 5)):
    try:
        s.sendProcessStdin(name, data)
    except x.Fault as f:
        print(f.faultCode, f.faultString)
for i in range(200):
    log = s.readProcessStdoutLog('echo', 0, 0)
    if 'got:wörld' in log:
        break
    time.sleep(0.05)
print(repr(log))
# A process that closed its stdin: NO_FILE (once the pipe is known broken).
codes = set()
for i in range(3):
    try:
        s.sendProcessStdin('closed', 'x' * 100000)
    except x.Fault as f:
        codes.add(f.faultCode)
print(sorted(codes))
"#,
    );
    assert_eq!(
        out,
        "True\nTrue\n70 NOT_RUNNING: idle\n10 BAD_NAME: nosuch\n2 INCORRECT_PARAMETERS: 5\n\
         'got:hello\\ngot:wörld\\n'\n[20]\n"
    );
}

/// `[rpc]`: an inet server on another port with basic auth, and a Unix socket.
#[test]
fn basic_auth_and_unix_socket() {
    let dir = tempdir();
    let port = free_port();
    let sock = dir.path().join("rpc.sock");
    let d = TestDaemon::start_in(
        dir.path(),
        &format!(
            "[rpc]\nidentifier = \"desk-1\"\n\
             [rpc.inet]\nport = \"127.0.0.1:{port}\"\nusername = \"user\"\npassword = \"123\"\n\
             [rpc.unix]\nfile = \"{}\"\nchmod = \"0700\"\n\n\
             [program.x]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
            sock.display()
        ),
    );
    let inet = format!("http://127.0.0.1:{port}");
    let mut c = Ctl::new(&inet);
    // (supervisorctl then retries once and prints the ProtocolError: its own quirk.)
    let refused = |c: &Ctl| {
        let o = c.run(&["status"]);
        assert_eq!(o.code, 1, "{o:?}");
        assert!(
            o.text.starts_with("Server requires authentication\n"),
            "{o:?}"
        );
    };
    refused(&c);
    c.creds = Some(("user".into(), "wrong".into()));
    refused(&c);
    c.creds = Some(("user".into(), "123".into()));
    c.wait_status("x RUNNING", |t| t.contains("RUNNING"));
    c.expect(&["version"], 0, "4.3.0\n");
    // tail -f carries the credentials too.
    let o = c
        .command(&["tail", "-f", "x"])
        .stdout(Stdio::piped())
        .spawn();
    let mut child = o.expect("tail -f");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert_eq!(first, "==> Press Ctrl-C to exit <==\n");
    let _ = child.kill();
    let _ = child.wait();
    // The raw 401.
    let r = reqwest::blocking::Client::new()
        .post(format!("{inet}/RPC2"))
        .body("<methodCall><methodName>supervisor.getPID</methodName></methodCall>")
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().ok(),
        Some("Basic realm=\"default\"")
    );

    // The socket: mode 0700, no credentials configured for it.
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let u = Ctl::new(&format!("unix://{}", sock.display()));
    u.wait_status("x RUNNING over the socket", |t| t.contains("RUNNING"));
    let ident = python(
        &format!("unix://{}", sock.display()),
        r#"
import sys
from supervisor.xmlrpc import SupervisorTransport
import xmlrpc.client as x
t = SupervisorTransport(None, None, sys.argv[1])
s = x.ServerProxy('http://127.0.0.1', transport=t)
print(s.supervisor.getIdentification())
"#,
    );
    assert_eq!(ident, "desk-1\n");
    // Children learn where to find it.
    assert!(
        std::fs::read_to_string(format!(
            "/proc/{}/environ",
            d.process("x")["pid"].as_i64().expect("pid")
        ))
        .expect("environ")
        .contains(&format!("SUPERVISOR_SERVER_URL=unix://{}", sock.display()))
    );
    drop(d);
}

#[test]
fn malformed_requests_get_precise_400s() {
    let d = TestDaemon::start("");
    let post = |body: &str| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/RPC2", d.url))
            .header("content-type", "text/xml")
            .body(body.to_string())
            .send()
            .expect("post");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (code, text) = post("<methodCall><methodName>x.y</methodName><params><param>");
    assert_eq!(code, 400);
    assert!(
        text.starts_with("XML-RPC request is invalid: line 1, column ")
            && text.contains("the document ends inside <param> (opened at line 1, column "),
        "{text}"
    );
    let (code, text) = post("<methodCall><params/></methodCall>");
    assert_eq!(
        (code, text.as_str()),
        (
            400,
            "XML-RPC request is invalid: line 1, column 1: <methodCall> has no <methodName>\n"
        )
    );
    let (code, _) = post("\u{0}\u{1}garbage");
    assert_eq!(code, 400);
    let (code, text) = post("<methodCall><methodName>supervisor.getPID</methodName></methodCall>");
    assert_eq!(code, 200);
    assert_eq!(
        text,
        format!(
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><int>{}</int></value>\n</param>\n</params>\n</methodResponse>\n",
            d.pid()
        )
    );
    let r = reqwest::blocking::get(format!("{}/RPC2", d.url)).expect("get");
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::blocking::get(format!("{}/logtail/nosuch", d.url)).expect("get");
    assert_eq!(r.status().as_u16(), 404);
    // The daemon is fine after all that.
    let mut s = std::net::TcpStream::connect(d.url.trim_start_matches("http://")).expect("tcp");
    s.write_all(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n<a><b")
        .expect("write");
    assert_eq!(d.get("/health")["status"], "ok");
}

/// `fg`: both channels streamed (GET /logtail/x/stdout and /stderr), each input line sent
/// with sendProcessStdin, EOF leaves the foreground.
#[test]
fn fg_streams_output_and_forwards_input() {
    let d = TestDaemon::start(
        "[program.echo]\ncommand = \"sh -c 'while read l; do echo got:$l; echo err:$l >&2; done'\"\nstartsecs = 0\n",
    );
    let c = Ctl::new(&d.url);
    c.wait_status("echo RUNNING", |t| t.contains("RUNNING"));
    let mut child = c
        .command(&["fg", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("fg");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(T).expect("banner"),
        "==> Press Ctrl-C to exit <=="
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello\n").expect("write");
    stdin.flush().expect("flush");
    let mut seen = Vec::new();
    while !(seen.iter().any(|l| l == "got:hello") && seen.iter().any(|l| l == "err:hello")) {
        seen.push(
            rx.recv_timeout(T)
                .unwrap_or_else(|_| panic!("fg output: {seen:?}")),
        );
    }
    // EOF: supervisorctl says so and leaves. While its two streams are open, its streaming
    // thread then sits in asyncore's select() for up to 30 s before the process ends, so
    // the process is killed here once it has said so.
    drop(stdin);
    loop {
        let line = rx
            .recv_timeout(T)
            .unwrap_or_else(|_| panic!("no 'Exiting foreground': {seen:?}"));
        if line == "Exiting foreground" {
            break;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One `supervisord.conf` (only the port differs), run by supervisord and by vigil
/// (`vigil run -c supervisord.conf`), with `[inet_http_server]` basic auth: supervisorctl
/// prints the same.
#[test]
fn the_same_supervisord_conf_under_both() {
    let conf = |dir: &Path, port: u16| {
        let d = dir.display();
        format!(
            "[supervisord]\nnodaemon=true\nlogfile={d}/main.log\npidfile={d}/sd.pid\n\
             childlogdir={d}\nidentifier=desk-7\n\
             vigil_listen=127.0.0.1:0\nvigil_data_dir={d}/vigil-data\n\n\
             [inet_http_server]\nport=127.0.0.1:{port}\nusername=ops\npassword=s3cret\n\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [program:web]\ncommand=sleep 1000\npriority=10\n\n\
             [program:worker]\ncommand=sleep 1000\nnumprocs=2\n\
             process_name=%(program_name)s_%(process_num)d\n\n\
             [program:cron]\ncommand=sleep 1000\nautostart=false\n\n\
             [group:jobs]\nprograms=worker,cron\npriority=20\n"
        )
    };
    let vdir = tempdir();
    let vport = free_port();
    let path = vdir.path().join("supervisord.conf");
    std::fs::write(&path, conf(vdir.path(), vport)).expect("write");
    let _d = TestDaemon::start_config(vdir.path(), &path);
    let mut v = Ctl::new(&format!("http://127.0.0.1:{vport}"));
    v.creds = Some(("ops".into(), "s3cret".into()));

    let sdir = tempdir();
    let sport = free_port();
    let spath = sdir.path().join("supervisord.conf");
    std::fs::write(&spath, conf(sdir.path(), sport)).expect("write");
    let child = spawn_supervisord(&spath, sdir.path());
    let _s = Supervisord {
        child,
        url: format!("http://127.0.0.1:{sport}"),
        dir: sdir,
    };
    let mut s = Ctl::new(&format!("http://127.0.0.1:{sport}"));
    s.creds = Some(("ops".into(), "s3cret".into()));
    for c in [&v, &s] {
        c.wait_status("web and the workers RUNNING", |t| {
            t.matches("RUNNING").count() == 3 && !t.contains("STARTING")
        });
    }
    let steps: &[&[&str]] = &[
        &["status"],
        &["avail"],
        &["version"],
        &["start", "jobs:cron"],
        &["stop", "jobs:*"],
        &["status", "jobs:*"],
        &["start", "jobs:*"],
        &["restart", "web"],
        &["status"],
        &["reread"],
    ];
    for args in steps {
        let (a, b) = (v.run(args), s.run(args));
        assert_eq!(
            comparable(args, &a),
            comparable(args, &b),
            "supervisorctl {args:?}\nvigil:\n{}\nsupervisord:\n{}",
            a.text,
            b.text
        );
    }
    let ident = "import sys, xmlrpc.client as x\n\
                 s = x.ServerProxy(sys.argv[1].replace('//', '//ops:s3cret@') + '/RPC2')\n\
                 print(s.supervisor.getIdentification())";
    assert_eq!(python(&v.url, ident), "desk-7\n");
    assert_eq!(python(&s.url, ident), "desk-7\n");
}
