//! `GET /api/report?since=&until=&format=`: the session report (`vigil analyze --db`) over
//! the daemon's own history, as JSON (default), HTML or Markdown. Viewers and up.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::analyze::{self, Format};

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/api/report", get(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
    heartbeat_timeout: Option<f64>,
}

async fn report(
    State(st): State<Arc<AppState>>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let time = |v: &Option<String>, name: &str| -> Result<Option<u64>, ApiError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(analyze::parse_time_arg)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
    };
    let mut opts = vigil_core::report::Options {
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
        ..Default::default()
    };
    if let Some(t) = q.heartbeat_timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(ApiError::bad_request(
                "heartbeat_timeout: expected seconds > 0",
            ));
        }
        opts.heartbeat_timeout_s = Some(t);
    }
    let format = match q.format.as_deref().unwrap_or("json") {
        "json" => Format::Json,
        "html" => Format::Html,
        "md" => Format::Md,
        other => {
            return Err(ApiError::bad_request(format!(
                "format: `{other}`: expected json, html or md"
            )));
        }
    };
    let path = st.events.store().path().to_path_buf();
    let report = tokio::task::spawn_blocking(move || analyze::analyze_db(&path, &opts))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "report", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()))?;
    let body = analyze::render(&report, format);
    let ctype = match format {
        Format::Json => "application/json",
        Format::Html => "text/html; charset=utf-8",
        Format::Md => "text/markdown; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, ctype)], body).into_response())
}
