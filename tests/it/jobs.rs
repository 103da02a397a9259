//! Background jobs against the real binary with real processes (issue 10): the ledger under
//! a burst, event-driven admission, cancel of a process tree with a `setsid` grandchild,
//! OOM with a supervised program living on, pause for a critical loop's overrun, restart
//! recovery after SIGKILL, non-admin isolation, seed 004's SSE payloads, bad input.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestDaemon, alive, auth_section, eventually, script, tempdir};

const T: Duration = Duration::from_secs(60);

/// `[jobs]` with a fixed capacity: `cores` cores, 8 GB, no buffer, factor 100 %, ledger only
/// (the shared test machine's CPU is busy with other work).
fn jobs_section(cores: u32, extra: &str) -> String {
    format!(
        "[jobs]\ncpu_cores = {cores}\nram_gb = 8\nbuffer_pct = 0\nconsumption_factor_pct = 100\ncheck_measured = false\n{extra}\n"
    )
}

fn submit(d: &TestDaemon, token: Option<&str>, body: Value) -> (u16, Value) {
    let (s, _, b) = d.call(
        "POST",
        "/api/jobs",
        token.or(d.token.as_deref()),
        Some(&body),
    );
    (s, b)
}

fn job(d: &TestDaemon, id: u64) -> Value {
    d.get(&format!("/api/jobs/{id}"))
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// Wait for the job_state event that puts `id` into `state`.
fn wait_job(d: &TestDaemon, id: u64, state: &str) -> Value {
    d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["to"] == state
    })
}

fn job_events(d: &TestDaemon) -> Vec<Value> {
    d.events(0)
        .into_iter()
        .filter(|e| e["type"] == "job_state")
        .collect()
}

const FINAL: &[&str] = &[
    "succeeded",
    "failed",
    "killed",
    "oom_killed",
    "timed_out",
    "canceled",
    "interrupted",
    "rejected",
];

/// `/api/system/task-events` read on a thread: each `data:` payload as JSON.
fn task_stream(d: &TestDaemon, token: Option<&str>) -> mpsc::Receiver<Value> {
    let mut url = format!("{}/api/system/task-events", d.url);
    if let Some(t) = token {
        url.push_str(&format!("?token={t}"));
    }
    let (tx, rx) = mpsc::channel();
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(600))
        .send()
        .expect("task-events");
    assert_eq!(resp.status().as_u16(), 200);
    std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(data.trim()).expect("task event json");
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn next_of(
    rx: &mpsc::Receiver<Value>,
    pred: impl Fn(&Value) -> bool,
    seen: &mut Vec<Value>,
) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => {
                seen.push(v.clone());
                if pred(&v) {
                    return v;
                }
            }
            Err(_) => panic!("no matching task event; saw:\n{seen:#?}"),
        }
    }
}

#[test]
fn a_burst_never_exceeds_the_ledger_and_each_exit_admits_the_next() {
    let d = TestDaemon::start(&jobs_section(3, ""));
    let n = 12;
    // All at once, from n threads.
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let url = d.url.clone();
            std::thread::spawn(move || {
                let r = reqwest::blocking::Client::new()
                    .post(format!("{url}/api/jobs"))
                    .json(&json!({"command": ["sh", "-c", "sleep 1"], "cpu_cores": 1, "ram_gb": 0.1, "description": format!("burst {i}")}))
                    .timeout(Duration::from_secs(60))
                    .send()
                    .expect("submit");
                assert_eq!(r.status().as_u16(), 201);
                r.json::<Value>().expect("json")["id"].as_u64().expect("id")
            })
        })
        .collect();
    let ids: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    for id in &ids {
        wait_job(&d, *id, "succeeded");
    }
    // Replay the transitions in seq order: never more than 3 running at once.
    let mut running = 0i32;
    let mut max = 0;
    let evs = job_events(&d);
    for e in &evs {
        if e["to"] == "running" {
            running += 1;
            max = max.max(running);
        } else if FINAL.contains(&e["to"].as_str().unwrap_or("")) && e["from"] == "running" {
            running -= 1;
        }
    }
    assert_eq!(
        max, 3,
        "the ledger holds 3 one-core jobs, and the burst filled it"
    );
    // Event-driven admission: every start directly follows either its own submission (room
    // was there) or another job's exit — no poll in between — and the queued ones started on
    // exits.
    let mut starts_after_exit = 0;
    for w in evs.windows(2) {
        if w[1]["to"] != "running" {
            continue;
        }
        let own_submit = w[0]["to"] == "queued" && w[0]["id"] == w[1]["id"];
        let after_exit = w[0]["to"] == "succeeded";
        assert!(
            own_submit || after_exit,
            "a start that followed neither: {w:#?}"
        );
        starts_after_exit += usize::from(after_exit);
    }
    assert!(starts_after_exit >= 1, "transitions:\n{evs:#?}");
    // The record says why it was admitted (the seed's text).
    let j = job(&d, ids[0]);
    assert!(
        j["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Can run:")),
        "{j}"
    );
}

