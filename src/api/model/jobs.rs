//! Jobs: `GET /api/jobs/types` (the configured job types and their parameters).
//!
//! The job records, the queue and the task events (`/api/jobs…`, `/api/system/*`) are still
//! built by `crate::jobs` as seed 004's payloads; they are not typed here yet.

use serde::{Deserialize, Serialize};

use crate::config::jobs::{JobType, ParamSpec};

/// `GET /api/jobs/types`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTypes {
    pub types: Vec<JobTypeView>,
}

/// One job type: its resources, priority, and what `POST /api/jobs` accepts as params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTypeView {
    pub cpu_cores: f64,
    pub name: String,
    pub params: Vec<Param>,
    pub pausable: bool,
    pub priority: i32,
    pub ram_gb: f64,
    /// Seconds; 0 = none.
    pub timeout_s: f64,
    /// Without an argv template only an admin's raw command can run this type.
    pub typed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub default: Option<String>,
    /// Or one of these values.
    #[serde(rename = "enum")]
    pub choices: Option<Vec<String>>,
    pub max_len: usize,
    pub name: String,
    /// The value must match this (anchored) regex.
    pub pattern: Option<String>,
}

impl From<&ParamSpec> for Param {
    fn from(p: &ParamSpec) -> Self {
        Param {
            default: p.default.clone(),
            choices: p.choices.clone(),
            max_len: p.max_len,
            name: p.name.clone(),
            pattern: p.pattern_src.clone(),
        }
    }
}

impl From<&JobType> for JobTypeView {
    fn from(t: &JobType) -> Self {
        JobTypeView {
            cpu_cores: t.cpu_cores,
            name: t.name.clone(),
            params: t.params.iter().map(Param::from).collect(),
            pausable: t.pausable,
            priority: t.priority,
            ram_gb: t.ram_gb,
            timeout_s: t.timeout_s,
            typed: t.command.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::golden::assert_wire;

    #[test]
    fn job_types_are_served_as_before() {
        let t = JobType {
            name: "backtest".into(),
            cpu_cores: 2.0,
            ram_gb: 1.5,
            priority: 3,
            timeout_s: 0.0,
            cancel_grace_s: 10.0,
            pausable: true,
            command: Some(vec!["bt".into(), "{symbol}".into()]),
            params: vec![
                ParamSpec {
                    name: "symbol".into(),
                    pattern: None,
                    pattern_src: Some("[A-Z]+".into()),
                    choices: None,
                    default: None,
                    max_len: 16,
                },
                ParamSpec {
                    name: "mode".into(),
                    pattern: None,
                    pattern_src: None,
                    choices: Some(vec!["fast".into(), "full".into()]),
                    default: Some("fast".into()),
                    max_len: 256,
                },
            ],
        };
        // What the handler's `json!` served before this type existed.
        assert_wire(
            &JobTypes {
                types: vec![JobTypeView::from(&t)],
            },
            r#"{"types":[{"cpu_cores":2.0,"name":"backtest","params":[{"default":null,"enum":null,"max_len":16,"name":"symbol","pattern":"[A-Z]+"},{"default":"fast","enum":["fast","full"],"max_len":256,"name":"mode","pattern":null}],"pausable":true,"priority":3,"ram_gb":1.5,"timeout_s":0.0,"typed":true}]}"#,
        );
    }
}
