//! The HTTP API's JSON shapes: types of their own, serialised by the handlers and
//! deserialised by the CLI (`cli::ctl`), so that the wire format is a contract written down
//! once instead of whatever a core type (`vigil_core::…`, supervisor and monitor snapshots,
//! store rows) happens to serialise to, or a `serde_json::Value` built in a handler.
//!
//! Each family converts from its domain types (`From<&…>`), and its tests pin a domain value
//! to the exact JSON the API served before these types existed (golden JSON): changing a field
//! name, a type or an optional field shows there first.
//!
//! Every object's keys are in alphabetical order, as the API has always served them (the
//! handlers built `serde_json::Value`s, whose maps are sorted): fields are declared in that
//! order, and the golden check refuses a type whose output is not sorted.
//!
//! Names, types and states are strings on the wire (`"RUNNING"`, `"HALTED"`, `"critical"`),
//! so a client needs none of the domain enums.

pub mod events;
pub mod jobs;
pub mod processes;
pub mod session;
pub mod trading;

use serde::{Deserialize, Serialize};

/// Every 4xx/5xx body: `{ "error": code, "message": text }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// RFC 3339, UTC, milliseconds, of Unix milliseconds (the events' and monitor's format).
pub(crate) fn ms_rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .map(crate::events::rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod golden {
    //! The golden-JSON check shared by the families' tests.

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// `value` serialises to exactly `expected` (bytes, so key order too), its keys are sorted,
    /// and it reads back to an equal value.
    pub fn assert_wire<T>(value: &T, expected: &str)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let got = serde_json::to_string(value).expect("serialises");
        assert_eq!(got, expected, "wire format changed");
        let sorted = serde_json::from_str::<serde_json::Value>(&got)
            .expect("JSON")
            .to_string();
        assert_eq!(got, sorted, "keys must be in alphabetical order");
        let back: T = serde_json::from_str(&got).expect("reads back");
        assert_eq!(&back, value, "does not round-trip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document's `Error` schema is [`ErrorBody`]: the same properties, all
    /// required (none of its fields is optional).
    #[test]
    fn the_openapi_error_schema_is_the_error_body() {
        let doc = crate::api::openapi::document();
        let schema = &doc["components"]["schemas"]["Error"];
        let body = serde_json::to_value(ErrorBody {
            error: "bad_request".into(),
            message: "m".into(),
        })
        .expect("serialises");
        let fields: Vec<&str> = body
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut props: Vec<&str> = schema["properties"]
            .as_object()
            .expect("Error has properties")
            .keys()
            .map(String::as_str)
            .collect();
        props.sort_unstable();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .expect("Error has required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        required.sort_unstable();
        assert_eq!(props, fields);
        assert_eq!(required, fields);
    }

    /// An `ApiError` answers with exactly an [`ErrorBody`].
    #[tokio::test]
    async fn an_api_error_is_served_as_before() {
        use axum::response::IntoResponse;
        let r =
            crate::api::ApiError::bad_request("reason: required, a non-empty text").into_response();
        assert_eq!(r.status(), axum::http::StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("a body");
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        assert_eq!(
            text,
            r#"{"error":"bad_request","message":"reason: required, a non-empty text"}"#
        );
        let body: ErrorBody = serde_json::from_str(text).expect("an ErrorBody");
        golden::assert_wire(&body, text);
    }
}
