//! Test harness: runs the real `vigil` binary on a temp dir, waits for its readiness line
//! (no sleeps), follows its event stream, and SIGKILLs it on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn vigil_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigil")
}

pub struct TestDaemon {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    /// Everything vigil printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
    /// Sent as `Authorization: Bearer` by `get`, `post`, `events` and `wait_for` (daemons with
    /// `[auth]`; see `auth_section` and `login`).
    pub token: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

/// A fresh temp dir for a test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The `[vigil]` section every test config starts with.
pub fn header(dir: &Path) -> String {
    format!(
        "[vigil]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_level = \"info\"\n\n",
        dir.join("data").display()
    )
}

impl TestDaemon {
    /// Write `body` (programs etc.) after a standard header and start vigil on it.
    pub fn start(body: &str) -> TestDaemon {
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        let mut d = Self::start_in(&dir, body);
        d._tmp = Some(tmp);
        d
    }

    /// Start in an existing dir (to restart on the same data).
    pub fn start_in(dir: &Path, body: &str) -> TestDaemon {
        let config = dir.join("vigil.toml");
        std::fs::write(&config, format!("{}{}", header(dir), body)).expect("write config");
        Self::start_config(dir, &config)
    }

    pub fn start_config(dir: &Path, config: &Path) -> TestDaemon {
        Self::start_config_args(dir, config, &[])
    }

    /// `vigil run -c CONFIG ARGS…`.
    pub fn start_config_args(dir: &Path, config: &Path, args: &[&str]) -> TestDaemon {
        Self::start_config_env(dir, config, args, &[])
    }

    /// [`TestDaemon::start_config_args`] with extra environment variables for vigil.
    pub fn start_config_env(
        dir: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TestDaemon {
        let mut child = Command::new(vigil_bin())
            .envs(env.iter().copied())
            .arg("run")
            .arg("-c")
            .arg(config)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vigil");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("VIGIL_TEST_VERBOSE").is_some() {
                    eprintln!("[vigil] {line}");
                }
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out_log = Arc::new(Mutex::new(String::new()));
        let out_log2 = out_log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut l) = out_log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(url) = line.strip_prefix("vigil: listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "vigil did not become ready; stderr:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        TestDaemon {
            child,
            url,
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            stderr: log,
            stdout: out_log,
            token: None,
            _tmp: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `rb` with this daemon's token, if any.
    pub fn authed(
        &self,
        rb: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub fn get(&self, path: &str) -> Value {
        self.authed(reqwest::blocking::Client::new().get(format!("{}{}", self.url, path)))
            .timeout(Duration::from_secs(30))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn post(&self, path: &str) -> (u16, Value) {
        let r = self
            .authed(reqwest::blocking::Client::new().post(format!("{}{}", self.url, path)))
            .timeout(Duration::from_secs(60))
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn events(&self, since: u64) -> Vec<Value> {
        self.get(&format!("/api/events?since={since}&limit=10000"))["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn process(&self, name: &str) -> Value {
        let all = self.get("/api/programs");
        all["programs"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no process {name} in {all}"))
    }

    /// Follow the SSE stream from `since` until an event satisfies `pred`.
    pub fn wait_for(&self, since: u64, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = since;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let resp = self
                .authed(
                    reqwest::blocking::Client::new().get(format!("{}/api/events/stream", self.url)),
                )
                .header("Last-Event-ID", last.to_string())
                .timeout(left)
                .send();
            let Ok(resp) = resp else { continue };
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { break };
                if let Some(d) = line.strip_prefix("data:") {
                    let v: Value = serde_json::from_str(d.trim()).expect("event json");
                    last = v["seq"].as_u64().unwrap_or(last);
                    if pred(&v) {
                        return v;
                    }
                    seen.push(v);
                }
            }
        }
        panic!(
            "timed out after {timeout:?} waiting for an event; saw:\n{}\nstderr:\n{}",
            seen.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            self.stderr_text()
        );
    }

    /// Wait until `process` enters `state` (after `since`), returning the event.
    pub fn wait_state(&self, since: u64, process: &str, state: &str, timeout: Duration) -> Value {
        self.wait_for(since, timeout, |e| {
            e["type"] == "process_state" && e["process"] == process && e["to"] == state
        })
    }

    pub fn last_seq(&self) -> u64 {
        self.get("/api/events?since=0&limit=10000")["last_seq"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(vigil_bin())
            .arg("ctl")
            .arg("--url")
            .arg(&self.url)
            .args(args)
            .output()
            .expect("run vigil ctl")
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal vigil");
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "vigil did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a pid is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Wait until `f` is true (used only for process death, which has no event we can follow).
pub fn eventually(timeout: Duration, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Write an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

pub fn ts_ms(e: &Value) -> i64 {
    let s = e["ts"].as_str().expect("ts");
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .timestamp_millis()
}

/// The JWT secret of test configs made by [`auth_section`].
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";

/// An `[auth]` section: `users` as (name, role, password), `tokens` as (name, role, secret)
/// (the client then sends `NAME.SECRET`), and `extra` keys for `[auth]`.
pub fn auth_section(
    users: &[(&str, &str, &str)],
    tokens: &[(&str, &str, &str)],
    extra: &str,
) -> String {
    let mut s = format!("[auth]\njwt_secret = \"{TEST_JWT_SECRET}\"\n{extra}\n");
    for (name, role, pw) in users {
        let h = vigil::auth::password::hash(pw).expect("hash");
        s.push_str(&format!(
            "[[auth.users]]\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{h}\"\n\n"
        ));
    }
    for (name, role, secret) in tokens {
        let h = vigil::auth::password::hash(secret).expect("hash");
        s.push_str(&format!(
            "[[auth.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsecret_hash = \"{h}\"\n\n"
        ));
    }
    s
}

impl TestDaemon {
    /// `POST /api/auth/login`; the JWT.
    pub fn login(&self, user: &str, password: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/api/auth/login", self.url))
            .json(&serde_json::json!({"username": user, "password": password}))
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap_or_else(|e| panic!("login {user}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "login {user}");
        let v: Value = r.json().expect("login json");
        v["token"].as_str().expect("token").to_string()
    }

    /// Any request with an optional bearer token and JSON body: (status, headers, body as JSON
    /// or Null). Streams (SSE) are not read: only the head.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let m: reqwest::Method = method.parse().expect("method");
        let mut rb = reqwest::blocking::Client::new()
            .request(m, format!("{}{}", self.url, path))
            .timeout(Duration::from_secs(30));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let streaming = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let body = if streaming {
            Value::Null
        } else {
            r.json().unwrap_or(Value::Null)
        };
        (status, headers, body)
    }
}
