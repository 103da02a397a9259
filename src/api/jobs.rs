//! `/api/jobs…`: submit, list, show, cancel, log (with offset and follow), progress.
//! Non-admins see and cancel only their own jobs (`Actor::sees_job_of`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use super::{ApiError, AppState};
use crate::jobs::{Caller, JobError, SubmitRequest};
use crate::store::jobs::JobFilter;

type St = State<Arc<AppState>>;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/jobs", post(submit).get(list))
        .route("/api/jobs/{id}", get(show))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/log", get(log))
        .route("/api/jobs/{id}/progress", post(progress))
}

pub fn caller(a: &Actor) -> Caller {
    Caller {
        name: a.name.clone(),
        admin: a.is_admin(),
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let msg = e.to_string();
        match e {
            JobError::Invalid { .. } => ApiError::new(StatusCode::BAD_REQUEST, "invalid_job", msg),
            JobError::ExceedsHost { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "exceeds_host", msg)
            }
            JobError::Forbidden(_) | JobError::NotYours(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", msg)
            }
            JobError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "no_such_job", msg),
            JobError::Finished(_) => ApiError::new(StatusCode::CONFLICT, "job_finished", msg),
            JobError::QueueFull(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", msg)
            }
            JobError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", msg)
            }
            JobError::Store(_) | JobError::Stored(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", msg)
            }
        }
    }
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_job",
            format!("id: no such job {raw:?} (job ids are positive integers)"),
        )
    })
}

/// A JSON body, or a 400 naming what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(raw)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_job", format!("body: {e}")))
}

