//! The actor's whole-config operations: reload (apply the difference), the level-by-level
//! shutdown, and publishing the snapshot.

use super::*;

impl Actor {
    pub(crate) fn reload(&mut self, config: &Config) -> ReloadReport {
        let mut report = ReloadReport::default();
        let groups_before: std::collections::BTreeSet<String> = self
            .entries
            .values()
            .map(|e| e.spec.group.clone())
            .collect();
        let new_specs: BTreeMap<String, Spec> = specs(config)
            .into_iter()
            .map(|s| (s.process.name.clone(), s))
            .collect();
        let old_names: Vec<String> = self.entries.keys().cloned().collect();
        for name in old_names {
            match new_specs.get(&name) {
                None => {
                    report.removed.push(name.clone());
                    let stopped = self
                        .entries
                        .get(&name)
                        .is_some_and(|e| e.fsm.state.is_stopped());
                    if stopped {
                        self.remove(&name);
                    } else {
                        let _ = self.stop_one(&name, false, Some(AfterStop::Remove));
                    }
                }
                Some(spec) => {
                    let Some(e) = self.entries.get(&name) else {
                        continue;
                    };
                    if e.spec == *spec {
                        continue;
                    }
                    if !needs_restart(&e.spec, spec) {
                        report.updated.push(name.clone());
                        if let Some(e) = self.entries.get_mut(&name) {
                            e.spec = spec.clone();
                            e.policy = spec.program.policy();
                        }
                        continue;
                    }
                    report.changed.push(name.clone());
                    let start = spec.program.autostart || !e.fsm.state.is_stopped();
                    if e.fsm.state.is_stopped() {
                        let outputs = e.output.clone();
                        let mut new = Entry::new(spec.clone());
                        new.output = outputs;
                        self.entries.insert(name.clone(), new);
                        if start {
                            self.apply(&name, Input::Start);
                        }
                    } else {
                        let _ = self.stop_one(
                            &name,
                            false,
                            Some(AfterStop::Replace(Box::new(spec.clone()), start)),
                        );
                    }
                }
            }
        }
        let mut added: Vec<&Spec> = new_specs
            .values()
            .filter(|s| !self.entries.contains_key(&s.process.name))
            .collect();
        added.sort_by_key(|s| (s.group_priority, s.program.priority, s.process.name.clone()));
        let added: Vec<Spec> = added.into_iter().cloned().collect();
        for spec in added {
            let name = spec.process.name.clone();
            let autostart = spec.program.autostart;
            report.added.push(name.clone());
            self.insert(spec);
            if autostart {
                self.apply(&name, Input::Start);
            }
        }
        tracing::info!(
            added = ?report.added, changed = ?report.changed, removed = ?report.removed,
            "configuration reloaded"
        );
        let groups_after: std::collections::BTreeSet<String> =
            new_specs.values().map(|sp| sp.group.clone()).collect();
        let groups_added: Vec<&String> = groups_after.difference(&groups_before).collect();
        let groups_removed: Vec<&String> = groups_before.difference(&groups_after).collect();
        self.events.submit(
            "config_reloaded",
            fields! {
                "added" => report.added, "changed" => report.changed,
                "removed" => report.removed, "updated" => report.updated,
                "groups" => serde_json::json!({"added": groups_added, "removed": groups_removed}),
            },
        );
        report
    }

    pub(crate) fn begin_shutdown(&mut self, reply: Option<Reply<()>>) {
        tracing::info!("stopping all processes");
        self.events
            .submit("supervisor_state", fields! {"state" => "STOPPING"});
        let mut by_prio: BTreeMap<(u32, i32, i32), Vec<String>> = BTreeMap::new();
        for e in self.entries.values() {
            by_prio
                .entry((e.spec.rank, e.spec.group_priority, e.spec.program.priority))
                .or_default()
                .push(e.spec.process.name.clone());
        }
        // Highest priority value stops first (reverse of start order).
        let levels: Vec<Vec<String>> = by_prio.into_values().collect();
        self.shutdown = Some(ShutdownState {
            levels,
            current: None,
            replies: reply.into_iter().collect(),
            restart: None,
        });
    }

    /// Returns true when shutdown is complete.
    pub(crate) fn advance_shutdown(&mut self) -> bool {
        loop {
            let Some(s) = self.shutdown.as_mut() else {
                return false;
            };
            if let Some(cur) = &s.current {
                let done = cur
                    .iter()
                    .all(|n| self.entries.get(n).is_none_or(|e| e.fsm.state.is_stopped()));
                if !done {
                    return false;
                }
                s.current = None;
            }
            let Some(level) = s.levels.pop() else {
                if let Some(pending) = s.restart.take() {
                    self.finish_restart(pending);
                    return false;
                }
                for r in s.replies.drain(..) {
                    let _ = r.send(());
                }
                return true;
            };
            s.current = Some(level.clone());
            for name in level {
                if let Some(e) = self.entries.get_mut(&name) {
                    e.after_stop = None;
                }
                let stoppable = self
                    .entries
                    .get(&name)
                    .is_some_and(|e| !e.fsm.state.is_stopped());
                if stoppable {
                    self.apply(&name, Input::Stop);
                }
            }
        }
    }

    pub(crate) fn publish(&self) {
        let now = Instant::now();
        let mut processes: Vec<ProcessInfo> = self.entries.values().map(|e| info(e, now)).collect();
        processes.sort_by(|a, b| {
            (a.group.as_str(), a.name.as_str()).cmp(&(b.group.as_str(), b.name.as_str()))
        });
        let started = self
            .entries
            .values()
            .filter(|e| e.spec.program.autostart)
            .all(|e| e.fsm.state != ProcessState::Starting);
        self.snapshot
            .send_replace(Arc::new(Snapshot { processes, started }));
    }
}