#[test]
fn the_next_job_starts_when_the_one_before_it_exits() {
    let d = TestDaemon::start(&jobs_section(1, ""));
    let (_, a) = submit(&d, None, json!({"command": ["sleep", "2"], "cpu_cores": 1}));
    let (_, b) = submit(&d, None, json!({"command": ["true"], "cpu_cores": 1}));
    // At its submission b waits, and says why (a holds the only core).
    assert_eq!(b["state"], "queued", "{b}");
    assert!(
        b["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Insufficient CPU (reserved by 1 running job(s)")),
        "{b}"
    );
    let (a, b) = (id_of(&a), id_of(&b));
    let end_a = wait_job(&d, a, "succeeded");
    let start_b = wait_job(&d, b, "running");
    let evs = job_events(&d);
    let i = evs
        .iter()
        .position(|e| e["seq"] == end_a["seq"])
        .expect("a's end");
    assert_eq!(
        evs[i + 1]["seq"],
        start_b["seq"],
        "b's start is the next transition after a's exit"
    );
    wait_job(&d, b, "succeeded");
    // Metrics: jobs by state, completions by type and result, wait and run time.
    let m = reqwest::blocking::get(format!("{}/metrics", d.url))
        .and_then(|r| r.text())
        .expect("metrics");
    for line in [
        "vigil_jobs{state=\"queued\"} 0",
        "vigil_jobs{state=\"running\"} 0",
        "vigil_jobs_completed_total{type=\"command\",result=\"succeeded\"} 2",
        "vigil_job_queue_wait_seconds_count{type=\"command\"} 2",
        "vigil_job_duration_seconds_count{type=\"command\"} 2",
    ] {
        assert!(m.lines().any(|l| l == line), "no {line:?} in\n{m}");
    }
    assert!(
        m.contains("vigil_job_admission_decisions_total{decision=\"deferred\"}"),
        "{m}"
    );
}

#[test]
fn cancel_of_a_running_job_leaves_no_setsid_grandchild_behind() {
    let d = TestDaemon::start(&jobs_section(2, ""));
    let mode = d.get("/health")["jobs"]["cgroup_mode"].clone();
    assert_ne!(
        mode, "none",
        "this test needs a cgroup (v2 or hybrid); /health says {mode}"
    );
    let pidfile = d.dir.join("grandchild.pid");
    let s = script(
        &d.dir,
        "tree.sh",
        &format!(
            "setsid sh -c 'trap \"\" TERM; echo $$ > {}; exec sleep 300' &\nwhile [ ! -s {} ]; do sleep 0.01; done\necho VIGIL_PROGRESS '{{\"description\": \"forked\"}}'\nexec sleep 300",
            pidfile.display(),
            pidfile.display()
        ),
    );
    let (st, j) = submit(&d, None, json!({"command": [s], "cpu_cores": 1}));
    assert_eq!(st, 201, "{j}");
    let id = id_of(&j);
    let id_s = id.to_string();
    let rx = task_stream(&d, None);
    let mut seen = Vec::new();
    next_of(
        &rx,
        |v| {
            v["type"] == "initial_state"
                || (v["type"] == "task_description_update"
                    && v["data"]["task_id"].as_str() == Some(&*id_s))
        },
        &mut seen,
    );
    eventually(T, "the grandchild's pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty())
    });
    let g: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(g));
    let main_pid = job(&d, id)["pid"].as_i64().unwrap() as i32;
    let (st, _, body) = d.call("POST", &format!("/api/jobs/{id}/cancel"), None, None);
    assert_eq!(st, 200, "{body}");
    let ev = wait_job(&d, id, "canceled");
    assert_eq!(ev["canceled_by"], "local");
    eventually(T, "the setsid grandchild to die", || !alive(g));
    eventually(T, "the job's process to die", || !alive(main_pid));
    let j = job(&d, id);
    assert_eq!(j["state"], "canceled");
    assert!(
        j["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("canceled by local")),
        "{j}"
    );
}

