//! The waiting jobs: higher priority first, FIFO (by id) within a priority, aging so a low
//! priority cannot wait forever, and no head-of-line blocking — a job that does not fit is
//! passed by smaller ones that do, until it has waited `max_wait_s`; from then on nothing
//! ordered after it is admitted before it.

use std::cmp::Reverse;
use std::collections::BTreeMap;

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

/// The queue: per base priority, the waiting jobs in FIFO (id) order. Admission order is
/// their merge by effective priority (aging) then id. Within one base priority an older job
/// has aged at least as much as a younger one, so each list is already in admission order and
/// the merge never sorts: an admission pass costs O(admitted × priorities) when nothing else
/// fits, not O(queue) — 10 000 queued jobs cost nothing per exit.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    lists: BTreeMap<Reverse<i32>, Vec<Queued>>,
    len: usize,
    /// Multisets of the requests' cores and GB (f64 bits: monotone for values ≥ 0), for the
    /// component-wise smallest request: if even that does not fit, nothing does.
    cpu: BTreeMap<u64, usize>,
    ram: BTreeMap<u64, usize>,
    /// The job that stopped the last pass (waited `max_wait_s` and did not fit), if any.
    blocked_by: Option<u64>,
}

fn key(x: f64) -> u64 {
    x.max(0.0).to_bits()
}

fn count_add(m: &mut BTreeMap<u64, usize>, k: u64) {
    *m.entry(k).or_insert(0) += 1;
}

fn count_sub(m: &mut BTreeMap<u64, usize>, k: u64) {
    if let Some(n) = m.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            m.remove(&k);
        }
    }
}

/// The merge of the per-priority lists in admission order.
struct Merge<'a> {
    now_ms: i64,
    o: Order,
    heads: Vec<(&'a [Queued], usize)>,
}

