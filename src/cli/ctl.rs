//! `vigil ctl …` and `vigil events`: supervisorctl-like client of the REST API.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ClientArgs, exit};
use crate::api::model::ErrorBody;
use crate::api::model::events::{Accepted, EventPage, EventView, InvalidEvents};
use crate::api::model::processes::{ActionResponse, LogLines, Process, ProgramList};
use crate::api::model::trading::{ConditionsHold, HaltResponse, ResumeResponse, TradingStateView};

#[derive(Subcommand, Clone)]
pub enum Action {
    /// Show processes (all, or the named ones).
    Status { names: Vec<String> },
    /// Start processes (`name`, `group:*`, `all`).
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop processes.
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop then start processes.
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Send a signal (`HUP`, `SIGUSR1`, `15`).
    Signal {
        signal: String,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print the pid of a process (or of every process with `all`).
    Pid { name: String },
    /// Show the end of a process's output.
    Tail {
        name: String,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
        /// stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// Lines to show.
        #[arg(short = 'n', long, default_value_t = 40)]
        lines: usize,
    },
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

pub(crate) enum Fail {
    Unreachable(String),
    Other(anyhow::Error),
}

impl Client {
    pub(crate) fn new(args: &ClientArgs) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token.clone().filter(|t| !t.trim().is_empty()),
        }
    }

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    pub(crate) async fn send(&self, rb: reqwest::RequestBuilder) -> Result<(u16, Value), Fail> {
        let resp = rb
            .send()
            .await
            .map_err(|e| Fail::Unreachable(format!("cannot reach vigil at {}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        let body = resp
            .json::<Value>()
            .await
            .map_err(|e| Fail::Other(anyhow::anyhow!("bad response from vigil: {e}")))?;
        Ok((status, body))
    }
}

/// A response body read as its API type (`crate::api::model`).
pub(crate) fn decode<T: DeserializeOwned>(body: Value) -> Result<T, Fail> {
    serde_json::from_value(body)
        .map_err(|e| Fail::Other(anyhow::anyhow!("bad response from vigil: {e}")))
}

/// The `message` of an error body (`{ "error", "message" }`), or `default`.
pub(crate) fn error_message(body: &Value, default: &str) -> String {
    ErrorBody::deserialize(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| default.to_string())
}

/// The `error` code of an error body, if it is one.
fn error_code(body: &Value) -> Option<String> {
    ErrorBody::deserialize(body).ok().map(|e| e.error)
}

pub(crate) fn fail_code(f: Fail) -> anyhow::Result<ExitCode> {
    match f {
        Fail::Unreachable(msg) => {
            eprintln!("vigil: {msg}");
            Ok(ExitCode::from(exit::UNREACHABLE))
        }
        Fail::Other(e) => Err(e),
    }
}

fn display_name(p: &Process) -> String {
    if p.group == p.name {
        p.name.clone()
    } else {
        format!("{}:{}", p.group, p.name)
    }
}

fn matches(p: &Process, sel: &str) -> bool {
    let (name, group, program) = (p.name.as_str(), p.group.as_str(), p.program.as_str());
    sel == "all"
        || sel == name
        || sel == group
        || sel == program
        || sel == display_name(p)
        || sel.strip_suffix(":*").is_some_and(|g| g == group)
}

/// `GET /api/programs`; a refusal (not authorised, …) is reported with the server's message.
async fn programs(c: &Client) -> Result<Vec<Process>, Fail> {
    let (status, body) = c.send(c.req(reqwest::Method::GET, "/api/programs")).await?;
    if status != 200 {
        return Err(Fail::Other(anyhow::anyhow!(
            "{}",
            error_message(&body, "request failed")
        )));
    }
    decode::<ProgramList>(body).map(|l| l.programs)
}

pub async fn run(args: &ClientArgs, action: Action) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    match action {
        Action::Status { names } => {
            let procs = match programs(&c).await {
                Ok(l) => l,
                Err(f) => return fail_code(f),
            };
            let mut code = exit::OK;
            for sel in &names {
                if !procs.iter().any(|p| matches(p, sel)) {
                    println!("{sel}: ERROR (no such process)");
                    code = exit::NO_SUCH_PROCESS;
                }
            }
            let shown: Vec<&Process> = procs
                .iter()
                .filter(|p| names.is_empty() || names.iter().any(|s| matches(p, s)))
                .collect();
            let width = shown
                .iter()
                .map(|p| display_name(p).len())
                .max()
                .unwrap_or(0)
                .max(32);
            for p in &shown {
                println!(
                    "{:<width$} {:<10} {}",
                    display_name(p),
                    p.state,
                    p.description
                );
                if p.state != "RUNNING" && code == exit::OK {
                    code = exit::NOT_RUNNING;
                }
            }
            Ok(ExitCode::from(code))
        }
        Action::Start { names } => act(&c, "start", &names, None).await,
        Action::Stop { names } => act(&c, "stop", &names, None).await,
        Action::Restart { names } => act(&c, "restart", &names, None).await,
        Action::Signal { signal, names } => act(&c, "signal", &names, Some(signal)).await,
        Action::Pid { name } => {
            let procs = match programs(&c).await {
                Ok(l) => l,
                Err(f) => return fail_code(f),
            };
            let sel: Vec<&Process> = procs.iter().filter(|p| matches(p, &name)).collect();
            if sel.is_empty() {
                println!("{name}: ERROR (no such process)");
                return Ok(ExitCode::from(exit::NO_SUCH_PROCESS));
            }
            let mut code = exit::OK;
            for p in sel {
                match p.pid {
                    Some(pid) => println!("{pid}"),
                    None => {
                        println!("0");
                        code = exit::NOT_RUNNING;
                    }
                }
            }
            Ok(ExitCode::from(code))
        }
        Action::Tail {
            name,
            follow,
            stderr,
            lines,
        } => {
            let channel = if stderr { "stderr" } else { "stdout" };
            let path =
                format!("/api/programs/{name}/log?channel={channel}&lines={lines}&follow={follow}");
            let resp = match c.req(reqwest::Method::GET, &path).send().await {
                Ok(r) => r,
                Err(e) => return fail_code(Fail::Unreachable(format!("cannot reach vigil: {e}"))),
            };
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                println!("{name}: ERROR (no such process)");
                return Ok(ExitCode::from(exit::NO_SUCH_PROCESS));
            }
            if follow {
                let mut s = resp.bytes_stream();
                use std::io::Write;
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.context("reading the log stream")?;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&chunk)?;
                    out.flush()?;
                }
            } else {
                let body: LogLines = resp.json().await.context("reading the log")?;
                for l in body.lines {
                    println!("{l}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn act(
    c: &Client,
    verb: &str,
    names: &[String],
    signal: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut code = exit::OK;
    for name in names {
        let mut path = format!("/api/programs/{name}/{verb}");
        if let Some(s) = &signal {
            path.push_str(&format!("?signal={s}"));
        }
        let (status, body) = match c.send(c.req(reqwest::Method::POST, &path)).await {
            Ok(v) => v,
            Err(f) => return fail_code(f),
        };
        if status == 404 {
            println!("{name}: ERROR (no such process)");
            code = code.max(exit::NO_SUCH_PROCESS);
            continue;
        }
        if status == 400 {
            println!("{name}: ERROR ({})", error_message(&body, "bad request"));
            code = code.max(exit::USAGE);
            continue;
        }
        if status != 200 && status != 409 {
            // Refused as a whole (not authorised, shutting down, …): the error body says why.
            println!("{name}: ERROR ({})", error_message(&body, "request failed"));
            code = code.max(exit::FAILED);
            continue;
        }
        let results = match decode::<ActionResponse>(body) {
            Ok(b) => b.results,
            Err(f) => return fail_code(f),
        };
        for r in results {
            let n = match r.name.split_once(':') {
                Some((g, p)) if g == p => p,
                _ => r.name.as_str(),
            };
            if r.ok {
                let done = match verb {
                    "start" => "started".to_string(),
                    "stop" => "stopped".to_string(),
                    "restart" => "restarted".to_string(),
                    _ => "signalled".to_string(),
                };
                println!("{n}: {done}");
            } else {
                let fault = r.fault.as_deref().unwrap_or("FAILED");
                let msg = match fault {
                    "ALREADY_STARTED" => "already started".to_string(),
                    "NOT_RUNNING" => "not running".to_string(),
                    "SPAWN_ERROR" => "spawn error".to_string(),
                    "ABNORMAL_TERMINATION" => "abnormal termination".to_string(),
                    _ => r.message.as_deref().unwrap_or(fault).to_string(),
                };
                println!("{n}: ERROR ({msg})");
                code = code.max(exit::FAILED);
            }
        }
    }
    Ok(ExitCode::from(code))
}

/// `vigil events`: history, then (with --follow) the live SSE stream, resuming by seq.
pub async fn events(
    args: &ClientArgs,
    since: Option<u64>,
    kind: Option<String>,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    let mut last = since.unwrap_or(0);
    loop {
        let mut path = format!("/api/events?since={last}&limit=1000");
        if let Some(k) = &kind {
            path.push_str(&format!("&type={k}"));
        }
        let (status, body) = match c.send(c.req(reqwest::Method::GET, &path)).await {
            Ok(v) => v,
            Err(f) => return fail_code(f),
        };
        if status != 200 {
            eprintln!("vigil: {}", error_message(&body, "request failed"));
            return Ok(ExitCode::from(exit::FAILED));
        }
        let page = match decode::<EventPage>(body) {
            Ok(p) => p,
            Err(f) => return fail_code(f),
        };
        let evs = page.events;
        if let Some(g) = page.history_gap {
            eprintln!(
                "vigil: events after seq {} up to {} are no longer stored (pruned by retention or lost)",
                g.after, g.missing_through
            );
        }
        for e in &evs {
            println!("{}", serde_json::to_string(e)?);
            last = last.max(e.seq);
        }
        if evs.len() < 1000 {
            break;
        }
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: SSE with Last-Event-ID = last printed seq; reconnect on drop without loss.
    loop {
        let mut path = "/api/events/stream".to_string();
        if let Some(k) = &kind {
            path.push_str(&format!("?type={k}"));
        }
        let resp = c
            .req(reqwest::Method::GET, &path)
            .header("Last-Event-ID", last.to_string())
            .send()
            .await;
        let resp = match resp {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                eprintln!("vigil: event stream refused: {}", r.status());
                return Ok(ExitCode::from(exit::FAILED));
            }
            Err(e) => {
                eprintln!("vigil: event stream lost ({e}); retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut s = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = s.next().await {
            let Ok(chunk) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find("\n\n") {
                let block: String = buf.drain(..i + 2).collect();
                for line in block.lines() {
                    if let Some(d) = line.strip_prefix("data:") {
                        let d = d.trim_start();
                        println!("{d}");
                        if let Ok(e) = serde_json::from_str::<EventView>(d) {
                            last = last.max(e.seq);
                        }
                    }
                }
            }
        }
        eprintln!("vigil: event stream ended; reconnecting from seq {last}");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn print_state(s: &TradingStateView) {
    let state = &s.state;
    match &s.last_transition {
        Some(t) => println!(
            "{state} since {} — {} (source {}, by {})",
            t.at, t.reason, t.source, t.actor,
        ),
        None => println!("{state}"),
    }
    for h in &s.holding {
        println!("  holding: {} — {}", h.source, h.reason);
    }
}

/// `vigil state`'s exit code: 0 ACTIVE, 3 REDUCING, 4 HALTED.
fn state_code(state: &str) -> u8 {
    match state {
        "ACTIVE" => exit::OK,
        "REDUCING" => exit::NOT_RUNNING,
        _ => exit::NO_SUCH_PROCESS,
    }
}

/// `vigil state`: 0 ACTIVE, 3 REDUCING, 4 HALTED (so scripts can gate on it).
pub async fn state(args: &ClientArgs, json: bool) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    let (status, body) = match c.send(c.req(reqwest::Method::GET, "/api/state")).await {
        Ok(v) => v,
        Err(f) => return fail_code(f),
    };
    if status != 200 {
        eprintln!("vigil: {}", error_message(&body, "request failed"));
        return Ok(ExitCode::from(exit::FAILED));
    }
    if json {
        // As served, so that fields a newer vigil adds are passed on too.
        println!("{body}");
    }
    let s = match decode::<TradingStateView>(body) {
        Ok(s) => s,
        Err(f) => return fail_code(f),
    };
    if !json {
        print_state(&s);
    }
    Ok(ExitCode::from(state_code(&s.state)))
}

pub async fn halt(args: &ClientArgs, reason: &str, reduce_only: bool) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    let req = c
        .req(reqwest::Method::POST, "/api/trading/halt")
        .json(&serde_json::json!({"reason": reason, "reduce_only": reduce_only}));
    let (status, body) = match c.send(req).await {
        Ok(v) => v,
        Err(f) => return fail_code(f),
    };
    if status != 200 {
        eprintln!(
            "vigil: halt refused: {}",
            error_message(&body, "request failed")
        );
        return Ok(ExitCode::from(exit::FAILED));
    }
    let h = match decode::<HaltResponse>(body) {
        Ok(h) => h,
        Err(f) => return fail_code(f),
    };
    if h.changed {
        println!("trading is now {}", h.state);
    } else {
        println!("trading was already {}; the reason is recorded", h.state);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn resume(args: &ClientArgs, reason: &str, force: bool) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    let req = c
        .req(reqwest::Method::POST, "/api/trading/resume")
        .json(&serde_json::json!({"reason": reason, "force": force}));
    let (status, body) = match c.send(req).await {
        Ok(v) => v,
        Err(f) => return fail_code(f),
    };
    if status != 200 {
        eprintln!(
            "vigil: resume refused: {}",
            error_message(&body, "request failed")
        );
        let holding = ConditionsHold::deserialize(&body)
            .map(|c| c.holding)
            .unwrap_or_default();
        for h in holding {
            eprintln!("  still holding: {} — {}", h.source, h.reason);
        }
        return Ok(ExitCode::from(exit::FAILED));
    }
    match decode::<ResumeResponse>(body) {
        Ok(r) => println!("trading is now {}", r.state),
        Err(f) => return fail_code(f),
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigil send`: NDJSON on stdin, posted in batches; exit 1 if any line was refused.
pub async fn send(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let c = Client::new(args);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut batch = String::new();
    let mut first_line = 1usize;
    let mut line_no = 0usize;
    let mut refused = 0usize;
    let mut accepted = 0u64;
    loop {
        let next = lines.next_line().await.context("reading stdin")?;
        let done = next.is_none();
        if let Some(l) = next {
            line_no += 1;
            batch.push_str(&l);
            batch.push('\n');
        }
        if (done || line_no - first_line + 1 >= 500) && !batch.is_empty() {
            let body_text = std::mem::take(&mut batch);
            // 503 "overloaded": vigil took nothing of the batch; send it again after a pause.
            let (status, body) = loop {
                let req = c
                    .req(reqwest::Method::POST, "/api/events")
                    .header("Content-Type", "application/x-ndjson")
                    .body(body_text.clone());
                match c.send(req).await {
                    Ok((503, b)) if error_code(&b).as_deref() == Some("overloaded") => {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Ok(v) => break v,
                    Err(f) => return fail_code(f),
                }
            };
            if status == 202 {
                match decode::<Accepted>(body) {
                    Ok(a) => accepted += a.accepted as u64,
                    Err(f) => return fail_code(f),
                }
            } else if let Ok(inv) = InvalidEvents::deserialize(&body) {
                accepted += inv.accepted as u64;
                for e in inv.errors {
                    refused += 1;
                    let line = e.line + first_line - 1;
                    eprintln!(
                        "stdin:{line}: {}{}",
                        e.field.map(|f| format!("{f}: ")).unwrap_or_default(),
                        e.reason
                    );
                }
            } else {
                eprintln!("vigil: {}", error_message(&body, "refused"));
                refused += 1;
            }
            first_line = line_no + 1;
        }
        if done {
            break;
        }
    }
    eprintln!("{accepted} event(s) accepted, {refused} refused");
    Ok(ExitCode::from(if refused > 0 {
        exit::FAILED
    } else {
        exit::OK
    }))
}
