//! Seed 004's system routes, with its payloads and event names:
//! `GET /api/system/resources` (`resources` for admins only, `queue`, `is_admin`),
//! `GET /api/system/queue`, and `GET /api/system/task-events` (SSE: `initial_state`,
//! `task_queued`, `task_running`, `task_completed`, `task_description_update`, `heartbeat`
//! every 5 s; `timestamp` on all; `resources` for admins only; a non-admin's stream carries
//! only their own tasks).
//!
//! The SSE messages are unnamed (`data:` lines only), as the seed's `EventSource.onmessage`
//! client expects; the kind is the payload's `type`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::sse::Event as SseEvent;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::auth::Actor;
use super::{ApiError, AppState};

type St = State<Arc<AppState>>;

pub const HEARTBEAT: Duration = Duration::from_secs(5);

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/system/resources", get(resources))
        .route("/api/system/queue", get(queue))
        .route("/api/system/task-events", get(task_events))
}

async fn resources(
    State(st): St,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    let snap = st.jobs.queue().await?;
    let queue = snap.to_json(|u| actor.sees_job_of(u));
    let mut body = json!({"queue": queue, "is_admin": actor.sees_host_resources()});
    if actor.sees_host_resources() {
        let r = st.jobs.resources().await?;
        if let Some(o) = body.as_object_mut() {
            o.insert("resources".into(), r.to_json());
        }
    }
    Ok(Json(body))
}

async fn queue(State(st): St, Extension(actor): Extension<Actor>) -> Result<Json<Value>, ApiError> {
    let snap = st.jobs.queue().await?;
    Ok(Json(snap.to_json(|u| actor.sees_job_of(u))))
}

fn message(v: &Value) -> SseEvent {
    SseEvent::default().data(v.to_string())
}

async fn task_events(
    State(st): St,
    Extension(actor): Extension<Actor>,
) -> Result<axum::response::Response, ApiError> {
    // Subscribe before the snapshot, so nothing between them is missed.
    let mut rx = st.jobs.subscribe();
    let snap = st.jobs.queue().await?;
    let admin = actor.sees_host_resources();
    let jobs = st.jobs.clone();
    let resources = move || -> Option<Value> {
        admin.then(|| {
            let r = jobs.read_host();
            json!({
                "cpu": {"total_cores": r.total_cores, "available_cores": (r.available_cores() * 100.0).round() / 100.0,
                        "usage_percent": (r.cpu_percent * 100.0).round() / 100.0},
                "ram": {"total_gb": (r.total_ram_gb * 100.0).round() / 100.0,
                        "available_gb": (r.available_ram_gb * 100.0).round() / 100.0,
                        "usage_percent": (r.ram_usage_percent() * 100.0).round() / 100.0},
            })
        })
    };
    let wrap = {
        let resources = resources.clone();
        move |kind: &str, data: Option<Value>, ts: String| {
            let mut v = json!({"type": kind, "timestamp": ts});
            if let Some(o) = v.as_object_mut() {
                if let Some(d) = data {
                    o.insert("data".into(), d);
                }
                if let Some(r) = resources() {
                    o.insert("resources".into(), r);
                }
            }
            v
        }
    };
    let initial = wrap(
        "initial_state",
        Some(snap.to_json(|u| actor.sees_job_of(u))),
        crate::events::rfc3339(chrono::Utc::now()),
    );
    let (tx, out) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let stop = st.shutdown.clone();
    let jobs = st.jobs.clone();
    st.tasks.spawn(async move {
        if tx.send(Ok(message(&initial))).await.is_err() {
            return;
        }
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                _ = beat.tick() => {
                    wrap("heartbeat", None, crate::events::rfc3339(chrono::Utc::now()))
                }
                e = rx.recv() => match e {
                    Ok(ev) => {
                        if !actor.sees_job_of(&ev.user_id) {
                            continue;
                        }
                        wrap(ev.kind, Some(ev.data.clone()), ev.timestamp.clone())
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: start over from the current state.
                        match jobs.queue().await {
                            Ok(s) => wrap("initial_state", Some(s.to_json(|u| actor.sees_job_of(u))), crate::events::rfc3339(chrono::Utc::now())),
                            Err(_) => return,
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(Ok(message(&next))).await.is_err() {
                return;
            }
        }
    });
    // X-Accel-Buffering: no and keep-alive comments, like every SSE stream (api::sse).
    Ok(super::sse::respond(
        tokio_stream::wrappers::ReceiverStream::new(out),
    ))
}
