//! `vigil job submit | ls | show | logs | cancel`: background jobs over the REST API.
//!
//! Exit codes: 0 done (with `--wait`: the job succeeded), 1 the job ended otherwise or the
//! request failed, 2 bad input (the daemon's 400/403/422 message names the field), 4 no such
//! job, 5 the daemon is unreachable.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use futures::StreamExt;
use serde_json::{Value, json};

use super::ctl::{Client, fail_code};
use super::{ClientArgs, exit};

fn param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        Ok(n) => Err(format!("expected a number ≥ 0, got {n}")),
        Err(_) => Err(format!("expected a number, got {s:?}")),
    }
}

#[derive(Subcommand, Clone)]
pub enum JobCmd {
    /// Submit a job: a configured type with parameters, or (admins) `-- CMD ARGS…`.
    Submit {
        /// The job type (`backtest`, `model_training`, `prediction`, or one from [jobs.types]).
        #[arg(long = "type", short = 't')]
        kind: Option<String>,
        /// A parameter of the type's command template (repeatable).
        #[arg(long = "param", short = 'p', value_parser = param, value_name = "KEY=VALUE")]
        params: Vec<(String, String)>,
        /// Higher runs first.
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i32>,
        /// CPU cores requested (default: the type's).
        #[arg(long, value_parser = non_negative)]
        cpu: Option<f64>,
        /// GB of RAM requested (default: the type's); the memory limit derives from it.
        #[arg(long, value_parser = non_negative)]
        ram: Option<f64>,
        /// Seconds before the job is stopped as timed_out.
        #[arg(long, value_parser = non_negative)]
        timeout: Option<f64>,
        #[arg(long)]
        description: Option<String>,
        /// Follow the job with a progress bar until it ends; exit 0 only if it succeeded.
        #[arg(long, short = 'w')]
        wait: bool,
        /// A raw command (admins only), after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List jobs (a table, newest first).
    Ls {
        /// Only these states (comma-separated: queued,running,…).
        #[arg(long)]
        state: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show one job's record.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A job's output.
    Logs {
        id: String,
        /// Keep following until the job ends.
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        stderr: bool,
    },
    /// Cancel a job: queued ones are removed; running ones get SIGTERM, a grace, SIGKILL.
    Cancel { id: String },
}

/// Report an error answer; the exit code for it.
fn refused(what: &str, status: u16, body: &Value) -> ExitCode {
    eprintln!(
        "vigil: {what}: {}",
        body["message"].as_str().unwrap_or("request failed")
    );
    ExitCode::from(match status {
        400 | 403 | 422 => exit::USAGE,
        404 => exit::NO_SUCH_PROCESS,
        _ => exit::FAILED,
    })
}

pub async fn run(args: &ClientArgs, cmd: JobCmd) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    match cmd {
        JobCmd::Submit {
            kind,
            params,
            priority,
            cpu,
            ram,
            timeout,
            description,
            wait,
            command,
        } => {
            let mut body = json!({});
            let o = body.as_object_mut().expect("object");
            if let Some(k) = kind {
                o.insert("type".into(), json!(k));
            }
            if !params.is_empty() {
                let m: serde_json::Map<String, Value> =
                    params.into_iter().map(|(k, v)| (k, json!(v))).collect();
                o.insert("params".into(), Value::Object(m));
            }
            if !command.is_empty() {
                o.insert("command".into(), json!(command));
            }
            for (k, v) in [("cpu_cores", cpu), ("ram_gb", ram), ("timeout_s", timeout)] {
                if let Some(v) = v {
                    o.insert(k.into(), json!(v));
                }
            }
            if let Some(p) = priority {
                o.insert("priority".into(), json!(p));
            }
            if let Some(d) = description {
                o.insert("description".into(), json!(d));
            }
            // Subscribe before submitting, so no transition of the job can be missed.
            let stream = if wait {
                match c
                    .req(reqwest::Method::GET, "/api/system/task-events")
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => Some(r),
                    Ok(r) => {
                        eprintln!("vigil: task events refused: {}", r.status());
                        return Ok(ExitCode::from(exit::FAILED));
                    }
                    Err(e) => {
                        eprintln!("vigil: cannot reach vigil at {}: {e}", args.url);
                        return Ok(ExitCode::from(exit::UNREACHABLE));
                    }
                }
            } else {
                None
            };
            let (status, job) = match c
                .send(c.req(reqwest::Method::POST, "/api/jobs").json(&body))
                .await
            {
                Ok(v) => v,
                Err(f) => return fail_code(f),
            };
            if status != 201 {
                return Ok(refused("job refused", status, &job));
            }
            let id = job["id"].as_u64().unwrap_or(0);
            let state = job["state"].as_str().unwrap_or("?");
            println!(
                "job {id} {state} ({}){}",
                job["task_type"].as_str().unwrap_or("?"),
                job["reason"]
                    .as_str()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            match stream {
                Some(s) => follow_to_end(&c, id, s).await,
                None => Ok(ExitCode::SUCCESS),
            }
        }
        JobCmd::Ls {
            state,
            kind,
            limit,
            json,
        } => {
            let mut path = format!("/api/jobs?limit={limit}");
            if let Some(s) = state {
                path.push_str(&format!("&state={s}"));
            }
            if let Some(k) = kind {
                path.push_str(&format!("&type={k}"));
            }
            let (status, body) = match c.send(c.req(reqwest::Method::GET, &path)).await {
                Ok(v) => v,
                Err(f) => return fail_code(f),
            };
            if status != 200 {
                return Ok(refused("list refused", status, &body));
            }
            if json {
                println!("{body}");
            } else {
                print!("{}", table(body["jobs"].as_array().map_or(&[][..], |v| v)));
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Show { id, json } => {
            let (status, body) = match c
                .send(c.req(reqwest::Method::GET, &format!("/api/jobs/{id}")))
                .await
            {
                Ok(v) => v,
                Err(f) => return fail_code(f),
            };
            if status != 200 {
                return Ok(refused("show", status, &body));
            }
            if json {
                println!("{body}");
            } else {
                print!("{}", show(&body));
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Logs { id, follow, stderr } => {
            let stream = if stderr { "stderr" } else { "stdout" };
            let path = format!("/api/jobs/{id}/log?stream={stream}&follow={follow}");
            let resp = match c.req(reqwest::Method::GET, &path).send().await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("vigil: cannot reach vigil at {}: {e}", args.url);
                    return Ok(ExitCode::from(exit::UNREACHABLE));
                }
            };
            let status = resp.status().as_u16();
            if status != 200 {
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                return Ok(refused("logs", status, &body));
            }
            use std::io::Write;
            if follow {
                let mut s = resp.bytes_stream();
                while let Some(Ok(chunk)) = s.next().await {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&chunk);
                    let _ = out.flush();
                }
            } else {
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                print!("{}", body["text"].as_str().unwrap_or(""));
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCmd::Cancel { id } => {
            let (status, body) = match c
                .send(c.req(reqwest::Method::POST, &format!("/api/jobs/{id}/cancel")))
                .await
            {
                Ok(v) => v,
                Err(f) => return fail_code(f),
            };
            if status != 200 {
                return Ok(refused("cancel refused", status, &body));
            }
            println!(
                "job {id} {}",
                match body["state"].as_str() {
                    Some("canceled") => "canceled".to_string(),
                    Some(s) => format!("is being canceled (now {s})"),
                    None => "?".to_string(),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The progress bar until the job ends; the exit code from its outcome.
async fn follow_to_end(c: &Client, id: u64, resp: reqwest::Response) -> anyhow::Result<ExitCode> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} job {prefix} [{bar:30}] {pos:>3}% {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(id.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let sid = id.to_string();
    let mut s = resp.bytes_stream();
    let mut buf = String::new();
    // Already over before the stream was read? The record says.
    let done = |j: &Value| {
        j["state"]
            .as_str()
            .and_then(vigil_core::jobs::JobState::parse)
            .is_some_and(|st| st.is_final())
    };
    let fetch = || async {
        c.send(c.req(reqwest::Method::GET, &format!("/api/jobs/{id}")))
            .await
            .ok()
            .map(|(_, b)| b)
    };
    if let Some(j) = fetch().await
        && done(&j)
    {
        bar.finish_and_clear();
        return Ok(outcome(&j));
    }
    while let Some(chunk) = s.next().await {
        let Ok(chunk) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            for line in block.lines() {
                let Some(d) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(d.trim()) else {
                    continue;
                };
                let data = &v["data"];
                if data["task_id"].as_str() != Some(&sid) {
                    continue;
                }
                if let Some(p) = data["percent"].as_f64() {
                    bar.set_position(p.round() as u64);
                }
                if let Some(desc) = data["description"].as_str() {
                    bar.set_message(desc.to_string());
                }
                match v["type"].as_str() {
                    Some("task_queued") => bar.set_message(format!(
                        "queued (position {})",
                        data["queue_position"].as_u64().unwrap_or(0)
                    )),
                    Some("task_running") if data["state"] == "paused" => bar.set_message(format!(
                        "paused: {}",
                        data["paused_reason"].as_str().unwrap_or("")
                    )),
                    Some("task_completed") => {
                        bar.finish_and_clear();
                        let j = fetch().await.unwrap_or_else(|| data.clone());
                        return Ok(outcome(&j));
                    }
                    _ => {}
                }
            }
        }
    }
    bar.finish_and_clear();
    eprintln!("vigil: the task stream ended before job {id} did");
    Ok(ExitCode::from(exit::FAILED))
}

fn outcome(j: &Value) -> ExitCode {
    let state = j["state"].as_str().unwrap_or("?");
    let msg = j["message"].as_str().unwrap_or("");
    println!("job {} {state}: {msg}", j["id"]);
    if state == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILED)
    }
}

fn short_ts(v: &Value) -> String {
    // 2026-01-01T10:30:00.123Z → 01-01 10:30:00
    v.as_str()
        .and_then(|s| s.get(5..19))
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

/// The `ls` table.
pub fn table(jobs: &[Value]) -> String {
    let rows: Vec<[String; 9]> = jobs
        .iter()
        .map(|j| {
            [
                j["id"].to_string(),
                j["task_type"].as_str().unwrap_or("").to_string(),
                j["state"].as_str().unwrap_or("").to_string(),
                j["priority"].to_string(),
                short_ts(&j["queued_at"]),
                short_ts(&j["started_at"]),
                short_ts(&j["ended_at"]),
                j["user_id"].as_str().unwrap_or("").to_string(),
                j["description"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    let head = [
        "ID",
        "TYPE",
        "STATE",
        "PRIO",
        "QUEUED",
        "STARTED",
        "ENDED",
        "USER",
        "DESCRIPTION",
    ];
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            if i + 1 == n {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        out.push('\n');
    };
    line(head.to_vec(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn show(j: &Value) -> String {
    let mut out = String::new();
    for k in [
        "id",
        "task_type",
        "state",
        "message",
        "priority",
        "user_id",
        "argv",
        "params",
        "cpu_cores",
        "ram_gb",
        "memory_limit_bytes",
        "description",
        "percent",
        "reason",
        "paused_reason",
        "queued_at",
        "started_at",
        "ended_at",
        "pid",
        "exit_code",
        "signal",
        "canceled_by",
        "peak_memory_bytes",
        "cpu_seconds",
        "output_dir",
    ] {
        let v = &j[k];
        if v.is_null() {
            continue;
        }
        let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        out.push_str(&format!("{k:<19} {s}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            json!({"id": 7, "task_type": "backtest", "state": "running", "priority": 0,
            "queued_at": "2026-01-02T10:30:00.123Z", "started_at": "2026-01-02T10:30:01.000Z",
            "ended_at": null, "user_id": "alice", "description": "day 3 of 30"}),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("ID  TYPE      STATE    PRIO  QUEUED"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("7   backtest  running  0     01-02 10:30:00  01-02 10:30:01  -"),
            "{t}"
        );
        assert!(lines[1].ends_with("alice  day 3 of 30"), "{t}");
    }

    #[test]
    fn params_need_key_and_value() {
        assert_eq!(
            param("symbol=BTC").unwrap(),
            ("symbol".into(), "BTC".into())
        );
        assert_eq!(param("x=a=b").unwrap(), ("x".into(), "a=b".into()));
        assert!(param("nope").is_err());
        assert!(param("=v").is_err());
        assert!(non_negative("-1").is_err());
        assert!(non_negative("abc").is_err());
    }
}
