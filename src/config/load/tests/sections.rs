//! vigil.toml's sections, names, paths, the examples, listeners, rpc and readiness.

use super::*;

#[test]
fn vigil_section_errors() {
    err1(
        "[vigil]\nlisten = \"localhost:7070\"\n",
        "2:10: vigil.listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found string \"localhost:7070\"",
    );
    err1(
        "[vigil]\nlisten = 7070\n",
        "2:10: vigil.listen: expected a socket address such as \"127.0.0.1:7070\" or \"[::1]:7070\", found integer 7070",
    );
    err1(
        "[vigil]\nlog_level = \"verbose\"\n",
        "2:13: vigil.log_level: expected one of \"error\", \"warn\", \"info\", \"debug\", \"trace\", found string \"verbose\"",
    );
    err1(
        "[vigil]\ndata_dir = 5\n",
        "2:12: vigil.data_dir: expected a string, found integer 5",
    );
    err1(
        "[vigil]\ndata_dir = \"\"\n",
        "2:12: vigil.data_dir: expected a directory path, found string \"\"",
    );
    let (_d, c) = ok("[vigil]\nlisten = \"[::1]:8000\"\nlog_level = \"trace\"\n");
    assert_eq!(c.vigil.listen.to_string(), "[::1]:8000");
    assert_eq!(c.vigil.log_level, "trace");
    assert_eq!(
        c.vigil.reload,
        crate::config::ReloadMode::Apply,
        "vigil.toml's default"
    );
    let (_d, c) = ok("[vigil]\nreload = \"restart\"\n");
    assert_eq!(c.vigil.reload, crate::config::ReloadMode::Restart);
    err1(
        "[vigil]\nreload = \"full\"\n",
        "2:10: vigil.reload: expected \"apply\" or \"restart\", found string \"full\"",
    );
}

// ---------------------------------------------------------------- unknown keys and sections

#[test]
fn unknown_keys_with_did_you_mean() {
    assert_eq!(
        errs(concat!(
            "[vigil]\nlisen = \"127.0.0.1:1\"\nfoo = 1\n",
            "[program.bot]\ncomand = \"x\"\nautorestrat = true\nstdout_logfile_maxbyte = 1\n",
            "umask = \"022\"\nzzzzzz = 1\n",
            "[group.g]\nprogram = [\"bot\"]\n",
        )),
        vec![
            "2:1: vigil.lisen: unknown key, did you mean \"listen\"?",
            "3:1: vigil.foo: unknown key; known keys: listen, data_dir, log_level, reload",
            "4:1: program.bot.command: required key is missing",
            "5:1: program.bot.comand: unknown key, did you mean \"command\"?",
            "6:1: program.bot.autorestrat: unknown key, did you mean \"autorestart\"?",
            "7:1: program.bot.stdout_logfile_maxbyte: unknown key, did you mean \"stdout_logfile_maxbytes\"?",
            "8:1: program.bot.umask: unknown key (a supervisord option vigil does not support)",
            "9:1: program.bot.zzzzzz: unknown key",
            "10:1: group.g.programs: required key is missing",
            "11:1: group.g.program: unknown key, did you mean \"programs\"?",
        ]
    );
}

#[test]
fn unknown_sections() {
    assert_eq!(
        errs(concat!(
            "listen = \"127.0.0.1:1\"\n",
            "junk = 1\n",
            "[programs.bot]\ncommand = \"x\"\n",
            "[alert]\nx = 1\n",
            "[zzz]\n",
        )),
        vec![
            "1:1: listen: unknown top-level key; \"listen\" belongs in the [vigil] section",
            "2:1: junk: unknown top-level key (keys belong in a section such as [vigil] or [program.NAME])",
            "3:2: programs: unknown section, did you mean \"program\"?",
            "5:2: alert: unknown section, did you mean \"alerts\"?",
            "7:2: zzz: unknown section; known sections: vigil, program, group, eventlistener, rpc, checks, rules, halt, alerts, auth, jobs, ingest, cluster, monitoring, venue, events",
        ]
    );
}

