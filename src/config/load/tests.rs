use super::*;
use crate::config::ReadinessProbe;
use tempfile::TempDir;
use vigil_core::program::Policy;

fn test_env() -> Env {
    let mut vars = BTreeMap::new();
    vars.insert("HOME".to_string(), "/home/tester".to_string());
    vars.insert("VIGIL_TEST_TOKEN".to_string(), "s3cret".to_string());
    Env {
        vars,
        host_node_name: "testhost".to_string(),
    }
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn load_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
    load_with(&dir.join("vigil.toml"), text, &test_env())
}

/// Load `text` from a fresh temp dir; panic with the errors if it fails.
fn ok(text: &str) -> (TempDir, Config) {
    let dir = tmp();
    match load_in(dir.path(), text) {
        Ok(c) => (dir, c),
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

/// `LINE:COL: key: message` for each error (the file name left out).
fn render(e: &ConfigErrors) -> Vec<String> {
    e.0.iter()
        .map(|e| {
            if e.key.is_empty() {
                format!("{}:{}: {}", e.line, e.col, e.message)
            } else {
                format!("{}:{}: {}: {}", e.line, e.col, e.key, e.message)
            }
        })
        .collect()
}

fn errs_in(dir: &Path, text: &str) -> Vec<String> {
    match load_in(dir, text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => render(&e),
    }
}

fn errs(text: &str) -> Vec<String> {
    errs_in(tmp().path(), text)
}

/// Exactly one error, equal to `want`.
fn err1(text: &str, want: &str) {
    assert_eq!(errs(text), vec![want.to_string()], "for:\n{text}");
}

fn prog<'c>(c: &'c Config, name: &str) -> &'c ProgramConfig {
    match c.program(name) {
        Some(p) => p,
        None => panic!("no program {name}"),
    }
}

fn sig(s: &str) -> Signal {
    match Signal::parse(s) {
        Some(s) => s,
        None => panic!("bad signal {s}"),
    }
}

// ---------------------------------------------------------------- defaults

