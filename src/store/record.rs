//! `data_dir/vigil.state`: the state record. A file of fixed size, preallocated when it is
//! created, holding two checksummed slots that are overwritten **in place** (`pwrite` +
//! `fdatasync`), alternately, so
//!
//! - writing it never allocates a block: the trading state can be persisted on a full disk;
//! - a torn write (power cut, SIGKILL mid-write) damages at most the slot being written; the
//!   other still holds the previous record, and the reader takes the valid slot with the
//!   highest generation.
//!
//! It holds the trading latch, the high-water mark of reserved event `seq`s (so `seq` is
//! never reused even when `vigil.db` is deleted), and the id of the database it belongs to
//! (so a replaced database is noticed).
//!
//! Slot layout (little endian): magic `VIGILST1` (8) | generation u64 | seq_reserved u64 |
//! payload length u32 | 4 reserved | SHA-256 of the preceding 32 bytes and the payload (32)
//! | payload (JSON) | zero padding to the next 4 KiB (bytes after it in the slot are stale
//! and ignored).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes per slot; the file is two slots.
pub const SLOT: usize = 32 * 1024;
const MAGIC: &[u8; 8] = b"VIGILST1";
const HEADER: usize = 8 + 8 + 8 + 4 + 4 + 32;

/// What the record holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contents {
    /// Every `seq` up to this one may have been handed out.
    #[serde(skip)]
    pub seq_reserved: u64,
    /// The trading latch as persisted (`Latch::to_persisted`), if any.
    #[serde(default)]
    pub latch: Option<String>,
    /// The id of the database (`kv` key `db_id`) this record belongs to.
    #[serde(default)]
    pub db_id: Option<String>,
    /// The events of the last trading-state transition, made durable here before they are
    /// announced and committed to SQLite afterwards; at start any of them missing from
    /// the database is inserted again with its `seq` (see `events::EventLog::start`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RecordedEvent>,
}

/// An event as the record keeps it: what is needed to insert it into SQLite again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub seq: u64,
    pub ts: String,
    pub kind: String,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Longest string the record keeps in an event's fields; a longer one (an operator's long
/// reason) is cut at a character boundary and ends with [`TRUNCATED`], so a transition's
/// events fit one 4 KiB page and the record write stays one small in-place write.
pub const FIELD_MAX: usize = 512;
pub const TRUNCATED: &str = "…[truncated]";