#[test]
fn reserved_sections_are_read_by_their_modules() {
    let (_d, c) = ok(concat!(
        "[checks.feed]\nkind = \"freshness\"\nthreshold_s = 5\n",
        "[halt]\nposition_behavior = \"close\"\n",
        "[auth]\nusers = []\n[jobs]\ndev_mode = true\n[ingest]\nfiles = []\n",
        "[cluster]\n[monitoring]\nz = true\n[events]\nmax_age_days = 1\n",
    ));
    assert!(c.programs.is_empty());
    assert_eq!(c.monitor.rules.len(), 1);
    assert_eq!(RESERVED_SECTIONS.len(), 11);
}

/// The monitor's tables are validated in the same pass as the rest, their errors in file
/// order with the others.
#[test]
fn monitor_errors_come_with_the_others() {
    let text = concat!(
        "[program.a]\nstartsecs = \"soon\"\n",
        "[checks.feed]\nkind = \"freshness\"\nthreshold_s = -1\n",
        "[[rules]]\nwhen = 1\n",
    );
    assert_eq!(
        errs(text),
        [
            "1:1: program.a.command: required key is missing",
            "2:13: program.a.startsecs: expected a non-negative integer, found string \"soon\"",
            "5:1: checks.feed.threshold_s: expected a positive number, found -1",
            "6:1: rules: expected a table of tables ([rules.ID] sections), found array",
        ],
        "for:\n{text}"
    );
}

// ---------------------------------------------------------------- program semantics

#[test]
fn missing_command_points_at_header() {
    err1(
        "[vigil]\n\n  [program.bot]\nautostart = true\n",
        "3:3: program.bot.command: required key is missing",
    );
}

#[test]
fn command_splitting_errors() {
    err1(
        "[program.a]\ncommand = \"\"\n",
        "2:11: program.a.command: the command is empty",
    );
    err1(
        "[program.a]\ncommand = \"   \"\n",
        "2:11: program.a.command: the command is empty",
    );
    err1(
        "[program.a]\ncommand = \"echo 'unterminated\"\n",
        "2:11: program.a.command: cannot split the command line: unbalanced quotes or a trailing backslash",
    );
    let (_d, c) = ok("[program.a]\ncommand = '''sh -c \"echo hi; exit 3\"'''\n");
    assert_eq!(
        prog(&c, "a").processes[0].argv,
        vec!["sh", "-c", "echo hi; exit 3"]
    );
}

#[test]
fn invalid_names() {
    assert_eq!(
        errs(concat!(
            "[program.\"a b\"]\ncommand = \"x\"\n",
            "[program.\"c:d\"]\ncommand = \"x\"\n",
            "[program.\"\"]\ncommand = \"x\"\n",
            "[program.ok]\ncommand = \"x\"\nprocess_name = \"p/%(process_num)d\"\n",
            "[group.\"g/h\"]\nprograms = [\"ok\"]\n",
        )),
        vec![
            "1:10: program.a b: invalid program name: contains whitespace",
            "3:10: program.c:d: invalid program name: contains ':'",
            "5:10: program.: invalid program name: is empty",
            "9:16: program.ok.process_name: invalid process name \"p/0\": contains '/'",
            "10:8: group.g/h: invalid group name: contains '/'",
        ]
    );
}

#[test]
fn numprocs_needs_process_num() {
    err1(
        "[program.a]\ncommand = \"x\"\nnumprocs = 2\n",
        "1:1: program.a.process_name: numprocs = 2 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
    );
    err1(
        "[program.a]\ncommand = \"x\"\nnumprocs = 3\nprocess_name = \"a_%(numprocs)d\"\n",
        "4:16: program.a.process_name: numprocs = 3 needs %(process_num) in process_name so each process gets its own name, e.g. \"%(program_name)s_%(process_num)02d\"",
    );
}

#[test]
fn duplicate_process_names() {
    assert_eq!(
        errs(concat!(
            "[program.a]\ncommand = \"x\"\nprocess_name = \"w%(process_num)d\"\nnumprocs = 2\n",
            "[program.b]\ncommand = \"x\"\nprocess_name = \"w1\"\n",
            "[program.w0]\ncommand = \"x\"\n",
        )),
        vec![
            "7:16: program.b.process_name: process name \"w1\" is also used by program \"a\"",
            "8:1: program.w0.process_name: process name \"w0\" is also used by program \"a\"",
        ]
    );
}

