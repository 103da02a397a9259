//! The layering of `src/`, checked (ARCHITECTURE.md, "Layering").
//!
//! Every top-level module of the `vigil` crate sits in one layer of [`LAYERS`]; a module may
//! use modules of the layers below its own, never one of its own layer or above, so
//! dependencies point one way and no cycle can form. The check reads every `crate::NAME`
//! path in `src/**.rs` (`use crate::a::b`, `use crate::{a, b::c}`, `crate::a::f()` in code,
//! and in doc comments, whose links rustdoc resolves) and fails naming the file, the line and
//! the path. A `#[macro_export]` macro (`crate::fields!`) belongs to the module defining it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom. A module may use every module in a layer below its own.
const LAYERS: &[&[&str]] = &[
    // The binary: parses the command line.
    &["main"],
    // Commands: the daemon, the client verbs, analyze, convert.
    &["cli"],
    // The composition root: builds and wires everything, owns the shutdown order.
    &["daemon"],
    // The demo's embedded config and its simulated feed.
    &["demo", "sim"],
    // HTTP: the REST API, SSE, metrics, the page, over the handles below.
    &["api"],
    // supervisord's wire formats (XML-RPC, logtail) and the daemon's control channel.
    &["compat"],
    // Domain actors and readers fed by the monitor and the supervisor.
    &["analyze", "ingest", "jobs", "venue"],
    // Checks, rules and the trading-state latch; halts stop groups through the supervisor.
    &["monitor"],
    // The process supervisor; it reports listener I/O to the listener actor.
    &["supervisor"],
    // The event-listener actor.
    &["listeners"],
    // The event log (writer thread, broadcast).
    &["events"],
    // Configuration: every section's parser, into the types the layers above read.
    &["config"],
    // The SQLite store (its retention type is what `[events]` parses into).
    &["store"],
    // Authentication without HTTP or config parsing: roles, hashes, JWTs, the validated table.
    &["auth"],
    // Leaves.
    &["clock", "failpoint", "queues"],
];

/// One use of a crate-root path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    file: String,
    line: usize,
    /// The path as written, up to the end of its first segment (`crate::store::Store`).
    path: String,
    /// The crate-root name it starts with (`store`).
    target: String,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_at(b: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    (String::from_utf8_lossy(&b[start..i]).into_owned(), i)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn line_of(b: &[u8], at: usize) -> usize {
    1 + b[..at].iter().filter(|&&c| c == b'\n').count()
}

/// The first segments of the items of a `{…}` group starting at `b[i] == '{'`: their names
/// and offsets, nested groups included (`crate::{a, b::{c, d}}` gives `a`, `b`).
fn group_items(b: &[u8], i: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut expect = true;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'{' => {
                depth += 1;
                // The opening brace of the group starts an item; a nested one does not.
                expect = depth == 1;
                j += 1;
            }
            b'}' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            b',' => {
                expect = depth == 1;
                j += 1;
            }
            c if expect && is_ident(c) => {
                let (name, end) = ident_at(b, j);
                out.push((name, j));
                expect = false;
                j = end;
            }
            _ => j += 1,
        }
    }
    out
}

/// Every crate-root path in `text` (file `file`, crate-root prefix `prefix`: `crate` in the
/// library, `vigil` in `main.rs`).
fn uses(file: &str, text: &str, prefix: &str) -> Vec<Use> {
    let b = text.as_bytes();
    let needle = format!("{prefix}::");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(&needle) {
        let at = from + k;
        from = at + needle.len();
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let i = skip_ws(b, at + needle.len());
        if i < b.len() && b[i] == b'{' {
            for (name, off) in group_items(b, i) {
                out.push(Use {
                    file: file.to_string(),
                    line: line_of(b, off),
                    path: format!("{prefix}::{{{name}…}}"),
                    target: name,
                });
            }
        } else {
            let (name, end) = ident_at(b, i);
            if name.is_empty() {
                continue;
            }
            let tail = if text[end..].starts_with("::") {
                let (next, _) = ident_at(b, end + 2);
                format!("::{next}")
            } else {
                text[end..].chars().take(1).filter(|c| *c == '!').collect()
            };
            out.push(Use {
                file: file.to_string(),
                line: line_of(b, at),
                path: format!("{prefix}::{name}{tail}"),
                target: name,
            });
        }
    }
    out
}

