use super::*;
use crate::config::{Credentials, EventListenerConfig, GroupConfig, Password};
use tempfile::TempDir;
use vigil_core::program::BackoffPolicy;

fn test_env() -> Env {
    let mut vars = BTreeMap::new();
    vars.insert("HOME".to_string(), "/home/tester".to_string());
    vars.insert("VIGIL_TEST_TOKEN".to_string(), "s3cret".to_string());
    vars.insert("PORT_BASE".to_string(), "80".to_string());
    Env {
        vars,
        host_node_name: "testhost".to_string(),
    }
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

fn load_in(dir: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let p = write(dir, "supervisord.conf", text);
    load_with(&p, text, &test_env())
}

fn ok(text: &str) -> (TempDir, Config) {
    let dir = tmp();
    match load_in(dir.path(), text) {
        Ok(c) => (dir, c),
        Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
    }
}

/// `LINE: key: message` per error (file names left out; `FILE:` kept for other files).
fn render(dir: &Path, e: &ConfigErrors) -> Vec<String> {
    e.0.iter()
        .map(|e| {
            let mut s = String::new();
            if e.file != dir.join("supervisord.conf") {
                let rel = e.file.strip_prefix(dir).unwrap_or(&e.file);
                s.push_str(&format!("{}:", rel.display()));
            }
            assert_eq!(e.col, 0, "INI errors have no column: {e}");
            s.push_str(&e.line.to_string());
            if !e.key.is_empty() {
                s.push_str(&format!(": {}", e.key));
            }
            s.push_str(&format!(": {}", e.message));
            s
        })
        .collect()
}

fn errs_in(dir: &Path, text: &str) -> Vec<String> {
    match load_in(dir, text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => render(dir, &e),
    }
}

fn errs(text: &str) -> Vec<String> {
    errs_in(tmp().path(), text)
}

/// The warnings of a config that loads: `[FILE:]LINE:COL: key: message`.
fn warns_in(dir: &Path, text: &str) -> Vec<String> {
    match load_in(dir, text) {
        Ok(c) => c
            .warnings
            .iter()
            .map(|w| {
                let mut s = String::new();
                if w.file != dir.join("supervisord.conf") {
                    let rel = w.file.strip_prefix(dir).unwrap_or(&w.file);
                    s.push_str(&format!("{}:", rel.display()));
                }
                format!("{s}{}:{}: {}: {}", w.line, w.col, w.key, w.message)
            })
            .collect(),
        Err(e) => panic!("unexpected errors:\n{e}\nfor:\n{text}"),
    }
}

fn prog<'c>(c: &'c Config, name: &str) -> &'c ProgramConfig {
    match c.program(name) {
        Some(p) => p,
        None => panic!("no program {name}"),
    }
}

fn listener<'c>(c: &'c Config, name: &str) -> &'c EventListenerConfig {
    match c.eventlistener(name) {
        Some(l) => l,
        None => panic!("no listener {name}"),
    }
}

fn argv(c: &Config, name: &str) -> Vec<Vec<String>> {
    prog(c, name)
        .processes
        .iter()
        .map(|p| p.argv.clone())
        .collect()
}

// ------------------------------------------------------------------ the reader

#[test]
fn inline_comments_need_whitespace_before() {
    assert_eq!(comment_start("command=sh -c 'a;b'"), None);
    assert_eq!(comment_start("command=sh -c 'a;b' ; run"), Some(20));
    assert_eq!(comment_start("url=http://x/#frag"), None);
    assert_eq!(comment_start("a=1\t# tab"), Some(4));
    assert_eq!(comment_start("; full line"), Some(0));
    assert_eq!(comment_start("   # indented comment"), Some(0));
    // Python's rounds: the first qualifying `#` ends the search before a later-found `;`.
    assert_eq!(comment_start("a;b;c ;d #e"), Some(9));
    assert_eq!(comment_start("x #a;b ;c"), Some(2));
}

