//! Names to processes: namespecs (`group:name`, `group:*`), lookups and priority order.

use super::*;

/// supervisord's `split_namespec`.
pub fn split_namespec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((g, p)) if p.is_empty() || p == "*" => (g, None),
        Some((g, p)) => (g, Some(p)),
        None => (spec, Some(spec)),
    }
}

/// supervisord's `make_namespec`: `name`, or `group:name` when they differ.
pub fn namespec(p: &ProcessInfo) -> String {
    if p.group == p.name {
        p.name.clone()
    } else {
        format!("{}:{}", p.group, p.name)
    }
}

/// The actor's unambiguous target for one process.
pub(crate) fn target(p: &ProcessInfo) -> String {
    format!("{}:{}", p.group, p.name)
}

pub(crate) enum Found {
    Process(Box<ProcessInfo>),
    Group(String),
}

pub(crate) fn lookup(cx: &Compat, spec: &str) -> Result<Found, Fault> {
    let (group, process) = split_namespec(spec);
    let snap = cx.supervisor.snapshot();
    let members: Vec<&ProcessInfo> = snap.processes.iter().filter(|p| p.group == group).collect();
    if members.is_empty() {
        return Err(fault(Code::BadName, spec));
    }
    match process {
        None => Ok(Found::Group(group.to_string())),
        Some(name) => members
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| Found::Process(Box::new(p.clone())))
            .ok_or_else(|| fault(Code::BadName, spec)),
    }
}

/// One process (a group spec is BAD_NAME, as in supervisord's log and info methods).
pub(crate) fn process_only(cx: &Compat, spec: &str) -> Result<ProcessInfo, Fault> {
    match lookup(cx, spec)? {
        Found::Process(p) => Ok(*p),
        Found::Group(_) => Err(fault(Code::BadName, spec)),
    }
}

pub(crate) fn sort_by_priority(cx: &Compat, mut procs: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    let view = cx.daemon.view();
    procs.sort_by_cached_key(|p| {
        (
            groups::priority(&view.active, &p.group).unwrap_or(p.priority),
            p.group.clone(),
            p.priority,
            p.name.clone(),
        )
    });
    procs
}

pub(crate) fn members_by_priority(cx: &Compat, group: &str) -> Vec<ProcessInfo> {
    let snap = cx.supervisor.snapshot();
    let members = snap
        .processes
        .iter()
        .filter(|p| p.group == group)
        .cloned()
        .collect();
    sort_by_priority(cx, members)
}

/// A group by exact name (`startProcessGroup` and friends), BAD_NAME if absent.
pub(crate) fn group_members(cx: &Compat, group: &str) -> Result<Vec<ProcessInfo>, Fault> {
    let members = members_by_priority(cx, group);
    if members.is_empty() {
        return Err(fault(Code::BadName, group));
    }
    Ok(members)
}

pub(crate) fn all_by_priority(cx: &Compat) -> Vec<ProcessInfo> {
    sort_by_priority(cx, cx.supervisor.snapshot().processes.clone())
}