#[test]
fn a_job_over_its_memory_is_oom_killed_while_a_supervised_program_lives_on() {
    let d = TestDaemon::start(&format!(
        "[program.bot]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n{}",
        jobs_section(2, "memory_headroom = 1.0")
    ));
    assert_ne!(d.get("/health")["jobs"]["memory_enforcement"], "sampled");
    d.wait_state(0, "bot", "RUNNING", T);
    let bot_pid = d.process("bot")["pid"].as_i64().unwrap();
    // 64 MiB limit; the job touches 400 MiB.
    let (st, j) = submit(
        &d,
        None,
        json!({"command": ["python3", "-c", "b = bytearray(400 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')"],
               "cpu_cores": 1, "ram_gb": 0.0625}),
    );
    assert_eq!(st, 201, "{j}");
    let id = id_of(&j);
    let ev = d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && FINAL.contains(&e["to"].as_str().unwrap_or(""))
    });
    assert_eq!(ev["to"], "oom_killed", "{ev}");
    assert!(
        ev["message"]
            .as_str()
            .is_some_and(|m| m.contains("exceeded its memory limit"))
    );
    let bot = d.process("bot");
    assert_eq!(bot["state"], "RUNNING");
    assert_eq!(
        bot["pid"].as_i64(),
        Some(bot_pid),
        "the supervised program was not touched"
    );
}

#[test]
fn a_critical_loops_overrun_pauses_a_pausable_job_and_its_end_resumes_it() {
    let d = TestDaemon::start(&format!(
        "[checks.md_loop]\nkind = \"cycles\"\naction = \"warn\"\nwindow_s = 10\ncritical_overrun_pct = 50\nmin_samples = 1\n\n{}",
        jobs_section(2, "")
    ));
    let (_, j) = submit(
        &d,
        None,
        json!({"type": "backtest", "command": ["sleep", "300"]}),
    );
    let id = id_of(&j);
    wait_job(&d, id, "running");
    let pid = job(&d, id)["pid"].as_i64().unwrap() as i32;
    let post = |body: &str| {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/api/events", d.url))
            .header("content-type", "application/x-ndjson")
            .body(body.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .expect("post events");
        assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    };
    post("{\"type\":\"cycle\",\"name\":\"md\",\"duration_ms\":900,\"target_ms\":100}\n");
    let ev = wait_job(&d, id, "paused");
    assert!(
        ev["paused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("check md_loop is critical")),
        "{ev}"
    );
    let j = job(&d, id);
    assert_eq!(j["state"], "paused");
    // Frozen: the cgroup freezer (or SIGSTOP) holds it.
    let frozen = |pid: i32| {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = st
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        let cg_frozen = j["cgroup"]["v2"].as_str().is_some_and(|p| {
            std::fs::read_to_string(format!("{p}/cgroup.events"))
                .is_ok_and(|e| e.contains("frozen 1"))
        });
        state == "T" || cg_frozen
    };
    eventually(T, "the job to be frozen", || frozen(pid));
    // The loop recovers: three good cycles bring the overrun rate to 25 %.
    post(
        "{\"type\":\"cycle\",\"name\":\"md\",\"duration_ms\":10,\"target_ms\":100}\n{\"type\":\"cycle\",\"name\":\"md\",\"duration_ms\":10,\"target_ms\":100}\n{\"type\":\"cycle\",\"name\":\"md\",\"duration_ms\":10,\"target_ms\":100}\n",
    );
    let ev = d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && e["from"] == "paused" && e["to"] == "running"
    });
    assert!(ev["paused_reason"].is_null());
    eventually(T, "the job to be thawed", || !frozen(pid));
    assert!(alive(pid));
    let (st, _, _) = d.call("POST", &format!("/api/jobs/{id}/cancel"), None, None);
    assert_eq!(st, 200);
    wait_job(&d, id, "canceled");
}

