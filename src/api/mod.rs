//! HTTP: the only module that knows response shapes. axum router over handles
//! (supervisor, event log); no shared locks with the domains.

pub mod auth;
pub mod job_types;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod page;
pub mod reliability;
pub mod report;
pub mod sse;
pub mod system;
pub mod trading;
pub mod venues;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::config::Signal;
use crate::events::EventLog;
use crate::supervisor::{ActionResult, Health, SupervisorError, SupervisorHandle};

#[derive(Clone)]
pub struct AppState {
    pub supervisor: SupervisorHandle,
    pub events: EventLog,
    pub monitor: crate::monitor::MonitorHandle,
    /// `None` without `[auth]`: everything open, loopback only (see `api::auth`).
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// supervisord's XML-RPC and logtail routes (`crate::compat`).
    pub compat: crate::compat::Compat,
    /// Background jobs (`crate::jobs`).
    pub jobs: crate::jobs::JobsHandle,
    /// Cancelled when vigil shuts down: open streams (SSE, log follows) end, so the
    /// graceful HTTP shutdown does not wait for clients that never disconnect.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// `[venue.ID]` dead-man switches (`crate::venue`); empty without venues.
    pub venues: crate::venue::Venues,
    /// Where the streaming responses' tasks run (each ends with its client or `shutdown`);
    /// the daemon joins them at shutdown.
    pub tasks: tokio_util::task::TaskTracker,
}

/// The authenticated caller's name, put in request extensions by the auth layer; handlers
/// that change something record it as the actor.
#[derive(Clone, Debug)]
pub struct ActorName(pub String);

/// A stable error body: `{ "error": code, "message": text }`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = model::ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        match e {
            SupervisorError::NoSuchProcess(_) | SupervisorError::NoSuchGroup(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_such_process", e.to_string())
            }
            SupervisorError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
        }
    }
}

/// Every route goes into `routes` below (never after `auth::protect`, which would leave it
/// unchecked) and needs a row in `auth::ROUTES` and an entry in `openapi::operations`.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/api/programs", get(programs))
        .route("/api/programs/{name}/log", get(program_log))
        .route("/api/programs/{name}/{action}", post(program_action))
        .route("/api/events", get(events))
        .route("/api/events/stream", get(sse::stream))
        .merge(trading::routes())
        .merge(venues::routes())
        .merge(auth::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        .merge(report::routes())
        .merge(jobs::routes())
        .merge(job_types::routes())
        .merge(system::routes())
        .merge(page::routes());
    // supervisord's /RPC2 and /logtail use HTTP basic auth of their own: merged outside the
    // JWT layer (their rows in `auth::ROUTES` are `Delegated`).
    let compat = crate::compat::routes(state.compat.clone());
    // Access control, fallback, body limit, timeouts, security headers, CORS.
    auth::protect(routes, Arc::new(state))
        .layer(axum::middleware::from_fn(reliability::limit_body))
        .merge(compat)
}

type St = State<Arc<AppState>>;

async fn health(
    State(st): St,
    ext: axum::http::Extensions,
) -> Json<model::processes::HealthReport> {
    use model::processes::{HealthReport, JobsHealth, Problem, ProgramHealth};
    // Output tails can hold secrets: only for authenticated callers (or without [auth]).
    let tails = ext.get::<auth::Actor>().is_some();
    let snap = st.supervisor.snapshot();
    let mut programs = std::collections::BTreeMap::new();
    let mut worst = "ok";
    for p in &snap.processes {
        let tail = tails.then(|| {
            st.supervisor
                .output(&p.name)
                .map(|o| {
                    let mut l = o.stderr.last_lines(20);
                    if l.is_empty() {
                        l = o.stdout.last_lines(0);
                    }
                    l
                })
                .unwrap_or_default()
        });
        if matches!(p.health, Health::Crashed | Health::Fatal) && p.autostart {
            worst = "degraded";
        }
        programs.insert(p.name.clone(), ProgramHealth::new(p, tail));
    }
    let problems: Vec<Problem> = reliability::problems(&st);
    if !problems.is_empty() {
        worst = "degraded";
    }
    let mode = st.jobs.cgroup_mode();
    Json(HealthReport {
        jobs: JobsHealth {
            cgroup_mode: mode.as_str().to_string(),
            memory_enforcement: mode.memory_enforcement().to_string(),
        },
        problems,
        programs,
        status: worst.to_string(),
    })
}

