//! Where the trading state is persisted, and how it is restored (fail closed).
//!
//! - The **state record** (`data_dir/vigil.state`, [`crate::store::record`]): preallocated,
//!   checksummed, overwritten in place and fdatasynced, so a halt can be persisted with zero
//!   free blocks. It is the authority.
//! - The **state file** `data_dir/trading_state` that trading processes read: JSON padded
//!   with spaces to [`STATE_FILE_SIZE`] bytes, written atomically (temp file, fsync, rename,
//!   fsync dir); when that fails (a full disk) it is overwritten in place, which needs no new
//!   block.
//!
//! At start the latch comes from the record (or, in a `data_dir` from before the record,
//! from the SQLite `kv` row or the file); the file must agree with it, otherwise vigil
//! starts HALTED naming the disagreement ([`Latch::restore_checked`]). Either way the file
//! is rewritten to match before anything else runs.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use vigil_core::trading::{Latch, Restored, Severity, Source, Trigger};

use crate::events::{Announcer, Reserved};
use crate::store::Store;
use crate::store::record::{Found, RecordError, RecordedEvent, StateRecord};

/// The state file is padded to this size so an in-place rewrite never needs a new block.
pub const STATE_FILE_SIZE: usize = 4096;

const KV_KEY: &str = "trading_state";

/// A transition's reserved seqs, its events (`trading_state` last) and who announces them.
pub type Announcing = (
    Reserved,
    Vec<(String, serde_json::Map<String, Value>)>,
    Announcer,
);

/// What a write reached.
#[derive(Debug, Clone)]
pub struct Written {
    /// The state record (the authority): `Err` means the state is in effect but not persisted.
    pub record: Result<(), String>,
    pub file: Result<(), String>,
}

pub struct Persist {
    pub record: Arc<StateRecord>,
    found: Found,
    store: Store,
    pub file: PathBuf,
    /// Reasons found at start that must leave vigil HALTED (a database that failed its
    /// check and was set aside by `--recover`, …).
    faults: Vec<String>,
}

impl Persist {
    pub fn new(
        record: Arc<StateRecord>,
        found: Found,
        store: Store,
        file: PathBuf,
        faults: Vec<String>,
    ) -> Persist {
        Persist {
            record,
            found,
            store,
            file,
            faults,
        }
    }

    /// The latch to start with (see the module doc).
    pub fn restore(&self, now_ms: u64) -> Restored {
        let file = match std::fs::read_to_string(&self.file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => Some(String::new()),
        };
        let mut restored = match &self.found {
            Found::Damaged(d) => Latch::fail_closed(
                &format!(
                    "state record {} is damaged: {d}",
                    self.record.path().display()
                ),
                now_ms,
            ),
            Found::Valid(c) if c.latch.is_some() => {
                Latch::restore_checked(c.latch.as_deref(), file.as_deref(), now_ms)
            }
            _ => match self.store.kv_get(KV_KEY) {
                Ok(Some(v)) => Latch::restore_checked(Some(&v), file.as_deref(), now_ms),
                Ok(None) => Latch::restore_checked(None, file.as_deref(), now_ms),
                Err(e) => Latch::fail_closed(&format!("reading {e}"), now_ms),
            },
        };
        for f in &self.faults {
            let t = Trigger::new(Source::System("startup".into()), f.clone());
            if let Some(t) = restored.latch.trip(Severity::Halt, t, now_ms) {
                restored.transition = Some(t);
            }
        }
        restored
    }

    /// Write the latch to the record, then the state file; both are attempted, and both
    /// are done when this returns.
    pub fn write(&self, latch: &Latch) -> Written {
        self.write_announcing(latch, None, |_| {})
    }