#[test]
fn stopasgroup_without_killasgroup_is_an_error() {
    err1(
        "[program.a]\ncommand = \"x\"\nstopasgroup = true\nkillasgroup = false\n",
        "4:15: program.a.killasgroup: cannot be false when stopasgroup = true (as in supervisord: the SIGKILL must reach the group the stop signal reached)",
    );
}

#[test]
fn environment_variable_names() {
    err1(
        "[program.a]\ncommand = \"x\"\nenvironment = { \"A=B\" = \"1\" }\n",
        "3:17: program.a.environment.A=B: invalid variable name (empty, or contains '=' or NUL)",
    );
}

#[test]
fn directory_checks() {
    let dir = tmp();
    std::fs::write(dir.path().join("afile"), "x").expect("write");
    let got = errs_in(
        dir.path(),
        "[program.a]\ncommand = \"x\"\ndirectory = \"missing\"\n[program.b]\ncommand = \"x\"\ndirectory = \"afile\"\n",
    );
    assert_eq!(
        got,
        vec![
            format!(
                "3:13: program.a.directory: directory {} does not exist",
                dir.path().join("missing").display()
            ),
            format!(
                "6:13: program.b.directory: {} is not a directory",
                dir.path().join("afile").display()
            ),
        ]
    );
}

#[test]
fn user_must_exist() {
    err1(
        "[program.a]\ncommand = \"x\"\nuser = \"no-such-user-vigil-test\"\n",
        "3:8: program.a.user: no such user \"no-such-user-vigil-test\"",
    );
    err1(
        "[program.a]\ncommand = \"x\"\nuser = \"\"\n",
        "3:8: program.a.user: expected a user name or uid, found string \"\"",
    );
    let (_d, c) = ok("[program.a]\ncommand = \"x\"\nuser = \"root\"\n");
    assert_eq!(prog(&c, "a").user.as_deref(), Some("root"));
    let (_d, c) = ok("[program.a]\ncommand = \"x\"\nuser = \"0\"\n");
    assert_eq!(prog(&c, "a").user.as_deref(), Some("0"));
}

// ---------------------------------------------------------------- groups

#[test]
fn group_membership() {
    let (_d, c) = ok(concat!(
        "[program.feed]\ncommand = \"f\"\n",
        "[program.bot]\ncommand = \"b\"\n",
        "[program.solo]\ncommand = \"s\"\n",
        "[group.trading]\nprograms = [\"feed\", \"bot\"]\npriority = 10\n",
        "[group.other]\nprograms = [\"solo\"]\n",
    ));
    assert_eq!(
        c.groups,
        vec![
            GroupConfig {
                name: "trading".into(),
                programs: vec!["feed".into(), "bot".into()],
                priority: 10,
            },
            GroupConfig {
                name: "other".into(),
                programs: vec!["solo".into()],
                priority: 999,
            },
        ]
    );
    assert_eq!(c.group_of("bot"), "trading");
    assert_eq!(c.group_of("solo"), "other");
    // A group may carry the name of its own member.
    let (_d, c) = ok("[program.bot]\ncommand = \"b\"\n[group.bot]\nprograms = [\"bot\"]\n");
    assert_eq!(c.group_of("bot"), "bot");
}

