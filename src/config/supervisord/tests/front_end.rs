//! The front end (expansions, values, sections, listeners, readiness) and vigil convert.

use super::*;

#[test]
fn every_expansion() {
    let (d, c) = ok(concat!(
        "[supervisord]\n",
        "environment=GLOBAL_X=\"g,1\"\n",
        "[program:feed]\n",
        "process_name=%(program_name)s_%(process_num)02d\n",
        "numprocs=2\n",
        "numprocs_start=7\n",
        "command=/bin/feed --n %(process_num)d/%(numprocs)d --g %(group_name)s --h %(host_node_name)s --p %(ENV_PORT_BASE)s%(process_num)02d --x %(ENV_GLOBAL_X)s --own %(ENV_OWN)s 100%%\n",
        "environment=OWN=\"%(program_name)s-%(ENV_HOME)s\"\n",
        "directory=%(here)s\n",
        "[group:trading]\n",
        "programs=feed\n",
    ));
    let feed = prog(&c, "feed");
    let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["feed_07", "feed_08"]);
    assert_eq!(
        feed.processes[1].argv,
        [
            "/bin/feed",
            "--n",
            "8/2",
            "--g",
            "trading",
            "--h",
            "testhost",
            "--p",
            "8008",
            "--x",
            "g,1",
            "--own",
            "feed-/home/tester",
            "100%"
        ]
    );
    assert_eq!(feed.directory.as_deref(), Some(d.path()));
    assert_eq!(
        feed.environment.get("GLOBAL_X").map(String::as_str),
        Some("g,1")
    );
    assert_eq!(
        feed.environment.get("OWN").map(String::as_str),
        Some("feed-/home/tester")
    );
    assert_eq!(c.group_of("feed"), "trading");
}

#[test]
fn expansion_errors() {
    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "identifier=%(nope)s\n",
            "[program:a]\n",
            "command=date +%Y\n",
            "priority=%(process_num)d\n",
            "process_name=%(program_nam)s\n",
        )),
        vec![
            "2: [supervisord] identifier: unknown name %(nope); available names: here, host_node_name, ENV_<NAME>",
            "4: [program:a] command: '%' must start \"%(name)s\" or be doubled as '%%' for a literal '%'",
            "5: [program:a] priority: %(process_num) is not available here (only process_name, command, directory, environment and the log files are per process); available names: group_name, here, host_node_name, program_name, ENV_<NAME>",
            "6: [program:a] process_name: unknown name %(program_nam) (did you mean %(program_name)?); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
        ]
    );
}

// ------------------------------------------------------------------ typed values

#[test]
fn supervisord_value_syntax() {
    let (_d, c) = ok(concat!(
        "[supervisord]\n",
        "[program:a]\n",
        "command=a\n",
        "autostart=Off\n",
        "autorestart=unexpected\n",
        "stopasgroup=YES\n",
        "redirect_stderr=1\n",
        "stopsignal=sigusr2\n",
        "exitcodes=0, 2,255\n",
        "stdout_logfile_maxbytes=10KB\n",
        "stdout_logfile_backups=0\n",
        "stderr_logfile_maxbytes=1gb\n",
        "stdout_capture_maxbytes=2MB\n",
        "stderr_events_enabled=on\n",
        "environment=A=1,B=\"x, y\",C='z z',PATH=\"/usr/bin:/bin\"\n",
        "startsecs=+0\n",
        "[program:b]\n",
        "command=b\n",
        "autorestart=true\n",
        "exitcodes=\n",
        "stopsignal=9\n",
        "[program:c]\n",
        "command=c\n",
        "autorestart=false\n",
    ));
    let a = prog(&c, "a");
    assert!(!a.autostart);
    assert_eq!(a.autorestart, AutoRestart::Unexpected);
    assert!(a.stopasgroup && a.killasgroup);
    assert!(a.redirect_stderr);
    assert_eq!(a.stopsignal.name, "USR2");
    assert_eq!(a.exitcodes, vec![0, 2, 255]);
    assert_eq!(a.processes[0].stdout_log.maxbytes, 10 * 1024);
    assert_eq!(a.processes[0].stdout_log.backups, 0);
    assert_eq!(a.processes[0].stderr_log.maxbytes, 1 << 30);
    assert_eq!(a.processes[0].stderr_log.path, None, "redirected");
    assert_eq!(a.stdout_capture_maxbytes, 2 << 20);
    assert!(a.stderr_events_enabled && !a.stdout_events_enabled);
    let env: Vec<(&str, &str)> = a
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("A", "1"),
            ("B", "x, y"),
            ("C", "z z"),
            ("PATH", "/usr/bin:/bin")
        ]
    );
    assert_eq!(a.startsecs, 0);
    let b = prog(&c, "b");
    assert_eq!(b.autorestart, AutoRestart::Always);
    assert!(b.exitcodes.is_empty());
    assert_eq!(b.stopsignal.name, "KILL");
    assert_eq!(prog(&c, "c").autorestart, AutoRestart::Never);
}

