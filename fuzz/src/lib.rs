//! What the config targets share: a scratch directory per process, a fixed environment, and
//! the checks every located error must pass.
//!
//! Loading a config is not pure: it creates `data_dir`, its `logs` directory and the
//! directories of configured log files, writes (and removes) a probe file in each, opens
//! existing log files for appending, reads `[include]`d files, looks up users and resolves host
//! names in `listen` / `port`. A fuzzed config can name any path, so:
//!
//! - the fake config file lives in `$TMPDIR/vigil-fuzz/PID/w/`, emptied before every input;
//!   relative paths (the defaults included) resolve against it, so they stay there (the
//!   working directory is left alone: libFuzzer reads corpus files and writes artifacts
//!   relative to it);
//! - `scripts/fuzz` runs the targets in their own mount and network namespaces, with every
//!   mount read-only except the scratch and corpus directories and no network at all (no DNS
//!   look-ups leave the machine); it sets `VIGIL_FUZZ_SANDBOX=1`;
//! - without that variable (a bare `cargo fuzz run ini`), inputs that could reach outside the
//!   scratch directory or the network are skipped (see [`confined`]): no `/`, `..`, `~`,
//!   `%(` expansions (`%(here)s` is absolute), TOML `\u` escapes, nor `listen`/`port`/`inet`.
//!   That is a best-effort filter and costs coverage; use `scripts/fuzz`.
//!
//! The environment is replaced by a fixed one (so `%(ENV_X)s` expansions reproduce anywhere).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vigil::config::{ConfigError, ConfigErrors};

pub struct Scratch {
    work: PathBuf,
    sandboxed: bool,
}

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

/// The process's scratch directory, set up on first use.
pub fn scratch() -> &'static Scratch {
    SCRATCH.get_or_init(|| {
        let sandboxed = std::env::var_os("VIGIL_FUZZ_SANDBOX").is_some_and(|v| v == "1");
        let base = std::env::temp_dir()
            .join("vigil-fuzz")
            .join(std::process::id().to_string());
        let work = base.join("w");
        if let Err(e) = std::fs::create_dir_all(&work) {
            panic!(
                "cannot create the scratch directory {}: {e}",
                work.display()
            );
        }
        fix_env(&base);
        if !sandboxed {
            eprintln!(
                "vigil-fuzz: not in scripts/fuzz's sandbox: skipping inputs that could name paths \
                 outside {} or host names (see fuzz/README.md)",
                base.display()
            );
        }
        Scratch { work, sandboxed }
    })
}

/// Replace the environment by a fixed one (`HOME` = `home`).
fn fix_env(home: &Path) {
    let keys: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    // SAFETY: called once, from the fuzzing thread, before anything reads the environment
    // (libFuzzer's own threads do not).
    unsafe {
        for k in keys {
            std::env::remove_var(k);
        }
        std::env::set_var("HOME", home);
        std::env::set_var("PATH", "/usr/bin:/bin");
        std::env::set_var("TRADING_MODE", "paper");
        std::env::set_var("VENUE", "kraken");
    }
}

static PURE: OnceLock<()> = OnceLock::new();

/// For the pure targets (`ini_text`, `toml_text`), which touch no filesystem: the fixed
/// environment, once. Their config files are named under this directory, which need not
/// exist.
pub fn pure_dir() -> &'static Path {
    let dir = Path::new("/vigil-fuzz-pure");
    PURE.get_or_init(|| fix_env(dir));
    dir
}

impl Scratch {
    /// A path named `file_name` in an emptied work directory, with `text` written to it (so
    /// that the loader and `vigil convert`, which reads the file, see the same thing).
    pub fn config_file(&self, file_name: &str, text: &str) -> PathBuf {
        // Whatever the previous input created goes.
        let _ = std::fs::remove_dir_all(&self.work);
        if let Err(e) = std::fs::create_dir_all(&self.work) {
            panic!("cannot create {}: {e}", self.work.display());
        }
        let path = self.work.join(file_name);
        if let Err(e) = std::fs::write(&path, text) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// Whether this input may be loaded here.
    pub fn admits(&self, text: &str) -> bool {
        self.sandboxed || confined(text)
    }
}

/// Whether a config text can only name paths under its own directory and no host names: the
/// filter for runs outside the sandbox.
pub fn confined(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    !["/", "..", "~", "%(", "\\u", "\\U", "listen", "port", "inet"]
        .iter()
        .any(|s| text.contains(s) || lower.contains(s))
}

/// Every error of a failed load: rendered without panicking, at least one, and those located
/// in `path` on one of its lines.
pub fn check_errors(path: &Path, text: &str, errors: &ConfigErrors) {
    assert!(!errors.0.is_empty(), "a load failed without an error");
    check_located(path, text, &errors.0);
    let _ = errors.to_string();
}

/// Located problems (errors, or the warnings of what a load ignored): each renders, and those
/// in `path` are on one of its lines.
pub fn check_located(path: &Path, text: &str, problems: &[ConfigError]) {
    let lines = text.matches('\n').count() + 1;
    for e in problems {
        let shown = e.to_string();
        assert!(!shown.is_empty());
        if e.file == path {
            assert!(e.line <= lines, "{shown}: line {} of {lines}", e.line);
        }
    }
}

/// `vigil convert`'s result for a config that loaded: what the input ignores is located in
/// it, and the translation has no problem (the TOML loads, without a warning, to the same
/// `Config`).
pub fn check_converted(path: &Path, text: &str, c: &vigil::config::supervisord::Converted) {
    check_located(path, text, &c.ignored);
    assert!(
        c.warnings.is_empty(),
        "{}\n--- converted:\n{}",
        c.warnings.join("\n"),
        c.toml
    );
}