#[test]
fn devices_and_fifos_are_refused_not_read() {
    let e = super::read_config(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn empty_file_is_valid() {
    let (dir, c) = ok("");
    assert!(c.programs.is_empty());
    assert!(c.groups.is_empty());
    assert_eq!(c.vigil.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.vigil.data_dir, dir.path().join("vigil-data"));
    assert_eq!(c.vigil.log_level, "info");
    assert!(c.vigil.data_dir.is_dir());
    assert!(c.logs_dir().is_dir());
    assert_eq!(c.source, dir.path().join("vigil.toml"));
}

#[test]
fn program_defaults_match_supervisord() {
    let (dir, c) = ok("[program.bot]\ncommand = \"sleep 10\"\n");
    let p = prog(&c, "bot");
    assert_eq!(p.command, "sleep 10");
    assert_eq!(p.directory, None);
    assert!(p.environment.is_empty());
    assert_eq!(p.user, None);
    assert_eq!(p.numprocs, 1);
    assert_eq!(p.numprocs_start, 0);
    assert_eq!(p.process_name, "%(program_name)s");
    assert_eq!(p.priority, 999);
    assert!(p.autostart);
    assert_eq!(p.autorestart, AutoRestart::Unexpected);
    assert_eq!(p.startsecs, 1);
    assert_eq!(p.startretries, 3);
    assert_eq!(p.exitcodes, vec![0]);
    assert_eq!(p.stopsignal, TERM);
    assert_eq!(p.stopwaitsecs, 10);
    assert!(!p.stopasgroup);
    assert!(!p.killasgroup);
    assert!(!p.redirect_stderr);
    assert_eq!(p.backoff, BackoffPolicy::default());
    assert!(!p.events_from_stdout);
    assert!(!p.critical);
    assert!(!p.stdout_events_enabled && !p.stderr_events_enabled);
    assert_eq!(
        (p.stdout_capture_maxbytes, p.stderr_capture_maxbytes),
        (0, 0)
    );
    assert_eq!(p.ready, None);
    assert!(p.depends_on.is_empty());
    assert!(c.eventlisteners.is_empty());
    assert_eq!(c.rpc, None);
    assert_eq!(c.identifier(), "supervisor");
    assert_eq!(p.policy(), Policy::default());
    assert_eq!(p.processes.len(), 1);
    let proc = &p.processes[0];
    assert_eq!(proc.name, "bot");
    assert_eq!(proc.num, 0);
    assert_eq!(proc.argv, vec!["sleep", "10"]);
    let logs = dir.path().join("vigil-data").join("logs");
    assert_eq!(
        proc.stdout_log,
        LogConfig {
            path: Some(logs.join("bot.out.log")),
            maxbytes: 50 * 1024 * 1024,
            backups: 10,
        }
    );
    assert_eq!(proc.stderr_log.path, Some(logs.join("bot.err.log")));
    assert_eq!(c.group_of("bot"), "bot");
}

#[test]
fn programs_and_groups_keep_file_order() {
    let (_d, c) = ok(concat!(
        "[program.zeta]\ncommand = \"z\"\n",
        "[program.alpha]\ncommand = \"a\"\n",
        "[program.mid]\ncommand = \"m\"\n",
        "[group.zz]\nprograms = [\"zeta\"]\n",
        "[group.aa]\nprograms = [\"alpha\", \"mid\"]\n",
    ));
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let groups: Vec<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["zz", "aa"]);
}

// ---------------------------------------------------------------- every option

#[test]
fn every_option_parsed() {
    let dir = tmp();
    std::fs::create_dir(dir.path().join("work")).expect("mkdir");
    let text = r#"
[vigil]
listen = "0.0.0.0:9090"
data_dir = "state"
log_level = "DEBUG"

[program.bot]
command = "/usr/bin/env python3 -u 'bot main.py' --token %(ENV_TOKEN)s"
directory = "work"
environment = { TOKEN = "%(ENV_VIGIL_TEST_TOKEN)s", MODE = "live" }
user = "root"
numprocs = 1
numprocs_start = 3
process_name = "trader_%(process_num)d"
priority = -5
autostart = false
autorestart = true
startsecs = 0
startretries = 7
exitcodes = [0, 2, 255]
stopsignal = "sigint"
stopwaitsecs = 30
stopasgroup = true
killasgroup = true
redirect_stderr = false
stdout_logfile = "logs/%(process_name)s.stdout"
stdout_logfile_maxbytes = "10KB"
stdout_logfile_backups = 0
stderr_logfile = "NONE"
stderr_logfile_maxbytes = 0
stderr_logfile_backups = 2
backoff = "exponential"
backoff_max = 60
events = "stdout"
critical = true
"#
    .replace("%(process_name)s", "%(program_name)s_%(process_num)d");
    let c = match load_in(dir.path(), &text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.vigil.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(c.vigil.data_dir, dir.path().join("state"));
    assert!(dir.path().join("state/logs").is_dir());
    assert_eq!(c.vigil.log_level, "debug");
    let p = prog(&c, "bot");
    assert_eq!(p.directory, Some(dir.path().join("work")));
    assert_eq!(
        p.environment.get("TOKEN").map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(p.environment.get("MODE").map(String::as_str), Some("live"));
    assert_eq!(p.user.as_deref(), Some("root"));
    assert_eq!(p.numprocs_start, 3);
    assert_eq!(p.process_name, "trader_%(process_num)d");
    assert_eq!(p.priority, -5);
    assert!(!p.autostart);
    assert_eq!(p.autorestart, AutoRestart::Always);
    assert_eq!(p.startsecs, 0);
    assert_eq!(p.startretries, 7);
    assert_eq!(p.exitcodes, vec![0, 2, 255]);
    assert_eq!(
        p.stopsignal,
        Signal {
            number: 2,
            name: "INT"
        }
    );
    assert_eq!(p.stopwaitsecs, 30);
    assert!(p.stopasgroup && p.killasgroup);
    assert!(!p.redirect_stderr);
    assert_eq!(
        p.backoff,
        BackoffPolicy {
            step_ms: 1000,
            exponential: true,
            max_ms: Some(60_000),
        }
    );
    assert!(p.events_from_stdout);
    assert!(p.critical);
    let policy = p.policy();
    assert_eq!(policy.startsecs_ms, 0);
    assert_eq!(policy.stopwait_ms, 30_000);
    let proc = &p.processes[0];
    assert_eq!(proc.name, "trader_3");
    assert_eq!(proc.num, 3);
    // The program's own environment is visible to its command.
    assert_eq!(
        proc.argv,
        vec![
            "/usr/bin/env",
            "python3",
            "-u",
            "bot main.py",
            "--token",
            "s3cret"
        ]
    );
    assert_eq!(
        proc.stdout_log,
        LogConfig {
            path: Some(dir.path().join("logs/bot_3.stdout")),
            maxbytes: 10 * 1024,
            backups: 0,
        }
    );
    assert!(
        dir.path().join("logs").is_dir(),
        "log directory created at load"
    );
    assert_eq!(
        proc.stderr_log,
        LogConfig {
            path: None,
            maxbytes: 0,
            backups: 2,
        }
    );
}

#[test]
fn autorestart_forms() {
    for (v, want) in [
        ("true", AutoRestart::Always),
        ("false", AutoRestart::Never),
        ("\"unexpected\"", AutoRestart::Unexpected),
        ("\"UNEXPECTED\"", AutoRestart::Unexpected),
        ("\"true\"", AutoRestart::Always),
        ("\"false\"", AutoRestart::Never),
    ] {
        let (_d, c) = ok(&format!(
            "[program.a]\ncommand = \"x\"\nautorestart = {v}\n"
        ));
        assert_eq!(prog(&c, "a").autorestart, want, "{v}");
    }
}

#[test]
fn stopsignal_forms() {
    for (v, want) in [
        ("\"TERM\"", "TERM"),
        ("\"SIGHUP\"", "HUP"),
        ("\"usr1\"", "USR1"),
        ("\"sigkill\"", "KILL"),
        ("9", "KILL"),
        ("\"15\"", "TERM"),
    ] {
        let (_d, c) = ok(&format!("[program.a]\ncommand = \"x\"\nstopsignal = {v}\n"));
        assert_eq!(prog(&c, "a").stopsignal, sig(want), "{v}");
    }
}

#[test]
fn byte_sizes() {
    for (v, want) in [
        ("0", 0),
        ("1024", 1024),
        ("\"2048\"", 2048),
        ("\"10KB\"", 10 * 1024),
        ("\"50MB\"", 50 * 1024 * 1024),
        ("\"1GB\"", 1024 * 1024 * 1024),
        ("\"1gb\"", 1024 * 1024 * 1024),
        ("\" 5 mb \"", 5 * 1024 * 1024),
    ] {
        let (_d, c) = ok(&format!(
            "[program.a]\ncommand = \"x\"\nstdout_logfile_maxbytes = {v}\nstderr_logfile_maxbytes = {v}\n"
        ));
        let proc = &prog(&c, "a").processes[0];
        assert_eq!(proc.stdout_log.maxbytes, want, "{v}");
        assert_eq!(proc.stderr_log.maxbytes, want, "{v}");
    }
    assert_eq!(parse_bytes("5TB"), None);
    assert_eq!(parse_bytes(""), None);
    assert_eq!(parse_bytes("-1"), None);
    assert_eq!(parse_bytes("99999999999999GB"), None);
}

#[test]
fn killasgroup_defaults_to_stopasgroup() {
    let (_d, c) = ok("[program.a]\ncommand = \"x\"\nstopasgroup = true\n");
    assert!(prog(&c, "a").killasgroup);
    let (_d, c) = ok("[program.a]\ncommand = \"x\"\nkillasgroup = true\n");
    let p = prog(&c, "a");
    assert!(p.killasgroup && !p.stopasgroup);
}

#[test]
fn log_none_off_auto_and_redirect() {
    let (dir, c) = ok(concat!(
        "[program.a]\ncommand = \"x\"\nstdout_logfile = \"off\"\nstderr_logfile = \"None\"\n",
        "[program.b]\ncommand = \"x\"\nstdout_logfile = \"AUTO\"\nredirect_stderr = true\n",
        "stderr_logfile = \"/nonexistent/ignored.log\"\n",
    ));
    let a = &prog(&c, "a").processes[0];
    assert_eq!(
        (a.stdout_log.path.clone(), a.stderr_log.path.clone()),
        (None, None)
    );
    let b = prog(&c, "b");
    assert!(b.redirect_stderr);
    assert_eq!(
        b.processes[0].stdout_log.path,
        Some(dir.path().join("vigil-data/logs/b.out.log"))
    );
    assert_eq!(b.processes[0].stderr_log.path, None);
}

#[test]
fn absolute_log_path_and_data_dir() {
    let dir = tmp();
    let data = dir.path().join("abs-data");
    let log = dir.path().join("deep/er/out.log");
    let text = format!(
        "[vigil]\ndata_dir = {:?}\n[program.a]\ncommand = \"x\"\nstdout_logfile = {:?}\n",
        data.display().to_string(),
        log.display().to_string()
    );
    // Loaded from a different directory: absolute paths are kept.
    let other = tmp();
    let c = match load_in(other.path(), &text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.vigil.data_dir, data);
    assert_eq!(
        prog(&c, "a").processes[0].stdout_log.path,
        Some(log.clone())
    );
    assert!(log.parent().is_some_and(Path::is_dir));
}

// ---------------------------------------------------------------- expansion

#[test]
fn numprocs_expansion() {
    let (dir, c) = ok(concat!(
        "[program.bot]\n",
        "command = \"bot --id %(process_num)d --of %(numprocs)d\"\n",
        "numprocs = 2\n",
        "process_name = \"bot_%(process_num)02d\"\n",
        "stdout_logfile = \"out/%(program_name)s-%(process_num)d.log\"\n",
    ));
    let p = prog(&c, "bot");
    let names: Vec<&str> = p.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bot_00", "bot_01"]);
    let nums: Vec<u32> = p.processes.iter().map(|p| p.num).collect();
    assert_eq!(nums, [0, 1]);
    assert_eq!(p.processes[1].argv, vec!["bot", "--id", "1", "--of", "2"]);
    assert_eq!(
        p.processes[1].stdout_log.path,
        Some(dir.path().join("out/bot-1.log"))
    );
    assert_eq!(
        p.processes[0].stderr_log.path,
        Some(dir.path().join("vigil-data/logs/bot_00.err.log"))
    );

    let (_d, c) = ok(concat!(
        "[program.w]\ncommand = \"w\"\nnumprocs = 3\nnumprocs_start = 8\n",
        "process_name = \"%(program_name)s-%(process_num)d\"\n",
    ));
    let names: Vec<String> = prog(&c, "w")
        .processes
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names, ["w-8", "w-9", "w-10"]);
}

#[test]
fn all_expansion_names() {
    let dir = tmp();
    let here = dir.path().display().to_string();
    let c = match load_in(
        dir.path(),
        concat!(
            "[program.a]\n",
            "command = \"run %(program_name)s %(group_name)s %(here)s %(host_node_name)s %(ENV_HOME)s 100%% %(numprocs)d\"\n",
            "directory = \"%(here)s\"\n",
            "environment = { WHERE = \"%(here)s/%(program_name)s\", G = \"%(group_name)s\" }\n",
            "[group.g]\nprograms = [\"a\"]\n",
        ),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let p = prog(&c, "a");
    assert_eq!(
        p.processes[0].argv,
        vec![
            "run",
            "a",
            "g",
            here.as_str(),
            "testhost",
            "/home/tester",
            "100%",
            "1"
        ]
    );
    assert_eq!(p.directory.as_deref(), Some(dir.path()));
    assert_eq!(p.environment.get("WHERE"), Some(&format!("{here}/a")));
    assert_eq!(p.environment.get("G").map(String::as_str), Some("g"));
    assert_eq!(c.group_of("a"), "g");
}

#[test]
fn data_dir_expansion_and_relative_resolution() {
    let (dir, c) = ok("[vigil]\ndata_dir = \"%(here)s/d1/../d2\"\n");
    assert_eq!(c.vigil.data_dir, dir.path().join("d1/../d2"));
    // `.` components are dropped, `..` kept.
    let (dir, c) = ok("[vigil]\ndata_dir = \"./d0/./d1/../d2\"\n");
    assert_eq!(
        c.vigil.data_dir.to_string_lossy(),
        format!("{}/d0/d1/../d2", dir.path().display())
    );
    let (dir, c) = ok("[vigil]\ndata_dir = \"sub/data\"\n");
    assert_eq!(c.vigil.data_dir, dir.path().join("sub/data"));
    assert!(dir.path().join("sub/data/logs").is_dir());
}

#[test]
fn expansion_errors_are_located_at_the_percent() {
    err1(
        "[program.a]\ncommand = \"run %(nope)s\"\n",
        "2:16: program.a.command: unknown name %(nope); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
    );
    err1(
        "[program.a]\ncommand = 'x %(ENV_VIGIL_UNSET)s'\n",
        "2:14: program.a.command: %(ENV_VIGIL_UNSET): VIGIL_UNSET is not set in vigil's environment",
    );
    err1(
        "[program.a]\ncommand = \"date +%Y\"\n",
        "2:18: program.a.command: '%' must start \"%(name)s\" or be doubled as '%%' for a literal '%'",
    );
    // With escapes in the string the error points at the value.
    err1(
        "[program.a]\ncommand = \"a\\tb %(x)s\"\n",
        "2:11: program.a.command: unknown name %(x); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
    );
    err1(
        "[program.a]\ncommand = \"x\"\nenvironment = { PORT = \"80%(process_num)02d\" }\n",
        "3:27: program.a.environment.PORT: %(process_num) is not available here (this option is per program in vigil, not per process); available names: group_name, here, host_node_name, numprocs, program_name, ENV_<NAME>",
    );
    err1(
        "[program.a]\ncommand = \"x\"\ndirectory = \"/srv/%(process_num)d\"\n",
        "3:19: program.a.directory: %(process_num) is not available here (this option is per program in vigil, not per process); available names: group_name, here, host_node_name, numprocs, program_name, ENV_<NAME>",
    );
    err1(
        "[program.a]\ncommand = \"x\"\nprocess_name = \"%(program_name)d\"\n",
        "3:17: program.a.process_name: %(program_name)d needs a number, but program_name is a string (use %(program_name)s)",
    );
    err1(
        "[vigil]\ndata_dir = \"%(program_name)s\"\n",
        "2:13: vigil.data_dir: unknown name %(program_name); available names: here, host_node_name, ENV_<NAME>",
    );
}

#[test]
fn numprocs_errors_reported_once() {
    // Two processes would each hit the same error; it is reported once.
    err1(
        "[program.a]\ncommand = \"%(bad)s\"\nnumprocs = 2\nprocess_name = \"a%(process_num)d\"\n",
        "2:12: program.a.command: unknown name %(bad); available names: group_name, here, host_node_name, numprocs, process_num, program_name, ENV_<NAME>",
    );
}

// ---------------------------------------------------------------- type errors

#[test]
fn type_errors_say_expected_and_found() {
    let cases: &[(&str, &str)] = &[
        (
            "startsecs = \"abc\"",
            "program.bot.startsecs: expected a non-negative integer, found string \"abc\"",
        ),
        (
            "startsecs = -1",
            "program.bot.startsecs: expected a non-negative integer, found integer -1",
        ),
        (
            "startretries = 1.5",
            "program.bot.startretries: expected a non-negative integer, found float 1.5",
        ),
        (
            "startretries = 4294967296",
            "program.bot.startretries: expected a non-negative integer, found integer 4294967296",
        ),
        (
            "stopwaitsecs = true",
            "program.bot.stopwaitsecs: expected a non-negative integer, found boolean true",
        ),
        (
            "numprocs = 0",
            "program.bot.numprocs: expected a positive integer (at most 10000), found integer 0",
        ),
        (
            "numprocs = 100000",
            "program.bot.numprocs: expected a positive integer (at most 10000), found integer 100000",
        ),
        (
            "numprocs_start = -3",
            "program.bot.numprocs_start: expected a non-negative integer, found integer -3",
        ),
        (
            "priority = \"high\"",
            "program.bot.priority: expected an integer, found string \"high\"",
        ),
        (
            "autostart = \"yes\"",
            "program.bot.autostart: expected a boolean (true or false), found string \"yes\"",
        ),
        (
            "autorestart = \"sometimes\"",
            "program.bot.autorestart: expected true, false or \"unexpected\", found string \"sometimes\"",
        ),
        (
            "autorestart = 1",
            "program.bot.autorestart: expected true, false or \"unexpected\", found integer 1",
        ),
        (
            "exitcodes = 0",
            "program.bot.exitcodes: expected an array of exit codes such as [0, 2], found integer 0",
        ),
        (
            "exitcodes = [\"0\"]",
            "program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found string \"0\"",
        ),
        (
            "exitcodes = [-1]",
            "program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found integer -1",
        ),
        (
            "stopsignal = \"SIGFOO\"",
            "program.bot.stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found string \"SIGFOO\"",
        ),
        (
            "stopsignal = 99",
            "program.bot.stopsignal: expected a signal name or number (HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT, STOP, TSTP, WINCH), found integer 99",
        ),
        (
            "stopasgroup = 1",
            "program.bot.stopasgroup: expected a boolean (true or false), found integer 1",
        ),
        (
            "killasgroup = \"true\"",
            "program.bot.killasgroup: expected a boolean (true or false), found string \"true\"",
        ),
        (
            "redirect_stderr = []",
            "program.bot.redirect_stderr: expected a boolean (true or false), found array",
        ),
        (
            "stdout_logfile = 5",
            "program.bot.stdout_logfile: expected a string, found integer 5",
        ),
        (
            "stdout_logfile = \"\"",
            "program.bot.stdout_logfile: expected a file path, \"AUTO\" or \"NONE\", found string \"\"",
        ),
        (
            "stderr_logfile = \"syslog\"",
            "program.bot.stderr_logfile: expected a file path, \"AUTO\" or \"NONE\", found string \"syslog\"",
        ),
        (
            "stdout_logfile_maxbytes = \"5TB\"",
            "program.bot.stdout_logfile_maxbytes: expected a size in bytes (an integer, optionally with a KB, MB or GB suffix such as \"50MB\"), found string \"5TB\"",
        ),
        (
            "stderr_logfile_maxbytes = -1",
            "program.bot.stderr_logfile_maxbytes: expected a size in bytes (an integer, optionally with a KB, MB or GB suffix such as \"50MB\"), found integer -1",
        ),
        (
            "stdout_logfile_backups = -1",
            "program.bot.stdout_logfile_backups: expected a non-negative integer, found integer -1",
        ),
        (
            "stderr_logfile_backups = \"3\"",
            "program.bot.stderr_logfile_backups: expected a non-negative integer, found string \"3\"",
        ),
        (
            "backoff = \"quadratic\"",
            "program.bot.backoff: expected \"linear\" or \"exponential\", found string \"quadratic\"",
        ),
        (
            "backoff_max = 0",
            "program.bot.backoff_max: expected a positive integer (seconds), found integer 0",
        ),
        (
            "events = \"stderr\"",
            "program.bot.events: expected \"stdout\", found string \"stderr\"",
        ),
        (
            "events = true",
            "program.bot.events: expected \"stdout\", found boolean true",
        ),
        (
            "critical = \"no\"",
            "program.bot.critical: expected a boolean (true or false), found string \"no\"",
        ),
        (
            "environment = \"A=1\"",
            "program.bot.environment: expected a table of strings such as { PORT = \"8080\" }, found string \"A=1\"",
        ),
        (
            "environment = { PORT = 8080 }",
            "program.bot.environment.PORT: expected a string (quote it: \"8080\"), found integer 8080",
        ),
        (
            "environment = { L = [1] }",
            "program.bot.environment.L: expected a string, found array",
        ),
        (
            "directory = 1979-05-27",
            "program.bot.directory: expected a string, found datetime 1979-05-27",
        ),
        (
            "user = 0",
            "program.bot.user: expected a string, found integer 0",
        ),
        (
            "process_name = { a = 1 }",
            "program.bot.process_name: expected a string, found table",
        ),
    ];
    for (line, want) in cases {
        let text = format!("[program.bot]\ncommand = \"x\"\n{line}\n");
        let got = errs(&text);
        assert_eq!(got.len(), 1, "{line}: {got:?}");
        let (pos, rest) = got[0].split_once(' ').unwrap_or_default();
        assert_eq!(rest, *want, "{line}");
        // Located at the value: line 3, after `key = ` (or inside it, for nested values).
        assert!(pos.starts_with("3:"), "{line}: {pos}");
    }
}

#[test]
fn type_error_columns() {
    err1(
        "[program.bot]\ncommand = \"x\"\nstartsecs = \"abc\"\n",
        "3:13: program.bot.startsecs: expected a non-negative integer, found string \"abc\"",
    );
    err1(
        "[program.bot]\ncommand = \"x\"\nexitcodes = [0, 1, 300]\n",
        "3:20: program.bot.exitcodes: expected an exit code (an integer from 0 to 255), found integer 300",
    );
    err1(
        "[program.bot]\ncommand = \"x\"\n  environment = { A = \"1\", B = false }\n",
        "3:32: program.bot.environment.B: expected a string (quote it: \"false\"), found boolean false",
    );
    err1(
        "[program.bot]\ncommand = 42\n",
        "2:11: program.bot.command: expected a string, found integer 42",
    );
    err1(
        "[program]\nbot = 3\n",
        "2:7: program.bot: expected a table ([program.NAME]), found integer 3",
    );
    err1(
        "[[program]]\ncommand = \"x\"\n",
        "1:1: program: expected a table of programs ([program.NAME] sections), found array",
    );
    err1(
        "vigil = \"x\"\n",
        "1:9: vigil: expected a table ([vigil]), found string \"x\"",
    );
}

mod sections;
