//! What `/health` adds about durability: every reason storage, the trading state or the
//! ingest path is degraded right now, as `{ "code", "message" }`.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::AppState;

/// Load shed within this long counts as shedding now.
const SHED_RECENT_MS: u64 = 10_000;

pub fn problems(st: &AppState) -> Vec<Value> {
    let mut out: Vec<Value> = st
        .events
        .health()
        .problems()
        .into_iter()
        .map(|(code, message)| json!({"code": code, "message": message}))
        .collect();
    if !st.monitor.snapshot().persisted {
        out.push(json!({"code": "state_not_persisted",
            "message": "the trading state in effect could not be persisted (see the last trading_state event's persist_error)"}));
    }
    let shed = st.monitor.stats.last_shed_ms.load(Ordering::Relaxed);
    if shed > 0 && crate::monitor::now_ms().saturating_sub(shed) < SHED_RECENT_MS {
        out.push(json!({"code": "shedding_load",
            "message": format!("the ingest budget ({} events in flight) was full within the last {} s: senders are being slowed or refused",
                crate::monitor::INGEST_BUDGET, SHED_RECENT_MS / 1000)}));
    }
    out
}
