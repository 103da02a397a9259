//! Job states and outcomes, and how an exit is told apart.

use serde::{Deserialize, Serialize};

/// A job's state: `queued`, `running`, `paused`, or one of the outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Killed,
    OomKilled,
    TimedOut,
    Canceled,
    Interrupted,
    Rejected,
}

impl JobState {
    pub const ALL: [JobState; 11] = [
        JobState::Queued,
        JobState::Running,
        JobState::Paused,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Killed,
        JobState::OomKilled,
        JobState::TimedOut,
        JobState::Canceled,
        JobState::Interrupted,
        JobState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Killed => "killed",
            JobState::OomKilled => "oom_killed",
            JobState::TimedOut => "timed_out",
            JobState::Canceled => "canceled",
            JobState::Interrupted => "interrupted",
            JobState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// An outcome: the job will not change again.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Paused
        )
    }

    /// Holds a process (and a reservation).
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Running | JobState::Paused)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job's process ended, with what vigil knows about why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ending {
    /// Exit code when it exited.
    pub code: Option<i32>,
    /// The signal number when a signal ended it.
    pub signal: Option<i32>,
    /// The memory limit was hit (cgroup `oom_kill` count rose, or the sampled RSS exceeded it
    /// and vigil killed it).
    pub oom: bool,
    /// vigil ended it at its timeout.
    pub timed_out: bool,
    /// vigil ended it because this actor canceled it.
    pub canceled_by: Option<String>,
    /// vigil shut down while it ran.
    pub interrupted: bool,
}

/// The outcome of an ending, most specific cause first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: JobState,
    pub message: String,
}

pub fn classify(e: &Ending) -> Outcome {
    let how = match (e.code, e.signal) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "unknown exit".to_string(),
    };
    let (state, message) = if let Some(by) = &e.canceled_by {
        (JobState::Canceled, format!("canceled by {by} ({how})"))
    } else if e.oom {
        (
            JobState::OomKilled,
            format!("exceeded its memory limit ({how})"),
        )
    } else if e.timed_out {
        (JobState::TimedOut, format!("ran past its timeout ({how})"))
    } else if e.interrupted {
        (
            JobState::Interrupted,
            format!("vigil stopped while it ran ({how})"),
        )
    } else {
        match (e.code, e.signal) {
            (Some(0), None) => (JobState::Succeeded, "exit code 0".to_string()),
            (_, Some(_)) => (JobState::Killed, format!("killed by {how}")),
            _ => (JobState::Failed, how),
        }
    };
    Outcome { state, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_told_apart() {
        let ok = Ending {
            code: Some(0),
            ..Default::default()
        };
        assert_eq!(classify(&ok).state, JobState::Succeeded);
        let fail = Ending {
            code: Some(3),
            ..Default::default()
        };
        assert_eq!(classify(&fail).state, JobState::Failed);
        assert_eq!(classify(&fail).message, "exit code 3");
        let sig = Ending {
            signal: Some(11),
            ..Default::default()
        };
        assert_eq!(classify(&sig).state, JobState::Killed);
        assert_eq!(classify(&sig).message, "killed by signal 11");
        let oom = Ending {
            signal: Some(9),
            oom: true,
            ..Default::default()
        };
        assert_eq!(classify(&oom).state, JobState::OomKilled);
        let to = Ending {
            signal: Some(15),
            timed_out: true,
            ..Default::default()
        };
        assert_eq!(classify(&to).state, JobState::TimedOut);
        let c = Ending {
            signal: Some(15),
            canceled_by: Some("alice".into()),
            ..Default::default()
        };
        assert_eq!(classify(&c).state, JobState::Canceled);
        assert_eq!(classify(&c).message, "canceled by alice (signal 15)");
    }

    #[test]
    fn states_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
        }
        assert!(JobState::OomKilled.is_final());
        assert!(!JobState::Paused.is_final());
        assert!(JobState::Paused.is_active());
    }
}