    /// [`Persist::write`] for a transition whose events (`trading_state` last, with the
    /// seqs of `reserved`) go into the record with the latch — long strings truncated
    /// ([`RecordedEvent::fitted`]) — and are handed to `announcer` the moment the record is
    /// durable (or failed: then `trading_state` says `persisted: false` and why), while
    /// the state file is still being written; `on_recorded` is called with the record's
    /// outcome just before the announcement. This returns when both writes are done.
    pub fn write_announcing(
        &self,
        latch: &Latch,
        announce: Option<Announcing>,
        on_recorded: impl FnOnce(&Result<(), String>),
    ) -> Written {
        let text = match latch.to_persisted() {
            Ok(t) => t,
            Err(e) => {
                let r = Err(e.to_string());
                on_recorded(&r);
                if let Some((_, mut events, announcer)) = announce {
                    mark(&mut events, &r);
                    announcer.announce(events);
                }
                return Written {
                    record: Err(e.to_string()),
                    file: Err(e.to_string()),
                };
            }
        };
        let last = latch.last_transition();
        let body = json!({
            "state": latch.state().name(),
            "since": last.map(|t| super::ms_to_rfc3339(t.at_ms)),
            "reason": last.map(|t| t.reason.clone()),
            "source": last.map(|t| t.source.to_string()),
            "actor": last.map(|t| t.actor.clone()),
            "latch": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        });
        // The two writes are independent: at the same time; the announcement waits for the
        // record only.
        std::thread::scope(|s| {
            let file = s.spawn(|| write_state_file(&self.file, &body));
            let record = match announce {
                None => {
                    let r = self
                        .record
                        .update(|c| c.latch = Some(text.clone()))
                        .map_err(|e| e.to_string());
                    on_recorded(&r);
                    r
                }
                Some((reserved, mut events, announcer)) => {
                    let recorded: Vec<RecordedEvent> = events
                        .iter()
                        .enumerate()
                        .map(|(i, (kind, data))| {
                            let mut data = data.clone();
                            if kind == "trading_state" {
                                data.insert("persisted".into(), true.into());
                            }
                            RecordedEvent::fitted(
                                reserved.first + i as u64,
                                &reserved.ts,
                                kind,
                                &data,
                            )
                        })
                        .collect();
                    let mut r = self.record.update(|c| {
                        c.latch = Some(text.clone());
                        c.events = recorded;
                    });
                    if let Err(RecordError::TooBig { .. }) = r {
                        // A latch too big to keep the events beside it: the latch first.
                        r = self.record.update(|c| {
                            c.latch = Some(text.clone());
                            c.events.clear();
                        });
                    }
                    let r = r.map_err(|e| e.to_string());
                    crate::failpoint::hit("trading-state-recorded", std::time::Duration::ZERO);
                    on_recorded(&r);
                    mark(&mut events, &r);
                    announcer.announce(events);
                    r
                }
            };
            let file = file
                .join()
                .unwrap_or_else(|_| Err("state file writer panicked".into()));
            Written { record, file }
        })
    }
}

/// Say in the `trading_state` event whether the record holds it.
fn mark(events: &mut [(String, serde_json::Map<String, Value>)], r: &Result<(), String>) {
    if let Some((_, data)) = events.iter_mut().rev().find(|(k, _)| k == "trading_state") {
        data.insert("persisted".into(), r.is_ok().into());
        if let Err(e) = r {
            data.insert("persist_error".into(), e.clone().into());
        }
    }
}

/// The state file's bytes: the JSON, a newline, spaces up to [`STATE_FILE_SIZE`] (valid
/// JSON: trailing whitespace), a final newline.
fn padded(body: &Value) -> Vec<u8> {
    let mut text = format!("{body}\n").into_bytes();
    if text.len() < STATE_FILE_SIZE {
        text.resize(STATE_FILE_SIZE - 1, b' ');
        text.push(b'\n');
    }
    text
}

fn write_state_file(path: &std::path::Path, body: &Value) -> Result<(), String> {
    let bytes = padded(body);
    match super::write_atomic(path, &bytes) {
        Ok(()) => Ok(()),
        Err(atomic) => {
            // No room for a new file: overwrite the existing one in place (its blocks are
            // already allocated). Readers may see a torn file only during this fallback.
            use std::os::unix::fs::FileExt;
            let r = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| {
                    let len = f.metadata()?.len() as usize;
                    if len < bytes.len() {
                        return Err(std::io::Error::other(format!(
                            "the existing file is {len} bytes, {} needed",
                            bytes.len()
                        )));
                    }
                    f.write_all_at(&bytes, 0)?;
                    f.set_len(bytes.len() as u64)?;
                    f.sync_data()
                });
            match r {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), error = %atomic, "state file rewritten in place (atomic write failed)");
                    Ok(())
                }
                Err(e) => Err(format!("{}: {atomic}; in place: {e}", path.display())),
            }
        }
    }
}
