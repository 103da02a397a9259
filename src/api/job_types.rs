//! `GET /api/jobs/types`: the configured job types and their parameters, so a client (the
//! Status Center's submit form) can offer exactly what `POST /api/jobs` accepts.

use std::sync::Arc;

use super::AppState;
use super::model::jobs::{JobTypeView, JobTypes};
use axum::Json;
use axum::extract::State;
use axum::routing::get;

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/api/jobs/types", get(types))
}

async fn types(State(st): State<Arc<AppState>>) -> Json<JobTypes> {
    let cfg = st.jobs.config();
    Json(JobTypes {
        types: cfg.types.iter().map(JobTypeView::from).collect(),
    })
}
