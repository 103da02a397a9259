//! Reloading the configured rules: which definitions were added, changed, removed or kept
//! ([`Diff::of`], compared by id), and the [`RuleSet`] operations that apply it — a kept rule
//! keeps its state (windows, status, deadlines), a changed one is rebuilt and starts
//! Unknown like an added one, a removed one is dropped.

use std::collections::BTreeMap;

use super::{Entry, Rule, RuleSet, RuleSpec};
use crate::clock::Mono;
use crate::trading::Source;

/// What a reload changes, by id, each list in the new definitions' order (removed: in the
/// old ones').
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff<K> {
    pub added: Vec<K>,
    pub changed: Vec<K>,
    pub removed: Vec<K>,
    pub kept: Vec<K>,
}

impl<K: Ord + Clone> Diff<K> {
    /// Compare the definitions `old` and `new` (each `(id, definition)`; an id appears once
    /// in each): an id only in `new` is added, only in `old` removed, in both with an equal
    /// definition kept, else changed.
    pub fn of<V: PartialEq>(old: &[(K, V)], new: &[(K, V)]) -> Diff<K> {
        let before: BTreeMap<&K, &V> = old.iter().map(|(k, v)| (k, v)).collect();
        let after: BTreeMap<&K, &V> = new.iter().map(|(k, v)| (k, v)).collect();
        let mut d = Diff {
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
            kept: Vec::new(),
        };
        for (k, v) in new {
            match before.get(k) {
                None => d.added.push(k.clone()),
                Some(was) if *was == v => d.kept.push(k.clone()),
                Some(_) => d.changed.push(k.clone()),
            }
        }
        d.removed = old
            .iter()
            .filter(|(k, _)| !after.contains_key(k))
            .map(|(k, _)| k.clone())
            .collect();
        d
    }

    /// Nothing added, changed or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl RuleSet {
    /// Drops the rule `source`; whether there was one.
    pub fn remove(&mut self, source: &Source) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| &e.spec.source != source);
        self.entries.len() != before
    }

    /// Puts `rule` in the place of the rule `spec.source` (or adds it at the end), fresh:
    /// evaluated once at `now`, its previous status forgotten. Returns its initial status.
    pub fn replace(
        &mut self,
        spec: RuleSpec,
        mut rule: Box<dyn Rule>,
        now: Mono,
    ) -> super::CheckStatus {
        let last = rule.status(now.0);
        let entry = Entry {
            spec,
            rule,
            last: last.clone(),
        };
        match self
            .entries
            .iter_mut()
            .find(|e| e.spec.source == entry.spec.source)
        {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, InboundEvent, Tick};
    use crate::rules::{Action, Freshness, FreshnessConfig, Status, StatusChange};
    use crate::trading::{Latch, TradingState};

    fn d(old: &[(&str, u32)], new: &[(&str, u32)]) -> Diff<String> {
        let own = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
            v.iter().map(|(k, x)| (k.to_string(), *x)).collect()
        };
        Diff::of(&own(old), &own(new))
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_diff_names_added_changed_removed_and_kept_ids() {
        let diff = d(
            &[("a", 1), ("b", 2), ("c", 3), ("d", 4)],
            &[("b", 2), ("e", 5), ("a", 9), ("d", 4)],
        );
        assert_eq!(diff.added, ids(&["e"]));
        assert_eq!(diff.changed, ids(&["a"]));
        assert_eq!(diff.removed, ids(&["c"]));
        assert_eq!(diff.kept, ids(&["b", "d"]));
        assert!(!diff.is_empty());
    }

    #[test]
    fn an_equal_configuration_changes_nothing() {
        let diff = d(&[("a", 1), ("b", 2)], &[("b", 2), ("a", 1)]);
        assert!(diff.is_empty());
        assert_eq!(diff.kept, ids(&["b", "a"]));
        let empty = d(&[], &[]);
        assert!(empty.is_empty() && empty.kept.is_empty());
    }

    #[test]
    fn everything_new_or_everything_gone() {
        let diff = d(&[], &[("x", 1), ("y", 1)]);
        assert_eq!(diff.added, ids(&["x", "y"]));
        let diff = d(&[("x", 1), ("y", 1)], &[]);
        assert_eq!(diff.removed, ids(&["x", "y"]));
        assert!(diff.added.is_empty() && diff.changed.is_empty() && diff.kept.is_empty());
    }

    fn fresh(threshold_ms: u64, now: u64) -> Box<dyn Rule> {
        let mut c = FreshnessConfig::new(threshold_ms, vec!["BTC/USD".into()], now);
        c.grace_ms = 60_000;
        Box::new(Freshness::new(c))
    }

    fn tick(price: f64) -> InboundEvent {
        InboundEvent::new(EventKind::Tick(Tick {
            pair: "BTC/USD".into(),
            price,
            bid: None,
            ask: None,
        }))
    }

    #[test]
    fn replace_starts_fresh_and_remove_drops_the_rule() {
        let src = Source::Check("feed".into());
        let other = Source::Check("other".into());
        let mut set = RuleSet::new();
        set.add(
            RuleSpec::new(src.clone(), Action::Halt),
            fresh(1000, 0),
            Mono(0),
        );
        set.add(
            RuleSpec::new(other.clone(), Action::Halt),
            fresh(1000, 0),
            Mono(0),
        );
        set.on_event(&tick(1.0), Mono(10));
        assert_eq!(set.status_of(&src).map(|s| s.status), Some(Status::Ok));
        // Replaced: Unknown again, in its place, with its new threshold.
        let st = set.replace(
            RuleSpec::new(src.clone(), Action::Warn),
            fresh(5000, 20),
            Mono(20),
        );
        assert_eq!(st.status, Status::Unknown);
        assert_eq!(set.len(), 2);
        let order: Vec<Source> = set.statuses().map(|(s, _)| s.source.clone()).collect();
        assert_eq!(order, vec![src.clone(), other.clone()]);
        assert_eq!(
            set.statuses().next().map(|(s, _)| s.action),
            Some(Action::Warn)
        );
        // The kept rule kept its state: still Ok.
        assert_eq!(set.status_of(&other).map(|s| s.status), Some(Status::Ok));
        assert!(set.remove(&other));
        assert!(!set.remove(&other));
        assert_eq!(set.len(), 1);
        // A source not there yet is added.
        set.replace(
            RuleSpec::new(other.clone(), Action::Halt),
            fresh(1000, 30),
            Mono(30),
        );
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn releasing_a_removed_rule_keeps_the_halt_and_lets_a_resume_through() {
        let src = Source::Rule("dd".into());
        let mut latch = Latch::new();
        let change = StatusChange {
            source: src.clone(),
            action: Action::Halt,
            auto_resume_after_ms: Some(0),
            previous: Status::Ok,
            current: crate::rules::CheckStatus::new(
                Status::Critical,
                Some(11.0),
                Some(10.0),
                "breach".into(),
            ),
        };
        assert!(change.apply(&mut latch, 100).is_some());
        assert_eq!(latch.holding().len(), 1);
        assert!(latch.release(&src, 200));
        // Halted still, not holding, and no auto-resume is pending.
        assert_eq!(latch.state(), TradingState::Halted);
        assert!(latch.holding().is_empty());
        assert_eq!(latch.next_deadline(), None);
        assert_eq!(latch.on_timer(10_000), None);
        assert_eq!(latch.state(), TradingState::Halted);
        assert!(!latch.release(&src, 300));
        let r = latch.resume(
            crate::trading::Resume::operator("op", "checked", false),
            400,
        );
        assert!(r.is_ok(), "{r:?}");
    }
}
