//! The waiting jobs: higher priority first, FIFO (by id) within a priority, aging so a low
//! priority cannot wait forever, and no head-of-line blocking — a job that does not fit is
//! passed by smaller ones that do, until it has waited `max_wait_s`; from then on nothing
//! ordered after it is admitted before it.

use serde::Serialize;

use super::admission::{self, Decision, HostReading, Ledger, Policy, Resources};

/// Ordering knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Order {
    /// One priority step is added per this many seconds of waiting (0 = no aging).
    pub aging_step_s: f64,
    /// At most this many steps are added.
    pub aging_cap: i64,
    /// After this long at the head without fitting, a job blocks everything after it.
    pub max_wait_s: f64,
}

impl Default for Order {
    fn default() -> Self {
        Order {
            aging_step_s: 60.0,
            aging_cap: 10,
            max_wait_s: 600.0,
        }
    }
}

/// A waiting job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queued {
    pub id: u64,
    pub priority: i32,
    pub queued_at_ms: i64,
    pub req: Resources,
    /// The latest admission decision's text (why it is still waiting).
    pub reason: Option<String>,
}

impl Queued {
    pub fn effective_priority(&self, now_ms: i64, o: &Order) -> i64 {
        let base = i64::from(self.priority);
        if o.aging_step_s <= 0.0 {
            return base;
        }
        let waited_s = (now_ms - self.queued_at_ms).max(0) as f64 / 1000.0;
        let steps = (waited_s / o.aging_step_s).floor() as i64;
        base + steps.clamp(0, o.aging_cap.max(0))
    }

    pub fn waited_s(&self, now_ms: i64) -> f64 {
        (now_ms - self.queued_at_ms).max(0) as f64 / 1000.0
    }
}

