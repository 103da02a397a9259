//! The stored event: what a row of the `events` table is, and how it is served (its JSON
//! object: `seq`, `ts`, `type`, then its own fields). The event log re-exports it,
//! assigns `seq`s and hands rows to the store, which reads and writes them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::StoreError;

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub kind: String,
    /// The event's own fields (an object).
    pub data: Map<String, Value>,
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.data.len() + 3))?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("type", &self.kind)?;
        for (k, v) in &self.data {
            if k != "seq" && k != "ts" && k != "type" {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

impl Event {
    pub fn from_row(seq: u64, ts: &str, kind: String, data: &str) -> Result<Event, StoreError> {
        let data = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: "data is not an object".into(),
                });
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Event {
            seq,
            ts: ts.to_string(),
            kind,
            data,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn str_field(&self, k: &str) -> Option<&str> {
        self.data.get(k).and_then(Value::as_str)
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
