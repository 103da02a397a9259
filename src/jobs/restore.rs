//! The jobs actor at a restart (the queue and leftovers recovered from the rows) and at
//! shutdown (running jobs end `interrupted`; queued ones stay queued for the next start).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vigil_core::jobs::outcome::classify;
use vigil_core::jobs::{JobState, Queued, Resources};

use super::exec::{self, Note};
use super::{Actor, Entry, Job, names, now_str, sleep_until};

impl Actor {
    pub(super) fn recover(&mut self, rows: Vec<String>) {
        for d in rows {
            let Ok(mut job) = serde_json::from_str::<Job>(&d) else {
                tracing::error!("jobs: an unreadable job row was skipped: {d}");
                continue;
            };
            self.next_id = self.next_id.max(job.id);
            match job.state {
                JobState::Queued => {
                    metrics::gauge!(names::JOBS, "state" => "queued").increment(1.0);
                    job.reason = Some("queued again after a restart of vigil".into());
                    self.queue.push(Queued {
                        id: job.id,
                        priority: job.priority,
                        queued_at_ms: job.queued_at_ms,
                        req: Resources {
                            cpu_cores: job.cpu_cores,
                            ram_gb: job.ram_gb,
                        },
                    });
                    let id = job.id;
                    self.jobs.insert(id, Entry::queued(id, job));
                }
                from => {
                    // Check against reality: the same pid with the same start time is ours.
                    let mut left = Vec::new();
                    if let Some(pid) = job.pid {
                        let pid = pid as i32;
                        if job.start_time.is_some() && exec::start_time(pid) == job.start_time {
                            left.push(pid);
                            let _ = nix::sys::signal::killpg(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    left.extend(job.cgroup.pids());
                    job.cgroup.freeze(false);
                    job.cgroup.kill();
                    let cg = job.cgroup.clone();
                    tokio::spawn(async move {
                        for _ in 0..50 {
                            if cg.remove() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    });
                    job.state = JobState::Interrupted;
                    job.ended_at = Some(now_str());
                    job.paused_reason = None;
                    job.message = Some(if left.is_empty() {
                        "vigil stopped while it ran; its process was gone at restart".to_string()
                    } else {
                        left.sort_unstable();
                        left.dedup();
                        format!(
                            "vigil stopped while it ran; leftover process(es) {left:?} killed at restart"
                        )
                    });
                    self.record(&job, Some(from));
                }
            }
        }
    }

    pub(super) async fn shutdown(&mut self, notes: &mut mpsc::Receiver<Note>) {
        let ids: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, e)| e.job.state.is_active())
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(e) = self.jobs.get_mut(id) {
                e.ending.interrupted = true;
                let grace = e.job.cancel_grace_s.min(10.0);
                Self::terminate(e, grace);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(11);
        while self.jobs.values().any(|e| e.job.state.is_active()) {
            let kill_at = self.jobs.values().filter_map(|e| e.kill_at).min();
            tokio::select! {
                Some(n) = notes.recv() => {
                    if let Note::Exited { id, code, signal, .. } = n
                        && let Some(e) = self.jobs.get_mut(&id)
                    {
                        e.job.exit_code = code;
                        e.job.signal = signal;
                        let mut ending = e.ending.clone();
                        ending.code = code;
                        ending.signal = signal;
                        let out = classify(&ending);
                        self.finish(id, out.state, out.message);
                    }
                }
                _ = sleep_until(kill_at) => self.timers(Instant::now()),
                _ = tokio::time::sleep_until(deadline.into()) => break,
            }
        }
        for (_, a) in self.prepared.drain() {
            a.discard();
        }
        // Let the last cgroups be removed, then the parents.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.cgroups.remove_parents();
    }
}