#[test]
fn values_as_supervisord_reads_them() {
    let (_d, c) = ok(concat!(
        "[supervisord]\n",
        "; a comment\n",
        "# another\n",
        "[program:semi]\n",
        "command=sh -c 'echo a;echo b' ; trailing comment\n",
        "[program:cont]\n",
        "COMMAND = /bin/echo one\n",
        "    two ; comment on a continuation\n",
        "\n",
        "    three\n",
        "AutoStart: no\n",
        "[program:dup]\n",
        "command=first\n",
        "command=second\n",
        "[program:semi]\n",
        "priority=5\n",
    ));
    assert_eq!(argv(&c, "semi"), vec![vec!["sh", "-c", "echo a;echo b"]]);
    assert_eq!(prog(&c, "semi").priority, 5, "sections merge");
    let cont = prog(&c, "cont");
    assert_eq!(cont.command, "/bin/echo one\ntwo\n\nthree");
    assert_eq!(
        argv(&c, "cont"),
        vec![vec!["/bin/echo", "one", "two", "three"]]
    );
    assert!(
        !cont.autostart,
        "keys are case-insensitive; ':' works as '='"
    );
    assert_eq!(prog(&c, "dup").command, "second", "the last value wins");
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["semi", "cont", "dup"], "order of first appearance");
}

#[test]
fn syntax_errors_stop_with_their_lines() {
    assert_eq!(
        errs(concat!(
            "command=x\n",
            "[supervisord]\n",
            "this line has no equals sign\n",
            "= no name\n",
            "[program:a] junk\n",
            "command=x\n",
            "[program:b]\n",
            "umask=1\n",
        )),
        vec![
            "1: a [section] header must come before any option (this line is outside every section)",
            "3: cannot parse \"this line has no equals sign\": expected `option = value`, a [section] header, a comment, or a continuation line indented more than its option",
            "4: an option name is missing before the '=' or ':'",
            "5: unexpected text \"junk\" after the section header",
        ]
    );
}

// ------------------------------------------------------------------ includes

#[test]
fn includes_globs_sorted_relative_no_recursion() {
    let dir = tmp();
    let d = dir.path();
    write(
        d,
        "conf.d/20-b.conf",
        "[program:b]\ncommand=/bin/b %(here)s\n",
    );
    write(
        d,
        "conf.d/10-a.conf",
        "[program:a]\ncommand=/bin/a\n[supervisord]\nidentifier=fromincl\n",
    );
    write(d, "conf.d/skip.txt", "[program:nope]\ncommand=x\n");
    write(d, "other/c.ini", "[program:c]\ncommand=/bin/c\n");
    let text = "[supervisord]\n[include]\nfiles = conf.d/*.conf other/c.ini empty/*.conf\n[program:main]\ncommand=/bin/main %(here)s\n";
    let c = match load_in(d, text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["main", "a", "b", "c"]);
    assert_eq!(c.identifier(), "fromincl");
    let here = d.to_string_lossy().into_owned();
    assert_eq!(
        argv(&c, "main"),
        vec![vec!["/bin/main".to_string(), here.clone()]]
    );
    assert_eq!(
        argv(&c, "b"),
        vec![vec!["/bin/b".to_string(), format!("{here}/conf.d")]],
        "%(here)s is the directory of the file holding the value"
    );

    // An [include] inside an included file, a missing literal file, a bad option there.
    write(
        d,
        "conf.d/30-inc.conf",
        "[include]\nfiles=x.conf\n[program:z]\ncommand=z\nbogus=1\n",
    );
    assert_eq!(
        errs_in(d, "[supervisord]\n[include]\nfiles = conf.d/*.conf missing.conf\n"),
        vec![
            "3: [include] files: ".to_string() + &d.join("missing.conf").display().to_string() + " does not exist",
            "conf.d/30-inc.conf:1: section [include] is not supported in an included file (supervisord ignores it; put every include in the main file)".to_string(),
        ]
    );
    std::fs::remove_file(d.join("conf.d/30-inc.conf")).expect("rm");
    write(d, "conf.d/30-bad.conf", "[program:z]\ncommand=z\nbogus=1\n");
    assert_eq!(
        warns_in(
            d,
            "[supervisord]\n[include]\nfiles = conf.d/*.conf\nfoo=1\n"
        ),
        vec![
            "4:1: [include] foo: unknown option, ignored (known options: files)",
            "conf.d/30-bad.conf:3:1: [program:z] bogus: unknown option, ignored",
        ]
    );
    assert_eq!(
        errs_in(d, "[supervisord]\n[include]\n"),
        vec!["2: [include] files: required option is missing"]
    );
}

