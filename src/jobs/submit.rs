//! Validating a submission before anything is queued: every wrong field is a
//! [`JobError::Invalid`] naming the field and the reason.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::Caller;
use crate::config::jobs::JobsConfig;

/// `POST /api/jobs`'s body (unknown fields are refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// A raw argv (no shell): admins only.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub priority: Option<Value>,
    #[serde(default)]
    pub cpu_cores: Option<Value>,
    #[serde(default)]
    pub ram_gb: Option<Value>,
    #[serde(default)]
    pub timeout_s: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: {reason}")]
    ExceedsHost { field: String, reason: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("id: no such job {0}")]
    NotFound(u64),
    #[error("id: job {0} belongs to another user (only its owner or an admin may do this)")]
    NotYours(u64),
    #[error("id: job {0} has already finished")]
    Finished(u64),
    #[error(
        "the queue is full: {0} jobs are waiting ([jobs] max_queued); submit again once some have started"
    )]
    QueueFull(usize),
    #[error("jobs are shutting down")]
    Closed,
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("store: the job could not be stored: {0}")]
    Stored(String),
}

impl JobError {
    fn invalid(field: &str, reason: impl Into<String>) -> JobError {
        JobError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// A validated submission.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub task_type: String,
    pub user_id: String,
    pub argv: Vec<String>,
    pub params: BTreeMap<String, String>,
    pub priority: i32,
    pub cpu_cores: f64,
    pub ram_gb: f64,
    pub timeout_s: f64,
    pub cancel_grace_s: f64,
    pub pausable: bool,
    pub description: String,
}

fn number(field: &str, v: &Value, min: f64, max: f64) -> Result<f64, JobError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .ok_or_else(|| JobError::invalid(field, format!("expected a number, found {v}")))?;
    if !n.is_finite() || n < min || n > max {
        return Err(JobError::invalid(
            field,
            format!("expected a number from {min} to {max}, found {n}"),
        ));
    }
    Ok(n)
}