#[test]
fn sigkill_of_vigil_keeps_the_queue_and_marks_the_running_job_interrupted() {
    let tmp = tempdir();
    let dir = tmp.path();
    let body = jobs_section(1, "");
    let d = TestDaemon::start_in(dir, &body);
    let pidfile = dir.join("leftover.pid");
    let s = script(
        dir,
        "leftover.sh",
        &format!(
            "setsid sleep 300 &\necho $! > {}\nexec sleep 300",
            pidfile.display()
        ),
    );
    let (_, a) = submit(&d, None, json!({"command": [s], "cpu_cores": 1}));
    let (_, b) = submit(
        &d,
        None,
        json!({"command": ["true"], "cpu_cores": 1, "priority": 1}),
    );
    let (_, c) = submit(
        &d,
        None,
        json!({"command": ["sleep", "300"], "cpu_cores": 1}),
    );
    let (a, b, c) = (id_of(&a), id_of(&b), id_of(&c));
    wait_job(&d, a, "running");
    eventually(T, "the leftover's pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| !s.trim().is_empty())
    });
    let leftover: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let a_pid = job(&d, a)["pid"].as_i64().unwrap() as i32;
    let q = d.get("/api/system/queue");
    assert_eq!(q["queued_count"], 2);
    assert_eq!(
        q["queued_tasks"][0]["task_id"],
        b.to_string(),
        "higher priority first"
    );
    drop(d); // SIGKILL
    let d = TestDaemon::start_in(dir, &body);
    let ev = wait_job(&d, a, "interrupted");
    assert_eq!(ev["from"], "running");
    let j = job(&d, a);
    assert_eq!(j["state"], "interrupted");
    // b (the head of the queue) runs, c is still queued behind it; ids are kept.
    wait_job(&d, b, "succeeded");
    wait_job(&d, c, "running");
    eventually(T, "no process of job a left", || {
        !alive(leftover) && !alive(a_pid)
    });
    // Ids are never reused.
    let (_, n) = submit(&d, None, json!({"command": ["true"], "cpu_cores": 0.1}));
    assert_eq!(id_of(&n), c + 1);
    let (st, _, _) = d.call("POST", &format!("/api/jobs/{c}/cancel"), None, None);
    assert_eq!(st, 200);
    wait_job(&d, c, "canceled");
}

fn auth_daemon(extra_jobs: &str) -> TestDaemon {
    let auth = auth_section(
        &[
            ("alice", "admin", "alice-pw"),
            ("oscar", "operator", "oscar-pw"),
            ("olga", "operator", "olga-pw"),
        ],
        &[],
        "",
    );
    TestDaemon::start(&format!(
        "{}\n[jobs.types.backtest]\ncommand = [\"sh\", \"-c\", \"echo {{symbol}}; sleep 0.1\"]\n[jobs.types.backtest.params.symbol]\npattern = \"[A-Z]+_[A-Z]+\"\n\n{auth}",
        jobs_section(2, extra_jobs)
    ))
}