#[test]
fn group_errors() {
    assert_eq!(
        errs(concat!(
            "[program.feed]\ncommand = \"f\"\n",
            "[program.bot]\ncommand = \"b\"\n",
            "[group.a]\nprograms = [\"feed\", \"bto\", \"nothing\", 3, \"feed\"]\n",
            "[group.b]\nprograms = [\"feed\"]\npriority = \"x\"\n",
            "[group.c]\nprograms = []\n",
            "[group.d]\nprograms = \"bot\"\n",
            "[group.bot]\nprograms = [\"bot\"]\n",
            "[group.feed]\nprograms = [\"bot\"]\n",
        )),
        vec![
            "6:21: group.a.programs: no program \"bto\", did you mean \"bot\"?",
            "6:28: group.a.programs: no program \"nothing\" (each must be a [program.NAME])",
            "6:39: group.a.programs: expected a program name (string), found integer 3",
            "6:42: group.a.programs: program \"feed\" is listed twice",
            "8:13: group.b.programs: program \"feed\" is already in group \"a\" (a program belongs to at most one group)",
            "9:12: group.b.priority: expected an integer, found string \"x\"",
            "11:12: group.c.programs: expected at least one program name, found an empty array",
            "13:12: group.d.programs: expected an array of program names, found string \"bot\"",
            "16:8: group.feed: group name \"feed\" is also the name of program \"feed\", which is not in this group",
            "17:13: group.feed.programs: program \"bot\" is already in group \"bot\" (a program belongs to at most one group)",
        ]
    );
}

// ---------------------------------------------------------------- paths

#[test]
fn unwritable_log_dir_is_an_error_at_load() {
    let dir = tmp();
    // A regular file where a directory is expected: fails even for root.
    std::fs::write(dir.path().join("blocker"), "x").expect("write");
    let got = errs_in(
        dir.path(),
        "[program.a]\ncommand = \"x\"\nstdout_logfile = \"blocker/sub/a.log\"\nstderr_logfile = \"blocker/a.err\"\n",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(&format!(
            "3:18: program.a.stdout_logfile: cannot use log directory: cannot create directory {}:",
            dir.path().join("blocker/sub").display()
        )),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("4:18: program.a.stderr_logfile: cannot use log directory: "),
        "{got:?}"
    );
}

#[test]
fn unusable_data_dir() {
    let dir = tmp();
    std::fs::write(dir.path().join("blocker"), "x").expect("write");
    let got = errs_in(
        dir.path(),
        "[vigil]\ndata_dir = \"blocker\"\n[program.a]\ncommand = \"x\"\n",
    );
    assert_eq!(
        got,
        vec![format!(
            "2:12: vigil.data_dir: {} is not a directory",
            dir.path().join("blocker").display()
        )]
    );
    // The default data_dir: the error points at [vigil], or at 1:1 without one.
    let dir = tmp();
    std::fs::write(dir.path().join("vigil-data"), "x").expect("write");
    let got = errs_in(dir.path(), "# comment\n[program.a]\ncommand = \"x\"\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("1:1: vigil.data_dir: "), "{got:?}");
    let got = errs_in(dir.path(), "\n[vigil]\nlisten = \"127.0.0.1:1\"\n");
    assert!(got[0].starts_with("2:1: vigil.data_dir: "), "{got:?}");
    // A file where the logs directory goes.
    let dir = tmp();
    std::fs::create_dir(dir.path().join("d")).expect("mkdir");
    std::fs::write(dir.path().join("d/logs"), "x").expect("write");
    let got = errs_in(dir.path(), "[vigil]\ndata_dir = \"d\"\n");
    assert_eq!(
        got,
        vec![format!(
            "2:12: vigil.data_dir: {} is not a directory",
            dir.path().join("d/logs").display()
        )]
    );
}

#[test]
fn log_file_checks() {
    let dir = tmp();
    std::fs::create_dir(dir.path().join("adir")).expect("mkdir");
    let got = errs_in(
        dir.path(),
        concat!(
            "[program.a]\ncommand = \"x\"\nstdout_logfile = \"adir\"\n",
            "[program.b]\ncommand = \"x\"\nstdout_logfile = \"shared.log\"\n",
            "[program.c]\ncommand = \"x\"\nstderr_logfile = \"shared.log\"\n",
            "[program.d]\ncommand = \"x\"\nstdout_logfile = \"/dev/null\"\n",
            "[program.e]\ncommand = \"x\"\nnumprocs = 2\nprocess_name = \"e%(process_num)d\"\nstdout_logfile = \"e.log\"\n",
        ),
    );
    assert_eq!(
        got,
        vec![
            format!("3:18: program.a.stdout_logfile: {} is a directory", dir.path().join("adir").display()),
            format!(
                "9:18: program.c.stderr_logfile: log file {} is also used by program.b.stdout_logfile (process b)",
                dir.path().join("shared.log").display()
            ),
            "12:18: program.d.stdout_logfile: /dev/null is not a regular file and cannot be rotated; set stdout_logfile_maxbytes = 0".to_string(),
            format!(
                "17:18: program.e.stdout_logfile: log file {} is also used by program.e.stdout_logfile (process e0)",
                dir.path().join("e.log").display()
            ),
        ]
    );
    let (_d, c) = ok(
        "[program.d]\ncommand = \"x\"\nstdout_logfile = \"/dev/stdout\"\nstdout_logfile_maxbytes = 0\n",
    );
    assert_eq!(
        prog(&c, "d").processes[0].stdout_log.path,
        Some(PathBuf::from("/dev/stdout"))
    );
}

// ---------------------------------------------------------------- all errors at once

#[test]
fn all_errors_reported_together_in_file_order() {
    let got = errs(concat!(
        "[program.b]\n",           // 1
        "command = \"x\"\n",       // 2
        "startsecs = \"slow\"\n",  // 3
        "stopsignal = \"NOPE\"\n", // 4
        "[vigil]\n",               // 5
        "listen = \"x\"\n",        // 6
        "[program.a]\n",           // 7
        "numprocs = 0\n",          // 8
        "[group.g]\n",             // 9
        "programs = [\"zzz\"]\n",  // 10
        "[bogus]\n",               // 11
    ));
    let positions: Vec<&str> = got.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        positions,
        [
            "3:13:", "4:14:", "6:10:", "7:1:", "8:12:", "10:13:", "11:2:"
        ],
        "{got:#?}"
    );
}

