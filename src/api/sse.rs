//! `GET /api/events/stream`: Server-Sent Events, `id:` = `seq`. A client that reconnects
//! with `Last-Event-ID` (or `?since=`) gets every event after it from the store, then the
//! live feed, without gaps or duplicates: subscribe first, replay from the store, then
//! forward live events with `seq` above the last one sent. A subscriber that lags behind
//! the in-process broadcast resyncs from the store.
//!
//! - Resuming below what the store still has (pruned by retention, or lost with a replaced
//!   database) first gets an unnumbered `history_gap` event: `{"after": SEQ,
//!   "missing_through": SEQ}`; then the stream goes on from what exists.
//! - A client that does not read for [`SLOW_CLIENT`] (its 256-event buffer stays full) is
//!   dropped: the stream ends and an `sse_client_dropped` event is recorded. It can
//!   reconnect with `Last-Event-ID` and lose nothing. Memory per client is bounded either way.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState};
use crate::events::{Event, EventLog};

#[derive(Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    since: Option<u64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Seconds between `event: ping` frames (no `id:`, so `Last-Event-ID` is unchanged): lets
    /// a page tell a quiet stream from a frozen one (comments never reach `EventSource`).
    #[serde(default)]
    ping: Option<u64>,
}

/// Keep-alive comments this often on every stream, so idle connections survive proxies.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// An SSE response as every stream of vigil sends it: keep-alive comments and
/// `X-Accel-Buffering: no` (nginx would otherwise buffer the stream; seed 004).
pub fn respond<S>(stream: S) -> axum::response::Response
where
    S: futures::Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    use axum::response::IntoResponse;
    (
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")),
    )
        .into_response()
}

/// `event: ping` frames every `every` (forever when `None`: never sends).
async fn pings(
    every: Option<std::time::Duration>,
    tx: tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let Some(every) = every else {
        return std::future::pending().await;
    };
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        t.tick().await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let ev = SseEvent::default()
            .event("ping")
            .data(format!("{{\"ts\":\"{now}\"}}"));
        if tx.send(Ok(ev)).await.is_err() {
            return;
        }
    }
}

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.seq.to_string())
        .event(e.kind.clone())
        .data(e.to_json())
}

pub async fn stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<axum::response::Response, ApiError> {
    let last_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID: expected an event seq"))?,
        ),
        None => None,
    };
    let log = st.events.clone();
    let rx = log.subscribe();
    let start = match last_id.or(q.since) {
        Some(s) => s,
        None => {
            let store = log.store().clone();
            tokio::task::spawn_blocking(move || store.last_seq())
                .await
                .map_err(|e| ApiError::bad_request(e.to_string()))?
                .map_err(|e| {
                    ApiError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "store",
                        e.to_string(),
                    )
                })?
        }
    };
    let store = log.store().clone();
    let gap = tokio::task::spawn_blocking(move || store.gap_through())
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|g| start < *g);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let stop = st.shutdown.clone();
    let ping = q
        .ping
        .map(|s| std::time::Duration::from_secs(s.clamp(1, 60)));
    st.tasks.spawn(async move {
        if let Some(g) = gap {
            let notice = serde_json::json!({"after": start, "missing_through": g,
                "reason": "events up to missing_through were pruned by retention or lost"});
            let _ = tx
                .send(Ok(SseEvent::default()
                    .event("history_gap")
                    .data(notice.to_string())))
                .await;
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = pump(log, rx, start, q.kind, tx.clone()) => {}
            _ = pings(ping, tx) => {}
        }
    });
    Ok(respond(tokio_stream::wrappers::ReceiverStream::new(out)))
}

/// How long a client may leave its buffer full before it is dropped.
pub const SLOW_CLIENT: std::time::Duration = std::time::Duration::from_secs(30);

/// Hand one event to the client's buffer; false when the client is gone or too slow.
async fn deliver(
    log: &EventLog,
    tx: &tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>,
    e: &Event,
) -> bool {
    use tokio::sync::mpsc::error::SendTimeoutError;
    match tx.send_timeout(Ok(to_sse(e)), SLOW_CLIENT).await {
        Ok(()) => true,
        Err(SendTimeoutError::Closed(_)) => false,
        Err(SendTimeoutError::Timeout(_)) => {
            tracing::warn!(at_seq = e.seq, "SSE client too slow; dropped");
            metrics::counter!("vigil_sse_clients_dropped_total").increment(1);
            log.submit(
                "sse_client_dropped",
                crate::fields! {"at_seq" => e.seq, "reason" => format!("did not read for {} s", SLOW_CLIENT.as_secs())},
            );
            false
        }
    }
}

/// Send every event with seq > `last` to `tx`, replaying from the store when needed.
pub async fn pump(
    log: EventLog,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
    mut last: u64,
    kind: Option<String>,
    tx: tokio::sync::mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let wanted = |e: &Event| kind.as_deref().is_none_or(|k| k == e.kind);
    // Replay, in pages, whatever the store has after `last`.
    macro_rules! replay {
        () => {
            loop {
                let page = match log.since(last, None, 1000).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "SSE replay failed");
                        return;
                    }
                };
                let n = page.len();
                for e in page {
                    last = e.seq;
                    if wanted(&e) && !deliver(&log, &tx, &e).await {
                        return;
                    }
                }
                if n < 1000 {
                    break;
                }
            }
        };
    }
    replay!();
    loop {
        match rx.recv().await {
            Ok(e) => {
                if e.seq <= last {
                    continue;
                }
                if e.seq > last + 1 {
                    // Something between was committed before we subscribed-and-replayed; fetch it.
                    replay!();
                    if e.seq <= last {
                        continue;
                    }
                }
                last = e.seq;
                if wanted(&e) && !deliver(&log, &tx, &e).await {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => replay!(),
            Err(RecvError::Closed) => return,
        }
    }
}
