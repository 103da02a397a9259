//! Jobs paused for the bots by sustained host CPU (issue 10, item 6), with real busy
//! processes. In a test binary of its own: cargo runs test binaries one after another, so no
//! other test's processes share the CPU while this one measures it.

#[path = "it/support.rs"]
#[allow(dead_code)] // shared with the `it` suite; this test uses part of it
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TestDaemon, script, tempdir};

const T: Duration = Duration::from_secs(60);

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn busy_loops(n: usize) -> String {
    let mut s = String::new();
    for _ in 0..n {
        s.push_str("(while :; do :; done) &\n");
    }
    s.push_str("wait\n");
    s
}

fn job_events(d: &TestDaemon, id: u64) -> Vec<Value> {
    d.events(0)
        .into_iter()
        .filter(|e| e["type"] == "job_state" && e["id"] == id)
        .collect()
}

/// A pausable job that keeps every core busy is not paused by its own CPU; a supervised
/// program that does (the bots) pauses it after the sustain time, with the reason; when the
/// program stops, the job is thawed and runs on.
#[test]
fn sustained_host_cpu_outside_jobs_pauses_a_pausable_job_and_its_end_thaws_it() {
    let tmp = tempdir();
    let dir = tmp.path();
    let n = cores();
    // The bots: eight busy loops per core, so that beside the job's own they hold ~90 % of
    // the host (the threshold is 70 %, with room for scheduling noise either way).
    let hog = script(dir, "hog.sh", &busy_loops(8 * n));
    let work = script(dir, "work.sh", &busy_loops(n));
    let body = format!(
        "[program.hog]\ncommand = \"{}\"\nautostart = false\nstartsecs = 0\nstopasgroup = true\n\n\
         [jobs]\ncpu_cores = {n}\nram_gb = 8\nbuffer_pct = 0\nconsumption_factor_pct = 100\n\
         check_measured = false\npause_cpu_pct = 70\npause_cpu_sustain_s = 1\n",
        hog.display()
    );
    let d = TestDaemon::start_in(dir, &body);
    let (st, _, j) = d.call(
        "POST",
        "/api/jobs",
        d.token.as_deref(),
        Some(&json!({"type": "backtest", "command": [work.display().to_string()], "cpu_cores": 1})),
    );
    assert!(st == 201 || st == 200 || st == 202, "{st} {j}");
    let id = j["id"].as_u64().unwrap_or_else(|| panic!("no id in {j}"));
    d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["to"] == "running"
    });
    // The job alone holds every core (host CPU near 100 %, far above 70 %). An observation
    // window of 4 s — four times the sustain time, eight samples — without a pause.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let evs = job_events(&d, id);
    assert!(
        !evs.iter().any(|e| e["to"] == "paused"),
        "the job paused itself: {evs:#?}"
    );
    // The bots need the host: the program keeps every core busy too.
    let (st, _, b) = d.call("POST", "/api/programs/hog/start", d.token.as_deref(), None);
    assert!(st < 300, "{st} {b}");
    let ev = d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["to"] == "paused"
    });
    assert!(
        ev["paused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("host CPU outside jobs") && r.contains("above 70%")),
        "{ev}"
    );
    // It clears: the program stops, the job is thawed.
    let (st, _, b) = d.call("POST", "/api/programs/hog/stop", d.token.as_deref(), None);
    assert!(st < 300, "{st} {b}");
    let ev = d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["from"] == "paused" && e["to"] == "running"
    });
    assert!(ev["paused_reason"].is_null(), "{ev}");
    let (st, _, _) = d.call("POST", &format!("/api/jobs/{id}/cancel"), None, None);
    assert_eq!(st, 200);
    d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["to"] == "canceled"
    });
}