/// Cases checked against Python 3.11's `RawConfigParser(inline_comment_prefixes=(';', '#'),
/// strict=False)`: the text, and the value of `k` in `[s]` (`None`: a parse error).
#[test]
fn reader_matches_python_configparser() {
    let cases: &[(&str, Option<&str>)] = &[
        ("[s]\nk==a\"b;%%\"\n  cont\n", Some("=a\"b;%%\"\ncont")),
        ("[s]\nk=\"=a;a' #=\n  cont'\n", Some("\"=a;a'\ncont'")),
        (
            "[s]\nk=b\"a\";x%'\n  cont\tx\"\n",
            Some("b\"a\";x%'\ncont\tx\""),
        ),
        (
            "[s]\nk=x\t#; ;b\"#'x\tx#\n  contbb'=\n",
            Some("x\ncontbb'="),
        ),
        ("[s]\nk=\"xbb#x%\n  cont\n", Some("\"xbb#x%\ncont")),
        ("[s]\nk=# ;\n  cont=xb\n", Some("#\ncont=xb")),
        (
            "[s]\nk=;ax\" ##a =\n  cont\t\"\"\t\n",
            Some(";ax\"\ncont\t\"\""),
        ),
        (
            "[s]\nk=ab;\"= %#\t\n  cont\txbb\n",
            Some("ab;\"= %#\ncont\txbb"),
        ),
        ("[s]\nk=xxxx#b b\t#x '\n  cont\n", Some("xxxx#b b\ncont")),
        (
            "[s]\nk=b#'\t \t;'''\t%;\n  cont;;=;\n",
            Some("b#'\ncont;;=;"),
        ),
        ("[s]\nk=;\t;x\"\"a\n  cont%\t%\n", Some(";\ncont%\t%")),
        (
            "[s]\nk==;x =%\tb=x=b  \n  conta\n",
            Some("=;x =%\tb=x=b\nconta"),
        ),
        (
            "[s]\nk=\t '' aa%b' =;;\n  cont\n",
            Some("'' aa%b' =;;\ncont"),
        ),
        ("[s]\nk=;#';\n  cont\"\t#'= \n", Some(";#';\ncont\"")),
        (
            "[s]\nk='a;;#ab'x'abx\t\n  cont'\"';\n",
            Some("'a;;#ab'x'abx\ncont'\"';"),
        ),
        (
            "[s]\nk=#x''x';'#';\n  contx =b=x\n",
            Some("#x''x';'#';\ncontx =b=x"),
        ),
        ("[s]\nk=b%;=b\n  cont%\n", Some("b%;=b\ncont%")),
        (
            "[s]\nk= x;b=x %; ='=\t\n  cont;\t\t\n",
            Some("x;b=x %; ='=\ncont;"),
        ),
        ("[s]\nk='bb;\n  cont\n", Some("'bb;\ncont")),
        ("[s]\nk=#\n  conta \n", Some("#\nconta")),
        ("[s]\nk= =%#\n  cont ''\n", Some("=%#\ncont ''")),
        ("[s]\nk=x\tb#a =b#\n  cont\n", Some("x\tb#a =b#\ncont")),
        (
            "[s]\nk=b#b\";b#bxa\n  cont'=\n",
            Some("b#b\";b#bxa\ncont'="),
        ),
        (
            "[s]\nk=#\" a';b #a ;#%\n  cont';\n",
            Some("#\" a';b\ncont';"),
        ),
        (
            "[s]\nk=xb%%=%x'='#;;\t\n  cont%\n",
            Some("xb%%=%x'='#;;\ncont%"),
        ),
        (
            "[s]\nk= ab%#= ab%='%\n  cont\";\n",
            Some("ab%#= ab%='%\ncont\";"),
        ),
        ("[s]\nk=#ax  #xa#\t\t\n  cont\t;a#\n", Some("#ax\ncont")),
        ("[s]\nk=#'%;;'a\n  cont\n", Some("#'%;;'a\ncont")),
        ("[s]\nk=a##%;b\n  cont' %\"\n", Some("a##%;b\ncont' %\"")),
        ("[s]\nk=\tx #\"%\n  conta\n", Some("x\nconta")),
        (
            "[s]\nk=#;;;%xx=bx%#a\n  cont%%;b\n",
            Some("#;;;%xx=bx%#a\ncont%%;b"),
        ),
        ("[s]\nk= \t#%#\"\" a\n  contax#\n", Some("\ncontax#")),
        (
            "[s]\nk=b;%x#'#xxx\n  contb';#bx\n",
            Some("b;%x#'#xxx\ncontb';#bx"),
        ),
        (
            "[s]\nk='x#=;;b\"b '#\t\n  cont\"\n",
            Some("'x#=;;b\"b '#\ncont\""),
        ),
        (
            "[s]\nk=%'#b\t;xx=a ax\n  contx=# =\n",
            Some("%'#b\ncontx=# ="),
        ),
        ("[s]\nk=;\n  conta##\tb\n", Some(";\nconta##\tb")),
        (
            "[s]\nk==\"b\t=#\n  conta#ba%#\n",
            Some("=\"b\t=#\nconta#ba%#"),
        ),
        ("[s]\nk= ;#='\t;\t=a\n  cont%='';b\n", Some("\ncont%='';b")),
        (
            "[s]\nk=#xa'  x=\t###%\n  cont=%\n",
            Some("#xa'  x=\ncont=%"),
        ),
        ("[s]\nk=#x'\n  cont=b % \n", Some("#x'\ncont=b %")),
    ];
    for (text, want) in cases {
        let mut cx = Ctx::new();
        cx.add_file(PathBuf::from("/x.conf"), (*text).to_string(), false);
        let mut doc = IniDoc {
            sections: Vec::new(),
            dirs: vec![PathBuf::from("/")],
        };
        let got = if read_ini(&mut cx, &mut doc, 0, false) > 0 {
            None
        } else {
            doc.section("s")
                .and_then(|s| s.get("k"))
                .map(|e| e.value.clone())
        };
        assert_eq!(got.as_deref(), *want, "{text:?}");
    }
}