async fn submit(
    State(st): St,
    Extension(actor): Extension<Actor>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: SubmitRequest = body(&raw)?;
    let job = match st.jobs.submit(&caller(&actor), req).await {
        Ok(job) => job,
        Err(e @ JobError::QueueFull(_)) => {
            // Refused, nothing queued: come back when jobs have started.
            let mut r = ApiError::from(e).into_response();
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(job.view())).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn list(
    State(st): St,
    Extension(actor): Extension<Actor>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let mut states = Vec::new();
    if let Some(s) = &q.state {
        for part in s.split(',').filter(|p| !p.is_empty()) {
            if vigil_core::jobs::JobState::parse(part).is_none() {
                return Err(ApiError::bad_request(format!(
                    "state: unknown state {part:?}; expected queued, running, paused, succeeded, failed, killed, oom_killed, timed_out, canceled, interrupted or rejected"
                )));
            }
            states.push(part.to_string());
        }
    }
    // Non-admins: their own jobs only, whatever `user` says.
    let user_id = if actor.is_admin() {
        q.user.clone()
    } else {
        Some(actor.name.clone())
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let jobs = st
        .jobs
        .list(JobFilter {
            states,
            kind: q.kind.clone(),
            user_id,
            before: q.before,
            limit,
        })
        .await?;
    let next = (jobs.len() == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(Json(json!({
        "jobs": jobs.iter().map(crate::jobs::Job::view).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

async fn visible_job(
    st: &AppState,
    actor: &Actor,
    raw: &str,
) -> Result<crate::jobs::Job, ApiError> {
    let id = parse_id(raw)?;
    let job = st.jobs.get(id).await?.ok_or(JobError::NotFound(id))?;
    if !actor.sees_job_of(&job.user_id) {
        return Err(JobError::NotYours(id).into());
    }
    Ok(job)
}

async fn show(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(visible_job(&st, &actor, &raw).await?.view()))
}

async fn cancel(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&raw)?;
    let job = st.jobs.cancel(id, &caller(&actor)).await;
    let job = match job {
        Err(JobError::NotFound(_)) => {
            // Finished before the actor's memory of it: the store says whose it is.
            let j = st.jobs.get(id).await?.ok_or(JobError::NotFound(id))?;
            if !actor.sees_job_of(&j.user_id) {
                return Err(JobError::NotYours(id).into());
            }
            return Err(JobError::Finished(id).into());
        }
        other => other?,
    };
    Ok(Json(job.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    follow: Option<bool>,
    #[serde(default)]
    limit: Option<u64>,
}

async fn read_from(path: &std::path::Path, offset: u64, limit: u64) -> (Vec<u8>, u64) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return (Vec::new(), 0);
    };
    let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    if offset >= size {
        return (Vec::new(), size);
    }
    let _ = f.seek(std::io::SeekFrom::Start(offset)).await;
    let mut buf = vec![0u8; (size - offset).min(limit) as usize];
    let n = f.read(&mut buf).await.unwrap_or(0);
    buf.truncate(n);
    (buf, size)
}

async fn log(
    State(st): St,
    Extension(actor): Extension<Actor>,
    Path(raw): Path<String>,
    q: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let job = visible_job(&st, &actor, &raw).await?;
    let stream = q.stream.unwrap_or_else(|| "stdout".into());
    if stream != "stdout" && stream != "stderr" {
        return Err(ApiError::bad_request(format!(
            "stream: expected stdout or stderr, got {stream:?}"
        )));
    }
    let Some((dir, written)) = st.jobs.follow(job.id).await? else {
        return Err(JobError::NotFound(job.id).into());
    };
    let path = dir.join(format!("{stream}.log"));
    let offset = q.offset.unwrap_or(0);
    if !q.follow.unwrap_or(false) {
        let (data, size) =
            read_from(&path, offset, q.limit.unwrap_or(1 << 20).clamp(1, 16 << 20)).await;
        let next = offset.min(size) + data.len() as u64;
        return Ok(Json(json!({
            "id": job.id,
            "stream": stream,
            "offset": offset,
            "next_offset": next,
            "size": size,
            "finished": job.state.is_final(),
            "text": String::from_utf8_lossy(&data),
        }))
        .into_response());
    }
    // Follow: what is there from `offset`, then each new write, until the job ends.
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let stop = st.shutdown.clone();
    st.tasks.spawn(async move {
        let mut pos = offset;
        let mut written = written;
        loop {
            let (data, _) = read_from(&path, pos, 1 << 20).await;
            if !data.is_empty() {
                pos += data.len() as u64;
                if tx.send(Ok(data)).await.is_err() {
                    return;
                }
                continue;
            }
            let Some(w) = written.as_mut() else { return };
            tokio::select! {
                _ = stop.cancelled() => return,
                r = w.changed() => if r.is_err() {
                    // The job ended: the rest, then done.
                    let (data, _) = read_from(&path, pos, 16 << 20).await;
                    if !data.is_empty() {
                        let _ = tx.send(Ok(data)).await;
                    }
                    return;
                },
            }
        }
    });
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx)),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressBody {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    percent: Option<f64>,
}

/// The seed's `update_task_description` over HTTP: by the job itself with its job-scoped
/// token (`X-Vigil-Job-Token: $VIGIL_JOB_TOKEN`, good for this one job and nothing else), or
/// by its owner or an admin.
async fn progress(
    State(st): St,
    actor: Option<Extension<Actor>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    raw_body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&raw)?;
    let b: ProgressBody = body(&raw_body)?;
    let token = headers
        .get("x-vigil-job-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A caller needs operator rights to change a job it owns (viewers only look).
    let caller = actor
        .filter(|a| a.role.at_least(crate::auth::Role::Operator))
        .map(|a| caller(&a));
    let job = st
        .jobs
        .progress(id, token, caller, b.description, b.percent)
        .await?;
    Ok(Json(
        json!({"task_id": job.id.to_string(), "description": job.description, "percent": job.percent}),
    ))
}

/// The OpenAPI operations of the jobs and system routes (merged by `api::openapi`).
pub fn operations() -> Vec<(&'static str, &'static str, Value)> {
    let ok = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object"}}}});
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let id = json!({"name": "id", "in": "path", "required": true, "description": "job id", "schema": {"type": "string"}});
    let num = json!({"type": "number", "minimum": 0});
    vec![
        (
            "post",
            "/api/jobs",
            json!({
            "summary": "Submit a job: {type, params} filling the type's argv template, or (admins) a raw command; queued, and started at once if it fits",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "type": {"type": "string"},
                    "params": {"type": "object", "additionalProperties": {"type": "string"}},
                    "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "priority": {"type": "integer"},
                    "cpu_cores": num, "ram_gb": num, "timeout_s": num,
                    "description": {"type": "string"}}}}}},
            "responses": {"201": ok("the job (state queued, running or already finished)"),
                          "400": err("a field is wrong (named in the message)"),
                          "403": err("a raw command from a non-admin"),
                          "422": err("the request is larger than the host can ever give")}}),
        ),
        (
            "get",
            "/api/jobs",
            json!({
            "summary": "Jobs, newest first (non-admins: their own); filters state (comma-separated), type, user; pagination before + limit",
            "parameters": [
                {"name": "state", "in": "query", "schema": {"type": "string"}},
                {"name": "type", "in": "query", "schema": {"type": "string"}},
                {"name": "user", "in": "query", "schema": {"type": "string"}},
                {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {"200": ok("jobs and next_before"), "400": err("bad filter")}}),
        ),
        (
            "get",
            "/api/jobs/{id}",
            json!({
            "summary": "One job's record: state, outcome, admission reason, description, resources",
            "parameters": [id],
            "responses": {"200": ok("the job"), "403": err("another user's job"), "404": err("no such job")}}),
        ),
        (
            "post",
            "/api/jobs/{id}/cancel",
            json!({
            "summary": "Cancel: a queued job is removed; a running one gets SIGCONT, SIGTERM to its group and cgroup, the grace, SIGKILL",
            "parameters": [id],
            "responses": {"200": ok("the job"), "403": err("another user's job"), "404": err("no such job"),
                          "409": err("already finished")}}),
        ),
        (
            "get",
            "/api/jobs/{id}/log",
            json!({
            "summary": "A job's output from an offset (JSON), or with follow=true a text stream until the job ends",
            "parameters": [id,
                {"name": "stream", "in": "query", "schema": {"type": "string", "enum": ["stdout", "stderr"]}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "follow", "in": "query", "schema": {"type": "boolean"}}],
            "responses": {"200": ok("text from offset, next_offset"), "400": err("bad stream"),
                          "403": err("another user's job"), "404": err("no such job")}}),
        ),
        (
            "post",
            "/api/jobs/{id}/progress",
            json!({
            "summary": "Set a running job's description/percent (seed: update_task_description): with the job's own token (header X-Vigil-Job-Token: $VIGIL_JOB_TOKEN) or as its owner (operator+) or an admin",
            "parameters": [id, {"name": "X-Vigil-Job-Token", "in": "header", "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false,
                "properties": {"description": {"type": "string"}, "percent": {"type": "number", "minimum": 0, "maximum": 100}}}}}},
            "responses": {"200": ok("updated"), "400": err("bad body"), "403": err("neither the job's token nor its owner"),
                          "404": err("no such job"), "409": err("already finished")}}),
        ),
        (
            "get",
            "/api/system/resources",
            json!({
            "summary": "Seed 004: host resources (admins only), the queue (non-admins: their own tasks), is_admin",
            "responses": {"200": ok("resources, queue, is_admin")}}),
        ),
        (
            "get",
            "/api/system/queue",
            json!({
            "summary": "Seed 004: queued_count, running_count, queued_tasks, running_tasks (non-admins: their own)",
            "responses": {"200": ok("queue")}}),
        ),
        (
            "get",
            "/api/system/task-events",
            json!({
            "summary": "Seed 004's SSE: initial_state, task_queued, task_running, task_completed, task_description_update, heartbeat (5 s); timestamp on all, resources for admins only. Accepts ?token=",
            "parameters": [{"name": "token", "in": "query", "description": "a bearer token, for EventSource (SSE routes only)", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}}),
        ),
    ]
}