#[test]
fn kv_pairs_like_supervisord() {
    let ok_pairs = |s: &str| match parse_kv_pairs(s) {
        Ok(v) => v,
        Err(e) => panic!("{s}: {e}"),
    };
    assert_eq!(
        ok_pairs("K=v,K2=\"a, b\""),
        vec![("K".into(), "v".into()), ("K2".into(), "a, b".into())]
    );
    assert_eq!(ok_pairs(""), vec![]);
    assert_eq!(
        ok_pairs("A=1 ,B=2"),
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert!(parse_kv_pairs("A=\"open").is_err());
    assert!(parse_kv_pairs("A=1 B=2").is_err());
    assert!(parse_kv_pairs("A").is_err());
    assert!(parse_kv_pairs("A=x y").is_err());
}

#[test]
fn type_errors() {
    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "loglevel=loud\n",
            "vigil_listen=localhost:1\n",
            "[program:a]\n",
            "command=a\n",
            "autostart=maybe\n",
            "autorestart=sometimes\n",
            "startsecs=1.5\n",
            "numprocs=0\n",
            "exitcodes=0,256\n",
            "stopsignal=SIGFOO\n",
            "stdout_logfile_maxbytes=5TB\n",
            "environment=A=1 B=2\n",
            "backoff=quadratic\n",
            "stopasgroup=true\n",
            "killasgroup=false\n",
        )),
        vec![
            "2: [supervisord] loglevel: expected one of critical, error, warn, info, debug, trace, blather, found \"loud\"",
            "3: [supervisord] vigil_listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found \"localhost:1\"",
            "6: [program:a] autostart: expected a boolean (true or false), found string \"maybe\"",
            "7: [program:a] autorestart: expected true, false or \"unexpected\", found string \"sometimes\"",
            "8: [program:a] startsecs: expected a non-negative integer, found string \"1.5\"",
            "9: [program:a] numprocs: expected a positive integer (at most 10000), found integer 0",
            "10: [program:a] exitcodes: expected an exit code (an integer from 0 to 255), found integer 256",
            "11: [program:a] stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found string \"SIGFOO\"",
            "12: [program:a] stdout_logfile_maxbytes: expected a size in bytes (an integer, optionally with a KB, MB or GB suffix such as \"50MB\"), found string \"5TB\"",
            "13: [program:a] environment: expected ',' between KEY=value pairs, found \"B\" (quote values with spaces: KEY=\"a b\")",
            "14: [program:a] backoff: expected \"linear\" or \"exponential\", found string \"quadratic\"",
            "16: [program:a] killasgroup: cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
        ]
    );
}

// ------------------------------------------------------------------ unknown and unsupported

#[test]
fn unknown_options_and_sections_with_did_you_mean() {
    // supervisord ignores what it does not know: warnings, located with their column.
    let text = concat!(
        "[supervisord]\n",
        "logfle=x\n",
        "[program:a]\n",
        "command=a\n",
        "comand=a\n",
        "autorestrat=true\n",
        "zzzzzz=1\n",
        "dependent_startup=true\n",
        "[programs:b]\n",
        "[supervisor]\n",
        "[group:g]\n",
        "programs=a\n",
        "program=a\n",
        "[weird]\n",
    );
    let dir = tmp();
    assert_eq!(
        warns_in(dir.path(), text),
        vec![
            "2:1: [supervisord] logfle: unknown option, ignored (did you mean \"logfile\"?)",
            "5:1: [program:a] comand: unknown option, ignored (did you mean \"command\"?)",
            "6:1: [program:a] autorestrat: unknown option, ignored (did you mean \"autorestart\"?)",
            "7:1: [program:a] zzzzzz: unknown option, ignored",
            "8:1: [program:a] dependent_startup: unknown option, ignored",
            "9:1: [programs:b]: unknown section, ignored (did you mean [program:b]?)",
            "10:1: [supervisor]: unknown section, ignored (did you mean [supervisord]?)",
            "13:1: [group:g] program: unknown option, ignored (did you mean \"programs\"?)",
            "14:1: [weird]: unknown section, ignored (known sections: [supervisord], [program:NAME], [eventlistener:NAME], [group:NAME], [include], [unix_http_server], [inet_http_server], [rpcinterface:supervisor], [supervisorctl])",
        ]
    );
    let c = load_in(dir.path(), text).expect("loads");
    assert_eq!(argv(&c, "a"), vec![vec!["a".to_string()]]);
    // With an error as well, the errors are what is reported.
    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "logfle=x\n",
            "[program:a]\n",
            "comand=a\n",
            "autorestrat=true\n",
            "zzzzzz=1\n",
            "[programs:b]\n",
            "[supervisor]\n",
            "[group:g]\n",
            "program=a\n",
            "[weird]\n",
        )),
        vec![
            "3: [program:a] command: required option is missing",
            "9: [group:g] programs: required option is missing",
        ]
    );
}

