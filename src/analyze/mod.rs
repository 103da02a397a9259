//! `vigil analyze` and `GET /api/report`: the readers around `vigil_core::report`.
//!
//! Inputs: JSONL files (plain or gzip, detected by the gzip magic; several are read in the
//! order of their first event's time, so a rotated set is merged in time order), standard
//! input (`-`), vigil's store (`--db`, read-only) and a running daemon (`--url`). A file is
//! read in blocks of [`BLOCK`] bytes cut at line ends; with more than one thread the blocks
//! are scanned in parallel, each into its own [`Acc`], merged in input order, so memory is
//! bounded by the number of blocks in flight, not by the input. See docs/analyze.md.

pub mod html;
pub mod mapping;
pub mod md;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Instant;

use vigil_core::report::scan::Mapping;
use vigil_core::report::{Acc, Options, Origin, Report};

/// Bytes handed to a worker at a time.
pub const BLOCK: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
}

/// One input of `vigil analyze`.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn label(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "stdin".into(),
        }
    }
    /// The default `source` of its events: the file name without extensions (as the JSONL
    /// file ingest does).
    fn default_source(&self) -> String {
        match self {
            Input::Stdin => "stdin".into(),
            Input::File(p) => {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut stem = name.as_str();
                for ext in [".gz", ".jsonl", ".ndjson", ".json", ".log"] {
                    stem = stem.strip_suffix(ext).unwrap_or(stem);
                }
                stem.to_owned()
            }
        }
    }
}

pub struct Job {
    pub inputs: Vec<Input>,
    pub opts: Options,
    pub mapping: Mapping,
    /// Worker threads (1 = scan on the reading thread).
    pub threads: usize,
    /// Progress on stderr (the CLI sets it when stderr is a terminal).
    pub progress: bool,
    /// Block size (default [`BLOCK`]; small ones exercise the merging in tests).
    pub block: usize,
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn open(input: &Input) -> Result<Box<dyn Read + Send>, AnalyzeError> {
    let err = |source| AnalyzeError::Open {
        path: input.label(),
        source,
    };
    let mut raw: Box<dyn Read + Send> = match input {
        Input::File(p) => Box::new(std::fs::File::open(p).map_err(err)?),
        Input::Stdin => Box::new(std::io::stdin()),
    };
    // Sniff the gzip magic without losing the bytes.
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    let chained = std::io::Cursor::new(head[..got].to_vec()).chain(raw);
    if got == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(1 << 20, chained),
        )))
    } else {
        Ok(Box::new(chained))
    }
}

/// The time of a file's first readable event (files without one sort first).
fn first_time(input: &Input, m: &Mapping) -> Option<u64> {
    let mut r = open(input).ok()?;
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    buf[..n]
        .split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .find_map(|l| vigil_core::report::scan::line_time(l, m))
}

/// Reads blocks cut at line ends; `Err` carries what could not be read (the rest of the
/// input is then lost and reported).
/// What was read before an error, and the error.
type Partial = (Vec<u8>, std::io::Error);

struct Blocks {
    r: Box<dyn Read + Send>,
    block: usize,
    carry: Vec<u8>,
    done: bool,
}

impl Blocks {
    /// The next block of whole lines (the last one may lack its `\n`), or the error that
    /// ended the input together with the partial data before it.
    fn next_block(&mut self) -> Option<Result<Vec<u8>, Partial>> {
        if self.done {
            return None;
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.reserve(self.block);
        let want = buf.len() + self.block;
        while buf.len() < want {
            let len = buf.len();
            buf.resize(want, 0);
            match self.r.read(&mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    self.done = true;
                    break;
                }
                Ok(n) => buf.truncate(len + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
                Err(e) => {
                    buf.truncate(len);
                    self.done = true;
                    return Some(Err((buf, e)));
                }
            }
        }
        if !self.done
            && let Some(cut) = memchr::memrchr(b'\n', &buf)
        {
            self.carry = buf[cut + 1..].to_vec();
            buf.truncate(cut + 1);
        }
        if buf.is_empty() && self.done {
            return None;
        }
        Some(Ok(buf))
    }
}

struct Progress {
    on: bool,
    t0: Instant,
    last: Instant,
    bytes: u64,
}

impl Progress {
    fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.on && self.last.elapsed().as_millis() >= 500 {
            self.last = Instant::now();
            let mib = self.bytes as f64 / (1 << 20) as f64;
            let rate = mib / self.t0.elapsed().as_secs_f64().max(1e-9);
            eprint!("\ranalyze: {mib:.0} MiB read, {rate:.0} MiB/s   ");
        }
    }
    fn end(&self) {
        if self.on && self.t0.elapsed().as_millis() >= 500 {
            eprintln!();
        }
    }
}

