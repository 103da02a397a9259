//! Events: `GET /api/events` (the stored history) and the answers of `POST /api/events`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vigil_core::event::LineError;

use crate::events::Event;

/// One stored event: `seq`, `ts`, `type` and the event's own fields, in one object whose keys
/// are sorted like every object the API serves.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventView {
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The fields of this type of event (PRODUCT.md's event schema).
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

impl Serialize for EventView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = self.data.clone();
        m.insert("seq".into(), self.seq.into());
        m.insert("ts".into(), self.ts.clone().into());
        m.insert("type".into(), self.kind.clone().into());
        m.serialize(s)
    }
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            seq: e.seq,
            ts: e.ts.clone(),
            kind: e.kind.clone(),
            data: e
                .data
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "seq" | "ts" | "type"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Present when events after `since` were pruned or lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_gap: Option<HistoryGap>,
    /// The `seq` of the last event returned, `null` when none was.
    pub last_seq: Option<u64>,
}

impl EventPage {
    pub fn new(events: &[Event], history_gap: Option<HistoryGap>) -> Self {
        EventPage {
            events: events.iter().map(EventView::from).collect(),
            history_gap,
            last_seq: events.last().map(|e| e.seq),
        }
    }
}

/// Events `after < seq <= missing_through` are gone from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryGap {
    pub after: u64,
    pub missing_through: u64,
}

/// `POST /api/events` accepted every line (202).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: usize,
    pub rejected: usize,
}

/// `POST /api/events` refused some lines (400); the others were accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidEvents {
    pub accepted: usize,
    /// `invalid_events`.
    pub error: String,
    pub errors: Vec<RefusedLine>,
    pub message: String,
    pub rejected: usize,
}

/// A refused line of a batch: `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub line: usize,
    pub reason: String,
}

impl InvalidEvents {
    pub fn new(accepted: usize, errors: &[LineError]) -> Self {
        InvalidEvents {
            accepted,
            error: "invalid_events".into(),
            errors: errors
                .iter()
                .map(|e| RefusedLine {
                    line: e.line,
                    field: e.field.clone(),
                    reason: e.reason.clone(),
                })
                .collect(),
            message: format!(
                "{} of {} events refused; the others were accepted",
                errors.len(),
                errors.len() + accepted
            ),
            rejected: errors.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::golden::assert_wire;

    #[test]
    fn events_are_served_as_before() {
        let ev = Event::from_row(
            7,
            "2026-12-03T20:49:00.000Z",
            "process_state".into(),
            r#"{"process":"web","from":"STARTING","to":"RUNNING","seq":99,"type":"x"}"#,
        )
        .expect("a row");
        assert_wire(
            &EventPage::new(std::slice::from_ref(&ev), None),
            r#"{"events":[{"from":"STARTING","process":"web","seq":7,"to":"RUNNING","ts":"2026-12-03T20:49:00.000Z","type":"process_state"}],"last_seq":7}"#,
        );
        assert_wire(
            &EventPage::new(
                &[],
                Some(HistoryGap {
                    after: 0,
                    missing_through: 5,
                }),
            ),
            r#"{"events":[],"history_gap":{"after":0,"missing_through":5},"last_seq":null}"#,
        );
    }

    #[test]
    fn ingest_answers_are_served_as_before() {
        assert_wire(
            &Accepted {
                accepted: 2,
                rejected: 0,
            },
            r#"{"accepted":2,"rejected":0}"#,
        );
        let errors = [
            LineError {
                line: 2,
                field: Some("value".into()),
                reason: "expected a number".into(),
            },
            LineError {
                line: 3,
                field: None,
                reason: "not JSON".into(),
            },
        ];
        assert_wire(
            &InvalidEvents::new(1, &errors),
            r#"{"accepted":1,"error":"invalid_events","errors":[{"field":"value","line":2,"reason":"expected a number"},{"line":3,"reason":"not JSON"}],"message":"2 of 3 events refused; the others were accepted","rejected":2}"#,
        );
    }
}
