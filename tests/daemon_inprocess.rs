//! The daemon run in-process, as `vigil serve` runs it: `daemon::bind`, then `daemon::run`
//! in `block_on` of a current-thread runtime (the children's parent-death signal follows
//! the spawning thread, which is this one), with a real supervised child. A client thread
//! drives it over its real HTTP listener (`/health`, `/api/programs`, a halt), then cancels
//! the shutdown token: run() must return Ok with every task it spawned finished — those of
//! its `TaskTracker`, and no task at all left on the runtime — and the child gone.
//! One test per binary: the daemon installs process-wide state (the metrics recorder).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Generous: only reached when something is broken.
const TIMEOUT: Duration = Duration::from_secs(60);

fn alive(pid: i32) -> bool {
    // Signal 0: does the process exist (vigil reaps its children, so no zombie stays).
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn get(client: &reqwest::blocking::Client, url: &str) -> Value {
    let r = client.get(url).send().expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().expect("a JSON body")
}

/// GET `url` until `pred` holds (the state is reached through the daemon's own work; the
/// wait is bounded only by the generous [`TIMEOUT`]).
fn wait_until(
    client: &reqwest::blocking::Client,
    url: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let v = get(client, url);
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sleeper(all: &Value) -> Value {
    all["programs"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "sleeper").cloned())
        .unwrap_or_default()
}

/// The client: health, the child RUNNING, a halt; then the token. Returns the child's pid.
fn drive(url: String, stop: CancellationToken) -> i32 {
    let client = reqwest::blocking::Client::new();
    let health = get(&client, &format!("{url}/health"));
    assert!(health.get("status").is_some(), "{health}");
    let all = wait_until(
        &client,
        &format!("{url}/api/programs"),
        "sleeper RUNNING",
        |v| sleeper(v)["state"] == "RUNNING",
    );
    let pid = sleeper(&all)["pid"].as_i64().expect("a pid") as i32;
    assert!(alive(pid), "the child {pid} runs");

    // An operator halt goes through the monitor: persisted, then answered.
    let r = client
        .post(format!("{url}/api/trading/halt"))
        .json(&serde_json::json!({"reason": "in-process test"}))
        .send()
        .expect("POST halt");
    assert!(r.status().is_success(), "halt: {}", r.status());
    let state = get(&client, &format!("{url}/api/state"));
    assert_eq!(state["state"], "HALTED", "{state}");
    // An open event stream must not hold the shutdown up: it ends with the daemon.
    let mut stream = client
        .get(format!("{url}/api/events/stream"))
        .send()
        .expect("the event stream");
    assert!(stream.status().is_success(), "stream: {}", stream.status());
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::copy(&mut stream, &mut sink);
    });
    stop.cancel();
    reader.join().expect("the stream reader");
    pid
}

#[test]
fn a_daemon_runs_in_process_and_stops_with_its_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let config_path = dir.join("vigil.toml");
    let text = format!(
        "[vigil]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_level = \"info\"\n\n\
         [program.sleeper]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
        dir.join("data").display()
    );
    std::fs::write(&config_path, &text).expect("write config");
    let config = vigil::config::load(&config_path).expect("a valid config");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bound = rt.block_on(vigil::daemon::bind(&config)).expect("bind");
    let url = format!("http://{}", bound.http.local_addr().expect("address"));
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || drive(url, stop))
    };
    let opts = vigil::daemon::RunOptions {
        config,
        reload_from: Some(config_path),
        overrides: Default::default(),
        banner: None,
        recover: false,
    };
    let (result, left) = rt.block_on(async {
        let r = tokio::time::timeout(
            TIMEOUT,
            vigil::daemon::run(opts, bound, stop, tasks.clone()),
        )
        .await
        .expect("run() returns once the token is cancelled");
        // What is still alive on the runtime once run() has returned: nothing it started.
        let left = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        (r, left)
    });
    let pid = client.join().expect("the client thread");
    assert!(result.is_ok(), "run() failed: {result:?}");
    assert!(tasks.is_closed(), "run() closes its tracker");
    assert!(
        tasks.is_empty(),
        "{} tracked tasks still running",
        tasks.len()
    );
    assert_eq!(
        left, 0,
        "tasks still alive on the runtime after run() returned"
    );
    assert!(!alive(pid), "the child {pid} outlived the daemon");
    // The halt outlives the daemon: the state file the trading processes read says so.
    let state = std::fs::read_to_string(dir.join("data").join("trading_state"))
        .expect("the trading state file");
    assert!(state.contains("HALTED"), "{state}");
}