/// The queue.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    items: Vec<Queued>,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    pub fn push(&mut self, q: Queued) {
        self.items.push(q);
    }

    pub fn remove(&mut self, id: u64) -> Option<Queued> {
        let i = self.items.iter().position(|q| q.id == id)?;
        Some(self.items.remove(i))
    }

    pub fn get(&self, id: u64) -> Option<&Queued> {
        self.items.iter().find(|q| q.id == id)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The waiting jobs in admission order at `now_ms`.
    pub fn ordered(&self, now_ms: i64, o: &Order) -> Vec<&Queued> {
        let mut v: Vec<&Queued> = self.items.iter().collect();
        v.sort_by(|a, b| {
            b.effective_priority(now_ms, o)
                .cmp(&a.effective_priority(now_ms, o))
                .then(a.id.cmp(&b.id))
        });
        v
    }

    /// 1-based position of `id` in admission order.
    pub fn position(&self, id: u64, now_ms: i64, o: &Order) -> Option<usize> {
        self.ordered(now_ms, o)
            .iter()
            .position(|q| q.id == id)
            .map(|i| i + 1)
    }

    /// When the ordering next changes by aging alone (the actor's aging timer), if ever.
    pub fn next_aging_deadline(&self, now_ms: i64, o: &Order) -> Option<i64> {
        if o.aging_step_s <= 0.0 || self.items.len() < 2 {
            return None;
        }
        let step_ms = (o.aging_step_s * 1000.0) as i64;
        if step_ms <= 0 {
            return None;
        }
        self.items
            .iter()
            .filter(|q| q.effective_priority(now_ms, o) - i64::from(q.priority) < o.aging_cap)
            .map(|q| {
                let waited = (now_ms - q.queued_at_ms).max(0);
                q.queued_at_ms + (waited / step_ms + 1) * step_ms
            })
            .min()
    }

    /// When a job that does not fit next reaches `max_wait_s` (its blocking starts), if ever.
    pub fn next_block_deadline(&self, now_ms: i64, o: &Order) -> Option<i64> {
        let limit = (o.max_wait_s * 1000.0) as i64;
        self.items
            .iter()
            .map(|q| q.queued_at_ms + limit)
            .filter(|t| *t > now_ms)
            .min()
    }

    /// Admit what fits, in order, booking each admitted job in `ledger` before the next is
    /// considered. A job that does not fit is skipped (smaller jobs pass it) unless it has
    /// waited `max_wait_s`: then nothing after it is admitted. Returns the admitted jobs (in
    /// admission order) with their decisions; waiting jobs get their latest reason.
    pub fn admit(
        &mut self,
        now_ms: i64,
        policy: &Policy,
        reading: &HostReading,
        ledger: &mut Ledger,
        o: &Order,
    ) -> Vec<(Queued, Decision)> {
        let order: Vec<u64> = self.ordered(now_ms, o).iter().map(|q| q.id).collect();
        let mut admitted = Vec::new();
        let mut blocked_by: Option<u64> = None;
        for id in order {
            let Some(i) = self.items.iter().position(|q| q.id == id) else {
                continue;
            };
            if let Some(b) = blocked_by {
                if let Some(q) = self.items.get_mut(i) {
                    q.reason = Some(format!(
                        "Waiting behind job {b}, which has waited longer than max_wait_s ({:.0} s) and is next",
                        o.max_wait_s
                    ));
                }
                continue;
            }
            let Some(q) = self.items.get(i) else { continue };
            let d = admission::check(policy, reading, ledger, q.req);
            if d.admit {
                ledger.book(policy.booking(q.req));
                let q = self.items.remove(i);
                admitted.push((q, d));
            } else {
                let waited = q.waited_s(now_ms);
                if waited >= o.max_wait_s {
                    blocked_by = Some(q.id);
                }
                if let Some(q) = self.items.get_mut(i) {
                    q.reason = Some(d.reason);
                }
            }
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostReading {
        HostReading {
            total_cores: 10.0,
            total_ram_gb: 10.0,
            cpu_percent: 0.0,
            available_ram_gb: 10.0,
        }
    }
    // Ledger-only, factor 1, buffer 0: the arithmetic of the tests stays obvious.
    const P: Policy = Policy {
        buffer: 0.0,
        consumption_factor: 1.0,
        dev_mode: false,
        check_measured: false,
    };
    const O: Order = Order {
        aging_step_s: 10.0,
        aging_cap: 5,
        max_wait_s: 100.0,
    };

    fn job(id: u64, priority: i32, at_s: i64, cpu: f64) -> Queued {
        Queued {
            id,
            priority,
            queued_at_ms: at_s * 1000,
            req: Resources {
                cpu_cores: cpu,
                ram_gb: 0.1,
            },
            reason: None,
        }
    }

    fn ids(v: &[(Queued, Decision)]) -> Vec<u64> {
        v.iter().map(|(q, _)| q.id).collect()
    }

    #[test]
    fn higher_priority_first_then_fifo() {
        let mut q = Queue::new();
        q.push(job(1, 0, 0, 4.0));
        q.push(job(2, 5, 0, 4.0));
        q.push(job(3, 0, 0, 4.0));
        q.push(job(4, 5, 0, 4.0));
        let order: Vec<u64> = q.ordered(0, &O).iter().map(|j| j.id).collect();
        assert_eq!(order, vec![2, 4, 1, 3]);
        assert_eq!(q.position(3, 0, &O), Some(4));
        let mut l = Ledger::default();
        let a = q.admit(0, &P, &host(), &mut l, &O);
        assert_eq!(ids(&a), vec![2, 4]); // 8 of 10 cores; 1 and 3 do not fit
        assert_eq!(l.jobs, 2);
        assert!(q.get(1).and_then(|j| j.reason.clone()).is_some());
    }

    #[test]
    fn aging_lifts_a_low_priority_job_up_to_the_cap() {
        let mut q = Queue::new();
        q.push(job(1, 0, 0, 1.0));
        q.push(job(2, 3, 35, 1.0));
        // At t=35 s job 1 has aged 3 steps: 3 = 3, FIFO → 1 first.
        assert_eq!(q.ordered(35_000, &O)[0].id, 1);
        // At t=29.999 s: 2 steps < 3 → job 2 first.
        assert_eq!(q.ordered(29_999, &O)[0].id, 2);
        // The cap: after 1000 s it has aged only 5 steps.
        assert_eq!(
            q.get(1).map(|j| j.effective_priority(1_000_000, &O)),
            Some(5)
        );
        // The next aging step of either job.
        assert_eq!(q.next_aging_deadline(35_000, &O), Some(40_000));
    }

    #[test]
    fn a_large_head_does_not_block_smaller_jobs_until_max_wait() {
        let mut q = Queue::new();
        q.push(job(1, 9, 0, 8.0)); // big, high priority
        q.push(job(2, 0, 0, 3.0));
        q.push(job(3, 0, 0, 3.0));
        let mut l = Ledger::default();
        l.book(Resources {
            cpu_cores: 5.0,
            ram_gb: 0.0,
        }); // something running holds 5 cores
        let a = q.admit(10_000, &P, &host(), &mut l, &O);
        assert_eq!(
            ids(&a),
            vec![2],
            "job 2 fits beside the running one; 1 and 3 wait"
        );
        assert!(
            q.get(1)
                .and_then(|j| j.reason.as_deref())
                .is_some_and(|r| r.starts_with("Insufficient CPU"))
        );
        // The running job and job 2 end.
        let mut l = Ledger::default();
        l.book(Resources {
            cpu_cores: 5.0,
            ram_gb: 0.0,
        });
        // Before max_wait_s, job 3 still passes the big one.
        let a = q.clone().admit(99_999, &P, &host(), &mut l.clone(), &O);
        assert_eq!(ids(&a), vec![3]);
        // From max_wait_s on, nothing after job 1 is admitted before it.
        let mut l2 = l;
        let a = q.admit(100_000, &P, &host(), &mut l2, &O);
        assert!(a.is_empty());
        assert!(
            q.get(3)
                .and_then(|j| j.reason.as_deref())
                .is_some_and(|r| r.starts_with("Waiting behind job 1"))
        );
        // Room appears: job 1 first, then 3 if it fits (8 + 3 > 10: it does not).
        let mut empty = Ledger::default();
        let a = q.admit(100_001, &P, &host(), &mut empty, &O);
        assert_eq!(ids(&a), vec![1]);
        assert_eq!(q.next_block_deadline(0, &O), Some(100_000));
    }

    #[test]
    fn a_burst_is_admitted_up_to_the_ledger() {
        let mut q = Queue::new();
        for i in 0..50 {
            q.push(job(i, 0, 0, 1.0));
        }
        let mut l = Ledger::default();
        let a = q.admit(0, &P, &host(), &mut l, &O);
        assert_eq!(a.len(), 10);
        assert_eq!(ids(&a), (0..10).collect::<Vec<_>>());
        assert_eq!(q.len(), 40);
        // Nothing more until something is released.
        assert!(q.admit(1, &P, &host(), &mut l, &O).is_empty());
        l.release(Resources {
            cpu_cores: 1.0,
            ram_gb: 0.1,
        });
        assert_eq!(ids(&q.admit(2, &P, &host(), &mut l, &O)), vec![10]);
    }

    #[test]
    fn remove_takes_a_job_out() {
        let mut q = Queue::new();
        q.push(job(7, 0, 0, 1.0));
        assert!(q.remove(7).is_some());
        assert!(q.remove(7).is_none());
        assert!(q.is_empty());
    }
}
