//! Child output: each channel is copied to a size-rotated log file and kept in memory
//! (the last lines, for `/health` and `ctl tail`), and streamed to live followers.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;

use crate::config::LogConfig;

/// Lines kept in memory per channel.
pub const TAIL_LINES: usize = 200;

/// A log file that rotates by size: `path` → `path.1` → … → `path.N`.
pub struct RotatingFile {
    path: PathBuf,
    maxbytes: u64,
    backups: u32,
    file: File,
    size: u64,
}

impl RotatingFile {
    pub fn open(cfg: &LogConfig, path: &Path) -> std::io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            maxbytes: cfg.maxbytes,
            backups: cfg.backups,
            file,
            size,
        })
    }

    /// Append, rotating so that no file grows past `maxbytes`. A chunk is cut at the last
    /// newline that fits, so lines stay whole unless one line alone exceeds `maxbytes`.
    pub fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        if self.maxbytes == 0 {
            self.file.write_all(data)?;
            self.size += data.len() as u64;
            return Ok(());
        }
        while !data.is_empty() {
            let room = self.maxbytes.saturating_sub(self.size) as usize;
            if data.len() <= room {
                self.file.write_all(data)?;
                self.size += data.len() as u64;
                return Ok(());
            }
            // The file may have been truncated behind our back (supervisord's clearProcessLogs
            // truncates it; we append with O_APPEND): count from its real size then.
            if let Ok(m) = self.file.metadata()
                && m.len() < self.size
            {
                self.size = m.len();
                continue;
            }
            let cut = match data[..room].iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if self.size == 0 => room.max(1),
                None => 0,
            };
            if cut > 0 {
                self.file.write_all(&data[..cut])?;
                self.size += cut as u64;
                data = &data[cut..];
            }
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let name = |i: u32| {
            let mut s = self.path.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        let _ = std::fs::remove_file(name(self.backups));
        for i in (1..self.backups).rev() {
            let from = name(i);
            if from.exists() {
                std::fs::rename(&from, name(i + 1))?;
            }
        }
        std::fs::rename(&self.path, name(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The in-memory side of one channel: last lines plus a live feed of raw chunks.
pub struct Tap {
    lines: Mutex<VecDeque<String>>,
    partial: Mutex<String>,
    live: broadcast::Sender<Arc<[u8]>>,
    /// Total bytes ever seen on this channel (offsets for `tail -f` style readers).
    total: Mutex<u64>,
}

impl Default for Tap {
    fn default() -> Self {
        // Memory per process matters (100s of programs): the tail grows on demand and the
        // live channel is small (a slow follower is told how much it skipped).
        Tap {
            lines: Mutex::new(VecDeque::new()),
            partial: Mutex::new(String::new()),
            live: broadcast::channel(16).0,
            total: Mutex::new(0),
        }
    }
}

impl Tap {
    pub fn push(&self, chunk: &[u8]) {
        if let Ok(mut t) = self.total.lock() {
            *t += chunk.len() as u64;
        }
        let text = String::from_utf8_lossy(chunk);
        if let (Ok(mut partial), Ok(mut lines)) = (self.partial.lock(), self.lines.lock()) {
            partial.push_str(&text);
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line.trim_end_matches(['\n', '\r']).to_string());
            }
            if partial.len() > 64 * 1024 {
                let line = std::mem::take(&mut *partial);
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        }
        let _ = self.live.send(Arc::from(chunk));
    }

    /// The last `n` complete lines (plus an unterminated last line, if any).
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let mut out: Vec<String> = match self.lines.lock() {
            Ok(l) => l.iter().rev().take(n).rev().cloned().collect(),
            Err(_) => Vec::new(),
        };
        if let Ok(p) = self.partial.lock()
            && !p.is_empty()
        {
            out.push(p.clone());
            if out.len() > n {
                out.remove(0);
            }
        }
        out
    }

    /// Forget the lines kept in memory (`clear` of the log); the byte total stays.
    pub fn clear(&self) {
        if let Ok(mut l) = self.lines.lock() {
            l.clear();
        }
        if let Ok(mut p) = self.partial.lock() {
            p.clear();
        }
    }

    pub fn follow(&self) -> broadcast::Receiver<Arc<[u8]>> {
        self.live.subscribe()
    }

    pub fn total(&self) -> u64 {
        self.total.lock().map(|t| *t).unwrap_or(0)
    }
}

/// Both channels of one process. Lives as long as the process entry (across respawns).
#[derive(Default)]
pub struct Output {
    pub stdout: Tap,
    pub stderr: Tap,
}

const BEGIN: &[u8] = b"<!--XSUPERVISOR:BEGIN-->";
const END: &[u8] = b"<!--XSUPERVISOR:END-->";

/// supervisord's capture mode (`*_capture_maxbytes > 0`): text between
/// `<!--XSUPERVISOR:BEGIN-->` and `<!--XSUPERVISOR:END-->` is taken out of the output and
/// becomes a PROCESS_COMMUNICATION event (truncated to `maxbytes`). Tokens split across
/// reads are found: a tail that could start a token is held until the next read.
#[derive(Debug)]
pub struct Capture {
    maxbytes: usize,
    capturing: bool,
    held: Vec<u8>,
    data: Vec<u8>,
}

impl Capture {
    pub fn new(maxbytes: u64) -> Capture {
        Capture {
            maxbytes: usize::try_from(maxbytes).unwrap_or(usize::MAX),
            capturing: false,
            held: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Split a chunk into ordinary output and completed captures.
    #[cfg(test)]
    pub fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let mut done = Vec::new();
        for seg in self.segments(chunk) {
            match seg {
                Segment::Plain(b) => out.extend(b),
                Segment::Captured(_) => {}
                Segment::Done(d) => done.push(d),
            }
        }
        (out, done)
    }

    /// A chunk as it reads, in order: ordinary output, the text inside the tags (as read, for
    /// supervisord's PROCESS_LOG events, which also carry it), and each completed capture.
    pub fn segments(&mut self, chunk: &[u8]) -> Vec<Segment> {
        let mut input = std::mem::take(&mut self.held);
        input.extend_from_slice(chunk);
        let mut segs = Vec::new();
        let mut rest: &[u8] = &input;
        loop {
            let token = if self.capturing { END } else { BEGIN };
            if let Some(i) = find(rest, token) {
                self.take(&rest[..i], &mut segs);
                rest = &rest[i + token.len()..];
                if self.capturing {
                    let mut d = std::mem::take(&mut self.data);
                    d.truncate(self.maxbytes);
                    segs.push(Segment::Done(d));
                }
                self.capturing = !self.capturing;
                continue;
            }
            // Hold back a tail that could be the start of the token.
            let keep = (1..token.len())
                .rev()
                .find(|&k| rest.len() >= k && rest.ends_with(&token[..k]))
                .unwrap_or(0);
            let (now, later) = rest.split_at(rest.len() - keep);
            self.take(now, &mut segs);
            self.held = later.to_vec();
            break;
        }
        segs
    }

    fn take(&mut self, bytes: &[u8], segs: &mut Vec<Segment>) {
        if bytes.is_empty() {
            return;
        }
        if self.capturing {
            if self.data.len() < self.maxbytes {
                let room = self.maxbytes - self.data.len();
                self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            segs.push(Segment::Captured(bytes.to_vec()));
        } else {
            segs.push(Segment::Plain(bytes.to_vec()));
        }
    }
}

/// One piece of [`Capture::segments`].
#[derive(Debug, PartialEq, Eq)]
pub enum Segment {
    /// Ordinary output (logged, tapped, evented).
    Plain(Vec<u8>),
    /// Text inside the tags: not logged, but a PROCESS_LOG event as in supervisord.
    Captured(Vec<u8>),
    /// A complete capture: a PROCESS_COMMUNICATION event.
    Done(Vec<u8>),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where each chunk read from a pipe goes.
pub struct Sink {
    pub file: Option<RotatingFile>,
    pub tap: Arc<Output>,
    pub stderr: bool,
    /// Complete stdout lines, for `events = "stdout"`, with the process name: a bounded
    /// queue (`ingest::STDOUT_EVENTS_QUEUE`); while it is full the pipe is not read.
    pub lines: Option<(tokio::sync::mpsc::Sender<(String, String)>, String)>,
    /// `stdout_events_enabled` / `stderr_events_enabled`: every chunk is also recorded as a
    /// `process_log` event (delivered to listeners as PROCESS_LOG_STDOUT/_STDERR).
    pub log_events: Option<(
        crate::events::EventLog,
        serde_json::Map<String, serde_json::Value>,
    )>,
    /// Capture mode and where captures go (a `process_communication` event per capture).
    pub capture: Option<(
        Capture,
        crate::events::EventLog,
        serde_json::Map<String, serde_json::Value>,
    )>,
    /// An event listener's stdout: every chunk also goes to the listener protocol, taking
    /// room in the gate first ([`LISTENER_OUTPUT_QUEUE`] chunks per listener process; while
    /// they are all queued the pipe is not read).
    pub listener: Option<(
        tokio::sync::mpsc::UnboundedSender<crate::listeners::ListenerIo>,
        crate::queues::Gate,
        usize,
        usize,
    )>,
}

/// Chunks (up to 4 KiB each) of one event listener's stdout queued to the listener
/// protocol at most.
pub const LISTENER_OUTPUT_QUEUE: usize = 64;

/// Copy a pipe until EOF. Whatever the chunk feeds that is full (the events of
/// `*_events_enabled`, the listener protocol, the stdout events) makes this wait, so the
/// child's pipe is not read meanwhile and a flooding child is slowed, not buffered.
pub async fn pump<R: tokio::io::AsyncRead + Unpin>(mut r: R, mut sink: Sink, name: String) {
    let mut buf = vec![0u8; 4 * 1024];
    let mut partial = Vec::new();
    loop {
        match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                let Some((cap, events, base)) = sink.capture.as_mut() else {
                    plain(&mut sink, &buf[..n], &mut partial, &name).await;
                    continue;
                };
                let segs = cap.segments(&buf[..n]);
                let (events, base) = (events.clone(), base.clone());
                for seg in segs {
                    match seg {
                        Segment::Plain(b) => plain(&mut sink, &b, &mut partial, &name).await,
                        // supervisord's PROCESS_LOG events carry the captured text too.
                        Segment::Captured(b) => log_event(&sink, &b).await,
                        Segment::Done(d) => {
                            let mut data = base.clone();
                            data.insert(
                                "data".into(),
                                String::from_utf8_lossy(&d).into_owned().into(),
                            );
                            events.submit_waiting("process_communication", data).await;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(process = %name, error = %e, "reading child output");
                break;
            }
        }
    }
}

/// A `process_log` event for `chunk` when the channel has `*_events_enabled`.
async fn log_event(sink: &Sink, chunk: &[u8]) {
    if let Some((events, base)) = &sink.log_events {
        let mut data = base.clone();
        data.insert(
            "data".into(),
            String::from_utf8_lossy(chunk).into_owned().into(),
        );
        events.submit_waiting("process_log", data).await;
    }
}

/// Ordinary output: the log file, the tap, the `process_log` event, the listener protocol,
/// the stdout lines.
async fn plain(sink: &mut Sink, chunk: &[u8], partial: &mut Vec<u8>, name: &str) {
    if chunk.is_empty() {
        return;
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        log_chunk(name, sink, chunk);
    }
    if let Some(f) = sink.file.as_mut()
        && let Err(e) = f.write(chunk)
    {
        tracing::error!(process = %name, error = %e, "cannot write log file");
    }
    let tap = if sink.stderr {
        &sink.tap.stderr
    } else {
        &sink.tap.stdout
    };
    tap.push(chunk);
    log_event(sink, chunk).await;
    if let Some((tx, gate, pool, process)) = &sink.listener {
        let room = gate.room().await;
        let _ = tx.send(crate::listeners::ListenerIo::Output {
            pool: *pool,
            process: *process,
            bytes: chunk.to_vec(),
            room,
        });
    }
    if let Some((tx, process)) = &sink.lines {
        use crate::queues::{Queue, send_waiting};
        partial.extend_from_slice(chunk);
        while let Some(i) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            let _ = send_waiting(Queue::StdoutEvents, tx, (process.clone(), line)).await;
        }
    }
}

/// supervisord's debug line for child output (`loglevel=debug` copies it to the main log):
/// the text, or `Undecodable: b'…'` when it is not UTF-8; a listener's stdout (the protocol
/// channel) as its bytes' Python repr, as supervisord logs it.
fn log_chunk(name: &str, sink: &Sink, chunk: &[u8]) {
    use vigil_core::listener::{decode_output, python_bytes_repr};
    let channel = if sink.stderr { "stderr" } else { "stdout" };
    let text = if sink.listener.is_some() {
        python_bytes_repr(chunk).into()
    } else {
        decode_output(chunk)
    };
    tracing::debug!("'{name}' {channel} output:\n{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let cfg = LogConfig {
            path: Some(path.clone()),
            maxbytes: 10,
            backups: 2,
        };
        let mut f = RotatingFile::open(&cfg, &path).unwrap();
        for chunk in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            f.write(chunk.as_bytes()).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "dddddddd\n");
        assert_eq!(read(&dir.path().join("p.log.1")), "cccccccc\n");
        assert_eq!(read(&dir.path().join("p.log.2")), "bbbbbbbb\n");
        assert!(!dir.path().join("p.log.3").exists());
    }

    #[test]
    fn a_chunk_larger_than_maxbytes_is_split_at_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let cfg = LogConfig {
            path: Some(path.clone()),
            maxbytes: 10,
            backups: 5,
        };
        let mut f = RotatingFile::open(&cfg, &path).unwrap();
        f.write(b"aaaa\nbbbb\ncccc\n0123456789012\n").unwrap();
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("p.log.3"), "aaaa\nbbbb\n");
        assert_eq!(read("p.log.2"), "cccc\n");
        assert_eq!(read("p.log.1"), "0123456789");
        assert_eq!(read("p.log"), "012\n");
    }

    #[test]
    fn capture_mode_takes_tagged_text_out_even_when_tokens_are_split() {
        let stream = b"before <!--XSUPERVISOR:BEGIN-->hello comm<!--XSUPERVISOR:END--> after\n";
        // Every way of cutting the stream in two gives the same result.
        for cut in 0..stream.len() {
            let mut c2 = Capture::new(1000);
            let (mut out, mut done) = c2.feed(&stream[..cut]);
            let (o2, d2) = c2.feed(&stream[cut..]);
            out.extend(o2);
            done.extend(d2);
            assert_eq!(out, b"before  after\n", "cut at {cut}");
            assert_eq!(done, vec![b"hello comm".to_vec()], "cut at {cut}");
        }
        // In order, with the captured text as read (supervisord's PROCESS_LOG events).
        let mut c = Capture::new(1000);
        assert_eq!(
            c.segments(stream),
            vec![
                Segment::Plain(b"before ".to_vec()),
                Segment::Captured(b"hello comm".to_vec()),
                Segment::Done(b"hello comm".to_vec()),
                Segment::Plain(b" after\n".to_vec()),
            ]
        );
        // Truncated to maxbytes.
        let mut c = Capture::new(3);
        let (_, done) = c.feed(b"<!--XSUPERVISOR:BEGIN-->abcdef<!--XSUPERVISOR:END-->");
        assert_eq!(done, vec![b"abc".to_vec()]);
    }

    #[test]
    fn tap_keeps_last_lines() {
        let t = Tap::default();
        t.push(b"one\ntw");
        t.push(b"o\nthree");
        assert_eq!(t.last_lines(10), vec!["one", "two", "three"]);
        assert_eq!(t.last_lines(2), vec!["two", "three"]);
        assert_eq!(t.total(), 13);
        t.clear();
        assert!(t.last_lines(10).is_empty());
        assert_eq!(t.total(), 13);
    }

    #[test]
    fn a_file_truncated_behind_its_back_fills_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let cfg = LogConfig {
            path: Some(path.clone()),
            maxbytes: 10,
            backups: 1,
        };
        let mut f = RotatingFile::open(&cfg, &path).unwrap();
        f.write(b"aaaaaaaa\n").unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        f.write(b"bbbb\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "bbbb\n");
        assert!(!dir.path().join("p.log.1").exists());
    }
}