#[test]
fn syntax_errors_are_located() {
    assert_eq!(
        errs("[vigil]\nlisten = \n"),
        vec!["2:10: TOML syntax error: string values must be quoted, expected literal string"]
    );
    let got = errs("[program.a]\ncommand = \"x\"\ncommand = \"y\"\n");
    assert_eq!(got, vec!["3:1: TOML syntax error: duplicate key"]);
    let got = errs("[program.a\ncommand = 'a'\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("1:11: TOML syntax error: "), "{got:?}");
}

#[test]
fn display_and_unreadable_file() {
    let dir = tmp();
    let missing = dir.path().join("nope.toml");
    let e = match load(&missing) {
        Ok(_) => panic!("loaded a missing file"),
        Err(e) => e,
    };
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].line, 0);
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read the config file: ",
            missing.display()
        )),
        "{e}"
    );
    let path = dir.path().join("v.toml");
    std::fs::write(
        &path,
        "[program.bot]\ncommand = \"x\"\nstartsecs = \"abc\"\nnumprocs = 0\n",
    )
    .expect("write");
    let e = match load(&path) {
        Ok(_) => panic!("loaded a bad file"),
        Err(e) => e,
    };
    let p = path.display();
    assert_eq!(
        e.to_string(),
        format!(
            "{p}:3:13: program.bot.startsecs: expected a non-negative integer, found string \"abc\"\n\
             {p}:4:12: program.bot.numprocs: expected a positive integer (at most 10000), found integer 0"
        )
    );
    std::fs::write(&path, "a = = 1\n").expect("write");
    let e = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.starts_with(&format!("{p}:1:5: TOML syntax error: ")),
        "{e}"
    );
}

#[test]
fn line_col_counts_characters() {
    let t = "ab\r\né=\"x\"\n\nlast";
    assert_eq!(line_col(t, 0), (1, 1));
    assert_eq!(line_col(t, 2), (1, 3));
    assert_eq!(line_col(t, 4), (2, 1));
    // After the two-byte 'é'.
    assert_eq!(line_col(t, 6), (2, 2));
    // Inside 'é': snapped back to its start.
    assert_eq!(line_col(t, 5), (2, 1));
    assert_eq!(line_col(t, t.len()), (4, 5));
    assert_eq!(line_col(t, 1000), (4, 5));
    // The indexed form (what every error of a load uses) agrees at every offset.
    for text in [t, "", "\n", "\n\nx", "no newline", "é\nü\n"] {
        let starts = super::context::line_starts(text);
        for off in 0..=text.len() + 2 {
            assert_eq!(
                super::context::line_col_in(text, &starts, off),
                line_col(text, off),
                "{text:?} at {off}"
            );
        }
    }
    // Columns after non-ASCII text in a real error.
    err1(
        "[program.a]\ncommand = \"x\"\nenvironment = { GREETING = \"héllo\", N = 1 }\n",
        "3:41: program.a.environment.N: expected a string (quote it: \"1\"), found integer 1",
    );
}

