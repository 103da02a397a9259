//! The architecture invariant of `vigil-core`, checked: no I/O, no clock.
//!
//! Fails when a source file under `src/` mentions a runtime, the filesystem, the
//! network, the database or a clock read. This file is outside `src/`, so the
//! forbidden names below do not trip it.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::fs",
    "std::net",
    "rusqlite",
    "Instant::now",
    "SystemTime::now",
];

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

#[test]
fn core_has_no_io_and_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 2, "found no sources under {}", src.display());
    let mut offences = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (i, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                if line.contains(word) {
                    offences.push(format!("{}:{}: mentions `{word}`", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "vigil-core must stay pure (time is a parameter, I/O lives in the shell):\n{}",
        offences.join("\n")
    );
}