impl<'a> Iterator for Merge<'a> {
    type Item = &'a Queued;
    fn next(&mut self) -> Option<&'a Queued> {
        let mut best: Option<(usize, i64, u64)> = None;
        for (li, (list, i)) in self.heads.iter().enumerate() {
            let Some(q) = list.get(*i) else { continue };
            let eff = q.effective_priority(self.now_ms, &self.o);
            let better = match best {
                None => true,
                Some((_, be, bid)) => eff > be || (eff == be && q.id < bid),
            };
            if better {
                best = Some((li, eff, q.id));
            }
        }
        let (li, _, _) = best?;
        let (list, i) = self.heads.get_mut(li)?;
        let list: &'a [Queued] = list;
        let q = list.get(*i)?;
        *i += 1;
        Some(q)
    }
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    pub fn push(&mut self, q: Queued) {
        count_add(&mut self.cpu, key(q.req.cpu_cores));
        count_add(&mut self.ram, key(q.req.ram_gb));
        let list = self.lists.entry(Reverse(q.priority)).or_default();
        let at = list.partition_point(|x| x.id < q.id);
        list.insert(at, q);
        self.len += 1;
    }

    fn locate(&self, id: u64) -> Option<(Reverse<i32>, usize)> {
        self.lists.iter().find_map(|(p, list)| {
            list.binary_search_by_key(&id, |q| q.id)
                .ok()
                .map(|i| (*p, i))
        })
    }

    pub fn remove(&mut self, id: u64) -> Option<Queued> {
        let (p, i) = self.locate(id)?;
        let list = self.lists.get_mut(&p)?;
        let q = list.remove(i);
        if list.is_empty() {
            self.lists.remove(&p);
        }
        count_sub(&mut self.cpu, key(q.req.cpu_cores));
        count_sub(&mut self.ram, key(q.req.ram_gb));
        self.len -= 1;
        if self.blocked_by == Some(id) {
            self.blocked_by = None;
        }
        Some(q)
    }

    pub fn get(&self, id: u64) -> Option<&Queued> {
        let (p, i) = self.locate(id)?;
        self.lists.get(&p)?.get(i)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The component-wise smallest request waiting (no job needs less of either).
    pub fn min_request(&self) -> Option<Resources> {
        let c = self.cpu.keys().next()?;
        let r = self.ram.keys().next()?;
        Some(Resources {
            cpu_cores: f64::from_bits(*c),
            ram_gb: f64::from_bits(*r),
        })
    }

    fn merge(&self, now_ms: i64, o: &Order) -> Merge<'_> {
        Merge {
            now_ms,
            o: *o,
            heads: self.lists.values().map(|l| (l.as_slice(), 0)).collect(),
        }
    }

    /// The waiting jobs in admission order at `now_ms`.
    pub fn ordered(&self, now_ms: i64, o: &Order) -> Vec<&Queued> {
        self.merge(now_ms, o).collect()
    }

    /// The ids of the first `n` waiting jobs in admission order at `now_ms` (O(n ×
    /// priorities), not O(queue)).
    pub fn ordered_first(&self, n: usize, now_ms: i64, o: &Order) -> Vec<u64> {
        self.merge(now_ms, o).take(n).map(|q| q.id).collect()
    }

    /// 1-based position of `id` in admission order: the jobs of every list that come before
    /// it (a binary search per priority, as each list is in admission order).
    pub fn position(&self, id: u64, now_ms: i64, o: &Order) -> Option<usize> {
        let q = self.get(id)?;
        let eff = q.effective_priority(now_ms, o);
        let ahead: usize = self
            .lists
            .values()
            .map(|list| {
                list.partition_point(|j| {
                    let e = j.effective_priority(now_ms, o);
                    e > eff || (e == eff && j.id < id)
                })
            })
            .sum();
        Some(ahead + 1)
    }

    /// The job that stopped the last admission pass (it has waited `max_wait_s` and does not
    /// fit; nothing after it is admitted before it), if any.
    pub fn blocked_by(&self) -> Option<u64> {
        self.blocked_by
    }

    /// When the ordering next changes by aging alone, if ever. The ordering only decides
    /// admission while a job blocks (otherwise every job that fits is admitted in the pass
    /// that follows each change of resources), so the actor needs this timer only then.
    pub fn next_aging_deadline(&self, now_ms: i64, o: &Order) -> Option<i64> {
        if o.aging_step_s <= 0.0 || self.len < 2 {
            return None;
        }
        let step_ms = (o.aging_step_s * 1000.0) as i64;
        if step_ms <= 0 {
            return None;
        }
        self.lists
            .values()
            .flatten()
            .filter(|q| q.effective_priority(now_ms, o) - i64::from(q.priority) < o.aging_cap)
            .map(|q| {
                let waited = (now_ms - q.queued_at_ms).max(0);
                q.queued_at_ms + (waited / step_ms + 1) * step_ms
            })
            .min()
    }

    /// When the oldest waiting job reaches `max_wait_s` (from then on it may block), if ever.
    pub fn next_block_deadline(&self, now_ms: i64, o: &Order) -> Option<i64> {
        let limit = (o.max_wait_s * 1000.0) as i64;
        self.lists
            .values()
            .filter_map(|l| l.first())
            .map(|q| q.queued_at_ms + limit)
            .filter(|t| *t > now_ms)
            .min()
    }

    /// Admit what fits, in order, booking each admitted job in `ledger` before the next is
    /// considered. A job that does not fit is skipped (smaller jobs pass it) unless it has
    /// waited `max_wait_s`: then nothing after it is admitted. The pass stops as soon as not
    /// even the smallest waiting request fits. Returns the admitted jobs (in admission order)
    /// with their decisions; why the others wait is [`Queue::explain`], asked when shown.
    pub fn admit(
        &mut self,
        now_ms: i64,
        policy: &Policy,
        reading: &HostReading,
        ledger: &mut Ledger,
        o: &Order,
    ) -> Vec<(Queued, Decision)> {
        self.blocked_by = None;
        let Some(min) = self.min_request() else {
            return Vec::new();
        };
        let mut picked: Vec<(u64, Decision)> = Vec::new();
        let mut blocked = None;
        if admission::fits(policy, reading, ledger, min) {
            for q in self.merge(now_ms, o) {
                if admission::fits(policy, reading, ledger, q.req) {
                    let d = admission::check(policy, reading, ledger, q.req);
                    ledger.book(policy.booking(q.req));
                    picked.push((q.id, d));
                    if !admission::fits(policy, reading, ledger, min) {
                        break;
                    }
                } else if q.waited_s(now_ms) >= o.max_wait_s {
                    blocked = Some(q.id);
                    break;
                }
            }
        } else {
            // Nothing fits; the first job in order that has waited max_wait_s blocks.
            blocked = self
                .merge(now_ms, o)
                .find(|q| q.waited_s(now_ms) >= o.max_wait_s)
                .map(|q| q.id);
            if blocked.is_none() {
                return Vec::new();
            }
        }
        self.blocked_by = blocked;
        picked
            .into_iter()
            .filter_map(|(id, d)| self.remove(id).map(|q| (q, d)))
            .collect()
    }

    /// Why `id` is still waiting, at `now_ms`: behind the job that blocks (if it comes after
    /// it in order), or the admission check's own explanation against the ledger and reading.
    pub fn explain(
        &self,
        id: u64,
        now_ms: i64,
        policy: &Policy,
        reading: &HostReading,
        ledger: &Ledger,
        o: &Order,
    ) -> Option<String> {
        let q = self.get(id)?;
        if let Some(b) = self.blocked_by.filter(|b| *b != id)
            && let (Some(pb), Some(pq)) =
                (self.position(b, now_ms, o), self.position(id, now_ms, o))
            && pb < pq
        {
            return Some(format!(
                "Waiting behind job {b}, which has waited longer than max_wait_s ({:.0} s) and is next",
                o.max_wait_s
            ));
        }
        Some(admission::check(policy, reading, ledger, q.req).reason)
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
        }
    }

    fn why(q: &Queue, id: u64, now: i64, l: &Ledger) -> String {
        q.explain(id, now, &P, &host(), l, &O).unwrap_or_default()
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
        assert_eq!(q.ordered_first(3, 0, &O), vec![2, 4, 1]);
        assert_eq!(q.ordered_first(9, 0, &O), vec![2, 4, 1, 3]);
        assert_eq!(q.position(3, 0, &O), Some(4));
        let mut l = Ledger::default();
        let a = q.admit(0, &P, &host(), &mut l, &O);
        assert_eq!(ids(&a), vec![2, 4]); // 8 of 10 cores; 1 and 3 do not fit
        assert_eq!(l.jobs, 2);
        assert!(why(&q, 1, 0, &l).starts_with("Insufficient CPU"));
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
        assert!(why(&q, 1, 10_000, &l).starts_with("Insufficient CPU"));
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
        assert_eq!(q.blocked_by(), Some(1));
        assert!(why(&q, 3, 100_000, &l2).starts_with("Waiting behind job 1"));
        assert!(why(&q, 1, 100_000, &l2).starts_with("Insufficient CPU"));
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

    /// The merge of the per-priority lists is the sort by (effective priority, id), and
    /// `position` is the index in it, for any mix of priorities, ages and removals.
    #[test]
    fn merge_order_equals_the_sort_and_position_agrees() {
        let mut q = Queue::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for id in 0..300u64 {
            let prio = (rand() % 5) as i32 - 2;
            q.push(job(id, prio, id as i64, 1.0 + (rand() % 3) as f64));
            if rand() % 7 == 0 {
                q.remove(rand() % (id + 1));
            }
        }
        for now in [0, 15_000, 60_000, 1_000_000] {
            let mut sorted: Vec<&Queued> = q.ordered(now, &O);
            let merged: Vec<u64> = sorted.iter().map(|j| j.id).collect();
            sorted.sort_by(|a, b| {
                b.effective_priority(now, &O)
                    .cmp(&a.effective_priority(now, &O))
                    .then(a.id.cmp(&b.id))
            });
            assert_eq!(merged, sorted.iter().map(|j| j.id).collect::<Vec<_>>());
            for (i, id) in merged.iter().enumerate() {
                assert_eq!(q.position(*id, now, &O), Some(i + 1));
            }
        }
        assert_eq!(q.len(), q.ordered(0, &O).len());
    }

    /// An admission pass over a long queue where nothing more fits stops at once (the
    /// smallest request does not fit): the work does not grow with the queue.
    #[test]
    fn a_full_ledger_stops_the_pass_before_the_queue() {
        let mut q = Queue::new();
        for i in 0..10_000 {
            q.push(job(i, 0, 0, 1.0));
        }
        let mut l = Ledger::default();
        assert_eq!(q.admit(0, &P, &host(), &mut l, &O).len(), 10);
        assert_eq!(q.min_request().map(|r| r.cpu_cores), Some(1.0));
        assert!(q.admit(1, &P, &host(), &mut l, &O).is_empty());
        assert_eq!(q.len(), 9_990);
        assert!(why(&q, 10, 1, &l).starts_with("Insufficient CPU"));
    }
}