// ---------------------------------------------------------------- tests/data/config

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config")
}

/// Copy an example to a temp dir (so nothing is created in the source tree) and load it.
fn load_example(name: &str) -> (TempDir, Result<Config, ConfigErrors>) {
    let dir = tmp();
    let text = std::fs::read_to_string(data_dir().join(name)).expect("read example");
    let r = load_with(&dir.path().join(name), &text, &test_env());
    (dir, r)
}

#[test]
fn example_full_toml_loads() {
    let (dir, r) = load_example("full.toml");
    let c = match r {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(c.programs.len() >= 3);
    let feed = prog(&c, "feed");
    let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["feed_00", "feed_01"]);
    assert_eq!(c.group_of("bot"), "trading");
    assert!(dir.path().join("vigil-data/logs").is_dir());
    assert_eq!(prog(&c, "bot").depends_on, ["feed"]);
    assert!(prog(&c, "bot").ready.is_some());
    assert_eq!(c.eventlisteners.len(), 1);
    assert!(
        c.rpc
            .as_ref()
            .is_some_and(|r| r.inet.is_some() && r.unix.is_some())
    );
}

/// The `[eventlistener.NAME]` and `[rpc]` examples of docs/config.md load.
#[test]
fn docs_listener_and_rpc_examples_load() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
    let doc = std::fs::read_to_string(doc).expect("read docs/config.md");
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|b| b.contains("[eventlistener.") || b.contains("[rpc]"))
        .collect();
    assert_eq!(blocks.len(), 2);
    for b in blocks {
        let (_d, c) = ok(b);
        assert!(!c.eventlisteners.is_empty() || c.rpc.is_some());
    }
}

#[test]
fn docs_example_loads() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md");
    let doc = std::fs::read_to_string(doc).expect("read docs/config.md");
    let example: String = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_default()
        .to_string();
    assert!(example.contains("[program.bot]"));
    let dir = tmp();
    let mut env = test_env();
    env.vars.insert("KRAKEN_API_KEY".into(), "k".into());
    let c = match load_with(&dir.path().join("vigil.toml"), &example, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let feed = prog(&c, "feed");
    let names: Vec<&str> = feed.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["feed_00", "feed_01"]);
    assert_eq!(
        prog(&c, "bot")
            .environment
            .get("API_KEY")
            .map(String::as_str),
        Some("k")
    );
}

/// Each bad example fails with exactly the lines its README section lists.
#[test]
fn example_bad_files_match_readme() {
    let readme = std::fs::read_to_string(data_dir().join("README.md")).expect("read README");
    let mut checked = 0;
    for (file, want) in crate::config::test_support::readme_sections(&readme) {
        if !file.ends_with(".toml") || file == "full.toml" {
            continue;
        }
        let (_d, r) = load_example(&file);
        let got: Vec<String> = match r {
            Ok(_) => panic!("{file} loaded without errors"),
            Err(e) => {
                e.0.iter()
                    .map(|e| {
                        let e = ConfigError {
                            file: PathBuf::from(&file),
                            ..e.clone()
                        };
                        e.to_string()
                    })
                    .collect()
            }
        };
        assert_eq!(got, want, "{file}");
        checked += 1;
    }
    assert!(checked >= 3, "README lists {checked} bad files");
}

// ---------------------------------------------------------------- issue 3 additions