/// `#[macro_export] macro_rules! NAME` in `text`: the names, which live at the crate root.
fn exported_macros(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut exported = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[macro_export]") {
            exported = true;
        } else if let Some(rest) = t.strip_prefix("macro_rules!") {
            if exported {
                let name: String = rest
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
            exported = false;
        } else if !t.starts_with("#[") && !t.starts_with("//") && !t.is_empty() {
            exported = false;
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    // Index 0 is the top; a larger index is lower.
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The offences among `uses` of `module`'s files, given the crate root's names (`aliases`:
/// macro name → defining module).
fn check(
    module_of: &dyn Fn(&str) -> String,
    modules: &BTreeSet<String>,
    aliases: &BTreeMap<String, String>,
    all: &[Use],
) -> Vec<String> {
    let mut offences = Vec::new();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for u in all {
        let from = module_of(&u.file);
        let to = aliases.get(&u.target).unwrap_or(&u.target).clone();
        if to == from {
            continue;
        }
        if !modules.contains(&to) {
            offences.push(format!(
                "{}:{}: `{}` names `{}`, which is no top-level module of src/",
                u.file, u.line, u.path, u.target
            ));
            continue;
        }
        edges.insert((from.clone(), to.clone()));
        match (layer_of(&from), layer_of(&to)) {
            (Some(f), Some(t)) if t > f => {}
            (Some(f), Some(t)) => offences.push(format!(
                "{}:{}: `{}`: module `{from}` (layer {}: {}) may not use `{to}` (layer {}: {}); \
                 only layers below its own. Move the shared type or handle to its owner, or \
                 into a small module both use",
                u.file,
                u.line,
                u.path,
                f + 1,
                LAYERS[f].join(", "),
                t + 1,
                LAYERS[t].join(", "),
            )),
            _ => {}
        }
    }
    for m in modules {
        if layer_of(m).is_none() {
            offences.push(format!(
                "src: module `{m}` is in no layer: add it to LAYERS (tests/layering.rs) and to \
                 ARCHITECTURE.md's Layering section"
            ));
        }
    }
    for (a, b) in &edges {
        if a < b && edges.contains(&(b.clone(), a.clone())) {
            offences.push(format!("src: cycle: `{a}` uses `{b}` and `{b}` uses `{a}`"));
        }
    }
    offences
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a.rs` belong to `a`.
fn top_module(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

#[test]
fn dependencies_point_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found too few sources under {}",
        src.display()
    );
    let mut modules = BTreeSet::new();
    let mut aliases = BTreeMap::new();
    let mut all = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if rel == "lib.rs" {
            // The crate root only declares the modules.
            continue;
        }
        let module = top_module(&rel);
        modules.insert(module.clone());
        for m in exported_macros(&text) {
            aliases.insert(m, module.clone());
        }
        let prefix = if rel == "main.rs" { "vigil" } else { "crate" };
        all.extend(uses(&format!("src/{rel}"), &text, prefix));
    }
    let offences = check(
        &|f: &str| top_module(f.strip_prefix("src/").unwrap_or(f)),
        &modules,
        &aliases,
        &all,
    );
    assert!(
        offences.is_empty(),
        "dependencies between the modules of src/ must point down the layers \
         (ARCHITECTURE.md, \"Layering\"):\n{}",
        offences.join("\n")
    );
}

/// The checker itself: each kind of path is read, and a use of a higher layer, of the same
/// layer and a cycle are named with their file and line.
#[test]
fn the_checker_names_what_points_up() {
    let text = "use crate::events::{Event, EventLog};\nuse crate::{config::Config,\n    supervisor::SupervisorHandle};\n// see [`crate::daemon::run`]\nfn f() { crate::fields! {}; crate::venue::start(); }\n";
    let found = uses("src/monitor/x.rs", text, "crate");
    let got: Vec<(usize, &str, &str)> = found
        .iter()
        .map(|u| (u.line, u.path.as_str(), u.target.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "crate::events::", "events"),
            (2, "crate::{config…}", "config"),
            (3, "crate::{supervisor…}", "supervisor"),
            (4, "crate::daemon::run", "daemon"),
            (5, "crate::fields!", "fields"),
            (5, "crate::venue::start", "venue"),
        ]
    );
    let modules: BTreeSet<String> = [
        "monitor",
        "events",
        "config",
        "supervisor",
        "daemon",
        "venue",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let aliases = BTreeMap::from([("fields".to_string(), "events".to_string())]);
    let mut all = found.clone();
    all.extend(uses(
        "src/venue/mod.rs",
        "use crate::monitor::MonitorHandle;",
        "crate",
    ));
    all.extend(uses("src/venue/mod.rs", "use crate::nowhere::X;", "crate"));
    let offences = check(
        &|f: &str| top_module(f.strip_prefix("src/").unwrap_or(f)),
        &modules,
        &aliases,
        &all,
    );
    assert_eq!(offences.len(), 4, "{offences:#?}");
    assert!(offences[0].starts_with(
        "src/monitor/x.rs:4: `crate::daemon::run`: module `monitor` (layer 8: monitor) may not use `daemon` (layer 3: daemon)"
    ));
    assert!(offences[1].starts_with("src/monitor/x.rs:5: `crate::venue::start`: module `monitor`"));
    assert!(offences[2].starts_with("src/venue/mod.rs:1: `crate::nowhere::X` names `nowhere`"));
    assert_eq!(
        offences[3],
        "src: cycle: `monitor` uses `venue` and `venue` uses `monitor`"
    );
    // A module outside the layering is named too.
    let mut more = modules.clone();
    more.insert("newthing".into());
    let offences = check(&|f: &str| top_module(&f[4..]), &more, &aliases, &[]);
    assert_eq!(offences.len(), 1);
    assert!(offences[0].contains("module `newthing` is in no layer"));
}
