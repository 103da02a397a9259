//! supervisord's process groups over vigil's [`Config`]: a group is a `[group.x]`, an event
//! listener pool, or, for a program in no group, the program itself. `reloadConfig` compares the groups of the
//! running ("active") config with those of the file as last read ("loaded");
//! `addProcessGroup` / `removeProcessGroup` build the next active config by moving one
//! group across, which the daemon then applies as a reload (unchanged processes untouched).

use crate::config::{Config, EventListenerConfig, GroupConfig, ProgramConfig};

/// Why a group operation was refused (mapped to supervisord's faults by the RPC layer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("no such group: {0}")]
    BadName(String),
    #[error("group {0} is already active")]
    AlreadyAdded(String),
    #[error("group {0} has processes that are not stopped")]
    StillRunning(String),
    #[error("{0}")]
    Failed(String),
}

/// `reloadConfig`'s result: group names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// The group names of a config in supervisord's order: ascending priority, then name.
pub fn names(cfg: &Config) -> Vec<String> {
    let mut out: Vec<(i32, String)> = Vec::new();
    for g in &cfg.groups {
        out.push((g.priority, g.name.clone()));
    }
    for p in &cfg.programs {
        let g = cfg.group_of(&p.name);
        if g == p.name && !out.iter().any(|(_, n)| n == g) {
            out.push((p.priority, p.name.clone()));
        }
    }
    for l in &cfg.eventlisteners {
        out.push((l.priority, l.program.name.clone()));
    }
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// A group's priority (`[group.x] priority`, a pool's, or the program's for a program in
/// no group).
pub fn priority(cfg: &Config, group: &str) -> Option<i32> {
    cfg.groups
        .iter()
        .find(|g| g.name == group)
        .map(|g| g.priority)
        .or_else(|| cfg.eventlistener(group).map(|l| l.priority))
        .or_else(|| cfg.program(group).map(|p| p.priority))
}

/// What makes up a group: its `[group.x]`, its programs, or its listener pool.
type Content<'c> = (
    Option<&'c GroupConfig>,
    Vec<&'c ProgramConfig>,
    Option<&'c EventListenerConfig>,
);

fn content<'c>(cfg: &'c Config, group: &str) -> Content<'c> {
    let g = cfg.groups.iter().find(|g| g.name == group);
    let programs = cfg
        .programs
        .iter()
        .filter(|p| cfg.group_of(&p.name) == group)
        .collect();
    (g, programs, cfg.eventlistener(group))
}

/// Every process name of a config, with its group.
fn process_names(cfg: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in &cfg.programs {
        for x in &p.processes {
            out.push((x.name.clone(), cfg.group_of(&p.name).to_string()));
        }
    }
    for l in &cfg.eventlisteners {
        for x in &l.program.processes {
            out.push((x.name.clone(), l.program.name.clone()));
        }
    }
    out
}

fn exists(cfg: &Config, group: &str) -> bool {
    names(cfg).iter().any(|n| n == group)
}

pub fn changes(active: &Config, loaded: &Config) -> Changes {
    let mut c = Changes::default();
    for name in names(loaded) {
        if !exists(active, &name) {
            c.added.push(name);
        } else if content(active, &name) != content(loaded, &name) {
            c.changed.push(name);
        }
    }
    for name in names(active) {
        if !exists(loaded, &name) {
            c.removed.push(name);
        }
    }
    c
}

/// `active` plus group `name` as `loaded` defines it.
pub fn with_group(active: &Config, loaded: &Config, name: &str) -> Result<Config, GroupError> {
    if exists(active, name) {
        return Err(GroupError::AlreadyAdded(name.into()));
    }
    if !exists(loaded, name) {
        return Err(GroupError::BadName(name.into()));
    }
    let (group, programs, pool) = content(loaded, name);
    let mut next = active.clone();
    for p in &programs {
        if let Some(old) = active.program(&p.name) {
            return Err(GroupError::Failed(format!(
                "program {} is still in group {}; update that group first",
                p.name,
                active.group_of(&old.name)
            )));
        }
    }
    let incoming = programs
        .iter()
        .flat_map(|p| p.processes.iter())
        .chain(pool.iter().flat_map(|l| l.program.processes.iter()));
    let present = process_names(active);
    for x in incoming {
        if let Some((_, g)) = present.iter().find(|(n, _)| *n == x.name) {
            return Err(GroupError::Failed(format!(
                "process {} already exists in group {g}",
                x.name
            )));
        }
    }
    if let Some(g) = group {
        next.groups.push(g.clone());
    }
    next.programs.extend(programs.into_iter().cloned());
    if let Some(l) = pool {
        next.eventlisteners.push(l.clone());
    }
    Ok(next)
}

