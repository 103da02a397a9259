//! `GET /api/jobs/types`: the configured job types and their parameters, so a client (the
//! Status Center's submit form) can offer exactly what `POST /api/jobs` accepts.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use super::AppState;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/api/jobs/types", get(types))
}

async fn types(State(st): State<Arc<AppState>>) -> Json<Value> {
    let cfg = st.jobs.config();
    let types: Vec<Value> = cfg
        .types
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "cpu_cores": t.cpu_cores,
                "ram_gb": t.ram_gb,
                "priority": t.priority,
                "timeout_s": t.timeout_s,
                "pausable": t.pausable,
                // Without an argv template only an admin's raw command can run this type.
                "typed": t.command.is_some(),
                "params": t.params.iter().map(|p| json!({
                    "name": p.name,
                    "pattern": p.pattern_src,
                    "enum": p.choices,
                    "default": p.default,
                    "max_len": p.max_len,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "types": types }))
}