/// A bounded fuzz of the reader's pieces: random text never makes them panic.
#[test]
fn reader_survives_garbage() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = "[]=:;# \t\n\r%()sdabc_-,\"'é\\*?!".chars().collect();
    for _ in 0..3000 {
        let len = (next() % 100) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let mut cx = Ctx::new();
        cx.add_file(PathBuf::from("/fuzz.conf"), text.clone(), false);
        let mut doc = IniDoc {
            sections: Vec::new(),
            dirs: vec![PathBuf::from("/")],
        };
        let _ = read_ini(&mut cx, &mut doc, 0, false);
        let _ = cx.finish();
        for line in text.lines() {
            let _ = comment_start(line);
            let _ = section_header(line);
        }
        let _ = parse_kv_pairs(&text);
        let _ = fnmatch(&text, "ab[c]*");
        let _ = fnmatch("a*b?[!c-d]", &text);
        let _ = subst(&text, &|n| (n == "here").then(|| "/h".to_string()));
        let _ = parse_int(&text);
    }
}

#[test]
fn glob_and_fnmatch() {
    assert!(fnmatch("*.conf", "a.conf"));
    assert!(!fnmatch("*.conf", "a.ini"));
    assert!(fnmatch("a?c", "abc"));
    assert!(fnmatch("[ab]x", "bx"));
    assert!(!fnmatch("[!ab]x", "bx"));
    assert!(fnmatch("[a-c]*", "coffee"));
    assert!(fnmatch("[x", "[x"));
    assert!(fnmatch("*", ""));
    let dir = tmp();
    write(dir.path(), "x/1.conf", "");
    write(dir.path(), "y/2.conf", "");
    write(dir.path(), "y/.hidden.conf", "");
    let found = glob(&dir.path().join("*/*.conf"));
    assert_eq!(
        found,
        vec![dir.path().join("x/1.conf"), dir.path().join("y/2.conf")]
    );
}

// ------------------------------------------------------------------ expansions

mod front_end;