#[test]
fn non_admins_see_only_their_own_jobs_and_no_resources() {
    let d = auth_daemon("");
    let admin = d.login("alice", "alice-pw");
    let oscar = d.login("oscar", "oscar-pw");
    let olga = d.login("olga", "olga-pw");
    let oscar_rx = task_stream(&d, Some(&oscar));
    let admin_rx = task_stream(&d, Some(&admin));
    let mut seen = Vec::new();
    let init = next_of(&oscar_rx, |v| v["type"] == "initial_state", &mut seen);
    assert!(init.get("resources").is_none(), "{init}");
    assert!(init["timestamp"].is_string());
    // A long one of olga's (held by a 2-core job of the admin's) and one of oscar's.
    let (st, big) = submit(
        &d,
        Some(&admin),
        json!({"command": ["sleep", "300"], "cpu_cores": 2}),
    );
    assert_eq!(st, 201, "{big}");
    let (st, oj) = submit(
        &d,
        Some(&olga),
        json!({"type": "backtest", "params": {"symbol": "ETH_USDT"}}),
    );
    assert_eq!(st, 201, "{oj}");
    let (st, mine) = submit(
        &d,
        Some(&oscar),
        json!({"type": "backtest", "params": {"symbol": "BTC_USDT"}}),
    );
    assert_eq!(st, 201, "{mine}");
    let (olga_id, my_id) = (id_of(&oj), id_of(&mine));
    let (olga_s, my_s) = (olga_id.to_string(), my_id.to_string());
    // Raw commands are for admins.
    let (st, e) = submit(&d, Some(&oscar), json!({"command": ["true"]}));
    assert_eq!(st, 403, "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("command:"));
    for path in ["/api/system/queue", "/api/system/resources"] {
        let (st, _, v) = d.call("GET", path, Some(&oscar), None);
        assert_eq!(st, 200);
        let q = if path.ends_with("resources") {
            assert!(v.get("resources").is_none(), "{v}");
            assert_eq!(v["is_admin"], false);
            v["queue"].clone()
        } else {
            v.clone()
        };
        assert_eq!(q["queued_count"], 1, "{path}: {v}");
        assert_eq!(q["queued_tasks"][0]["task_id"], my_id.to_string());
        assert_eq!(q["queued_tasks"][0]["user_id"], "oscar");
        assert_eq!(q["running_count"], 0);
    }
    let (_, _, v) = d.call("GET", "/api/system/resources", Some(&admin), None);
    assert_eq!(v["is_admin"], true);
    assert!(v["resources"]["cpu"]["total_cores"].is_number(), "{v}");
    assert_eq!(v["queue"]["queued_count"], 2);
    let (_, _, v) = d.call("GET", "/api/jobs", Some(&oscar), None);
    let users: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, vec!["oscar"]);
    // Another user's job: not visible, not cancelable.
    let (st, _, e) = d.call("GET", &format!("/api/jobs/{olga_id}"), Some(&oscar), None);
    assert_eq!(st, 403, "{e}");
    let (st, _, e) = d.call(
        "POST",
        &format!("/api/jobs/{olga_id}/cancel"),
        Some(&oscar),
        None,
    );
    assert_eq!(st, 403, "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("id: job"));
    // Free the host: both backtests run and complete.
    let big_id = id_of(&big);
    let (st, _, _) = d.call(
        "POST",
        &format!("/api/jobs/{big_id}/cancel"),
        Some(&admin),
        None,
    );
    assert_eq!(st, 200);
    let mut seen = Vec::new();
    next_of(
        &oscar_rx,
        |v| v["type"] == "task_completed" && v["data"]["task_id"].as_str() == Some(&*my_s),
        &mut seen,
    );
    // The admin's stream carries both completions, in whichever order the jobs end.
    let mut admin_seen = Vec::new();
    let completed = |seen: &[Value], id: &str| {
        seen.iter()
            .any(|v| v["type"] == "task_completed" && v["data"]["task_id"].as_str() == Some(id))
    };
    while !(completed(&admin_seen, &olga_s) && completed(&admin_seen, &my_s)) {
        next_of(
            &admin_rx,
            |v| v["type"] == "task_completed",
            &mut admin_seen,
        );
    }
    // Oscar's stream: only oscar's tasks and no resources, ever.
    for v in &seen {
        assert!(v.get("resources").is_none(), "{v}");
        if let Some(u) = v["data"]["user_id"].as_str() {
            assert_eq!(u, "oscar", "{v}");
        }
        for t in v["data"]["queued_tasks"]
            .as_array()
            .into_iter()
            .chain(v["data"]["running_tasks"].as_array())
            .flatten()
        {
            assert_eq!(t["user_id"], "oscar");
        }
    }
    assert!(seen.iter().any(|v| v["type"] == "task_queued"));
    assert!(seen.iter().any(|v| v["type"] == "task_running"));
    // The admin's carries resources and everyone's tasks.
    assert!(
        admin_seen.iter().all(|v| v["resources"]["cpu"].is_object()),
        "{admin_seen:#?}"
    );
    assert!(admin_seen.iter().any(|v| v["data"]["user_id"] == "olga"));
}

#[test]
fn task_events_carry_the_seeds_names_and_fields() {
    let d = TestDaemon::start(&jobs_section(1, ""));
    let rx = task_stream(&d, None);
    let mut seen = Vec::new();
    let init = next_of(&rx, |v| v["type"] == "initial_state", &mut seen);
    for k in [
        "queued_count",
        "running_count",
        "queued_tasks",
        "running_tasks",
    ] {
        assert!(
            init["data"].get(k).is_some(),
            "initial_state lacks {k}: {init}"
        );
    }
    let (_, a) = submit(
        &d,
        None,
        json!({"type": "backtest", "command": ["sh", "-c", "echo 'VIGIL_PROGRESS {\"description\": \"Backtesting day 15 of 30...\", \"percent\": 50}'; sleep 0.3"], "cpu_cores": 1}),
    );
    let (_, b) = submit(
        &d,
        None,
        json!({"type": "prediction", "command": ["true"], "cpu_cores": 1}),
    );
    let (a, b) = (id_of(&a).to_string(), id_of(&b).to_string());
    next_of(
        &rx,
        |v| v["type"] == "task_completed" && v["data"]["task_id"] == b,
        &mut seen,
    );
    let find = |kind: &str, id: &str| -> Value {
        seen.iter()
            .find(|v| v["type"] == kind && v["data"]["task_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} of {id} in {seen:#?}"))
    };
    let q = find("task_queued", &b);
    assert_eq!(q["data"]["task_type"], "prediction");
    assert_eq!(q["data"]["queue_position"], 1);
    assert_eq!(q["data"]["estimated_cpu_cores"], 1.0);
    assert_eq!(q["data"]["estimated_ram_gb"], 0.3);
    for k in ["priority", "queued_at", "description", "user_id"] {
        assert!(q["data"].get(k).is_some(), "task_queued lacks {k}: {q}");
    }
    let u = find("task_description_update", &a);
    assert_eq!(u["data"]["description"], "Backtesting day 15 of 30...");
    let c = find("task_completed", &a);
    assert_eq!(c["data"]["task_type"], "backtest");
    assert_eq!(c["data"]["success"], true);
    let r = find("task_running", &b);
    assert_eq!(r["data"]["estimated_ram_gb"], 0.3);
    assert!(find("task_running", &a)["data"]["estimated_cpu_cores"].is_number());
    let hb = next_of(&rx, |v| v["type"] == "heartbeat", &mut seen);
    assert!(hb["resources"]["cpu"]["total_cores"].is_number(), "{hb}");
    assert!(hb["resources"]["ram"]["available_gb"].is_number(), "{hb}");
    for v in &seen {
        assert!(v["timestamp"].is_string(), "{v}");
        assert!(
            v["resources"].is_object(),
            "admin (open mode): resources on every event: {v}"
        );
        let known = [
            "initial_state",
            "task_queued",
            "task_running",
            "task_completed",
            "task_description_update",
            "heartbeat",
        ];
        assert!(known.contains(&v["type"].as_str().unwrap_or("")), "{v}");
    }
    // The progress line was consumed, not logged.
    let log = d.get(&format!("/api/jobs/{a}/log"));
    assert!(
        !log["text"].as_str().unwrap().contains("VIGIL_PROGRESS"),
        "{log}"
    );
    assert_eq!(job(&d, a.parse().unwrap())["percent"], 50.0);
}

#[test]
fn bad_input_is_refused_with_the_field_and_nothing_is_queued() {
    let d = auth_daemon("");
    let admin = d.login("alice", "alice-pw");
    let oscar = d.login("oscar", "oscar-pw");
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (&oscar, json!({"type": "nope"}), 400, "type:"),
        (
            &oscar,
            json!({"type": "backtest", "params": {"symbol": "btc; rm -rf /"}}),
            400,
            "params.symbol:",
        ),
        (
            &oscar,
            json!({"type": "backtest", "params": {"symbol": "BTC_USDT", "extra": "1"}}),
            400,
            "params.extra:",
        ),
        (
            &oscar,
            json!({"type": "backtest"}),
            400,
            "params.symbol: required",
        ),
        (
            &admin,
            json!({"command": ["true"], "cpu_cores": "two"}),
            400,
            "cpu_cores:",
        ),
        (
            &admin,
            json!({"command": ["true"], "ram_gb": -1}),
            400,
            "ram_gb:",
        ),
        (
            &admin,
            json!({"command": ["true"], "ram_gb": 100}),
            422,
            "ram_gb:",
        ),
        (
            &admin,
            json!({"command": ["true"], "cpu_cores": 3}),
            422,
            "cpu_cores:",
        ),
        (&admin, json!({}), 400, "command:"),
        (
            &admin,
            json!({"command": ["true"], "description": "x".repeat(5000)}),
            400,
            "description:",
        ),
        (
            &admin,
            json!({"command": ["true"], "bogus": 1}),
            400,
            "body:",
        ),
    ];
    for (token, body, status, prefix) in &cases {
        let (st, e) = submit(&d, Some(token), body.clone());
        assert_eq!(st, *status, "{body} → {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| m.starts_with(prefix)),
            "{body} → {e}"
        );
        assert!(e["error"].is_string());
    }
    let (_, _, v) = d.call("GET", "/api/jobs", Some(&admin), None);
    assert_eq!(
        v["jobs"].as_array().map(Vec::len),
        Some(0),
        "nothing was queued: {v}"
    );
    let (st, _, e) = d.call("GET", "/api/jobs/999", Some(&admin), None);
    assert_eq!(st, 404);
    assert_eq!(e["error"], "no_such_job");
    let (st, _, _) = d.call("POST", "/api/jobs/999/cancel", Some(&admin), None);
    assert_eq!(st, 404);
    // A command that cannot start ends failed with the OS error.
    let (st, j) = submit(&d, Some(&admin), json!({"command": ["/no/such/program"]}));
    assert_eq!(st, 201);
    let j = d
        .call(
            "GET",
            &format!("/api/jobs/{}", id_of(&j)),
            Some(&admin),
            None,
        )
        .2;
    assert_eq!(j["state"], "failed");
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("can't find command '/no/such/program'"),
        "{j}"
    );
    // The daemon is fine.
    let (st, _, _) = d.call("GET", "/health", None, None);
    assert_eq!(st, 200);
}