#[test]
fn every_unsupported_option_is_reported_with_its_line() {
    let other_umask = match current_umask() {
        Some(0o077) => "022",
        _ => "077",
    };
    let text = format!(
        concat!(
            "[supervisord]\n",
            "umask={u}\n",
            "logfile=syslog\n",
            "silent=true\n",
            "strip_ansi=true\n",
            "minfds=999999999999\n",
            "user=nobody\n",
            "[program:a]\n",
            "command=a\n",
            "umask={u}\n",
            "serverurl=http://127.0.0.1:9001\n",
            "stdout_syslog=true\n",
            "stderr_syslog=yes\n",
            "stdout_logfile=syslog\n",
            "stderr_logfile=SYSLOG\n",
            "[eventlistener:l]\n",
            "command=l\n",
            "events=TICK_5\n",
            "result_handler=superlance.x:handler\n",
            "[unix_http_server]\n",
            "file=/tmp/vigil-test-x.sock\n",
            "chown=nobody:nogroup\n",
            "[inet_http_server:second]\n",
            "port=1\n",
            "[rpcinterface:supervisor]\n",
            "supervisor.rpcinterface_factory=my.module:factory\n",
            "retries=1\n",
            "[rpcinterface:twiddler]\n",
            "[fcgi-program:f]\n",
            "[DEFAULT]\n",
        ),
        u = other_umask
    );
    let got = errs(&text);
    let cur = current_umask().map_or_else(|| "unknown".to_string(), |c| format!("{c:03o}"));
    let minfds_line = got.get(4).cloned().unwrap_or_default();
    assert!(
        minfds_line.starts_with(
            "6: option minfds=999999999999 is not supported: vigil does not raise its limits"
        ),
        "{minfds_line}"
    );
    assert_eq!(
        got,
        vec![
            format!("2: option umask={other_umask} is not supported: vigil does not change its umask ({cur}); start it with umask {other_umask} instead"),
            "3: option logfile=syslog is not supported: vigil has no syslog output; give a file path".to_string(),
            "4: option silent=true is not supported: vigil always writes its log to stderr (silent = false)".to_string(),
            "5: option strip_ansi=true is not supported: vigil writes child output to the logs as is (strip_ansi = false)".to_string(),
            minfds_line.clone(),
            "7: option user=nobody is not supported: vigil does not switch users; start it as that user (programs may still set user=)".to_string(),
            format!("10: option umask={other_umask} is not supported: vigil's children inherit vigil's umask ({cur}); start vigil with umask {other_umask} instead"),
            "11: option serverurl=http://127.0.0.1:9001 is not supported: vigil sets SUPERVISOR_SERVER_URL to its own server (serverurl = AUTO)".to_string(),
            "12: option stdout_syslog=true is not supported: vigil has no syslog output".to_string(),
            "13: option stderr_syslog=yes is not supported: vigil has no syslog output".to_string(),
            "14: option stdout_logfile=syslog is not supported: vigil has no syslog output; give a file path, AUTO or NONE".to_string(),
            "15: option stderr_logfile=SYSLOG is not supported: vigil has no syslog output; give a file path, AUTO or NONE".to_string(),
            "19: option result_handler=superlance.x:handler is not supported: only supervisor.dispatchers:default_handler (OK accepts an event, anything else rejects it)".to_string(),
            "22: option chown is not supported: vigil creates the socket as the user it runs as; use chmod (and a group-readable directory) instead".to_string(),
            "23: section [inet_http_server:second] is not supported: vigil serves one unnamed [inet_http_server]".to_string(),
            "26: option supervisor.rpcinterface_factory=my.module:factory is not supported: vigil implements supervisor.rpcinterface:make_main_rpcinterface only".to_string(),
            "27: option retries is not supported: make_main_rpcinterface takes no options".to_string(),
            "28: section [rpcinterface:twiddler] is not supported: vigil has no XML-RPC plugins (only [rpcinterface:supervisor])".to_string(),
            "29: section [fcgi-program:f] is not supported: vigil does not manage FastCGI sockets".to_string(),
            "30: section [DEFAULT] is not supported: write the options in each section".to_string(),
        ]
    );
}

#[test]
fn harmless_options_are_accepted() {
    let umask = current_umask().map_or_else(|| "022".to_string(), |u| format!("{u:03o}"));
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name);
    let (_d, c) = ok(&format!(
        concat!(
            "[supervisord]\n",
            "nodaemon=true\nsilent=false\nstrip_ansi=false\nnocleanup=true\n",
            "minfds=16\nminprocs=1\numask={u}\nuser={me}\n",
            "[supervisorctl]\nserverurl=unix:///tmp/x.sock\nprompt=mine\n",
            "[ctlplugin:foo]\nsupervisor.ctl_factory=foo:make\n",
            "[rpcinterface:supervisor]\n",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
            "[program:a]\ncommand=a\numask={u}\nserverurl=AUTO\nstdout_syslog=false\n",
        ),
        u = umask,
        me = me
    ));
    assert_eq!(c.programs.len(), 1);
}

#[test]
fn a_supervisord_section_is_required() {
    assert_eq!(
        errs("[program:a]\ncommand=a\n"),
        vec!["1: a [supervisord] section is required (as in supervisord; it may be empty)"]
    );
}

// ------------------------------------------------------------------ [supervisord]

#[test]
fn supervisord_section_maps() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir(d.join("work")).expect("mkdir");
    let c = match load_in(
        d,
        concat!(
            "[supervisord]\n",
            "logfile=%(here)s/main.log\n",
            "logfile_maxbytes=1MB\n",
            "logfile_backups=3\n",
            "loglevel=blather\n",
            "pidfile=run/supervisord.pid\n",
            "childlogdir=childlogs\n",
            "directory=work\n",
            "identifier=desk1\n",
            "vigil_data_dir=state\n",
            "vigil_listen=127.0.0.1:7171\n",
            "vigil_reload=apply\n",
            "[program:bot]\n",
            "command=bot\n",
            "[program:own]\n",
            "command=own\n",
            "directory=/\n",
            "stdout_logfile=NONE\n",
            "stderr_logfile=own.err\n",
        ),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.vigil.log_level, "trace");
    assert_eq!(c.vigil.listen.to_string(), "127.0.0.1:7171");
    assert_eq!(c.vigil.data_dir, d.join("state"));
    assert_eq!(c.vigil.reload, crate::config::ReloadMode::Apply);
    let rpc = c.rpc.as_ref().expect("rpc");
    assert_eq!(rpc.identifier, "desk1");
    assert_eq!(
        rpc.logfile,
        Some(LogConfig {
            path: Some(d.join("main.log")),
            maxbytes: 1 << 20,
            backups: 3
        })
    );
    assert_eq!(rpc.pidfile, Some(d.join("run/supervisord.pid")));
    assert!(d.join("run").is_dir() && d.join("childlogs").is_dir());
    let bot = prog(&c, "bot");
    assert_eq!(
        bot.directory,
        Some(d.join("work")),
        "[supervisord] directory"
    );
    assert_eq!(
        bot.processes[0].stdout_log.path,
        Some(d.join("childlogs/bot-stdout---desk1.log"))
    );
    assert_eq!(
        bot.processes[0].stderr_log.path,
        Some(d.join("childlogs/bot-stderr---desk1.log"))
    );
    let own = prog(&c, "own");
    assert_eq!(own.directory, Some(PathBuf::from("/")));
    assert_eq!(own.processes[0].stdout_log.path, None);
    assert_eq!(own.processes[0].stderr_log.path, Some(d.join("own.err")));
    assert_eq!(c.identifier(), "desk1");

    // Without childlogdir, AUTO is vigil's default; with nodaemon, directory is unused.
    let (d2, c2) = ok("[supervisord]\nnodaemon=true\ndirectory=/\n[program:x]\ncommand=x\n");
    let x = prog(&c2, "x");
    assert_eq!(x.directory, None);
    assert_eq!(
        x.processes[0].stdout_log.path,
        Some(d2.path().join("vigil-data/logs/x.out.log"))
    );
    assert_eq!(c2.vigil.data_dir, d2.path().join("vigil-data"));
    assert_eq!(c2.vigil.listen.to_string(), "127.0.0.1:7070");
    assert_eq!(c2.identifier(), "supervisor");
    assert_eq!(
        c2.vigil.reload,
        crate::config::ReloadMode::Restart,
        "supervisord's reload restarts everything"
    );
}