async fn programs(State(st): St) -> Json<model::processes::ProgramList> {
    let snap = st.supervisor.snapshot();
    Json(model::processes::ProgramList {
        programs: snap.processes.iter().map(Into::into).collect(),
    })
}

#[derive(Deserialize)]
struct ActionQuery {
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    wait: Option<bool>,
}

#[derive(Deserialize, Default)]
struct ActionBody {
    #[serde(default)]
    signal: Option<String>,
}

async fn program_action(
    State(st): St,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<ActionQuery>,
    body: Option<Json<ActionBody>>,
) -> Result<Response, ApiError> {
    let wait = q.wait.unwrap_or(true);
    let results: Vec<ActionResult> = match action.as_str() {
        "start" => st.supervisor.start(&name, wait).await?,
        "stop" => st.supervisor.stop(&name, wait).await?,
        "restart" => st.supervisor.restart(&name).await?,
        "signal" => {
            let raw = q
                .signal
                .or_else(|| body.and_then(|b| b.0.signal))
                .ok_or_else(|| {
                    ApiError::bad_request("signal: required (name like HUP or number)")
                })?;
            let sig = Signal::parse(&raw)
                .ok_or_else(|| ApiError::bad_request(format!("signal: unknown signal {raw:?}")))?;
            st.supervisor.signal(&name, sig.number).await?
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown action {other:?}: expected start, stop, restart or signal"),
            ));
        }
    };
    let body = model::processes::ActionResponse::new(&results);
    let status = if body.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(body)).into_response())
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    lines: Option<usize>,
    #[serde(default)]
    follow: Option<bool>,
}

async fn program_log(
    State(st): St,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let out = st.supervisor.output(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_process",
            format!("no such process: {name}"),
        )
    })?;
    let channel = q.channel.unwrap_or_else(|| "stdout".into());
    let stderr = match channel.as_str() {
        "stdout" => false,
        "stderr" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "channel: expected stdout or stderr, got {other:?}"
            )));
        }
    };
    let tap = move |o: &crate::supervisor::output::Output| -> Vec<String> {
        let t = if stderr { &o.stderr } else { &o.stdout };
        t.last_lines(q.lines.unwrap_or(100))
    };
    if q.follow.unwrap_or(false) {
        let mut rx = if stderr {
            out.stderr.follow()
        } else {
            out.stdout.follow()
        };
        let mut initial = tap(&out).join("\n");
        if !initial.is_empty() {
            initial.push('\n');
        }
        let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
        let stop = st.shutdown.clone();
        st.tasks.spawn(async move {
            if tx.send(Ok(initial.into_bytes())).await.is_err() {
                return;
            }
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = rx.recv() => n,
                };
                match next {
                    Ok(chunk) => {
                        if tx.send(Ok(chunk.to_vec())).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let msg = format!("\n[vigil: {n} chunks skipped: reader too slow]\n");
                        if tx.send(Ok(msg.into_bytes())).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            axum::body::Body::from_stream(stream),
        )
            .into_response());
    }
    Ok(Json(model::processes::LogLines {
        lines: tap(&out),
        channel,
        process: name,
    })
    .into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: Option<u64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    /// The last N events (oldest first) instead of the first after `since` (the page's
    /// history on load).
    #[serde(default)]
    last: Option<u64>,
}

async fn events(
    State(st): St,
    Query(q): Query<EventsQuery>,
) -> Result<Json<model::events::EventPage>, ApiError> {
    let store_err = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e);
    let mut since = q.since.unwrap_or(0);
    let mut limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    if let Some(n) = q.last {
        let n = n.clamp(1, 10_000);
        let store = st.events.store().clone();
        let end = tokio::task::spawn_blocking(move || store.last_seq())
            .await
            .map_err(|e| store_err(e.to_string()))?
            .map_err(|e| store_err(e.to_string()))?;
        since = since.max(end.saturating_sub(n));
        limit = usize::try_from(n).unwrap_or(limit);
    }
    let evs =
        st.events.since(since, q.kind, limit).await.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
        })?;
    let gap = reliability::gap_after(&st, since).await;
    Ok(Json(model::events::EventPage::new(&evs, gap)))
}
