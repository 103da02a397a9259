//! Events in, from every source, funnelled into the monitor: the Unix socket
//! `data_dir/vigil.sock` (NDJSON, one connection per bot), programs' stdout
//! (`events = "stdout"`), and JSONL files named in `[ingest] files` (followed through
//! rotation and truncation with inotify — no polling). `POST /api/events` is in `api`.
//!
//! Every line is validated by `vigil_core::event`; a bad line is refused with its line
//! number, field and reason (written back on the socket, logged for stdout and files) and
//! counted; the valid lines around it are accepted.

mod socket;
pub mod tail;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::event::{LineError, parse_line};

use crate::events::Ack;
use crate::monitor::MonitorHandle;

/// Longest accepted line on the socket.
pub const MAX_LINE: usize = 1024 * 1024;

/// Validate and hand over one line; `default_source` fills a missing `source`; `ack`
/// (if any) learns when it is committed.
pub fn accept_line(
    monitor: &MonitorHandle,
    line_no: usize,
    text: &str,
    default_source: &str,
    ack: Option<&Arc<Ack>>,
) -> Result<(), LineError> {
    let ev = validate(monitor, line_no, text, default_source)?;
    monitor.ingest(ev, ack);
    Ok(())
}

/// [`accept_line`] for a sender without acknowledgements (a program's stdout, a followed
/// file): waits for room in the ingest budget, so the sender is not read meanwhile.
pub async fn accept_line_waiting(
    monitor: &MonitorHandle,
    line_no: usize,
    text: &str,
    default_source: &str,
) -> Result<(), LineError> {
    let ev = validate(monitor, line_no, text, default_source)?;
    monitor.ingest_waiting(ev).await;
    Ok(())
}

/// One line as an event (refusals counted).
fn validate(
    monitor: &MonitorHandle,
    line_no: usize,
    text: &str,
    default_source: &str,
) -> Result<vigil_core::event::InboundEvent, LineError> {
    match parse_line(line_no, text) {
        Ok(mut ev) => {
            if ev.source.is_none() {
                ev.source = Some(default_source.to_string());
            }
            Ok(ev)
        }
        Err(e) => {
            monitor.stats.reject(e.field.as_deref().unwrap_or("line"));
            Err(e)
        }
    }
}

/// Serve the NDJSON socket on `tasks` (the accept loop and each connection) until `stop`.
pub fn serve_socket(
    path: &Path,
    monitor: MonitorHandle,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if path.exists() {
        // A live vigil on the same data_dir would already hold the database lock and the
        // HTTP port; a leftover socket file is stale.
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    let (tracker, stop2) = (tasks.clone(), stop.clone());
    tasks.spawn(stop.run_until_cancelled_owned(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tracker.spawn(
                        stop2
                            .clone()
                            .run_until_cancelled_owned(socket::serve(stream, monitor.clone())),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "event socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }));
    Ok(())
}

/// Lines queued from programs' stdout to [`serve_stdout`]; full, the programs' pipes are
/// not read (`supervisor::output`), so a program that floods its stdout is slowed.
pub const STDOUT_EVENTS_QUEUE: usize = 1024;

/// Programs with `events = "stdout"`: JSON-object lines are events; other lines are
/// ordinary output (already in the program's log) and ignored here. Each event waits for
/// its unit of the ingest budget, so the queue is not read meanwhile.
///
/// Runs on `tasks` until `stop`, or until every sender is gone (the supervisor's end).
pub fn serve_stdout(
    mut rx: tokio::sync::mpsc::Receiver<(String, String)>,
    monitor: MonitorHandle,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    tasks.spawn(stop.run_until_cancelled_owned(async move {
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        while let Some((process, line)) = rx.recv().await {
            let n = counts.entry(process.clone()).or_default();
            *n += 1;
            if !line.trim_start().starts_with('{') {
                continue;
            }
            if let Err(e) = accept_line_waiting(&monitor, *n, &line, &process).await {
                tracing::warn!(process = %process, "event refused: {e}");
            }
        }
    }));
}

/// Follow each configured JSONL file, on `tasks` until `stop`.
pub fn serve_files(
    files: &[PathBuf],
    store: crate::store::Store,
    monitor: MonitorHandle,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    for f in files {
        tail::follow(
            f.clone(),
            store.clone(),
            monitor.clone(),
            tasks,
            stop.clone(),
        );
    }
}
