//! supervisord's restart (`supervisor.restart`, `supervisorctl reload`, SIGHUP with
//! `[vigil] reload = "restart"`): every process is stopped the way shutdown stops them
//! (level by level in descending priority, event listeners last), then the new
//! configuration replaces the old one entirely and starts as at start-up: a
//! SUPERVISOR_STATE_CHANGE_STOPPING event before the first stop, a
//! SUPERVISOR_STATE_CHANGE_RUNNING event before the first spawn, autostart in priority
//! order. Unlike supervisord, the process keeps its listeners and its event log (events are
//! not lost), and a process keeps its in-memory output tail across the restart.

use std::collections::{BTreeMap, BTreeSet};

use super::{Actor, Entry, ReloadReport, Reply, specs};
use crate::config::Config;
use crate::fields;

/// A restart waiting for every process to stop.
pub(super) struct Pending {
    pub config: Box<Config>,
    pub reply: Reply<ReloadReport>,
}

impl Actor {
    /// Stop everything in reverse priority; [`Actor::finish_restart`] runs once all stopped.
    pub(super) fn begin_restart(&mut self, config: Box<Config>, reply: Reply<ReloadReport>) {
        tracing::info!("restarting: stopping every process, then starting the configuration again");
        self.begin_shutdown(None);
        if let Some(s) = self.shutdown.as_mut() {
            s.restart = Some(Pending { config, reply });
        }
    }

    /// Everything is stopped: replace every entry with the new configuration's and start it
    /// as at start-up.
    pub(super) fn finish_restart(&mut self, pending: Pending) {
        self.shutdown = None;
        let Pending { config, reply } = pending;
        let mut old: BTreeMap<String, Entry> = std::mem::take(&mut self.entries);
        let groups_before: BTreeSet<String> = old.values().map(|e| e.spec.group.clone()).collect();
        let mut report = ReloadReport::default();
        for spec in specs(&config) {
            let name = spec.process.name.clone();
            let mut entry = Entry::new(spec);
            match old.remove(&name) {
                None => report.added.push(name.clone()),
                Some(prev) => {
                    if prev.spec != entry.spec {
                        report.changed.push(name.clone());
                    }
                    if let Some(p) = &prev.probe {
                        p.cancel();
                    }
                    // Late messages about an earlier child stay stale; the tail carries on.
                    entry.generation = prev.generation;
                    entry.output = prev.output.clone();
                    entry.restarts = prev.restarts;
                    entry.illegal_transitions = prev.illegal_transitions;
                }
            }
            if let Ok(mut o) = self.outputs.write() {
                o.insert(name.clone(), entry.output.clone());
            }
            self.entries.insert(name, entry);
        }
        for (name, prev) in old {
            if let Some(p) = &prev.probe {
                p.cancel();
            }
            if let Ok(mut o) = self.outputs.write() {
                o.remove(&name);
            }
            report.removed.push(name);
        }
        let groups_after: BTreeSet<String> = self
            .entries
            .values()
            .map(|e| e.spec.group.clone())
            .collect();
        let groups_added: Vec<&String> = groups_after.difference(&groups_before).collect();
        let groups_removed: Vec<&String> = groups_before.difference(&groups_after).collect();
        tracing::info!(
            added = ?report.added, changed = ?report.changed, removed = ?report.removed,
            "configuration restarted"
        );
        self.events.submit(
            "config_reloaded",
            fields! {
                "mode" => "restart",
                "added" => report.added, "changed" => report.changed,
                "removed" => report.removed, "updated" => report.updated,
                "groups" => serde_json::json!({"added": groups_added, "removed": groups_removed}),
            },
        );
        self.events
            .submit("supervisor_state", fields! {"state" => "RUNNING"});
        self.autostart_all();
        let _ = reply.send(report);
    }

    /// Start every autostart process in priority order (ascending), like supervisord.
    pub(super) fn autostart_all(&mut self) {
        let mut order: Vec<(u32, i32, i32, String)> = self
            .entries
            .values()
            .filter(|e| e.spec.program.autostart)
            .map(Entry::order)
            .collect();
        order.sort();
        for (_, _, _, name) in order {
            self.apply(&name, vigil_core::program::Input::Start);
        }
    }
}
