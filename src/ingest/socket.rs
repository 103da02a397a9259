//! One connection of the NDJSON socket `data_dir/vigil.sock`.
//!
//! - A bad line is answered at once: `{"ok":false,"line":N,"field":…,"reason":…}`.
//! - Valid lines are answered only when asked: a line `{"ack": ID}` (any JSON value, no
//!   `type`) is answered `{"ok":true,"ack":ID,"committed":N}` once every event sent before
//!   it is committed (N = events since the previous ack), or `{"ok":false,"ack":ID,
//!   "error":…}` when some could not be stored.
//! - Backpressure: each line takes one unit of the ingest budget, given back when the event
//!   is committed. When the budget is full the socket is not read until there is room again,
//!   so a flood slows the sender instead of growing vigil's memory.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};

use super::{MAX_LINE, accept_line};
use crate::events::Ack;
use crate::monitor::MonitorHandle;

/// Lines per acknowledgement group (a group is committed and answered together).
const GROUP: usize = 256;

type Done = oneshot::Receiver<Result<(), String>>;

/// The groups of one connection not yet known to be committed, oldest first.
#[derive(Default)]
struct Groups {
    open: Option<(Arc<Ack>, usize)>,
    waiting: VecDeque<Done>,
    failed: Option<String>,
    since_ack: u64,
}

impl Groups {
    /// A group's outcome; `None` when its acknowledgement was dropped unresolved.
    fn note(&mut self, r: Option<Result<(), String>>) {
        let err = match r {
            Some(Ok(())) => return,
            Some(Err(e)) => e,
            None => "the event writer stopped".to_string(),
        };
        self.failed.get_or_insert(err);
    }

    /// Close the open group (it can complete now) and forget groups already done.
    fn close(&mut self) {
        if let Some((ack, _)) = self.open.take() {
            ack.close();
        }
        while let Some(front) = self.waiting.front_mut() {
            match front.try_recv() {
                Err(oneshot::error::TryRecvError::Empty) => break,
                Ok(r) => {
                    self.waiting.pop_front();
                    self.note(Some(r));
                }
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.waiting.pop_front();
                    self.note(None);
                }
            }
        }
    }

    fn group(&mut self) -> &Arc<Ack> {
        if self.open.as_ref().is_some_and(|(_, n)| *n >= GROUP) {
            self.close();
        }
        let (ack, n) = self.open.get_or_insert_with(|| {
            let (ack, rx) = Ack::new(None);
            self.waiting.push_back(rx);
            (ack, 0)
        });
        *n += 1;
        ack
    }

    /// Everything sent so far is committed (or failed): the answer to `{"ack": id}`.
    async fn settle(&mut self, id: Value) -> Value {
        self.close();
        while let Some(rx) = self.waiting.pop_front() {
            let r = rx.await.ok();
            self.note(r);
        }
        let n = std::mem::take(&mut self.since_ack);
        match self.failed.take() {
            None => json!({"ok": true, "ack": id, "committed": n}),
            Some(e) => {
                json!({"ok": false, "ack": id, "error": format!("not every event since the last ack was stored: {e}")})
            }
        }
    }
}

/// `{"ack": ID}` without a `type`: the ID.
fn ack_request(line: &str) -> Option<Value> {
    if !line.contains("\"ack\"") || line.contains("\"type\"") {
        return None;
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut m)) if m.len() == 1 => m.remove("ack"),
        _ => None,
    }
}

pub async fn serve(stream: UnixStream, monitor: MonitorHandle) {
    let mut framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    let mut n = 0usize;
    let mut groups = Groups::default();
    while let Some(item) = framed.next().await {
        n += 1;
        let reply = match item {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => {
                if let Some(id) = ack_request(&line) {
                    groups.settle(id).await
                } else {
                    let permit = match monitor.take_now(1) {
                        Some(p) => p,
                        None => {
                            // Full: let this connection's own groups complete, then wait
                            // for room without reading further.
                            groups.close();
                            monitor.stats.throttle();
                            match monitor.admit(1).await {
                                Some(p) => p,
                                None => break,
                            }
                        }
                    };
                    let ack = groups.group().clone();
                    ack.hold(permit);
                    match accept_line(&monitor, n, &line, "socket", Some(&ack)) {
                        Ok(()) => {
                            groups.since_ack += 1;
                            continue;
                        }
                        Err(e) => {
                            json!({"ok": false, "line": e.line, "field": e.field, "reason": e.reason})
                        }
                    }
                }
            }
            Err(LinesCodecError::MaxLineLengthExceeded) => {
                monitor.stats.reject("line_too_long");
                json!({"ok": false, "line": n, "reason": format!("line longer than {MAX_LINE} bytes")})
            }
            Err(LinesCodecError::Io(_)) => break,
        };
        if framed.send(reply.to_string()).await.is_err() {
            break;
        }
    }
    groups.close();
}