/// `active` without group `name`.
pub fn without_group(active: &Config, name: &str) -> Result<Config, GroupError> {
    if !exists(active, name) {
        return Err(GroupError::BadName(name.into()));
    }
    let mut next = active.clone();
    next.programs.retain(|p| active.group_of(&p.name) != name);
    next.groups.retain(|g| g.name != name);
    next.eventlisteners.retain(|l| l.program.name != name);
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path, body: &str) -> Config {
        let text = format!(
            "[vigil]\ndata_dir = \"{}\"\n\n{body}",
            dir.join("data").display()
        );
        crate::config::load_str(&dir.join("vigil.toml"), &text).unwrap()
    }

    #[test]
    fn diff_add_and_remove_by_group() {
        let dir = tempfile::tempdir().unwrap();
        let active = load(
            dir.path(),
            "[program.a]\ncommand = \"sleep 1\"\n[program.b]\ncommand = \"sleep 1\"\n\
             [program.c]\ncommand = \"sleep 1\"\n[group.g]\nprograms = [\"b\", \"c\"]\n",
        );
        let loaded = load(
            dir.path(),
            "[program.a]\ncommand = \"sleep 2\"\n[program.b]\ncommand = \"sleep 1\"\n\
             [program.d]\ncommand = \"sleep 1\"\npriority = 5\n",
        );
        assert_eq!(names(&active), vec!["a", "g"]);
        assert_eq!(priority(&active, "g"), Some(999));
        let c = changes(&active, &loaded);
        assert_eq!(c.added, vec!["d", "b"]);
        assert_eq!(c.changed, vec!["a"]);
        assert_eq!(c.removed, vec!["g"]);

        assert_eq!(
            with_group(&active, &loaded, "a"),
            Err(GroupError::AlreadyAdded("a".into()))
        );
        assert_eq!(
            with_group(&active, &loaded, "zz"),
            Err(GroupError::BadName("zz".into()))
        );
        // b is still active in g: adding the stand-alone b must wait for g's removal.
        assert!(matches!(
            with_group(&active, &loaded, "b"),
            Err(GroupError::Failed(_))
        ));
        let next = with_group(&active, &loaded, "d").unwrap();
        assert_eq!(names(&next), vec!["d", "a", "g"]);
        let next = without_group(&next, "g").unwrap();
        assert_eq!(names(&next), vec!["d", "a"]);
        assert!(next.program("b").is_none() && next.program("c").is_none());
        let next = with_group(&next, &loaded, "b").unwrap();
        assert_eq!(names(&next), vec!["d", "a", "b"]);
        assert_eq!(
            without_group(&next, "g"),
            Err(GroupError::BadName("g".into()))
        );
    }

    #[test]
    fn listener_pools_are_groups() {
        let dir = tempfile::tempdir().unwrap();
        let active = load(dir.path(), "[program.a]\ncommand = \"sleep 1\"\n");
        let loaded = load(
            dir.path(),
            "[program.a]\ncommand = \"sleep 1\"\n\
             [eventlistener.pool]\ncommand = \"cat\"\nevents = [\"TICK_5\"]\n",
        );
        assert_eq!(names(&loaded), vec!["pool", "a"]);
        assert_eq!(priority(&loaded, "pool"), Some(-1));
        assert_eq!(changes(&active, &loaded).added, vec!["pool"]);
        let next = with_group(&active, &loaded, "pool").unwrap();
        assert_eq!(next.eventlisteners.len(), 1);
        assert_eq!(changes(&next, &loaded), Changes::default());
        assert!(
            without_group(&next, "pool")
                .unwrap()
                .eventlisteners
                .is_empty()
        );
    }
}
