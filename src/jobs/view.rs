//! What the jobs actor shows: a job's record (its row's JSON and the API's body), the
//! task events of `/api/system/task-events`, the queue and the host's resources, and who
//! is asking (`Caller`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_core::jobs::{HostReading, JobState, Ledger, Policy};

use super::cgroup::JobCgroup;
use crate::store::jobs::JobRow;

/// A job's record: the row's JSON, the API's body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: u64,
    pub task_type: String,
    pub state: JobState,
    pub priority: i32,
    pub user_id: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub cpu_cores: f64,
    pub ram_gb: f64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub percent: Option<f64>,
    pub queued_at: String,
    pub queued_at_ms: i64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub pid: Option<u32>,
    /// `/proc/PID/stat` start time: with the pid, identifies the process after a restart.
    #[serde(default)]
    pub start_time: Option<u64>,
    #[serde(default)]
    pub cgroup: JobCgroup,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    /// The outcome in words (`exit code 3`, `canceled by alice (signal 15)`, the OS error).
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub canceled_by: Option<String>,
    /// The latest admission decision's explanation (seed 004's text).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub paused_reason: Option<String>,
    pub timeout_s: f64,
    pub cancel_grace_s: f64,
    pub pausable: bool,
    pub memory_limit_bytes: u64,
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    pub output_dir: String,
}

impl Job {
    /// The API body: the record plus the seed's field names.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert("task_id".into(), json!(self.id.to_string()));
            o.insert("estimated_cpu_cores".into(), json!(self.cpu_cores));
            o.insert("estimated_ram_gb".into(), json!(self.ram_gb));
            o.remove("queued_at_ms");
            o.remove("start_time");
        }
        v
    }

    /// The seed's queued/running task entry.
    pub fn task(&self, position: Option<usize>) -> Value {
        let mut v = json!({
            "task_id": self.id.to_string(),
            "task_type": self.task_type,
            "priority": self.priority,
            "estimated_cpu_cores": self.cpu_cores,
            "estimated_ram_gb": self.ram_gb,
            "queued_at": self.queued_at,
            "description": self.description,
            "user_id": self.user_id,
            "state": self.state,
        });
        if let Some(o) = v.as_object_mut() {
            if let Some(p) = position {
                o.insert("queue_position".into(), json!(p));
            }
            if let Some(r) = &self.reason {
                o.insert("reason".into(), json!(r));
            }
            if let Some(s) = &self.started_at {
                o.insert("started_at".into(), json!(s));
            }
            if let Some(p) = self.percent {
                o.insert("percent".into(), json!(p));
            }
            if let Some(r) = &self.paused_reason {
                o.insert("paused_reason".into(), json!(r));
            }
        }
        v
    }

    pub(super) fn row(&self) -> JobRow {
        JobRow {
            id: self.id,
            kind: self.task_type.clone(),
            state: self.state.as_str().to_string(),
            user_id: self.user_id.clone(),
            priority: i64::from(self.priority),
            queued_at: self.queued_at.clone(),
            ended_at: self.ended_at.clone(),
            data: serde_json::to_string(self).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// One event of `/api/system/task-events` (before per-caller filtering).
#[derive(Debug, Clone)]
pub struct TaskEvent {
    /// `task_queued`, `task_running`, `task_completed`, `task_description_update`.
    pub kind: &'static str,
    pub user_id: String,
    pub data: Value,
    pub timestamp: String,
}

/// The queue as the seed shows it.
#[derive(Debug, Clone, Default)]
pub struct QueueSnapshot {
    /// In admission order, each with its position.
    pub queued: Vec<Job>,
    pub running: Vec<Job>,
}

impl QueueSnapshot {
    /// The seed's `queue` object, for the jobs the caller may see.
    pub fn to_json(&self, visible: impl Fn(&str) -> bool) -> Value {
        let q: Vec<Value> = self
            .queued
            .iter()
            .enumerate()
            .filter(|(_, j)| visible(&j.user_id))
            .map(|(i, j)| j.task(Some(i + 1)))
            .collect();
        let r: Vec<Value> = self
            .running
            .iter()
            .filter(|j| visible(&j.user_id))
            .map(|j| j.task(None))
            .collect();
        json!({
            "queued_count": q.len(),
            "running_count": r.len(),
            "queued_tasks": q,
            "running_tasks": r,
        })
    }
}

/// What admission works with, for `/api/system/resources` (admins).
#[derive(Debug, Clone)]
pub struct ResourcesView {
    pub reading: HostReading,
    pub policy: Policy,
    pub ledger: Ledger,
    pub cgroup_mode: &'static str,
    pub memory_enforcement: &'static str,
    pub cgroup_note: String,
    pub paused_reason: Option<String>,
}

impl ResourcesView {
    /// The seed's `resources` object, plus the ledger and the enforcement mode.
    pub fn to_json(&self) -> Value {
        let r = &self.reading;
        json!({
            "cpu": {
                "total_cores": r.total_cores,
                "available_cores": round2(r.available_cores()),
                "usage_percent": round2(r.cpu_percent),
                "min_threshold_cores": round2(self.policy.min_cores(r)),
            },
            "ram": {
                "total_gb": round2(r.total_ram_gb),
                "available_gb": round2(r.available_ram_gb),
                "usage_percent": round2(r.ram_usage_percent()),
                "min_threshold_gb": round2(self.policy.min_ram_gb(r)),
            },
            "buffer_percent": round2(self.policy.buffer * 100.0),
            "consumption_factor_percent": round2(self.policy.consumption_factor * 100.0),
            "dev_mode": self.policy.dev_mode,
            "reserved": {
                "cpu_cores": round2(self.ledger.reserved.cpu_cores),
                "ram_gb": round2(self.ledger.reserved.ram_gb),
                "jobs": self.ledger.jobs,
            },
            "cgroup_mode": self.cgroup_mode,
            "memory_enforcement": self.memory_enforcement,
            "paused_reason": self.paused_reason,
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Who asks: the name and whether admin (`api::auth::Actor` without the HTTP types).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub admin: bool,
}

impl Caller {
    pub fn sees(&self, owner: &str) -> bool {
        self.admin || self.name == owner
    }
}
