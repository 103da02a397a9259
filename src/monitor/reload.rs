//! SIGHUP for the monitor: the re-read checks and rules are applied by id, only what changed
//! ([`vigil_core::rules::reload::Diff`]). A kept check keeps its state (windows, status,
//! deadlines, its probe); a changed one is rebuilt and starts Unknown (its probe restarted);
//! an added one starts Unknown; a removed one is dropped with its probe, and if it was
//! holding the latch, the trigger no longer holds (as a clear would) while the state stays as
//! it is — a reload never undoes a halt, and never schedules an auto-resume. `[halt]` and
//! `[alerts.*]` apply from the next transition or alert. `[ingest]` and `[events]` are bound
//! at start: a change is logged and named, and applies at the next start. The outcome is the
//! `monitor_reloaded` event.

use std::sync::Arc;

use serde_json::json;
use vigil_core::rules::reload::Diff;
use vigil_core::trading::Source;

use super::config::{MonitorConfig, RuleDef};
use super::{Actor, MonitorHandle, build, kind_name, probes, source_of, spec_of};

/// What a reload did, by check (`check:ID`, `rule:ID`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// `[halt]` or `[alerts.*]` changed (applied from the next transition).
    pub actions_changed: bool,
    /// The tables whose changes are not applied until vigil restarts.
    pub needs_restart: Vec<&'static str>,
}

fn keyed(cfg: &MonitorConfig) -> Vec<(Source, RuleDef)> {
    cfg.rules
        .iter()
        .map(|d| (source_of(d), d.clone()))
        .collect()
}

impl Actor {
    pub(super) async fn reload(&mut self, new: MonitorConfig, handle: &MonitorHandle) -> Reloaded {
        let old = self.actions.config().clone();
        let diff = Diff::of(&keyed(&old), &keyed(&new));
        let mono = self.clock.mono();
        let now = self.clock.wall_ms();
        let mut released = false;
        for source in &diff.removed {
            self.rules.remove(source);
            self.kinds.remove(source);
            if let Some(p) = self.probes.remove(source) {
                p.abort();
            }
            if self.latch.release(source, now) {
                tracing::warn!(check = %source, state = %self.latch.state(), "reload: a removed check was holding the trading state; it no longer holds, the state stays as it is");
                released = true;
            }
        }
        let rebuilt = diff.added.iter().chain(&diff.changed);
        for source in rebuilt {
            let Some(def) = new.rules.iter().find(|d| &source_of(d) == source) else {
                continue;
            };
            self.rules.replace(spec_of(def), build(def, mono), mono);
            self.kinds.insert(source.clone(), kind_name(&def.kind));
            if let Some(p) = self.probes.remove(source) {
                p.abort();
            }
            if let Some(p) = probes::start_one(def, &handle.probe_sender(), handle, &self.tasks) {
                self.probes.insert(source.clone(), p);
            }
        }
        if released {
            // The latch in effect (its triggers) is what a restart restores.
            let w = self.write_latch().await;
            self.note_written(&w);
        }

        let mut needs_restart = Vec::new();
        if new.ingest != old.ingest {
            needs_restart.push("ingest");
        }
        if new.retention != old.retention {
            needs_restart.push("events");
        }
        if !needs_restart.is_empty() {
            tracing::warn!(
                "reload: changes to [{}] need a restart of vigil; they keep their running settings",
                needs_restart.join("], [")
            );
        }
        let actions_changed = new.halt != old.halt || new.alerts != old.alerts;
        // In effect from now on: the new checks, halt actions and alerts; the old sources.
        self.actions.set_config(Arc::new(MonitorConfig {
            ingest: old.ingest.clone(),
            retention: old.retention,
            ..new
        }));

        let names = |v: &[Source]| -> Vec<String> { v.iter().map(ToString::to_string).collect() };
        let r = Reloaded {
            added: names(&diff.added),
            changed: names(&diff.changed),
            removed: names(&diff.removed),
            actions_changed,
            needs_restart,
        };
        tracing::info!(
            added = ?r.added,
            changed = ?r.changed,
            removed = ?r.removed,
            kept = diff.kept.len(),
            actions_changed,
            "monitor reloaded"
        );
        self.events.submit(
            "monitor_reloaded",
            crate::fields! {
                "added" => json!(r.added),
                "changed" => json!(r.changed),
                "removed" => json!(r.removed),
                "kept" => diff.kept.len(),
                "actions_changed" => actions_changed,
                "needs_restart" => json!(r.needs_restart),
            },
        );
        r
    }
}