pub fn prepare(
    cfg: &JobsConfig,
    caller: &Caller,
    req: SubmitRequest,
) -> Result<Prepared, JobError> {
    let jt = match &req.kind {
        Some(k) => Some(cfg.job_type(k).ok_or_else(|| {
            let known: Vec<&str> = cfg.types.iter().map(|t| t.name.as_str()).collect();
            JobError::invalid(
                "type",
                format!("unknown job type {k:?}; known: {}", known.join(", ")),
            )
        })?),
        None => None,
    };
    let mut params = BTreeMap::new();
    for (k, v) in &req.params {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(JobError::invalid(
                    &format!("params.{k}"),
                    format!("expected a string, number or boolean, found {other}"),
                ));
            }
        };
        params.insert(k.clone(), s);
    }
    let argv = match (&req.command, jt) {
        (Some(_), _) if !caller.admin => {
            return Err(JobError::Forbidden(
                "command: a raw command is for admins only; submit {\"type\", \"params\"} of a configured job type".into(),
            ));
        }
        (Some(c), _) => {
            if c.is_empty() || c[0].is_empty() {
                return Err(JobError::invalid(
                    "command",
                    "expected the program and its arguments, found an empty command",
                ));
            }
            if !req.params.is_empty() {
                return Err(JobError::invalid(
                    "params",
                    "params fill a job type's command template; they cannot go with a raw command",
                ));
            }
            c.clone()
        }
        (None, Some(t)) => t.expand(&params).map_err(|(f, r)| JobError::Invalid {
            field: f,
            reason: r,
        })?,
        (None, None) => {
            return Err(JobError::invalid(
                "command",
                "missing: give a job \"type\" (with \"params\") or, as an admin, a \"command\"",
            ));
        }
    };
    let cpu_cores = match &req.cpu_cores {
        Some(v) => number("cpu_cores", v, 0.0, 1e6)?,
        None => jt.map_or(1.0, |t| t.cpu_cores),
    };
    let ram_gb = match &req.ram_gb {
        Some(v) => number("ram_gb", v, 0.0, 1e9)?,
        None => jt.map_or(0.5, |t| t.ram_gb),
    };
    let priority = match &req.priority {
        Some(v) => {
            let n = number("priority", v, -1_000_000.0, 1_000_000.0)?;
            if n.fract() != 0.0 {
                return Err(JobError::invalid(
                    "priority",
                    format!("expected an integer, found {n}"),
                ));
            }
            n as i32
        }
        None => jt.map_or(0, |t| t.priority),
    };
    let timeout_s = match &req.timeout_s {
        Some(v) => number("timeout_s", v, 0.0, 1e9)?,
        None => jt.map_or(0.0, |t| t.timeout_s),
    };
    let description = req.description.unwrap_or_default();
    if description.chars().count() > cfg.max_description {
        return Err(JobError::invalid(
            "description",
            format!("longer than {} characters", cfg.max_description),
        ));
    }
    Ok(Prepared {
        task_type: req.kind.unwrap_or_else(|| "command".to_string()),
        user_id: caller.name.clone(),
        argv,
        params,
        priority,
        cpu_cores,
        ram_gb,
        timeout_s,
        cancel_grace_s: jt.map_or(10.0, |t| t.cancel_grace_s),
        pausable: jt.is_none_or(|t| t.pausable),
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> JobsConfig {
        crate::config::jobs::parse_text(
            std::path::Path::new("/x/vigil.toml"),
            "[jobs.types.backtest]\ncommand = [\"bt\", \"{symbol}\"]\n[jobs.types.backtest.params.symbol]\npattern = \"[A-Z]+\"\n",
        )
        .unwrap()
    }
    fn req(v: Value) -> SubmitRequest {
        serde_json::from_value(v).unwrap()
    }
    const ADMIN: fn() -> Caller = || Caller {
        name: "alice".into(),
        admin: true,
    };
    const OP: fn() -> Caller = || Caller {
        name: "oscar".into(),
        admin: false,
    };

    fn field(e: JobError) -> String {
        match e {
            JobError::Invalid { field, .. } => field,
            JobError::Forbidden(m) => format!("forbidden: {m}"),
            other => format!("{other}"),
        }
    }

    #[test]
    fn typed_submission_by_a_non_admin() {
        let p = prepare(
            &cfg(),
            &OP(),
            req(json!({"type": "backtest", "params": {"symbol": "BTC"}})),
        )
        .unwrap();
        assert_eq!(p.argv, vec!["bt", "BTC"]);
        assert_eq!((p.cpu_cores, p.ram_gb), (1.0, 0.5));
        assert_eq!(p.user_id, "oscar");
    }

    #[test]
    fn bad_input_names_the_field() {
        let c = cfg();
        assert_eq!(
            field(prepare(&c, &OP(), req(json!({"type": "nope"}))).unwrap_err()),
            "type"
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &OP(),
                    req(json!({"type": "backtest", "params": {"symbol": "btc"}}))
                )
                .unwrap_err()
            ),
            "params.symbol"
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &OP(),
                    req(json!({"type": "backtest", "params": {"symbol": "B", "x": 1}}))
                )
                .unwrap_err()
            ),
            "params.x"
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &ADMIN(),
                    req(json!({"command": ["true"], "cpu_cores": "two"}))
                )
                .unwrap_err()
            ),
            "cpu_cores"
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &ADMIN(),
                    req(json!({"command": ["true"], "ram_gb": -1}))
                )
                .unwrap_err()
            ),
            "ram_gb"
        );
        assert_eq!(
            field(prepare(&c, &ADMIN(), req(json!({}))).unwrap_err()),
            "command"
        );
        assert_eq!(
            field(prepare(&c, &ADMIN(), req(json!({"command": []}))).unwrap_err()),
            "command"
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &ADMIN(),
                    req(json!({"command": ["true"], "description": "x".repeat(1001)}))
                )
                .unwrap_err()
            ),
            "description"
        );
        assert!(
            field(prepare(&c, &OP(), req(json!({"command": ["true"]}))).unwrap_err())
                .starts_with("forbidden: command:")
        );
        assert_eq!(
            field(
                prepare(
                    &c,
                    &ADMIN(),
                    req(json!({"command": ["true"], "priority": 1.5}))
                )
                .unwrap_err()
            ),
            "priority"
        );
    }
}