#[test]
fn http_servers_and_credentials() {
    let (d, c) = ok(concat!(
        "[supervisord]\n",
        "[unix_http_server]\n",
        "file=%(here)s/run/supervisor.sock\n",
        "chmod=0770\n",
        "[inet_http_server]\n",
        "port=*:9001\n",
        "username=user\n",
        "password={SHA}A94A8FE5CCB19BA61C4C0873D391E987982FBBD3\n",
    ));
    let rpc = c.rpc.as_ref().expect("rpc");
    let unix = rpc.unix.as_ref().expect("unix");
    assert_eq!(unix.path, d.path().join("run/supervisor.sock"));
    assert_eq!(unix.chmod, 0o770);
    assert_eq!(unix.auth, None);
    let inet = rpc.inet.as_ref().expect("inet");
    assert_eq!(inet.addr.to_string(), "0.0.0.0:9001");
    let auth = inet.auth.as_ref().expect("auth");
    assert_eq!(
        auth,
        &Credentials {
            username: "user".into(),
            password: Password::Sha1Hex("a94a8fe5ccb19ba61c4c0873d391e987982fbbd3".into())
        }
    );
    assert!(auth.verify("user", "test"));
    assert!(!auth.verify("user", "Test"));
    assert!(!auth.verify("other", "test"));
    let dbg = format!("{auth:?}");
    assert!(!dbg.contains("a94a8"), "{dbg}");

    let (_d, c) = ok(
        "[supervisord]\n[inet_http_server]\nport=localhost:9002\nusername=u\npassword=p%%ss ; c\n",
    );
    let inet = c.rpc.and_then(|r| r.inet).expect("inet");
    assert_eq!(inet.addr.to_string(), "127.0.0.1:9002");
    let auth = inet.auth.expect("auth");
    assert_eq!(auth.password, Password::Plain("p%ss".into()));
    assert!(auth.verify("u", "p%ss"));
    assert_eq!(
        format!("{:?}", auth.password),
        "Password::Plain(<redacted>)"
    );

    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "[inet_http_server]\n",
            "username=u\n",
            "[unix_http_server]\n",
            "password={SHA}abc\n",
            "username=u\n",
            "chmod=999\n",
        )),
        vec![
            "2: [inet_http_server]: incomplete authentication: set both username and password, or neither",
            "2: [inet_http_server] port: required option is missing",
            "4: [unix_http_server] file: required option is missing",
            "5: [unix_http_server] password: a {SHA} password must be followed by the 40 hex digits of the SHA-1 of the password",
            "7: [unix_http_server] chmod: expected an octal mode such as 0700, found \"999\"",
        ]
    );
}

#[test]
fn sha1_vectors() {
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(
        sha1_hex(&[b'a'; 1000]),
        "291e9a6c66994949b57ba5e650361e98fc36b1ba"
    );
}

// ------------------------------------------------------------------ groups

#[test]
fn group_membership() {
    let (_d, c) = ok(concat!(
        "[supervisord]\n",
        "[program:feed]\ncommand=f\n",
        "[program:bot]\ncommand=b\n",
        "[program:solo]\ncommand=s\n",
        "[group:trading]\nprograms=bot, feed,\npriority=5\n",
    ));
    assert_eq!(
        c.groups,
        vec![GroupConfig {
            name: "trading".into(),
            programs: vec!["bot".into(), "feed".into()],
            priority: 5
        }]
    );
    assert_eq!(c.group_of("feed"), "trading");
    assert_eq!(c.group_of("solo"), "solo");
    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "[program:bot]\ncommand=b\n",
            "[program:g2]\ncommand=x\n",
            "[group:g1]\nprograms=bto\n",
            "[group:g2]\nprograms=bot\n",
            "[group:g3]\nprograms=bot,\n",
            "[group:bad name]\nprograms=,\n",
        )),
        vec![
            "7: [group:g1] programs: no program \"bto\", did you mean \"bot\"?",
            "8: [group:g2]: group name \"g2\" is also the name of program \"g2\", which is not in this group",
            "11: [group:g3] programs: program \"bot\" is already in group \"g2\" (a program belongs to at most one group)",
            "12: [group:bad name]: invalid group name: contains whitespace",
            "13: [group:bad name] programs: expected at least one program name",
        ]
    );
}

// ------------------------------------------------------------------ event listeners