#[test]
fn capture_and_log_events() {
    let (_d, c) = ok(concat!(
        "[program.bot]\ncommand = \"bot\"\n",
        "stdout_capture_maxbytes = \"1MB\"\nstderr_capture_maxbytes = 512\n",
        "stdout_events_enabled = true\nstderr_events_enabled = false\n",
    ));
    let p = prog(&c, "bot");
    assert_eq!(p.stdout_capture_maxbytes, 1 << 20);
    assert_eq!(p.stderr_capture_maxbytes, 512);
    assert!(p.stdout_events_enabled && !p.stderr_events_enabled);
}

#[test]
fn eventlistener_tables() {
    let (_d, c) = ok(concat!(
        "[eventlistener.crash]\n",
        "command = \"crashmail -a\"\n",
        "events = [\"process_state_exited\", \"TICK_60\", \"PROCESS_STATE_EXITED\"]\n",
        "[eventlistener.pool]\n",
        "command = \"l\"\n",
        "events = \"EVENT, VIGIL_CHECK\"\n",
        "numprocs = 2\n",
        "process_name = \"%(program_name)s_%(process_num)d\"\n",
        "buffer_size = 64\n",
        "priority = 4\n",
        "result_handler = \"supervisor.dispatchers:default_handler\"\n",
    ));
    let crash = c.eventlistener("crash").expect("crash");
    assert_eq!(crash.events, ["PROCESS_STATE_EXITED", "TICK_60"]);
    assert_eq!((crash.priority, crash.program.priority), (-1, 999));
    assert_eq!(crash.buffer_size, DEFAULT_BUFFER_SIZE);
    assert_eq!(crash.program.processes[0].argv, ["crashmail", "-a"]);
    let pool = c.eventlistener("pool").expect("pool");
    assert_eq!(pool.events, ["EVENT", "VIGIL_CHECK"]);
    assert_eq!((pool.priority, pool.program.priority), (4, 4));
    assert_eq!(pool.buffer_size, 64);
    let names: Vec<&str> = pool
        .program
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["pool_0", "pool_1"]);
    assert_eq!(
        errs(concat!(
            "[program.x]\ncommand = \"x\"\n",
            "[eventlistener.x]\n",
            "command = \"l\"\n",
            "events = [\"PROCESS_STAT\", 5]\n",
            "redirect_stderr = true\n",
            "buffer_size = 0\n",
            "result_handler = \"mine:handler\"\n",
            "ready_http = \"http://x/\"\n",
            "critical = true\n",
            "[eventlistener.none]\ncommand = \"l\"\n",
        )),
        vec![
            "3:16: eventlistener.x: the event listener pool \"x\" is a process group, and program \"x\" has the same name",
            "5:11: eventlistener.x.events: unknown event type PROCESS_STAT, did you mean PROCESS_STATE?",
            "5:27: eventlistener.x.events: expected an event type name (string), found integer 5",
            "6:19: eventlistener.x.redirect_stderr: cannot be true for an event listener: stdout is the protocol channel (as in supervisord)",
            "7:15: eventlistener.x.buffer_size: expected a positive integer, found integer 0",
            "8:18: eventlistener.x.result_handler: only supervisor.dispatchers:default_handler is supported (a listener's reply OK accepts the event, anything else rejects it)",
            "9:1: eventlistener.x.ready_http: not available for event listeners (a listener's stdout is the protocol channel)",
            "11:1: eventlistener.none.events: required key is missing",
        ]
    );
}

