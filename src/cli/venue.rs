//! `vigil venue ls | arm ID --reason TEXT | disarm ID --reason TEXT`: the exchange dead-man
//! switch of each venue (`GET /api/venues`, `POST /api/venues/{id}/arm|disarm`).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::ClientArgs;
use super::ctl::{Client, fail_code};
use super::exit;

#[derive(Subcommand)]
pub enum VenueCmd {
    /// List the venues: armed or not, trigger time, last refresh, last cancel-all.
    Ls {
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Arm the dead-man switch again (lifts a disarm); refused while HALTED. Admins only.
    Arm {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Disarm the dead-man switch, e.g. before a planned exchange maintenance, until `arm`
    /// or the next transition to ACTIVE. Admins only.
    Disarm {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("-")
}

fn line(v: &Value) -> String {
    let armed = if v["armed"].as_bool() == Some(true) {
        "armed"
    } else {
        "not armed"
    };
    let left = v["seconds_left"]
        .as_f64()
        .map_or(String::new(), |x| format!(" ({x:.0} s left)"));
    let cancel = &v["last_cancel_all"];
    let cancel = if cancel.is_null() {
        "none".to_string()
    } else {
        format!("{} {}", s(cancel, "at"), s(cancel, "detail"))
    };
    format!(
        "{:<12} {:<8} {:<10} {:<9} trigger {}{left}\n    check {}: {}\n    last refresh {}; last cancel-all {cancel}",
        s(v, "id"),
        s(v, "kind"),
        armed,
        s(v, "goal"),
        v["trigger_time"].as_str().unwrap_or("-"),
        s(&v["check"], "status"),
        s(&v["check"], "message"),
        v["last_refresh"]["at"].as_str().unwrap_or("never"),
    )
}

pub async fn run(args: &ClientArgs, cmd: VenueCmd) -> anyhow::Result<ExitCode> {
    let c = Client::new(args);
    let (req, what) = match &cmd {
        VenueCmd::Ls { .. } => (c.req(reqwest::Method::GET, "/api/venues"), "list"),
        VenueCmd::Arm { id, reason } | VenueCmd::Disarm { id, reason } => {
            if reason.trim().is_empty() {
                eprintln!("vigil: --reason: required, a non-empty text");
                return Ok(ExitCode::from(exit::USAGE));
            }
            let verb = if matches!(cmd, VenueCmd::Arm { .. }) {
                "arm"
            } else {
                "disarm"
            };
            let path = format!("/api/venues/{id}/{verb}");
            (
                c.req(reqwest::Method::POST, &path)
                    .json(&serde_json::json!({"reason": reason})),
                verb,
            )
        }
    };
    let (status, body) = match c.send(req).await {
        Ok(v) => v,
        Err(f) => return fail_code(f),
    };
    if status != 200 {
        eprintln!(
            "vigil: venue {what} refused: {}",
            body["message"].as_str().unwrap_or("request failed")
        );
        return Ok(ExitCode::from(if status == 404 {
            exit::NO_SUCH_PROCESS
        } else {
            exit::FAILED
        }));
    }
    match cmd {
        VenueCmd::Ls { json: true } => println!("{body:#}"),
        VenueCmd::Ls { json: false } => {
            let list = body["venues"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no venues configured ([venue.ID] in vigil.toml)");
            }
            for v in &list {
                println!("{}", line(v));
            }
        }
        VenueCmd::Arm { .. } | VenueCmd::Disarm { .. } => println!("{}", line(&body["venue"])),
    }
    Ok(ExitCode::SUCCESS)
}
