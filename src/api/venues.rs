//! Venues and their dead-man switch: `GET /api/venues`, `POST /api/venues/{id}/arm`,
//! `POST /api/venues/{id}/disarm` (admins; the reason is recorded in the event).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Extensions, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::trading::actor_of;
use super::{ApiError, AppState};
use crate::venue::VenueError;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/venues", get(list))
        .route("/api/venues/{id}/arm", post(arm))
        .route("/api/venues/{id}/disarm", post(disarm))
}

async fn list(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "state": st.monitor.snapshot().state,
        "venues": st.venues.views(),
        "close_watch": st.venues.close_watch(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

fn reason_of(body: &Bytes) -> Result<String, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "body: expected a JSON object with \"reason\"",
        ));
    }
    let b: ReasonBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body: line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let r = b.reason.trim();
    if r.is_empty() {
        return Err(ApiError::bad_request("reason: required, a non-empty text"));
    }
    Ok(r.to_string())
}

impl From<VenueError> for ApiError {
    fn from(e: VenueError) -> Self {
        match e {
            VenueError::NoSuchVenue(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_such_venue", e.to_string())
            }
            VenueError::Refused(_) => ApiError::new(StatusCode::CONFLICT, "refused", e.to_string()),
            VenueError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "venue", e.to_string())
            }
        }
    }
}

async fn arm(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = reason_of(&body)?;
    let v = st.venues.arm(&id, &actor_of(&ext), &reason).await?;
    Ok(Json(json!({"venue": v})))
}

async fn disarm(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    ext: Extensions,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = reason_of(&body)?;
    let v = st.venues.disarm(&id, &actor_of(&ext), &reason).await?;
    Ok(Json(json!({"venue": v})))
}