#[test]
fn rpc_section() {
    let (d, c) = ok(concat!(
        "[rpc]\n",
        "identifier = \"desk\"\n",
        "logfile = \"logs/supervisord.log\"\n",
        "logfile_maxbytes = \"1MB\"\n",
        "logfile_backups = 2\n",
        "pidfile = \"%(here)s/run/vigil.pid\"\n",
        "[rpc.inet]\n",
        "port = 9001\n",
        "username = \"user\"\n",
        "password = \"{SHA}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\"\n",
        "[rpc.unix]\n",
        "file = \"run/supervisor.sock\"\n",
        "chmod = 0o770\n",
    ));
    let rpc = c.rpc.as_ref().expect("rpc");
    assert_eq!(c.identifier(), "desk");
    assert_eq!(
        rpc.logfile,
        Some(LogConfig {
            path: Some(d.path().join("logs/supervisord.log")),
            maxbytes: 1 << 20,
            backups: 2
        })
    );
    assert_eq!(rpc.pidfile, Some(d.path().join("run/vigil.pid")));
    let inet = rpc.inet.as_ref().expect("inet");
    assert_eq!(inet.addr.to_string(), "0.0.0.0:9001");
    assert!(inet.auth.as_ref().is_some_and(|a| a.verify("user", "test")));
    let unix = rpc.unix.as_ref().expect("unix");
    assert_eq!(unix.path, d.path().join("run/supervisor.sock"));
    assert_eq!(unix.chmod, 0o770);
    assert_eq!(unix.auth, None);
    assert_eq!(
        errs(concat!(
            "[rpc]\nidentifer = \"x\"\n",
            "[rpc.inet]\nport = \"localhost:x\"\nusername = \"u\"\n",
            "[rpc.unix]\nchmod = 700\n",
        )),
        vec![
            "2:1: rpc.identifer: unknown key, did you mean \"identifier\"?",
            "3:1: rpc.inet: incomplete authentication: set both username and password, or neither",
            "4:8: rpc.inet.port: expected a port (1-65535) or HOST:PORT such as \"127.0.0.1:9001\", found \"localhost:x\"",
            "6:1: rpc.unix.file: required key is missing",
            "7:9: rpc.unix.chmod: expected an octal mode such as \"0700\" (a string) or 0o700, found integer 700",
        ]
    );
}

#[test]
fn readiness_and_depends_on() {
    let (_d, c) = ok(concat!(
        "[program.db]\ncommand = \"db\"\nready_tcp = \"[::1]:5432\"\n",
        "[program.api]\ncommand = \"api\"\nready_http = \"http://127.0.0.1:8080/health\"\n",
        "ready_interval = 0.5\nready_timeout = 2\nready_retries = 5\ndepends_on = [\"db\"]\n",
        "[program.bot]\ncommand = \"bot\"\nready_command = \"check %(program_name)s\"\n",
        "depends_on = [\"api\", \"db\"]\n",
    ));
    assert_eq!(
        prog(&c, "db").ready.as_ref().map(|r| r.probe.clone()),
        Some(ReadinessProbe::Tcp {
            host: "::1".into(),
            port: 5432
        })
    );
    let api = prog(&c, "api");
    let r = api.ready.as_ref().expect("ready");
    assert_eq!((r.interval_ms, r.timeout_ms, r.retries), (500, 2000, 5));
    assert_eq!(api.depends_on, ["db"]);
    let bot = prog(&c, "bot");
    assert_eq!(
        bot.ready
            .as_ref()
            .map(|r| (r.probe.clone(), r.interval_ms, r.timeout_ms, r.retries)),
        Some((
            ReadinessProbe::Command {
                argv: vec!["check".into(), "bot".into()]
            },
            DEFAULT_READY_INTERVAL_MS,
            DEFAULT_READY_TIMEOUT_MS,
            DEFAULT_READY_RETRIES
        ))
    );
    assert_eq!(bot.depends_on, ["api", "db"]);
    assert_eq!(
        errs(concat!(
            "[program.a]\ncommand = \"a\"\ndepends_on = [\"b\", \"zz\", 3]\n",
            "ready_http = \"ftp://x\"\nready_interval = -1\n",
            "[program.b]\ncommand = \"b\"\ndepends_on = [\"c\"]\n",
            "[program.c]\ncommand = \"c\"\ndepends_on = [\"b\"]\nready_retries = 0\n",
        )),
        vec![
            "3:20: program.a.depends_on: no program \"zz\" (each must be a program)",
            "3:26: program.a.depends_on: expected program name (string), found integer 3",
            "4:14: program.a.ready_http: expected an http:// URL such as \"http://127.0.0.1:8080/health\", found \"ftp://x\"",
            "5:18: program.a.ready_interval: expected a positive number of seconds (at most 86400, e.g. 1 or 0.5), found integer -1",
            "8:15: program.b.depends_on: dependency cycle: b -> c -> b",
            "12:17: program.c.ready_retries: expected a positive integer, found integer 0",
        ]
    );
}
