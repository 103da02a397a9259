//! What `/health` adds about durability: every reason storage, the trading state or the
//! ingest path is degraded right now, as `{ "code", "message" }`.

use std::sync::atomic::Ordering;

use super::model::events::HistoryGap;
use super::model::processes::Problem;

use super::AppState;

/// Load shed within this long counts as shedding now.
const SHED_RECENT_MS: u64 = 10_000;

pub fn problems(st: &AppState) -> Vec<Problem> {
    let problem = |code: &str, message: String| Problem {
        code: code.to_string(),
        message,
    };
    let mut out: Vec<Problem> = st
        .events
        .health()
        .problems()
        .into_iter()
        .map(|(code, message)| problem(code, message))
        .collect();
    let snap = st.monitor.snapshot();
    if !snap.persisted {
        out.push(problem("state_not_persisted",
            "the trading state in effect could not be persisted (see the last trading_state event's persist_error)".into()));
    }
    if !snap.state_file {
        out.push(problem("state_file_not_written",
            "the trading state file does not say the state in effect: it could not be written (retried until it can)".into()));
    }
    let shed = st.monitor.stats.last_shed_ms.load(Ordering::Relaxed);
    if shed > 0 && crate::monitor::now_mono().ms().saturating_sub(shed) < SHED_RECENT_MS {
        out.push(problem("shedding_load",
            format!("the ingest budget ({} events in flight) was full within the last {} s: senders are being slowed or refused",
                crate::monitor::INGEST_BUDGET, SHED_RECENT_MS / 1000)));
    }
    out
}

/// `{"after", "missing_through"}` when events after `since` were pruned or lost.
pub async fn gap_after(st: &AppState, since: u64) -> Option<HistoryGap> {
    let store = st.events.store().clone();
    let gap = tokio::task::spawn_blocking(move || store.gap_through())
        .await
        .ok()?
        .ok()?;
    (since < gap).then_some(HistoryGap {
        after: since,
        missing_through: gap,
    })
}

/// Bodies over the limit are read to the end (up to [`DRAIN_MAX`], within [`DRAIN_TIME`])
/// and discarded before the 413 is sent, so the client reads vigil's JSON error instead of
/// a connection reset in the middle of its upload. Bodies within the limit are buffered and
/// passed on.
pub const DRAIN_MAX: usize = 16 * 1024 * 1024;
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn limit_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures::StreamExt;
    let max = super::auth::MAX_BODY_BYTES;
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len();
            if seen <= max {
                kept.extend_from_slice(&chunk);
            } else if seen > DRAIN_MAX {
                return false;
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if seen > max {
        let mut r = super::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {max} bytes; send smaller batches"),
        )
        .into_response();
        if !drained {
            r.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        return r;
    }
    if !drained {
        return super::ApiError::bad_request("the request body could not be read").into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(kept),
    ))
    .await
}

/// Durability figures for `/metrics` (read at scrape time).
pub fn metrics(st: &AppState, x: &mut super::metrics::Exposition) {
    let stats = &st.monitor.stats;
    let h = st.events.health();
    let counters: [(&str, &str, u64); 5] = [
        (
            "vigil_ingest_refused_total",
            "Inbound events refused because the ingest budget was full (HTTP 503 + Retry-After).",
            stats.refused.load(Ordering::Relaxed),
        ),
        (
            "vigil_ingest_throttled_total",
            "Times a sender (socket, program stdout, followed file, probe) was slowed (not read) because the ingest budget was full.",
            stats.throttled.load(Ordering::Relaxed),
        ),
        (
            "vigil_events_lost_total",
            "Events that could not be stored (their senders got no acknowledgement).",
            h.lost.load(Ordering::Relaxed),
        ),
        (
            "vigil_events_announced_unstored_total",
            "Events announced with stored: false because the store could not write them (halts, commands).",
            h.announced_unstored.load(Ordering::Relaxed),
        ),
        (
            "vigil_event_write_failures_total",
            "Event batches that failed to commit.",
            h.failed_writes.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, v) in counters {
        if x.family(name, "counter", help) {
            x.sample(&[], v as f64);
        }
    }
    let queues = crate::queues::counts();
    if x.family(
        "vigil_queue_refused_total",
        "counter",
        "Messages a bounded internal queue refused because it was full (RELIABILITY.md lists the queues).",
    ) {
        for (q, refused, _) in &queues {
            x.sample(&[("queue", q)], *refused as f64);
        }
    }
    if x.family(
        "vigil_queue_waits_total",
        "counter",
        "Times a sender waited for room in a bounded internal queue (its input was not read meanwhile).",
    ) {
        for (q, _, waits) in &queues {
            x.sample(&[("queue", q)], *waits as f64);
        }
    }
    if x.family(
        "vigil_ingest_in_flight",
        "gauge",
        "Inbound events received and not yet committed (bounded by the ingest budget).",
    ) {
        x.sample(&[], st.monitor.in_flight() as f64);
    }
    if x.family(
        "vigil_ingest_budget",
        "gauge",
        "The ingest budget: most inbound events in flight at once.",
    ) {
        x.sample(&[], crate::monitor::INGEST_BUDGET as f64);
    }
    if x.family("vigil_trading_state_persisted", "gauge", "1 when the trading state in effect is persisted in the state record, 0 when it applies in memory only.") {
        x.sample(&[], f64::from(u8::from(st.monitor.snapshot().persisted)));
    }
    if x.family("vigil_health_problems", "gauge", "How many reasons /health reports for being degraded by storage, the state or load shedding.") {
        x.sample(&[], problems(st).len() as f64);
    }
}
