//! Following a JSONL file like `tail -F`, driven by inotify on its directory (no polling):
//! appended lines are read as they are written, a rename or re-create (rotation) finishes
//! the old file and continues with the new one from its start, a truncation restarts at 0.
//! The (inode, offset) reached is kept in the store, so lines written while vigil was down
//! are read at the next start; a file seen for the first time is read from its end.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::monitor::MonitorHandle;
use crate::store::Store;

struct Follower {
    path: PathBuf,
    file: Option<std::fs::File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
    /// The bytes just before `offset`, to notice a truncate-and-rewrite that left the file
    /// at least as long as before.
    sig: Vec<u8>,
    line_no: usize,
    store: Store,
    monitor: MonitorHandle,
    source: String,
}

impl Follower {
    fn key(&self) -> String {
        format!("tail:{}", self.path.display())
    }

    fn save(&self) {
        let store = self.store.clone();
        let key = self.key();
        let value = format!("{}:{}", self.inode, self.offset);
        if let Ok(conn) = store.connect(true)
            && let Err(e) = Store::kv_put(&conn, store.path(), &key, &value)
        {
            tracing::warn!(error = %e, "cannot save the tail position");
        }
    }

    /// Open the file; `resume` uses the saved position when the inode matches.
    fn open(&mut self, first: bool) {
        let Ok(f) = std::fs::File::open(&self.path) else {
            self.file = None;
            return;
        };
        let Ok(meta) = f.metadata() else { return };
        let saved = self.store.kv_get(&self.key()).ok().flatten().and_then(|v| {
            let (i, o) = v.split_once(':')?;
            Some((i.parse::<u64>().ok()?, o.parse::<u64>().ok()?))
        });
        self.inode = meta.ino();
        self.offset = match (first, saved) {
            (true, Some((ino, off))) if ino == meta.ino() && off <= meta.len() => off,
            (true, Some(_)) => 0, // rotated while we were away: the new file is all new
            (true, None) => meta.len(),
            (false, _) => 0,
        };
        self.partial.clear();
        self.sig.clear();
        self.file = Some(f);
        self.remember_sig();
    }

    /// Read the (up to 64) bytes before `offset`.
    fn bytes_before(&mut self) -> Option<Vec<u8>> {
        let f = self.file.as_mut()?;
        let start = self.offset.saturating_sub(64);
        f.seek(SeekFrom::Start(start)).ok()?;
        let mut buf = vec![0u8; (self.offset - start) as usize];
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    fn remember_sig(&mut self) {
        self.sig = self.bytes_before().unwrap_or_default();
    }

    /// Read what is new; each event waits for room in the ingest budget, so the file is
    /// not read further while it is full.
    async fn drain(&mut self) {
        let truncated = match self.file.as_ref().map(|f| f.metadata()) {
            Some(Ok(meta)) => meta.len() < self.offset,
            _ => return,
        } || (!self.sig.is_empty()
            && self.bytes_before().as_ref() != Some(&self.sig));
        let Some(f) = self.file.as_mut() else { return };
        if truncated {
            tracing::warn!(file = %self.path.display(), "file truncated; reading from the start");
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if let Err(e) = f.take(64 * 1024 * 1024).read_to_end(&mut buf) {
            tracing::warn!(file = %self.path.display(), error = %e, "reading");
            return;
        }
        if buf.is_empty() {
            return;
        }
        self.offset += buf.len() as u64;
        self.remember_sig();
        self.partial.extend_from_slice(&buf);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            self.line_no += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if let Err(e) =
                super::accept_line_waiting(&self.monitor, self.line_no, text, &self.source).await
            {
                tracing::warn!(file = %self.path.display(), "event refused: {e}");
            }
        }
        self.save();
    }

    fn rotated(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => self.file.is_none() || m.ino() != self.inode,
            Err(_) => false,
        }
    }
}

/// Follow `path` on `tasks` until `stop`. The thread blocked in inotify's read(2) is not
/// joined: it cannot be woken, and it ends at its next event once the task is gone (it holds
/// only the inotify descriptor).
pub fn follow(
    path: PathBuf,
    store: Store,
    monitor: MonitorHandle,
    tasks: &tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
) {
    tasks.spawn(stop.run_until_cancelled_owned(async move {
        let dir = path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into());
        let name = path.file_name().map(|n| n.to_os_string());
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "inotify unavailable; cannot follow {}", path.display());
                return;
            }
        };
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE;
        if let Err(e) = inotify.add_watch(&dir, flags) {
            tracing::error!(error = %e, dir = %dir.display(), "cannot watch the directory of an ingest file");
            return;
        }
        // A thread blocked in read(2) on the inotify fd wakes the task: event-driven, and
        // no unsafe fd registration with the runtime.
        let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<bool>(64);
        let watched = name.clone();
        let spawned = std::thread::Builder::new()
            .name("vigil-tail".into())
            .spawn(move || {
                loop {
                    match inotify.read_events() {
                        Ok(evs) => {
                            let ours = evs.iter().any(|e| e.name.as_deref() == watched.as_deref());
                            if ours && wake_tx.blocking_send(true).is_err() {
                                return;
                            }
                        }
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "inotify read failed");
                            return;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the file follower");
            return;
        }
        let source = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "file".into());
        let mut f = Follower {
            path: path.clone(),
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
            sig: Vec::new(),
            line_no: 0,
            store,
            monitor,
            source,
        };
        f.open(true);
        f.drain().await;
        tracing::info!(file = %path.display(), "following");
        while wake_rx.recv().await.is_some() {
            while wake_rx.try_recv().is_ok() {}
            // Finish what the current file has, then switch if the path now names a new one.
            f.drain().await;
            if f.rotated() {
                tracing::info!(file = %path.display(), "file rotated; following the new one");
                f.open(false);
                f.drain().await;
            }
        }
    }));
}