#[test]
fn eventlisteners() {
    let (_d, c) = ok(concat!(
        "[supervisord]\n",
        "[eventlistener:crash]\n",
        "command=crashmail -a\n",
        "events=process_state_exited, TICK_60,PROCESS_STATE_EXITED,vigil_trading_state\n",
        "[eventlistener:pool]\n",
        "command=listener\n",
        "process_name=%(program_name)s_%(process_num)d\n",
        "numprocs=2\n",
        "events=EVENT\n",
        "buffer_size=100\n",
        "priority=5\n",
        "result_handler=supervisor.dispatchers:default_handler\n",
        "stderr_logfile=NONE\n",
    ));
    let crash = listener(&c, "crash");
    assert_eq!(
        crash.events,
        ["PROCESS_STATE_EXITED", "TICK_60", "VIGIL_TRADING_STATE"]
    );
    assert_eq!(crash.buffer_size, 10);
    assert_eq!(crash.priority, -1);
    assert_eq!(crash.program.priority, 999);
    assert_eq!(crash.program.processes[0].argv, ["crashmail", "-a"]);
    let pool = listener(&c, "pool");
    assert_eq!(pool.events, ["EVENT"]);
    assert_eq!(pool.buffer_size, 100);
    assert_eq!((pool.priority, pool.program.priority), (5, 5));
    let names: Vec<&str> = pool
        .program
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["pool_0", "pool_1"]);
    assert!(c.programs.is_empty());

    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "[program:x]\ncommand=x\n",
            "[eventlistener:x]\n",
            "command=l\n",
            "events=PROCESS_STAT,,EVENT_BUFFER_OVERFLOW\n",
            "redirect_stderr=true\n",
            "buffer_size=0\n",
            "depends_on=x\n",
            "[eventlistener:noevents]\n",
            "command=l\n",
            "[eventlistener:empty]\n",
            "command=l\n",
            "events=,\n",
        )),
        vec![
            "4: [eventlistener:x]: \"x\" is also defined by [program:x]",
            "4: [eventlistener:x]: the event listener pool \"x\" is a process group, and program \"x\" has the same name",
            "6: [eventlistener:x] events: unknown event type PROCESS_STAT, did you mean PROCESS_STATE?",
            "6: [eventlistener:x] events: unknown event type EVENT_BUFFER_OVERFLOW (supervisord removed it in 3.0; vigil never drops events)",
            "7: [eventlistener:x] redirect_stderr: cannot be true for an event listener: stdout is the protocol channel (as in supervisord)",
            "8: [eventlistener:x] buffer_size: expected a positive integer, found integer 0",
            "9: [eventlistener:x] depends_on: not available for event listeners (a listener's stdout is the protocol channel)",
            "10: [eventlistener:noevents] events: required option is missing",
            "14: [eventlistener:empty] events: expected at least one event type name",
        ]
    );
}

// ------------------------------------------------------------------ vigil extensions

#[test]
fn extensions_backoff_readiness_depends_on() {
    let (_d, c) = ok(concat!(
        "[supervisord]\n",
        "[program:db]\n",
        "command=db\n",
        "ready_tcp=127.0.0.1:%(ENV_PORT_BASE)s80\n",
        "[program:api]\n",
        "command=api\n",
        "ready_http=http://127.0.0.1:8080/health\n",
        "ready_interval=0.5\n",
        "ready_timeout=2\n",
        "ready_retries=10\n",
        "depends_on=db\n",
        "backoff=exponential\n",
        "backoff_max=30\n",
        "critical=true\n",
        "events=stdout\n",
        "[program:bot]\n",
        "command=bot\n",
        "ready_command=/bin/check --name '%(program_name)s x'\n",
        "depends_on=api, db\n",
    ));
    let db = prog(&c, "db");
    let r = db.ready.as_ref().expect("ready");
    assert_eq!(
        r.probe,
        ReadinessProbe::Tcp {
            host: "127.0.0.1".into(),
            port: 8080
        }
    );
    assert_eq!(
        (r.interval_ms, r.timeout_ms, r.retries),
        (
            DEFAULT_READY_INTERVAL_MS,
            DEFAULT_READY_TIMEOUT_MS,
            DEFAULT_READY_RETRIES
        )
    );
    let api = prog(&c, "api");
    let r = api.ready.as_ref().expect("ready");
    assert_eq!(
        r.probe,
        ReadinessProbe::Http {
            url: "http://127.0.0.1:8080/health".into()
        }
    );
    assert_eq!((r.interval_ms, r.timeout_ms, r.retries), (500, 2000, 10));
    assert_eq!(api.depends_on, ["db"]);
    assert_eq!(
        api.backoff,
        BackoffPolicy {
            step_ms: 1000,
            exponential: true,
            max_ms: Some(30_000)
        }
    );
    assert!(api.critical && api.events_from_stdout);
    let bot = prog(&c, "bot");
    assert_eq!(
        bot.ready.as_ref().map(|r| r.probe.clone()),
        Some(ReadinessProbe::Command {
            argv: vec!["/bin/check".into(), "--name".into(), "bot x".into()]
        })
    );
    assert_eq!(bot.depends_on, ["api", "db"]);

    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "[program:a]\ncommand=a\ndepends_on=b, c, zz, a, b\nready_tcp=nohost\nready_http=http://x/\n",
            "[program:b]\ncommand=b\ndepends_on=c\nready_interval=0\n",
            "[program:c]\ncommand=c\ndepends_on=a\nready_retries=3\nready_command='\n",
        )),
        vec![
            "4: [program:a] depends_on: no program \"zz\" (each must be a program)",
            "4: [program:a] depends_on: program \"a\" cannot depend on itself",
            "4: [program:a] depends_on: program \"b\" is listed twice",
            "4: [program:a] depends_on: dependency cycle: a -> b -> c -> a",
            "5: [program:a] ready_tcp: expected HOST:PORT such as \"127.0.0.1:8080\", found \"nohost\"",
            "6: [program:a] ready_http: only one readiness probe may be set, and ready_tcp is set already",
            "10: [program:b] ready_interval: expected a positive number of seconds (at most 86400, e.g. 1 or 0.5), found integer 0",
            "15: [program:c] ready_command: cannot split the command line: unbalanced quotes or a trailing backslash",
        ]
    );
    assert_eq!(
        errs("[supervisord]\n[program:a]\ncommand=a\nready_timeout=3\n"),
        vec![
            "4: [program:a] ready_timeout: ready_timeout needs a readiness probe: ready_command, ready_http or ready_tcp"
        ]
    );
}