#[test]
fn the_job_scoped_token_sets_progress_and_nothing_else() {
    let d = auth_daemon("");
    let admin = d.login("alice", "alice-pw");
    let out = d.dir.join("progress.out");
    let s = script(
        &d.dir,
        "prog.sh",
        &format!(
            "curl -s -o {out}.1 -w '%{{http_code}}' -X POST -H \"X-Vigil-Job-Token: $VIGIL_JOB_TOKEN\" -H 'content-type: application/json' -d '{{\"description\": \"via api\", \"percent\": 7}}' \"$VIGIL_URL/api/jobs/$VIGIL_JOB_ID/progress\" > {out}\necho >> {out}\ncurl -s -o /dev/null -w '%{{http_code}}' -H \"Authorization: Bearer $VIGIL_JOB_TOKEN\" \"$VIGIL_URL/api/jobs\" >> {out}\nsleep 300",
            out = out.display()
        ),
    );
    let (st, j) = submit(&d, Some(&admin), json!({"command": [s], "cpu_cores": 1}));
    assert_eq!(st, 201, "{j}");
    let id = id_of(&j);
    eventually(T, "the job's two requests", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.lines().count() >= 2)
    });
    let codes = std::fs::read_to_string(&out).unwrap();
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(
        codes,
        vec!["200", "401"],
        "progress accepted; the token opens nothing else"
    );
    let j = d
        .call("GET", &format!("/api/jobs/{id}"), Some(&admin), None)
        .2;
    assert_eq!(j["description"], "via api");
    assert_eq!(j["percent"], 7.0);
    // A wrong token is refused.
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/jobs/{id}/progress", d.url))
        .header("X-Vigil-Job-Token", "job1.nope")
        .json(&json!({"description": "x"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (st, _, _) = d.call(
        "POST",
        &format!("/api/jobs/{id}/cancel"),
        Some(&admin),
        None,
    );
    assert_eq!(st, 200);
}

#[test]
fn the_cli_submits_waits_lists_and_cancels() {
    let d = TestDaemon::start(&jobs_section(1, ""));
    let vigil = |args: &[&str]| {
        std::process::Command::new(crate::support::vigil_bin())
            .arg("job")
            .arg("--url")
            .arg(&d.url)
            .args(args)
            .output()
            .expect("vigil job")
    };
    let out = vigil(&[
        "submit",
        "--wait",
        "--description",
        "cli test",
        "--",
        "sh",
        "-c",
        "echo 'VIGIL_PROGRESS {\"description\": \"half way\", \"percent\": 50}'; exit 3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("job 1 failed: exit code 3"), "{stdout}");
    let out = vigil(&["submit", "--wait", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("job 2 succeeded"));
    // Bad input: exit 2 with the field.
    let out = vigil(&["submit", "--type", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("type: unknown job type \"nope\""));
    let out = vigil(&["submit", "--ram", "lots", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let out = vigil(&["submit", "--cpu", "1", "--", "sleep", "300"]);
    assert_eq!(out.status.code(), Some(0));
    let out = vigil(&["ls"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  TYPE     STATE"), "{table}");
    assert!(lines[1].starts_with("3   command  running"), "{table}");
    assert!(
        lines[3].starts_with("1   command  failed") && lines[3].ends_with("half way"),
        "{table}"
    );
    let out = vigil(&["cancel", "3"]);
    assert_eq!(out.status.code(), Some(0));
    wait_job(&d, 3, "canceled");
    let out = vigil(&["show", "99"]);
    assert_eq!(out.status.code(), Some(4));
    let out = vigil(&["logs", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn without_cgroups_memory_is_sampled_and_enforced_and_health_says_so() {
    let d = TestDaemon::start(&jobs_section(
        2,
        "cgroups = \"none\"\nmemory_headroom = 1.0",
    ));
    let h = d.get("/health");
    assert_eq!(h["jobs"]["cgroup_mode"], "none", "{h}");
    assert_eq!(h["jobs"]["memory_enforcement"], "sampled", "{h}");
    let r = d.get("/api/system/resources");
    assert_eq!(r["resources"]["memory_enforcement"], "sampled", "{r}");
    // 64 MiB limit; the job grows to 400 MiB and stays there.
    let (st, j) = submit(
        &d,
        None,
        json!({"command": ["python3", "-c", "import time\nb = bytearray(400 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(300)"],
               "cpu_cores": 1, "ram_gb": 0.0625}),
    );
    assert_eq!(st, 201, "{j}");
    let id = id_of(&j);
    let ev = d.wait_for(0, T, |e| {
        e["type"] == "job_state" && e["id"] == id && FINAL.contains(&e["to"].as_str().unwrap_or(""))
    });
    assert_eq!(ev["to"], "oom_killed", "{ev}");
    assert!(job(&d, id)["peak_memory_bytes"].as_u64().unwrap() > 64 * 1024 * 1024);
    // Cancel reaches the whole process group.
    let (_, j) = submit(
        &d,
        None,
        json!({"command": ["sh", "-c", "sleep 300 & sleep 300"], "cpu_cores": 1}),
    );
    let id = id_of(&j);
    wait_job(&d, id, "running");
    let pgid = job(&d, id)["pid"].as_i64().unwrap() as i32;
    let (st, _, _) = d.call("POST", &format!("/api/jobs/{id}/cancel"), None, None);
    assert_eq!(st, 200);
    wait_job(&d, id, "canceled");
    eventually(T, "the job's process group to be gone", || {
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_err()
    });
}

#[test]
fn a_full_queue_refuses_with_503_and_retry_after_and_queues_nothing() {
    let d = TestDaemon::start(&jobs_section(1, "max_queued = 2"));
    let (s, running) = submit(
        &d,
        None,
        json!({"command": ["sleep", "600"], "cpu_cores": 1}),
    );
    assert_eq!(s, 201, "{running}");
    wait_job(&d, id_of(&running), "running");
    for _ in 0..2 {
        let (s, q) = submit(&d, None, json!({"command": ["true"], "cpu_cores": 1}));
        assert_eq!((s, q["state"].as_str()), (201, Some("queued")), "{q}");
    }
    let (s, h, e) = d.call(
        "POST",
        "/api/jobs",
        d.token.as_deref(),
        Some(&json!({"command": ["true"], "cpu_cores": 1})),
    );
    assert_eq!(s, 503, "{e}");
    assert_eq!(e["error"], "queue_full", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 jobs are waiting ([jobs] max_queued)")),
        "{e}"
    );
    assert_eq!(
        h.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let listed = d.get("/api/jobs");
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(3), "{listed}");
    // Room again once the running job ends and a waiting one starts.
    let (s, _, _) = d.call(
        "POST",
        &format!("/api/jobs/{}/cancel", id_of(&running)),
        d.token.as_deref(),
        None,
    );
    assert_eq!(s, 200);
    eventually(T, "a submission is taken again", || {
        submit(&d, None, json!({"command": ["true"], "cpu_cores": 1})).0 == 201
    });
}