impl RecordedEvent {
    /// The event with every string longer than [`FIELD_MAX`] bytes truncated (marked).
    pub fn fitted(
        seq: u64,
        ts: &str,
        kind: &str,
        data: &serde_json::Map<String, serde_json::Value>,
    ) -> RecordedEvent {
        fn fit(v: &serde_json::Value) -> serde_json::Value {
            use serde_json::Value;
            match v {
                Value::String(s) if s.len() > FIELD_MAX => {
                    let mut end = FIELD_MAX;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    Value::String(format!("{}{TRUNCATED}", &s[..end]))
                }
                Value::Array(a) => Value::Array(a.iter().map(fit).collect()),
                Value::Object(m) => {
                    Value::Object(m.iter().map(|(k, v)| (k.clone(), fit(v))).collect())
                }
                other => other.clone(),
            }
        }
        RecordedEvent {
            seq,
            ts: ts.to_string(),
            kind: kind.to_string(),
            data: data.iter().map(|(k, v)| (k.clone(), fit(v))).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("state record {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("state record {path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
    #[error("state record {path}: the state is {len} bytes, more than a slot holds ({max})")]
    TooBig {
        path: PathBuf,
        len: usize,
        max: usize,
    },
}

/// How the record was found at start.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// No record yet (a fresh `data_dir`, or one from before the record existed).
    Fresh,
    Valid(Contents),
    /// Neither slot is valid; the detail says why.
    Damaged(String),
}

struct Inner {
    file: File,
    generation: u64,
    contents: Contents,
}

/// The open record; one writer at a time (a mutex), shared by the monitor (the latch) and
/// the event writer (the `seq` reservation).
pub struct StateRecord {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn digest(head: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(head);
    h.update(payload);
    h.finalize().into()
}

/// One slot's bytes → (generation, contents), or why it is not valid.
fn parse_slot(b: &[u8]) -> Result<(u64, Contents), String> {
    if b.iter().all(|&x| x == 0) {
        return Err("empty".into());
    }
    if b.len() < HEADER || &b[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let u64_at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let generation = u64_at(8);
    let seq_reserved = u64_at(16);
    let mut l = [0u8; 4];
    l.copy_from_slice(&b[24..28]);
    let len = u32::from_le_bytes(l) as usize;
    if HEADER + len > b.len() {
        return Err(format!("payload length {len} out of range"));
    }
    let payload = &b[HEADER..HEADER + len];
    if digest(&b[..32], payload)[..] != b[32..64] {
        return Err("checksum mismatch".into());
    }
    let mut c: Contents = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    c.seq_reserved = seq_reserved;
    Ok((generation, c))
}

fn encode(generation: u64, c: &Contents, path: &Path) -> Result<Vec<u8>, RecordError> {
    let payload = serde_json::to_vec(c).map_err(|e| RecordError::Damaged {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if HEADER + payload.len() > SLOT {
        return Err(RecordError::TooBig {
            path: path.to_path_buf(),
            len: payload.len(),
            max: SLOT - HEADER,
        });
    }
    // Only the pages in use are written (the parser reads `len` bytes): one 4 KiB page
    // for a usual latch, so a halt costs one small in-place write.
    let used = (HEADER + payload.len()).div_ceil(4096) * 4096;
    let mut b = vec![0u8; used.min(SLOT)];
    b[..8].copy_from_slice(MAGIC);
    b[8..16].copy_from_slice(&generation.to_le_bytes());
    b[16..24].copy_from_slice(&c.seq_reserved.to_le_bytes());
    b[24..28].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let d = digest(&b[..32], &payload);
    b[32..64].copy_from_slice(&d);
    b[HEADER..HEADER + payload.len()].copy_from_slice(&payload);
    Ok(b)
}

impl StateRecord {
    /// Open (creating and preallocating) the record; returns it and what was found.
    pub fn open(path: &Path) -> Result<(StateRecord, Found), RecordError> {
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path, "opening"))?;
        let len = file.metadata().map_err(io(path, "reading its size"))?.len() as usize;
        let mut found = Found::Fresh;
        let mut generation = 0;
        let mut contents = Contents::default();
        if existed && len > 0 {
            let mut buf = vec![0u8; len.min(2 * SLOT)];
            file.read_exact_at(&mut buf, 0)
                .map_err(io(path, "reading"))?;
            let mut best: Option<(u64, Contents)> = None;
            let mut why = Vec::new();
            for (i, chunk) in buf.chunks(SLOT).enumerate() {
                match parse_slot(chunk) {
                    Ok((g, c)) if best.as_ref().is_none_or(|(bg, _)| g > *bg) => {
                        best = Some((g, c))
                    }
                    Ok(_) => {}
                    Err(e) => why.push(format!("slot {i}: {e}")),
                }
            }
            found = match best {
                Some((g, c)) => {
                    generation = g;
                    contents = c.clone();
                    Found::Valid(c)
                }
                None if buf.iter().all(|&b| b == 0) => Found::Fresh,
                None => Found::Damaged(if len != 2 * SLOT {
                    format!("{len} bytes instead of {}; {}", 2 * SLOT, why.join(", "))
                } else {
                    why.join(", ")
                }),
            };
        }
        if len != 2 * SLOT || !matches!(found, Found::Valid(_)) {
            // Preallocate: write real zeros (not a hole) so later writes need no new block.
            // A damaged record is kept aside for inspection first.
            if let Found::Damaged(_) = found {
                let aside = path.with_extension("state.damaged");
                let _ = std::fs::copy(path, aside);
            }
            let keep = matches!(found, Found::Valid(_));
            if !keep {
                file.set_len(0).map_err(io(path, "preallocating"))?;
                file.write_all_at(&vec![0u8; 2 * SLOT], 0)
                    .map_err(io(path, "preallocating"))?;
            } else {
                file.set_len(2 * SLOT as u64)
                    .map_err(io(path, "preallocating"))?;
            }
            file.sync_all().map_err(io(path, "syncing"))?;
            if let Some(dir) = path.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(path, "syncing its directory"))?;
            }
        }
        Ok((
            StateRecord {
                path: path.to_path_buf(),
                inner: Mutex::new(Inner {
                    file,
                    generation,
                    contents,
                }),
            },
            found,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents last written (or read at open).
    pub fn contents(&self) -> Contents {
        self.inner
            .lock()
            .map(|g| g.contents.clone())
            .unwrap_or_default()
    }

    /// Change the contents and write them in place (the other slot), durably, before
    /// returning. On error the previous contents stay in effect (and on disk).
    pub fn update(&self, f: impl FnOnce(&mut Contents)) -> Result<(), RecordError> {
        let mut g = self.inner.lock().map_err(|_| RecordError::Damaged {
            path: self.path.clone(),
            detail: "lock poisoned".into(),
        })?;
        let mut next = g.contents.clone();
        f(&mut next);
        let generation = g.generation + 1;
        let bytes = encode(generation, &next, &self.path)?;
        let offset = (generation % 2) * SLOT as u64;
        g.file
            .write_all_at(&bytes, offset)
            .map_err(io(&self.path, "writing"))?;
        g.file.sync_data().map_err(io(&self.path, "syncing"))?;
        g.generation = generation;
        g.contents = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_torn_slot_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vigil.state");
        let (r, found) = StateRecord::open(&p).unwrap();
        assert_eq!(found, Found::Fresh);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 2 * SLOT as u64);
        r.update(|c| {
            c.latch = Some("{\"state\":\"HALTED\"}".into());
            c.seq_reserved = 100;
        })
        .unwrap();
        r.update(|c| c.seq_reserved = 200).unwrap();
        drop(r);
        let (_, found) = StateRecord::open(&p).unwrap();
        let Found::Valid(c) = found else {
            panic!("{found:?}")
        };
        assert_eq!(c.seq_reserved, 200);
        assert_eq!(c.latch.as_deref(), Some("{\"state\":\"HALTED\"}"));
        // Tear the newest slot (generation 2 is slot 0): the older one is used.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"garbage", 40).unwrap();
        drop(f);
        let (_, found) = StateRecord::open(&p).unwrap();
        let Found::Valid(c) = found else {
            panic!("{found:?}")
        };
        assert_eq!(c.seq_reserved, 100);
        // Both slots damaged: reported, kept aside, and the record is usable again.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"garbage", SLOT as u64 + 40).unwrap();
        drop(f);
        let (r, found) = StateRecord::open(&p).unwrap();
        assert!(
            matches!(found, Found::Damaged(ref d) if d.contains("checksum")),
            "{found:?}"
        );
        assert!(dir.path().join("vigil.state.damaged").exists());
        r.update(|c| c.seq_reserved = 5).unwrap();
        // A transition's events ride along, long strings cut to fit.
        let long = "x".repeat(10_000);
        let ev = RecordedEvent::fitted(7, "t", "trading_state", &{
            let mut m = serde_json::Map::new();
            m.insert("reason".into(), long.clone().into());
            m.insert("values".into(), serde_json::json!({"v": [long]}));
            m
        });
        assert!(ev.data["reason"].as_str().unwrap().ends_with(TRUNCATED));
        assert_eq!(
            ev.data["reason"].as_str().unwrap().len(),
            FIELD_MAX + TRUNCATED.len()
        );
        assert!(
            ev.data["values"]["v"][0]
                .as_str()
                .unwrap()
                .ends_with(TRUNCATED)
        );
        r.update(|c| c.events = vec![ev.clone()]).unwrap();
        drop(r);
        let (_, found) = StateRecord::open(&p).unwrap();
        let Found::Valid(c) = found else {
            panic!("{found:?}")
        };
        assert_eq!(c.events, vec![ev]);
        // Truncated: damaged.
        std::fs::write(&p, b"VIGILST1").unwrap();
        let (_, found) = StateRecord::open(&p).unwrap();
        assert!(matches!(found, Found::Damaged(_)), "{found:?}");
    }
}
