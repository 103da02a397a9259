//! Trading state, checks and events in: `GET /api/state`, `POST /api/trading/halt`,
//! `POST /api/trading/resume`, `GET /api/checks`, `POST /api/events`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use vigil_core::event::parse_body;
use vigil_core::trading::ResumeError;

use super::model::trading as model;
use super::{ApiError, AppState};
use crate::monitor::MonitorError;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/state", get(state))
        .route("/api/checks", get(checks))
        .route("/api/trading/halt", post(halt))
        .route("/api/trading/resume", post(resume))
        .route("/api/events", post(ingest))
}

/// Who is acting: the authenticated user or token (set by the auth layer); `local` when
/// authentication is not configured (loopback-only mode).
pub fn actor_of(ext: &Extensions) -> String {
    ext.get::<super::ActorName>()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "local".into())
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("body: expected a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "body: line {} column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

async fn state(State(st): State<Arc<AppState>>) -> Json<model::TradingStateView> {
    Json(model::TradingStateView::from(&*st.monitor.snapshot()))
}

async fn checks(State(st): State<Arc<AppState>>) -> Json<model::ChecksView> {
    Json(model::ChecksView::new(
        &st.monitor.snapshot(),
        &st.monitor.stats,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HaltBody {
    reason: String,
    #[serde(default)]
    reduce_only: bool,
}

async fn halt(
    State(st): State<Arc<AppState>>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: HaltBody = parse(&body)?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::bad_request("reason: required, a non-empty text"));
    }
    let actor = actor_of(&ext);
    let t = st
        .monitor
        .halt(&actor, b.reason.trim(), b.reduce_only)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "monitor", e.to_string()))?;
    let s = st.monitor.snapshot();
    Ok(Json(model::HaltResponse {
        changed: t.is_some(),
        state: s.state.name().to_string(),
        transition: t.as_ref().map(model::Transition::from),
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    reason: String,
    #[serde(default)]
    force: bool,
}

async fn resume(
    State(st): State<Arc<AppState>>,
    ext: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: ResumeBody = parse(&body)?;
    let actor = actor_of(&ext);
    match st.monitor.resume(&actor, &b.reason, b.force).await {
        Ok(t) => Ok(Json(model::ResumeResponse::from(&t)).into_response()),
        Err(MonitorError::Resume(ResumeError::ConditionsHold { holding })) => Ok((
            StatusCode::CONFLICT,
            Json(model::ConditionsHold::new(&holding)),
        )
            .into_response()),
        Err(MonitorError::Resume(ResumeError::ReasonRequired)) => {
            Err(ApiError::bad_request("reason: required, a non-empty text"))
        }
        Err(MonitorError::Resume(e @ ResumeError::AlreadyActive)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_active",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "monitor",
            e.to_string(),
        )),
    }
}

/// One JSON object or NDJSON. Valid lines are accepted even when others are refused; the
/// response lists every refused line (400 if any, else 202). The answer comes once every
/// accepted event is committed (durable acknowledgement, group commit); when the ingest
/// budget is full nothing is taken and the answer is 503 with `Retry-After`.
async fn ingest(State(st): State<Arc<AppState>>, ext: Extensions, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        st.monitor.stats.reject("utf8");
        return ApiError::bad_request("body: not valid UTF-8").into_response();
    };
    let (ok, errors) = parse_body(text);
    let default_source = actor_of(&ext);
    let accepted = ok.len();
    let permit = if accepted == 0 {
        None
    } else {
        match st.monitor.try_admit(accepted) {
            Some(p) => Some(p),
            None => return overloaded(accepted),
        }
    };
    let (ack, committed) = crate::events::Ack::new(permit);
    for (_, mut ev) in ok {
        if ev.source.is_none() {
            ev.source = Some(default_source.clone());
        }
        st.monitor.ingest(ev, Some(&ack));
    }
    ack.close();
    match committed.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_stored",
                format!("the events were not stored: {e}; nothing of this batch is acknowledged"),
            )
            .into_response();
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_stored",
                "the event writer stopped before committing; nothing of this batch is acknowledged",
            )
            .into_response();
        }
    }
    for e in &errors {
        st.monitor
            .stats
            .reject(e.field.as_deref().unwrap_or("line"));
    }
    if errors.is_empty() {
        (
            StatusCode::ACCEPTED,
            Json(super::model::events::Accepted {
                accepted,
                rejected: 0,
            }),
        )
            .into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(super::model::events::InvalidEvents::new(accepted, &errors)),
        )
            .into_response()
    }
}

/// 503 with `Retry-After`: the ingest budget is full; nothing of the batch was taken.
fn overloaded(n: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        format!("vigil is storing a backlog; none of these {n} events was taken, retry after 1 s"),
    )
    .into_response();
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    r
}
