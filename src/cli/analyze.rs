//! `vigil analyze`: the session report from JSONL files, stdin, the store or a daemon.
//!
//! Exit status: 0 with a report; 1 when `--fail-on SEVERITY` matched a finding of that
//! severity or worse; 2 for unusable arguments or an unreadable input (bad *lines* are
//! counted in the report, not an error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use vigil_core::report::Options;
use vigil_core::report::findings::Severity;
use vigil_core::report::scan::Mapping;

use super::exit;
use crate::analyze::{self, Format, Input, Job};

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// JSONL files in vigil's event schema (or the bot's own with --map), plain or gzip;
    /// `-` reads standard input. Several files are merged in time order.
    pub files: Vec<String>,
    /// vigil's store, read-only (`data_dir/vigil.db`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["files", "url"])]
    pub db: Option<PathBuf>,
    /// A running daemon (its `/api/events` history).
    #[arg(long, value_name = "URL", conflicts_with = "files")]
    pub url: Option<String>,
    /// Bearer token for --url.
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Write the report here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Field mapping for a bot's own JSONL: a TOML file, or `key=value,...` inline.
    #[arg(long, value_name = "FILE|SPEC")]
    pub map: Option<String>,
    /// Bucket edges of the cycle-duration distribution, ms, ascending (`100,500,1000`).
    #[arg(long, value_delimiter = ',', value_name = "MS,...")]
    pub buckets: Vec<f64>,
    /// Heartbeat timeout in seconds, for all sources (`300`) or one (`bot=300`); repeatable.
    #[arg(long, value_name = "[SOURCE=]SECONDS")]
    pub heartbeat_timeout: Vec<String>,
    /// A source that should beat even if it never did; repeatable.
    #[arg(long, value_name = "SOURCE")]
    pub expect_heartbeat: Vec<String>,
    /// Only events at or after this time (RFC 3339 or Unix ms).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339 or Unix ms).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Exit 1 when a finding of this severity or worse is present.
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low"])]
    pub fail_on: Option<String>,
    /// Scanning threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bytes per scanned block (tests use small blocks to exercise merging).
    #[arg(long, hide = true, default_value_t = analyze::BLOCK)]
    pub block_bytes: usize,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("vigil analyze: {msg}");
    ExitCode::from(exit::USAGE)
}

/// `Options` from the arguments.
pub fn options(a: &Args) -> Result<Options, String> {
    let mut o = Options::default();
    if !a.buckets.is_empty() {
        if a.buckets.iter().any(|b| !b.is_finite() || *b < 0.0)
            || a.buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("--buckets: expected ascending, non-negative milliseconds".into());
        }
        o.buckets_ms = a.buckets.clone();
    }
    for h in &a.heartbeat_timeout {
        let (src, secs) = match h.split_once('=') {
            Some((s, v)) => (Some(s), v),
            None => (None, h.as_str()),
        };
        let v: f64 = secs
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| format!("--heartbeat-timeout `{h}`: expected [SOURCE=]SECONDS > 0"))?;
        match src {
            Some(s) => {
                o.heartbeat_timeouts.insert(s.to_owned(), v);
            }
            None => o.heartbeat_timeout_s = Some(v),
        }
    }
    o.expect_heartbeat = a.expect_heartbeat.clone();
    let t = |s: &Option<String>, flag: &str| -> Result<Option<u64>, String> {
        s.as_deref()
            .map(analyze::parse_time_arg)
            .transpose()
            .map_err(|e| format!("{flag} {e}"))
    };
    o.since = t(&a.since, "--since")?;
    o.until = t(&a.until, "--until")?;
    Ok(o)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = match options(&a) {
        Ok(o) => o,
        Err(e) => return Ok(usage(e)),
    };
    let mapping = match &a.map {
        None => Mapping::default(),
        Some(spec) => match crate::analyze::mapping::load(spec) {
            Ok(m) => m,
            Err(e) => return Ok(usage(e)),
        },
    };
    let result = if let Some(db) = &a.db {
        if !db.is_file() {
            return Ok(usage(format!("{}: no such database file", db.display())));
        }
        analyze::analyze_db(db, &opts)
    } else if let Some(url) = &a.url {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(analyze::analyze_url(url, a.token.as_deref(), &opts))
    } else {
        if a.files.is_empty() {
            return Ok(usage(
                "nothing to read: give FILE… (`-` for standard input), --db PATH or --url URL",
            ));
        }
        let inputs = a
            .files
            .iter()
            .map(|f| {
                if f == "-" {
                    Input::Stdin
                } else {
                    Input::File(PathBuf::from(f))
                }
            })
            .collect();
        let job = Job {
            inputs,
            opts: opts.clone(),
            mapping,
            threads: a.threads.unwrap_or_else(analyze::default_threads).max(1),
            progress: analyze::stderr_is_terminal(),
            block: a.block_bytes,
        };
        analyze::analyze(&job)
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil analyze: {e}");
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    for b in &report.session.bad_line_examples {
        eprintln!("{}:{}: {}", b.file, b.line, b.reason);
    }
    if report.session.bad_lines > report.session.bad_line_examples.len() as u64 {
        eprintln!(
            "vigil analyze: {} unreadable lines in all (first {} shown)",
            report.session.bad_lines,
            report.session.bad_line_examples.len()
        );
    }
    let text = analyze::render(&report, a.format);
    match &a.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, text) {
                return Ok(usage(format!("{}: {e}", p.display())));
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(ExitCode::from(exit::FAILED));
            }
        }
    }
    if let Some(sev) = a.fail_on.as_deref().and_then(Severity::parse)
        && report.findings.iter().any(|f| f.severity <= sev)
    {
        return Ok(ExitCode::from(exit::FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