#[test]
fn process_names_and_numprocs() {
    assert_eq!(
        errs(concat!(
            "[supervisord]\n",
            "[program:feed]\ncommand=f\nnumprocs=2\n",
            "[program:twin]\ncommand=t\nprocess_name=solo\n",
            "[program:solo]\ncommand=s\n",
            "[program:bad/name]\ncommand=x\n",
        )),
        vec![
            "2: [program:feed] process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
            "8: [program:solo] process_name: process name \"solo\" is also used by program \"twin\"",
            "10: [program:bad/name]: invalid program name: contains '/'",
        ]
    );
}

// ------------------------------------------------------------------ vigil convert

/// Convert, check there is no warning, load the TOML (written beside the original) and
/// compare.
fn round_trip(dir: &Path, text: &str) -> (Config, String) {
    let path = write(dir, "supervisord.conf", text);
    let env = test_env();
    let original = match load_with(&path, text, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let converted = match convert_with(&path, text, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(
        converted.warnings.is_empty(),
        "{:?}\n{}",
        converted.warnings,
        converted.toml
    );
    // Saved somewhere else entirely: nothing in it may depend on its location.
    let elsewhere = tmp();
    let toml_path = write(elsewhere.path(), "vigil.toml", &converted.toml);
    let mut back = match load::load_with(&toml_path, &converted.toml, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{}", converted.toml),
    };
    assert_eq!(back.source, toml_path);
    back.source = original.source.clone();
    assert_eq!(back, original, "\n{}", converted.toml);
    (original, converted.toml)
}

#[test]
fn convert_round_trips_a_rich_config() {
    let dir = tmp();
    let d = dir.path();
    std::fs::create_dir(d.join("work")).expect("mkdir");
    write(
        d,
        "conf.d/listeners.conf",
        concat!(
            "[eventlistener:crashmail]\n",
            "command=crashmail -a -m ops@example.com -s \"%(here)s/sendmail\"\n",
            "events=PROCESS_STATE_EXITED\n",
            "stdout_logfile=logs/crashmail.log\n",
            "[eventlistener:memmon]\n",
            "command=memmon -p bot=200MB\n",
            "events=TICK_60\n",
            "buffer_size=50\n",
            "priority=3\n",
        ),
    );
    let text = concat!(
        "; a trading desk\n",
        "[unix_http_server]\n",
        "file=%(here)s/supervisor.sock ; socket\n",
        "chmod=0770\n",
        "username=ops\n",
        "password=plain%%text\n",
        "[inet_http_server]\n",
        "port=127.0.0.1:9001\n",
        "username=user\n",
        "password={SHA}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\n",
        "[supervisord]\n",
        "logfile=%(here)s/supervisord.log\n",
        "logfile_maxbytes=5MB\n",
        "logfile_backups=2\n",
        "loglevel=warn\n",
        "pidfile=%(here)s/supervisord.pid\n",
        "nodaemon=false\n",
        "minfds=16\n",
        "minprocs=1\n",
        "childlogdir=%(here)s/childlogs\n",
        "directory=%(here)s/work\n",
        "identifier=desk-%(ENV_VIGIL_TEST_TOKEN)s\n",
        "environment=MODE=\"paper\",QUOTE=\"a,b\",PCT=\"50%%\"\n",
        "vigil_data_dir=%(here)s/state\n",
        "vigil_listen=127.0.0.1:7072\n",
        "[rpcinterface:supervisor]\n",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
        "[supervisorctl]\n",
        "serverurl=unix://%(here)s/supervisor.sock\n",
        "[program:feed]\n",
        "command=/usr/bin/python3 -u feed.py --shard %(process_num)d --mode %(ENV_MODE)s --port %(ENV_PORT_BASE)s%(process_num)02d\n",
        "process_name=%(program_name)s_%(process_num)02d\n",
        "numprocs=3\n",
        "numprocs_start=1\n",
        "priority=100\n",
        "environment=SHARDS=\"%(numprocs)d\",HOME_DIR=\"%(ENV_HOME)s\"\n",
        "stdout_logfile=logs/%(program_name)s_%(process_num)02d.log\n",
        "stdout_logfile_maxbytes=1MB\n",
        "stdout_logfile_backups=3\n",
        "redirect_stderr=true\n",
        "stopasgroup=true\n",
        "stdout_events_enabled=true\n",
        "ready_tcp=127.0.0.1:%(ENV_PORT_BASE)s80\n",
        "[program:bot]\n",
        "command=sh -c 'exec ./bot --mode=%(ENV_MODE)s; echo done' ; inline comment\n",
        "directory=/\n",
        "autostart=false\n",
        "autorestart=true\n",
        "startsecs=0\n",
        "startretries=7\n",
        "exitcodes=0,2\n",
        "stopsignal=INT\n",
        "stopwaitsecs=30\n",
        "killasgroup=true\n",
        "stdout_capture_maxbytes=1MB\n",
        "stderr_logfile=NONE\n",
        "stderr_capture_maxbytes=64KB\n",
        "stderr_events_enabled=true\n",
        "backoff=exponential\n",
        "backoff_max=60\n",
        "critical=true\n",
        "events=stdout\n",
        "ready_command=/bin/sh -c 'test -e /tmp/%(program_name)s.ready' \"x y\"\n",
        "ready_interval=0.25\n",
        "ready_timeout=3\n",
        "ready_retries=9\n",
        "depends_on=feed\n",
        "[program:report]\n",
        "command=/bin/report 100%%\n",
        "stdout_logfile=AUTO\n",
        "priority=-5\n",
        "ready_http=http://127.0.0.1:8080/ready\n",
        "[group:trading]\n",
        "programs=feed,bot\n",
        "priority=50\n",
        "[include]\n",
        "files=conf.d/*.conf\n",
    );
    let (c, toml) = round_trip(d, text);
    assert_eq!(c.programs.len(), 3);
    assert_eq!(c.eventlisteners.len(), 2);
    assert!(toml.contains("[eventlistener.memmon]"), "{toml}");
    assert!(toml.contains("password = \"plain%text\""), "{toml}");
    assert_eq!(c.identifier(), "desk-s3cret");
    let bot = prog(&c, "bot");
    assert_eq!(
        bot.processes[0].argv,
        ["sh", "-c", "exec ./bot --mode=paper; echo done"]
    );
    assert_eq!(bot.environment.get("PCT").map(String::as_str), Some("50%"));
    let crash = listener(&c, "crashmail");
    assert_eq!(
        crash.program.processes[0].stdout_log.path,
        Some(d.join("conf.d/logs/crashmail.log")),
        "relative to the file that names it"
    );
    assert_eq!(
        crash.program.processes[0].argv[5],
        format!("{}/conf.d/sendmail", d.display())
    );
    let feed = prog(&c, "feed");
    assert_eq!(feed.directory, Some(d.join("work")));
    assert_eq!(
        feed.processes[2].argv.last().map(String::as_str),
        Some("8003")
    );
    assert_eq!(
        feed.environment.get("SHARDS").map(String::as_str),
        Some("3")
    );
    assert_eq!(
        prog(&c, "report").processes[0].stdout_log.path,
        Some(d.join("childlogs/report-stdout---desk-s3cret.log"))
    );
}

/// The configs of seed 003 (a trading desk's listeners; the pool with numprocs = 2 gets the
/// process_name supervisord requires for it).
#[test]
fn convert_round_trips_the_seed_listener_configs() {
    let dir = tmp();
    let text = concat!(
        "[supervisord]\n",
        "nodaemon=true\n",
        "\n",
        "# Complete event monitoring for trading system\n",
        "[eventlistener:critical_failure_monitor]\n",
        "command = python /app/monitoring/failure_monitor.py\n",
        "events = PROCESS_STATE_FATAL,PROCESS_STATE_EXITED\n",
        "process_name = %(program_name)s_%(process_num)d\n",
        "numprocs = 2\n",
        "autostart = true\n",
        "autorestart = unexpected\n",
        "priority = 1\n",
        "\n",
        "[eventlistener:performance_monitor]\n",
        "command = python /app/monitoring/performance_monitor.py\n",
        "events = TICK_60\n",
        "numprocs = 1\n",
        "autostart = true\n",
        "autorestart = unexpected\n",
        "\n",
        "[eventlistener:strategy_communication]\n",
        "command = python /app/monitoring/comm_monitor.py\n",
        "events = PROCESS_COMMUNICATION\n",
        "numprocs = 1\n",
        "\n",
        "[eventlistener:heartbeat_monitor]\n",
        "command = python /app/monitoring/heartbeat_monitor.py\n",
        "events = TICK_5\n",
        "buffer_size = 100\n",
        "\n",
        "[eventlistener:startup_monitor]\n",
        "command = python /app/monitoring/startup_monitor.py\n",
        "events = PROCESS_STATE_RUNNING,PROCESS_STATE_STARTING\n",
        "\n",
        "[program:genetic_engine]\n",
        "command = python /app/engine.py\n",
        "stdout_capture_maxbytes = 1MB\n",
    );
    let (c, _) = round_trip(dir.path(), text);
    assert_eq!(c.eventlisteners.len(), 5);
    assert_eq!(listener(&c, "critical_failure_monitor").priority, 1);
    // As written in the seed (numprocs = 2 without process_num): supervisord's error.
    let seed = text.replace("process_name = %(program_name)s_%(process_num)d\n", "");
    assert_eq!(
        errs(&seed),
        vec![
            "5: [eventlistener:critical_failure_monitor] process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\""
        ]
    );
}

#[test]
fn convert_reports_errors_like_load() {
    let dir = tmp();
    let text = "[supervisord]\n[program:a]\nbogus=1\n";
    let path = write(dir.path(), "supervisord.conf", text);
    let e = match convert_with(&path, text, &test_env()) {
        Ok(_) => panic!("converted a bad file"),
        Err(e) => e,
    };
    assert_eq!(
        e.to_string(),
        format!(
            "{p}:2: [program:a] command: required option is missing",
            p = path.display()
        )
    );
}

#[test]
fn convert_reports_what_it_ignored() {
    let dir = tmp();
    let text = "[supervisord]\n[program:a]\ncommand=a\ndependent_startup=true\n";
    let path = write(dir.path(), "supervisord.conf", text);
    let c = convert_with(&path, text, &test_env()).expect("converts");
    let ignored: Vec<String> = c.ignored.iter().map(ToString::to_string).collect();
    assert_eq!(
        ignored,
        vec![format!(
            "{}:4:1: [program:a] dependent_startup: unknown option, ignored",
            path.display()
        )]
    );
    // The translation itself is exact: the original ignored the option too.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!c.toml.contains("dependent_startup"), "{}", c.toml);
    assert!(c.toml.contains("reload = \"restart\""), "{}", c.toml);
}

/// The fuzzers' first finds (`fuzz/corpus/ini/found_*.conf`): a misspelt option
/// (`spopsignal`) and a section name with NUL bytes in a config that otherwise converts
/// exactly. What the input ignores is reported apart from the translation's problems, which
/// stay empty.
#[test]
fn convert_keeps_what_the_input_ignores_apart_from_translation_problems() {
    let cases = [
        (
            concat!(
                "[supervisord]\n[program:bot]\ncommand=sleep 1000 ; comment\nnumprocs=2\n",
                "process_name=%(program_name)s_%(process_num)02d\nautorestart=unexpected\n",
                "exitcodes=0,2\nspopsignal=INT\n",
                "stdout_logfile=logs/%(program_name)s_%(process_num)d.log\n",
                "environment=A=\"1\",B='x, y'\n",
            ),
            "8:1: [program:bot] spopsignal: unknown option, ignored (did you mean \"stopsignal\"?)",
        ),
        (
            concat!(
                "[supervisord]\n[unix_http_server]\nfile=run/s.sock\n",
                "[r\0\0pcinterface:supervisor]\n",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
                "[program:a]\ncommand=a\n",
            ),
            "4:1: [r\0\0pcinterface:supervisor]: unknown section, ignored",
        ),
    ];
    for (text, want) in cases {
        let dir = tmp();
        let path = write(dir.path(), "supervisord.conf", text);
        let c = convert_with(&path, text, &test_env()).expect("converts");
        let ignored: Vec<String> = c.ignored.iter().map(ToString::to_string).collect();
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        let prefix = format!("{}:{want}", path.display());
        assert!(
            ignored[0].starts_with(&prefix),
            "{ignored:?}\nwant {prefix}"
        );
        assert!(c.warnings.is_empty(), "{:?}\n{}", c.warnings, c.toml);
        // Without I/O too (the fuzz target ini_text).
        let pure = crate::config::convert_str_without_io(&path, text).expect("converts");
        assert!(
            pure.warnings.is_empty(),
            "{:?}\n{}",
            pure.warnings,
            pure.toml
        );
        assert_eq!(pure.ignored, c.ignored);
    }
}

#[test]
fn toml_quoting() {
    assert_eq!(q("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    assert_eq!(k("bot-1_x"), "bot-1_x");
    assert_eq!(k("a.b"), "\"a.b\"");
    assert_eq!(secs(1500), "1.500");
    assert_eq!(secs(2000), "2");
}

// ------------------------------------------------------------------ tests/data/config/supervisord

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/supervisord")
}

/// Copy the sample directory to a temp dir (nothing is created in the source tree).
fn copy_samples() -> TempDir {
    let dir = tmp();
    fn copy(from: &Path, to: &Path) {
        for e in std::fs::read_dir(from).expect("read_dir").flatten() {
            let p = e.path();
            let target = to.join(e.file_name());
            if p.is_dir() {
                std::fs::create_dir_all(&target).expect("mkdir");
                copy(&p, &target);
            } else {
                std::fs::copy(&p, &target).expect("copy");
            }
        }
    }
    copy(&data_dir(), dir.path());
    dir
}

#[test]
fn sample_files_match_readme() {
    let dir = copy_samples();
    let readme = std::fs::read_to_string(data_dir().join("README.md")).expect("README");
    let mut valid = 0;
    let mut bad = 0;
    for (file, want) in crate::config::test_support::readme_sections(&readme) {
        let path = dir.path().join(&file);
        let text = std::fs::read_to_string(&path).expect("sample");
        match (load_with(&path, &text, &test_env()), want.as_slice()) {
            (Ok(_), [only]) if only == "ok" => {
                valid += 1;
                let converted = convert_with(&path, &text, &test_env()).expect("convert");
                assert!(
                    converted.warnings.is_empty(),
                    "{file}: {:?}",
                    converted.warnings
                );
            }
            (Ok(_), _) => panic!("{file} loaded without errors"),
            (Err(e), _) => {
                let got: Vec<String> =
                    e.0.iter()
                        .map(|e| {
                            let rel = e.file.strip_prefix(dir.path()).unwrap_or(&e.file);
                            crate::config::ConfigError {
                                file: rel.to_path_buf(),
                                ..e.clone()
                            }
                            .to_string()
                        })
                        .collect();
                assert_eq!(got, want, "{file}");
                bad += 1;
            }
        }
    }
    assert!(
        valid >= 2 && bad >= 2,
        "README lists {valid} valid and {bad} bad files"
    );
}

/// The property of the fuzz targets `ini` and `ini_text` on their committed seeds, in the
/// ordinary test run: every seed that loads (without I/O) converts exactly.
#[test]
fn every_ini_fuzz_seed_that_loads_converts_exactly() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ini");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&seeds).expect("fuzz/corpus/ini") {
        let file = entry.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let path = Path::new("/vigil-fuzz-pure/supervisord.conf");
        if crate::config::load_str_without_io(path, &text).is_err() {
            continue;
        }
        loaded += 1;
        let c = crate::config::convert_str_without_io(path, &text).expect("converts");
        assert!(
            c.warnings.is_empty(),
            "{}: {:?}\n{}",
            file.display(),
            c.warnings,
            c.toml
        );
    }
    assert!(loaded >= 4, "only {loaded} seeds load");
}

/// The fuzzer's third find (`fuzz/corpus/ini/found_control_chars_in_a_note.conf`): a value
/// quoted in one of the TOML's comments (the accepted-but-not-carried notes) held control
/// characters, which a TOML comment may not, so the converted file did not load.
#[test]
fn convert_escapes_control_characters_in_comments() {
    let path = Path::new("/vigil-fuzz-pure/supervisord.conf");
    let text = "[supervisord]\nuser=a\u{17}\u{17}b\n[program:a]\ncommand=a\n";
    let c = crate::config::convert_str_without_io(path, text).expect("converts");
    assert!(c.warnings.is_empty(), "{:?}\n{}", c.warnings, c.toml);
    assert!(c.toml.contains("user=a\\u{17}\\u{17}b"), "{}", c.toml);
}