/// Scan one input into a fresh `Acc`.
fn scan_input(
    idx: usize,
    input: &Input,
    job: &Job,
    progress: &mut Progress,
) -> Result<Acc, AnalyzeError> {
    let src = input.default_source();
    let origin = Origin {
        input: idx,
        default_source: &src,
    };
    let mut blocks = Blocks {
        r: open(input)?,
        block: job.block.max(1),
        carry: Vec::new(),
        done: false,
    };
    let m = &job.mapping;
    let mut total = Acc::new(&job.opts);
    let mut failure: Option<std::io::Error> = None;
    if job.threads <= 1 {
        while let Some(b) = blocks.next_block() {
            match b {
                Ok(buf) => {
                    progress.add(buf.len());
                    total.feed_chunk(&buf, origin, m);
                }
                Err((buf, e)) => {
                    total.feed_chunk(&buf, origin, m);
                    failure = Some(e);
                }
            }
        }
    } else {
        let (work_tx, work_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(job.threads * 2);
        let work_rx = Mutex::new(work_rx);
        let (done_tx, done_rx) = mpsc::channel::<(usize, Acc)>();
        std::thread::scope(|s| {
            for _ in 0..job.threads {
                let done_tx = done_tx.clone();
                let work_rx = &work_rx;
                let src = &src;
                s.spawn(move || {
                    loop {
                        let next = work_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok((i, buf))) = next else { break };
                        let mut acc = Acc::new(&job.opts);
                        acc.feed_chunk(
                            &buf,
                            Origin {
                                input: idx,
                                default_source: src,
                            },
                            m,
                        );
                        if done_tx.send((i, acc)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            // Merge in block order while reading; out-of-order results wait (bounded by
            // the blocks in flight).
            let mut pending = std::collections::BTreeMap::new();
            let mut next_merge = 0usize;
            let mut merge_ready =
                |total: &mut Acc, pending: &mut std::collections::BTreeMap<usize, Acc>| {
                    while let Some(acc) = pending.remove(&next_merge) {
                        total.merge_after(acc, true);
                        next_merge += 1;
                    }
                };
            let mut sent = 0usize;
            while let Some(b) = blocks.next_block() {
                let buf = match b {
                    Ok(buf) => buf,
                    Err((buf, e)) => {
                        failure = Some(e);
                        buf
                    }
                };
                progress.add(buf.len());
                if work_tx.send((sent, buf)).is_err() {
                    break;
                }
                sent += 1;
                while let Ok((i, acc)) = done_rx.try_recv() {
                    pending.insert(i, acc);
                }
                merge_ready(&mut total, &mut pending);
            }
            drop(work_tx);
            for (i, acc) in done_rx.iter() {
                pending.insert(i, acc);
                merge_ready(&mut total, &mut pending);
            }
        });
    }
    if let Some(e) = failure {
        let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated gzip member (the rest of the input is lost)".to_owned()
        } else {
            format!("read error: {e} (the rest of the input is lost)")
        };
        total.bad_at_end(idx, why);
    }
    Ok(total)
}

/// The report over files and/or stdin. Unreadable inputs are an error (exit 2); unreadable
/// lines are counted in the report.
pub fn analyze(job: &Job) -> Result<Report, AnalyzeError> {
    // Files in the order of their first event's time; stdin cannot be peeked and goes first.
    let mut order: Vec<(Option<u64>, usize)> = job
        .inputs
        .iter()
        .enumerate()
        .map(|(i, inp)| match inp {
            Input::Stdin => (None, i),
            Input::File(_) => (first_time(inp, &job.mapping), i),
        })
        .collect();
    if job.inputs.len() > 1 {
        order.sort();
    }
    let labels: Vec<String> = job.inputs.iter().map(Input::label).collect();
    let mut progress = Progress {
        on: job.progress,
        t0: Instant::now(),
        last: Instant::now(),
        bytes: 0,
    };
    let mut total: Option<Acc> = None;
    for (_, i) in order {
        let acc = scan_input(i, &job.inputs[i], job, &mut progress)?;
        match &mut total {
            None => total = Some(acc),
            Some(t) => t.merge_after(acc, false),
        }
    }
    progress.end();
    let total = total.unwrap_or_else(|| Acc::new(&job.opts));
    Ok(total.finish(&job.opts, &job.mapping, &labels))
}

/// The report over vigil's own store (read-only), e.g. `data_dir/vigil.db`.
pub fn analyze_db(path: &Path, opts: &Options) -> Result<Report, AnalyzeError> {
    let m = Mapping::default();
    let mut acc = Acc::new(opts);
    let origin = Origin {
        input: 0,
        default_source: "vigil",
    };
    crate::store::scan_events_read_only(path, opts.since, |map| acc.feed_map(map, origin, &m))?;
    Ok(acc.finish(opts, &m, &[path.display().to_string()]))
}

/// The report over a running daemon's history (`GET /api/events`, paged).
pub async fn analyze_url(
    url: &str,
    token: Option<&str>,
    opts: &Options,
) -> Result<Report, AnalyzeError> {
    let m = Mapping::default();
    let mut acc = Acc::new(opts);
    let origin = Origin {
        input: 0,
        default_source: "vigil",
    };
    let remote = |message: String| AnalyzeError::Remote {
        url: url.to_owned(),
        message,
    };
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let mut since = 0u64;
    loop {
        let mut req = client.get(format!("{base}/api/events?since={since}&limit=10000"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| remote(e.to_string()))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| remote(e.to_string()))?;
        if !status.is_success() {
            return Err(remote(format!("HTTP {status}: {body}")));
        }
        let events = body
            .get("events")
            .and_then(|e| e.as_array())
            .cloned()
            .unwrap_or_default();
        if events.is_empty() {
            break;
        }
        for e in &events {
            if let Some(map) = e.as_object() {
                acc.feed_map(map, origin, &m);
            }
            if let Some(seq) = e.get("seq").and_then(|s| s.as_u64()) {
                since = since.max(seq);
            }
        }
    }
    Ok(acc.finish(opts, &m, &[url.to_owned()]))
}

/// stderr is a terminal (progress is shown only then).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The report in a format: `md`, `json` or `html`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Md => md::render(report),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into());
            s.push('\n');
            s
        }
        Format::Html => html::render(report),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Md,
    Json,
    Html,
}

/// `--since`/`--until` and the API's `since`/`until`: RFC 3339 or Unix milliseconds.
pub fn parse_time_arg(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    vigil_core::report::scan::parse_time_str(s)
        .map_err(|e| format!("`{s}`: expected RFC 3339 or Unix milliseconds ({e})"))
}
