//! supervisord's "main log" for `readLog` / `maintail` / `GET /mainlogtail`: vigil logs to
//! stderr (journald keeps it), so the daemon's own log lines are also kept here, the last
//! [`CAPACITY`] bytes of them, with colour codes stripped. Offsets are those of a virtual
//! file that grows with every line and empties on `clearLog`; bytes older than the buffer
//! read as absent, as if rotated away.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{LazyLock, Mutex};

use tokio::sync::broadcast;

use crate::config::LogConfig;
use crate::supervisor::output::RotatingFile;

/// Bytes of the main log kept in memory.
pub const CAPACITY: usize = 1024 * 1024;

pub struct MainLog {
    inner: Mutex<Inner>,
    live: broadcast::Sender<()>,
}

#[derive(Default)]
struct Inner {
    buf: VecDeque<u8>,
    /// Size of the virtual file: bytes appended since start or the last clear.
    end: u64,
    /// `[supervisord] logfile`: every line is also appended there.
    file: Option<RotatingFile>,
}

static MAIN_LOG: LazyLock<MainLog> = LazyLock::new(|| MainLog {
    inner: Mutex::new(Inner::default()),
    live: broadcast::channel(16).0,
});

/// The process's main log.
pub fn main_log() -> &'static MainLog {
    &MAIN_LOG
}

impl MainLog {
    pub fn append(&self, data: &[u8]) {
        let clean = strip_ansi(data);
        if clean.is_empty() {
            return;
        }
        if let Ok(mut g) = self.inner.lock() {
            if let Some(f) = g.file.as_mut() {
                // Cannot log a failure to write the log; stderr still has the line.
                let _ = f.write(&clean);
            }
            g.end += clean.len() as u64;
            g.buf.extend(clean);
            let excess = g.buf.len().saturating_sub(CAPACITY);
            g.buf.drain(..excess);
        }
        let _ = self.live.send(());
    }

    /// Also write the log to `cfg.path` (rotating as configured), starting with what is
    /// buffered so far. `None` stops writing to a file.
    pub fn attach(&self, cfg: Option<&LogConfig>) -> std::io::Result<()> {
        let file = match cfg.and_then(|c| c.path.as_deref().map(|p| (c, p))) {
            Some((c, p)) => {
                let mut f = RotatingFile::open(c, p)?;
                if let Ok(g) = self.inner.lock() {
                    let (a, b) = g.buf.as_slices();
                    f.write(a)?;
                    f.write(b)?;
                }
                Some(f)
            }
            None => None,
        };
        if let Ok(mut g) = self.inner.lock() {
            g.file = file;
        }
        Ok(())
    }

    /// The virtual file's size.
    pub fn size(&self) -> u64 {
        self.inner.lock().map(|g| g.end).unwrap_or(0)
    }

    /// Up to `len` bytes from `start`, as far as they are still buffered, and the offset
    /// just after them (bytes already dropped are skipped).
    pub fn read(&self, start: u64, len: u64) -> (Vec<u8>, u64) {
        let Ok(g) = self.inner.lock() else {
            return (Vec::new(), start);
        };
        let first = g.end - g.buf.len() as u64;
        let from = start.max(first);
        let to = from.saturating_add(len).min(g.end);
        if from >= to {
            return (Vec::new(), from.min(g.end));
        }
        let a = (from - first) as usize;
        let b = (to - first) as usize;
        (g.buf.range(a..b).copied().collect(), to)
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.buf.clear();
            g.end = 0;
        }
        let _ = self.live.send(());
    }

    /// Wakes whenever the log grows or is cleared.
    pub fn follow(&self) -> broadcast::Receiver<()> {
        self.live.subscribe()
    }
}

/// Remove ANSI escape sequences (CSI `ESC [ … final`, and two-byte `ESC x`).
fn strip_ansi(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(&c) = data.get(i) {
        if c != 0x1b {
            out.push(c);
            i += 1;
            continue;
        }
        if data.get(i + 1) == Some(&b'[') {
            i += 2;
            while let Some(&p) = data.get(i) {
                i += 1;
                if (0x40..=0x7e).contains(&p) {
                    break;
                }
            }
        } else {
            i += 2;
        }
    }
    out
}

/// A `tracing_subscriber` writer: stderr, and a copy into the main log.
#[derive(Clone, Copy, Default)]
pub struct Tee;

pub struct TeeWriter;

impl Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        main_log().append(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Tee {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        TeeWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes() {
        assert_eq!(
            strip_ansi(b"\x1b[2m2026\x1b[0m \x1b[32m INFO\x1b[0m spawned\n"),
            b"2026  INFO spawned\n"
        );
        assert_eq!(strip_ansi(b"\x1b"), b"");
        assert_eq!(strip_ansi(b"a\x1b[31"), b"a");
    }

    #[test]
    fn keeps_the_tail_with_virtual_offsets() {
        let log = MainLog {
            inner: Mutex::new(Inner::default()),
            live: broadcast::channel(4).0,
        };
        log.append(b"hello ");
        log.append(b"world\n");
        assert_eq!(log.size(), 12);
        assert_eq!(log.read(6, 100), (b"world\n".to_vec(), 12));
        assert_eq!(log.read(0, 5), (b"hello".to_vec(), 5));
        assert_eq!(log.read(50, 5), (Vec::new(), 12));
        log.append(&vec![b'x'; CAPACITY]);
        assert_eq!(log.size(), 12 + CAPACITY as u64);
        // The first 12 bytes are gone: reading from 0 starts at what is left.
        assert_eq!(log.read(0, 2), (b"xx".to_vec(), 14));
        log.clear();
        assert_eq!(log.size(), 0);
        assert_eq!(log.read(0, 10).0, b"");
    }
}
